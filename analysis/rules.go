package analysis

import (
	"fmt"

	"tcptracer/event"
)

// ruleState is what the TCP rules need per direction.
type ruleState struct {
	isn    event.Seq
	isnSet bool // from this side's SYN, or the connect event

	next     event.Seq // where this side's next new segment must start
	nextSet  bool
	nextRule Rule   // which rule a wrong start breaks
	nextFrom uint64 // the segment that set next
	nextSeen bool   // a segment already started at next

	maxEnd event.Seq // highest seq + len (+1 for SYN/FIN) ever sent
	maxSet bool

	awaitHandshakeAck bool // the peer sent its SYN-ACK; this side's first ACK must ack it
}

// rel renders a sequence number relative to the side's ISN when known.
func (rs *ruleState) rel(v event.Seq) string {
	if rs.isnSet {
		return fmt.Sprintf("%d (rel)", v-rs.isn)
	}
	return fmt.Sprintf("%d (abs)", v)
}

// checkRules applies TCP's rules to a segment before the state moves on.
func (c *Conn) checkRules(s *Seg, fwd, rev *flow, r *Result) {
	f, p := &fwd.rules, &rev.rules
	handshakeBroken := c.handshakeRules(s, f, p, r)
	if !s.has(event.RST) {
		c.continuity(s, f, r)
	}
	if s.has(event.ACK) && !handshakeBroken {
		c.ackRange(s, p, r)
	}
	if !f.maxSet || s.end().GT(f.maxEnd) {
		f.maxEnd, f.maxSet = s.end(), true
	}
}

// handshakeRules checks the SYN-ACK's and the final handshake ACK's
// acknowledgment numbers; it reports whether one was wrong.
func (c *Conn) handshakeRules(s *Seg, f, p *ruleState, r *Result) bool {
	if s.has(event.SYN) {
		f.isn, f.isnSet = s.Seq, true
		if !s.has(event.ACK) {
			return false
		}
		p.awaitHandshakeAck = true
		if p.isnSet && s.Ack != p.isn+1 {
			r.Violations = append(r.Violations, Violation{SynAckAcksISN, s.Index,
				fmt.Sprintf("SYN-ACK ack %s, want the client's ISN+1 (1 rel)", p.rel(s.Ack))})
			return true
		}
		return false
	}
	if !f.awaitHandshakeAck || !s.has(event.ACK) || s.has(event.RST) {
		return false
	}
	f.awaitHandshakeAck = false
	if p.isnSet && s.Ack != p.isn+1 {
		r.Violations = append(r.Violations, Violation{HandshakeAcksISN, s.Index,
			fmt.Sprintf("final handshake ACK ack %s, want the server's ISN+1 (1 rel)", p.rel(s.Ack))})
		return true
	}
	return false
}

// continuity checks that a segment which is not a repeat of old sequence
// space starts exactly where the side's previous new segment ended: that
// is how SYN and FIN consume one number and data advances by its length.
func (c *Conn) continuity(s *Seg, f *ruleState, r *Result) {
	if f.nextSet && !c.repeats(s, f) && s.Seq != f.next {
		if !(c.Lossy && s.Seq.GT(f.next)) {
			r.Violations = append(r.Violations, Violation{f.nextRule, s.Index,
				fmt.Sprintf("seq %s, want %s after #%d", f.rel(s.Seq), f.rel(f.next), f.nextFrom)})
		}
		f.next = s.Seq // resynchronise so one mistake is reported once
	}
	if f.nextSet && s.Seq == f.next {
		f.nextSeen = true
	}
	if s.Len == 0 && !s.has(event.SYN|event.FIN) {
		return
	}
	if !f.nextSet || s.end().GT(f.next) {
		f.next, f.nextSet, f.nextFrom, f.nextSeen = s.end(), true, s.Index, false
		f.nextRule = DataAdvancesSeq
		switch {
		case s.has(event.SYN):
			f.nextRule = SynConsumesOne
		case s.has(event.FIN):
			f.nextRule = FinConsumesOne
		}
	}
}

// repeats reports a segment that legitimately does not start at next: a
// retransmission of sequence space already sent, or a keep-alive (after
// data, or once the segment after a SYN or FIN started where it should).
func (c *Conn) repeats(s *Seg, f *ruleState) bool {
	if (s.Len > 0 || s.has(event.SYN|event.FIN)) && s.Seq.LT(f.next) {
		return true
	}
	plain := !s.has(event.SYN | event.FIN)
	keepAliveOK := f.nextRule == DataAdvancesSeq || f.nextSeen
	return keepAliveOK && plain && s.Len <= 1 && s.Seq == f.next-1
}

// ackRange checks that an ACK lies between the peer's ISN and the end of
// what the peer has sent.
func (c *Conn) ackRange(s *Seg, p *ruleState, r *Result) {
	upper, known := p.maxEnd, p.maxSet
	if !known && p.isnSet {
		upper, known = p.isn+1, true
	}
	if known && s.Ack.GT(upper) && !c.Lossy {
		r.Violations = append(r.Violations, Violation{AckInRange, s.Index,
			fmt.Sprintf("ack %s beyond the peer's highest %s", p.rel(s.Ack), p.rel(upper))})
		return
	}
	if p.isnSet && s.Ack.LT(p.isn) {
		r.Violations = append(r.Violations, Violation{AckInRange, s.Index,
			fmt.Sprintf("ack %s before the peer's ISN", p.rel(s.Ack))})
	}
}
