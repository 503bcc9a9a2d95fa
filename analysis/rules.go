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

	// After lost records: resync, where this side's next segment must
	// start is unknown until it is seen; ackUnknown, maxEnd may be stale
	// until this side shows its highest sequence number again.
	resync     bool
	ackUnknown bool

	// Where the vantage point may see a sender's segments out of order
	// (lo ingress runs on several CPUs' backlogs), a segment beyond next
	// leaves a hole that a later one may fill, and a pure ACK sent before
	// a segment may arrive after it. holes are the unfilled gaps; starts
	// are recent new segments' seq and ack.
	holes  [maxHoles]hole
	nholes int
	starts [8]start
	nstart int
}

const maxHoles = 8

// hole is sequence space [from, to) skipped by the segment after #after.
type hole struct {
	from, to event.Seq
	after    uint64 // the segment that set next
	at       uint64 // the segment that skipped it
	rule     Rule
}

type start struct{ seq, ack event.Seq }

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
		f.maxEnd, f.maxSet, f.ackUnknown = s.end(), true, false
	} else if f.ackUnknown && s.Len == 0 && !s.has(event.SYN|event.FIN|event.RST) && !s.Seq.LT(f.maxEnd) {
		f.ackUnknown = false // a pure ACK carries the sender's snd_nxt
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
	if f.resync {
		// Records were lost: this segment says where the side is now.
		f.resync = false
		if f.nextSet && !c.repeats(s, f) {
			f.next = s.Seq
		}
	}
	if f.nextSet && !c.repeats(s, f) && s.Seq != f.next {
		switch {
		case s.Seq.GT(f.next):
			f.openHole(hole{from: f.next, to: s.Seq, after: f.nextFrom, at: s.Index, rule: f.nextRule})
		case !f.sentBefore(s):
			r.Violations = append(r.Violations, Violation{f.nextRule, s.Index,
				fmt.Sprintf("seq %s, want %s after #%d", f.rel(s.Seq), f.rel(f.next), f.nextFrom)})
		}
		f.next = s.Seq // resynchronise so one mistake is reported once
	}
	f.fillHoles(s.Seq, s.end())
	if f.nextSet && s.Seq == f.next {
		f.nextSeen = true
	}
	if s.Len == 0 && !s.has(event.SYN|event.FIN) {
		return
	}
	if !f.nextSet || s.end().GT(f.next) {
		if !s.has(event.SYN) {
			f.starts[f.nstart%len(f.starts)] = start{s.Seq, s.Ack}
			f.nstart++
		}
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

// sentBefore says whether a pure ACK behind next may have been sent before
// a recent segment that overtook it: it starts where that segment started
// and acknowledges no more than it did (a sender's acks never go back).
func (f *ruleState) sentBefore(s *Seg) bool {
	if s.Len != 0 || s.has(event.SYN|event.FIN) {
		return false
	}
	for i := 0; i < min(f.nstart, len(f.starts)); i++ {
		if st := f.starts[i]; st.seq == s.Seq && s.Ack.LE(st.ack) {
			return true
		}
	}
	return false
}

// openHole remembers skipped sequence space; when too many are open the
// oldest is forgotten (judged neither way).
func (f *ruleState) openHole(h hole) {
	if f.nholes == maxHoles {
		copy(f.holes[:], f.holes[1:])
		f.nholes--
	}
	f.holes[f.nholes] = h
	f.nholes++
}

// fillHoles removes the part of every hole that [from, to) covers.
func (f *ruleState) fillHoles(from, to event.Seq) {
	out := 0
	for _, h := range f.holes[:f.nholes] {
		switch {
		case !to.GT(h.from) || !from.LT(h.to): // no overlap
		case !from.GT(h.from) && !to.LT(h.to): // covered
			continue
		case from.GT(h.from) && to.LT(h.to): // a piece in the middle
			if f.nholes+1 <= maxHoles {
				f.holes[out] = hole{h.from, from, h.after, h.at, h.rule}
				out++
				h.from = to
			} else {
				h.to = from
			}
		case from.GT(h.from):
			h.to = from
		default:
			h.from = to
		}
		f.holes[out] = h
		out++
	}
	f.nholes = out
}

// Finish reports the holes still open when the connection ended that the
// peer never acknowledged past: sequence space the sender skipped. A hole
// the peer acknowledged was sent; the tracer missed it.
func (c *Conn) Finish() []Violation {
	var out []Violation
	for i := range c.flows {
		f, peer := &c.flows[i].rules, &c.flows[1-i]
		for _, h := range f.holes[:f.nholes] {
			if peer.ackSet && peer.lastAck.GT(h.from) {
				continue
			}
			out = append(out, Violation{h.rule, h.at,
				fmt.Sprintf("seq %s, want %s after #%d (never sent before the end)", f.rel(h.to), f.rel(h.from), h.after)})
		}
		f.nholes = 0
	}
	return out
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
	if known && s.Ack.GT(upper) && !p.ackUnknown {
		r.Violations = append(r.Violations, Violation{AckInRange, s.Index,
			fmt.Sprintf("ack %s beyond the peer's highest %s", p.rel(s.Ack), p.rel(upper))})
		return
	}
	if p.isnSet && s.Ack.LT(p.isn) {
		r.Violations = append(r.Violations, Violation{AckInRange, s.Index,
			fmt.Sprintf("ack %s before the peer's ISN", p.rel(s.Ack))})
	}
}
