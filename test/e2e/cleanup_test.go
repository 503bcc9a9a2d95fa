package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"tcptracer/tracer"
)

// ours lists kernel objects of tcptracer that exist right now: programs by
// name, TC links and clsact filters on lo, and a clsact qdisc on lo.
func ours(t *testing.T) []string {
	t.Helper()
	names := map[string]bool{}
	for _, n := range programNames(t) {
		names[n] = true
	}
	var found []string
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			t.Fatalf("list programs: %v", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err == nil && names[info.Name] {
			found = append(found, fmt.Sprintf("program %s (id %d)", info.Name, id))
		}
	}
	return append(found, tcOnLo(t)...)
}

// programNames are the kernel's names of our programs (cut to 15 bytes).
func programNames(t *testing.T) []string {
	var out []string
	for _, n := range tracer.ProgramNames() {
		if len(n) > 15 {
			n = n[:15]
		}
		out = append(out, n)
	}
	return out
}

func tcOnLo(t *testing.T) []string {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo: %v", err)
	}
	var found []string
	for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		res, err := link.QueryPrograms(link.QueryOptions{Target: lo.Attrs().Index, Attach: at})
		if err != nil {
			continue // no tcx on this kernel
		}
		for _, p := range res.Programs {
			found = append(found, fmt.Sprintf("tcx %s program id %d", at, p.ID))
		}
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		filters, _ := netlink.FilterList(lo, parent)
		for _, f := range filters {
			if bf, ok := f.(*netlink.BpfFilter); ok && strings.HasPrefix(bf.Name, "tcptracer") {
				found = append(found, "clsact filter "+bf.Name)
			}
		}
	}
	qdiscs, _ := netlink.QdiscList(lo)
	for _, q := range qdiscs {
		if q.Type() == "clsact" {
			found = append(found, "clsact qdisc on lo")
		}
	}
	return found
}

// requireClean waits for our objects to be gone: the kernel frees a
// program some time after its last reference is closed.
func requireClean(t *testing.T, when string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		left := ours(t)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still attached after %v: %v", when, waitTimeout, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The library: Close leaves nothing behind, and a failed New neither.
func TestCleanupLibrary(t *testing.T) {
	requireRoot(t)
	requireClean(t, "before the test")
	o := tracer.DefaultOptions()
	o.Ifaces = []string{"lo"}
	o.Attach, o.TC = envMode("TCPTRACER_ATTACH"), envMode("TCPTRACER_TC")
	tr, err := tracer.New(o)
	if err != nil {
		t.Fatalf("start tracer: %v", err)
	}
	if len(ours(t)) == 0 {
		t.Fatal("tracer running, but none of its programs is visible: the check sees nothing")
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	requireClean(t, "after Close")

	o.Ifaces = []string{"lo", "no-such-if0"}
	if _, err := tracer.New(o); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Fatalf("New with an unknown interface: err %v, want one naming it", err)
	}
	requireClean(t, "after a failed New")
}

// The command: SIGINT, SIGTERM and --duration all end with exit 0 and
// nothing attached.
func TestCleanupCommand(t *testing.T) {
	requireRoot(t)
	requireClean(t, "before the test")
	base := []string{"--iface", "lo", "--attach", envMode("TCPTRACER_ATTACH"), "--tc", envMode("TCPTRACER_TC")}
	for _, c := range []struct {
		name string
		args []string
		sig  os.Signal
	}{
		{"SIGINT", nil, os.Interrupt},
		{"SIGTERM", nil, syscall.SIGTERM},
		{"duration", []string{"--duration", "300ms"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := runCommandUntil(t, append(base, c.args...), c.sig)
			if !bytes.HasPrefix(out, []byte(`{"type":"start"`)) {
				t.Errorf("output does not start with the start event: %.200q", out)
			}
			requireClean(t, "after the command exited")
		})
	}
}

// runCommandUntil runs the CLI, waits for the start event, sends sig (if
// any), and requires exit status 0.
func runCommandUntil(t *testing.T, args []string, sig os.Signal) []byte {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"=cli")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start command: %v", err)
	}
	r := bufio.NewReader(stdout)
	first, err := r.ReadBytes('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no start line: %v; stderr: %s", err, stderr.String())
	}
	if sig != nil {
		if left := ours(t); len(left) == 0 {
			t.Errorf("command started but nothing of it is attached")
		}
		cmd.Process.Signal(sig)
	}
	rest, _ := io.ReadAll(r)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("command exit: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(waitTimeout):
		cmd.Process.Kill()
		t.Fatalf("command did not exit within %v", waitTimeout)
	}
	return append(first, rest...)
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
