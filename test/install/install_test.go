// Package install checks `make install`: into a scratch DESTDIR, the
// installed binary runs --version and --help, the man page and the
// completions are in place, and, as root, the installed binary runs the
// demo (under the kernel lock, like every privileged test).
package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/internal/privtest"
)

func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dest := t.TempDir()
	mk := exec.Command("make", "-C", "../..", "install", "DESTDIR="+dest, "PREFIX=/usr", "VERSION=v0.0.0-test", "BIN="+filepath.Join(t.TempDir(), "tcptracer"))
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bin := filepath.Join(dest, "usr", "bin", "tcptracer")
	for _, f := range []string{
		"usr/bin/tcptracer",
		"usr/share/man/man1/tcptracer.1",
		"usr/share/bash-completion/completions/tcptracer",
		"usr/share/zsh/site-functions/_tcptracer",
		"usr/share/doc/tcptracer/LICENSE",
		"usr/share/doc/tcptracer/LICENSE.GPL-2.0",
	} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "tcptracer v0.0.0-test" {
		t.Errorf("installed --version: %q, %v; want the stamped version", out, err)
	}
	out, err = exec.Command(bin, "verify", "--help").Output()
	if err != nil || !strings.Contains(string(out), "Usage: tcptracer verify") {
		t.Errorf("installed verify --help: %q, %v", out, err)
	}
	if out, err := exec.Command("file", bin).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Errorf("installed binary is not static: %s", out)
	}

	privtest.RequireRoot(t)
	demo := exec.Command(bin, "demo")
	var stderr strings.Builder
	demo.Stderr = &stderr
	out, err = demo.Output()
	if err != nil || !strings.Contains(string(out), `"version":"v0.0.0-test"`) || !strings.Contains(stderr.String(), "tcptracer: ") {
		t.Errorf("installed demo: %v\nstdout %.300s\nstderr %s", err, out, stderr.String())
	}
}
