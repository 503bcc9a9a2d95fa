package cli

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tcptracer/capture"
	"tcptracer/event"
	"tcptracer/report"
	"tcptracer/timeline/timelinetest"
	"tcptracer/tracer"
)

// writeSession runs a veth-like session (every segment the wire's) through
// a pipeline with the pcapng writer, each wire segment followed by its
// headers record; a lost event comes in between.
func writeSession(t *testing.T, wf pcapFlags, stdout io.Writer) (wire int) {
	t.Helper()
	tb := timelinetest.New("192.0.2.1:40000", "192.0.2.2:20000").Handshake()
	tb.Seg(timelinetest.Client, "PA", 1, 1, 2)
	tb.Seg(timelinetest.Client, "PA", 1, 1, 2) // a retransmission
	tb.Seg(timelinetest.Server, "A", 1, 3, 0)
	p, err := tracePipeline(wf, stdout, report.Options{Format: report.JSON})
	if err != nil {
		t.Fatal(err)
	}
	feed := func(ev *event.Event) {
		if err := p.HandleEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	feed(&event.Event{Type: event.TypeStart, Start: &event.Start{Kernel: "6.18", Version: "test", Port: 20000, Ifaces: []string{"veth0"}}})
	for i, ev := range tb.Events {
		ev.Point = event.PointXmit
		if ev.Type == event.TypeSegment && ev.Dir == event.Ingress {
			ev.Point = event.PointTC
		}
		feed(&ev)
		if i == 2 {
			feed(&event.Event{Type: event.TypeLost, Count: 3})
		}
		if ev.Wire {
			wire++
			h := tracer.Headers{Seg: ev, Data: make([]byte, 40), OrigLen: 40 + ev.Len}
			h.Data[0] = 0x45
			if err := p.HandleHeaders(&h); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.finish(); err != nil {
		t.Fatal(err)
	}
	return wire
}

func readPackets(t *testing.T, b []byte) []capture.Packet {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []capture.Packet
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
}

func TestWriteStdout(t *testing.T) {
	var out bytes.Buffer
	wire := writeSession(t, pcapFlags{path: "-"}, &out)
	b := out.Bytes()
	pkts := readPackets(t, b)
	if len(pkts) != wire || wire < 6 {
		t.Fatalf("%d packets, want one per wire segment: %d", len(pkts), wire)
	}
	for _, p := range pkts {
		if p.LinkType != capture.LinkRaw || len(p.Data) != 40 || p.IfName == "" || p.Dir == capture.DirUnknown {
			t.Errorf("packet %d: link %d, %d bytes, iface %q, dir %d", p.Number, p.LinkType, len(p.Data), p.IfName, p.Dir)
		}
	}
	for _, want := range []string{"tcptracer test on Linux 6.18", "port 20000", "conn 1", "findings: retransmission",
		"3 records lost since the start"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the file lacks %q", want)
		}
	}
	if bytes.Contains(b, []byte(`{"type"`)) {
		t.Error("--write - mixed JSON into the pcapng on stdout")
	}
}

func TestWriteRotation(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	writeSession(t, pcapFlags{path: filepath.Join(dir, "x.pcapng"), size: 400, files: 2}, &out)
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(names) != 2 || !strings.HasSuffix(names[0], "x.0.pcapng") || !strings.HasSuffix(names[1], "x.1.pcapng") {
		t.Fatalf("files %v, want x.0.pcapng and x.1.pcapng", names)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(readPackets(t, b)) == 0 {
			t.Errorf("%s holds no packet", n)
		}
	}
	if !strings.Contains(out.String(), `"type":"summary"`) {
		t.Error("the JSON stream stopped with --write FILE")
	}
}

func TestWriteFlags(t *testing.T) {
	for _, bad := range []pcapFlags{
		{size: 10}, {path: "-", every: 1}, {path: "x", files: 3}, {files: 1},
	} {
		if err := bad.check(); !errors.Is(err, errUsage) {
			t.Errorf("%+v: got %v, want a usage error", bad, err)
		}
	}
}
