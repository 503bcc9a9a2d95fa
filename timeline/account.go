package timeline

import (
	"strings"
	"time"

	"tcptracer/analysis"
	"tcptracer/event"
)

// maxAccount bounds the drops and kernel retransmissions kept per
// connection; later ones are counted but not kept.
const maxAccount = 256

// Drop is a segment the kernel freed undelivered (skb:kfree_skb), tied to
// the segment event it freed and to what repaired it.
type Drop struct {
	Index    uint64 // the drop event
	TS       uint64
	From     Side // the dropped segment's sender
	Seq, Ack uint32
	SeqRel   uint32
	HasRel   bool
	Len      uint32
	Flags    uint16
	Reason   string // the kernel's name (NETFILTER_DROP), or event.NoReason
	Kind     string // DropNetwork, DropReceiveQueue, DropUnread, DropProbe, DropTimeWait or DropProcessed
	Location string // symbol+offset of the kernel function that dropped it
	// Segment is the Index of the segment event it freed (same tuple,
	// seq, ack, flags and len, seen just before); 0 when the tracer had
	// not seen the segment (dropped before TC, e.g. by netfilter output).
	Segment uint64
	// RepairedBy is the Index of the first later wire segment from the
	// same sender that carried the dropped sequence space again; 0 when
	// none did (yet), or the drop held none (a pure ACK).
	RepairedBy uint64
	// Retransmit is the Index of the kernel retransmission that resent
	// it, and Cause that retransmission's cause; 0 and "" when none did.
	Retransmit uint64
	Cause      string
}

// Kinds of drop, from the kernel's reason.
const (
	DropNetwork = "network" // the segment never reached its socket
	// DropReceiveQueue: the socket refused it for want of room (the
	// drops that sk_drops counts: receive buffer, backlog, memory).
	DropReceiveQueue = "receive_queue"
	// DropUnread: TCP had taken it, and the socket was destroyed with it
	// still queued (QUEUE_PURGE): the application never read it. Not a
	// loss on the connection, so not counted as a drop.
	DropUnread = "unread"
	// DropProbe: a keepalive or window probe (no data, or one byte, below
	// rcv_nxt by design) that the receiver answered and then discarded
	// as an old sequence. Not a loss either.
	DropProbe = "probe"
	// DropTimeWait: a segment for a connection whose receiving socket had
	// already closed into time-wait (FIN_WAIT2 > CLOSE): the time-wait
	// socket answered it (the ACK of the peer's FIN), then tcp_v4_rcv or
	// tcp_v6_rcv freed it as NOT_SPECIFIED. Not a loss.
	DropTimeWait = "time_wait"
	// DropProcessed: a pure ACK that tcp_rcv_state_process handled outside
	// ESTABLISHED (in CLOSE_WAIT, FIN_WAIT2, LAST_ACK…) and, with nothing
	// to queue, freed at its discard label, whose reason is NOT_SPECIFIED
	// unless a check set one. Not a loss.
	DropProcessed = "processed"
)

// receiveQueueReasons are the kernel's names for a socket out of room.
var receiveQueueReasons = map[string]bool{
	"SOCKET_RCVBUFF": true, "SOCKET_BACKLOG": true, "PROTO_MEM": true, "TCP_ZEROWINDOW": true,
	"SOCKET_FILTER": true, "TCP_OFOMERGE": true,
}

// dropKind classifies a drop; rcvClosed says the receiving side's socket
// had reached CLOSE before it.
func dropKind(reason string, ev *event.Event, rcvClosed bool) string {
	switch {
	case reason == "NOT_SPECIFIED" && rcvClosed &&
		(strings.HasPrefix(ev.Drop.Symbol, "tcp_v4_rcv+") || strings.HasPrefix(ev.Drop.Symbol, "tcp_v6_rcv+")):
		return DropTimeWait
	case reason == "NOT_SPECIFIED" && strings.HasPrefix(ev.Drop.Symbol, "tcp_rcv_state_process+") &&
		ev.Len == 0 && ev.Flags&(event.SYN|event.FIN|event.RST) == 0:
		return DropProcessed
	case reason == "QUEUE_PURGE",
		// Before QUEUE_PURGE existed (6.1), the same purge of a socket's
		// queues at destruction reads NOT_SPECIFIED at this location.
		reason == "NOT_SPECIFIED" && strings.HasPrefix(ev.Drop.Symbol, "sk_stream_kill_queues"):
		return DropUnread
	case reason == "TCP_OLD_SEQUENCE" && ev.Len <= 1 && ev.Flags&(event.SYN|event.FIN|event.RST) == 0:
		return DropProbe
	case receiveQueueReasons[reason]:
		return DropReceiveQueue
	}
	return DropNetwork
}

