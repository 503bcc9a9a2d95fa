package conn

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"tcptracer/event"
)

var (
	cli  = netip.MustParseAddrPort("127.0.0.1:40000")
	srv  = netip.MustParseAddrPort("127.0.0.1:20000")
	anyV = netip.MustParseAddrPort("0.0.0.0:0")
)

const (
	lo  = 1
	ack = event.ACK
	syn = event.SYN
	fin = event.FIN
	psh = event.PSH
	rst = event.RST
	cwr = event.CWR
)

func ifname(i uint32) string {
	if i == lo {
		return "lo"
	}
	return fmt.Sprintf("if%d", i)
}

func tuple(ev *event.Event, from, to netip.AddrPort) {
	ev.Family = 4
	if from.Addr().Is6() {
		ev.Family = 6
	}
	ev.Saddr, ev.Sport, ev.Daddr, ev.Dport = from.Addr(), from.Port(), to.Addr(), to.Port()
}

func seg(ifindex uint32, dir event.Dir, from, to netip.AddrPort, seq, ackN uint32, flags uint16, n uint32) event.Event {
	ev := event.Event{Type: event.TypeSegment, Ifindex: ifindex, Dir: dir, Seq: seq, Ack: ackN, Flags: flags, Len: n}
	tuple(&ev, from, to)
	return ev
}

// wire is one segment on lo: the egress observation, then its ingress twin.
func wire(from, to netip.AddrPort, seq, ackN uint32, flags uint16, n uint32) []event.Event {
	return []event.Event{
		seg(lo, event.Egress, from, to, seq, ackN, flags, n),
		seg(lo, event.Ingress, from, to, seq, ackN, flags, n),
	}
}

// egress is one segment seen leaving a non-loopback interface only.
func egress(from, to netip.AddrPort, seq, ackN uint32, flags uint16, n uint32) []event.Event {
	return []event.Event{seg(2, event.Egress, from, to, seq, ackN, flags, n)}
}

func sock(typ event.Type, local, remote netip.AddrPort, cookie uint64) event.Event {
	ev := event.Event{Type: typ, Cookie: cookie}
	tuple(&ev, local, remote)
	return ev
}

func owned(ev event.Event, pid uint32, comm string, src event.PIDSource) event.Event {
	ev.PID, ev.TGID, ev.UID, ev.Comm, ev.PIDSrc = pid, pid, 1000, comm, src
	return ev
}

func connectEv(local, remote netip.AddrPort, cookie uint64, isn uint32, pid uint32, comm string) []event.Event {
	ev := owned(sock(event.TypeConnect, local, remote, cookie), pid, comm, event.PIDOwner)
	ev.ISN = isn
	return []event.Event{ev}
}

func stateEv(local, remote netip.AddrPort, cookie uint64, from, to uint8) event.Event {
	ev := sock(event.TypeState, local, remote, cookie)
	ev.OldState, ev.NewState = from, to
	return ev
}

func one(evs ...event.Event) []event.Event { return evs }

func echoSession(c, s netip.AddrPort, ci, si uint32) [][]event.Event {
	return [][]event.Event{
		wire(c, s, ci, 0, syn, 0),
		wire(s, c, si, ci+1, syn|ack, 0),
		wire(c, s, ci+1, si+1, ack, 0),
		wire(c, s, ci+1, si+1, psh|ack, 2),
		wire(s, c, si+1, ci+3, ack, 0),
		wire(s, c, si+1, ci+3, psh|ack, 2),
		wire(c, s, ci+3, si+3, ack, 0),
		wire(c, s, ci+3, si+3, fin|ack, 0),
		wire(s, c, si+3, ci+4, ack, 0),
		wire(s, c, si+3, ci+4, fin|ack, 0),
		wire(c, s, ci+4, si+4, ack, 0),
	}
}

