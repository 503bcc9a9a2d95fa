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
	"tcptracer/internal/tsharkcheck"
)

// findingKinds pairs each Wireshark tcp.analysis flag with the tracer's
// finding kind of the same meaning.
//
// Tolerance. Wireshark's rules read the packets in capture order and their
// timestamps, and tcpdump's order and clock are not the tracer's: the tap
// and the TC or xmit hook are different points of the kernel, and on two
// CPUs a packet going out and one coming in can pass them in the opposite
// order (seen on today's veth runs: a window_full or a duplicate ACK then
// moves to a neighbouring segment); Wireshark's out-of-order test compares
// a gap with the handshake RTT, a few tens of microseconds on lo, and the
// two clocks read a packet microseconds apart. So the comparison that must
// hold exactly is tshark on the same packets in the tracer's order, by the
// tracer's timestamps (oracle.Reorder): per kind, the segments tshark flags
// are the segments the tracer's finding lines name, as multisets of keys,
// zero tolerance, healthy or not. Any difference there is a rule that is
// not Wireshark's, with one deliberate exception: the tracer's duplicate
// ACK adds RFC 5681's first condition, which Wireshark skips (the ACK's
// receiver has data outstanding), so the pure ACKs a receiver sends with a
// D-SACK block after a spurious retransmission, acknowledging everything
// sent, are Wireshark's duplicate ACKs but not the tracer's. The test
// drops those from tshark's list, judging "outstanding" from the packets
// themselves (oracle.RFC5681Exempt), and compares the rest exactly. The tshark
// verdicts on the capture as tcpdump wrote it are compared too and logged
// per kind; they may differ only by the order and clock effects above, and
// the log says how many positions the two orders differ at.
// The pairs are tsharkcheck's, the one table of them.
var findingKinds = tsharkcheck.Kinds

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
			m := checkWireSegments(t, r, v) // the findings below stand on these
			frames := runTshark(t, r.pcap)
			checkFramesAreCapture(t, frames, oracle.Keys(r.capture))
			got := tracerFindings(t, r, v)
			onCapture := tsharkFindings(frames)
			if sc.dropOnce {
				checkDropFound(t, r, onCapture)
			}
			if !m.Equal() {
				logFindings(t, r, "on the capture", onCapture, got)
				t.Fatalf("findings not compared in the tracer's order: its wire segments differ from the capture (above)")
			}
			order, moved := tracerOrder(v, m)
			logFindings(t, r, fmt.Sprintf("on the capture (its order differs from the tracer's at %d of %d positions)", moved, len(order)), onCapture, got)
			reordered, err := oracle.Reorder(r.pcap, order, tracerTimes(v))
			if err != nil {
				t.Fatal(err)
			}
			frames = runTshark(t, reordered)
			checkFramesAreCapture(t, frames, keysOf(v.wire))
			want, exempt := tsharkFindings(frames), frameKeys(oracle.RFC5681Exempt(frames))
			if len(exempt) > 0 {
				t.Logf("%d of tshark's duplicate ACKs acknowledge all the peer sent (RFC 5681 (a)): not the tracer's to flag", len(exempt))
				_, want["duplicate_ack"], _ = splitCommon(want["duplicate_ack"], exempt)
			}
			checkFindings(t, r, v, want, got)
		})
	}
}

func runTshark(t *testing.T, pcap []byte) []oracle.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	frames, err := oracle.Tshark(ctx, pcap)
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	return frames
}

// tracerOrder lists the capture's segments in the order of the tracer's
// wire view (m pairs capture and view one for one), and counts the
// positions where that order differs from the capture's.
func tracerOrder(v connView, m oracle.Match) (order []int, moved int) {
	order = make([]int, len(v.wire))
	for i, j := range m.AtoB {
		order[j] = i
	}
	for k, i := range order {
		if k != i {
			moved++
		}
	}
	return order, moved
}

func tracerTimes(v connView) []time.Time {
	ts := make([]time.Time, len(v.wire))
	for i := range v.wire {
		ts[i] = time.Unix(0, int64(v.wire[i].TS))
	}
	return ts
}

// checkFramesAreCapture: tshark read the packets the pcap holds (as our
// own decoder read them, or as the tracer ordered them), or one of the
// oracles is wrong.
func checkFramesAreCapture(t *testing.T, frames []oracle.Frame, keys []oracle.Key) {
	t.Helper()
	if len(frames) != len(keys) {
		t.Fatalf("tshark read %d TCP frames, want %d", len(frames), len(keys))
	}
	for i, f := range frames {
		if f.Number != i+1 || f.Key != keys[i] {
			t.Fatalf("frame %d: tshark says %s, want %s", f.Number, f.Key, keys[i])
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
			if k.Tshark == a {
				out = append(out, k.Tracer)
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
func checkFindings(t *testing.T, r *wireRun, v connView, want, got findingKeys) {
	t.Helper()
	for _, k := range findingKinds {
		w, g := want[k.Tracer], got[k.Tracer]
		if m := oracle.MatchKeys(w, g); !m.Equal() {
			t.Errorf("finding %s (tcp.analysis.%s), tshark in the tracer's order: tshark %d, tracer %d\n%s",
				k.Tracer, k.Tshark, len(w), len(g), findingDiff(w, g, m, v))
		}
	}
	for kind, g := range got {
		if !slices.ContainsFunc(findingKinds, func(k struct{ Tshark, Tracer string }) bool { return k.Tracer == kind }) {
			t.Errorf("the tracer reports %d %s findings, a kind tshark has no flag for", len(g), kind)
		}
	}
	t.Logf("FINDINGS %s, in the tracer's order (tshark/tracer): %s", r.bed.sc.name, findingCounts(want, got))
}

// logFindings reports the per-kind counts on one tshark reading, and how
// many flagged segments the two sides do not share.
func logFindings(t *testing.T, r *wireRun, what string, want, got findingKeys) {
	t.Helper()
	differ := 0
	for _, k := range findingKinds {
		m := oracle.MatchKeys(want[k.Tracer], got[k.Tracer])
		differ += len(m.OnlyA) + len(m.OnlyB)
	}
	t.Logf("FINDINGS %s, %s (tshark/tracer): %s; %d flagged segments not shared", r.bed.sc.name, what, findingCounts(want, got), differ)
}

func findingCounts(want, got findingKeys) string {
	var counts []string
	for _, k := range findingKinds {
		if w, g := len(want[k.Tracer]), len(got[k.Tracer]); w+g > 0 {
			counts = append(counts, fmt.Sprintf("%s %d/%d", k.Tracer, w, g))
		}
	}
	if len(counts) == 0 {
		return "none on either side"
	}
	return strings.Join(counts, ", ")
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

// checkDropFound: the scenario did what it is for, tshark flags the resent
// segment as not advancing the sequence: a retransmission of some kind or,
// when it comes within the handshake's RTT of the highest segment (the
// loss is repaired fast on a veth pair), out of order.
func checkDropFound(t *testing.T, r *wireRun, want findingKeys) {
	t.Helper()
	for _, kind := range []string{"retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order"} {
		if slices.ContainsFunc(want[kind], func(k oracle.Key) bool { return k.Seq == r.dropSeq && k.Len > 0 }) {
			return
		}
	}
	t.Errorf("tshark flags nothing at the dropped segment's seq %d: neither a retransmission nor out of order", r.dropSeq)
}

// frameKeys lists the frames' segment keys.
func frameKeys(frames []oracle.Frame) []oracle.Key {
	keys := make([]oracle.Key, len(frames))
	for i, f := range frames {
		keys[i] = f.Key
	}
	return keys
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