// loss says whether the drop lost the segment: unread, probe, time-wait
// and processed drops freed one the receiver had taken or answered.
func (d *Drop) loss() bool { return d.Kind == DropNetwork || d.Kind == DropReceiveQueue }

// carries says whether the drop held sequence space a sender must resend.
func (d *Drop) carries() bool { return d.Len > 0 || d.Flags&(event.SYN|event.FIN) != 0 }

// covers says whether [seq, seq+n) holds the drop's first sequence number.
func (d *Drop) coveredBy(seq, n uint32) bool {
	off := d.Seq - seq
	return int32(off) >= 0 && off < max(n, 1)
}

// Retx is one kernel retransmission (tcp_retransmit_skb) with its cause.
type Retx struct {
	Index uint64
	TS    uint64
	From  Side
	Seq   uint32
	Len   uint32
	// Cause is event.CauseRTO, CauseFast or CauseTLP from the socket's
	// state as it resent, CauseSpurious once a DSACK showed the receiver
	// had the bytes, or CauseUnknown without the socket's state.
	Cause string
	// Repaired is the Index of the drop whose bytes it resent, 0 if none was seen.
	Repaired uint64
}

// SenderStats is the sending socket's state over the connection, from
// every segment TC egress saw it send and every kernel retransmission.
type SenderStats struct {
	Samples   int
	MinSRTT   time.Duration
	MaxSRTT   time.Duration
	AvgSRTT   time.Duration
	FinalCwnd uint32
	MaxCwnd   uint32
	// CATime is the time spent in each congestion state (open, disorder,
	// cwr, recovery, loss), from the first sample to the last event.
	CATime [5]time.Duration
	RTOs   int // kernel retransmissions whose cause was a timeout
	Last   event.Sender

	sumSRTT uint64
	nSRTT   int
	lastCA  uint8
	lastTS  uint64
}

// sample adds one reading of the socket's state at time ts.
func (st *SenderStats) sample(s *event.Sender, ts uint64) {
	if st.Samples > 0 && ts > st.lastTS && int(st.lastCA) < len(st.CATime) {
		st.CATime[st.lastCA] += time.Duration(ts - st.lastTS)
	}
	st.Samples++
	st.lastCA, st.lastTS, st.Last = s.CAState, ts, *s
	st.FinalCwnd = s.Cwnd
	st.MaxCwnd = max(st.MaxCwnd, s.Cwnd)
	if s.SRTT == 0 {
		return // no RTT measured yet
	}
	rtt := time.Duration(s.SRTT) * time.Microsecond
	if st.nSRTT == 0 || rtt < st.MinSRTT {
		st.MinSRTT = rtt
	}
	st.MaxSRTT = max(st.MaxSRTT, rtt)
	st.sumSRTT += uint64(s.SRTT)
	st.nSRTT++
	st.AvgSRTT = time.Duration(st.sumSRTT/uint64(st.nSRTT)) * time.Microsecond
}

// close counts the time in the last congestion state up to end.
func (st *SenderStats) close(end uint64) {
	if st.Samples > 0 && end > st.lastTS && int(st.lastCA) < len(st.CATime) {
		st.CATime[st.lastCA] += time.Duration(end - st.lastTS)
		st.lastTS = end
	}
}

