package analysis_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/analysis"
	"tcptracer/timeline"
	tt "tcptracer/timeline/timelinetest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	C = tt.Client
	S = tt.Server
)

// run feeds a scenario and returns a copy of every segment record.
// run feeds the stream and returns the connection's segments once it
// ended, with every violation, the ones its end showed included.
func run(b *tt.Builder) []timeline.Segment {
	tl := timeline.New(timeline.Options{})
	var ended []*timeline.Conn
	for i := range b.Events {
		ended = append(ended, tl.Feed(&b.Events[i]).Ended...)
	}
	ended = append(ended, tl.Flush()...)
	var segs []timeline.Segment
	for _, c := range ended {
		segs = append(segs, c.Segments...)
	}
	return segs
}

// est is an established loopback connection with the client's 10 bytes
// at seq 1 sent but not yet acknowledged.
func est() *tt.Builder {
	return tt.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake().Seg(C, "PA", 1, 1, 10)
}

func kinds(s timeline.Segment) []string {
	var out []string
	for _, f := range s.Findings {
		out = append(out, f.String())
	}
	return out
}

func notes(s timeline.Segment) string {
	out := kinds(s)
	for _, v := range s.Violations {
		out = append(out, "!"+v.Rule.String())
	}
	return strings.Join(out, " ")
}

