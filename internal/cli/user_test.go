package cli

import (
	"bytes"
	"context"
	"os/user"
	"strconv"
	"strings"
	"testing"

	"tcptracer/internal/privtest"
)

// verify --user runs the command with the user's uid, gid and groups and
// no capabilities at all. Needs root (to switch), not the kernel lock.
func TestRunCommandAsUser(t *testing.T) {
	privtest.RequireRoot(t)
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	acct, err := lookupUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	script := `id -u; id -g; echo "$HOME $USER"; grep -E '^Cap(Inh|Prm|Eff|Amb):' /proc/self/status`
	if err := (commandRunner{user: acct}).run(context.Background(), []string{"sh", "-c", script}, Env{Stderr: &out}); err != nil {
		t.Fatalf("run as nobody: %v: %s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 7 || lines[0] != u.Uid || lines[1] != u.Gid || lines[2] != u.HomeDir+" nobody" {
		t.Fatalf("as nobody: %q; want uid %s gid %s", lines, u.Uid, u.Gid)
	}
	for _, l := range lines[3:] {
		if f := strings.Fields(l); len(f) != 2 || strings.Trim(f[1], "0") != "" {
			t.Errorf("capabilities left to the command: %q", l)
		}
	}
	// A numeric uid works too.
	if a, err := lookupUser(u.Uid); err != nil || strconv.Itoa(int(a.uid)) != u.Uid {
		t.Errorf("lookupUser(%s) = %+v, %v", u.Uid, a, err)
	}
}

// Without --user the command keeps tcptracer's own identity.
func TestRunCommandAsSelf(t *testing.T) {
	var out bytes.Buffer
	if err := (commandRunner{}).run(context.Background(), []string{"sh", "-c", "id -u"}, Env{Stderr: &out}); err != nil {
		t.Fatal(err)
	}
	me, _ := user.Current()
	if strings.TrimSpace(out.String()) != me.Uid {
		t.Errorf("uid %q, want %s", out.String(), me.Uid)
	}
}
