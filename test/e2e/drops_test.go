package e2e

// Drop tests (issue 10): the kernel's own account of what it dropped, why,
// and what resent it, beside the segments the tracer saw. Each drop comes
// from a fault made in the test's own namespaces; skb:kfree_skb is a
// host-wide tracepoint, so the drop is seen whichever namespace it is in.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"tcptracer/event"
	"tcptracer/internal/echo"
	"tcptracer/internal/fault"
	"tcptracer/internal/netns"
	"tcptracer/timeline"
)

// wantReason is the name the kernel gives a drop reason, or the documented
// fallback where the kernel lacks it: NOT_SPECIFIED for a reason the enum
// does not have, event.NoReason for a tracepoint without the argument.
func wantReason(t *testing.T, name string) string {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("load kernel BTF: %v", err)
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_kfree_skb", &td); err != nil {
		t.Fatalf("find the kfree_skb tracepoint in BTF: %v", err)
	}
	if proto := btf.UnderlyingType(td.Type).(*btf.Pointer).Target.(*btf.FuncProto); len(proto.Params) < 4 {
		return event.NoReason
	}
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		t.Fatalf("find enum skb_drop_reason: %v", err)
	}
	for _, v := range e.Values {
		if v.Name == "SKB_DROP_REASON_"+name {
			return name
		}
	}
	return "NOT_SPECIFIED"
}

// drops lists the drop events of the namespace pair.
func drops(evs []event.Event) []event.Event {
	var out []event.Event
	for _, ev := range evs {
		if ev.Type == event.TypeDrop && (inBed(ev) || netns.PrefixV6.Contains(ev.Saddr) || netns.PrefixV6.Contains(ev.Daddr)) {
			out = append(out, ev)
		}
	}
	return out
}

// The test-only TC program drops the client's AB at B's ingress: the drop
// event names the TC reason, is tied to the wire segment that carried AB on
// A's veth end, and the timeline ties it to the copy and the kernel's
// timeout retransmission that resent it.
func TestDropTCReason(t *testing.T) {
	b := newFaultBed(t)
	noTailLossProbes(t, b)
	d, err := fault.Drop(fault.Spec{Netns: b.pair.B, Iface: b.pair.IfB, Port: echoPort})
	if err != nil {
		t.Fatalf("attach the dropper: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	b.startTracer(t)
	s := runEcho(t, b.r, b.setup())
	c := findConn(t, s.events)
	copies := abCopies(t, connSegments(s.events, c), mustDropped(t, d))
	ds := eventsOf(s.events, c, event.TypeDrop)
	if len(ds) != 1 {
		t.Fatalf("%d drop events on the connection, want 1: %+v", len(ds), ds)
	}
	dr := ds[0]
	if want := wantReason(t, "TC_INGRESS"); dr.Drop.ReasonName != want {
		t.Errorf("drop reason %q, want %q", dr.Drop.ReasonName, want)
	}
	if dr.Seq != copies[0].ev.Seq || dr.Len != 2 || dr.Drop.Symbol == "" {
		t.Errorf("drop seq %d len %d at %q, want seq %d len 2 at a kernel symbol", dr.Seq, dr.Len, dr.Drop.Symbol, copies[0].ev.Seq)
	}
	if ab := segAt(s.events, dr.Drop.Segment); ab == nil || !ab.Wire || ab.Seq != dr.Seq || ab.Len != 2 || ab.Index > copies[1].ev.Index {
		t.Errorf("drop tied to segment #%d (%+v), want the wire record of the first AB", dr.Drop.Segment, ab)
	}
	tl := analyse(t, s.events, c)
	checkRepaired(t, tl, dr, event.CauseRTO)
	checkVerdictOK(t, tl)
	if !strings.Contains(strings.Join(tl.Summary.DropsRepairs, "\n"), "rto retransmission") {
		t.Errorf("summary does not explain the repair: %q", tl.Summary.DropsRepairs)
	}
}

func mustDropped(t *testing.T, d *fault.Dropper) uint32 {
	t.Helper()
	n, seq, err := d.Dropped()
	if err != nil || n != 1 {
		t.Fatalf("dropper dropped %d segments (err %v), want 1", n, err)
	}
	return seq
}

// checkRepaired: the timeline marked the dropped segment, and tied the drop
// to the later copy and to a kernel retransmission of the given cause.
func checkRepaired(t *testing.T, tl *timeline.Conn, dr event.Event, cause string) {
	t.Helper()
	if tl.Summary.DropCount != 1 {
		t.Fatalf("timeline counts %d drops, want 1: %q", tl.Summary.DropCount, tl.Summary.DropsRepairs)
	}
	d := tl.Drops[0]
	if seg := segByIndex(t, tl, dr.Drop.Segment); seg.Dropped != dr.Drop.ReasonName || seg.DropIndex != dr.Index {
		t.Errorf("segment #%d marked dropped %q by #%d, want %q by #%d", seg.Index, seg.Dropped, seg.DropIndex, dr.Drop.ReasonName, dr.Index)
	}
	if d.RepairedBy == 0 || d.RepairedBy <= dr.Index {
		t.Errorf("drop repaired by #%d, want a later segment", d.RepairedBy)
	} else if rep := segByIndex(t, tl, d.RepairedBy); rep.Repairs != dr.Index || rep.Seq != event.Seq(dr.Seq) {
		t.Errorf("repairing segment #%d repairs #%d at seq %d, want #%d at %d", rep.Index, rep.Repairs, rep.Seq, dr.Index, dr.Seq)
	}
	if d.Retransmit == 0 || d.Cause != cause {
		t.Errorf("drop resent by kernel retransmission #%d cause %q, want one with cause %q", d.Retransmit, d.Cause, cause)
	}
	if seg := segByIndex(t, tl, d.RepairedBy); !seg.SenderRetransmit || !seg.Sender.Valid {
		t.Errorf("repairing segment #%d: sender state %v, below snd_nxt %v; want the kernel's account of a retransmission",
			seg.Index, seg.Sender.Valid, seg.SenderRetransmit)
	}
	if tl.Summary.RTOs < 1 && cause == event.CauseRTO {
		t.Errorf("summary counts %d RTOs, want at least 1", tl.Summary.RTOs)
	}
}

// A SYN to a port with no listener: the server's kernel drops it with
// NO_SOCKET and answers with a RST; the drop is tied to the SYN's segment.
func TestDropNoSocket(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) { dropNoSocket(t, v6) })
	}
}

