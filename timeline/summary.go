package timeline

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"tcptracer/analysis"
	"tcptracer/event"
)

// Way is one direction's totals, named after its sender.
type Way struct {
	Bytes                 uint64 // new payload bytes
	Segments              int
	Retransmissions       int // heuristic (retransmission, fast or spurious)
	KernelRetransmissions int // segments the kernel's tracepoint reported
}

// Summary describes a connection that ended.
type Summary struct {
	Conn         uint64
	Client       netip.AddrPort
	Server       netip.AddrPort
	RolesGuessed bool // no handshake or connect seen: client and server are a guess
	// Opened is true when the opening (SYN or connect) was seen: the
	// client opened. False when tracing started mid-connection.
	Opened bool
	// ActiveCloser is the side that sent the first FIN or RST (or went
	// to FIN_WAIT1 first): "client", "server", or "" if neither closed.
	ActiveCloser string
	// End says why the summary was made: closed (both FINs acked),
	// reset, failed (connect failed), idle, evicted, flush.
	End string
	// HandshakeRTT is SYN → SYN-ACK as the client saw them: the SYN's
	// egress observation to the SYN-ACK's ingress observation (on
	// loopback the second, duplicate, one), falling back to the first
	// observations. HandshakeTime is SYN → the client's final handshake
	// ACK (Wireshark's initial RTT, first observations).
	HandshakeRTT    time.Duration
	HandshakeTime   time.Duration
	HasHandshakeRTT bool
	Duration        time.Duration // first to last event of the connection
	Sent            [2]Way        // by sender: Sent[Client], Sent[Server]
	Retransmissions int           // heuristic, both ways
	// Kernel retransmissions are only meaningful when KernelKnown.
	KernelKnown           bool
	KernelRetransmissions int
	// Disagreements counts segments where the heuristic and the kernel
	// differ, plus kernel retransmit events no segment matched, for no
	// known reason (the known ones are in Explained).
	Disagreements int
	Findings      map[string]int // by analysis.Kind name
	FinalState    [2]string      // kernel state names; UNKNOWN when no state event was seen
	Owners        [2]Owner
	Resets        int // RST segments on the wire
	// The kernel's view of resets (tcp_send_reset, tcp_receive_reset), and
	// how many RST segments a local socket sent that the kernel did not
	// report or the other way round (sides with no local socket: not known).
	KernelResetsSent     int
	KernelResetsReceived int
	ResetDisagreements   int
	WindowScaleKnown     bool // false: the SYN was missed, windows are raw
	RelativeDerived      bool // some relative numbers come from a derived base
	Lossy                bool // the tracer lost events during the connection
	// RulesUnknown lists the spans where lost records left rules unjudged
	// (RulesUnknownCut more were not kept).
	RulesUnknown    []analysis.Span
	RulesUnknownCut int
	// Late lists the violations found only when the connection ended
	// (also in Violations).
	Late []analysis.Violation
	// Explained counts, by reason (Explain* constants), the segments and
	// kernel events on which the heuristic and the kernel differ for a
	// known reason; Disagreements counts only the unexplained ones.
	Explained     map[string]int
	ConnectRet    int32
	TruncatedSegs int
	// The kernel's account: every drop (Drops holds at most the first
	// maxAccount of DropCount), every kernel retransmission with its
	// cause and the drop it repaired, each sender's state over time, and
	// one sentence per drop saying what became of it.
	DropCount     int
	RcvQueueDrops int // of DropCount, those of a socket out of room (sk_drops-style)
	UnreadCount   int // segments freed unread at socket teardown (not drops)
	ProbeDrops    int // keepalive and window probes discarded as old sequence (not drops)
	TimeWaitDrops int // segments answered by a time-wait socket, then freed (not drops)
	// ProcessedDrops: pure ACKs tcp_rcv_state_process handled, then freed
	// as NOT_SPECIFIED (not drops).
	ProcessedDrops int
	Drops          []Drop
	Retxs          []Retx
	Senders        [2]SenderStats
	SenderKnown    [2]bool // the sender's state was read on this side
	RTOs           int
	DropsRepairs   []string
	// Dropped is the history the memory bound dropped (counted above all
	// the same).
	Dropped Dropped
	// Violations are the TCP rules broken, each at its segment.
	Violations []analysis.Violation
	// Verdict is "ok", or the violated rules each with its segment.
	Verdict string
}

// OK reports whether no rule was violated.
func (s *Summary) OK() bool { return len(s.Violations) == 0 }

