package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"tcptracer/internal/oracle"
	"tcptracer/internal/privtest"
)

// findingKinds pairs each Wireshark tcp.analysis flag with the tracer's
// finding kind of the same meaning. The tracer follows Wireshark's
// heuristics and, on its wire view, sees the packets tcpdump captured in
// the same order, so every kind is held to the same standard: the segments
// tshark flags and the segments the tracer flags are equal as multisets of
// keys. Healthy or not, the tolerance is zero per kind and per segment,
// with one exception (see timingCalls): a difference is a wire segment that
// is wrong (TestWire shows which) or a rule that is not Wireshark's, and
// neither is noise to allow for.
var findingKinds = []struct{ tshark, tracer string }{
	{"retransmission", "retransmission"},
	{"fast_retransmission", "fast_retransmission"},
	{"spurious_retransmission", "spurious_retransmission"},
	{"out_of_order", "out_of_order"},
	{"lost_segment", "previous_segment_not_seen"},
	{"ack_lost_segment", "ack_lost_segment"},
	{"duplicate_ack", "duplicate_ack"},
	{"zero_window", "zero_window"},
	{"zero_window_probe", "zero_window_probe"},
	{"zero_window_probe_ack", "zero_window_probe_ack"},
	{"window_update", "window_update"},
	{"window_full", "window_full"},
	{"keep_alive", "keep_alive"},
	{"keep_alive_ack", "keep_alive_ack"},
}

func TestWireTshark(t *testing.T) {
	for _, sc := range wireScenarios {
		t.Run(sc.name, func(t *testing.T) {
			privtest.RequireRoot(t, "tcpdump", "tshark")
			if !oracleOn() {
				t.Skip("TCPTRACER_ORACLE=off: no capture for tshark to read")
			}
			r := runWire(t, sc)
			v := r.view(t)
			checkNoLoss(t, r)
			checkWireSegments(t, r, v) // the findings below stand on these
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			frames, err := oracle.Tshark(ctx, r.pcap)
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			checkFramesAreCapture(t, frames, r.capture)
			checkFindings(t, r, v, frames)
		})
	}
}

// checkFramesAreCapture: tshark and our own pcap decoder read the same
// packets, or one of the two oracles is wrong.
func checkFramesAreCapture(t *testing.T, frames []oracle.Frame, capture []oracle.Segment) {
	t.Helper()
	if len(frames) != len(capture) {
		t.Fatalf("tshark read %d TCP frames, the pcap decoder %d segments", len(frames), len(capture))
	}
	for i, f := range frames {
		if f.Number != i+1 || f.Key != capture[i].Key() {
			t.Fatalf("frame %d: tshark says %s, the pcap decoder %s", f.Number, f.Key, capture[i].Key())
		}
	}
	if s := frames[len(frames)-1].Stream; s != frames[0].Stream {
		t.Fatalf("tshark sees more than one TCP stream (%d and %d) in a capture of one connection", frames[0].Stream, s)
	}
}

// tsharkKinds is the frame's findings in the tracer's names. Wireshark
// sets "retransmission" beside the fast and the spurious kind; the tracer
// names the one kind, so the plain one goes when a sharper one is there.
func tsharkKinds(f oracle.Frame) []string {
	var out []string
	sharper := f.Has("fast_retransmission") || f.Has("spurious_retransmission")
	for _, a := range f.Analysis {
		if a == "retransmission" && sharper {
			continue
		}
		for _, k := range findingKinds {
			if k.tshark == a {
				out = append(out, k.tracer)
			}
		}
	}
	return out
}

// findingKeys gathers the segments each side flags, per tracer kind.
type findingKeys map[string][]oracle.Key

func tsharkFindings(frames []oracle.Frame) findingKeys {
	fk := findingKeys{}
	for _, f := range frames {
		for _, k := range tsharkKinds(f) {
			fk[k] = append(fk[k], f.Key)
		}
	}
	return fk
}

// tracerFindings reads the connection's finding lines; each names its
// segment by event id.
func tracerFindings(t *testing.T, r *wireRun, v connView) findingKeys {
	t.Helper()
	byID := map[uint64]*wireEvent{}
	for i := range r.stream {
		byID[r.stream[i].ID] = &r.stream[i]
	}
	fk := findingKeys{}
	for _, e := range r.stream {
		if e.Type != "finding" || e.Conn == nil || *e.Conn != v.conn {
			continue
		}
		seg := byID[e.Segment]
		if seg == nil || seg.Type != "segment" {
			t.Errorf("finding %s names segment %d, which is not a segment event of the stream", e.Kind, e.Segment)
			continue
		}
		fk[e.Kind] = append(fk[e.Kind], seg.key())
	}
	return fk
}

