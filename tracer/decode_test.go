package tracer

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"tcptracer/conn"
	"tcptracer/event"
	"tcptracer/output"
)

var update = flag.Bool("update", false, "rewrite golden files")

// raw returns the bytes of a generated record, as the ring buffer holds them.
func raw[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func hdr(typ uint8, family uint8, s, d string, sport, dport uint16) tcptracerRecHdr {
	h := tcptracerRecHdr{TsNs: 1_000_000, Type: typ, Family: family, Sport: sport, Dport: dport}
	sa, da := netip.MustParseAddr(s), netip.MustParseAddr(d)
	if family == afInet {
		s4, d4 := sa.As4(), da.As4()
		copy(h.Saddr[:], s4[:])
		copy(h.Daddr[:], d4[:])
	} else {
		h.Saddr, h.Daddr = sa.As16(), da.As16()
	}
	return h
}

func proc(src uint8) tcptracerProcInfo {
	p := tcptracerProcInfo{Pid: 4242, Tgid: 4240, Uid: 1000, Src: src}
	copy(p.Comm[:], "echo-client")
	return p
}

func synRecord() *tcptracerSegmentEvent {
	return &tcptracerSegmentEvent{
		Hdr:     hdr(recSegment, afInet, "127.0.0.1", "127.0.0.1", 40000, 20000),
		Ifindex: 1, Seq: 1000, Flags: 0x002, Win: 65495, HdrLen: 40, Dir: 1,
		Mss: 65495, Wscale: 7, OptMask: optMSS | optWScale | optSACKPerm | optTS, Tsval: 7, Tsecr: 0,
	}
}

// Each record kind decodes into the event the JSON golden file shows.
func TestDecodeGolden(t *testing.T) {
	sack := &tcptracerSegmentEvent{
		Hdr:     hdr(recSegment, afInet6, "2001:db8::1", "2001:db8::2", 20000, 40000),
		Ifindex: 3, Seq: 5000, Ack: 1003, Len: 1448, Flags: 0x010 | 0x100, Win: 512, HdrLen: 44,
		OptMask: optTS, Tsval: 9, Tsecr: 8, Nsack: 2, Sack: [8]uint32{1, 2, 3, 4},
		GsoSegs: 3, GsoSize: 1448, Point: 1,
	}
	conn := &tcptracerConnectEvent{Hdr: hdr(recConnect, afInet, "127.0.0.1", "127.0.0.1", 40000, 20000), Proc: proc(1), Isn: 1000, Ret: -115}
	state := &tcptracerStateEvent{Hdr: hdr(recState, afInet, "127.0.0.1", "127.0.0.1", 20000, 40000), Proc: proc(2),
		SndUna: 1, SndNxt: 2, RcvNxt: 3, OldState: 3, NewState: 1}
	rcv := &tcptracerStateEvent{Hdr: hdr(recRcvState, afInet, "127.0.0.1", "127.0.0.1", 20000, 40000), Proc: proc(1),
		Seq: 1000, Flags: 0x002, OldState: 10}
	retr := &tcptracerSockEvent{Hdr: hdr(recRetransmit, afInet, "127.0.0.1", "127.0.0.1", 40000, 20000), Proc: proc(1), Seq: 1001, Len: 2, State: 1}
	reset := &tcptracerSockEvent{Hdr: hdr(recReset, afInet, "127.0.0.1", "127.0.0.1", 40000, 20000), State: 7, Reason: 1}
	egress := synRecord()
	egress.Hdr.TsNs++
	// srtt_us is kept << 3 and mdev_us << 2: the record shows µs.
	egress.Sender = tcptracerSenderState{SndUna: 1000, SndNxt: 1000, SndCwnd: 10, Ssthresh: 7, SrttUs: 800, MdevUs: 400,
		RttvarUs: 200000, RtoUs: 201000, Delivered: 1, Mss: 1448, CaState: 4, Retransmits: 1, Backoff: 1, Valid: 1}
	retrLoss := &tcptracerSockEvent{Hdr: retr.Hdr, Proc: proc(1), Seq: 1001, Len: 2, State: 1, Sender: egress.Sender}
	drop := &tcptracerDropEvent{Hdr: hdr(recDrop, afInet, "127.0.0.1", "127.0.0.1", 40000, 20000), Location: 0xffffffff81c2a3bc,
		Reason: 12, Ifindex: 1, Seq: 1001, Ack: 5001, Len: 2, Flags: 0x018, HasReason: 1}
	old := &tcptracerDropEvent{Hdr: drop.Hdr, Location: 0xffffffff81c2a3bc, Seq: 1000, Flags: 0x002}
	records := [][]byte{raw(synRecord()), raw(sack), raw(conn), raw(state), raw(rcv), raw(retr), raw(reset),
		raw(egress), raw(retrLoss), raw(drop), raw(old)}

	d := NewDecoder(func(i uint32) string { return map[uint32]string{1: "lo", 3: "veth0"}[i] })
	d.drops = &dropNames{loaded: true, cache: map[uint64]string{}, reasons: map[uint32]string{12: "NETFILTER_DROP"},
		syms: []ksym{{addr: 0xffffffff81c2a320, name: "nf_hook_slow"}}}
	var out bytes.Buffer
	w := output.NewJSONWriter(&out)
	var ev event.Event
	for i, r := range records {
		if err := d.Decode(r, &ev); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		ev.Index = uint64(i + 1)
		if err := w.Write(&ev); err != nil {
			t.Fatalf("record %d: write: %v", i, err)
		}
	}
	w.Flush()
	golden := filepath.Join("testdata", "decode.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, out.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("decoded JSON differs from %s:\n got: %s\nwant: %s", golden, out.Bytes(), want)
	}
}

func TestDecodeRejectsBadRecords(t *testing.T) {
	d := NewDecoder(nil)
	var ev event.Event
	syn := raw(synRecord())
	bad := append([]byte(nil), syn...)
	bad[typeOffset] = 99
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short header":  syn[:hdrSize-1],
		"short segment": syn[:segmentSize-1],
		"unknown type":  bad,
	} {
		if err := d.Decode(b, &ev); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	d := NewDecoder(func(uint32) string { return "lo" })
	syn := raw(synRecord())
	var ev event.Event
	allocs := testing.AllocsPerRun(1000, func() { d.Decode(syn, &ev) })
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per segment", allocs)
	}
}

