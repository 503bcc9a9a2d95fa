package cli

import (
	"io"
	"testing"

	"tcptracer/event"
	"tcptracer/report"
	"tcptracer/timeline/timelinetest"
	"tcptracer/tracer"
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

// BenchmarkPipelineWrite measures the user-space cost of --write per
// record: the same wire segments (a veth's egress, so every one is
// analysed) through the pipeline without and with the pcapng writer, each
// wire segment followed by its headers record as the kernel sends them.
func BenchmarkPipelineWrite(b *testing.B) {
	tb := timelinetest.New("127.0.0.1:40000", "127.0.0.1:20000").Handshake()
	for i := uint32(0); i < 2000; i++ {
		tb.Seg(timelinetest.Client, "PA", 1+64*i, 1+64*i, 64)
		tb.Seg(timelinetest.Server, "PA", 1+64*i, 65+64*i, 64)
	}
	evs := tb.Events
	for i := range evs {
		evs[i].Point = event.PointXmit
	}
	for _, write := range []bool{false, true} {
		name := map[bool]string{false: "json", true: "json+pcapng"}[write]
		b.Run(name, func(b *testing.B) { benchWrite(b, evs, write) })
	}
}

func benchWrite(b *testing.B, evs []event.Event, write bool) {
	newP := func() *pipeline {
		p := newPipeline(io.Discard, report.Options{Format: report.JSON})
		if !write {
			return p
		}
		pw, err := newPCAPWriter(pcapFlags{path: "-"}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		p.pcap = pw
		if err := p.HandleEvent(&event.Event{Type: event.TypeStart, Start: &event.Start{}}); err != nil {
			b.Fatal(err)
		}
		return p
	}
	p := newP()
	hdr := make([]byte, 52)
	var ev event.Event
	var h tracer.Headers
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		ev = evs[i%len(evs)]
		if i%len(evs) == 0 && i > 0 {
			b.StopTimer()
			p = newP()
			b.StartTimer()
		}
		if err := p.HandleEvent(&ev); err != nil {
			b.Fatal(err)
		}
		if write && ev.Wire {
			h.Seg, h.Data, h.OrigLen = ev, hdr, 52+ev.Len
			if err := p.HandleHeaders(&h); err != nil {
				b.Fatal(err)
			}
		}
	}
	if write && p.pcap.w.Size() < 1000 {
		b.Fatal("no packet written")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
}
