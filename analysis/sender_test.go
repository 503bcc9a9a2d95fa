package analysis

import (
	"testing"

	"tcptracer/event"
)

func TestSenderRules(t *testing.T) {
	k := &event.Sender{Valid: true, SndNxt: 1000, RcvNxt: 5000}
	cases := []struct {
		name  string
		seg   SenderSeg
		rules []Rule
		retx  bool
	}{
		{"new data at snd_nxt", SenderSeg{Seq: 1000, Ack: 5000, Len: 100, Flags: event.ACK}, nil, false},
		{"pure ack at snd_nxt", SenderSeg{Seq: 1000, Ack: 5000, Flags: event.ACK}, nil, false},
		{"retransmission below snd_nxt", SenderSeg{Seq: 800, Ack: 5000, Len: 100, Flags: event.ACK}, nil, true},
		{"retransmission ending at snd_nxt", SenderSeg{Seq: 900, Ack: 5000, Len: 100, Flags: event.ACK}, nil, true},
		{"SYN at snd_nxt", SenderSeg{Seq: 1000, Flags: event.SYN}, nil, false},
		{"window probe below snd_una", SenderSeg{Seq: 999, Ack: 5000, Flags: event.ACK}, nil, false},
		// Negatives: what the kernel never does.
		{"new data beyond snd_nxt", SenderSeg{Seq: 1100, Ack: 5000, Len: 100, Flags: event.ACK}, []Rule{NewDataAtSndNxt}, false},
		{"new data straddling snd_nxt", SenderSeg{Seq: 950, Ack: 5000, Len: 100, Flags: event.ACK}, []Rule{NewDataAtSndNxt}, false},
		{"ack behind rcv_nxt", SenderSeg{Seq: 1000, Ack: 4999, Flags: event.ACK}, []Rule{AckIsRcvNxt}, false},
		{"ack beyond rcv_nxt", SenderSeg{Seq: 1000, Ack: 5001, Len: 10, Flags: event.ACK}, []Rule{AckIsRcvNxt}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.seg
			s.Sender = k
			var got []Rule
			for _, v := range SenderRules(&s) {
				got = append(got, v.Rule)
			}
			if len(got) != len(tc.rules) || (len(got) > 0 && got[0] != tc.rules[0]) {
				t.Errorf("rules broken %v, want %v", got, tc.rules)
			}
			if r := SenderRetransmission(&s); r != tc.retx {
				t.Errorf("kernel says retransmission %v, want %v", r, tc.retx)
			}
		})
	}
}

// Without the sender's state (no full socket) nothing is judged.
func TestSenderRulesNeedState(t *testing.T) {
	s := SenderSeg{Seq: 1100, Ack: 1, Len: 10, Flags: event.ACK, Sender: &event.Sender{SndNxt: 1000}}
	if v := SenderRules(&s); len(v) != 0 || SenderRetransmission(&s) {
		t.Errorf("judged without a socket: %v", v)
	}
}

// TestSenderRulesTornDownSocket: a socket read as it was torn down (its
// sequence state zero) judges nothing.
func TestSenderRulesTornDownSocket(t *testing.T) {
	s := SenderSeg{Seq: 1000, Ack: 5000, Flags: event.ACK | event.RST, Sender: &event.Sender{Valid: true}}
	if v := SenderRules(&s); len(v) != 0 {
		t.Errorf("judged by a zeroed socket: %v", v)
	}
}
