package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"tcptracer/event"
)

// readAll reads and decodes every packet; it fails the test on an error.
func readAll(t testing.TB, b []byte) ([]Packet, []event.Event) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var pkts []Packet
	var evs []event.Event
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return pkts, evs
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		ok, err := Decode(&p, &ev)
		if err != nil {
			t.Fatalf("packet %d: %v", p.Number, err)
		}
		if ok {
			evs = append(evs, ev)
		}
		p.Data = append([]byte(nil), p.Data...)
		pkts = append(pkts, p)
	}
}

func TestLinkTypes(t *testing.T) {
	v4 := tcpIPv4(4, synOpts, 1000, 0x02, 0)
	v6 := tcpIPv6(5000, 10)
	cases := []struct {
		name  string
		link  uint32
		pkt   []byte
		fam   uint8
		dir   event.Dir
		ifidx uint32
	}{
		{"ethernet", LinkEthernet, ether(v4, etherIPv4, 0), 4, event.Ingress, 1},
		{"ethernet two vlans", LinkEthernet, ether(v4, etherIPv4, 2), 4, event.Ingress, 1},
		{"ethernet ipv6", LinkEthernet, ether(v6, etherIPv6, 0), 6, event.Ingress, 1},
		{"sll outgoing", LinkSLL, sll(v4, 4), 4, event.Egress, 1},
		{"sll host", LinkSLL, sll(v4, 0), 4, event.Ingress, 1},
		{"sll2 outgoing", LinkSLL2, sll2(v4, 7, 4), 4, event.Egress, 7},
		{"raw", LinkRaw, v6, 6, event.Ingress, 1},
		{"ipv4", LinkIPv4, v4, 4, event.Ingress, 1},
		{"ipv6", LinkIPv6, v6, 6, event.Ingress, 1},
		{"null little-endian", LinkNull, null(v4, binary.LittleEndian, 2), 4, event.Ingress, 1},
		{"null big-endian ipv6", LinkNull, null(v6, binary.BigEndian, 30), 6, event.Ingress, 1},
		{"loop", LinkLoop, null(v6, binary.BigEndian, 24), 6, event.Ingress, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, evs := readAll(t, pcapFile(binary.LittleEndian, false, c.link, c.pkt))
			if len(evs) != 1 {
				t.Fatalf("got %d segments, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Family != c.fam || ev.Dir != c.dir || ev.Ifindex != c.ifidx || ev.Sport != 40000 || ev.Dport != 20000 {
				t.Fatalf("got family %d dir %v ifindex %d ports %d>%d", ev.Family, ev.Dir, ev.Ifindex, ev.Sport, ev.Dport)
			}
			if (c.dir == event.Egress) != (ev.Point == event.PointXmit) {
				t.Fatalf("point %v for dir %v: outgoing packets are xmit observations", ev.Point, ev.Dir)
			}
		})
	}
}

func TestDecodeFields(t *testing.T) {
	_, evs := readAll(t, pcapFile(binary.BigEndian, true, LinkRaw, tcpIPv4(8, synOpts, 1000, 0x02, 0), tcpIPv6(5000, 10)))
	syn, data := evs[0], evs[1]
	o := syn.Opts
	if syn.Seq != 1000 || syn.Ack != 7 || syn.Flags != event.SYN || syn.Win != 512 || syn.HdrLen != 40 || syn.Len != 0 {
		t.Errorf("syn: %+v", syn)
	}
	if !o.HasMSS || o.MSS != 1460 || !o.SACKPerm || !o.HasTS || o.TSval != 1 || !o.HasWS || o.WScale != 7 {
		t.Errorf("syn options: %+v", o)
	}
	if syn.Saddr.String() != "192.0.2.1" || syn.Daddr.String() != "192.0.2.2" {
		t.Errorf("syn addresses %v > %v", syn.Saddr, syn.Daddr)
	}
	if data.Len != 10 || data.Flags != event.PSH|event.ACK || data.Saddr.String() != "2001:db8::1" {
		t.Errorf("ipv6 data through extension headers: %+v", data)
	}
	if want := uint64(1700000000)*1e9 + 500; syn.TS != want {
		t.Errorf("nanosecond timestamp %d, want %d", syn.TS, want)
	}
}

func TestPcapngRoundTrip(t *testing.T) {
	v4 := tcpIPv4(0, nil, 1, 0x10, 0)
	ifs := []Interface{{Link: LinkEthernet, Snaplen: 65535, Name: "lo"}, {Link: LinkRaw, Snaplen: 128, Name: "veth0"}}
	b := pcapngFile(t, ifs,
		pcapngPacket{0, 1_700_000_000_123_456_789, ether(v4, etherIPv4, 0), 54, DirInbound, "conn 1"},
		pcapngPacket{1, 1_700_000_001_000_000_001, v4[:40], 1500, DirOutbound, ""},
		pcapngPacket{1, 1_700_000_002_000_000_000, v4, 40, DirUnknown, ""})
	pkts, evs := readAll(t, b)
	if len(pkts) != 3 || len(evs) != 3 {
		t.Fatalf("got %d packets, %d segments; want 3, 3", len(pkts), len(evs))
	}
	if p := pkts[0]; p.TS != 1_700_000_000_123_456_789 || p.IfName != "lo" || p.Iface != 1 || p.Dir != DirInbound || p.Number != 1 {
		t.Errorf("packet 1: %+v", p)
	}
	if p := pkts[1]; p.OrigLen != 1500 || p.Iface != 2 || p.LinkType != LinkRaw || p.Dir != DirOutbound {
		t.Errorf("packet 2: %+v", p)
	}
	if evs[1].Dir != event.Egress || evs[1].Iface != "veth0" || evs[1].Len != 0 {
		t.Errorf("segment 2: dir %v iface %q len %d", evs[1].Dir, evs[1].Iface, evs[1].Len)
	}
}

