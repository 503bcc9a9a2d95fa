// Package privtest holds the one rule every privileged test follows: skip
// when it cannot run, except under CI, where a skip would hide a tier that
// was expected to run, so it fails instead.
package privtest

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRoot stops t unless it runs as root (and finds every program in
// tools on PATH).
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); why == "" && err != nil {
			why = "needs " + tool
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("privileged test %s (CI is set, so this is a failure, not a skip)", why)
	}
	t.Skipf("privileged test %s", why)
}