// describe renders the annotations a test checks, one event per line.
func describe(ev *event.Event) string {
	rel := func(has bool, v uint32) string {
		if !has {
			return "-"
		}
		return fmt.Sprint(v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d c%d %s", ev.Index, ev.Conn, ev.Type)
	switch ev.Type {
	case event.TypeSegment, event.TypeRcvState, event.TypeRetransmit:
		fmt.Fprintf(&b, " seq=%s ack=%s", rel(ev.HasSeqRel, ev.SeqRel), rel(ev.HasAckRel, ev.AckRel))
		if ev.RelDerived {
			b.WriteString(" derived")
		}
	}
	if ev.Type == event.TypeSegment {
		fmt.Fprintf(&b, " %s", ev.Iface)
		if ev.TwinOf != 0 {
			fmt.Fprintf(&b, " twin=%d", ev.TwinOf)
		}
		if ev.PIDSrc == event.PIDOwner {
			fmt.Fprintf(&b, " pid=%d/%s", ev.PID, ev.Comm)
		}
	}
	return b.String()
}

func run(t *testing.T, tr *Tracker, groups [][]event.Event) []string {
	t.Helper()
	var got []string
	for _, g := range groups {
		for i := range g {
			ev := g[i]
			tr.Annotate(&ev)
			got = append(got, describe(&ev))
		}
	}
	return got
}

func concat(parts ...[][]event.Event) [][]event.Event {
	var all [][]event.Event
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func TestAnnotate(t *testing.T) {
	other := netip.MustParseAddrPort("127.0.0.1:40001")
	v6c := netip.MustParseAddrPort("[::ffff:127.0.0.1]:40000")
	v6s := netip.MustParseAddrPort("[::ffff:127.0.0.1]:20000")
	noPort := netip.AddrPortFrom(cli.Addr(), 0)
	start := []event.Event{{Type: event.TypeStart}}
	lost := []event.Event{{Type: event.TypeLost, Count: 3}}

	tests := []struct {
		name   string
		events [][]event.Event
		want   []string
	}{{
		name:   "echo session on lo",
		events: concat([][]event.Event{start}, echoSession(cli, srv, 1000, 5000), [][]event.Event{lost}),
		want: []string{
			"1 c0 start",
			"2 c1 segment seq=0 ack=- lo", "3 c1 segment seq=0 ack=- lo twin=2",
			"4 c1 segment seq=0 ack=1 lo", "5 c1 segment seq=0 ack=1 lo twin=4",
			"6 c1 segment seq=1 ack=1 lo", "7 c1 segment seq=1 ack=1 lo twin=6",
			"8 c1 segment seq=1 ack=1 lo", "9 c1 segment seq=1 ack=1 lo twin=8",
			"10 c1 segment seq=1 ack=3 lo", "11 c1 segment seq=1 ack=3 lo twin=10",
			"12 c1 segment seq=1 ack=3 lo", "13 c1 segment seq=1 ack=3 lo twin=12",
			"14 c1 segment seq=3 ack=3 lo", "15 c1 segment seq=3 ack=3 lo twin=14",
			"16 c1 segment seq=3 ack=3 lo", "17 c1 segment seq=3 ack=3 lo twin=16",
			"18 c1 segment seq=3 ack=4 lo", "19 c1 segment seq=3 ack=4 lo twin=18",
			"20 c1 segment seq=3 ack=4 lo", "21 c1 segment seq=3 ack=4 lo twin=20",
			"22 c1 segment seq=4 ack=4 lo", "23 c1 segment seq=4 ack=4 lo twin=22",
			"24 c0 lost",
		},
	}, {
		name: "new SYN after both FINs acked starts a new connection",
		events: concat(echoSession(cli, srv, 1000, 5000)[9:], // only the tail: both FINs
			[][]event.Event{wire(cli, srv, 1003, 5003, fin|ack, 0)},
			[][]event.Event{wire(srv, cli, 5004, 1004, ack, 0)},
			[][]event.Event{wire(cli, srv, 1000, 0, syn, 0)}),
		want: []string{
			"1 c1 segment seq=1 ack=1 derived lo",
			"2 c1 segment seq=1 ack=1 derived lo twin=1",
			"3 c1 segment seq=1 ack=2 derived lo",
			"4 c1 segment seq=1 ack=2 derived lo twin=3",
			"5 c1 segment seq=0 ack=1 derived lo",
			"6 c1 segment seq=0 ack=1 derived lo twin=5",
			"7 c1 segment seq=2 ack=1 derived lo",
			"8 c1 segment seq=2 ack=1 derived lo twin=7",
			"9 c2 segment seq=0 ack=- lo",
			"10 c2 segment seq=0 ack=- lo twin=9",
		},
	}, {
		name: "port reuse: SYN with another ISN on a live tuple",
		events: [][]event.Event{
			wire(cli, srv, 1000, 0, syn, 0),
			wire(cli, srv, 1000, 0, syn, 0), // retransmitted SYN: same connection
			wire(srv, cli, 5000, 1001, syn|ack, 0),
			wire(cli, srv, 7000, 0, syn, 0),
			wire(srv, cli, 9000, 7001, syn|ack, 0),
		},
		want: []string{
			"1 c1 segment seq=0 ack=- lo", "2 c1 segment seq=0 ack=- lo twin=1",
			"3 c1 segment seq=0 ack=- lo", "4 c1 segment seq=0 ack=- lo twin=3",
			"5 c1 segment seq=0 ack=1 lo", "6 c1 segment seq=0 ack=1 lo twin=5",
			"7 c2 segment seq=0 ack=- lo", "8 c2 segment seq=0 ack=- lo twin=7",
			"9 c2 segment seq=0 ack=1 lo", "10 c2 segment seq=0 ack=1 lo twin=9",
		},
	}, {
		name: "mid-connection start has derived relative numbers until a new SYN",
		events: [][]event.Event{
			wire(cli, srv, 123456, 654321, psh|ack, 2),
			wire(srv, cli, 654321, 123458, ack, 0),
			wire(cli, srv, 1000, 0, syn, 0),
		},
		want: []string{
			"1 c1 segment seq=1 ack=1 derived lo",
			"2 c1 segment seq=1 ack=1 derived lo twin=1",
			"3 c1 segment seq=1 ack=3 derived lo",
			"4 c1 segment seq=1 ack=3 derived lo twin=3",
			"5 c2 segment seq=0 ack=- lo",
			"6 c2 segment seq=0 ack=- lo twin=5",
		},
	}, {
		name: "RST ends the connection",
		events: [][]event.Event{
			egress(cli, srv, 1000, 0, syn, 0),
			egress(srv, cli, 0, 1001, rst|ack, 0),
			egress(cli, srv, 1000, 0, syn, 0),
		},
		want: []string{
			"1 c1 segment seq=0 ack=- if2",
			"2 c1 segment seq=1 ack=1 derived if2",
			"3 c2 segment seq=0 ack=- if2",
		},
	}, {
		name: "both local sockets CLOSE end the connection",
		events: [][]event.Event{
			egress(cli, srv, 1000, 0, syn, 0),
			one(stateEv(srv, cli, 0, 3, 1)),
			one(stateEv(cli, srv, 0, 9, 7)),
			egress(cli, srv, 1000, 0, syn, 0), // same ISN: still the live connection
			one(stateEv(srv, cli, 0, 6, 7)),
			egress(cli, srv, 1001, 1, ack, 0),
			egress(cli, srv, 1000, 0, syn, 0),
		},
		want: []string{
			"1 c1 segment seq=0 ack=- if2",
			"2 c1 state",
			"3 c1 state",
			"4 c1 segment seq=0 ack=- if2",
			"5 c1 state",
			"6 c1 segment seq=1 ack=1 derived if2",
			"7 c2 segment seq=0 ack=- if2",
		},
	}, {
		name: "the only local socket going to CLOSE ends the connection",
		events: [][]event.Event{
			egress(cli, srv, 1000, 0, syn, 0),
			one(stateEv(cli, srv, 0, 2, 7)),
			egress(cli, srv, 1000, 0, syn, 0),
		},
		want: []string{
			"1 c1 segment seq=0 ack=- if2",
			"2 c1 state",
			"3 c2 segment seq=0 ack=- if2",
		},
	}, {
		name: "a listening socket's cookie does not join connections",
		events: [][]event.Event{
			one(listenRcv(srv, cli, 55, 1000)),
			one(listenRcv(srv, other, 55, 3000)),
			egress(srv, other, 7000, 3001, syn|ack, 0),
		},
		want: []string{
			"1 c1 rcv_state seq=0 ack=-",
			"2 c2 rcv_state seq=0 ack=-",
			"3 c2 segment seq=0 ack=1 if2",
		},
	}, {
		name: "veth: egress and ingress on different interfaces are not duplicates",
		events: [][]event.Event{{
			seg(5, event.Egress, cli, srv, 1000, 0, syn, 0),
			seg(6, event.Ingress, cli, srv, 1000, 0, syn, 0),
			seg(6, event.Egress, srv, cli, 5000, 1001, syn|ack, 0),
			seg(5, event.Ingress, srv, cli, 5000, 1001, syn|ack, 0),
		}},
		want: []string{
			"1 c1 segment seq=0 ack=- if5",
			"2 c1 segment seq=0 ack=- if6",
			"3 c1 segment seq=0 ack=1 if6",
			"4 c1 segment seq=0 ack=1 if5",
		},
	}, {
		name: "loopback twin found out of order, each consumed once",
		events: [][]event.Event{{
			seg(lo, event.Egress, cli, srv, 1, 1, ack, 10),
			seg(lo, event.Egress, cli, srv, 11, 1, ack, 10),
			seg(lo, event.Egress, cli, srv, 1, 1, ack, 10), // retransmission, egress again
			seg(lo, event.Ingress, cli, srv, 1, 1, ack, 10),
			seg(lo, event.Ingress, cli, srv, 11, 1, ack, 10),
			seg(lo, event.Ingress, cli, srv, 1, 1, ack, 10),
			seg(lo, event.Ingress, cli, srv, 1, 1, ack, 10), // no egress left to match
		}},
		want: []string{
			"1 c1 segment seq=1 ack=1 derived lo",
			"2 c1 segment seq=11 ack=1 derived lo",
			"3 c1 segment seq=1 ack=1 derived lo",
			"4 c1 segment seq=1 ack=1 derived lo twin=1",
			"5 c1 segment seq=11 ack=1 derived lo twin=2",
			"6 c1 segment seq=1 ack=1 derived lo twin=3",
			"7 c1 segment seq=1 ack=1 derived lo",
		},
	}, {
		name: "cookie: SYN_SENT before the port is chosen, then a dual-stack view",
		events: [][]event.Event{
			one(owned(stateEv(noPort, srv, 77, 7, 2), 42, "client", event.PIDOwner)),
			egress(cli, srv, 1000, 0, syn, 0),
			connectEv(cli, srv, 77, 1000, 42, "client"),
			one(owned(stateEv(v6c, v6s, 77, 2, 1), 0, "", event.PIDCurrent)),
			one(retransmit(v6c, v6s, 77, 1001)),
			egress(srv, cli, 5000, 1001, syn|ack, 0),
			one(stateEv(anyV, anyV, 88, 7, 10)), // a listening socket is no connection
		},
		want: []string{
			"1 c1 state",
			"2 c1 segment seq=0 ack=- if2 pid=42/client",
			"3 c1 connect",
			"4 c1 state",
			"5 c1 retransmit seq=1 ack=-",
			"6 c1 segment seq=0 ack=1 if2",
			"7 c0 state",
		},
	}, {
		name: "cookie: a connect record without cookie before the SYN adopts the pending socket",
		events: [][]event.Event{
			one(owned(stateEv(noPort, srv, 77, 7, 2), 42, "client", event.PIDOwner)),
			connectEv(cli, srv, 0, 1000, 42, "client"),
			egress(cli, srv, 1000, 0, syn, 0),
			one(stateEv(cli, srv, 77, 2, 1)),
		},
		want: []string{
			"1 c1 state",
			"2 c1 connect",
			"3 c1 segment seq=0 ack=- if2 pid=42/client",
			"4 c1 state",
		},
	}, {
		name: "cookie: pending socket not adopted by its SYN merges into the SYN's connection",
		events: [][]event.Event{
			one(owned(stateEv(netip.MustParseAddrPort("0.0.0.0:0"), srv, 9, 7, 2), 42, "client", event.PIDOwner)),
			egress(cli, srv, 1000, 0, syn, 0),
			one(retransmit(cli, srv, 9, 1000)),
			one(stateEv(noPort, srv, 9, 2, 1)),
			egress(cli, srv, 1001, 1, ack, 0),
		},
		want: []string{
			"1 c1 state",
			"2 c2 segment seq=0 ack=- if2",
			"3 c2 retransmit seq=0 ack=-",
			"4 c2 state",
			"5 c2 segment seq=1 ack=1 derived if2 pid=42/client",
		},
	}, {
		name: "connect ISN gives relative numbers without the SYN",
		events: [][]event.Event{
			connectEv(cli, srv, 0, 1000, 42, "client"),
			egress(cli, srv, 1001, 777, ack, 0),
			egress(srv, cli, 777, 1003, ack, 0),
		},
		want: []string{
			"1 c1 connect",
			"2 c1 segment seq=1 ack=1 derived if2 pid=42/client",
			"3 c1 segment seq=1 ack=3 derived if2",
		},
	}, {
		name: "owner attribution follows the local socket of each observation",
		events: [][]event.Event{
			wire(cli, srv, 1000, 0, syn, 0),
			connectEv(cli, srv, 0, 1000, 100, "client"),
			one(owned(stateEv(srv, cli, 0, 3, 1), 9, "ksoftirqd/0", event.PIDCurrent)),
			wire(srv, cli, 5000, 1001, syn|ack, 0),
			one(owned(stateEv(srv, cli, 0, 1, 8), 200, "server", event.PIDOwner)),
			wire(srv, cli, 5001, 1001, psh|ack, 2),
		},
		want: []string{
			"1 c1 segment seq=0 ack=- lo", "2 c1 segment seq=0 ack=- lo twin=1",
			"3 c1 connect",
			"4 c1 state",
			"5 c1 segment seq=0 ack=1 lo", "6 c1 segment seq=0 ack=1 lo twin=5 pid=100/client",
			"7 c1 state",
			"8 c1 segment seq=1 ack=1 lo pid=200/server", "9 c1 segment seq=1 ack=1 lo twin=8 pid=100/client",
		},
	}, {
		name: "rcv_state numbers are relative to the remote sender",
		events: [][]event.Event{
			egress(cli, srv, 1000, 0, syn, 0),
			egress(srv, cli, 5000, 1001, syn|ack, 0),
			one(rcvState(cli, srv, 5000, 1001, syn|ack)),
			one(rcvState(srv, cli, 1001, 5001, ack)),
		},
		want: []string{
			"1 c1 segment seq=0 ack=- if2",
			"2 c1 segment seq=0 ack=1 if2",
			"3 c1 rcv_state seq=0 ack=1",
			"4 c1 rcv_state seq=1 ack=1",
		},
	}, {
		name: "other client port is another connection",
		events: [][]event.Event{
			egress(cli, srv, 1000, 0, syn, 0),
			egress(other, srv, 3000, 0, syn, 0),
			egress(srv, cli, 5000, 1001, syn|ack, 0),
		},
		want: []string{
			"1 c1 segment seq=0 ack=- if2",
			"2 c2 segment seq=0 ack=- if2",
			"3 c1 segment seq=0 ack=1 if2",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, NewTracker(ifname), tt.events)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("annotations differ\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func retransmit(local, remote netip.AddrPort, cookie uint64, seq uint32) event.Event {
	ev := sock(event.TypeRetransmit, local, remote, cookie)
	ev.Seq = seq
	return ev
}

// listenRcv is a SYN handled by a listening socket, reported with the
// listener's cookie and the segment's tuple.
func listenRcv(local, remote netip.AddrPort, cookie uint64, seq uint32) event.Event {
	ev := rcvState(local, remote, seq, 0, syn)
	ev.Cookie, ev.OldState = cookie, 10
	return ev
}

func rcvState(local, remote netip.AddrPort, seq, ackN uint32, flags uint16) event.Event {
	ev := sock(event.TypeRcvState, local, remote, 0)
	ev.Seq, ev.Ack, ev.Flags = seq, ackN, flags
	return ev
}

func TestGracePeriodForgetsEndedConnection(t *testing.T) {
	tr := NewTracker(ifname)
	evs := egress(cli, srv, 1000, 0, syn, 0)
	evs = append(evs, egress(srv, cli, 0, 1001, rst|ack, 0)...)
	late := egress(cli, srv, 1001, 0, ack, 0)[0]
	for i := range evs {
		evs[i].TS = 1e9
		tr.Annotate(&evs[i])
	}
	late.TS = 1e9 + GracePeriod/2
	tr.Annotate(&late)
	if late.Conn != 1 {
		t.Fatalf("segment within the grace period: conn %d, want 1", late.Conn)
	}
	late.TS = 1e9 + GracePeriod + 1
	tr.Annotate(&late)
	if late.Conn != 2 {
		t.Fatalf("segment after the grace period: conn %d, want 2 (a new connection)", late.Conn)
	}
	if tr.n != 1 || len(tr.byTuple) != 1 {
		t.Fatalf("after expiry: %d conns, %d tuples; want 1, 1", tr.n, len(tr.byTuple))
	}
}

func TestCapEvictsLeastRecentlyActive(t *testing.T) {
	tr := NewTracker(nil)
	tr.maxConns = 2
	port := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(cli.Addr(), p) }
	ids := func(ps ...uint16) []uint64 {
		var out []uint64
		for _, p := range ps {
			ev := egress(port(p), srv, 1, 1, ack, 0)[0]
			ev.Cookie = uint64(p)
			tr.Annotate(&ev)
			out = append(out, ev.Conn)
		}
		return out
	}
	// 1 and 2 fill the table; touching 1 makes 2 the oldest; 3 evicts it.
	got := fmt.Sprint(ids(1, 2, 1, 3, 1, 2))
	if want := "[1 2 1 3 1 4]"; got != want {
		t.Fatalf("conn ids %s, want %s", got, want)
	}
	if tr.n != 2 || len(tr.byTuple) != 2 || len(tr.byCookie) != 2 {
		t.Fatalf("bounded state: %d conns, %d tuples, %d cookies; want 2 each", tr.n, len(tr.byTuple), len(tr.byCookie))
	}
}

func TestIfnameCalledOncePerIndex(t *testing.T) {
	calls := 0
	tr := NewTracker(func(i uint32) string { calls++; return ifname(i) })
	for range 3 {
		for _, ev := range wire(cli, srv, 1, 1, ack, 0) {
			tr.Annotate(&ev)
			if ev.Iface != "lo" {
				t.Fatalf("iface %q, want lo", ev.Iface)
			}
		}
	}
	if calls != 1 {
		t.Fatalf("ifname called %d times, want 1", calls)
	}
}

func TestAnnotateKnownSegmentDoesNotAllocate(t *testing.T) {
	tr := NewTracker(ifname)
	for _, g := range echoSession(cli, srv, 1000, 5000)[:4] {
		for i := range g {
			tr.Annotate(&g[i])
		}
	}
	evs := wire(cli, srv, 1003, 5001, psh|ack, 100)
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range evs {
			evs[i].Seq += 100
			tr.Annotate(&evs[i])
		}
	})
	if allocs != 0 {
		t.Fatalf("Annotate allocates %.1f times per segment pair, want 0", allocs)
	}
	if evs[1].TwinOf != evs[0].Index || !evs[1].Wire || evs[0].Wire || evs[1].SeqRel != evs[1].Seq-1000 {
		t.Fatalf("benchmark path lost its annotations: %+v", evs[1])
	}
}

func BenchmarkAnnotateKnown(b *testing.B) {
	tr := NewTracker(ifname)
	for _, g := range echoSession(cli, srv, 1000, 5000)[:4] {
		for i := range g {
			tr.Annotate(&g[i])
		}
	}
	evs := wire(cli, srv, 1003, 5001, psh|ack, 100)
	b.ReportAllocs()
	for b.Loop() {
		for i := range evs {
			evs[i].Seq += 100
			tr.Annotate(&evs[i])
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// Bound caps the connection table by bytes: a budget of 2000
// connections' worth keeps at most 2000, forgetting the least recently
// active beyond it.
func TestBound(t *testing.T) {
	tr := NewTracker(nil)
	t.Logf("%d bytes per connection", ConnectionBytes())
	tr.Bound(2000 * ConnectionBytes())
	for i := range 3000 {
		ev := event.Event{Type: event.TypeSegment, TS: uint64(i + 1), Family: 4, Flags: event.SYN, Seq: 1,
			Saddr: netip.MustParseAddr("192.0.2.1"), Sport: uint16(10000 + i), Daddr: netip.MustParseAddr("192.0.2.2"), Dport: 20000}
		tr.Annotate(&ev)
	}
	if tr.n != 2000 {
		t.Fatalf("%d connections kept, want 2000 (%d bytes each)", tr.n, ConnectionBytes())
	}
}