// checkFindings compares, kind by kind, the segments each side flags.
func checkFindings(t *testing.T, r *wireRun, v connView, frames []oracle.Frame) {
	t.Helper()
	want, got := tsharkFindings(frames), tracerFindings(t, r, v)
	for _, k := range timingCalls(want, got) {
		t.Logf("timing call: tshark and the tracer disagree on out_of_order vs retransmission at %s", k)
	}
	var counts []string
	for _, k := range findingKinds {
		w, g := want[k.tracer], got[k.tracer]
		if len(w)+len(g) > 0 {
			counts = append(counts, fmt.Sprintf("%s %d/%d", k.tracer, len(w), len(g)))
		}
		if m := oracle.MatchKeys(w, g); !m.Equal() {
			t.Errorf("finding %s (tcp.analysis.%s): tshark %d, tracer %d\n%s", k.tracer, k.tshark, len(w), len(g), findingDiff(w, g, m, v))
		}
		delete(got, k.tracer)
	}
	for kind, g := range got {
		t.Errorf("the tracer reports %d %s findings, a kind tshark has no flag for", len(g), kind)
	}
	if len(counts) == 0 {
		counts = append(counts, "none on either side")
	}
	t.Logf("FINDINGS %s (tshark/tracer): %s", r.bed.sc.name, strings.Join(counts, ", "))
	if r.bed.sc.dropOnce {
		checkDropFound(t, r, want)
	}
}

func findingDiff(want, got []oracle.Key, m oracle.Match, v connView) string {
	var b strings.Builder
	for _, i := range m.OnlyA[:min(len(m.OnlyA), mismatchShown)] {
		fmt.Fprintf(&b, "    only tshark: %s\n", want[i])
	}
	for _, j := range m.OnlyB[:min(len(m.OnlyB), mismatchShown)] {
		fmt.Fprintf(&b, "    only tracer: %s\n", got[j])
		for _, e := range overlapping(v.all, got[j]) {
			fmt.Fprintf(&b, "        %s\n", e.String())
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// checkDropFound: the scenario did what it is for, tshark flags the
// resent segment as a retransmission of some kind.
func checkDropFound(t *testing.T, r *wireRun, want findingKeys) {
	t.Helper()
	for _, kind := range []string{"retransmission", "fast_retransmission", "spurious_retransmission"} {
		if slices.ContainsFunc(want[kind], func(k oracle.Key) bool { return k.Seq == r.dropSeq && k.Len > 0 }) {
			return
		}
	}
	t.Errorf("tshark flags no retransmission at the dropped segment's seq %d", r.dropSeq)
}

// timingCalls removes, and returns, the segments one side calls
// out_of_order and the other retransmission. Both agree the segment does
// not advance the sequence; which of the two it is, Wireshark decides by
// time alone: out of order when it comes within the handshake's RTT of the
// highest segment. The tracer's clock reads a packet at TC, tcpdump's where
// the packet enters the stack or the tap, microseconds apart and not by a
// constant, and on loopback the RTT itself is a few tens of microseconds.
// So a gap near the threshold falls on either side. Anything else a side
// flags alone still fails.
func timingCalls(want, got findingKeys) []oracle.Key {
	var calls, common []oracle.Key
	for _, p := range [][2]string{{"out_of_order", "retransmission"}, {"retransmission", "out_of_order"}} {
		common, want[p[0]], got[p[1]] = splitCommon(want[p[0]], got[p[1]])
		calls = append(calls, common...)
	}
	return calls
}

// splitCommon returns the keys a and b share (as multisets) and what each
// has beyond them.
func splitCommon(a, b []oracle.Key) (common, onlyA, onlyB []oracle.Key) {
	m := oracle.MatchKeys(a, b)
	for i, j := range m.AtoB {
		if j >= 0 {
			common = append(common, a[i])
		}
	}
	for _, i := range m.OnlyA {
		onlyA = append(onlyA, a[i])
	}
	for _, j := range m.OnlyB {
		onlyB = append(onlyB, b[j])
	}
	return common, onlyA, onlyB
}
