package e2e

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Hand-built frames for the hostile packet tests: Ethernet, IPv4 or IPv6
// (with options or extension headers), TCP. Checksums stay zero: TC sees
// frames before anything checks them, and the peer's stack drops these
// anyway (their addresses are not its own).

var (
	craftSrc4 = netip.MustParseAddr("192.0.2.1")
	craftDst4 = netip.MustParseAddr("192.0.2.2")
	craftSrc6 = netip.MustParseAddr("2001:db8:ff::1")
	craftDst6 = netip.MustParseAddr("2001:db8:ff::2")
)

const craftSport = 40001

// tcpSeg is a TCP header and its payload.
type tcpSeg struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
	win          uint16
	opts         []byte // a multiple of 4 unless doff is set
	doff         uint8  // 0: from opts
	payload      []byte
}

func (s tcpSeg) bytes() []byte {
	doff := s.doff
	if doff == 0 {
		doff = uint8(5 + len(s.opts)/4)
	}
	b := make([]byte, 20, 20+len(s.opts)+len(s.payload))
	binary.BigEndian.PutUint16(b[0:], s.sport)
	binary.BigEndian.PutUint16(b[2:], s.dport)
	binary.BigEndian.PutUint32(b[4:], s.seq)
	binary.BigEndian.PutUint32(b[8:], s.ack)
	b[12] = doff << 4
	b[13] = s.flags
	binary.BigEndian.PutUint16(b[14:], s.win)
	b = append(b, s.opts...)
	return append(b, s.payload...)
}

// ether prefixes an Ethernet header.
func ether(dst, src net.HardwareAddr, typ uint16, l3 []byte) []byte {
	b := make([]byte, 14, 14+len(l3))
	copy(b, dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], typ)
	return append(b, l3...)
}

// ipv4 builds an IPv4 packet around l4 with the given options (a multiple
// of 4 bytes); fix may then break any field of the header.
func ipv4(opts, l4 []byte, fix func(ip []byte)) []byte {
	hl := 20 + len(opts)
	b := make([]byte, hl, hl+len(l4))
	b[0] = 0x40 | uint8(hl/4)
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(l4)))
	b[8], b[9] = 64, 6 // TTL, TCP
	s, d := craftSrc4.As4(), craftDst4.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], opts)
	b = append(b, l4...)
	if fix != nil {
		fix(b)
	}
	return b
}

// ext6 is one IPv6 extension header: its type and its body after the
// next-header byte (so 7 bytes for the smallest, 8-byte header).
type ext6 struct {
	typ  uint8
	body []byte
}

// ipv6 builds an IPv6 packet: the extension headers in order, then l4;
// fix may then break any field of the fixed header.
func ipv6(exts []ext6, l4 []byte, fix func(ip []byte)) []byte {
	b := make([]byte, 40)
	b[0] = 0x60
	b[7] = 64
	s, d := craftSrc6.As16(), craftDst6.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	next := &b[6]
	for _, e := range exts {
		*next = e.typ
		b = append(b, 0)
		next = &b[len(b)-1]
		b = append(b, e.body...)
	}
	*next = 6
	b = append(b, l4...)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	if fix != nil {
		fix(b)
	}
	return b
}

// optsBody is the body of an 8-byte hop-by-hop or destination options
// header (header length 0, a PadN option); routingBody of an 8-byte
// routing header with no segments left.
var (
	optsBody    = []byte{0, 1, 4, 0, 0, 0, 0}
	routingBody = []byte{0, 4, 0, 0, 0, 0, 0}
)

// fragBody is a fragment header's body: offset in 8-byte units, more flag.
func fragBody(offset uint16, more bool) []byte {
	v := offset << 3
	if more {
		v |= 1
	}
	return []byte{0, byte(v >> 8), byte(v), 0, 0, 0x12, 0x34}
}

// synOpts: MSS 1460, SACK permitted, timestamps 7/0, NOP, window scale ws.
func synOpts(ws byte) []byte {
	return []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, ws}
}
