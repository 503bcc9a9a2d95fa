package ladder

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/timeline"
	"tcptracer/timeline/timelinetest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// ended feeds a scenario and returns the one connection it ends.
func ended(t *testing.T, b *timelinetest.Builder) *timeline.Conn {
	t.Helper()
	tl := timeline.New(timeline.Options{})
	var got []*timeline.Conn
	for i := range b.Events {
		got = append(got, tl.Feed(&b.Events[i]).Ended...)
	}
	if len(got) != 1 {
		t.Fatalf("%d connections ended, want 1", len(got))
	}
	return got[0]
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden: %v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

func TestRenderEcho(t *testing.T) {
	c := ended(t, timelinetest.Echo())
	var buf bytes.Buffer
	if err := Render(&buf, c, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "echo.golden", buf.Bytes())
	out := buf.String()
	for _, want := range []string{"[SYN] Seq=0 Len=0", "[SYN, ACK] Seq=0 Ack=1", "[PSH, ACK] Seq=1 Ack=1 Len=2",
		"[FIN, ACK] Seq=3 Ack=3", "[ACK] Seq=4 Ack=4", "verdict: ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("ladder lacks %q", want)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour without being asked")
	}
}

func TestRenderFindingsAndColour(t *testing.T) {
	// The echo, but the client's last ACK does not count its FIN, and
	// the client retransmits "AB" (the kernel agrees) before closing.
	b := timelinetest.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake()
	b.Seg(timelinetest.Client, "PA", 1, 1, 2).
		Wait(300_000_000).Seg(timelinetest.Client, "PA", 1, 1, 2).Retransmit(timelinetest.Client, 1, 2).
		Seg(timelinetest.Server, "A", 1, 3, 0).
		Seg(timelinetest.Client, "FA", 3, 1, 0).
		Seg(timelinetest.Server, "FA", 1, 4, 0).
		Seg(timelinetest.Client, "A", 3, 2, 0)
	tl := timeline.New(timeline.Options{})
	for i := range b.Events {
		tl.Feed(&b.Events[i])
	}
	conns := tl.Flush()
	var buf bytes.Buffer
	if err := Render(&buf, conns[0], true); err != nil {
		t.Fatal(err)
	}
	golden(t, "violation_color.golden", buf.Bytes())
	if !strings.Contains(buf.String(), "\x1b[31m!! fin-consumes-one: seq 3 (rel), want 4 (rel) after #") {
		t.Errorf("violation not shown in red:\n%s", buf.String())
	}
}
