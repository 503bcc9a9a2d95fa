package timeline

import (
	"tcptracer/analysis"
	"tcptracer/event"
)

const (
	maxPendingRetx = 64
	maxMarked      = 8 // wire pieces of one kernel retransmission that can be re-assigned
)

// Reasons the heuristic and the kernel's tcp_retransmit_skb may differ on a
// segment for causes that are known, so the difference is not counted as a
// disagreement.
const (
	// The kernel resent its last segment as a tail loss probe
	// (tcp_send_loss_probe), which tcp_retransmit_skb does not report.
	ExplainTailLossProbe = "tail_loss_probe"
	// These bytes had not been on the wire at this vantage point before:
	// the first transmission was lost before reaching it (a qdisc, an
	// earlier hop), so to the wire this is new data.
	ExplainOriginalNotSeen = "original_not_seen"
	// The kernel resent bytes within an RTT of their first sending, which
	// Wireshark's heuristic calls out_of_order, not a retransmission.
	ExplainWithinRTT = "within_rtt"
	// Records were lost around this segment, so the tracer may have
	// missed the original, the retransmission or the kernel's report.
	ExplainLostRecords = "lost_records"
	// The kernel reported a retransmission the wire never carried at this
	// vantage point (dropped before it, e.g. by the qdisc).
	ExplainNotOnWire = "not_on_wire"
)

// kernelRetransmit takes a tcp_retransmit_skb event. The tracepoint fires
// once the skb was handed to the device: where the vantage point is the
// sender's transmit path the wire segment is already here, where it is
// the receiver's ingress (lo, or a remote sender) it usually comes later.
// The event goes to the wire segments of its range nearest to it in time,
// so it is not given to the original transmission just before it.
func (c *Conn) kernelRetransmit(ev *event.Event, window uint64) *Segment {
	side, seq := ev.Side, event.Seq(ev.Seq)
	k := kernelRetx{ts: ev.TS, side: side, seq: seq, len: ev.Len, lossy: c.an.Lossy(),
		sighted: c.sightedSeq(side, seq, ev.TS, window), first: -1}
	for i := len(c.Segments) - 1; i >= 0; i-- {
		s := &c.Segments[i]
		if !near(s.TS, k.ts, window) {
			if s.TS < k.ts {
				break
			}
			continue
		}
		if s.Seq == k.seq && k.covers(s) && !s.KernelRetransmit && (k.first < 0 || k.closer(s, &c.Segments[k.first])) {
			k.first = i
		}
	}
	var marked *Segment
	if k.first >= 0 {
		for i := k.first; i < len(c.Segments) && !k.done(); i++ {
			if s := &c.Segments[i]; !s.KernelRetransmit && k.covers(s) {
				k.mark(s, i)
			}
		}
		marked = &c.Segments[k.first]
	}
	c.addPending(k)
	return marked
}

func (c *Conn) addPending(k kernelRetx) {
	if len(c.pending) >= maxPendingRetx {
		c.dropPending(0)
	}
	c.pending = append(c.pending, k)
}

// dropPending forgets a kernel event whose time window passed. One that no
// wire segment came for is a disagreement, explained when the stack was
// seen sending it at TC egress (it was lost before the wire) or records
// were being lost.
func (c *Conn) dropPending(i int) {
	if k := &c.pending[i]; k.covered == 0 {
		c.unmatched[b2i(k.sighted || k.lossy)]++
	}
	c.pending = append(c.pending[:i], c.pending[i+1:]...)
}

// sightedSeq says whether TC egress saw side send a segment starting at
// seq within window of ts.
func (c *Conn) sightedSeq(side Side, seq event.Seq, ts, window uint64) bool {
	for _, s := range c.sightings {
		if s.index != 0 && s.side == side && s.seq == seq && near(s.ts, ts, window) {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// matchPending offers a new wire segment, at position pos, to the kernel
// events still within their window: it takes the next bytes of one still
// short of them, or the whole event from the segments it went to when it
// starts at the event's first byte nearer to it in time.
func (c *Conn) matchPending(s *Segment, pos int, window uint64) {
	for i := 0; i < len(c.pending); i++ {
		k := &c.pending[i]
		if !near(s.TS, k.ts, window) {
			if s.TS > k.ts {
				c.dropPending(i)
				i--
			}
			continue
		}
		if !k.covers(s) {
			continue
		}
		switch {
		case s.Seq == k.seq && (k.first < 0 || k.closer(s, &c.Segments[k.first])):
			k.unmarkAll(c.Segments)
			k.first = pos
			k.mark(s, pos)
			return
		case k.first >= 0 && !k.done():
			k.mark(s, pos)
			return
		}
	}
}

// covers: s was sent by k's side and lies within k's range; the length may
// count SYN/FIN as one, depending on how the probe measured the skb.
func (k *kernelRetx) covers(s *Segment) bool {
	if s.From != k.side {
		return false
	}
	d := s.Seq.Diff(k.seq)
	if d < 0 || uint32(d) >= max(k.len, 1) {
		return false
	}
	off := uint32(d)
	return off+s.Len <= k.len || off+uint32(s.End().Diff(s.Seq)) <= k.len
}

// closer says whether a is nearer to the kernel event in time than b.
func (k *kernelRetx) closer(a, b *Segment) bool {
	return dist(a.TS, k.ts) < dist(b.TS, k.ts)
}

func (k *kernelRetx) mark(s *Segment, pos int) {
	s.KernelRetransmit, s.KernelKnown = true, true
	k.covered += max(s.Len, 1)
	if k.nmarked < maxMarked {
		k.marked[k.nmarked] = pos
		k.nmarked++
	}
}

func (k *kernelRetx) unmarkAll(segs []Segment) {
	for _, pos := range k.marked[:k.nmarked] {
		if pos >= 0 && pos < len(segs) {
			segs[pos].KernelRetransmit = false
		}
	}
	k.nmarked, k.covered, k.first = 0, 0, -1
}

func (k *kernelRetx) done() bool { return k.covered >= max(k.len, 1) }

// explain says why the heuristic and the kernel differ on s, when the
// reason is known, or "" when they agree or the difference is unexplained.
func (s *Segment) explain() string {
	switch {
	case s.Retransmission == s.KernelRetransmit:
		return ""
	case s.Lossy:
		return ExplainLostRecords
	case s.Retransmission && s.Tail:
		return ExplainTailLossProbe
	case s.KernelRetransmit && s.Advanced:
		return ExplainOriginalNotSeen
	case s.KernelRetransmit && s.has(analysis.OutOfOrder):
		return ExplainWithinRTT
	}
	return ""
}

func (s *Segment) has(k analysis.Kind) bool {
	for _, f := range s.Findings {
		if f.Kind == k {
			return true
		}
	}
	return false
}

func dist(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

func near(a, b, window uint64) bool { return dist(a, b) <= window }