func dropNoSocket(t *testing.T, v6 bool) {
	b := newFaultBed(t)
	addr := b.addr
	if v6 {
		addr = net.JoinHostPort(b.pair.AddrB6.String(), fmt.Sprint(echoPort))
	}
	b.startTracer(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := netns.Dial(ctx, b.pair.A, "tcp", addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a closed port: %v, want connection refused", err)
	}
	b.r.col.waitFor(t, "the SYN's drop", dumpOnTimeout(t, b, func(evs []event.Event) bool { return len(drops(evs)) > 0 }))
	evs, _ := b.finish(t)
	dr := drops(evs)[0]
	if want := wantReason(t, "NO_SOCKET"); dr.Drop.ReasonName != want {
		t.Errorf("drop reason %q, want %q", dr.Drop.ReasonName, want)
	}
	if dr.Flags != event.SYN || dr.Dport != echoPort || (dr.Family == 6) != v6 {
		t.Errorf("dropped %s to port %d, want the SYN to %d", event.Flags(dr.Flags), dr.Dport, echoPort)
	}
	if syn := segAt(evs, dr.Drop.Segment); syn == nil || syn.Flags != event.SYN || syn.Seq != dr.Seq {
		t.Errorf("drop tied to segment #%d (%+v), want the SYN", dr.Drop.Segment, syn)
	}
	// Kernels before 6.2 do not fire tcp_send_reset for a reset that no
	// socket sends (see TestFaultResetRefused).
	if tracesNoSocketReset(t) && len(resets(evs, dr.Conn, event.ResetSent)) == 0 {
		t.Errorf("no reset-sent event for the refused connection")
	}
}

func segAt(evs []event.Event, idx uint64) *event.Event {
	for i := range evs {
		if evs[i].Index == idx && evs[i].Type == event.TypeSegment {
			return &evs[i]
		}
	}
	return nil
}

// inNetns runs a program in one of the pair's namespaces.
func inNetns(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), name, err, out)
	}
	return string(out)
}

