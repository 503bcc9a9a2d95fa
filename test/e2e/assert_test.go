package e2e

import (
	"fmt"
	"slices"
	"testing"

	"tcptracer/event"
	"tcptracer/internal/oracle"
)

// seg is a segment with its direction in the session.
type seg struct {
	ev         event.Event
	fromClient bool
}

func (s seg) String() string {
	who := "S>C"
	if s.fromClient {
		who = "C>S"
	}
	return fmt.Sprintf("#%d %s %s seq=%d ack=%d len=%d", s.ev.Index, who, event.Flags(s.ev.Flags), s.ev.SeqRel, s.ev.AckRel, s.ev.Len)
}

// findConn returns the id of the one connection the session made.
func findConn(t *testing.T, evs []event.Event) uint64 {
	t.Helper()
	ids := map[uint64]bool{}
	for _, ev := range evs {
		if ev.Type == event.TypeSegment {
			ids[ev.Conn] = true
		}
	}
	if len(ids) != 1 || ids[0] {
		t.Fatalf("segments belong to connections %v, want exactly one non-zero id", ids)
	}
	for id := range ids {
		return id
	}
	return 0
}

// connSegments lists the connection's segments, each counted once.
func connSegments(evs []event.Event, c uint64) []seg {
	var out []seg
	for _, ev := range evs {
		if ev.Type == event.TypeSegment && ev.Conn == c && ev.Wire {
			out = append(out, seg{ev, ev.Dport == echoPort})
		}
	}
	return out
}

// checkSides: conn.Tracker saw the handshake, so every event of the
// connection names its source's side (the echo server's port is the
// server's) without a guess, and no relative number is derived.
func checkSides(t *testing.T, evs []event.Event, c uint64) {
	t.Helper()
	for _, ev := range evs {
		if ev.Conn != c {
			continue
		}
		want := event.Client
		if ev.Sport == echoPort {
			want = event.Server
		}
		if ev.Side != want || ev.RolesGuessed || ev.RelDerived {
			t.Errorf("%s #%d from port %d: side %s guessed %v derived %v; want %s, neither guessed nor derived",
				ev.Type, ev.Index, ev.Sport, ev.Side, ev.RolesGuessed, ev.RelDerived, want)
		}
	}
}

func checkHandshake(t *testing.T, segs []seg) {
	t.Helper()
	if len(segs) < 3 {
		t.Fatalf("only %d segments: %v", len(segs), segs)
	}
	want := []struct {
		fromClient bool
		flags      uint16
		seq, ack   uint32
	}{
		{true, event.SYN, 0, 0},
		{false, event.SYN | event.ACK, 0, 1},
		{true, event.ACK, 1, 1},
	}
	for i, w := range want {
		s := segs[i]
		ok := s.fromClient == w.fromClient && s.ev.Flags == w.flags && s.ev.HasSeqRel && s.ev.SeqRel == w.seq && s.ev.Len == 0
		if w.flags&event.ACK != 0 {
			ok = ok && s.ev.HasAckRel && s.ev.AckRel == w.ack
		}
		if !ok {
			t.Errorf("handshake segment %d is %v, want fromClient=%v flags=%s seq=%d ack=%d", i, s, w.fromClient, event.Flags(w.flags), w.seq, w.ack)
		}
	}
	if syn := segs[0].ev; !syn.Opts.HasMSS || !syn.Opts.HasWS || !syn.Opts.SACKPerm {
		t.Errorf("SYN options %+v: want MSS, window scale and SACK-permitted", syn.Opts)
	}
}