// summarise builds the Summary; kernelKnown says retransmit events exist.
func (c *Conn) summarise(kernelKnown bool) *Summary {
	s := &Summary{Conn: c.ID, Client: c.Client, Server: c.Server, RolesGuessed: c.RolesGuessed,
		Opened: c.opened, End: c.end, Duration: time.Duration(c.LastTS - c.FirstTS),
		KernelKnown: kernelKnown, Findings: map[string]int{}, Owners: c.Owners,
		KernelResetsReceived: c.rstRecv, RelativeDerived: c.relDerived, ConnectRet: c.ConnRet, TruncatedSegs: c.Truncated}
	s.RulesUnknown, s.RulesUnknownCut = c.an.Spans()
	s.Lossy = len(s.RulesUnknown) > 0 || s.RulesUnknownCut > 0
	if c.closerSet {
		s.ActiveCloser = c.closer.String()
	}
	for side := Client; side <= Server; side++ {
		s.FinalState[side] = event.StateName(c.sock[side])
		s.Sent[side].Bytes = c.Flows[side].Bytes
		s.Sent[side].Segments = c.Flows[side].Segments
	}
	s.WindowScaleKnown = c.synIdx >= 0 || c.hsKept[0]
	c.handshakeTimes(s)
	c.finalViolations(s)
	s.Dropped = c.Dropped
	c.addTally(s)
	for i := range c.Segments {
		c.count(s, &c.Segments[i], kernelKnown)
	}
	if kernelKnown {
		for len(c.pending) > 0 {
			c.dropPending(0)
		}
		s.Disagreements += c.unmatched[0]
		s.addExplained(ExplainNotOnWire, c.unmatched[1])
	}
	c.resetTally(s)
	c.account(s)
	s.Verdict = verdict(s.Violations)
	return s
}

// account copies the kernel's account into the summary and explains
// each drop.
func (c *Conn) account(s *Summary) {
	s.DropCount, s.Drops, s.Retxs = c.DropCount, c.Drops, c.Retxs
	s.RcvQueueDrops, s.UnreadCount, s.ProbeDrops = c.RcvQueueDrops, c.UnreadCount, c.ProbeDrops
	s.TimeWaitDrops, s.ProcessedDrops = c.TimeWaitDrops, c.ProcessedDrops
	for side := Client; side <= Server; side++ {
		c.Senders[side].close(c.LastTS)
		s.Senders[side] = c.Senders[side]
		s.SenderKnown[side] = c.Senders[side].Samples > 0
		s.RTOs += c.Senders[side].RTOs
	}
	for i := range c.Drops {
		s.DropsRepairs = append(s.DropsRepairs, c.Drops[i].explain())
	}
	for i := range c.sightings {
		c.late = append(c.late, c.sightings[i].broke...) // never paired with a wire record
		c.sightings[i].broke = nil
	}
	s.Violations = append(s.Violations, c.late...)
	s.Late = append(s.Late, c.late...)
}

// explain says in one sentence which segment was dropped, why, and what
// resent it.
func (d *Drop) explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "drop #%d (%s", d.Index, d.Reason)
	if d.Location != "" {
		fmt.Fprintf(&b, " in %s", d.Location)
	}
	b.WriteString(") of ")
	if d.Segment != 0 {
		fmt.Fprintf(&b, "segment #%d", d.Segment)
	} else {
		b.WriteString("a segment the tracer did not see")
	}
	seq := d.Seq
	if d.HasRel {
		seq = d.SeqRel
	}
	fmt.Fprintf(&b, " (%s seq %d len %d)", d.From, seq, d.Len)
	switch {
	case d.Kind == DropUnread:
		b.WriteString(": freed unread when its socket was destroyed, not a loss")
	case d.Kind == DropProbe:
		b.WriteString(": a probe below rcv_nxt, answered and discarded, not a loss")
	case d.Kind == DropTimeWait:
		b.WriteString(": answered by the time-wait socket its receiver had become, then freed, not a loss")
	case d.Kind == DropProcessed:
		b.WriteString(": a pure ACK the receiver processed, then freed with nothing to queue, not a loss")
	case !d.carries():
		b.WriteString(": no data, nothing to resend")
	case d.RepairedBy != 0 && d.Retransmit != 0:
		fmt.Fprintf(&b, ": repaired by #%d, the kernel's %s retransmission #%d", d.RepairedBy, d.Cause, d.Retransmit)
	case d.RepairedBy != 0:
		fmt.Fprintf(&b, ": repaired by #%d (no kernel retransmission reported)", d.RepairedBy)
	case d.Retransmit != 0:
		fmt.Fprintf(&b, ": resent by the kernel's %s retransmission #%d, not seen on the wire", d.Cause, d.Retransmit)
	default:
		b.WriteString(": not repaired")
	}
	return b.String()
}