// An nftables rule in the server's input hook drops the client's AB once:
// its quota (55 bytes) lets AB's 54-byte IP packet through only after the
// first one is counted. The drop names NETFILTER_DROP and
// is tied to AB's wire record, and the timeline to the timeout
// retransmission that resent AB.
func TestDropNetfilter(t *testing.T) {
	b := newFaultBed(t)
	noTailLossProbes(t, b)
	inNetns(t, b.pair.NameB, "nft", "add table ip tcptracer_test; add chain ip tcptracer_test in { type filter hook input priority 0; }; "+
		fmt.Sprintf("add rule ip tcptracer_test in tcp dport %d tcp flags & (syn|rst) == 0 ip length > 52 quota until 55 bytes drop", echoPort))
	t.Cleanup(func() {
		exec.Command("ip", "netns", "exec", b.pair.NameB, "nft", "delete table ip tcptracer_test").Run()
	})
	ln := b.listen(t)
	srvCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- echo.Serve(srvCtx, ln) }()
	b.startTracer(t)
	cl := b.dial(t)
	if _, err := cl.Write([]byte("AB")); err != nil {
		t.Fatalf("write AB: %v", err)
	}
	b.r.col.waitFor(t, "the drop of AB", dumpOnTimeout(t, b, func(evs []event.Event) bool { return len(drops(evs)) > 0 }))
	readEcho(t, cl)
	cl.Close()
	b.r.col.waitFor(t, "both sockets to close", func(evs []event.Event) bool { return bedCloses(evs) >= 2 })
	stop()
	<-served
	evs, _ := b.finish(t)

	dr := drops(evs)[0]
	if want := wantReason(t, "NETFILTER_DROP"); dr.Drop.ReasonName != want {
		t.Errorf("drop reason %q, want %q", dr.Drop.ReasonName, want)
	}
	if ab := segAt(evs, dr.Drop.Segment); ab == nil || !ab.Wire || ab.Seq != dr.Seq || ab.Len != 2 {
		t.Errorf("drop tied to segment #%d (%+v), want AB's wire record", dr.Drop.Segment, ab)
	}
	tl := analyse(t, evs, dr.Conn)
	checkRepaired(t, tl, dr, event.CauseRTO)
	checkVerdictOK(t, tl)
	t.Logf("%s", strings.Join(tl.Summary.DropsRepairs, "\n"))
}

func readEcho(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "AB" {
		t.Fatalf("read the echo: %q, %v", buf, err)
	}
}

// The sender's state on the last segment the client sent, at a quiescent
// moment, agrees with ss -ti for the same socket: cwnd, srtt (ss prints
// milliseconds with microsecond digits), rto, mss, delivered and the
// retransmission totals.
func TestSenderStateMatchesSS(t *testing.T) {
	b := newFaultBed(t)
	ln := b.listen(t)
	srvCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go echo.Serve(srvCtx, ln)
	b.startTracer(t)
	cl := b.dial(t)
	data := make([]byte, 256<<10)
	go cl.Write(data)
	cl.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(cl, make([]byte, len(data))); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	// The client's last segment (its ACK of the echo) leaves within the
	// delayed-ACK time; nothing arrives for it afterwards.
	time.Sleep(500 * time.Millisecond)
	before := monotonic()
	ss := inNetns(t, b.pair.NameA, "ss", "-tinH", "dst", b.addr)
	port := localPort(cl)
	var last *event.Event
	b.r.col.waitFor(t, "the client's segments", func(evs []event.Event) bool {
		last = lastSent(evs, port)
		return last != nil
	})
	if last.TS > before {
		t.Fatalf("the client sent segment #%d after ss ran: not quiescent", last.Index)
	}
	got := ssFields(t, ss)
	k := &last.Sender
	want := map[string]string{
		"cwnd": fmt.Sprint(k.Cwnd), "mss": fmt.Sprint(k.MSS),
		"rto": fmt.Sprint(float64(k.RTO) / 1000), "rtt": fmt.Sprint(float64(k.SRTT) / 1000),
		"delivered": fmt.Sprint(k.Delivered),
	}
	if k.TotalRetrans != 0 || k.RetransOut != 0 {
		want["retrans"] = fmt.Sprintf("%d/%d", k.RetransOut, k.TotalRetrans)
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("%s: ss says %q, the last segment's sender state %q", f, got[f], w)
		}
	}
	if _, ok := got["retrans"]; ok && want["retrans"] == "" {
		t.Errorf("ss reports retrans %s, the sender state none", got["retrans"])
	}
	t.Logf("ss: %s; last segment #%d sender %+v", strings.TrimSpace(ss), last.Index, *k)
}