// drop takes a drop event: it is kept, and the segment it freed is marked.
func (c *Conn) drop(ev *event.Event) {
	from := ev.Side
	kind := dropKind(ev.Drop.ReasonName, ev, c.sock[from.Peer()] == uint8(event.StateClose))
	switch kind {
	case DropTimeWait:
		c.TimeWaitDrops++
	case DropProcessed:
		c.ProcessedDrops++
	case DropUnread:
		c.UnreadCount++
	case DropProbe:
		c.ProbeDrops++
	case DropReceiveQueue:
		c.RcvQueueDrops++
		c.DropCount++
	default:
		c.DropCount++
	}
	if len(c.Drops) >= maxAccount {
		return
	}
	d := Drop{Index: ev.Index, TS: ev.TS, From: from, Seq: ev.Seq, Ack: ev.Ack, SeqRel: ev.SeqRel, HasRel: ev.HasSeqRel,
		Len: ev.Len, Flags: ev.Flags, Reason: ev.Drop.ReasonName, Kind: kind, Location: ev.Drop.Symbol, Segment: ev.Drop.Segment}
	if s := c.byIndex(d.Segment); s != nil {
		s.Dropped, s.DropIndex = d.Reason, d.Index
	}
	c.Drops = append(c.Drops, d)
}

// repairs ties a new wire segment to the earliest unrepaired drop of the
// same sender whose sequence space it carries again.
func (c *Conn) repairs(s *Segment) {
	for i := range c.Drops {
		d := &c.Drops[i]
		if d.RepairedBy != 0 || d.From != s.From || !d.carries() || !d.loss() || s.Index < d.Index {
			continue
		}
		if s.Len == 0 && s.Flags&(event.SYN|event.FIN) == 0 {
			continue
		}
		if d.coveredBy(uint32(s.Seq), uint32(s.End().Diff(s.Seq))) {
			d.RepairedBy, s.Repairs = s.Index, d.Index
			return
		}
	}
}

// retransmitted keeps a kernel retransmission with its cause, ties it to
// the drop whose bytes it resends, and samples the socket's state.
func (c *Conn) retransmitted(ev *event.Event, from Side) {
	cause := event.RetransmitCause(&ev.Sender, ev.OldState)
	if cause == event.CauseRTO {
		c.Senders[from].RTOs++
	}
	if ev.Sender.Valid {
		c.Senders[from].sample(&ev.Sender, ev.TS)
	}
	if len(c.Retxs) >= maxAccount {
		return
	}
	r := Retx{Index: ev.Index, TS: ev.TS, From: from, Seq: ev.Seq, Len: ev.Len, Cause: cause}
	for i := range c.Drops {
		d := &c.Drops[i]
		if d.Retransmit == 0 && d.From == from && d.carries() && d.loss() && d.coveredBy(ev.Seq, ev.Len) {
			d.Retransmit, d.Cause, r.Repaired = ev.Index, cause, d.Index
			break
		}
	}
	c.Retxs = append(c.Retxs, r)
}

// dsack marks as spurious the kernel retransmissions of the peer whose
// bytes a duplicate SACK (RFC 2883: a first block below the cumulative
// ack, or inside the second) reports the receiver already had.
func (c *Conn) dsack(s *Segment) {
	o := &s.Opts
	if o.NSACK == 0 || s.Flags&event.ACK == 0 {
		return
	}
	b := o.SACK[0]
	left, right := event.Seq(b.Left), event.Seq(b.Right)
	isD := left.LT(s.Ack) ||
		(o.NSACK > 1 && !left.LT(event.Seq(o.SACK[1].Left)) && !right.GT(event.Seq(o.SACK[1].Right)))
	if !isD {
		return
	}
	for i := range c.Retxs {
		r := &c.Retxs[i]
		if r.From == s.From.Peer() && !event.Seq(r.Seq).LT(left) && event.Seq(r.Seq).LT(right) {
			r.Cause = event.CauseSpurious
		}
	}
}

// senderSighting checks the kernel-side rules on a segment TC egress saw a
// local socket send, and samples the socket's state. The violations wait
// for the segment's wire record, which is what the verdict points at.
func (c *Conn) senderSighting(ev *event.Event, from Side) []analysis.Violation {
	if !ev.Sender.Valid {
		return nil
	}
	c.Senders[from].sample(&ev.Sender, ev.TS)
	return analysis.SenderRules(&analysis.SenderSeg{Index: ev.Index, Seq: ev.Seq, Ack: ev.Ack, Len: ev.Len,
		Flags: ev.Flags, Sender: &ev.Sender})
}

// senderState samples a socket's state reported with a state change.
func (c *Conn) senderState(ev *event.Event) {
	if !ev.Sender.Valid {
		return
	}
	c.Senders[ev.Side].sample(&ev.Sender, ev.TS)
}
