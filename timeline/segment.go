package timeline

import (
	"tcptracer/analysis"
	"tcptracer/event"
)

// segment handles one TC observation of a segment.
func (t *Timeline) segment(c *Conn, ev *event.Event) {
	from := ev.Side
	if ev.DupOf != 0 {
		c.duplicate(ev)
		return
	}
	if ev.Flags&event.SYN != 0 && ev.Flags&event.ACK == 0 {
		c.opened = true
	}
	s := c.record(ev, from)
	res := c.an.Segment(analysis.Seg{Index: s.Index, TS: s.TS, From: int(from), Seq: s.Seq, Ack: s.Ack,
		Flags: s.Flags, Len: s.Len, Win: ev.Win, Opts: ev.Opts})
	s.Findings, s.Violations, s.Retransmission = res.Findings, res.Violations, res.Retransmission
	s.Win, s.WinScaled = res.Window, res.WindowScaled
	if ev.Flags&(event.SYN|event.ACK) == event.SYN && t.tuples.use(tuple{c.Client, c.Server}, c.ID) != 0 {
		s.Findings = append(s.Findings, analysis.Finding{Kind: analysis.ReusedPorts})
	}
	s.KernelKnown = t.opts.KernelRetransmits
	c.matchPending(s, uint64(t.opts.RetransmitWindow))
	c.track(s, from)
	t.res.Segment = s
}

// record stores the segment (or reuses the overflow slot past the cap).
func (c *Conn) record(ev *event.Event, from Side) *Segment {
	seg := Segment{Index: ev.Index, TS: ev.TS, From: from, Dir: ev.Dir, Iface: ev.Iface,
		Seq: event.Seq(ev.Seq), Ack: event.Seq(ev.Ack), Flags: ev.Flags, Len: ev.Len, Opts: ev.Opts,
		SeqRel: ev.SeqRel, AckRel: ev.AckRel, HasAck: ev.HasAckRel, Derived: ev.RelDerived}
	seg.observed(ev)
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

// duplicate notes the second loopback observation's time on the first.
func (c *Conn) duplicate(ev *event.Event) {
	if s := c.byIndex(ev.DupOf); s != nil {
		s.observed(ev)
	}
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

// track updates the per-direction numbers and the closing state.
func (c *Conn) track(s *Segment, from Side) {
	f := &c.Flows[from]
	f.Segments++
	end, dataEnd := s.End(), s.Seq.Add(s.Len)
	if !f.seqSet || end.GT(f.NextSeq) {
		if f.seqSet && dataEnd.GT(f.NextSeq) {
			f.Bytes += uint64(dataEnd.Diff(s.Seq.Max(f.NextSeq)))
		} else if !f.seqSet {
			f.Bytes += uint64(s.Len)
		}
		f.NextSeq = end
	}
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
	case c.ackTS == 0 && c.synackIdx >= 0 && s.From == Client && s.Flags&event.ACK != 0:
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