func monotonic() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// lastSent is the last TC egress record of the client's socket with its
// sender state.
func lastSent(evs []event.Event, port uint16) *event.Event {
	var last *event.Event
	for i := range evs {
		ev := &evs[i]
		if ev.Type == event.TypeSegment && ev.Point == event.PointTC && ev.Dir == event.Egress && ev.Sport == port && ev.Sender.Valid {
			last = ev
		}
	}
	return last
}

// ssFields reads ss -ti's key:value fields (rtt:srtt/rttvar keeps srtt).
func ssFields(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range strings.Fields(out) {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		if k == "rtt" {
			v, _, _ = strings.Cut(v, "/")
		}
		if _, seen := m[k]; !seen {
			m[k] = v
		}
	}
	if m["cwnd"] == "" {
		t.Fatalf("ss printed no socket: %q", out)
	}
	return m
}

// With tail loss probes on (the default), the lone dropped AB is resent by
// the probe before the retransmission timer fires: the kernel reports the
// resend while the socket is not in recovery or loss, which the tracer
// names a tail loss probe, and ties to the drop.
func TestDropRepairedByTLP(t *testing.T) {
	b := newFaultBed(t)
	d, err := fault.Drop(fault.Spec{Netns: b.pair.B, Iface: b.pair.IfB, Port: echoPort})
	if err != nil {
		t.Fatalf("attach the dropper: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	b.startTracer(t)
	s := runEcho(t, b.r, b.setup())
	mustDropped(t, d)
	c := findConn(t, s.events)
	ds := eventsOf(s.events, c, event.TypeDrop)
	if len(ds) == 0 {
		t.Fatal("no drop event on the connection")
	}
	tl := analyse(t, s.events, c)
	checkRepaired(t, tl, ds[0], event.CauseTLP)
	if tl.Summary.RTOs != 0 {
		t.Errorf("%d RTOs, want none: the probe repaired the loss", tl.Summary.RTOs)
	}
}

// One segment of a bulk transfer dropped: the segments after it come back
// SACKed, the sender enters recovery and resends the hole at once. The
// retransmission is a fast one, tied to the drop.
func TestDropRepairedByFastRetransmit(t *testing.T) {
	b := newFaultBed(t)
	d, err := fault.Drop(fault.Spec{Netns: b.pair.B, Iface: b.pair.IfB, Port: echoPort})
	if err != nil {
		t.Fatalf("attach the dropper: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	ln := b.listen(t)
	srvCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go echo.Serve(srvCtx, ln)
	b.startTracer(t)
	cl := b.dial(t)
	// Small writes without Nagle, each its own segment, so the one dropped
	// is followed by many that the receiver SACKs.
	cl.SetNoDelay(true)
	go func() {
		for i := 0; i < 64; i++ {
			if _, err := cl.Write(make([]byte, 1000)); err != nil {
				return
			}
		}
	}()
	cl.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(cl, make([]byte, 64000)); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	cl.Close()
	b.r.col.waitFor(t, "both sockets to close", func(evs []event.Event) bool { return bedCloses(evs) >= 2 })
	evs, _ := b.finish(t)
	mustDropped(t, d)
	ds := drops(evs)
	if len(ds) == 0 {
		t.Fatal("no drop event")
	}
	tl := analyse(t, evs, ds[0].Conn)
	// Under emulation a spurious resend may follow, which the receiver
	// drops as TCP_OLD_DATA: only the test's own drop is counted here.
	n := tl.Summary.DropCount
	for _, d := range tl.Drops {
		if d.Reason == "TCP_OLD_DATA" {
			n--
		}
	}
	if n != 1 || tl.Drops[0].Cause != event.CauseFast || tl.Drops[0].RepairedBy == 0 {
		t.Errorf("drops %d, first repaired by #%d cause %q; want one, repaired by a fast retransmission: %q",
			tl.Summary.DropCount, tl.Drops[0].RepairedBy, tl.Drops[0].Cause, tl.Summary.DropsRepairs)
	}
	if st := tl.Summary.Senders[timeline.Client]; !tl.Summary.SenderKnown[timeline.Client] || st.CATime[3] == 0 {
		t.Errorf("client sender stats %+v: want time in recovery", st)
	}
	checkVerdictOK(t, tl)
}

// A listener with a backlog of 1 that never accepts. The clients'
// handshake ACKs are held back (nftables in the client's output hook) until
// every SYN was answered: the first from the SYN queue, the others with
// SYN cookies, since a backlog of 1 fills that queue too. When the clients
// then send, the first two become the accept queue's two sockets (it is
// full beyond its backlog) and the server's kernel drops the data of the
// other two, unable to make them a socket: on 6.18 as NO_SOCKET in
// cookie_v4_check. Each drop is tied to the segment it freed; the held
// ACKs are drops too, NETFILTER_DROP at the client with no segment seen.
func TestDropListenOverflow(t *testing.T) {
	b := newFaultBed(t)
	if err := netns.Do(b.pair.B, func() error { return listenNoAccept(t, b.addr, 1) }); err != nil {
		t.Fatalf("listen with backlog 1: %v", err)
	}
	inNetns(t, b.pair.NameA, "nft", "add table ip tcptracer_test; add chain ip tcptracer_test out { type filter hook output priority 0; }; "+
		fmt.Sprintf("add rule ip tcptracer_test out tcp dport %d tcp flags == ack ip length <= 52 drop", echoPort))
	t.Cleanup(func() {
		exec.Command("ip", "netns", "exec", b.pair.NameA, "nft", "delete table ip tcptracer_test").Run()
	})
	b.startTracer(t)
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		c, err := netns.Dial(ctx, b.pair.A, "tcp", b.addr)
		cancel()
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	inNetns(t, b.pair.NameA, "nft", "delete table ip tcptracer_test")
	for _, c := range conns {
		c.Write([]byte("AB"))
	}
	b.r.col.waitFor(t, "drops at the full listener", dumpOnTimeout(t, b, func(evs []event.Event) bool {
		n := 0
		for _, dr := range drops(evs) {
			if dr.Dport == echoPort && dr.Len == 2 {
				n++
			}
		}
		return n >= 2
	}))
	evs, _ := b.finish(t)
	over := map[uint64]bool{}
	for _, dr := range drops(evs) {
		t.Logf("drop %s seq %d len %d: %s at %s (segment #%d)", event.Flags(dr.Flags), dr.Seq, dr.Len, dr.Drop.ReasonName, dr.Drop.Symbol, dr.Drop.Segment)
		switch {
		case dr.Dport != echoPort:
		case dr.Len == 2:
			over[dr.Conn] = true
			if seg := segAt(evs, dr.Drop.Segment); seg == nil || seg.Seq != dr.Seq || dr.Drop.ReasonName == "" || dr.Drop.Symbol == "" {
				t.Errorf("overflow drop of conn %d: segment #%d (%+v), reason %q at %q; want its segment, a reason and a place",
					dr.Conn, dr.Drop.Segment, seg, dr.Drop.ReasonName, dr.Drop.Symbol)
			}
		case dr.Drop.ReasonName != wantReason(t, "NETFILTER_DROP") || dr.Drop.Segment != 0:
			t.Errorf("held ACK drop: %q, segment #%d; want NETFILTER_DROP before TC saw it", dr.Drop.ReasonName, dr.Drop.Segment)
		}
	}
	if len(over) != 2 {
		t.Errorf("%d connections' data dropped at the full listener, want 2 (4 connections, room for 2)", len(over))
	}
}

// listenNoAccept opens a listener with the given backlog in the current
// namespace and never accepts; it is closed at cleanup.
func listenNoAccept(t *testing.T, addr string, backlog int) error {
	ap, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	sa := &syscall.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := syscall.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return syscall.Listen(fd, backlog)
}
