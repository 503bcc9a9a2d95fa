package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"tcptracer/event"
)

// BenchFile is a classic pcap of one bulk connection on Ethernet: n data
// segments of 1448 bytes (snap length 96, as a header-only capture) each
// followed by an ACK, timestamps options on every segment.
func BenchFile(n int) []byte {
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	var pkts [][]byte
	for i := range n {
		d := tcpIPv4(0, ts, 1+uint32(i)*1448, 0x18, 1448)
		a := tcpIPv4(0, ts, 1, 0x10, 0)
		swap(a)
		binary.BigEndian.PutUint32(a[28:], 1+uint32(i+1)*1448)
		pkts = append(pkts, ether(d, etherIPv4, 0), ether(a, etherIPv4, 0))
	}
	return pcapSnap(pkts, 96)
}

// swap turns a packet built client to server around.
func swap(b []byte) {
	var a [4]byte
	copy(a[:], b[12:16])
	copy(b[12:16], b[16:20])
	copy(b[16:20], a[:])
	sp := binary.BigEndian.Uint16(b[20:])
	binary.BigEndian.PutUint16(b[20:], binary.BigEndian.Uint16(b[22:]))
	binary.BigEndian.PutUint16(b[22:], sp)
}

// pcapSnap writes packets cut at snap bytes, with 1 µs between them.
func pcapSnap(pkts [][]byte, snap int) []byte {
	var buf bytes.Buffer
	h := make([]byte, 24)
	le.PutUint32(h[0:], magicMicro)
	le.PutUint16(h[4:], 2)
	le.PutUint16(h[6:], 4)
	le.PutUint32(h[16:], uint32(snap))
	le.PutUint32(h[20:], LinkEthernet)
	buf.Write(h)
	for i, p := range pkts {
		c := p[:min(len(p), snap)]
		r := make([]byte, 16)
		le.PutUint32(r[0:], 1700000000+uint32(i/1000000))
		le.PutUint32(r[4:], uint32(i%1000000))
		le.PutUint32(r[8:], uint32(len(c)))
		le.PutUint32(r[12:], uint32(len(p)))
		buf.Write(r)
		buf.Write(c)
	}
	return buf.Bytes()
}

// BenchmarkReadDecode is the reader and decoder alone: packets/s on one
// core from a capture in memory.
func BenchmarkReadDecode(b *testing.B) {
	file := BenchFile(50000)
	var ev event.Event
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	pkts := 0
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		for {
			p, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if ok, err := Decode(&p, &ev); !ok || err != nil {
				b.Fatal(ok, err)
			}
			pkts++
		}
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