// checkData: AB (Len 2, seq 1) acked with 3, then the echo (seq 1, ack 3) acked with 3.
func checkData(t *testing.T, segs []seg) {
	t.Helper()
	ab := indexOf(segs, func(s seg) bool { return s.fromClient && s.ev.Len == 2 })
	echo := indexOf(segs, func(s seg) bool { return !s.fromClient && s.ev.Len == 2 })
	if ab < 0 || echo < 0 {
		t.Fatalf("no 2-byte segment each way: %v", segs)
	}
	if s := segs[ab]; s.ev.SeqRel != 1 || s.ev.AckRel != 1 {
		t.Errorf("AB segment %v: want seq 1 ack 1", s)
	}
	if s := segs[echo]; s.ev.SeqRel != 1 || s.ev.AckRel != 3 {
		t.Errorf("echo segment %v: want seq 1 ack 3", s)
	}
	if i := indexOf(segs[ab+1:], func(s seg) bool { return !s.fromClient && s.ev.AckRel == 3 }); i < 0 {
		t.Errorf("the server never acked AB with 3: %v", segs)
	}
	if i := indexOf(segs[echo+1:], func(s seg) bool { return s.fromClient && s.ev.AckRel == 3 && s.ev.SeqRel == 3 }); i < 0 {
		t.Errorf("the client never acked the echo with 3: %v", segs)
	}
}

// checkTeardown: each FIN at seq 3 consumes one: the peer acks 4.
func checkTeardown(t *testing.T, segs []seg) {
	t.Helper()
	for _, client := range []bool{true, false} {
		fin := indexOf(segs, func(s seg) bool { return s.fromClient == client && s.ev.Flags&event.FIN != 0 })
		if fin < 0 {
			t.Errorf("no FIN from client=%v: %v", client, segs)
			continue
		}
		if s := segs[fin]; s.ev.SeqRel != 3 {
			t.Errorf("FIN %v: want seq 3", s)
		}
		if i := indexOf(segs[fin+1:], func(s seg) bool { return s.fromClient != client && s.ev.AckRel == 4 }); i < 0 {
			t.Errorf("the FIN of client=%v was never acked with 4: %v", client, segs)
		}
	}
	for _, s := range segs {
		if s.ev.Flags&event.RST != 0 {
			t.Errorf("unexpected reset %v", s)
		}
	}
}

func checkStates(t *testing.T, evs []event.Event, c uint64) {
	t.Helper()
	var client, server []string
	for _, ev := range evs {
		if ev.Type != event.TypeState || ev.Conn != c {
			continue
		}
		tr := event.StateName(ev.OldState) + ">" + event.StateName(ev.NewState)
		if ev.Sport == echoPort {
			server = append(server, tr)
		} else {
			client = append(client, tr)
		}
	}
	wantClient := []string{"CLOSE>SYN_SENT", "SYN_SENT>ESTABLISHED", "ESTABLISHED>FIN_WAIT1", "FIN_WAIT1>FIN_WAIT2", "FIN_WAIT2>CLOSE"}
	wantServer := []string{"LISTEN>SYN_RECV", "SYN_RECV>ESTABLISHED", "ESTABLISHED>CLOSE_WAIT", "CLOSE_WAIT>LAST_ACK", "LAST_ACK>CLOSE"}
	if !slices.Equal(client, wantClient) {
		t.Errorf("client states %v, want %v", client, wantClient)
	}
	if !slices.Equal(server, wantServer) {
		t.Errorf("server states %v, want %v", server, wantServer)
	}
}

