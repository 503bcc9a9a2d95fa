package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"tcptracer/tracer"
)

// Every test here runs in each TC mode (tcx and clsact, or the one
// TCPTRACER_TC forces) on a veth end in a namespace of its own, and ends by
// requiring that nothing of tcptracer is left: no program, no tcx link, no
// tcptracer filter, and no clsact qdisc unless another tool's filter keeps it.

// The library: Close leaves nothing behind, nor does a New that fails before
// TC, or in the middle of attaching it.
func TestCleanupLibrary(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *cleanBed) {
		tr, err := tracer.New(b.options())
		if err != nil {
			t.Fatalf("start tracer: %v", err)
		}
		b.requireAttached(t, 1)
		if err := tr.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		b.requireClean(t, "after Close")

		o := b.options()
		o.Ifaces = append(o.Ifaces, "no-such-if0")
		if _, err := tracer.New(o); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
			t.Fatalf("New with an unknown interface: err %v, want one naming it", err)
		}
		b.requireClean(t, "after a New that failed before attaching TC")

		o = b.options()
		o.Ifaces = append(o.Ifaces, b.failingIface(t))
		_, err = tracer.New(o)
		if err == nil {
			t.Fatalf("New with %v: no error", o.Ifaces)
		}
		t.Logf("New failed half way, as wanted: %v", err)
		b.requireClean(t, "after a New that failed half way through TC")
	})
}

// failingIface returns an interface on which attaching fails after the
// bed's own interface is fully attached: in clsact mode a second veth with
// an ingress qdisc in clsact's place, in tcx mode the same interface again
// (the kernel refuses a program attached twice).
func (b *cleanBed) failingIface(t *testing.T) string {
	t.Helper()
	if b.mode != tracer.ModeClsact {
		return b.pair.IfA
	}
	name := b.pair.IfA + "x"
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := b.nl.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	l, err := b.nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_INGRESS}}
	if err := b.nl.QdiscAdd(ingress); err != nil {
		t.Fatalf("add ingress qdisc to %s: %v", name, err)
	}
	return name
}

// The command stops cleanly on every signal that asks it to, at the end of
// --duration, when its reader goes away, and detaches before a panic ends it.
func TestCleanupExitPaths(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		stop func(t *testing.T, b *cleanBed, p *proc)
		code int
	}{
		{"SIGINT", nil, sendSignal(os.Interrupt), 0},
		{"SIGTERM", nil, sendSignal(syscall.SIGTERM), 0},
		{"SIGHUP", nil, sendSignal(syscall.SIGHUP), 0},
		{"SIGQUIT", nil, sendSignal(syscall.SIGQUIT), 0},
		{"duration", []string{"--duration", "300ms"}, nil, 0},
		{"closed-stdout", nil, func(t *testing.T, b *cleanBed, p *proc) { p.stdout.Close() }, 0},
		{"panic", nil, func(t *testing.T, b *cleanBed, p *proc) { b.exchange(t) }, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			forEachMode(t, func(t *testing.T, b *cleanBed) {
				role := "cli"
				if c.name == "panic" {
					role = "cli-panic"
				}
				p := startCLI(t, role, b.args(c.args...)...)
				if c.stop != nil {
					b.requireAttached(t, 1)
					c.stop(t, b, p)
				}
				if code := p.wait(t); code != c.code {
					t.Fatalf("exit status %d, want %d; stderr: %s", code, c.code, p.stderr.String())
				}
				if c.name == "panic" && !strings.Contains(p.stderr.String(), "panic: test: output failed") {
					t.Errorf("stderr does not show the panic: %s", p.stderr.String())
				}
				b.requireClean(t, "after the command exited")
			})
		})
	}
}

func sendSignal(sig os.Signal) func(t *testing.T, b *cleanBed, p *proc) {
	return func(t *testing.T, b *cleanBed, p *proc) { p.cmd.Process.Signal(sig) }
}

// SIGKILL runs no handler. In clsact mode the filters stay (tcx links die
// with the process); cleanup's dry run names them and changes nothing; the
// next start removes them, says so, and works.
func TestCleanupAfterSIGKILL(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *cleanBed) {
		p := startCLI(t, "cli", b.args()...)
		b.requireAttached(t, 1)
		pid := p.cmd.Process.Pid
		p.cmd.Process.Kill()
		waitZombie(t, pid) // not reaped yet: its pid still exists, and still counts as gone
		if b.mode != tracer.ModeClsact {
			p.wait(t)
			b.requireClean(t, "after SIGKILL (tcx links die with their process)")
			return
		}
		if s := b.state(t); len(s.ours) != 2 {
			t.Fatalf("after SIGKILL in clsact mode: want its 2 filters left, see %v", s)
		}
		gone := fmt.Sprintf("tcptracer pid %d, gone", pid)
		out, errOut, code := runCLI(t, "", "cleanup", "--netns", b.nsPath())
		if code != 0 || strings.Count(out, "would remove: ") != 3 || strings.Count(out, gone) != 2 {
			t.Fatalf("cleanup dry run: exit %d, output %q (stderr %q); want the 2 filters of pid %d and the qdisc", code, out, errOut, pid)
		}
		if code := p.wait(t); code != -1 {
			t.Fatalf("exit status %d after SIGKILL", code)
		}
		if s := b.state(t); len(s.ours) != 2 || !s.clsact {
			t.Fatalf("the dry run changed something: %v", s)
		}

		_, errOut, code = runCLI(t, "", b.args("--duration", "200ms")...)
		if code != 0 || strings.Count(errOut, "tcptracer: removed ") != 3 || !strings.Contains(errOut, gone) {
			t.Fatalf("next start: exit %d, stderr %q; want exit 0 and the orphans removed", code, errOut)
		}
		b.requireClean(t, "after the next start")
	})
}

