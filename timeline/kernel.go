package timeline

import "tcptracer/event"

const maxPendingRetx = 64

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
	// Records were lost around this segment, so the tracer may have
	// missed the original, the retransmission or the kernel's report.
	ExplainLostRecords = "lost_records"
	// The kernel reported a retransmission the wire never carried at this
	// vantage point (dropped before it, e.g. by the qdisc).
	ExplainNotOnWire = "not_on_wire"
)

// kernelRetransmit matches a tcp_retransmit_skb event with the wire
// segments it sent. The tracepoint fires after the skb was handed to the
// device, so on most interfaces the segments are already here; on lo the
// ingress copy, which is the wire's, usually comes later and the event
// waits for it.
func (c *Conn) kernelRetransmit(ev *event.Event, window uint64) *Segment {
	side, seq := ev.Side, event.Seq(ev.Seq)
	k := kernelRetx{ts: ev.TS, side: side, seq: seq, len: ev.Len, lossy: c.an.Lossy(), sighted: c.sightedSeq(side, seq, ev.TS, window)}
	first := c.markCovered(&k, window)
	if !k.done() {
		c.addPending(k)
	}
	return first
}

// markCovered marks, newest first, the segments within k's range and time
// window, down to the one that starts at k's first byte: the latest
// sending of those bytes, never the original transmission before it. It
// returns the newest segment marked.
func (c *Conn) markCovered(k *kernelRetx, window uint64) *Segment {
	var newest *Segment
	for i := len(c.Segments) - 1; i >= 0 && !k.done(); i-- {
		s := &c.Segments[i]
		if !near(s.TS, k.ts, window) {
			if s.TS < k.ts {
				break
			}
			continue
		}
		if s.KernelRetransmit || !k.covers(s) {
			continue
		}
		k.mark(s)
		if newest == nil {
			newest = s
		}
		if s.Seq == k.seq {
			break
		}
	}
	return newest
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

// matchPending gives a new segment a kernel retransmit event that came first.
func (c *Conn) matchPending(s *Segment, window uint64) {
	for i := 0; i < len(c.pending); i++ {
		k := &c.pending[i]
		if !near(s.TS, k.ts, window) {
			if s.TS > k.ts {
				c.dropPending(i)
				i--
			}
			continue
		}
		if k.covers(s) {
			k.mark(s)
			if k.done() {
				c.pending = append(c.pending[:i], c.pending[i+1:]...)
			}
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

func (k *kernelRetx) mark(s *Segment) {
	s.KernelRetransmit, s.KernelKnown = true, true
	k.covered += max(s.Len, 1)
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
	}
	return ""
}

func near(a, b, window uint64) bool {
	if a > b {
		return a-b <= window
	}
	return b-a <= window
}
