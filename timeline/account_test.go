package timeline_test

import (
	"strings"
	"testing"
	"time"

	"tcptracer/analysis"
	"tcptracer/event"
	"tcptracer/timeline"
	tt "tcptracer/timeline/timelinetest"
)

const caLoss, caOpen = 4, 0

// The client's AB is dropped; the kernel resends it on a timeout. The drop
// is tied to AB, to the copy that repaired it and to the retransmission.
func TestDropRepairedByRTO(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000")
	b.Senders, b.Cwnd, b.SRTT = true, 10, 50
	b.Handshake().Seg(C, "PA", 1, 1, 2).Drop(C, "NETFILTER_DROP").Wait(200e6)
	b.Cwnd, b.CA = 1, caLoss
	b.RetransmitIn(C, 1, 2, caLoss).Seg(C, "PA", 1, 1, 2)
	b.CA = caOpen
	b.Seg(S, "A", 1, 3, 0)
	c := run(t, b)
	if len(c.Drops) != 1 {
		t.Fatalf("%d drops, want 1", len(c.Drops))
	}
	d := c.Drops[0]
	dropped, repair := wireSegs(c, timeline.Client, 2)[0], wireSegs(c, timeline.Client, 2)[1]
	if d.Segment != dropped.Index || dropped.Dropped != "NETFILTER_DROP" || dropped.DropIndex != d.Index {
		t.Errorf("drop tied to #%d, segment #%d marked %q by #%d", d.Segment, dropped.Index, dropped.Dropped, dropped.DropIndex)
	}
	if d.RepairedBy != repair.Index || repair.Repairs != d.Index || d.Cause != event.CauseRTO || d.Retransmit == 0 {
		t.Errorf("drop repaired by #%d (want #%d), retransmit #%d cause %q", d.RepairedBy, repair.Index, d.Retransmit, d.Cause)
	}
	if !repair.SenderRetransmit || dropped.SenderRetransmit {
		t.Errorf("the kernel's account: first copy retransmission %v, second %v; want false, true", dropped.SenderRetransmit, repair.SenderRetransmit)
	}
	s := c.Summary
	if s.DropCount != 1 || s.RTOs != 1 || len(s.Retxs) != 1 || s.Retxs[0].Repaired != d.Index {
		t.Errorf("summary drops %d rtos %d retxs %+v", s.DropCount, s.RTOs, s.Retxs)
	}
	if !strings.Contains(s.DropsRepairs[0], "rto retransmission") || !s.OK() {
		t.Errorf("explanation %q verdict %s", s.DropsRepairs, s.Verdict)
	}
	st := s.Senders[timeline.Client]
	if !s.SenderKnown[timeline.Client] || st.MaxCwnd != 10 || st.FinalCwnd != 1 || st.MinSRTT != 50*time.Microsecond || st.CATime[caLoss] == 0 {
		t.Errorf("sender stats %+v", st)
	}
}

// A DSACK for retransmitted bytes makes the retransmission spurious.
func TestRetransmissionSpuriousByDSACK(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().Seg(C, "PA", 1, 1, 2).Wait(200e6).
		RetransmitIn(C, 1, 2, caLoss).Seg(C, "PA", 1, 1, 2).Seg(S, "A", 1, 3, 0)
	ack := &b.Events[len(b.Events)-1]
	ack.Opts.NSACK, ack.Opts.SACK[0] = 1, event.SACKBlock{Left: b.ISN[C] + 1, Right: b.ISN[C] + 3}
	c := run(t, b)
	if len(c.Retxs) != 1 || c.Retxs[0].Cause != event.CauseSpurious {
		t.Errorf("retransmissions %+v, want one spurious", c.Retxs)
	}
}

// The kernel-side rules on the sender's own records, and their negatives.
func TestSenderRulesInTimeline(t *testing.T) {
	good := tt.New("127.0.0.1:40000", "127.0.0.1:20000")
	good.Senders = true
	good.Handshake().Seg(C, "PA", 1, 1, 2).Seg(S, "A", 1, 3, 0)
	if c := run(t, good); !c.Summary.OK() {
		t.Errorf("verdict %s on a sender that kept the rules", c.Summary.Verdict)
	}
	bad := tt.New("127.0.0.1:40000", "127.0.0.1:20000")
	bad.Senders = true
	bad.Handshake().Seg(C, "PA", 1, 1, 2)
	bad.Events[len(bad.Events)-2].Sender.SndNxt -= 5 // TC egress record: data beyond snd_nxt
	bad.Events[len(bad.Events)-2].Sender.RcvNxt += 1 // and an ack behind rcv_nxt
	c := run(t, bad)
	var rules []analysis.Rule
	for _, v := range c.Summary.Violations {
		rules = append(rules, v.Rule)
	}
	if len(rules) != 2 || rules[0] != analysis.NewDataAtSndNxt || rules[1] != analysis.AckIsRcvNxt {
		t.Errorf("violations %v, want new-data-at-snd-nxt and ack-is-rcv-nxt", c.Summary.Violations)
	}
}

