package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"tcptracer/event"
)

// With a wall clock, every line carries ts right after ts_ns: RFC 3339 in
// UTC with nine digits of nanoseconds, ts_ns plus the offset.
func TestWallClock(t *testing.T) {
	var b bytes.Buffer
	w := NewJSONWriter(&b)
	base := time.Date(2026, 12, 1, 21, 24, 7, 610894030, time.UTC)
	const mono = 841297426704
	w.SetWallClock(base.UnixNano() - mono)
	for _, ev := range []event.Event{
		{Type: event.TypeLost, TS: mono, Index: 1, Count: 3},
		{Type: event.TypeLost, TS: mono + 1000, Index: 2, Count: 1},
	} {
		if err := w.Write(&ev); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		`{"type":"lost","ts_ns":841297426704,"ts":"2026-12-01T21:24:07.610894030Z","conn":null,"id":1,"count":3}`,
		`{"type":"lost","ts_ns":841297427704,"ts":"2026-12-01T21:24:07.610895030Z","conn":null,"id":2,"count":1}`,
	}
	for i := range want {
		if i >= len(lines) || lines[i] != want[i] {
			t.Fatalf("got %q, want %q", lines, want)
		}
	}
	var ev event.Event
	if err := Decode([]byte(lines[0]), &ev); err != nil || ev.Count != 3 {
		t.Errorf("a line with ts does not decode: %v", err)
	}
	var v struct{ TS time.Time }
	if err := json.Unmarshal([]byte(lines[0]), &v); err != nil || !v.TS.Equal(base) {
		t.Errorf("ts parses as %v (%v), want %v", v.TS, err, base)
	}
}

// Fields is the writer's own order, and MissingField finds what a line lacks.
func TestFields(t *testing.T) {
	got := strings.Join(Fields(event.TypeLost), ",")
	if got != "type,ts_ns,conn,id,count" {
		t.Errorf("Fields(lost) = %s", got)
	}
	for _, typ := range []event.Type{event.TypeSegment, event.TypeConnect, event.TypeState} {
		f := Fields(typ)
		if len(f) < 10 || f[0] != "type" || f[1] != "ts_ns" {
			t.Errorf("Fields(%s) = %v", typ, f)
		}
	}
	if m, err := MissingField([]byte(`{"type":"lost","ts_ns":1,"conn":null,"id":1}`), event.TypeLost); err != nil || m != "count" {
		t.Errorf("MissingField = %q, %v; want count", m, err)
	}
	if m, err := MissingField([]byte(`{"type":"lost","ts_ns":1,"ts":"x","conn":null,"id":1,"count":2}`), event.TypeLost); err != nil || m != "" {
		t.Errorf("MissingField of a complete line = %q, %v", m, err)
	}
	if _, err := MissingField([]byte(`{"type":`), event.TypeLost); err == nil {
		t.Error("MissingField of a truncated line: no error")
	}
}
