package cli

import (
	"io"
	"testing"

	"tcptracer/event"
	"tcptracer/report"
	"tcptracer/timeline/timelinetest"
)

// BenchmarkPipeline is the user-space cost per record on a steady
// connection: annotate, JSON, and the analysis report.
func BenchmarkPipeline(b *testing.B) {
	tb := timelinetest.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake()
	for i := uint32(0); i < 2000; i++ {
		tb.Seg(timelinetest.Client, "PA", 1+64*i, 1+64*i, 64)
		tb.Seg(timelinetest.Server, "PA", 1+64*i, 65+64*i, 64)
	}
	evs := tb.Events
	p := newPipeline(io.Discard, report.Options{Format: report.JSON})
	var ev event.Event
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev = evs[i%len(evs)]
		if i%len(evs) == 0 && i > 0 {
			b.StopTimer()
			p = newPipeline(io.Discard, report.Options{Format: report.JSON})
			b.StartTimer()
		}
		if err := p.HandleEvent(&ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