func checkConnect(t *testing.T, s session, c uint64, segs []seg, attach string) {
	t.Helper()
	var got []event.Event
	for _, ev := range s.events {
		if ev.Type == event.TypeConnect && ev.Conn == c {
			got = append(got, ev)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d connect events for the connection, want 1", len(got))
	}
	ev := got[0]
	if int(ev.TGID) != s.clientPID || ev.Comm != clientComm() || ev.PIDSrc != event.PIDOwner {
		t.Errorf("connect by tgid %d comm %q (%s), want the client: pid %d comm %q (owner)", ev.TGID, ev.Comm, ev.PIDSrc, s.clientPID, clientComm())
	}
	if ev.Dport != echoPort || ev.Sport != segs[0].ev.Sport || ev.ISN != segs[0].ev.Seq {
		t.Errorf("connect %v:%d isn %d, want port %d from %d, isn %d (the SYN's seq)", ev.Daddr, ev.Dport, ev.ISN, echoPort, segs[0].ev.Sport, segs[0].ev.Seq)
	}
	// tcp_v4_connect returned 0 (fentry, kprobe), or the handshake
	// completed (tracepoint mode, where the record is written then).
	if ev.Ret != 0 {
		t.Errorf("connect ret %d, want 0 in %s mode", ev.Ret, attach)
	}
}

// checkRcvState: the state machine saw the SYN in LISTEN, the SYN-ACK in
// SYN_SENT and the handshake's ACK in SYN_RECV, with the wire's numbers.
func checkRcvState(t *testing.T, evs []event.Event, c uint64, segs []seg) {
	t.Helper()
	want := []struct {
		state string
		seg   seg
	}{{"LISTEN", segs[0]}, {"SYN_SENT", segs[1]}, {"SYN_RECV", segs[2]}}
	for _, w := range want {
		found := false
		for _, ev := range evs {
			if ev.Type == event.TypeRcvState && event.StateName(ev.OldState) == w.state &&
				ev.Seq == w.seg.ev.Seq && ev.Ack == w.seg.ev.Ack && ev.Flags == w.seg.ev.Flags {
				found = true
			}
		}
		if !found {
			t.Errorf("no rcv_state in %s for %v", w.state, w.seg)
		}
	}
}

// checkTwins: every segment counts once on the wire. On lo each wire
// (ingress) record pairs with the TC egress sighting before it; on a veth
// end each outgoing segment is seen at TC egress and again, as the wire's,
// at transmit, and incoming ones only at ingress.
func checkTwins(t *testing.T, evs []event.Event, c uint64, loopback bool) {
	t.Helper()
	var sightings, wire, paired, xmit int
	for _, ev := range evs {
		if ev.Type != event.TypeSegment || ev.Conn != c {
			continue
		}
		switch {
		case !ev.Wire:
			sightings++
		case ev.TwinOf != 0:
			wire++
			paired++
		default:
			wire++
		}
		if ev.Point == event.PointXmit {
			xmit++
		}
	}
	if loopback && (sightings != wire || paired != wire) {
		t.Errorf("lo: %d TC egress sightings, %d wire records of which %d paired; want all equal", sightings, wire, paired)
	}
	if !loopback && (xmit != sightings || paired != sightings) {
		t.Errorf("veth: %d TC egress sightings, %d xmit records, %d paired; want all equal", sightings, xmit, paired)
	}
}

type wireKey struct {
	saddr, daddr string
	sport, dport uint16
	seq, ack     uint32
	flags        uint16
	len          uint32
}

// checkOracle: tcpdump's segments and the tracer's are the same multiset.
func checkOracle(t *testing.T, wire []oracle.Segment, segs []seg) {
	t.Helper()
	count := map[wireKey]int{}
	for _, w := range wire {
		count[wireKey{w.Saddr.String(), w.Daddr.String(), w.Sport, w.Dport, w.Seq, w.Ack, w.Flags, w.Len}]++
	}
	for _, s := range segs {
		e := s.ev
		k := wireKey{e.Saddr.String(), e.Daddr.String(), e.Sport, e.Dport, e.Seq, e.Ack, e.Flags, e.Len}
		if count[k] == 0 {
			t.Errorf("tracer segment %v (%+v) not seen by tcpdump", s, k)
			continue
		}
		count[k]--
	}
	for k, n := range count {
		if n > 0 {
			t.Errorf("tcpdump saw %d segment(s) %+v that the tracer did not report", n, k)
		}
	}
	if len(wire) != len(segs) {
		t.Errorf("tcpdump saw %d segments, the tracer %d", len(wire), len(segs))
	}
	t.Logf("oracle: tcpdump and tracer agree on %d segments", len(wire))
}

func indexOf(segs []seg, f func(seg) bool) int {
	return slices.IndexFunc(segs, f)
}
