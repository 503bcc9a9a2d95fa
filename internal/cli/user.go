package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// account is who verify --user runs the command as.
type account struct {
	name     string
	home     string
	uid, gid uint32
	groups   []uint32
}

// lookupUser finds NAME (or a numeric uid) in the user database, with its
// primary group and supplementary groups.
func lookupUser(name string) (*account, error) {
	u, err := user.Lookup(name)
	if _, numeric := strconv.ParseUint(name, 10, 32); err != nil && numeric == nil {
		u, err = user.LookupId(name)
	}
	if err != nil {
		return nil, usagef("--user %q: %v (want a user name or uid from the user database)", name, err)
	}
	a := &account{name: u.Username, home: u.HomeDir}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("look up user %s: uid %q, gid %q are not numeric", name, u.Uid, u.Gid)
	}
	a.uid, a.gid = uint32(uid), uint32(gid)
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("look up the groups of user %s: %w", name, err)
	}
	for _, id := range ids {
		if g, err := strconv.ParseUint(id, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(g))
		}
	}
	return a, nil
}

// commandRunner runs the command verify traces: as tcptracer's own user,
// or, with --user, as that account.
type commandRunner struct{ user *account }

// run runs the traced command; its output goes to stderr so that stdout
// stays the report.
func (r commandRunner) run(ctx context.Context, args []string, env Env) error {
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Stdout, c.Stderr = env.Stderr, env.Stderr
	if r.user != nil {
		r.user.apply(c)
	}
	if err := c.Run(); err != nil {
		return fmt.Errorf("command %q: %w", args[0], err)
	}
	return nil
}

// apply makes c run as the account. Changing every uid away from 0 makes
// the kernel clear the permitted, effective and ambient capabilities at
// the switch (capabilities(7), "Effect of user ID changes"), so the command
// holds none; the environment names the account, not root.
func (a *account) apply(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}}
	env := []string{"HOME=" + a.home, "USER=" + a.name, "LOGNAME=" + a.name}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "USER" && k != "LOGNAME" {
			env = append(env, kv)
		}
	}
	c.Env = env
}