// BenchmarkDecodeToJSON is the user-space hot path per segment: decode,
// annotate, append JSON.
func BenchmarkDecodeToJSON(b *testing.B) {
	d := NewDecoder(func(uint32) string { return "lo" })
	tr := conn.NewTracker(nil)
	w := output.NewJSONWriter(io.Discard)
	rec := synRecord()
	rec.Flags = 0x010
	var ev event.Event
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rec.Seq = uint32(i)
		rec.Dir = uint8(i & 1)
		if err := d.Decode(raw(rec), &ev); err != nil {
			b.Fatal(err)
		}
		tr.Annotate(&ev)
		w.Write(&ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestLostBefore: a record whose stamp counts failed reservations the
// reader has not reported yet is preceded by a lost event for them, once.
func TestLostBefore(t *testing.T) {
	seg := synRecord()
	seg.Hdr.Lost = 5
	raw := unsafe.Slice((*byte)(unsafe.Pointer(seg)), segmentSize)
	dec := NewDecoder(nil)
	var ev event.Event
	if err := dec.Decode(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if dec.LostStamp() != 5 {
		t.Fatalf("stamp %d, want 5", dec.LostStamp())
	}
	var tr Tracer
	var got []uint64
	h := HandlerFunc(func(ev *event.Event) error {
		if ev.Type == event.TypeLost {
			got = append(got, ev.Count)
		}
		return nil
	})
	for _, stamp := range []uint32{5, 5, 7, 6} { // 6: another CPU's older stamp
		if err := tr.lostBefore(stamp, h); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != "[5 2]" || tr.lost != 7 {
		t.Fatalf("lost events %v, total %d; want [5 2] and 7", got, tr.lost)
	}
}
