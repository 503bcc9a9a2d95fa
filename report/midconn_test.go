package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"tcptracer/conn"
	"tcptracer/event"
	"tcptracer/output"
	tt "tcptracer/timeline/timelinetest"
)

// midConnection is a close traced from the middle: no handshake, the
// client's 100 last bytes still in flight when its socket reports
// FIN_WAIT1 with snd_una and rcv_nxt, then both FINs.
func midConnection() *tt.Builder {
	b := tt.New("127.0.0.1:40000", "127.0.0.1:20000").From(1100, 500).InFlight(tt.Client, 100)
	return b.State(tt.Client, "ESTABLISHED", "FIN_WAIT1").
		Seg(tt.Server, "A", 500, 1100, 0).
		Seg(tt.Client, "FA", 1100, 500, 0).
		State(tt.Server, "ESTABLISHED", "CLOSE_WAIT").
		Seg(tt.Server, "A", 500, 1101, 0).
		State(tt.Client, "FIN_WAIT1", "FIN_WAIT2").
		State(tt.Server, "CLOSE_WAIT", "LAST_ACK").
		Seg(tt.Server, "FA", 500, 1101, 0).
		Seg(tt.Client, "A", 1101, 501, 0).
		State(tt.Client, "FIN_WAIT2", "CLOSE").
		State(tt.Server, "LAST_ACK", "CLOSE")
}

// liveAndSaved annotates raw events as the tracer does and returns them
// with the JSON stream it would have written.
func liveAndSaved(t *testing.T, raw []event.Event) ([]event.Event, []byte) {
	t.Helper()
	tr := conn.NewTracker(nil)
	var stream bytes.Buffer
	w := output.NewJSONWriter(&stream)
	live := make([]event.Event, len(raw))
	for i := range raw {
		live[i] = raw[i]
		tr.Annotate(&live[i])
		if err := w.Write(&live[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return live, stream.Bytes()
}

func decodeAll(t *testing.T, stream []byte) []event.Event {
	t.Helper()
	var evs []event.Event
	for _, line := range bytes.Split(bytes.TrimSpace(stream), []byte("\n")) {
		var ev event.Event
		if err := output.Decode(line, &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestMidConnectionJSONAndLadderAgree: on a connection traced from the
// middle, the JSON's seq_rel/ack_rel and the ladder's Seq/Ack are the same
// numbers (from the kernel's snd_una/rcv_nxt), both marked derived, and
// the saved stream gives the report the live run gave.
func TestMidConnectionJSONAndLadderAgree(t *testing.T) {
	live, stream := liveAndSaved(t, midConnection().Events)
	saved := decodeAll(t, stream)
	for _, f := range []Format{Text, JSON} {
		if a, b := report(t, live, Options{Format: f}), report(t, saved, Options{Format: f}); !bytes.Equal(a, b) {
			t.Errorf("format %d: the saved stream's report differs from the live one:\n%s\nlive:\n%s", f, b, a)
		}
	}
	var labels []string
	for _, l := range strings.Split(string(report(t, live, Options{Format: Text})), "\n") {
		if strings.Contains(l, "] Seq=") {
			labels = append(labels, l)
		}
	}
	var segs []string
	for _, line := range bytes.Split(bytes.TrimSpace(stream), []byte("\n")) {
		var w struct {
			Type    string  `json:"type"`
			SeqRel  *uint32 `json:"seq_rel"`
			AckRel  *uint32 `json:"ack_rel"`
			Derived bool    `json:"rel_derived"`
			Wire    bool    `json:"wire"`
		}
		if err := json.Unmarshal(line, &w); err != nil {
			t.Fatal(err)
		}
		if w.Type != "segment" || !w.Wire {
			continue // the ladder draws the wire's records only
		}
		if w.SeqRel == nil || w.AckRel == nil || !w.Derived {
			t.Fatalf("segment line without derived relative numbers: %s", line)
		}
		segs = append(segs, fmt.Sprintf("Seq=%d Ack=%d Len=0 ~", *w.SeqRel, *w.AckRel))
	}
	if len(segs) != len(labels) || len(segs) != 5 {
		t.Fatalf("%d JSON segments, %d ladder arrows; want 5 each", len(segs), len(labels))
	}
	for i := range segs {
		if !strings.Contains(labels[i], "] "+segs[i]+" ") {
			t.Errorf("ladder arrow %q, JSON says %q", labels[i], segs[i])
		}
	}
	// The kernel's snd_una is relative 1: the server acknowledges the 100
	// bytes in flight, which a base from the first segment would call 1.
	if segs[0] != "Seq=1 Ack=101 Len=0 ~" {
		t.Errorf("first segment %q, want the kernel's numbering Seq=1 Ack=101", segs[0])
	}
}
