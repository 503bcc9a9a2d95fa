// Package event is the tracer's decoded event model. It is pure Go (no
// cilium/ebpf import) so the timeline, analysis and output packages can be
// built and tested without a kernel. The tracer fills one Event per ring
// buffer record; consumers must not keep a pointer to it after the handler
// returns, because the tracer reuses it.
package event

import "net/netip"

// Type says which kind of record an Event holds.
type Type uint8

const (
	TypeStart      Type = iota + 1 // attach report, printed once before any other
	TypeSegment                    // one TCP segment seen by TC (ingress or egress)
	TypeConnect                    // tcp_v4_connect / tcp_v6_connect returned
	TypeState                      // inet_sock_set_state: the socket changed state
	TypeRcvState                   // tcp_rcv_state_process handled a segment outside ESTABLISHED
	TypeRetransmit                 // tcp:tcp_retransmit_skb: the kernel retransmitted a segment
	TypeReset                      // tcp:tcp_send_reset / tcp_receive_reset
	TypeLost                       // ring buffer reservations failed since the last report
	TypeDrop                       // skb:kfree_skb: the kernel dropped a segment, with its reason
)

var typeNames = [...]string{"", "start", "segment", "connect", "state", "rcv_state", "retransmit", "reset", "lost", "drop"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// ParseType is the inverse of Type.String; it returns 0 for an unknown name.
func ParseType(s string) Type { return Type(lookup(typeNames[:], s)) }

// lookup returns the position of name in a table whose entry 0 stands for
// none, or 0 when it is not there.
func lookup(table []string, name string) int {
	for i, n := range table {
		if i > 0 && n == name {
			return i
		}
	}
	return 0
}

// Dir is the direction a TC program saw a segment in.
type Dir uint8

const (
	Ingress Dir = iota
	Egress
)

func (d Dir) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// Point is where the kernel showed the tracer a segment.
type Point uint8

const (
	PointTC   Point = iota // the TC classifier, ingress or egress
	PointXmit              // net:net_dev_start_xmit: handed to the driver, after qdisc and software GSO
)

func (p Point) String() string {
	if p == PointXmit {
		return "xmit"
	}
	return "tc"
}

// ParsePoint is the inverse of Point.String.
func ParsePoint(s string) (Point, bool) {
	switch s {
	case "tc":
		return PointTC, true
	case "xmit":
		return PointXmit, true
	}
	return 0, false
}

// PIDSource says where an event's pid came from.
type PIDSource uint8

const (
	PIDNone    PIDSource = iota // no process is known (e.g. a segment of an unowned socket)
	PIDOwner                    // recorded in process context for this socket
	PIDCurrent                  // only the task that happened to be running (may be a softirq victim)
)

func (p PIDSource) String() string {
	switch p {
	case PIDOwner:
		return "owner"
	case PIDCurrent:
		return "current"
	}
	return "none"
}

// SACKBlock is one SACK option block.
type SACKBlock struct{ Left, Right uint32 }

// Options holds the TCP options relevant to Seq/Ack reasoning.
type Options struct {
	MSS      uint16
	WScale   uint8
	HasMSS   bool
	HasWS    bool
	SACKPerm bool
	HasTS    bool
	NSACK    uint8
	TSval    uint32
	TSecr    uint32
	SACK     [4]SACKBlock
}

// Reset reasons for TypeReset.
const (
	ResetSent     uint8 = 1
	ResetReceived uint8 = 2
)

// Event is one decoded record plus the annotations user space adds
// (connection id, sides, relative numbers, wire and twin marking).
type Event struct {
	Type   Type
	TS     uint64 // CLOCK_MONOTONIC nanoseconds
	Family uint8  // 4 or 6
	Saddr  netip.Addr
	Daddr  netip.Addr
	Sport  uint16
	Dport  uint16
	Cookie uint64 // socket cookie where the kernel gave one, else 0

	// Segment.
	Ifindex uint32
	Iface   string
	Dir     Dir
	Point   Point
	// GSOSegs and GSOSize are the skb's GSO geometry: a super-packet of
	// GSOSegs segments of GSOSize bytes (the last may be shorter); 0 for
	// a plain skb.
	GSOSegs uint16
	GSOSize uint16
	Seq     uint32
	Ack     uint32
	Flags   uint16
	Win     uint16
	HdrLen  uint8 // TCP header length in bytes
	Len     uint32
	Opts    Options

	// Process attribution (connect, state, rcv_state, retransmit, reset;
	// segments get it from the connection's owner in user space).
	PID    uint32
	TGID   uint32
	UID    uint32
	Comm   string
	PIDSrc PIDSource

	// Connect.
	ISN uint32
	Ret int32

	// State and rcv_state: the socket state (kernel numbering, see
	// StateName) and the kernel's view of the sequence space.
	OldState uint8
	NewState uint8
	SndUna   uint32
	SndNxt   uint32
	RcvNxt   uint32

	// Reset: ResetSent or ResetReceived.
	Reason uint8

	// Sender is the sending socket's state on a TC egress segment and on
	// a retransmit event; Sender.Valid is false where there was no full
	// socket (or the record predates the field).
	Sender Sender

	// Drop (Seq, Ack, Flags, Len, Ifindex describe the dropped segment).
	Drop Drop

	// Lost: reservations that failed.
	Count uint64

	// Annotations filled in user space by conn.Tracker, the one
	// connection model; later stages read them and recompute none.
	Conn uint64 // stable connection id; 0 if none
	// Side is which end of connection Conn the event's source
	// (Saddr:Sport) is: the sender of a segment, the local socket of a
	// socket event. RolesGuessed says no SYN, SYN-ACK, connect or socket
	// state told the roles (tracing started mid-connection), so Side is
	// a guess. Both are meaningful only when Conn is not 0.
	Side         Side
	RolesGuessed bool
	// SeqRel is Seq relative to the sender's base, AckRel is Ack relative
	// to the receiver's (Wireshark's relative numbers). RelDerived says a
	// base they use was derived (the kernel's snd_una/rcv_nxt, or the
	// first numbers seen) because the SYN and connect were missed.
	SeqRel     uint32
	AckRel     uint32
	HasSeqRel  bool
	HasAckRel  bool
	RelDerived bool
	// Wire says this observation is the one that counts for a segment the
	// interface carried (what packet capture on it shows); false for the
	// stack's own view at TC egress, which the wire shows again later.
	Wire bool
	// TwinOf is the Index of the earlier observation of the same bytes at
	// another point (TC egress on lo for an ingress record; TC egress for
	// an xmit record cut from it); 0 when there is none.
	TwinOf uint64
	Index  uint64 // 1-based position of this event in the stream

	// Start.
	Start *Start
}

// Sender is a tcp_sock as the kernel held it (see bpf/events.h). SRTT is
// in microseconds (the kernel keeps it shifted left by 3; this is not).
type Sender struct {
	Valid        bool
	SndUna       uint32
	SndNxt       uint32
	RcvNxt       uint32
	SndWnd       uint32
	Cwnd         uint32
	Ssthresh     uint32
	SRTT         uint32 // µs: srtt_us >> 3, as tcp_info's rtt
	RTTVar       uint32 // µs: mdev_us >> 2, as tcp_info's rttvar
	RTOVar       uint32 // µs: the kernel's rttvar_us, from which it computes the RTO
	RTO          uint32 // µs; 0 when CONFIG_HZ was unknown
	PacketsOut   uint32
	RetransOut   uint32
	LostOut      uint32
	SackedOut    uint32
	Delivered    uint32
	TotalRetrans uint32
	DSACKDups    uint32
	TLPHighSeq   uint32
	MSS          uint32
	CAState      uint8 // TCP_CA_Open .. TCP_CA_Loss, see CAStateName
	Retransmits  uint8 // icsk_retransmits
	Backoff      uint8 // icsk_backoff
}

var caStateNames = [...]string{"open", "disorder", "cwr", "recovery", "loss"}

// CAStateName names a congestion-avoidance state (include/net/tcp.h).
func CAStateName(s uint8) string {
	if int(s) < len(caStateNames) {
		return caStateNames[s]
	}
	return "unknown"
}

// ParseCAState is the inverse of CAStateName.
func ParseCAState(s string) (uint8, bool) {
	for i, n := range caStateNames {
		if n == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// Drop is what skb:kfree_skb said about a dropped segment.
type Drop struct {
	HasReason bool   // false: the kernel's tracepoint has no reason argument (before 5.17)
	Reason    uint32 // enum skb_drop_reason of the running kernel
	// ReasonName is the enumerator's name without its SKB_DROP_REASON_
	// prefix (NETFILTER_DROP), read from the running kernel's BTF.
	ReasonName string
	Location   uint64 // kernel text address of the caller that freed the skb
	// Symbol is Location as symbol+0xoffset from /proc/kallsyms; empty
	// when it could not be resolved.
	Symbol string
	// Segment is the Index of the segment event this drop freed (same
	// tuple, seq, ack, flags and len, seen just before); 0 if none was.
	Segment uint64
}

// NoReason is what a drop event says for its reason on a kernel whose
// kfree_skb tracepoint has no reason argument.
const NoReason = "unknown (kernel lacks the reason argument)"

// Start is the report printed once every hook is attached.
type Start struct {
	Kernel  string
	Hooks   []Hook
	Port    uint16
	PID     uint32
	Family  uint8 // 0 = both
	Ifaces  []string
	Version string
}

// Hook says how one hook was attached, and why a better mode was refused.
type Hook struct {
	Name    string // e.g. "tcp_v4_connect", "tc"
	Mode    string // fentry, kprobe, tracepoint, tcx, clsact
	Target  string // the program's attach point
	Refused []Refusal
}

// Refusal is a better mode that did not work, with the kernel's answer.
type Refusal struct {
	Mode   string
	Reason string
}

// Kernel retransmission causes.
const (
	CauseRTO      = "rto"      // the retransmission timer fired (the socket is in Loss, or still handshaking)
	CauseFast     = "fast"     // recovery entered on duplicate ACKs or SACKs
	CauseTLP      = "tlp"      // a tail loss probe: resent while the socket was not in recovery
	CauseSpurious = "spurious" // the receiver already had it (a DSACK came back for it)
	CauseUnknown  = "unknown"  // no socket state to judge by
)

// RetransmitCause judges a kernel retransmission by the socket's state as
// the kernel resent: tcp_enter_loss puts it in Loss before a timeout's
// retransmission, tcp_fastretrans_alert in Recovery before a fast one,
// and the loss probe (tcp_send_loss_probe) resends while neither holds.
// Whether it was spurious shows only later (see timeline).
func RetransmitCause(s *Sender, state uint8) string {
	const caRecovery, caLoss = 3, 4
	switch {
	case !s.Valid:
		return CauseUnknown
	case State(state) == StateSynSent || State(state) == StateSynRecv || s.CAState == caLoss:
		return CauseRTO
	case s.CAState == caRecovery:
		return CauseFast
	}
	return CauseTLP
}
