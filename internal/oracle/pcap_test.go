package oracle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"tcptracer/event"
)

// Frames are built byte by byte here so the decoder is checked against the
// wire formats, not against itself.

type tcpSpec struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint16
	win          uint16
	opts         []byte // padded to 4 bytes by the caller
	payload      []byte
}

func (s tcpSpec) bytes() []byte {
	h := make([]byte, 20, 20+len(s.opts)+len(s.payload))
	binary.BigEndian.PutUint16(h[0:], s.sport)
	binary.BigEndian.PutUint16(h[2:], s.dport)
	binary.BigEndian.PutUint32(h[4:], s.seq)
	binary.BigEndian.PutUint32(h[8:], s.ack)
	h[12] = byte((20+len(s.opts))/4)<<4 | byte(s.flags>>8&1)
	h[13] = byte(s.flags)
	binary.BigEndian.PutUint16(h[14:], s.win)
	h = append(h, s.opts...)
	return append(h, s.payload...)
}

func ipv4(src, dst string, opts []byte, proto byte, fragOff uint16, payload []byte) []byte {
	ihl := 20 + len(opts)
	h := make([]byte, 20, ihl+len(payload))
	h[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(h[2:], uint16(ihl+len(payload)))
	binary.BigEndian.PutUint16(h[6:], 0x4000|fragOff) // DF
	h[8], h[9] = 64, proto
	copy(h[12:], netip.MustParseAddr(src).AsSlice())
	copy(h[16:], netip.MustParseAddr(dst).AsSlice())
	h = append(h, opts...)
	return append(h, payload...)
}

// ipv6 prepends ext (already encoded extension headers, first one of type
// first) and sets the payload length over ext and payload.
func ipv6(src, dst string, first byte, ext, payload []byte) []byte {
	h := make([]byte, 40, 40+len(ext)+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(ext)+len(payload)))
	h[6], h[7] = first, 64
	copy(h[8:], netip.MustParseAddr(src).AsSlice())
	copy(h[24:], netip.MustParseAddr(dst).AsSlice())
	h = append(h, ext...)
	return append(h, payload...)
}

func ether(etherType uint16, vlan bool, payload []byte) []byte {
	h := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1}
	if vlan {
		h = append(h, 0x81, 0x00, 0x00, 0x2a)
	}
	h = binary.BigEndian.AppendUint16(h, etherType)
	return append(h, payload...)
}

func sll(etherType uint16, payload []byte) []byte {
	h := []byte{0, 4, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0} // outgoing, ARPHRD_ETHER
	h = binary.BigEndian.AppendUint16(h, etherType)
	return append(h, payload...)
}

func sll2(etherType uint16, payload []byte) []byte {
	h := binary.BigEndian.AppendUint16(nil, etherType)
	h = append(h, 0, 0, 0, 0, 0, 7, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0) // ifindex 7, ARPHRD_ETHER, host
	return append(h, payload...)
}

type record struct {
	ts      time.Time
	frame   []byte
	snap    int // captured bytes; 0 = all
	origLen int // 0 = len(frame)
}

func pcapBytes(order binary.ByteOrder, nano bool, link uint32, recs ...record) []byte {
	var b bytes.Buffer
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	h := make([]byte, 24)
	order.PutUint32(h[0:], magic)
	order.PutUint16(h[4:], 2)
	order.PutUint16(h[6:], 4)
	order.PutUint32(h[16:], 128)
	order.PutUint32(h[20:], link)
	b.Write(h)
	for _, r := range recs {
		data := r.frame
		if r.snap > 0 {
			data = data[:r.snap]
		}
		orig := r.origLen
		if orig == 0 {
			orig = len(r.frame)
		}
		frac := uint32(r.ts.Nanosecond() / 1000)
		if nano {
			frac = uint32(r.ts.Nanosecond())
		}
		rh := make([]byte, 16)
		order.PutUint32(rh[0:], uint32(r.ts.Unix()))
		order.PutUint32(rh[4:], frac)
		order.PutUint32(rh[8:], uint32(len(data)))
		order.PutUint32(rh[12:], uint32(orig))
		b.Write(rh)
		b.Write(data)
	}
	return b.Bytes()
}

var (
	t0 = time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	// MSS 1460, SACK permitted, timestamps, NOP, window scale 7: Linux's SYN.
	synOpts       = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	synOptsParsed = event.Options{MSS: 1460, HasMSS: true, SACKPerm: true, HasTS: true, TSval: 1, WScale: 7, HasWS: true}
	// NOP, NOP, SACK with two blocks.
	sackOpts = []byte{1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40}
	a4, b4   = netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	a6, b6   = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
)

