package analysis

import (
	"unsafe"

	"tcptracer/event"
)

// Thresholds Wireshark uses when telling retransmissions apart.
const (
	fastRetransmitWindow = 20_000_000 // ns after the last duplicate ACK
	outOfOrderDefault    = 3_000_000  // ns, when the initial RTT is unknown
	maxUnacked           = 256        // unacknowledged segments remembered per direction
)

// maxWindowShift is the largest window scale shift RFC 7323 allows.
const maxWindowShift = 14

// Window scale states, as Wireshark keeps them.
const (
	wsUnknown = -1 // no SYN seen: the shift is not known
	wsNone    = -2 // the handshake did not agree on scaling
)

// Seg is one segment, counted once (loopback duplicates already removed).
type Seg struct {
	Index uint64 // stream position; findings refer to segments by it
	TS    uint64 // nanoseconds
	From  int    // 0 or 1: which endpoint sent it (the timeline uses 0 = client)
	Seq   event.Seq
	Ack   event.Seq
	Flags uint16
	Len   uint32
	Win   uint16 // as on the wire, unscaled
	Opts  event.Options
}

func (s *Seg) has(f uint16) bool { return s.Flags&f != 0 }

// end is the sequence number after the segment: SYN and FIN count one.
func (s *Seg) end() event.Seq {
	e := s.Seq.Add(s.Len)
	if s.has(event.SYN | event.FIN) {
		e++
	}
	return e
}

// Result is what the analyzer says about one segment.
type Result struct {
	Findings   []Finding
	Violations []Violation
	// Window is the advertised window, scaled when the handshake's scale
	// is known. WindowScaled is false when the SYN was missed (or the
	// segment is a SYN), in which case Window is the raw header value.
	Window       uint32
	WindowScaled bool
	// Retransmission is Wireshark's verdict: retransmission, fast or spurious.
	Retransmission bool
}

func (r *Result) add(f Finding) { r.Findings = append(r.Findings, f) }

func (r *Result) has(k Kind) bool {
	for _, f := range r.Findings {
		if f.Kind == k {
			return true
		}
	}
	return false
}

type unacked struct {
	index    uint64
	seq, end event.Seq
	ts       uint64
}

// flow is one direction's analysis state, named after Wireshark's fields.
type flow struct {
	nextSet    bool
	nextSeq    event.Seq // highest seq + len seen (+1 for SYN/FIN)
	nextTS     uint64
	maxToAck   event.Seq // highest contiguous seq, for ack_lost_segment
	maxSet     bool
	ackSet     bool
	lastAck    event.Seq
	lastAckTS  uint64
	winSet     bool
	window     uint32 // scaled
	ws         int
	dupAcks    int
	lastNonDup uint64
	lastKinds  []Kind // findings of the previous segment in this direction
	unacked    []unacked

	rules ruleState
}

// Conn analyses one connection's segments in order.
type Conn struct {
	flows    [2]flow
	synTS    uint64 // first SYN, for the initial RTT
	firstRTT uint64
	// spans are the stretches of the stream where records were lost and
	// the rules that need a direction's history could not be judged.
	spans    []Span
	spanOpen bool
	spansCut int // spans beyond maxSpans, counted only
}

// Span is a stretch of the stream, by event Index, over which some of TCP's
// rules could not be judged because the tracer lost records: from the lost
// report to the segment after which every rule is judged again (0 while
// the span is still open).
type Span struct{ From, To uint64 }

const maxSpans = 64

// Loss tells the analyzer that records were lost at stream position index.
// Until each direction is seen again, where its next segment must start
// is unknown, and until each side shows its highest sequence number again,
// so is how far the peer may acknowledge: those checks are skipped, never
// reported as violations.
func (c *Conn) Loss(index uint64) {
	for i := range c.flows {
		r := &c.flows[i].rules
		r.resync, r.ackUnknown = true, true
	}
	if c.spanOpen {
		return
	}
	c.spanOpen = true
	if len(c.spans) == maxSpans {
		c.spansCut++
		return
	}
	c.spans = append(c.spans, Span{From: index})
}

// Lossy says a span of lost records is open: some rules are not judged.
func (c *Conn) Lossy() bool { return c.spanOpen }

// Spans returns the spans of lost records so far, and how many more there
// were beyond the ones kept.
func (c *Conn) Spans() ([]Span, int) { return c.spans, c.spansCut }

// closeSpan ends the open span at index once every rule can be judged.
func (c *Conn) closeSpan(index uint64) {
	for i := range c.flows {
		if r := &c.flows[i].rules; r.resync || r.ackUnknown {
			return
		}
	}
	c.spanOpen = false
	if n := len(c.spans); n > 0 && c.spans[n-1].To == 0 && c.spansCut == 0 {
		c.spans[n-1].To = index
	}
}

// NewConn returns an analyzer for one connection.
func NewConn() *Conn {
	c := &Conn{}
	c.flows[0].ws, c.flows[1].ws = wsUnknown, wsUnknown
	return c
}

