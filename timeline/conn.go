package timeline

import (
	"net/netip"

	"tcptracer/analysis"
	"tcptracer/event"
)

// Side names one endpoint of a connection; conn.Tracker decides it.
type Side = event.Side

const (
	Client = event.Client // sent the SYN (or called connect)
	Server = event.Server
)

// Flow is one direction of a connection, named after its sender.
// Relative numbers are not kept here: each segment carries the ones
// conn.Tracker published.
type Flow struct {
	NextSeq  event.Seq // the next new sequence number expected from this side
	HighSeq  event.Seq // the highest seq this side sent
	LastAck  event.Seq // the last ack this side sent
	HasAck   bool
	Window   uint32 // the last window this side advertised
	Scaled   bool   // Window is scaled; false when the SYN was missed
	WScale   int    // the shift from the SYN, -1 when unknown
	Bytes    uint64 // payload bytes from the first to the highest sent (retransmitted bytes not counted)
	Segments int    // wire segments
	seqSet   bool

	dataFrom, dataTo event.Seq // the span of payload seen
	dataSet          bool
}

// Owner is the process behind one socket, with where the pid came from.
type Owner struct {
	PID    uint32
	TGID   uint32
	Comm   string
	Source event.PIDSource
}

// StateChange is one state transition of one of the connection's sockets.
type StateChange struct {
	Index    uint64
	TS       uint64
	Side     Side
	Old, New uint8
	SndUna   event.Seq
	SndNxt   event.Seq
	RcvNxt   event.Seq
	// Cause is the Index of the segment whose arrival made this change
	// (0 when the application or a timer did, or it is not known).
	Cause uint64
}

// Segment is one TCP segment of a connection, counted once.
type Segment struct {
	Index    uint64
	TS       uint64 // first observation
	From     Side
	Dir      event.Dir
	Iface    string
	Seq, Ack event.Seq // absolute
	// SeqRel, AckRel and Derived are conn.Tracker's: relative to each
	// side's ISN, or to a derived base when the SYN was missed.
	SeqRel  uint32
	AckRel  uint32
	HasAck  bool // AckRel is meaningful (ACK set and the peer's base known)
	Derived bool // relative numbers come from a derived base (no SYN seen)
	Flags   uint16
	Len     uint32
	Win     uint32 // scaled when WinScaled
	// WinScaled is false when the handshake was missed and Win is raw.
	WinScaled bool
	Opts      event.Options

	EgressTS  uint64 // when the sender's TC egress saw it (0: not seen)
	IngressTS uint64 // when the receiver's TC ingress saw it (0: not seen)

	Findings   []analysis.Finding
	Violations []analysis.Violation
	// Retransmission is the heuristic's (Wireshark's) verdict.
	Retransmission bool
	// KernelKnown says the kernel's retransmit tracepoint was active, so
	// KernelRetransmit is ground truth.
	KernelKnown      bool
	KernelRetransmit bool
	// What the wire had carried when the segment came, for explaining a
	// difference between the heuristic and the kernel: Advanced, it
	// carried bytes this vantage had not seen from its sender; Tail, it
	// repeated the sender's highest bytes (what a tail loss probe resends);
	// Lossy, records were being lost.
	Advanced, Tail, Lossy bool
	// Explained says why the heuristic and the kernel differ on this
	// segment, when the reason is known (Explain* constants); "" when
	// they agree or the difference is unexplained.
	Explained string
	// RcvOldState is the receiving socket's state before the kernel
	// handled the segment, when a rcv_state event reported it.
	RcvOldState uint8

	// Sender is the sending socket's state when TC egress saw this
	// segment leave (Valid false when the tracer was not on the sending
	// host, or the segment had no full socket). SenderRetransmit is the
	// kernel's own account: the segment ended at or below snd_nxt.
	Sender           event.Sender
	SenderRetransmit bool
	// Dropped is the kernel's reason when it dropped this segment
	// (DropIndex is the drop event); Repairs is the drop whose bytes
	// this segment carried again.
	Dropped   string
	DropIndex uint64
	Repairs   uint64
}

// End returns the sequence number after the segment (SYN and FIN count one).
func (s *Segment) End() event.Seq {
	e := s.Seq.Add(s.Len)
	if s.Flags&(event.SYN|event.FIN) != 0 {
		e++
	}
	return e
}

type kernelRetx struct {
	ts      uint64
	side    Side
	seq     event.Seq
	len     uint32
	covered uint32 // bytes of wire segments matched so far
	lossy   bool   // records were being lost when it came
	sighted bool   // TC egress saw the stack send it
	first   int    // position in Segments of the segment given its first byte, -1 none
	marked  [maxMarked]int
	nmarked int
}