func TestReadPcap(t *testing.T) {
	syn := tcpSpec{sport: 40000, dport: 20000, seq: 1000, flags: event.SYN, win: 64240, opts: synOpts}
	data := tcpSpec{sport: 40000, dport: 20000, seq: 1001, ack: 5001, flags: event.PSH | event.ACK, win: 502, payload: []byte("AB")}
	fin := tcpSpec{sport: 20000, dport: 40000, seq: 5003, ack: 1004, flags: event.FIN | event.ACK, win: 509}
	v6ack := tcpSpec{sport: 20000, dport: 40000, seq: 7, ack: 9, flags: event.ACK | event.ECE | event.CWR | event.NS, win: 3, opts: sackOpts, payload: []byte("xyz")}
	routerAlert := []byte{0x94, 4, 0, 0}
	hopByHop := []byte{6, 0, 1, 4, 0, 0, 0, 0}    // next TCP, 8 bytes, PadN
	fragment := []byte{6, 0, 0, 0x08, 0, 0, 0, 1} // next TCP, offset 1 (later fragment)
	udp := make([]byte, 8)
	arp := make([]byte, 28)

	seg := func(src, dst netip.Addr, s tcpSpec, ts time.Time, opts event.Options) Segment {
		return Segment{Time: ts, Saddr: src, Daddr: dst, Sport: s.sport, Dport: s.dport, Seq: s.seq, Ack: s.ack,
			Flags: s.flags, Len: uint32(len(s.payload)), Win: s.win, HdrLen: uint8(20 + len(s.opts)), Opts: opts}
	}
	sackParsed := event.Options{NSACK: 2, SACK: [4]event.SACKBlock{{Left: 10, Right: 20}, {Left: 30, Right: 40}}}

	for _, tc := range []struct {
		name string
		file []byte
		want []Segment
	}{{
		name: "ethernet IPv4 with IP options, SYN options",
		file: pcapBytes(binary.LittleEndian, false, LinkEthernet,
			record{ts: t0, frame: ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", routerAlert, 6, 0, syn.bytes()))}),
		want: []Segment{seg(a4, b4, syn, t0, synOptsParsed)},
	}, {
		name: "ethernet VLAN IPv4 data, payload cut by the snapshot",
		file: pcapBytes(binary.LittleEndian, false, LinkEthernet,
			record{ts: t0, frame: ether(etherIPv4, true, ipv4("198.51.100.1", "198.51.100.2", nil, 6, 0, data.bytes())), snap: 18 + 20 + 20}),
		want: []Segment{seg(a4, b4, data, t0, event.Options{})},
	}, {
		name: "linux cooked v1 IPv4 FIN",
		file: pcapBytes(binary.LittleEndian, false, LinkLinuxSLL,
			record{ts: t0, frame: sll(etherIPv4, ipv4("198.51.100.2", "198.51.100.1", nil, 6, 0, fin.bytes()))}),
		want: []Segment{seg(b4, a4, fin, t0, event.Options{})},
	}, {
		name: "linux cooked v2 IPv6 with hop-by-hop header, SACK, NS flag",
		file: pcapBytes(binary.LittleEndian, false, LinkLinuxSLL2,
			record{ts: t0, frame: sll2(etherIPv6, ipv6("2001:db8::2", "2001:db8::1", 0, hopByHop, v6ack.bytes()))}),
		want: []Segment{seg(b6, a6, v6ack, t0, sackParsed)},
	}, {
		name: "raw IP, both versions, big-endian file with nanoseconds",
		file: pcapBytes(binary.BigEndian, true, LinkRaw,
			record{ts: t0.Add(789 * time.Nanosecond), frame: ipv6("2001:db8::2", "2001:db8::1", 6, nil, v6ack.bytes())},
			record{ts: t0.Add(time.Second), frame: ipv4("198.51.100.1", "198.51.100.2", nil, 6, 0, syn.bytes())}),
		want: []Segment{seg(b6, a6, v6ack, t0.Add(789*time.Nanosecond), sackParsed), seg(a4, b4, syn, t0.Add(time.Second), synOptsParsed)},
	}, {
		name: "GSO packet with IPv4 total length 0 takes the length from the frame",
		file: pcapBytes(binary.LittleEndian, false, LinkEthernet,
			record{ts: t0, frame: zeroTotalLen(ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", nil, 6, 0, data.bytes())))}),
		want: []Segment{seg(a4, b4, data, t0, event.Options{})},
	}, {
		name: "ARP, UDP and later fragments are skipped",
		file: pcapBytes(binary.LittleEndian, false, LinkEthernet,
			record{ts: t0, frame: ether(0x0806, false, arp)},
			record{ts: t0, frame: ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", nil, 17, 0, udp))},
			record{ts: t0, frame: ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", nil, 6, 185, data.bytes()))},
			record{ts: t0, frame: ether(etherIPv6, false, ipv6("2001:db8::1", "2001:db8::2", 44, fragment, data.bytes()))},
			record{ts: t0, frame: ether(etherIPv4, false, ipv4("198.51.100.2", "198.51.100.1", nil, 6, 0, fin.bytes()))}),
		want: []Segment{seg(b4, a4, fin, t0, event.Options{})},
	}, {
		name: "header only",
		file: pcapBytes(binary.LittleEndian, false, LinkEthernet),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadPcap(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatalf("ReadPcap: %v", err)
			}
			for i := range got { // time.Unix gives local time; compare instants
				got[i].Time = got[i].Time.UTC()
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("segments differ\n got: %s\nwant: %s", dump(got), dump(tc.want))
			}
		})
	}
}

// zeroTotalLen clears the IPv4 total length of an untagged Ethernet frame.
func zeroTotalLen(frame []byte) []byte {
	frame[14+2], frame[14+3] = 0, 0
	return frame
}

func TestReadPcapErrors(t *testing.T) {
	syn := tcpSpec{sport: 1, dport: 2, flags: event.SYN, opts: synOpts}.bytes()
	good := pcapBytes(binary.LittleEndian, false, LinkEthernet, record{ts: t0, frame: ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", nil, 6, 0, syn))})
	pcapng := []byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0}
	for _, tc := range []struct {
		name, want string
		file       []byte
		is         error
	}{
		{"empty", "read pcap header", nil, io.EOF},
		{"pcapng", "pcapng", pcapng, nil},
		{"bad magic", "bad magic", append([]byte{1, 2, 3, 4}, good[4:]...), nil},
		{"record cut short", "record 1", good[:len(good)-5], io.ErrUnexpectedEOF},
		{"record header cut short", "record 2", append(good, 1, 2, 3), io.ErrUnexpectedEOF},
		{"unsupported link type", "unsupported link type 147", pcapBytes(binary.LittleEndian, false, 147, record{ts: t0, frame: []byte{1}}), nil},
		{"TCP header beyond the snapshot", "short TCP header", pcapBytes(binary.LittleEndian, false, LinkEthernet,
			record{ts: t0, frame: ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", nil, 6, 0, syn)), snap: 14 + 20 + 10}), nil},
		{"TCP data offset past the segment", "bad TCP data offset", pcapBytes(binary.LittleEndian, false, LinkRaw,
			record{ts: t0, frame: ipv4("198.51.100.1", "198.51.100.2", nil, 6, 0, syn[:20])}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadPcap(bytes.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadPcap error = %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("ReadPcap error = %v, want one wrapping %v", err, tc.is)
			}
		})
	}
}

func TestParseStats(t *testing.T) {
	in := "tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 128 bytes\n9 packets captured\n18 packets received by filter\n3 packets dropped by kernel\n1 packet dropped by interface\n"
	want := Stats{Captured: 9, Received: 18, DroppedKernel: 3, DroppedIface: 1}
	if got := parseStats(in); got != want {
		t.Fatalf("parseStats = %+v, want %+v", got, want)
	}
}

func dump(segs []Segment) string {
	var b strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&b, "\n  %s hdr %d opts %+v", s, s.HdrLen, s.Opts)
	}
	return b.String()
}

func TestReorder(t *testing.T) {
	seg := func(seq uint32) record {
		s := tcpSpec{sport: 40000, dport: 20000, seq: seq, flags: event.ACK, payload: []byte{1, 2, 3}}
		return record{ts: t0, frame: ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", nil, protoTCP, 0, s.bytes()))}
	}
	notTCP := record{ts: t0, frame: ether(0x0806, false, make([]byte, 28))} // ARP: no segment, skipped
	in := pcapBytes(binary.BigEndian, false, LinkEthernet, seg(1), notTCP, seg(2), seg(3))
	t1, t2 := time.Unix(5, 999999999), time.Unix(7, 1)
	out, err := Reorder(in, []int{2, 0}, []time.Time{t1, t2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadPcap(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 1 || !got[0].Time.Equal(t1) || !got[1].Time.Equal(t2) || got[0].Len != 3 {
		t.Errorf("reordered capture: %s", dump(got))
	}
	for _, bad := range [][]int{{3}, {-1}} {
		if _, err := Reorder(in, bad, []time.Time{t1}); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("Reorder(%v): %v, want an index error", bad, err)
		}
	}
	if _, err := Reorder(in, []int{0}, nil); err == nil {
		t.Error("Reorder with fewer times than indices: no error")
	}
}