// SetISN records a side's ISN learned outside the segments (the connect
// event), so the ack-range rule can be checked even if the SYN was missed.
func (c *Conn) SetISN(from int, isn event.Seq) {
	r := &c.flows[from].rules
	if !r.isnSet {
		r.isn, r.isnSet = isn, true
	}
}

// Segment analyses one segment and updates the state.
func (c *Conn) Segment(s Seg) Result {
	fwd, rev := &c.flows[s.From], &c.flows[1-s.From]
	var r Result
	c.handshake(&s, fwd, rev)
	r.Window, r.WindowScaled = scaledWindow(&s, fwd)
	c.checkRules(&s, fwd, rev, &r)
	if !c.probes(&s, fwd, rev, &r) {
		c.acks(&s, fwd, rev, &r)
	}
	c.lostAcked(&s, fwd, rev, &r)
	c.retransmission(&s, fwd, rev, &r)
	c.remember(&s, fwd, rev, &r)
	if c.spanOpen {
		c.closeSpan(s.Index)
	}
	return r
}

// handshake learns window scaling and the initial RTT, as Wireshark does.
func (c *Conn) handshake(s *Seg, fwd, rev *flow) {
	if s.has(event.SYN) {
		fwd.ws = wsUnknown
		if s.Opts.HasWS {
			// RFC 7323 2.3: a shift above 14 is used as 14.
			fwd.ws = min(int(s.Opts.WScale), maxWindowShift)
		}
		switch {
		case fwd.ws == wsUnknown:
			fwd.ws, rev.ws = wsNone, wsNone
		case s.has(event.ACK) && rev.ws == wsNone:
			fwd.ws = wsNone
		}
		if !s.has(event.ACK) && c.synTS == 0 {
			c.synTS = s.TS
		}
		return
	}
	if c.firstRTT == 0 && c.synTS != 0 && s.From == 0 && s.has(event.ACK) && rev.nextSet {
		c.firstRTT = s.TS - c.synTS
	}
}

func scaledWindow(s *Seg, fwd *flow) (uint32, bool) {
	w := uint32(s.Win)
	switch {
	case s.has(event.SYN):
		return w, true // never scaled
	case fwd.ws >= 0:
		return w << uint(fwd.ws), true
	case fwd.ws == wsNone:
		return w, true
	}
	return w, false
}

// probes handles the findings that end Wireshark's forward checks early:
// zero window probes, and the ACKs of keep-alives and probes.
func (c *Conn) probes(s *Seg, fwd, rev *flow, r *Result) bool {
	if s.Len == 1 && fwd.nextSet && s.Seq == fwd.nextSeq && rev.winSet && rev.window == 0 {
		r.add(Finding{Kind: ZeroWindowProbe})
		return true
	}
	plain := !s.has(event.SYN | event.FIN | event.RST)
	if r.Window == 0 && plain {
		r.add(Finding{Kind: ZeroWindow})
	}
	if fwd.nextSet && s.Seq.GT(fwd.nextSeq) && !s.has(event.RST) {
		r.add(Finding{Kind: PreviousSegmentNotSeen})
	}
	if s.Len <= 1 && fwd.nextSet && s.Seq == fwd.nextSeq-1 && plain {
		r.add(Finding{Kind: KeepAlive})
	}
	sameAck := s.Len == 0 && plain && fwd.nextSet && s.Seq == fwd.nextSeq && fwd.ackSet && s.Ack == fwd.lastAck
	if sameAck && r.Window != 0 && fwd.winSet && r.Window != fwd.window {
		r.add(Finding{Kind: WindowUpdate})
	}
	if s.Len > 0 && plain && rev.ws != wsUnknown && rev.ackSet && rev.winSet && s.Seq.Add(s.Len) == rev.lastAck.Add(rev.window) {
		r.add(Finding{Kind: WindowFull})
	}
	if sameAck && r.Window != 0 && r.Window == fwd.window && hasKind(rev.lastKinds, KeepAlive) {
		r.add(Finding{Kind: KeepAliveAck})
		return true
	}
	if sameAck && r.Window == 0 && fwd.window == 0 && hasKind(rev.lastKinds, ZeroWindowProbe) {
		r.add(Finding{Kind: ZeroWindowProbeAck})
		return true
	}
	return false
}

// acks flags duplicate ACKs: same seq, ack and window, no data, as
// Wireshark does, plus RFC 5681's first condition, which Wireshark skips:
// the peer has data outstanding. So the pure ACK a side sends after its own
// data, acknowledging nothing new because nothing new came, is not one.
func (c *Conn) acks(s *Seg, fwd, rev *flow, r *Result) {
	plain := !s.has(event.SYN | event.FIN | event.RST)
	if s.Len != 0 || !plain || r.Window == 0 || !fwd.winSet || r.Window != fwd.window ||
		!fwd.nextSet || s.Seq != fwd.nextSeq || !fwd.ackSet || s.Ack != fwd.lastAck || !s.has(event.ACK) {
		return
	}
	if !rev.nextSet || !rev.nextSeq.GT(s.Ack) {
		return
	}
	if fwd.dupAcks < 0 {
		fwd.dupAcks = 0 // an ack_lost_segment was reported for this ACK already
	}
	fwd.dupAcks++
	r.add(Finding{Kind: DuplicateAck, Num: fwd.dupAcks, Ref: fwd.lastNonDup})
}

