// Package analysis applies Wireshark's tcp.analysis.* heuristics and TCP's
// own sequence rules to the segments of one connection. It is pure Go and
// knows nothing of events or connections beyond the numbers it is given:
// the timeline package feeds it one segment at a time, in wire order.
package analysis

import "fmt"

// Kind is one Wireshark tcp.analysis finding.
type Kind uint8

const (
	Retransmission         Kind = iota + 1 // tcp.analysis.retransmission
	FastRetransmission                     // tcp.analysis.fast_retransmission
	SpuriousRetransmission                 // tcp.analysis.spurious_retransmission
	OutOfOrder                             // tcp.analysis.out_of_order
	PreviousSegmentNotSeen                 // tcp.analysis.lost_segment
	AckLostSegment                         // tcp.analysis.ack_lost_segment
	DuplicateAck                           // tcp.analysis.duplicate_ack
	ZeroWindow                             // tcp.analysis.zero_window
	ZeroWindowProbe                        // tcp.analysis.zero_window_probe
	ZeroWindowProbeAck                     // tcp.analysis.zero_window_probe_ack
	WindowFull                             // tcp.analysis.window_full
	WindowUpdate                           // tcp.analysis.window_update
	KeepAlive                              // tcp.analysis.keep_alive
	KeepAliveAck                           // tcp.analysis.keep_alive_ack
	ReusedPorts                            // tcp.analysis.reused_ports
)

var kindNames = [...]string{"",
	"retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order",
	"previous_segment_not_seen", "ack_lost_segment", "duplicate_ack",
	"zero_window", "zero_window_probe", "zero_window_probe_ack",
	"window_full", "window_update", "keep_alive", "keep_alive_ack", "reused_ports",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "unknown"
}

// Kinds lists every finding kind in declaration order.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(kindNames)-1)
	for i := 1; i < len(kindNames); i++ {
		ks = append(ks, Kind(i))
	}
	return ks
}

// ParseKind is the inverse of Kind.String; it returns 0 for an unknown name.
func ParseKind(s string) Kind {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return Kind(i)
		}
	}
	return 0
}

// IsRetransmission reports whether Wireshark counts the kind as a
// retransmission (it adds the retransmission expert info to all three).
func (k Kind) IsRetransmission() bool {
	return k == Retransmission || k == FastRetransmission || k == SpuriousRetransmission
}

// Finding is one finding on one segment.
type Finding struct {
	Kind Kind
	// Num is the duplicate ACK's number (1 for the first duplicate).
	Num int
	// Ref is the Index of the related segment: for duplicate_ack the
	// original ACK, for retransmission the oldest unacknowledged segment
	// it probably repeats. 0 when there is none.
	Ref uint64
}

func (f Finding) String() string {
	switch {
	case f.Kind == DuplicateAck:
		return fmt.Sprintf("%s#%d of #%d", f.Kind, f.Num, f.Ref)
	case f.Ref != 0:
		return fmt.Sprintf("%s of #%d", f.Kind, f.Ref)
	}
	return f.Kind.String()
}

// Rule is one of TCP's sequence rules that Wireshark does not check.
type Rule uint8

const (
	SynConsumesOne   Rule = iota + 1 // the sender's next segment after its SYN starts at SYN seq + 1 (+ SYN data)
	FinConsumesOne                   // the sender's next segment after its FIN starts at FIN seq + len + 1
	SynAckAcksISN                    // the SYN-ACK acknowledges the client's ISN + 1
	HandshakeAcksISN                 // the client's first ACK after the SYN-ACK acknowledges the server's ISN + 1
	DataAdvancesSeq                  // the sender's next segment after data starts at seq + len
	AckInRange                       // an ACK lies between the peer's ISN and the peer's highest seq sent (+1 for SYN/FIN)
	NewDataAtSndNxt                  // new data leaves at the sending socket's snd_nxt (kernel-side, TC egress)
	AckIsRcvNxt                      // every ACK a local socket sends carries its rcv_nxt (kernel-side, TC egress)
)

var ruleNames = [...]string{"",
	"syn-consumes-one", "fin-consumes-one", "synack-acks-client-isn",
	"handshake-ack-acks-server-isn", "data-advances-seq", "ack-in-range",
	"new-data-at-snd-nxt", "ack-is-rcv-nxt",
}

func (r Rule) String() string {
	if int(r) < len(ruleNames) && r > 0 {
		return ruleNames[r]
	}
	return "unknown"
}

// Violation is a broken rule, attached to the segment that showed it.
type Violation struct {
	Rule   Rule
	Index  uint64 // the segment that broke the rule
	Detail string // the numbers involved, relative where the ISN is known
}

func (v Violation) String() string {
	return fmt.Sprintf("%s at #%d: %s", v.Rule, v.Index, v.Detail)
}
