package timeline

import (
	"tcptracer/analysis"
	"tcptracer/event"
)

// segment handles one observation of a segment. Only the wire's
// observations are analysed, at one vantage point (the first interface the
// connection was seen on), so a segment is judged once per direction: the
// stack's own sighting at TC egress only lends its time to the wire record
// that pairs with it, and another interface's view of the same bytes is
// not a retransmission.
func (t *Timeline) segment(c *Conn, ev *event.Event) {
	from := ev.Side
	if !ev.Wire {
		c.sighted(ev, from)
		return
	}
	if c.vantage == 0 {
		c.vantage = ev.Ifindex
	}
	if ev.Ifindex != c.vantage {
		c.OtherVantage++
		return
	}
	if ev.Flags&event.SYN != 0 && ev.Flags&event.ACK == 0 {
		c.opened = true
	}
	s := c.record(ev, from)
	c.wireContext(s, from)
	res := c.an.Segment(analysis.Seg{Index: s.Index, TS: s.TS, From: int(from), Seq: s.Seq, Ack: s.Ack,
		Flags: s.Flags, Len: s.Len, Win: ev.Win, Opts: ev.Opts})
	s.Findings, s.Retransmission = res.Findings, res.Retransmission
	s.Violations = append(s.Violations, res.Violations...) // after the sender's, from senderView
	s.Win, s.WinScaled = res.Window, res.WindowScaled
	if ev.Flags&(event.SYN|event.ACK) == event.SYN && t.tuples.use(tuple{c.Client, c.Server}, c.ID) != 0 {
		s.Findings = append(s.Findings, analysis.Finding{Kind: analysis.ReusedPorts})
	}
	s.KernelKnown = t.opts.KernelRetransmits
	c.matchPending(s, c.position(s), uint64(t.opts.RetransmitWindow))
	c.repairs(s)
	c.dsack(s)
	c.track(s, from)
	if c.position(s) >= 0 {
		c.extraBytes += segExtra(s)
	}
	t.res.Segment = s
}

// record stores the segment (or reuses the overflow slot past the cap).
func (c *Conn) record(ev *event.Event, from Side) *Segment {
	seg := Segment{Index: ev.Index, TS: ev.TS, From: from, Dir: ev.Dir, Iface: ev.Iface,
		Seq: event.Seq(ev.Seq), Ack: event.Seq(ev.Ack), Flags: ev.Flags, Len: ev.Len, Opts: ev.Opts,
		SeqRel: ev.SeqRel, AckRel: ev.AckRel, HasAck: ev.HasAckRel, Derived: ev.RelDerived}
	seg.observed(ev)
	if sg := c.sightingOf(ev.TwinOf); sg != nil {
		seg.EgressTS = sg.ts
		c.senderView(&seg, sg)
	}
	if len(c.Segments) >= c.segCap {
		c.Truncated++
		c.overflow = seg
		return &c.overflow
	}
	c.Segments = append(c.Segments, seg)
	return &c.Segments[len(c.Segments)-1]
}

func (s *Segment) observed(ev *event.Event) {
	if ev.Dir == event.Egress {
		s.EgressTS = ev.TS
	} else {
		s.IngressTS = ev.TS
	}
}

// position is where s is in Segments, or -1 for the overflow slot.
func (c *Conn) position(s *Segment) int {
	if n := len(c.Segments); n > 0 && s == &c.Segments[n-1] {
		return n - 1
	}
	return -1
}

// sighted remembers when the stack sent a segment (TC egress), for the wire
// record that pairs with it.
func (c *Conn) sighted(ev *event.Event, from Side) {
	slot := &c.sightings[c.nsight%len(c.sightings)]
	if len(c.late) < maxAccount {
		c.late = append(c.late, slot.broke...) // its wire record never came
	}
	*slot = sighting{index: ev.Index, ts: ev.TS, seq: event.Seq(ev.Seq), len: ev.Len, side: from, sender: ev.Sender,
		broke: c.senderSighting(ev, from)}
	c.nsight++
}

// sightingOf returns the sighting with the given Index, or nil.
func (c *Conn) sightingOf(index uint64) *sighting {
	for i := range c.sightings {
		if s := &c.sightings[i]; s.index == index && index != 0 {
			return s
		}
	}
	return nil
}