// resetTally sets the kernel's resets beside the RST segments each side
// sent. A side counts when the kernel knows it: it has a local socket, or
// reported a reset sent from it.
func (c *Conn) resetTally(s *Summary) {
	wire := c.droppedRST
	for i := range c.Segments {
		if seg := &c.Segments[i]; seg.Flags&event.RST != 0 {
			wire[seg.From]++
		}
	}
	for side := Client; side <= Server; side++ {
		s.KernelResetsSent += c.rstSent[side]
		if c.sock[side] == 0 && c.rstSent[side] == 0 {
			continue
		}
		d := wire[side] - c.rstSent[side]
		if d < 0 {
			d = -d
		}
		s.ResetDisagreements += d
	}
}

// count adds one segment's findings, retransmissions and violations.
func (c *Conn) count(s *Summary, seg *Segment, kernelKnown bool) {
	w := &s.Sent[seg.From]
	for _, f := range seg.Findings {
		s.Findings[f.Kind.String()]++
	}
	if seg.Flags&event.RST != 0 {
		s.Resets++
	}
	if seg.Retransmission {
		w.Retransmissions++
		s.Retransmissions++
	}
	if seg.KernelRetransmit {
		w.KernelRetransmissions++
		s.KernelRetransmissions++
	}
	if kernelKnown && seg.Retransmission != seg.KernelRetransmit {
		seg.Explained = seg.explain()
		if seg.Explained == "" {
			s.Disagreements++
		} else {
			s.addExplained(seg.Explained, 1)
		}
	}
	s.Violations = append(s.Violations, seg.Violations...)
}

// finalViolations attaches the violations only the connection's end could
// show (sequence space skipped and never sent) to the segments that showed
// them, and keeps them in Late for reports that already wrote the segments.
func (c *Conn) finalViolations(s *Summary) {
	for _, v := range c.an.Finish() {
		s.Late = append(s.Late, v)
		if seg := c.segmentAt(v.Index); seg != nil {
			seg.Violations = append(seg.Violations, v)
		} else {
			s.Violations = append(s.Violations, v)
		}
	}
}

// segmentAt finds a kept segment by its stream Index.
func (c *Conn) segmentAt(index uint64) *Segment {
	for i := range c.Segments {
		if c.Segments[i].Index == index {
			return &c.Segments[i]
		}
	}
	return nil
}

func (s *Summary) addExplained(reason string, n int) {
	if n == 0 {
		return
	}
	if s.Explained == nil {
		s.Explained = map[string]int{}
	}
	s.Explained[reason] += n
}

func (c *Conn) handshakeTimes(s *Summary) {
	syn, synack := c.handshakeSeg(0), c.handshakeSeg(1)
	if syn == nil || synack == nil {
		return
	}
	sent, got := syn.TS, synack.TS
	if syn.EgressTS != 0 {
		sent = syn.EgressTS
	}
	if synack.IngressTS != 0 {
		got = synack.IngressTS
	}
	if got >= sent {
		s.HandshakeRTT, s.HasHandshakeRTT = time.Duration(got-sent), true
	}
	if c.ackTS >= syn.TS {
		s.HandshakeTime = time.Duration(c.ackTS - syn.TS)
	}
}

func verdict(vs []analysis.Violation) string {
	if len(vs) == 0 {
		return "ok"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%s at #%d", v.Rule, v.Index)
	}
	return strings.Join(parts, ", ")
}

// FindingNames returns the finding kinds seen, sorted, with their counts.
func (s *Summary) FindingNames() []string {
	out := make([]string, 0, len(s.Findings))
	for k, n := range s.Findings {
		out = append(out, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(out)
	return out
}

// String is a one-line summary for text output.
func (s *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conn %d %s -> %s end=%s", s.Conn, s.Client, s.Server, s.End)
	if s.ActiveCloser != "" {
		fmt.Fprintf(&b, " closer=%s", s.ActiveCloser)
	}
	if s.HasHandshakeRTT {
		fmt.Fprintf(&b, " handshake_rtt=%s", s.HandshakeRTT)
	}
	fmt.Fprintf(&b, " duration=%s bytes=%d/%d segs=%d/%d retrans=%d",
		s.Duration, s.Sent[Client].Bytes, s.Sent[Server].Bytes,
		s.Sent[Client].Segments, s.Sent[Server].Segments, s.Retransmissions)
	if s.KernelKnown {
		fmt.Fprintf(&b, " kernel_retrans=%d disagreements=%d", s.KernelRetransmissions, s.Disagreements)
	}
	if len(s.Findings) > 0 {
		fmt.Fprintf(&b, " findings=%s", strings.Join(s.FindingNames(), ","))
	}
	if s.DropCount > 0 {
		fmt.Fprintf(&b, " drops=%d", s.DropCount)
	}
	if s.RTOs > 0 {
		fmt.Fprintf(&b, " rtos=%d", s.RTOs)
	}
	fmt.Fprintf(&b, " states=%s/%s verdict=%s", s.FinalState[Client], s.FinalState[Server], s.Verdict)
	return b.String()
}
