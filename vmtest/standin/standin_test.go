//go:build vmtest_standin

// Package standin stands in for ./test/e2e so the vmtest harness can be
// tested on its own (VMTEST_STANDIN=1 vmtest/run.sh). It speaks the same
// contract: it honours TCPTRACER_ATTACH and TCPTRACER_TC, fails instead of
// skipping under CI, and logs one "MATRIX attach= tc= events=" line per test.
// Its programs only count how often they run, which is enough to prove the
// forced attach modes work on the guest kernel.
package standin

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const echoAddr = "127.0.0.1:20000"

func TestEcho(t *testing.T) {
	requirePrivileged(t)
	attach, tc := os.Getenv("TCPTRACER_ATTACH"), os.Getenv("TCPTRACER_TC")
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	t.Logf("kernel %s, attach=%q tc=%q oracle=%q", unix.ByteSliceToString(uts.Release[:]),
		attach, tc, os.Getenv("TCPTRACER_ORACLE"))

	hookHits := newCounter(t)
	attachHook(t, attach, hookHits)
	tcHits := newCounter(t)
	attachTC(t, tc, tcHits)

	packets := echoUnderOracle(t)
	hooks, segs := hookHits.value(t), tcHits.value(t)
	t.Logf("hook runs %d, tc runs %d, tcpdump packets %d", hooks, segs, packets)
	if hooks == 0 || segs == 0 {
		t.Errorf("programs did not run: hook %d, tc %d", hooks, segs)
	}
	if packets >= 0 && segs < uint64(packets) {
		t.Errorf("tc saw %d segments, tcpdump %d", segs, packets)
	}
	t.Logf("MATRIX attach=%s tc=%s events=%d", attach, tc, hooks+segs)
}

// TestCleanup runs after TestEcho: nothing it attached may be left on lo.
func TestCleanup(t *testing.T) {
	requirePrivileged(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo: %v", err)
	}
	qdiscs, err := netlink.QdiscList(lo)
	if err != nil {
		t.Fatalf("list qdiscs on lo: %v", err)
	}
	for _, q := range qdiscs {
		if q.Type() == "clsact" {
			t.Errorf("clsact qdisc left on lo")
		}
	}
	t.Logf("MATRIX attach=%s tc=%s events=0", os.Getenv("TCPTRACER_ATTACH"), os.Getenv("TCPTRACER_TC"))
}

func requirePrivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root (CI is set, so not skipping)")
	}
	t.Skip("needs root")
}

// counter is a one-slot array map the programs increment.
type counter struct{ m *ebpf.Map }

func newCounter(t *testing.T) counter {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create counter map: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return counter{m}
}

func (c counter) value(t *testing.T) uint64 {
	var v uint64
	if err := c.m.Lookup(uint32(0), &v); err != nil {
		t.Fatalf("read counter: %v", err)
	}
	return v
}

// program loads a program of the given kind that adds one to c and returns
// ret (-1 is TC_ACT_UNSPEC / TCX_NEXT: let the packet through).
func program(t *testing.T, spec *ebpf.ProgramSpec, c counter, ret int32) *ebpf.Program {
	t.Helper()
	spec.License = "GPL"
	spec.Instructions = asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, c.m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, ret).WithSymbol("out"),
		asm.Return(),
	}
	p, err := ebpf.NewProgram(spec)
	if err != nil {
		t.Fatalf("load %s program: %v", spec.Type, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// attachHook attaches to the connect path the way the tracer's mode would.
func attachHook(t *testing.T, mode string, c counter) {
	t.Helper()
	var l link.Link
	var err error
	switch mode {
	case "fentry":
		p := program(t, &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: "tcp_v4_connect"}, c, 0)
		l, err = link.AttachTracing(link.TracingOptions{Program: p})
	case "kprobe":
		p := program(t, &ebpf.ProgramSpec{Type: ebpf.Kprobe}, c, 0)
		l, err = link.Kprobe("tcp_v4_connect", p, nil)
	case "tracepoint":
		p := program(t, &ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "inet_sock_set_state"}, c, 0)
		l, err = link.AttachTracing(link.TracingOptions{Program: p})
	default:
		t.Fatalf("TCPTRACER_ATTACH=%q: want fentry, kprobe or tracepoint", mode)
	}
	if err != nil {
		t.Fatalf("attach %s: %v", mode, err)
	}
	t.Cleanup(func() { l.Close() })
}

// attachTC attaches a counting classifier to lo ingress.
func attachTC(t *testing.T, mode string, c counter) {
	t.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo: %v", err)
	}
	p := program(t, &ebpf.ProgramSpec{Type: ebpf.SchedCLS}, c, -1)
	switch mode {
	case "tcx":
		l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Attrs().Index, Program: p, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			t.Fatalf("attach tcx ingress to lo: %v", err)
		}
		t.Cleanup(func() { l.Close() })
	case "clsact":
		attachClsact(t, lo, p)
	default:
		t.Fatalf("TCPTRACER_TC=%q: want tcx or clsact", mode)
	}
}

func attachClsact(t *testing.T, lo netlink.Link, p *ebpf.Program) {
	t.Helper()
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscAdd(qdisc); err != nil {
		t.Fatalf("add clsact qdisc to lo: %v", err)
	}
	t.Cleanup(func() {
		if err := netlink.QdiscDel(qdisc); err != nil {
			t.Errorf("delete clsact qdisc from lo: %v", err)
		}
	})
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: lo.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 1},
		Fd: p.FD(), Name: "standin", DirectAction: true,
	}
	if err := netlink.FilterAdd(filter); err != nil {
		t.Fatalf("add bpf filter to lo ingress: %v", err)
	}
}

// echoUnderOracle runs the reference echo scenario on loopback while tcpdump
// watches port 20000, and returns the packets tcpdump printed (-1 when the
// oracle is off).
func echoUnderOracle(t *testing.T) int {
	t.Helper()
	if os.Getenv("TCPTRACER_ORACLE") == "off" {
		echo(t)
		return -1
	}
	cmd := exec.Command("tcpdump", "-i", "lo", "-n", "-l", "tcp", "port", "20000")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	waitListening(t, stderr)
	echo(t)
	time.Sleep(300 * time.Millisecond) // let tcpdump print the last segments
	_ = cmd.Process.Signal(syscall.SIGINT)
	out, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("tcpdump: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 8 {
		t.Errorf("tcpdump saw %d packets, want at least 8:\n%s", len(lines), out)
	}
	return len(lines)
}

// waitListening returns once tcpdump has said it captures.
func waitListening(t *testing.T, stderr io.Reader) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				done <- nil
				io.Copy(io.Discard, stderr)
				return
			}
			t.Logf("tcpdump: %s", sc.Text())
		}
		done <- errors.New("tcpdump exited before listening")
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tcpdump not listening after 20s")
	}
}

// echo: connect, send "AB", read the echo, close both sides.
func echo(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp4", echoAddr)
	if err != nil {
		t.Fatalf("listen %s: %v", echoAddr, err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp4", echoAddr)
	if err != nil {
		t.Fatalf("dial %s: %v", echoAddr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("AB")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "AB" {
		t.Fatalf("read echo: %q, %v", buf, err)
	}
}