var findingCases = []struct {
	name string
	b    *tt.Builder
	want string // findings of the last segment, as Finding.String, comma-joined; "" = none
}{
	{"retransmission", est().Wait(300e6).Seg(C, "PA", 1, 1, 10), "retransmission of #13"},
	{"retransmission_not_new_data", est().Seg(C, "PA", 11, 1, 10), ""},
	{"fast_retransmission", est().Seg(C, "PA", 11, 1, 10).Seg(C, "PA", 21, 1, 10).
		Seg(S, "A", 1, 11, 0).Seg(S, "A", 1, 11, 0).Seg(S, "A", 1, 11, 0).Seg(C, "PA", 11, 1, 10),
		"fast_retransmission"},
	{"fast_retransmission_not_after_20ms", est().Seg(C, "PA", 11, 1, 10).Seg(C, "PA", 21, 1, 10).
		Seg(S, "A", 1, 11, 0).Seg(S, "A", 1, 11, 0).Seg(S, "A", 1, 11, 0).Wait(50e6).Seg(C, "PA", 11, 1, 10),
		"retransmission of #15"},
	{"spurious_retransmission", est().Seg(S, "A", 1, 11, 0).Seg(C, "PA", 1, 1, 10), "spurious_retransmission"},
	{"spurious_retransmission_not_unacked", est().Seg(S, "A", 1, 5, 0).Wait(300e6).Seg(C, "PA", 1, 1, 10),
		"retransmission of #13"},
	{"out_of_order", est().Seg(C, "PA", 21, 1, 10).Seg(C, "PA", 11, 1, 10), "out_of_order"},
	{"out_of_order_not_when_late", est().Seg(C, "PA", 21, 1, 10).Wait(100e6).Seg(C, "PA", 11, 1, 10),
		"retransmission of #13"},
	{"previous_segment_not_seen", est().Seg(C, "PA", 21, 1, 10), "previous_segment_not_seen"},
	{"previous_segment_not_seen_not_contiguous", est().Seg(C, "PA", 11, 1, 10), ""},
	{"ack_lost_segment", est().Seg(S, "A", 1, 21, 0), "ack_lost_segment"},
	{"ack_lost_segment_not_acking_seen", est().Seg(S, "A", 1, 11, 0), ""},
	{"duplicate_ack", est().Seg(C, "PA", 11, 1, 10).Seg(S, "A", 1, 11, 0).Seg(S, "A", 1, 11, 0).Seg(S, "A", 1, 11, 0),
		"duplicate_ack#2 of #17"},
	{"duplicate_ack_not_pure_ack_after_own_data", est().Seg(C, "A", 11, 1, 0), ""},
	{"duplicate_ack_not_advancing_ack", est().Seg(S, "A", 1, 5, 0).Seg(S, "A", 1, 11, 0), ""},
	{"duplicate_ack_not_window_update", est().Seg(S, "A", 1, 11, 0).SegW(S, "A", 1, 11, 0, 600), "window_update"},
	{"zero_window", est().SegW(S, "A", 1, 11, 0, 0), "zero_window"},
	{"zero_window_not_rst", est().SegW(S, "R", 1, 0, 0, 0), ""},
	{"zero_window_probe", est().SegW(S, "A", 1, 11, 0, 0).Seg(C, "A", 11, 1, 1), "zero_window_probe"},
	{"zero_window_probe_not_open_window", est().Seg(S, "A", 1, 11, 0).Seg(C, "PA", 11, 1, 1), ""},
	{"zero_window_probe_ack", est().SegW(S, "A", 1, 11, 0, 0).Seg(C, "A", 11, 1, 1).SegW(S, "A", 1, 11, 0, 0),
		"zero_window,zero_window_probe_ack"},
	{"zero_window_probe_ack_not_without_probe", est().SegW(S, "A", 1, 11, 0, 0).SegW(S, "A", 1, 11, 0, 0),
		"zero_window"},
	{"window_full", est().SegW(S, "A", 1, 11, 0, 1).Seg(C, "PA", 11, 1, 128), "window_full"},
	{"window_full_not_below_edge", est().SegW(S, "A", 1, 11, 0, 1).Seg(C, "PA", 11, 1, 100), ""},
	{"window_update", est().Seg(S, "A", 1, 11, 0).SegW(S, "A", 1, 11, 0, 600), "window_update"},
	{"window_update_not_with_data", est().Seg(S, "A", 1, 11, 0).SegW(S, "PA", 1, 11, 5, 600), ""},
	{"keep_alive", est().Seg(S, "A", 1, 11, 0).Seg(C, "A", 10, 1, 0), "keep_alive"},
	{"keep_alive_is_not_retransmission", est().Seg(S, "A", 1, 11, 0).Wait(300e6).Seg(C, "A", 10, 1, 1), "keep_alive"},
	{"keep_alive_not_at_next_seq", est().Seg(S, "A", 1, 11, 0).Seg(C, "A", 11, 1, 0), ""},
	{"keep_alive_ack", est().Seg(S, "A", 1, 11, 0).Seg(C, "A", 10, 1, 0).Seg(S, "A", 1, 11, 0), "keep_alive_ack"},
	{"keep_alive_ack_not_without_keep_alive", est().Seg(C, "PA", 11, 1, 10).Seg(S, "A", 1, 11, 0).Seg(S, "A", 1, 11, 0),
		"duplicate_ack#1 of #17"},
	{"reused_ports", tt.Echo().Next(2, 7777, 8888).Seg(C, "S", 0, 0, 0), "reused_ports"},
	{"reused_ports_not_first_syn", tt.New("127.0.0.1:40000", "127.0.0.1:20000").Seg(C, "S", 0, 0, 0), ""},
	{"reused_ports_not_syn_retransmission", tt.New("127.0.0.1:40000", "127.0.0.1:20000").
		Seg(C, "S", 0, 0, 0).Wait(1e9).Seg(C, "S", 0, 0, 0), "retransmission of #2"},
}

func TestFindings(t *testing.T) {
	var golden strings.Builder
	for _, tc := range findingCases {
		t.Run(tc.name, func(t *testing.T) {
			segs := run(tc.b)
			last := segs[len(segs)-1]
			if got := strings.Join(kinds(last), ","); got != tc.want {
				t.Errorf("last segment #%d findings %q, want %q", last.Index, got, tc.want)
			}
			fmt.Fprintf(&golden, "== %s\n", tc.name)
			for _, s := range segs {
				fmt.Fprintf(&golden, "#%-3d %-6s %-3s seq=%d ack=%d len=%d win=%d %s\n", s.Index, s.From,
					tt.FlagString(s.Flags), s.SeqRel, s.AckRel, s.Len, s.Win, notes(s))
			}
		})
	}
	compareGolden(t, "findings.golden", golden.String())
}

// TestEveryKindCovered keeps the table honest: each finding has a case.
func TestEveryKindCovered(t *testing.T) {
	for _, k := range analysis.Kinds() {
		found := false
		for _, tc := range findingCases {
			found = found || strings.Contains(tc.want, k.String())
		}
		if !found {
			t.Errorf("no positive case for %s", k)
		}
	}
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden: %v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}
