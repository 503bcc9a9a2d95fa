package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/analysis/expect"
	"tcptracer/event"
	"tcptracer/timeline/timelinetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// retransmitted is the echo session with the client's AB sent twice, the
// second time reported by the kernel too.
func retransmitted() []event.Event {
	b := timelinetest.New("127.0.0.1:40000", "127.0.0.1:20000")
	b.Handshake()
	b.Seg(timelinetest.Client, "PA", 1, 1, 2).Wait(200_000_000)
	b.Retransmit(timelinetest.Client, 1, 2).Seg(timelinetest.Client, "PA", 1, 1, 2)
	b.Seg(timelinetest.Server, "A", 1, 3, 0)
	return b.Events
}

func report(t *testing.T, evs []event.Event, o Options) []byte {
	t.Helper()
	var out bytes.Buffer
	r := New(&out, o)
	for i := range evs {
		ev := evs[i]
		if err := r.Feed(&ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	exps, err := expect.Parse("no-retransmissions")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		evs  []event.Event
		o    Options
	}{
		{"echo_json", timelinetest.Echo().Events, Options{Format: JSON}},
		{"echo_text", timelinetest.Echo().Events, Options{Format: Text}},
		{"retransmit_json", retransmitted(), Options{Format: JSON, Expectations: exps}},
		{"retransmit_text", retransmitted(), Options{Format: Text, Expectations: exps}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := report(t, c.evs, c.o)
			golden := filepath.Join("testdata", c.name+".golden")
			if *update {
				os.MkdirAll("testdata", 0o755)
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("report differs from %s:\n%s", golden, got)
			}
		})
	}
}

// The retransmission fails the expectation, and the verdict stays ok.
func TestFailures(t *testing.T) {
	exps, _ := expect.Parse("no-retransmissions")
	var out bytes.Buffer
	r := New(&out, Options{Expectations: exps})
	for _, ev := range retransmitted() {
		r.Feed(&ev)
	}
	r.Finish()
	f := r.Failures()
	if r.Conns() != 1 || len(f) != 1 || f[0].Expectation != "no-retransmissions" {
		t.Errorf("conns %d, failures %v; want 1 connection failing no-retransmissions", r.Conns(), f)
	}
}

// Every report line the README shows is one the report really writes.
func TestReadmeExamples(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var golden []byte
	for _, n := range []string{"echo_json", "retransmit_json"} {
		b, err := os.ReadFile(filepath.Join("testdata", n+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		golden = append(golden, b...)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		for _, typ := range []string{"finding", "violation", "summary"} {
			if strings.HasPrefix(line, `{"type":"`+typ+`"`) {
				seen[typ] = true
				if !bytes.Contains(golden, []byte(line+"\n")) {
					t.Errorf("README example is not in a golden file: %s", line)
				}
			}
		}
	}
	for _, typ := range []string{"finding", "summary"} {
		if !seen[typ] {
			t.Errorf("README has no %s example", typ)
		}
	}
}

// TestStreamRows: with Stream, the ladder's rows come out as the events
// arrive, before the connection ends, each tagged with its connection, and
// carry the same arrows as the whole ladder drawn at the end.
func TestStreamRows(t *testing.T) {
	evs := timelinetest.Echo().Events
	var out bytes.Buffer
	r := New(&out, Options{Format: Text, Stream: true})
	for i := range evs[:len(evs)/2] {
		ev := evs[i]
		if err := r.Feed(&ev); err != nil {
			t.Fatal(err)
		}
	}
	half := out.String()
	if !strings.Contains(half, "c1    conn 1: client") || !strings.Contains(half, "[SYN] Seq=0 Len=0") || strings.Contains(half, "verdict:") {
		t.Fatalf("half way: want the header and the first rows, no verdict; got:\n%s", half)
	}
	for i := range evs[len(evs)/2:] {
		ev := evs[len(evs)/2+i]
		if err := r.Feed(&ev); err != nil {
			t.Fatal(err)
		}
	}
	whole := string(report(t, evs, Options{Format: Text}))
	for _, l := range strings.Split(out.String(), "\n") {
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, "c1    ") {
			t.Fatalf("untagged row %q", l)
		}
		if row := strings.TrimPrefix(l, "c1    "); strings.Contains(row, "Seq=") && !strings.Contains(whole, row) {
			t.Errorf("streamed row %q is not in the whole ladder", row)
		}
	}
	if !strings.Contains(out.String(), "verdict: ok") {
		t.Errorf("no verdict at the end:\n%s", out.String())
	}
}
