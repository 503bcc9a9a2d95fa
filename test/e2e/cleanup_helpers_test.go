package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"tcptracer/internal/echo"
	"tcptracer/internal/netns"
	"tcptracer/tracer"
)

// tcModes are the TC modes the cleanup tests run in: the one TCPTRACER_TC
// forces (a VM cell), else both, or clsact alone before Linux 6.6.
func tcModes() []string {
	if m := os.Getenv("TCPTRACER_TC"); m != "" && m != tracer.ModeAuto {
		return []string{m}
	}
	if !haveTCX() {
		return []string{tracer.ModeClsact}
	}
	return []string{tracer.ModeTCX, tracer.ModeClsact}
}

// haveTCX asks the kernel which tcx programs lo has: a kernel without tcx
// does not know the attach type.
func haveTCX() bool {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return true // let the tcx subtests say what is wrong
	}
	_, err = link.QueryPrograms(link.QueryOptions{Target: lo.Attrs().Index, Attach: ebpf.AttachTCXIngress})
	return err == nil
}

// forEachMode runs f as a subtest per TC mode, each with a bed of its own.
func forEachMode(t *testing.T, f func(t *testing.T, b *cleanBed)) {
	for _, mode := range tcModes() {
		t.Run(mode, func(t *testing.T) { f(t, newCleanBed(t, mode)) })
	}
}

// cleanBed is a pair of namespaces of the test's own; tracers attach to the
// veth end in A. Whatever a failed test leaves attached there goes away
// with the namespace instead of breaking later tests on lo.
type cleanBed struct {
	pair    *netns.Pair
	nl      *netlink.Handle // in A
	mode    string
	foreign bool // another tool's filter is on ingress (and so a clsact qdisc)
}

func newCleanBed(t *testing.T, mode string) *cleanBed {
	t.Helper()
	requireRoot(t)
	p, err := netns.NewPair("tcptr-clean")
	if err != nil {
		t.Fatalf("create namespaces: %v", err)
	}
	nl, err := netlink.NewHandleAt(p.A, unix.NETLINK_ROUTE)
	if err != nil {
		p.Close()
		t.Fatalf("open netlink in %s: %v", p.NameA, err)
	}
	t.Cleanup(func() {
		nl.Close()
		if err := p.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	return &cleanBed{pair: p, nl: nl, mode: mode}
}

func (b *cleanBed) nsPath() string { return filepath.Join(netns.RunDir, b.pair.NameA) }

// args are the command line flags that trace on the bed's interface.
func (b *cleanBed) args(extra ...string) []string {
	return append([]string{"--netns", b.nsPath(), "--iface", b.pair.IfA,
		"--attach", envMode("TCPTRACER_ATTACH"), "--tc", b.mode}, extra...)
}

func (b *cleanBed) options() tracer.Options {
	o := tracer.DefaultOptions()
	o.Netns, o.Ifaces = b.nsPath(), []string{b.pair.IfA}
	o.Attach, o.TC = envMode("TCPTRACER_ATTACH"), b.mode
	return o
}

// tcState is what is attached to TC on one interface.
type tcState struct {
	tcx    []string // tcx programs, any owner
	ours   []string // cls_bpf filters named tcptracer_…, with their names
	others []string // every other filter: kind and name
	clsact bool     // a clsact qdisc is there
}

func (s tcState) String() string {
	return fmt.Sprintf("tcx %v, tcptracer filters %v, other filters %v, clsact qdisc %v", s.tcx, s.ours, s.others, s.clsact)
}

// state reads the bed's interface through netlink and the tcx query.
func (b *cleanBed) state(t *testing.T) tcState {
	t.Helper()
	return ifaceState(t, b.nl, b.pair.IndexA, func(f func() error) error { return netns.Do(b.pair.A, f) })
}

// ifaceState reads interface index through h; in runs the tcx query where
// the index means that interface.
func ifaceState(t *testing.T, h *netlink.Handle, index int, in func(func() error) error) tcState {
	t.Helper()
	var s tcState
	in(func() error {
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: index, Attach: at})
			if err != nil {
				continue // no tcx on this kernel
			}
			for _, p := range res.Programs {
				s.tcx = append(s.tcx, fmt.Sprintf("%s program id %d", at, p.ID))
			}
		}
		return nil
	})
	ref := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		filters, _ := h.FilterList(ref, parent)
		for _, f := range filters {
			bf, isBpf := f.(*netlink.BpfFilter)
			switch {
			case isBpf && f.Attrs().Handle == 0: // a priority's header line
			case isBpf && strings.HasPrefix(bf.Name, "tcptracer"):
				s.ours = append(s.ours, bf.Name)
			case isBpf:
				s.others = append(s.others, "bpf "+bf.Name)
			default:
				s.others = append(s.others, f.Type())
			}
		}
	}
	qdiscs, _ := h.QdiscList(ref)
	for _, q := range qdiscs {
		s.clsact = s.clsact || q.Type() == "clsact"
	}
	return s
}