// Conn is everything the timeline holds about one connection.
type Conn struct {
	ID           uint64
	Client       netip.AddrPort
	Server       netip.AddrPort
	RolesGuessed bool // conn.Tracker guessed the roles: no SYN, SYN-ACK or connect seen

	Flows     [2]Flow // by sender: Flows[Client] is client → server
	Segments  []Segment
	Truncated int // segments not kept because of Options.MaxSegments
	// Dropped is the oldest history given up to Options.MaxMemory.
	Dropped Dropped
	// OtherVantage counts wire segments seen on another interface than
	// the one the connection is analysed at (the first it was seen on).
	OtherVantage int
	States       []StateChange
	Owners       [2]Owner
	ConnRet      int32 // connect's return value, when seen
	FirstTS      uint64
	LastTS       uint64

	// The kernel's account: drops (DropCount counts those beyond the
	// cap too), retransmissions with their cause, each sender's state.
	Drops     []Drop
	DropCount int // drops that lost a segment: network and receive-queue ones
	// RcvQueueDrops counts the drops of a socket out of room (sk_drops);
	// UnreadCount the segments freed unread when their socket was
	// destroyed, ProbeDrops the keepalive and window probes discarded as
	// old, TimeWaitDrops the segments a time-wait socket answered,
	// ProcessedDrops the pure ACKs freed after tcp_rcv_state_process.
	RcvQueueDrops  int
	UnreadCount    int
	ProbeDrops     int
	TimeWaitDrops  int
	ProcessedDrops int
	Retxs          []Retx
	Senders        [2]SenderStats

	// Summary is set when the connection ends.
	Summary *Summary

	an           *analysis.Conn
	opened       bool // the SYN or connect was seen
	sock         [2]uint8
	sockKnown    [2]bool
	synIdx       int // position of the last SYN in Segments, -1 none
	synackIdx    int
	ackTS        uint64 // the final handshake ACK
	fin          [2]bool
	finEnd       [2]event.Seq
	finAcked     [2]bool
	rst          bool
	rstSent      [2]int // kernel reset-sent events, by the side that sent
	rstRecv      int    // kernel reset-received events
	rstWaitUntil uint64 // event time until which an ended-by-reset conn waits for rstSent
	closer       Side
	closerSet    bool
	lastRcv      [2]int // position of the segment a rcv_state event identified, -1 none
	pending      []kernelRetx
	unmatched    [2]int  // kernel retransmit events no wire segment came for: unexplained, explained
	relDerived   bool    // some event's relative numbers came from a derived base
	overflow     Segment // the record for segments beyond MaxSegments
	end          string
	segCap       int
	elem         *lruElem
	vantage      uint32 // the interface whose wire records are analysed
	sightings    [16]sighting
	nsight       int
	late         []analysis.Violation // kernel-side rules broken by sightings no wire record paired with
	mem          int64                // memory() when last accounted
	extraBytes   int64                // the kept segments' findings and violations
	tally        *Summary             // what the dropped segments counted
	droppedRST   [2]int               // RST segments among them, by sender
	hs           [2]Segment
	hsKept       [2]bool // hs holds the dropped SYN, SYN-ACK
}

// sighting is a TC egress observation waiting for its wire twin, with
// the sending socket's state and the kernel-side rules it broke.
type sighting struct {
	index, ts uint64
	seq       event.Seq
	len       uint32
	side      Side
	sender    event.Sender
	broke     []analysis.Violation
}

func newConn(id uint64) *Conn {
	c := &Conn{ID: id, an: analysis.NewConn(), synIdx: -1, synackIdx: -1, lastRcv: [2]int{-1, -1}}
	c.Flows[0].WScale, c.Flows[1].WScale = -1, -1
	return c
}

// endpoints takes the connection's ends from an event, on the side
// conn.Tracker gave it. A connecting socket is first seen without its port
// (or, on IPv6, its address); a later event completes it.
func (c *Conn) endpoints(ev *event.Event) {
	src := netip.AddrPortFrom(ev.Saddr.Unmap(), ev.Sport)
	dst := netip.AddrPortFrom(ev.Daddr.Unmap(), ev.Dport)
	if ev.Side == Server {
		src, dst = dst, src
	}
	c.Client, c.Server = better(c.Client, src), better(c.Server, dst)
}

func better(cur, n netip.AddrPort) netip.AddrPort {
	if !cur.IsValid() || (n.Port() != 0 && n.Addr().IsValid() && !n.Addr().IsUnspecified()) {
		return n
	}
	return cur
}

// State returns the last state seen for a side's socket (0 if none).
func (c *Conn) State(s Side) uint8 { return c.sock[s] }
