package capture

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// tcpIPv4 builds an IPv4 (with ipOpts bytes of options) + TCP packet with
// the given TCP options and payload length (payload bytes are zeros).
func tcpIPv4(ipOpts int, tcpOpts []byte, seq uint32, flags uint8, payload int) []byte {
	ihl := 20 + ipOpts
	thl := 20 + len(tcpOpts)
	b := make([]byte, ihl+thl+payload)
	b[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 6
	copy(b[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	for i := 20; i < ihl; i++ {
		b[i] = 1 // IP NOP options
	}
	tcpHeader(b[ihl:], tcpOpts, seq, flags)
	return b
}

func tcpHeader(t []byte, opts []byte, seq uint32, flags uint8) {
	binary.BigEndian.PutUint16(t[0:], 40000)
	binary.BigEndian.PutUint16(t[2:], 20000)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 7)
	t[12] = byte((20+len(opts))/4) << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], 512)
	copy(t[20:], opts)
}

// tcpIPv6 builds IPv6 + a hop-by-hop and a destination options header + TCP.
func tcpIPv6(seq uint32, payload int) []byte {
	b := make([]byte, 40+8+16+20+payload)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	b[6], b[7] = 0, 64 // next: hop-by-hop
	copy(b[8:], []byte{0x20, 0x01, 0x0d, 0xb8})
	copy(b[24:], []byte{0x20, 0x01, 0x0d, 0xb8})
	b[23], b[39] = 1, 2
	b[40], b[41] = 60, 0 // hop-by-hop: next destination, 8 bytes
	b[48], b[49] = 6, 1  // destination: next TCP, 16 bytes
	tcpHeader(b[64:], nil, seq, 0x18)
	return b
}

var synOpts = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}

// pcapFile writes a classic pcap file in either byte order and precision.
func pcapFile(order binary.ByteOrder, nano bool, link uint32, pkts ...[]byte) []byte {
	var buf bytes.Buffer
	magic := uint32(magicMicro)
	if nano {
		magic = magicNano
	}
	h := make([]byte, 24)
	order.PutUint32(h[0:], magic)
	order.PutUint16(h[4:], 2)
	order.PutUint16(h[6:], 4)
	order.PutUint32(h[16:], 262144)
	order.PutUint32(h[20:], link)
	buf.Write(h)
	for i, p := range pkts {
		r := make([]byte, 16)
		order.PutUint32(r[0:], 1700000000+uint32(i))
		order.PutUint32(r[4:], 500)
		order.PutUint32(r[8:], uint32(len(p)))
		order.PutUint32(r[12:], uint32(len(p)))
		buf.Write(r)
		buf.Write(p)
	}
	return buf.Bytes()
}

func ether(ip []byte, etherType uint16, vlans int) []byte {
	b := make([]byte, 12, 14+4*vlans+len(ip))
	for range vlans {
		b = binary.BigEndian.AppendUint16(b, etherVLAN)
		b = binary.BigEndian.AppendUint16(b, 100)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, ip...)
}

func sll(ip []byte, pkttype uint16) []byte {
	b := make([]byte, 16, 16+len(ip))
	binary.BigEndian.PutUint16(b[0:], pkttype)
	binary.BigEndian.PutUint16(b[14:], etherIPv4)
	return append(b, ip...)
}

func sll2(ip []byte, ifindex uint32, pkttype byte) []byte {
	b := make([]byte, 20, 20+len(ip))
	binary.BigEndian.PutUint16(b[0:], etherIPv4)
	binary.BigEndian.PutUint32(b[4:], ifindex)
	b[10] = pkttype
	return append(b, ip...)
}

func null(ip []byte, order binary.AppendByteOrder, family uint32) []byte {
	return append(order.AppendUint32(nil, family), ip...)
}

// pcapngFile writes packets with the package's Writer.
func pcapngFile(t testing.TB, ifs []Interface, pkts ...pcapngPacket) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Section{Comment: "test", Application: "capture test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if _, err := w.AddInterface(i); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.iface, p.ts, p.data, p.orig, p.dir, []byte(p.comment)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type pcapngPacket struct {
	iface   uint32
	ts      int64
	data    []byte
	orig    int
	dir     Dir
	comment string
}
