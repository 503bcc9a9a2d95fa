package tracer

import (
	"bytes"
	"testing"

	"tcptracer/event"
	"tcptracer/output"
)

// FuzzDecoderDecode feeds arbitrary ring buffer records to the decoder: it
// must reject what is short or of an unknown type, never read past the
// record, and what it accepts must be an event the JSON writer can write
// and analyze read back as written.
func FuzzDecoderDecode(f *testing.F) {
	f.Add(raw(synRecord()))
	st := &tcptracerStateEvent{Hdr: hdr(recState, afInet6, "2001:db8::1", "2001:db8::2", 20000, 40000), Proc: proc(2), OldState: 3, NewState: 1}
	f.Add(raw(st))
	f.Add(raw(&tcptracerConnectEvent{Hdr: hdr(recConnect, afInet, "127.0.0.1", "127.0.0.1", 40000, 20000), Proc: proc(1), Ret: -115}))
	f.Add(raw(&tcptracerSockEvent{Hdr: hdr(recReset, afInet, "127.0.0.1", "127.0.0.1", 40000, 20000), State: 7, Reason: 1}))
	d := NewDecoder(func(i uint32) string { return "lo" })
	f.Fuzz(func(t *testing.T, rec []byte) {
		// A private copy of exactly the record's length, so a read past
		// its end is caught by the race detector or the bounds check.
		rec = bytes.Clone(rec)
		var ev event.Event
		if err := d.Decode(rec, &ev); err != nil {
			return
		}
		if ev.Family != 4 && ev.Family != 6 {
			t.Fatalf("family %d", ev.Family)
		}
		if int(ev.Opts.NSACK) > len(ev.Opts.SACK) {
			t.Fatalf("%d SACK blocks", ev.Opts.NSACK)
		}
		b, err := output.AppendJSON(nil, &ev)
		if err != nil {
			t.Fatalf("decoded a %s record but cannot write it: %v", ev.Type, err)
		}
		var back event.Event
		if err := output.Decode(b, &back); err != nil {
			t.Fatalf("the reader refuses what the writer wrote: %s: %v", b, err)
		}
		// Invalid UTF-8 in a comm is written as U+FFFD, so the first
		// reading is the reference: writing it again changes nothing.
		b2, _ := output.AppendJSON(nil, &back)
		var again event.Event
		if err := output.Decode(b2, &again); err != nil || again != back {
			t.Fatalf("written and read back differ:\n %s\n %s", b, b2)
		}
	})
}