// waitZombie waits until pid has died and waits for its parent to reap it.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d is not a zombie after %v", pid, waitTimeout)
}

// Two tracers at once on one interface both see the traffic; stopping one
// leaves the other attached and working.
func TestCleanupTwoTracers(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *cleanBed) {
		first := startCLI(t, "cli", b.args()...)
		second := startCLI(t, "cli", b.args()...)
		first.pump()
		second.pump()
		b.requireAttached(t, 2)
		b.exchange(t)
		first.waitLine(t, `"type":"segment"`)
		second.waitLine(t, `"type":"segment"`)

		first.cmd.Process.Signal(os.Interrupt)
		if code := first.wait(t); code != 0 {
			t.Fatalf("first tracer: exit %d; stderr: %s", code, first.stderr.String())
		}
		b.requireAttached(t, 1)
		b.exchange(t)
		second.waitLine(t, `"type":"segment"`)

		second.cmd.Process.Signal(os.Interrupt)
		if code := second.wait(t); code != 0 {
			t.Fatalf("second tracer: exit %d; stderr: %s", code, second.stderr.String())
		}
		b.requireClean(t, "after both tracers stopped")
	})
}

// Another tool's filter, there before the tracer (the tracer adopts the
// qdisc) or added while it runs (the tracer created the qdisc), survives the
// tracer's exit, and the qdisc with it.
func TestCleanupForeignFilter(t *testing.T) {
	for _, before := range []bool{true, false} {
		t.Run(map[bool]string{true: "before", false: "meanwhile"}[before], func(t *testing.T) {
			forEachMode(t, func(t *testing.T, b *cleanBed) {
				if before {
					b.addForeignFilter(t)
				}
				p := startCLI(t, "cli", b.args()...)
				b.requireAttached(t, 1)
				if !before {
					b.addForeignFilter(t)
				}
				p.cmd.Process.Signal(os.Interrupt)
				if code := p.wait(t); code != 0 {
					t.Fatalf("exit %d; stderr: %s", code, p.stderr.String())
				}
				b.requireClean(t, "after the tracer stopped")
			})
		})
	}
}

// cleanup --apply removes what a killed tracer left, and nothing of a
// running tracer or of another tool.
func TestCleanupApply(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *cleanBed) {
		b.addForeignFilter(t)
		live := startCLI(t, "cli", b.args()...)
		live.pump()
		killed := startCLI(t, "cli", b.args()...)
		killed.cmd.Process.Kill()
		killed.wait(t)
		want, removed, alone := 1, 0, 0
		if b.mode == tracer.ModeClsact {
			want, removed, alone = 2, 2, 2 // the killed one's filters are still there
		}
		b.requireAttached(t, want)

		out, errOut, code := runCLI(t, "", "cleanup", "--apply", "--netns", b.nsPath())
		if code != 0 || strings.Count(out, "removing: ") != removed || strings.Count(out, "left alone: ") != alone {
			t.Fatalf("cleanup --apply: exit %d, output %q, stderr %q; want %d filters removed, %d left alone", code, out, errOut, removed, alone)
		}
		b.requireAttached(t, 1)
		if s := b.state(t); !contains(s.others, "bpf othertool") || !s.clsact {
			t.Fatalf("cleanup --apply took another tool's filter: %v", s)
		}
		b.exchange(t)
		live.waitLine(t, `"type":"segment"`)

		live.cmd.Process.Signal(os.Interrupt)
		if code := live.wait(t); code != 0 {
			t.Fatalf("live tracer: exit %d; stderr: %s", code, live.stderr.String())
		}
		b.requireClean(t, "after cleanup and the live tracer's exit")
	})
}

// requireClean checks that nothing of tcptracer is left anywhere, for
// tests that do not run on a bed: no program, and nothing on lo.
func requireClean(t *testing.T, when string) {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo: %v", err)
	}
	h, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := ifaceState(t, h, lo.Attrs().Index, func(f func() error) error { return f() })
		left := append(ourPrograms(t), append(s.tcx, s.ours...)...)
		if s.clsact {
			left = append(left, "clsact qdisc on lo")
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still attached after %v: %v", when, waitTimeout, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Bad input is refused with exit status 2 and a message naming it.
func TestCommandErrors(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--port", "70000"}, 2, "--port"},
		{[]string{"--attach", "magic"}, 2, "magic"},
		{[]string{"-4", "-6"}, 2, "-4"},
		{[]string{"--iface", "no-such-if0"}, 1, "no-such-if0"},
		{[]string{"--ring-size", "3000"}, 2, "ring"},
	} {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Env = append(os.Environ(), roleEnv+"=cli")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != c.code || !strings.Contains(string(out), c.says) {
			t.Errorf("tcptracer %v: exit %v, output %q; want exit %d mentioning %q", c.args, err, out, c.code, c.says)
		}
	}
	requireClean(t, "after the failed commands")
}

// Without root the command says which capabilities are missing, exits 1
// and attaches nothing.
func TestNotRoot(t *testing.T) {
	requireRoot(t)
	dir, err := os.MkdirTemp("", "tcptracer-nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := dir + "/tcptracer"
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	cmd := exec.Command(bin, "--iface", "lo")
	cmd.Env = append(os.Environ(), roleEnv+"=cli")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "CAP_BPF") {
		t.Errorf("as uid 65534: %v, output %q; want exit 1 naming CAP_BPF", err, out)
	}
	requireClean(t, "after the unprivileged attempt")
}