// senderView gives a wire segment its sender's state from the TC egress
// sighting it pairs with, and the kernel-side rules that sighting broke
// (once: the other pieces of a GSO split carry none).
func (c *Conn) senderView(s *Segment, sg *sighting) {
	if !sg.sender.Valid {
		return
	}
	s.Sender = sg.sender
	s.SenderRetransmit = analysis.SenderRetransmission(&analysis.SenderSeg{Seq: uint32(s.Seq), Len: s.Len, Flags: s.Flags, Sender: &s.Sender})
	for _, v := range sg.broke {
		v.Index = s.Index
		s.Violations = append(s.Violations, v)
	}
	sg.broke = nil
}

// byIndex finds a recent segment by its stream Index.
func (c *Conn) byIndex(idx uint64) *Segment {
	for i := len(c.Segments) - 1; i >= 0 && i >= len(c.Segments)-64; i-- {
		if c.Segments[i].Index == idx {
			return &c.Segments[i]
		}
	}
	if c.overflow.Index == idx {
		return &c.overflow
	}
	return nil
}

// wireContext notes what the wire had carried from the sender when s came,
// before s is counted, and whether records were being lost.
func (c *Conn) wireContext(s *Segment, from Side) {
	f := &c.Flows[from]
	data := s.Len > 0 || s.Flags&(event.SYN|event.FIN) != 0
	s.Advanced = data && (!f.seqSet || s.End().GT(f.NextSeq))
	s.Tail = s.Len > 0 && f.seqSet && s.End() == f.NextSeq && s.Seq.LT(f.NextSeq)
	s.Lossy = c.an.Lossy()
}

// track updates the per-direction numbers and the closing state.
func (c *Conn) track(s *Segment, from Side) {
	f := &c.Flows[from]
	f.Segments++
	end := s.End()
	if !f.seqSet || end.GT(f.NextSeq) {
		f.NextSeq = end
	}
	f.countBytes(s)
	if !f.seqSet || s.Seq.GT(f.HighSeq) {
		f.HighSeq = s.Seq
	}
	f.seqSet = true
	if s.Flags&event.ACK != 0 {
		f.LastAck, f.HasAck = s.Ack, true
	}
	f.Window, f.Scaled = s.Win, s.WinScaled
	c.handshakeMarks(s)
	c.closing(s, from)
}

// countBytes keeps the span of payload the sender's segments covered, so
// retransmitted bytes count once and segments the vantage point saw out of
// order count when they arrive.
func (f *Flow) countBytes(s *Segment) {
	if s.Len == 0 {
		return
	}
	from, to := s.Seq, s.Seq.Add(s.Len)
	if !f.dataSet {
		f.dataFrom, f.dataTo, f.dataSet = from, to, true
	}
	if from.LT(f.dataFrom) {
		f.dataFrom = from
	}
	if to.GT(f.dataTo) {
		f.dataTo = to
	}
	f.Bytes = uint64(f.dataTo - f.dataFrom)
}

// handshakeMarks remembers the SYN, SYN-ACK and final ACK for the RTTs.
func (c *Conn) handshakeMarks(s *Segment) {
	pos := len(c.Segments) - 1
	if pos < 0 || s != &c.Segments[pos] {
		return
	}
	switch {
	case s.Flags&(event.SYN|event.ACK) == event.SYN:
		c.synIdx = pos
	case s.Flags&(event.SYN|event.ACK) == event.SYN|event.ACK:
		c.synackIdx = pos
	case c.ackTS == 0 && (c.synackIdx >= 0 || c.hsKept[1]) && s.From == Client && s.Flags&event.ACK != 0:
		c.ackTS = s.TS
	}
}

// closing tracks FINs, their ACKs and RSTs, and who closed first.
func (c *Conn) closing(s *Segment, from Side) {
	peer := from.Peer()
	if s.Flags&event.FIN != 0 && !c.fin[from] {
		c.fin[from], c.finEnd[from] = true, s.End()
		c.closedBy(from)
	}
	if s.Flags&event.RST != 0 {
		c.rst = true
		c.closedBy(from)
	}
	if s.Flags&event.ACK != 0 && c.fin[peer] && s.Ack.GE(c.finEnd[peer]) {
		c.finAcked[peer] = true
	}
}

func (c *Conn) closedBy(s Side) {
	if !c.closerSet {
		c.closer, c.closerSet = s, true
	}
}