// TestPcapngBigEndian reads a section written big-endian, with a
// microsecond default resolution and a statistics block to skip.
func TestPcapngBigEndian(t *testing.T) {
	be := binary.BigEndian
	block := func(typ uint32, body []byte) []byte {
		b := be.AppendUint32(nil, typ)
		b = be.AppendUint32(b, uint32(len(body)+12))
		b = append(b, body...)
		return be.AppendUint32(b, uint32(len(body)+12))
	}
	shb := be.AppendUint32(nil, byteOrderBOM)
	shb = append(shb, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	idb := []byte{0, 101, 0, 0, 0, 0, 0, 0}
	pkt := tcpIPv4(0, nil, 9, 0x11, 0)
	epb := be.AppendUint32(nil, 0)
	epb = be.AppendUint32(epb, 0)
	epb = be.AppendUint32(epb, 3_000_000) // 3 s in µs
	epb = be.AppendUint32(epb, uint32(len(pkt)))
	epb = be.AppendUint32(epb, uint32(len(pkt)))
	epb = append(epb, pkt...)
	var b []byte
	b = append(b, block(blockSHB, shb)...)
	b = append(b, block(blockIDB, idb)...)
	b = append(b, block(5, make([]byte, 16))...)
	b = append(b, block(blockEPB, epb)...)
	pkts, evs := readAll(t, b)
	if len(evs) != 1 || pkts[0].TS != 3e9 || evs[0].Flags != event.FIN|event.ACK {
		t.Fatalf("got %+v", pkts)
	}
}

// Truncated and garbage captures name the packet that could not be read.
func TestBrokenCaptures(t *testing.T) {
	good := pcapFile(binary.LittleEndian, false, LinkRaw, tcpIPv4(0, nil, 1, 2, 0), tcpIPv4(0, nil, 2, 2, 0))
	ng := pcapngFile(t, []Interface{{Link: LinkRaw}}, pcapngPacket{data: tcpIPv4(0, nil, 1, 2, 0)}, pcapngPacket{data: tcpIPv4(0, nil, 1, 2, 0)})
	garbled := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(garbled[24+16+40+8:], 1<<30) // packet 2's captured length
	badBlock := append([]byte(nil), ng...)
	badBlock[len(badBlock)-1] ^= 0xff // packet 2's trailing length
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"pcap cut in packet 2", good[:len(good)-5], "packet 2: packet data truncated"},
		{"pcap cut in record header", good[:24+16+40+3], "packet 2: record header truncated"},
		{"pcap garbage length", garbled, "packet 2: captured length 1073741824 is implausible"},
		{"pcapng cut", ng[:len(ng)-3], "packet 2: block type 0x6 truncated"},
		{"pcapng bad trailer", badBlock, "packet 2: block type 0x6: trailing length"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := readErr(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	if _, err := NewReader(strings.NewReader(`{"type":"start"}`)); err == nil || !strings.Contains(err.Error(), "neither pcap nor pcapng") {
		t.Fatalf("JSON read as a capture: %v", err)
	}
}

func readErr(b []byte) error {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := Decode(&p, &event.Event{}); err != nil {
			return err
		}
	}
}

func TestMalformedPackets(t *testing.T) {
	short := tcpIPv4(0, nil, 1, 2, 0)
	binary.BigEndian.PutUint16(short[2:], 30) // total length shorter than IP + TCP
	badOff := tcpIPv4(0, nil, 1, 2, 0)
	badOff[32] = 0x30 // data offset 3 words
	for name, pkt := range map[string][]byte{"total length": short, "data offset": badOff} {
		var ev event.Event
		p := Packet{Number: 1, LinkType: LinkRaw, Data: pkt, OrigLen: len(pkt)}
		if _, err := Decode(&p, &ev); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	p := Packet{LinkType: 147, Data: short}
	if _, err := Decode(&p, &event.Event{}); err == nil || errors.Is(err, ErrMalformed) {
		t.Errorf("unknown link type: got %v, want a link type error", err)
	}
}

// The tcpdump and dumpcap captures of the echo session (and a refused
// IPv6 connection) decode to its 12 segments in every format.
func TestTcpdumpCaptures(t *testing.T) {
	for _, f := range []string{"echo.pcap", "echo-nano.pcap", "echo-any.pcap", "echo.pcapng"} {
		b, err := os.ReadFile("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		_, evs := readAll(t, b)
		if len(evs) != 12 {
			t.Fatalf("%s: %d segments, want 12", f, len(evs))
		}
		if evs[0].Flags != event.SYN || evs[0].Opts.MSS != 65495 || evs[10].Family != 6 || evs[11].Flags != event.RST|event.ACK {
			t.Errorf("%s: first %+v, last %+v", f, evs[0], evs[11])
		}
	}
}