// Segments freed unread at socket teardown and answered keepalives are
// shown, not counted as drops; old data is.
func TestUnreadIsNotADrop(t *testing.T) {
	c := run(t, tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().Seg(S, "FA", 1, 1, 0).Drop(S, "QUEUE_PURGE").
		Seg(C, "A", 0, 1, 0).Drop(C, "TCP_OLD_SEQUENCE").Seg(C, "PA", 1, 1, 2).Seg(C, "PA", 1, 1, 2).Drop(C, "TCP_OLD_SEQUENCE"))
	if c.Summary.DropCount != 1 || c.Summary.UnreadCount != 1 || c.Summary.ProbeDrops != 1 {
		t.Errorf("drops %d unread %d probes %d, want 1 1 1: %q", c.Summary.DropCount, c.Summary.UnreadCount, c.Summary.ProbeDrops, c.Summary.DropsRepairs)
	}
}

func run(t *testing.T, b *tt.Builder) *timeline.Conn {
	t.Helper()
	tl := timeline.New(timeline.Options{})
	var c *timeline.Conn
	for i := range b.Events {
		for _, e := range tl.Feed(&b.Events[i]).Ended {
			c = e
		}
	}
	for _, e := range tl.Flush() {
		c = e
	}
	if c == nil {
		t.Fatal("no connection ended")
	}
	return c
}

func wireSegs(c *timeline.Conn, from timeline.Side, n uint32) []*timeline.Segment {
	var out []*timeline.Segment
	for i := range c.Segments {
		if s := &c.Segments[i]; s.From == from && s.Len == n {
			out = append(out, s)
		}
	}
	return out
}

// The peer's FIN reaching a socket that has closed into time-wait is
// answered by the time-wait socket and freed as NOT_SPECIFIED in
// tcp_v4_rcv: not a drop. The same reason there while the receiver is
// open is one.
func TestTimeWaitAnswerIsNotADrop(t *testing.T) {
	for _, closed := range []bool{true, false} {
		b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().Seg(C, "FA", 1, 1, 0).Seg(S, "A", 1, 2, 0)
		if closed {
			b.State(C, "FIN_WAIT2", "CLOSE")
		}
		b.Seg(S, "FA", 1, 2, 0).Drop(S, "NOT_SPECIFIED")
		b.Events[len(b.Events)-1].Drop.Symbol = "tcp_v4_rcv+0x99"
		c := run(t, b)
		want := map[bool][2]int{true: {0, 1}, false: {1, 0}}[closed]
		if got := [2]int{c.Summary.DropCount, c.Summary.TimeWaitDrops}; got != want {
			t.Errorf("receiver closed %v: drops, time-wait answers %v, want %v: %q", closed, got, want, c.Summary.DropsRepairs)
		}
	}
}

// A pure ACK handled by tcp_rcv_state_process outside ESTABLISHED (here
// CLOSE_WAIT after the client's half-close) is freed at its discard label
// as NOT_SPECIFIED: not a drop. Data freed there is one.
func TestProcessedAckIsNotADrop(t *testing.T) {
	for _, n := range []uint32{0, 2} {
		b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().Seg(C, "FA", 1, 1, 0).
			State(S, "ESTABLISHED", "CLOSE_WAIT").Seg(S, "PA", 1, 2, 2).Seg(C, "A", 2, 3, n).Drop(C, "NOT_SPECIFIED")
		b.Events[len(b.Events)-1].Drop.Symbol = "tcp_rcv_state_process+0x1c6"
		c := run(t, b)
		want := map[uint32][2]int{0: {0, 1}, 2: {1, 0}}[n]
		if got := [2]int{c.Summary.DropCount, c.Summary.ProcessedDrops}; got != want {
			t.Errorf("len %d: drops, processed %v, want %v: %q", n, got, want, c.Summary.DropsRepairs)
		}
	}
}
