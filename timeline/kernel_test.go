package timeline_test

import (
	"fmt"
	"testing"

	"tcptracer/event"
	"tcptracer/timeline"
	tt "tcptracer/timeline/timelinetest"
)

// retx is an established connection whose "AB" is resent after 300ms.
func retx() *tt.Builder {
	return tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().
		Seg(C, "PA", 1, 1, 2).Wait(300e6)
}

// retxMid is retx with "CD" sent after "AB", so resending "AB" does not
// repeat the sender's highest bytes, as a tail loss probe would.
func retxMid() *tt.Builder {
	return tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().
		Seg(C, "PA", 1, 1, 2).Seg(C, "PA", 3, 1, 2).Wait(300e6)
}

func TestKernelRetransmit(t *testing.T) {
	cases := []struct {
		name                        string
		b                           *tt.Builder
		opts                        timeline.Options
		heuristic, kernel, disagree int
		known                       bool
		explained                   map[string]int
	}{
		{"agree, kernel event after segment", retx().Seg(C, "PA", 1, 1, 2).Retransmit(C, 1, 2),
			timeline.Options{}, 1, 1, 0, true, nil},
		{"agree, kernel event before segment", retx().Retransmit(C, 1, 2).Seg(C, "PA", 1, 1, 2),
			timeline.Options{}, 1, 1, 0, true, nil},
		{"kernel length counts the FIN", retx().Seg(C, "FPA", 1, 1, 2).Retransmit(C, 1, 3),
			timeline.Options{}, 1, 1, 0, true, nil},
		{"heuristic only", retxMid().Seg(C, "PA", 1, 1, 2),
			timeline.Options{KernelRetransmits: true}, 1, 0, 1, true, nil},
		{"heuristic only, the sender's last bytes: a tail loss probe", retx().Seg(C, "PA", 1, 1, 2),
			timeline.Options{KernelRetransmits: true}, 1, 0, 0, true, map[string]int{timeline.ExplainTailLossProbe: 1}},
		{"kernel only, no segment", retx().Retransmit(C, 1, 2),
			timeline.Options{}, 0, 0, 1, true, nil},
		{"kernel only, sent at TC egress but not on the wire", retx().Sighting(C, "PA", 1, 1, 2).Retransmit(C, 1, 2),
			timeline.Options{}, 0, 0, 0, true, map[string]int{timeline.ExplainNotOnWire: 1}},
		{"kernel only, the wire carried the bytes for the first time", retx().Seg(C, "PA", 3, 1, 2).Retransmit(C, 3, 2),
			timeline.Options{}, 0, 1, 0, true, map[string]int{timeline.ExplainOriginalNotSeen: 1}},
		{"kernel event too far from the segment", retxMid().Retransmit(C, 1, 2).Wait(500e6).Seg(C, "PA", 1, 1, 2),
			timeline.Options{}, 1, 0, 2, true, nil},
		{"lost records explain a difference", retxMid().Lost(5).Seg(C, "PA", 1, 1, 2),
			timeline.Options{KernelRetransmits: true}, 1, 0, 0, true, map[string]int{timeline.ExplainLostRecords: 1}},
		{"a kernel retransmission cut in two on the wire", tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().
			Seg(C, "PA", 1, 1, 4).Wait(300e6).Retransmit(C, 1, 4).Seg(C, "A", 1, 1, 2).Seg(C, "PA", 3, 1, 2),
			timeline.Options{}, 2, 2, 0, true, nil},
		{"no kernel tracepoint: no disagreement", retx().Seg(C, "PA", 1, 1, 2),
			timeline.Options{}, 1, 0, 0, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tl := timeline.New(tc.opts)
			feed(tl, tc.b)
			s := tl.Flush()[0].Summary
			if s.Retransmissions != tc.heuristic || s.KernelRetransmissions != tc.kernel ||
				s.Disagreements != tc.disagree || s.KernelKnown != tc.known {
				t.Errorf("heuristic %d kernel %d disagreements %d known %v; want %d %d %d %v",
					s.Retransmissions, s.KernelRetransmissions, s.Disagreements, s.KernelKnown,
					tc.heuristic, tc.kernel, tc.disagree, tc.known)
			}
			if fmt.Sprint(s.Explained) != fmt.Sprint(tc.explained) {
				t.Errorf("explained %v, want %v", s.Explained, tc.explained)
			}
		})
	}
}

// TestKernelRetransmitUpdate: a kernel event after its segment is
// reported back so live output can amend the segment.
func TestKernelRetransmitUpdate(t *testing.T) {
	b := retx().Seg(C, "PA", 1, 1, 2).Retransmit(C, 1, 2)
	tl := timeline.New(timeline.Options{})
	var updated []*timeline.Segment
	for i := range b.Events {
		updated = append(updated, tl.Feed(&b.Events[i]).Updated...)
	}
	if len(updated) != 1 || !updated[0].KernelRetransmit || updated[0].Index != 15 {
		t.Fatalf("updated %+v, want segment #15 marked", updated)
	}
}

// TestKernelRetransmitNearestWins: the kernel's event for a retransmission
// by a remote sender comes before its wire copy and just after the
// original, which arrived out of order: the event goes to the copy
// nearer to it in time, not to the original.
func TestKernelRetransmitNearestWins(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().
		Seg(C, "PA", 3, 1, 2).Seg(C, "PA", 1, 1, 2).Wait(30_000).Retransmit(C, 1, 2).Wait(5_000).Seg(C, "PA", 1, 1, 2)
	tl := timeline.New(timeline.Options{})
	feed(tl, b)
	c := tl.Flush()[0]
	var marks []bool
	for _, s := range c.Segments {
		if s.Len == 2 && s.Seq == event.Seq(b.ISN[C]+1) {
			marks = append(marks, s.KernelRetransmit)
		}
	}
	if fmt.Sprint(marks) != "[false true]" {
		t.Fatalf("kernel marks on the two sendings of seq 1: %v, want [false true]", marks)
	}
}

// TestKernelRetransmitWithinRTT: a retransmission the kernel made within an
// RTT of the original is out_of_order to Wireshark's heuristic; the
// difference is explained, not counted.
func TestKernelRetransmitWithinRTT(t *testing.T) {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().
		Seg(C, "PA", 1, 1, 2).Seg(C, "PA", 3, 1, 2).Seg(C, "PA", 1, 1, 2).Retransmit(C, 1, 2)
	tl := timeline.New(timeline.Options{})
	feed(tl, b)
	s := tl.Flush()[0].Summary
	if s.Disagreements != 0 || s.Explained[timeline.ExplainWithinRTT] != 1 {
		t.Fatalf("disagreements %d explained %v; want 0 and within_rtt=1", s.Disagreements, s.Explained)
	}
}
