package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"syscall"
	"testing"
	"time"

	"tcptracer/capture"
	"tcptracer/report"
)

// bulkCapture is a pcapng of one connection: n data segments of 1448
// bytes, each acknowledged, headers only (snap length 52, raw IP).
func bulkCapture(b *testing.B, n int) []byte {
	var buf bytes.Buffer
	w, err := capture.NewWriter(&buf, capture.Section{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.AddInterface(capture.Interface{Link: capture.LinkRaw, Snaplen: 52}); err != nil {
		b.Fatal(err)
	}
	ts := int64(1.7e18)
	put := func(from, to byte, seq, ack uint32, flags byte, payload int) {
		p := make([]byte, 52)
		p[0], p[8], p[9] = 0x45, 64, 6
		binary.BigEndian.PutUint16(p[2:], uint16(52+payload))
		copy(p[12:], []byte{192, 0, 2, from, 192, 0, 2, to})
		binary.BigEndian.PutUint16(p[20:], 40000+uint16(from))
		binary.BigEndian.PutUint16(p[22:], 40000+uint16(to))
		binary.BigEndian.PutUint32(p[24:], seq)
		binary.BigEndian.PutUint32(p[28:], ack)
		p[32], p[33] = 0x80, flags
		binary.BigEndian.PutUint16(p[34:], 512)
		copy(p[40:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 1})
		ts += 10000
		if err := w.WritePacket(0, ts, p, 52+payload, capture.DirUnknown, nil); err != nil {
			b.Fatal(err)
		}
	}
	put(1, 2, 0, 0, 0x02, 0)
	put(2, 1, 0, 1, 0x12, 0)
	put(1, 2, 1, 1, 0x10, 0)
	for i := range uint32(n) {
		put(1, 2, 1+i*1448, 1, 0x18, 1448)
		put(2, 1, 1, 1+(i+1)*1448, 0x10, 0)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkAnalyzeCapture is `tcptracer analyze FILE.pcapng` without the
// file system: read, decode, annotate, analyse, report.
func BenchmarkAnalyzeCapture(b *testing.B) {
	file := bulkCapture(b, 50000)
	pkts := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		r := report.New(io.Discard, report.Options{Format: report.JSON})
		if err := feedCapture(context.Background(), bytes.NewReader(file), "bench", r, io.Discard); err != nil {
			b.Fatal(err)
		}
		if err := r.Finish(); err != nil {
			b.Fatal(err)
		}
		if r.Conns() != 1 {
			b.Fatalf("%d connections, want 1", r.Conns())
		}
		pkts += 3 + 2*50000
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "packets/s")
	// On a loaded machine wall time overstates the cost: with -cpu 1 the
	// process's CPU time is one core's.
	b.ReportMetric(float64(pkts)/(cpuTime()-cpu0).Seconds(), "packets/cpu-s")
}

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
