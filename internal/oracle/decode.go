package oracle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"tcptracer/event"
)

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherVLAN = 0x8100
	etherQinQ = 0x88a8
	protoTCP  = 6
)

var be = binary.BigEndian

// decodeFrame strips the link header and decodes TCP over IP. ok is false
// for anything that is not a TCP segment. origLen is the frame's length on
// the wire, used when an IP length field is 0 (GSO / BIG TCP packets).
func decodeFrame(linkType uint32, b []byte, origLen int) (Segment, bool, error) {
	etherType, off, err := linkHeader(linkType, b)
	if err != nil || off < 0 {
		return Segment{}, false, err
	}
	wireLen := origLen - off
	switch etherType {
	case etherIPv4:
		return decodeIPv4(b[off:], wireLen)
	case etherIPv6:
		return decodeIPv6(b[off:], wireLen)
	}
	return Segment{}, false, nil
}

// linkHeader returns the network protocol (as an EtherType) and where the
// network header starts; off < 0 means a frame to skip.
func linkHeader(linkType uint32, b []byte) (etherType uint16, off int, err error) {
	switch linkType {
	case LinkEthernet:
		return ethernetHeader(b)
	case LinkLinuxSLL:
		if len(b) < 16 {
			return 0, 0, fmt.Errorf("short linux cooked (v1) header: %d bytes", len(b))
		}
		return be.Uint16(b[14:16]), 16, nil
	case LinkLinuxSLL2:
		if len(b) < 20 {
			return 0, 0, fmt.Errorf("short linux cooked (v2) header: %d bytes", len(b))
		}
		return be.Uint16(b[0:2]), 20, nil
	case LinkRaw, LinkIPv4, LinkIPv6:
		return rawIPVersion(b)
	}
	return 0, 0, fmt.Errorf("unsupported link type %d", linkType)
}

func ethernetHeader(b []byte) (uint16, int, error) {
	off := 12
	for range 3 { // up to two VLAN tags
		if len(b) < off+2 {
			return 0, 0, fmt.Errorf("short ethernet header: %d bytes", len(b))
		}
		t := be.Uint16(b[off : off+2])
		if t != etherVLAN && t != etherQinQ {
			return t, off + 2, nil
		}
		off += 4
	}
	return 0, -1, nil
}

func rawIPVersion(b []byte) (uint16, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("empty raw IP packet")
	}
	switch b[0] >> 4 {
	case 4:
		return etherIPv4, 0, nil
	case 6:
		return etherIPv6, 0, nil
	}
	return 0, -1, nil
}

func decodeIPv4(b []byte, wireLen int) (Segment, bool, error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Segment{}, false, fmt.Errorf("bad IPv4 header (%d bytes captured)", len(b))
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(be.Uint16(b[2:4]))
	if total == 0 { // TSO or BIG TCP: the length lives in the frame only
		total = wireLen
	}
	if ihl < 20 || len(b) < ihl || total < ihl {
		return Segment{}, false, fmt.Errorf("bad IPv4 header length %d (total %d, %d captured)", ihl, total, len(b))
	}
	if b[9] != protoTCP || be.Uint16(b[6:8])&0x1fff != 0 {
		return Segment{}, false, nil // not TCP, or a fragment without the TCP header
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	return decodeTCP(b[ihl:], total-ihl, src, dst)
}

// decodeIPv6 walks the extension headers that can precede TCP.
func decodeIPv6(b []byte, wireLen int) (Segment, bool, error) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return Segment{}, false, fmt.Errorf("bad IPv6 header (%d bytes captured)", len(b))
	}
	payload := int(be.Uint16(b[4:6]))
	if payload == 0 { // jumbogram or GSO
		payload = wireLen - 40
	}
	next, off := b[6], 40
	for range 8 {
		switch next {
		case protoTCP:
			src := netip.AddrFrom16([16]byte(b[8:24]))
			dst := netip.AddrFrom16([16]byte(b[24:40]))
			return decodeTCP(b[off:], payload-(off-40), src, dst)
		case 0, 43, 60, 51, 44: // hop-by-hop, routing, destination, AH, fragment
			if len(b) < off+8 {
				return Segment{}, false, fmt.Errorf("short IPv6 extension header %d", next)
			}
			if next == 44 && be.Uint16(b[off+2:off+4])&0xfff8 != 0 {
				return Segment{}, false, nil // later fragment: no TCP header
			}
			next, off = b[off], off+extLen(next, b[off+1])
		default:
			return Segment{}, false, nil
		}
	}
	return Segment{}, false, errors.New("too many IPv6 extension headers")
}

func extLen(kind, lenField byte) int {
	switch kind {
	case 44:
		return 8
	case 51:
		return (int(lenField) + 2) * 4
	}
	return (int(lenField) + 1) * 8
}

// decodeTCP reads the TCP header; segLen is the TCP header plus payload as
// the IP header states it.
func decodeTCP(b []byte, segLen int, src, dst netip.Addr) (Segment, bool, error) {
	if len(b) < 20 {
		return Segment{}, false, fmt.Errorf("short TCP header: %d bytes captured", len(b))
	}
	hdr := int(b[12]>>4) * 4
	if hdr < 20 || segLen < hdr {
		return Segment{}, false, fmt.Errorf("bad TCP data offset %d (segment %d bytes)", hdr, segLen)
	}
	s := Segment{
		Saddr: src, Daddr: dst,
		Sport: be.Uint16(b[0:2]), Dport: be.Uint16(b[2:4]),
		Seq: be.Uint32(b[4:8]), Ack: be.Uint32(b[8:12]),
		Flags:  uint16(b[13]) | uint16(b[12]&1)<<8,
		Win:    be.Uint16(b[14:16]),
		Len:    uint32(segLen - hdr),
		HdrLen: uint8(hdr),
	}
	s.Opts = parseOptions(b[20:min(hdr, len(b))])
	return s, true, nil
}

// parseOptions stops at the end-of-list option or at the first malformed
// length; what was parsed before stays.
func parseOptions(b []byte) event.Options {
	var o event.Options
	for len(b) > 0 {
		kind := b[0]
		if kind == 0 {
			break
		}
		if kind == 1 {
			b = b[1:]
			continue
		}
		if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
			break
		}
		setOption(&o, kind, b[2:b[1]])
		b = b[b[1]:]
	}
	return o
}

func setOption(o *event.Options, kind byte, v []byte) {
	switch {
	case kind == 2 && len(v) == 2:
		o.MSS, o.HasMSS = be.Uint16(v), true
	case kind == 3 && len(v) == 1:
		o.WScale, o.HasWS = v[0], true
	case kind == 4 && len(v) == 0:
		o.SACKPerm = true
	case kind == 5 && len(v)%8 == 0:
		for i := 0; i+8 <= len(v) && int(o.NSACK) < len(o.SACK); i += 8 {
			o.SACK[o.NSACK] = event.SACKBlock{Left: be.Uint32(v[i:]), Right: be.Uint32(v[i+4:])}
			o.NSACK++
		}
	case kind == 8 && len(v) == 8:
		o.TSval, o.TSecr, o.HasTS = be.Uint32(v[0:4]), be.Uint32(v[4:8]), true
	}
}
