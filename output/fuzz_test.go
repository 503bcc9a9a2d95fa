package output

import (
	"bytes"
	"reflect"
	"testing"

	"tcptracer/event"
)

// FuzzDecode feeds arbitrary lines to Decode. A line it accepts must
// encode again and decode to the same event: what analyze reads is what
// the tracer could have written. The seeds (testdata/fuzz/FuzzDecode and
// every golden line) run with go test.
func FuzzDecode(f *testing.F) {
	for _, c := range goldenCases {
		for i := range c.events {
			b, err := AppendJSON(nil, &c.events[i])
			if err != nil {
				f.Fatalf("%s: %v", c.name, err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var ev event.Event
		if err := Decode(line, &ev); err != nil {
			return
		}
		b, err := AppendJSON(nil, &ev)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", line, err)
		}
		var again event.Event
		if err := Decode(b, &again); err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(normal(ev), normal(again)) {
			b2, _ := AppendJSON(nil, &again)
			if !bytes.Equal(b, b2) {
				t.Fatalf("round trip changed the event:\n in  %s\n out %s", b, b2)
			}
		}
	})
}

// normal clears what a line does not carry for its type, so events that
// encode alike compare alike.
func normal(ev event.Event) event.Event {
	if ev.Start != nil && len(ev.Start.Ifaces) == 0 {
		ev.Start.Ifaces = nil
	}
	return ev
}