// leftovers lists what of tcptracer is still there: its programs anywhere,
// and TC attachments on the bed's interface. The clsact qdisc counts unless
// another tool's filter keeps it (then that filter must still be there).
func (b *cleanBed) leftovers(t *testing.T) []string {
	t.Helper()
	left := ourPrograms(t)
	s := b.state(t)
	left = append(left, s.tcx...)
	left = append(left, s.ours...)
	switch {
	case b.foreign && (!s.clsact || !contains(s.others, "bpf othertool")):
		left = append(left, "another tool's filter is gone: "+s.String())
	case !b.foreign && s.clsact:
		left = append(left, "clsact qdisc")
	}
	return left
}

// requireClean waits for our objects to be gone: the kernel frees a
// program some time after its last reference is closed.
func (b *cleanBed) requireClean(t *testing.T, when string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		left := b.leftovers(t)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still there after %v: %v", when, waitTimeout, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireAttached checks a running tracer is visible, so that a clean
// state afterwards means something.
func (b *cleanBed) requireAttached(t *testing.T, n int) {
	t.Helper()
	s := b.state(t)
	got := len(s.tcx)
	if b.mode == tracer.ModeClsact {
		got = len(s.ours)
	}
	if got != 2*n {
		t.Fatalf("%d tracer(s) running in %s mode: want %d attachments, see %v", n, b.mode, 2*n, s)
	}
}

// addForeignFilter attaches what another tool would: a cls_bpf filter that
// passes everything, on ingress at priority 5, adding the clsact qdisc if
// it is missing. The filter keeps the program; the test's handle goes at
// its end.
func (b *cleanBed) addForeignFilter(t *testing.T) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "othertool", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()}, // TC_ACT_UNSPEC: next filter
	})
	if err != nil {
		t.Fatalf("load the other tool's program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: b.pair.IndexA, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := b.nl.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		t.Fatalf("add clsact qdisc: %v", err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs:  netlink.FilterAttrs{LinkIndex: b.pair.IndexA, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Priority: 5, Protocol: unix.ETH_P_ALL},
		Fd:           prog.FD(),
		Name:         "othertool",
		DirectAction: true,
	}
	if err := b.nl.FilterAdd(f); err != nil {
		t.Fatalf("add the other tool's filter: %v", err)
	}
	b.foreign = true
}

// exchange runs one echo session over the veth, A to B on port 20000.
func (b *cleanBed) exchange(t *testing.T) {
	t.Helper()
	ln, err := b.pair.Listen(b.pair.B, fmt.Sprintf("%s:%d", b.pair.AddrB, echoPort))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- echo.Serve(ctx, ln) }()
	_, err = echo.ClientWith(ctx, b.pair.Dialer(b.pair.A), fmt.Sprintf("%s:%d", b.pair.AddrB, echoPort), []byte("AB"))
	cancel()
	<-served
	if err != nil {
		t.Fatalf("echo exchange: %v", err)
	}
}

// ourPrograms lists the programs of tcptracer that exist right now.
func ourPrograms(t *testing.T) []string {
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
	return found
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// proc is the tcptracer command (the test binary in its cli role).
type proc struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	out    *bufio.Reader
	stderr *bytes.Buffer
	first  string
	lines  chan string // what follows the start line, once pump runs
	pumped bool
	done   chan error
}

// startCLI starts the command in role and waits for its start line.
func startCLI(t *testing.T, role string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), stderr: &bytes.Buffer{}, lines: make(chan string, 1024), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), roleEnv+"="+role)
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdout, err = p.cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start command: %v", err)
	}
	t.Cleanup(p.kill)
	p.out = bufio.NewReader(p.stdout)
	first, err := p.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, `{"type":"start"`) {
		p.kill()
		t.Fatalf("no start line (%v): %.200q; stderr: %s", err, first, p.stderr.String())
	}
	p.first = first
	return p
}

// pump reads the lines that follow into p.lines.
func (p *proc) pump() {
	p.pumped = true
	go func() {
		for {
			l, err := p.out.ReadString('\n')
			if err != nil {
				close(p.lines)
				return
			}
			p.lines <- l
		}
	}()
}

// waitLine waits for a line holding s; pump must run.
func (p *proc) waitLine(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("output ended before a line with %q; stderr: %s", s, p.stderr.String())
			}
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no line with %q within %v", s, waitTimeout)
		}
	}
}

// wait waits for the exit and returns the exit status (-1: killed by a signal).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	go func() {
		if p.pumped {
			for range p.lines {
			}
		} else {
			io.Copy(io.Discard, p.out)
		}
		p.done <- p.cmd.Wait()
	}()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(waitTimeout):
		p.kill()
		t.Fatalf("command did not exit within %v; stderr: %s", waitTimeout, p.stderr.String())
	}
	return 0
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
	}
}
