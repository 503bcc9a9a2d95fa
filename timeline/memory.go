package timeline

import (
	"unsafe"

	"tcptracer/analysis"
	"tcptracer/event"
)

// Bytes the memory bound counts, from the types themselves. A connection
// also costs an entry in Timeline.conns, in the LRU list, and ids in the
// ended and tuple sets; entryBytes is a generous figure for those.
const entryBytes = 4 * 64

var (
	SegmentBytes   = int64(unsafe.Sizeof(Segment{}))
	StateBytes     = int64(unsafe.Sizeof(StateChange{}))
	findingBytes   = int64(unsafe.Sizeof(analysis.Finding{}))
	violationBytes = int64(unsafe.Sizeof(analysis.Violation{}))
	pendingBytes   = int64(unsafe.Sizeof(kernelRetx{}))
	connBytes      = int64(unsafe.Sizeof(Conn{})) + entryBytes
)

// setsBytes is what the ended and tuple sets of n entries hold: their
// rings and maps, a map slot counted twice for its load factor.
func setsBytes(n int) int64 {
	mapBytes := func(kv int64) int64 { return int64(n) * 2 * (kv + 1) }
	tupleBytes := int64(unsafe.Sizeof(tuple{}))
	return int64(n)*8 + mapBytes(8) + int64(n)*tupleBytes + mapBytes(tupleBytes+8)
}

// ConnBytes is what a connection costs with no history kept: the timeline's
// record, the analyzer's and the table entries.
func ConnBytes() int64 { return connBytes + analysis.NewConn().Bytes() }

// Dropped says what of a connection's history the memory bound dropped:
// its oldest segments and state changes, from the first one to Through
// (stream Index). Their findings, retransmissions and violations are
// still counted in the summary.
type Dropped struct {
	Segments int
	States   int
	Through  uint64
}

// memory is what c holds now: slices by capacity, the findings and
// violations of kept segments by their own capacity.
func (c *Conn) memory() int64 {
	return connBytes + c.an.Bytes() + int64(cap(c.Segments))*SegmentBytes + int64(cap(c.States))*StateBytes +
		int64(cap(c.pending))*pendingBytes + c.extraBytes
}

func segExtra(s *Segment) int64 {
	n := int64(cap(s.Findings))*findingBytes + int64(cap(s.Violations))*violationBytes
	for _, v := range s.Violations {
		n += int64(len(v.Detail))
	}
	return n
}

// account updates the timeline's total after an event changed c.
func (t *Timeline) account(c *Conn) {
	m := c.memory()
	t.mem += m - c.mem
	c.mem = m
}

// reclaim brings the memory held back under the bound with room to
// spare (so it does not run on every event): first the oldest history
// of the least recently active connections is folded into their
// summaries and dropped, then, if the connections alone exceed it, the
// least recently active are ended as "evicted".
func (t *Timeline) reclaim() {
	target := t.opts.MaxMemory / 8 * 7
	for c := t.lru.oldest(); c != nil && t.mem > target; c = t.lru.newer(c) {
		if len(c.Segments) > 0 || len(c.States) > 0 {
			c.dropHistory(t.opts.KernelRetransmits)
			t.account(c)
		}
	}
	for t.mem > target && len(t.conns) > 1 {
		t.finish(t.lru.oldest(), "evicted")
	}
}

// dropHistory folds c's kept segments and the state changes up to the
// last of them into c's tally and frees them, but for the most recent
// few, which kernel retransmit events and rcv_state may still refer to.
func (c *Conn) dropHistory(kernelKnown bool) {
	const keep = 16
	n := max(len(c.Segments)-keep, 0)
	if c.tally == nil {
		c.tally = &Summary{Findings: map[string]int{}}
	}
	for i := range c.Segments[:n] {
		s := &c.Segments[i]
		c.count(c.tally, s, kernelKnown)
		if s.Flags&event.RST != 0 {
			c.droppedRST[s.From]++
		}
		c.extraBytes -= segExtra(s)
	}
	// States go up to the first segment kept (all of them when none is).
	through := ^uint64(0)
	if len(c.Segments) > n {
		through = c.Segments[n].Index - 1
	}
	if n > 0 {
		c.keepHandshake(n)
		c.Dropped.Through = c.Segments[n-1].Index
		c.Segments = append([]Segment(nil), c.Segments[n:]...)
		c.shiftPositions(n)
		c.Dropped.Segments += n
	}
	c.dropStates(through)
}

// dropStates frees the state changes before stream position through.
func (c *Conn) dropStates(through uint64) {
	i := 0
	for i < len(c.States) && c.States[i].Index <= through {
		i++
	}
	if i == 0 {
		return
	}
	c.Dropped.States += i
	c.Dropped.Through = max(c.Dropped.Through, c.States[i-1].Index)
	c.States = append([]StateChange(nil), c.States[i:]...)
}

// keepHandshake copies the SYN and SYN-ACK before they are dropped: the
// summary's handshake times come from them.
func (c *Conn) keepHandshake(n int) {
	if c.synIdx >= 0 && c.synIdx < n {
		c.hs[0], c.hsKept[0], c.synIdx = c.Segments[c.synIdx], true, -1
	}
	if c.synackIdx >= 0 && c.synackIdx < n {
		c.hs[1], c.hsKept[1], c.synackIdx = c.Segments[c.synackIdx], true, -1
	}
}

// shiftPositions moves the positions into Segments after the first n
// were dropped; one that pointed at a dropped segment points nowhere.
func (c *Conn) shiftPositions(n int) {
	shift := func(p *int) {
		if *p >= n {
			*p -= n
		} else {
			*p = -1
		}
	}
	if c.synIdx >= 0 {
		shift(&c.synIdx)
	}
	if c.synackIdx >= 0 {
		shift(&c.synackIdx)
	}
	for i := range c.lastRcv {
		if c.lastRcv[i] >= 0 {
			shift(&c.lastRcv[i])
		}
	}
	for i := range c.pending {
		k := &c.pending[i]
		if k.first >= 0 {
			shift(&k.first)
		}
		for j := range k.marked[:k.nmarked] {
			shift(&k.marked[j])
		}
	}
}

// handshakeSeg returns the SYN (0) or SYN-ACK (1), kept or copied, or nil.
func (c *Conn) handshakeSeg(which int) *Segment {
	idx := [2]int{c.synIdx, c.synackIdx}[which]
	switch {
	case idx >= 0:
		return &c.Segments[idx]
	case c.hsKept[which]:
		return &c.hs[which]
	}
	return nil
}

// addTally adds what the dropped history counted to s.
func (c *Conn) addTally(s *Summary) {
	d := c.tally
	if d == nil {
		return
	}
	for k, n := range d.Findings {
		s.Findings[k] += n
	}
	for side := range s.Sent {
		s.Sent[side].Retransmissions += d.Sent[side].Retransmissions
		s.Sent[side].KernelRetransmissions += d.Sent[side].KernelRetransmissions
	}
	s.Resets += d.Resets
	s.Retransmissions += d.Retransmissions
	s.KernelRetransmissions += d.KernelRetransmissions
	s.Disagreements += d.Disagreements
	for k, n := range d.Explained {
		s.addExplained(k, n)
	}
	s.Violations = append(s.Violations, d.Violations...)
}