// lostAcked flags an ACK beyond anything the peer was seen sending.
func (c *Conn) lostAcked(s *Seg, fwd, rev *flow, r *Result) {
	if !s.has(event.ACK) {
		return
	}
	if !fwd.ackSet || s.Ack != fwd.lastAck {
		fwd.lastNonDup, fwd.dupAcks = s.Index, 0
	}
	if !rev.maxSet || !s.Ack.GT(rev.maxToAck) {
		return
	}
	if rev.maxToAck.GT(rev.nextSeq) {
		rev.maxToAck = rev.nextSeq
		r.add(Finding{Kind: AckLostSegment})
		return
	}
	if rev.dupAcks == 0 {
		r.add(Finding{Kind: AckLostSegment})
	}
	rev.dupAcks = -1
}

// retransmission classifies a segment that does not advance the sequence:
// spurious, fast, out of order or plain retransmission, in Wireshark's order.
func (c *Conn) retransmission(s *Seg, fwd, rev *flow, r *Result) {
	if s.Len == 0 && !s.has(event.SYN|event.FIN) || r.has(KeepAlive) {
		return
	}
	notAdvanced := fwd.nextSet && s.Seq.LT(fwd.nextSeq)
	if s.Len > 1 && fwd.nextSet && fwd.nextSeq-1 == s.Seq {
		notAdvanced = false // new data after a zero window probe
	}
	if s.Len > 0 && rev.ackSet && s.Seq.Add(s.Len).LE(rev.lastAck) {
		r.add(Finding{Kind: SpuriousRetransmission})
		r.Retransmission = true
		return
	}
	if !notAdvanced {
		return
	}
	if rev.dupAcks >= 2 && rev.lastAck == s.Seq && s.TS-rev.lastAckTS < fastRetransmitWindow {
		r.add(Finding{Kind: FastRetransmission})
		r.Retransmission = true
		return
	}
	threshold := uint64(outOfOrderDefault)
	if c.firstRTT != 0 {
		threshold = c.firstRTT
	}
	if s.TS-fwd.nextTS < threshold && fwd.nextSeq != s.end() {
		r.add(Finding{Kind: OutOfOrder})
		return
	}
	var ref uint64
	if len(fwd.unacked) > 0 {
		ref = fwd.unacked[0].index // the oldest unacknowledged segment
	}
	r.add(Finding{Kind: Retransmission, Ref: ref})
	r.Retransmission = true
}

// remember stores what later segments are compared with.
func (c *Conn) remember(s *Seg, fwd, rev *flow, r *Result) {
	probe := r.has(ZeroWindowProbe)
	if (s.Len > 0 || s.has(event.SYN|event.FIN)) && len(fwd.unacked) < maxUnacked {
		fwd.unacked = append(fwd.unacked, unacked{s.Index, s.Seq, s.end(), s.TS})
	}
	if (!fwd.nextSet || s.end().GT(fwd.nextSeq)) && !probe {
		fwd.nextSeq, fwd.nextTS, fwd.nextSet = s.end(), s.TS, true
	}
	if (!fwd.maxSet || s.Seq == fwd.maxToAck) && !probe {
		fwd.maxToAck, fwd.maxSet = fwd.nextSeq, true
	}
	fwd.window, fwd.winSet = r.Window, true
	if s.has(event.ACK) {
		fwd.lastAck, fwd.lastAckTS, fwd.ackSet = s.Ack, s.TS, true
		rev.unacked = dropAcked(rev.unacked, s.Ack)
	}
	fwd.lastKinds = fwd.lastKinds[:0]
	for _, f := range r.Findings {
		fwd.lastKinds = append(fwd.lastKinds, f.Kind)
	}
}

// dropAcked forgets segments wholly acknowledged by ack.
func dropAcked(list []unacked, ack event.Seq) []unacked {
	out := list[:0]
	for _, u := range list {
		if u.end.GT(ack) {
			out = append(out, u)
		}
	}
	return out
}

func hasKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// Bytes is the memory c holds: the struct and its slices' capacity, for
// the timeline's memory bound.
func (c *Conn) Bytes() int64 {
	n := int64(unsafe.Sizeof(*c)) + int64(cap(c.spans))*int64(unsafe.Sizeof(Span{}))
	for i := range c.flows {
		f := &c.flows[i]
		n += int64(cap(f.lastKinds))*int64(unsafe.Sizeof(Kind(0))) + int64(cap(f.unacked))*int64(unsafe.Sizeof(unacked{}))
	}
	return n
}
