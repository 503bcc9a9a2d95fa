package analysis

import (
	"fmt"

	"tcptracer/event"
)

// SenderSeg is a segment as TC egress saw it leave a local socket, with
// that socket's state at the moment (event.Sender). TC egress runs inside
// the socket's transmit call (tcp_transmit_skb → ip_queue_xmit →
// dev_queue_xmit), before tcp_event_new_data_sent advances snd_nxt, so
// the socket's numbers describe the segment being sent.
type SenderSeg struct {
	Index    uint64
	Seq, Ack uint32
	Len      uint32
	Flags    uint16
	Sender   *event.Sender
}

func (s *SenderSeg) end() uint32 {
	e := s.Seq + s.Len
	if s.Flags&(event.SYN|event.FIN) != 0 {
		e++
	}
	return e
}

func (s *SenderSeg) data() bool { return s.Len > 0 || s.Flags&(event.SYN|event.FIN) != 0 }

// SenderRetransmission is the kernel's own account of a segment: one that
// carries sequence space and ends at or below the socket's snd_nxt repeats
// what the socket had sent, whatever the wire heuristic says. New data
// always reaches beyond snd_nxt at this point.
func SenderRetransmission(s *SenderSeg) bool {
	return s.Sender != nil && s.Sender.Valid && s.data() && !event.Seq(s.end()).GT(event.Seq(s.Sender.SndNxt))
}

// SenderRules checks the rules only a tracer inside the sending kernel can:
// new data starts exactly at snd_nxt, and an ACK carries rcv_nxt.
func SenderRules(s *SenderSeg) []Violation {
	k := s.Sender
	if k == nil || !k.Valid || (k.SndNxt == 0 && k.RcvNxt == 0) {
		// Both zero is a socket torn down as it was read (seen on a 6.12
		// guest at close), not a state to judge a segment by.
		return nil
	}
	var out []Violation
	if s.data() && event.Seq(s.end()).GT(event.Seq(k.SndNxt)) && s.Seq != k.SndNxt {
		out = append(out, Violation{NewDataAtSndNxt, s.Index,
			fmt.Sprintf("new data at seq %d, the socket's snd_nxt is %d (%+d)", s.Seq, k.SndNxt, int32(s.Seq-k.SndNxt))})
	}
	if s.Flags&event.ACK != 0 && s.Ack != k.RcvNxt && k.RcvNxt != 0 {
		out = append(out, Violation{AckIsRcvNxt, s.Index,
			fmt.Sprintf("ack %d, the socket's rcv_nxt is %d (%+d)", s.Ack, k.RcvNxt, int32(s.Ack-k.RcvNxt))})
	}
	return out
}
