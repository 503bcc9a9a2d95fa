package event

import "strings"

// This file is the TCP vocabulary every package shares: sequence
// arithmetic, flag names, state names and connection sides. Event keeps
// the kernel's raw integer fields (the tracer fills them from generated
// structs); these types give them meaning.

// Seq is a TCP sequence or acknowledgment number. Its comparisons are
// modulo 2^32 (RFC 1982 serial number arithmetic), so they stay right
// when a connection's numbers wrap past 2^32-1; compare Seqs only with
// these methods, never with < or >.
type Seq uint32

// LT reports whether s comes before o.
func (s Seq) LT(o Seq) bool { return int32(s-o) < 0 }

// LE reports whether s comes before o or is o.
func (s Seq) LE(o Seq) bool { return int32(s-o) <= 0 }

// GT reports whether s comes after o.
func (s Seq) GT(o Seq) bool { return int32(s-o) > 0 }

// GE reports whether s comes after o or is o.
func (s Seq) GE(o Seq) bool { return int32(s-o) >= 0 }

// Add returns the number n bytes after s.
func (s Seq) Add(n uint32) Seq { return s + Seq(n) }

// Diff returns how far s is after o (negative when s comes before o).
func (s Seq) Diff(o Seq) int32 { return int32(s - o) }

// Max returns the later of s and o.
func (s Seq) Max(o Seq) Seq {
	if o.GT(s) {
		return o
	}
	return s
}

// TCP header flag bits, as in the 9-bit flags field (NS is bit 8). They
// are untyped so they mask Event.Flags (the kernel's uint16) and Flags alike.
const (
	FIN = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
	NS
)

// FlagNames lists the flag names in bit order, FIN first: the JSON
// schema's names, and the only table of them.
var FlagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"}

var bitOrder = [...]Flags{FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, NS}

// wiresharkOrder is the order Wireshark's info column lists flags in.
var wiresharkOrder = [...]Flags{SYN, FIN, RST, PSH, ACK, URG, ECE, CWR, NS}

// Flags is a TCP header's flags field.
type Flags uint16

// Any reports whether one of the flags in mask is set.
func (f Flags) Any(mask Flags) bool { return f&mask != 0 }

// Name returns the name of a single flag bit ("" for anything else).
func (f Flags) Name() string {
	for i, n := range FlagNames {
		if f == 1<<i {
			return n
		}
	}
	return ""
}

// String names the set flags in bit order, "SYN|ACK"; "<none>" when none is.
func (f Flags) String() string { return f.join(bitOrder[:], "|") }

// Wireshark names the set flags as Wireshark's info column does,
// "SYN, ACK"; "<none>" when none is.
func (f Flags) Wireshark() string { return f.join(wiresharkOrder[:], ", ") }

func (f Flags) join(order []Flags, sep string) string {
	var b strings.Builder
	for _, bit := range order {
		if f&bit == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(bit.Name())
	}
	if b.Len() == 0 {
		return "<none>"
	}
	return b.String()
}

// ParseFlag returns the bit of a flag name from FlagNames.
func ParseFlag(name string) (Flags, bool) {
	for i, n := range FlagNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Kernel TCP state numbers (include/net/tcp_states.h), untyped so they
// compare with Event.OldState and Event.NewState directly.
const (
	StateEstablished = iota + 1
	StateSynSent
	StateSynRecv
	StateFinWait1
	StateFinWait2
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateClosing
	StateNewSynRecv
	StateBoundInactive
)

var stateNames = [...]string{
	"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
}

// State is a kernel TCP state number.
type State uint8

// String returns the kernel's name for the state, UNKNOWN when it has none.
func (s State) String() string {
	if int(s) < len(stateNames) && s > 0 {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// StateName names a raw state field of an Event (State(s).String()).
func StateName(s uint8) string { return State(s).String() }

// ParseState is the inverse of StateName; it returns 0 for an unknown name.
func ParseState(s string) uint8 { return uint8(lookup(stateNames[:], s)) }

// Side names one end of a connection. conn.Tracker decides it; everything
// after it reads it from the event.
type Side uint8

const (
	Client Side = iota // sent the SYN (or called connect)
	Server
)

func (s Side) String() string {
	if s == Server {
		return "server"
	}
	return "client"
}

// Peer returns the other end.
func (s Side) Peer() Side { return 1 - s }
