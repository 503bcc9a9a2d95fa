package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/internal/privtest"
)

// runDemo runs `tcptracer demo` with stderr on w.
func runDemoTo(t *testing.T, stderr *os.File, args ...string) (string, int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(cliRoleEnv, "1") // the demo's client is this binary
	var out bytes.Buffer
	code := Run(context.Background(), append([]string{"demo"}, args...), Env{Stdout: &out, Stderr: stderr, Self: self})
	return out.String(), code
}

// A real demo run: with stderr on a pty, the status line and the tally;
// with stderr on a file, the tally only.
func TestDemoLiveView(t *testing.T) {
	privtest.RequireRoot(t)
	master, slave := openPTY(t)
	screen := readPTY(master)
	if _, code := runDemoTo(t, slave); code != 0 {
		t.Fatalf("demo on a pty: exit %d: %q", code, screen.waitFor("\n"))
	}
	shown := screen.waitFor("lost in the kernel")
	if !statusRe.MatchString(shown) || !tallyRe.MatchString(shown) {
		t.Errorf("stderr on a pty: want the status line and the tally, got %q", shown)
	}
	t.Logf("tally on a pty: %q", tallyRe.FindString(shown))

	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, code := runDemoTo(t, f); code != 0 {
		t.Fatalf("demo: exit %d", code)
	}
	b, _ := os.ReadFile(f.Name())
	if strings.Contains(string(b), "events/s") || !tallyRe.Match(b) {
		t.Errorf("stderr on a file: want the tally only, got %q", b)
	}
}

// demo --format text prints the ladder and the verdict.
func TestDemoText(t *testing.T) {
	privtest.RequireRoot(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, code := runDemoTo(t, f, "--format", "text", "--color", "never")
	if code != 0 || !strings.Contains(out, "verdict: ok") || !strings.Contains(out, "[SYN] Seq=0") || strings.Contains(out, "\x1b[") {
		t.Errorf("demo --format text: exit %d, output %q", code, out)
	}
}
