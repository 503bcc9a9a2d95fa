package timeline_test

import (
	"net/netip"
	"testing"
	"time"

	"tcptracer/event"
	"tcptracer/timeline"
	tt "tcptracer/timeline/timelinetest"
)

const (
	C = tt.Client
	S = tt.Server
)

func feed(tl *timeline.Timeline, b *tt.Builder) (ended []*timeline.Conn) {
	for i := range b.Events {
		ended = append(ended, tl.Feed(&b.Events[i]).Ended...)
	}
	return ended
}

func TestEchoSummary(t *testing.T) {
	tl := timeline.New(timeline.Options{})
	ended := feed(tl, tt.Echo())
	if len(ended) != 1 || tl.Len() != 0 {
		t.Fatalf("ended %d, held %d; want 1 ended, none held", len(ended), tl.Len())
	}
	s := ended[0].Summary
	checks := []struct {
		name      string
		got, want any
	}{
		{"client", s.Client.String(), "127.0.0.1:40000"},
		{"server", s.Server.String(), "127.0.0.1:20000"},
		{"opened", s.Opened, true},
		{"closer", s.ActiveCloser, "client"},
		{"end", s.End, "closed"},
		{"handshake rtt", s.HandshakeRTT, 24 * time.Microsecond}, // SYN egress → SYN-ACK ingress
		{"handshake time", s.HandshakeTime, 44 * time.Microsecond},
		{"bytes c2s", s.Sent[timeline.Client].Bytes, uint64(2)},
		{"bytes s2c", s.Sent[timeline.Server].Bytes, uint64(2)},
		{"segs c2s", s.Sent[timeline.Client].Segments, 6},
		{"segs s2c", s.Sent[timeline.Server].Segments, 5},
		{"final client", s.FinalState[timeline.Client], "CLOSE"},
		{"final server", s.FinalState[timeline.Server], "CLOSE"},
		{"owner", s.Owners[timeline.Client].Comm, "echo-client"},
		{"owner pid", s.Owners[timeline.Client].PID, uint32(4242)},
		{"verdict", s.Verdict, "ok"},
		{"findings", len(s.Findings), 0},
		{"scale known", s.WindowScaleKnown, true},
		{"derived", s.RelativeDerived, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestStatePairing checks each state change is paired with the segment
// that caused it, and app-caused ones with none.
func TestStatePairing(t *testing.T) {
	tl := timeline.New(timeline.Options{})
	c := feed(tl, tt.Echo())[0]
	want := map[string]uint64{ // "side old>new" → cause Index
		"client CLOSE>SYN_SENT": 0, "client SYN_SENT>ESTABLISHED": 6, "server LISTEN>SYN_RECV": 9,
		"server SYN_RECV>ESTABLISHED": 9, "client ESTABLISHED>FIN_WAIT1": 0, "server ESTABLISHED>CLOSE_WAIT": 22,
		"client FIN_WAIT1>FIN_WAIT2": 25, "server CLOSE_WAIT>LAST_ACK": 0, "client FIN_WAIT2>CLOSE": 29,
		"server LAST_ACK>CLOSE": 31,
	}
	for _, sc := range c.States {
		key := sc.Side.String() + " " + event.StateName(sc.Old) + ">" + event.StateName(sc.New)
		if w, ok := want[key]; !ok || w != sc.Cause {
			t.Errorf("%s caused by #%d, want #%d", key, sc.Cause, w)
		}
	}
}

// TestRcvStatePairing: a rcv_state event names the segment, even when a
// later segment to the same socket has the same end.
func TestRcvStatePairing(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().
		Seg(C, "FA", 1, 1, 0).RcvState(S, "ESTABLISHED").Seg(C, "A", 2, 1, 0).
		State(S, "ESTABLISHED", "CLOSE_WAIT")
	tl := timeline.New(timeline.Options{})
	feed(tl, b)
	c := tl.Flush()[0]
	last := c.States[len(c.States)-1]
	if last.Cause != 13 {
		t.Errorf("CLOSE_WAIT caused by #%d, want the FIN #13", last.Cause)
	}
	if c.Segments[3].RcvOldState != event.StateEstablished {
		t.Errorf("FIN's rcv old state %d", c.Segments[3].RcvOldState)
	}
}

func TestMidConnectionDerived(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000")
	b.Seg(C, "PA", 100, 50, 4).Seg(S, "A", 50, 104, 0)
	tl := timeline.New(timeline.Options{})
	var segs []timeline.Segment
	for i := range b.Events {
		if r := tl.Feed(&b.Events[i]); r.Segment != nil {
			segs = append(segs, *r.Segment)
		}
	}
	if s := segs[0]; s.SeqRel != 1 || s.AckRel != 1 || !s.Derived || s.WinScaled {
		t.Errorf("first segment rel %d/%d derived %v scaled %v; want 1/1 derived, unscaled", s.SeqRel, s.AckRel, s.Derived, s.WinScaled)
	}
	if s := segs[1]; s.SeqRel != 1 || s.AckRel != 5 {
		t.Errorf("reply rel %d/%d, want 1/5", s.SeqRel, s.AckRel)
	}
	sum := tl.Flush()[0].Summary
	if !sum.RelativeDerived || sum.WindowScaleKnown || sum.Opened || sum.End != "flush" {
		t.Errorf("summary derived %v scale %v opened %v end %s", sum.RelativeDerived, sum.WindowScaleKnown, sum.Opened, sum.End)
	}
}

// TestKernelDerivedBase: traced from the middle, the first state event's
// snd_una and rcv_nxt give conn.Tracker the bases, and the timeline shows
// its numbers, marked derived.
func TestKernelDerivedBase(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").From(104, 50)
	b.State(C, "ESTABLISHED", "FIN_WAIT1").Seg(C, "FA", 104, 50, 0)
	tl := timeline.New(timeline.Options{})
	var seg timeline.Segment
	for i := range b.Events {
		if r := tl.Feed(&b.Events[i]); r.Segment != nil {
			seg = *r.Segment
		}
	}
	c := tl.Flush()[0]
	if seg.SeqRel != 1 || seg.AckRel != 1 || !seg.Derived {
		t.Errorf("FIN rel %d/%d derived %v, want 1/1 derived (snd_una and rcv_nxt are relative 1)", seg.SeqRel, seg.AckRel, seg.Derived)
	}
	if !c.RolesGuessed || !c.Summary.RelativeDerived || c.Client.Port() != 40000 {
		t.Errorf("roles guessed %v, derived %v, client %s; want guessed, derived, port 40000", c.RolesGuessed, c.Summary.RelativeDerived, c.Client)
	}
}

func TestResetEnds(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().
		State(C, "ESTABLISHED", "CLOSE").Seg(C, "RA", 1, 1, 0).State(S, "ESTABLISHED", "CLOSE").Reset(C, "sent")
	tl := timeline.New(timeline.Options{})
	ended := feed(tl, b)
	if len(ended) != 1 {
		t.Fatalf("%d ended", len(ended))
	}
	s := ended[0].Summary
	if s.End != "reset" || s.Resets != 1 || s.ActiveCloser != "client" || ended[0].States[len(ended[0].States)-1].Cause != 14 {
		t.Errorf("end %s resets %d closer %s", s.End, s.Resets, s.ActiveCloser)
	}
}

func TestRefusedConnectEnds(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20001")
	b.State(C, "CLOSE", "SYN_SENT").Seg(C, "S", 0, 0, 0).Seg(S, "RA", 0, 1, 0).State(C, "SYN_SENT", "CLOSE")
	ended := feed(timeline.New(timeline.Options{}), b)
	if len(ended) != 1 || ended[0].Summary.End != "reset" || ended[0].Summary.ActiveCloser != "server" {
		t.Fatalf("refused connect not ended by reset: %+v", ended)
	}
}

func TestStragglersIgnored(t *testing.T) {
	b := tt.Echo()
	b.Seg(C, "A", 4, 4, 0) // after the end: must not resurrect the connection
	tl := timeline.New(timeline.Options{})
	if n := len(feed(tl, b)); n != 1 || tl.Len() != 0 {
		t.Errorf("ended %d held %d; want 1 and 0", n, tl.Len())
	}
}

// TestBoundedConnections: the cap holds, the oldest are evicted with a
// summary, and idle ones expire by event time.
func TestBoundedConnections(t *testing.T) {
	tl := timeline.New(timeline.Options{MaxConns: 3, IdleTimeout: time.Second})
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000")
	var ended []*timeline.Conn
	for id := uint64(1); id <= 10; id++ {
		b.Events = nil
		b.Ends[C] = netip.AddrPortFrom(b.Ends[C].Addr(), 40000+uint16(id))
		b.Next(id, uint32(id)*1000, 0).Seg(C, "S", 0, 0, 0)
		ended = append(ended, feed(tl, b)...)
		if tl.Len() > 3 {
			t.Fatalf("holding %d connections, cap 3", tl.Len())
		}
	}
	if len(ended) != 7 || ended[0].ID != 1 || ended[0].Summary.End != "evicted" {
		t.Fatalf("ended %d, first %d %s; want 7 evicted, oldest first", len(ended), ended[0].ID, ended[0].Summary.End)
	}
	b.Events = nil
	b.Wait(2e9).Next(11, 5, 0).Seg(C, "S", 0, 0, 0)
	idle := feed(tl, b)
	if len(idle) != 3 || idle[0].Summary.End != "idle" || tl.Len() != 1 {
		t.Errorf("idle expiry ended %d (held %d), want 3 idle", len(idle), tl.Len())
	}
}

func TestSegmentsCapped(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake()
	for i := uint32(0); i < 20; i++ {
		b.Seg(C, "PA", 1+i, 1, 1)
	}
	tl := timeline.New(timeline.Options{MaxSegments: 5})
	feed(tl, b)
	c := tl.Flush()[0]
	if len(c.Segments) != 5 || c.Truncated != 18 || c.Summary.Sent[timeline.Client].Bytes != 20 {
		t.Errorf("kept %d truncated %d bytes %d; want 5, 18, 20", len(c.Segments), c.Truncated, c.Summary.Sent[timeline.Client].Bytes)
	}
}

func TestOnEndCallback(t *testing.T) {
	var got []uint64
	tl := timeline.New(timeline.Options{OnEnd: func(c *timeline.Conn) { got = append(got, c.ID) }})
	feed(tl, tt.Echo())
	if len(got) != 1 || got[0] != 1 {
		t.Errorf("OnEnd saw %v", got)
	}
}

// The kernel's reset events are set beside the RST segments each local
// socket sent, and the difference is counted.
func TestResetTally(t *testing.T) {
	for _, c := range []struct {
		name                  string
		build                 func(b *tt.Builder)
		wire, sent, recv, dis int
	}{
		{"agree", func(b *tt.Builder) {
			b.Reset(C, "sent").State(C, "ESTABLISHED", "CLOSE").Seg(C, "RA", 1, 1, 0).Reset(S, "received").State(S, "ESTABLISHED", "CLOSE")
		}, 1, 1, 1, 0},
		{"reported after both closed (abortive close)", func(b *tt.Builder) {
			b.State(C, "ESTABLISHED", "CLOSE").Seg(C, "RA", 1, 1, 0).Reset(S, "received").State(S, "ESTABLISHED", "CLOSE").Reset(C, "sent")
		}, 1, 1, 1, 0},
		{"rst not reported by the kernel", func(b *tt.Builder) {
			b.State(C, "ESTABLISHED", "CLOSE").Seg(C, "RA", 1, 1, 0).State(S, "ESTABLISHED", "CLOSE")
		}, 1, 0, 0, 1},
		{"reported but not on the wire", func(b *tt.Builder) {
			b.Reset(C, "sent").State(C, "ESTABLISHED", "CLOSE").Reset(S, "received").State(S, "ESTABLISHED", "CLOSE")
		}, 0, 1, 1, 1},
	} {
		b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake()
		c.build(b)
		// A later event of another connection: a reset connection waits a
		// little for the kernel's report of its RST.
		other := tt.New("127.0.0.1:40001", "127.0.0.1:20000")
		other.Conn, other.TS = 2, b.TS+uint64(time.Second)
		b.Events = append(b.Events, other.Seg(tt.Client, "S", 0, 0, 0).Events...)
		ended := feed(timeline.New(timeline.Options{}), b)
		if len(ended) != 1 {
			t.Fatalf("%s: %d ended", c.name, len(ended))
		}
		s := ended[0].Summary
		if s.Resets != c.wire || s.KernelResetsSent != c.sent || s.KernelResetsReceived != c.recv || s.ResetDisagreements != c.dis {
			t.Errorf("%s: wire %d sent %d received %d disagreements %d; want %d %d %d %d", c.name,
				s.Resets, s.KernelResetsSent, s.KernelResetsReceived, s.ResetDisagreements, c.wire, c.sent, c.recv, c.dis)
		}
	}
}

// TestEchoAcrossWrap: with ISNs just below 2^32 the summary (bytes, end,
// closer, verdict) and the state pairing are those of the plain session.
func TestEchoAcrossWrap(t *testing.T) {
	want := feed(timeline.New(timeline.Options{}), tt.Echo())
	got := feed(timeline.New(timeline.Options{}), tt.Echo().Rebased(0xfffffffe, 0xffffffff))
	if len(got) != 1 || len(want) != 1 {
		t.Fatalf("ended %d and %d connections, want 1 each", len(got), len(want))
	}
	if g, w := got[0].Summary.String(), want[0].Summary.String(); g != w {
		t.Errorf("summary across the wrap:\n%s\nwant:\n%s", g, w)
	}
	for i, sc := range got[0].States {
		if sc.Cause != want[0].States[i].Cause {
			t.Errorf("state change %d caused by #%d, want #%d", i, sc.Cause, want[0].States[i].Cause)
		}
	}
	// SYN, 2 bytes and FIN: the client's next seq is ISN+4, past the wrap.
	if f := got[0].Flows[timeline.Client]; f.NextSeq != 2 || f.Bytes != 2 {
		t.Errorf("client flow next %#x bytes %d, want 0x2 and 2", uint32(f.NextSeq), f.Bytes)
	}
}

// TestIdleConnectionResumes: a connection summarised as idle keeps its id
// in conn; when it speaks again its events make a new timeline and a
// second summary instead of being dropped.
func TestIdleConnectionResumes(t *testing.T) {
	tl := timeline.New(timeline.Options{IdleTimeout: time.Second})
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().Seg(C, "PA", 1, 1, 2)
	feed(tl, b)
	b.Events = nil
	b.Wait(2e9).Seg(S, "A", 1, 3, 0)
	ended := feed(tl, b)
	if len(ended) != 1 || ended[0].Summary.End != "idle" || tl.Len() != 1 {
		t.Fatalf("ended %d held %d; want the idle summary and the resumed connection held", len(ended), tl.Len())
	}
	again := tl.Flush()
	if len(again) != 1 || again[0].ID != ended[0].ID || len(again[0].Segments) != 1 {
		t.Fatalf("resumed: %d connections; want one of id %d with the later segment", len(again), ended[0].ID)
	}
}
