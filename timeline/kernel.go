package timeline

import "tcptracer/event"

const maxPendingRetx = 64

// kernelRetransmit matches a tcp_retransmit_skb event with the segment
// it sent: same side, seq and length, within window ns. The tracepoint
// fires after the skb was handed to the device, so the segment is usually
// already here; otherwise the event waits for it.
func (c *Conn) kernelRetransmit(ev *event.Event, window uint64) *Segment {
	k := kernelRetx{ts: ev.TS, side: ev.Side, seq: event.Seq(ev.Seq), len: ev.Len}
	for i := len(c.Segments) - 1; i >= 0; i-- {
		s := &c.Segments[i]
		if !near(s.TS, k.ts, window) {
			if s.TS < k.ts {
				break
			}
			continue
		}
		if !s.KernelRetransmit && k.matches(s) {
			s.KernelRetransmit, s.KernelKnown = true, true
			return s
		}
	}
	if len(c.pending) >= maxPendingRetx {
		c.pending = c.pending[1:] // still unmatched: counted as a disagreement
		c.lostRetx++
	}
	c.pending = append(c.pending, k)
	return nil
}

// matchPending gives a new segment a kernel retransmit event that came first.
func (c *Conn) matchPending(s *Segment, window uint64) {
	for i, k := range c.pending {
		if near(s.TS, k.ts, window) && k.matches(s) {
			s.KernelRetransmit, s.KernelKnown = true, true
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
}

// matches compares seq and length; the length may count SYN/FIN as one,
// depending on how the probe measured the skb.
func (k *kernelRetx) matches(s *Segment) bool {
	if s.From != k.side || s.Seq != k.seq {
		return false
	}
	return k.len == s.Len || k.len == uint32(s.End().Diff(s.Seq))
}

func near(a, b, window uint64) bool {
	if a > b {
		return a-b <= window
	}
	return b-a <= window
}
