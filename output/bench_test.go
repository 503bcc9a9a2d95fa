package output

import (
	"testing"

	"tcptracer/conn"
	"tcptracer/event"
)

func BenchmarkJSONSegment(b *testing.B) {
	w := NewJSONWriter(discard{})
	ev := goldenCases[1].events[0] // a SYN with every common option
	b.ReportAllocs()
	for b.Loop() {
		ev.Seq++
		if err := w.Write(&ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAnnotateAndWrite is the tracer's per-segment user-space cost:
// a data segment of a known connection seen on lo egress and ingress,
// annotated and written.
func BenchmarkAnnotateAndWrite(b *testing.B) {
	tr := conn.NewTracker(func(uint32) string { return "lo" })
	w := NewJSONWriter(discard{})
	handshake := []event.Event{
		withTuple(event.Event{Type: event.TypeSegment, Ifindex: 1, Dir: event.Egress, Seq: 1000, Flags: event.SYN}, cli, srv),
		withTuple(event.Event{Type: event.TypeSegment, Ifindex: 1, Dir: event.Egress, Seq: 5000, Ack: 1001, Flags: event.SYN | event.ACK}, srv, cli),
		withTuple(event.Event{Type: event.TypeConnect, Cookie: 1, ISN: 1000, PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner}, cli, srv),
	}
	for i := range handshake {
		tr.Annotate(&handshake[i])
	}
	data := withTuple(event.Event{Type: event.TypeSegment, Ifindex: 1, Seq: 1001, Ack: 5001,
		Flags: event.PSH | event.ACK, Len: 100, Win: 512, HdrLen: 32,
		Opts: event.Options{HasTS: true, TSval: 1, TSecr: 2}}, cli, srv)
	pair := [2]event.Event{data, data}
	pair[0].Dir, pair[1].Dir = event.Egress, event.Ingress
	b.ReportAllocs()
	for b.Loop() {
		for i := range pair {
			pair[i].Seq += 100
			tr.Annotate(&pair[i])
			if err := w.Write(&pair[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	if pair[1].TwinOf == 0 || !pair[0].HasSeqRel || pair[0].PIDSrc != event.PIDOwner {
		b.Fatalf("annotations missing: %+v", pair[0])
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "records/s")
}
