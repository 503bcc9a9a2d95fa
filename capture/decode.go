package capture

import (
	"encoding/binary"
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

	sllOutgoing = 4 // PACKET_OUTGOING
)

var be = binary.BigEndian

// Decode fills ev with the TCP segment in p, as a live segment record of
// the wire would carry it: type segment, the packet's time as TS, the
// interface and direction the capture names. ok is false for a packet that
// is not TCP over IPv4 or IPv6 (or an IP fragment after the first). An
// error wraps ErrMalformed, or names a link type Decode does not know.
//
// Outgoing packets get point xmit and incoming ones point tc, the wire
// observations of the live tracer; the annotation (conn.Tracker) then marks
// every one wire. Nothing else is set: a capture has no socket cookie and no
// owner.
func Decode(p *Packet, ev *event.Event) (ok bool, err error) {
	l, err := link(p)
	if err != nil || !l.ok {
		return false, err
	}
	*ev = event.Event{Type: event.TypeSegment, TS: uint64(p.TS), Ifindex: p.Iface, Iface: p.IfName}
	if l.ifindex != 0 {
		ev.Ifindex = l.ifindex
	}
	dir := p.Dir
	if l.dir != DirUnknown {
		dir = l.dir
	}
	if dir == DirOutbound {
		ev.Dir, ev.Point = event.Egress, event.PointXmit
	}
	b := p.Data[l.off:]
	wireLen := p.OrigLen - l.off
	switch l.proto {
	case etherIPv4:
		return decodeIPv4(b, wireLen, ev)
	case etherIPv6:
		return decodeIPv6(b, wireLen, ev)
	}
	return false, nil
}

// linkInfo is what the link header says: where the network header starts,
// what it is, and for Linux cooked headers the interface and direction.
type linkInfo struct {
	ok      bool
	proto   uint16 // an EtherType
	off     int
	ifindex uint32
	dir     Dir
}

func link(p *Packet) (linkInfo, error) {
	b := p.Data
	switch p.LinkType {
	case LinkEthernet:
		return ethernet(b)
	case LinkSLL:
		if len(b) < 16 {
			return linkInfo{}, malformed("linux cooked (v1) header of %d bytes", len(b))
		}
		return linkInfo{ok: true, proto: be.Uint16(b[14:16]), off: 16, dir: sllDir(be.Uint16(b[0:2]))}, nil
	case LinkSLL2:
		if len(b) < 20 {
			return linkInfo{}, malformed("linux cooked (v2) header of %d bytes", len(b))
		}
		return linkInfo{ok: true, proto: be.Uint16(b[0:2]), off: 20, ifindex: be.Uint32(b[4:8]), dir: sllDir(uint16(b[10]))}, nil
	case LinkRaw, LinkIPv4, LinkIPv6:
		return rawIP(b, 0)
	case LinkNull, LinkLoop:
		return loopback(b)
	}
	return linkInfo{}, fmt.Errorf("link type %d is not supported (Ethernet, Linux cooked v1/v2, raw IP, loopback are)", p.LinkType)
}

func sllDir(pkttype uint16) Dir {
	if pkttype == sllOutgoing {
		return DirOutbound
	}
	return DirInbound
}

func ethernet(b []byte) (linkInfo, error) {
	off := 12
	for range 3 { // up to two VLAN tags
		if len(b) < off+2 {
			return linkInfo{}, malformed("ethernet header of %d bytes", len(b))
		}
		t := be.Uint16(b[off : off+2])
		if t != etherVLAN && t != etherQinQ {
			return linkInfo{ok: true, proto: t, off: off + 2}, nil
		}
		off += 4
	}
	return linkInfo{}, nil
}

// loopback reads the 4-byte address family of the BSD loopback headers;
// its byte order is the writer's for NULL, so both are tried.
func loopback(b []byte) (linkInfo, error) {
	if len(b) < 4 {
		return linkInfo{}, malformed("loopback header of %d bytes", len(b))
	}
	fam := binary.LittleEndian.Uint32(b)
	if fam > 0xffff {
		fam = be.Uint32(b)
	}
	switch fam {
	case 2: // AF_INET everywhere
		return linkInfo{ok: true, proto: etherIPv4, off: 4}, nil
	case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
		return linkInfo{ok: true, proto: etherIPv6, off: 4}, nil
	}
	return linkInfo{}, nil
}

func rawIP(b []byte, off int) (linkInfo, error) {
	if len(b) <= off {
		return linkInfo{}, malformed("empty raw IP packet")
	}
	switch b[off] >> 4 {
	case 4:
		return linkInfo{ok: true, proto: etherIPv4, off: off}, nil
	case 6:
		return linkInfo{ok: true, proto: etherIPv6, off: off}, nil
	}
	return linkInfo{}, nil
}

// decodeIPv4 reads the header, options included. wireLen is the packet's
// length from the IP header on, for a total length of 0 (TSO, BIG TCP).
func decodeIPv4(b []byte, wireLen int, ev *event.Event) (bool, error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false, malformed("IPv4 header cut at %d bytes", len(b))
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(be.Uint16(b[2:4]))
	if total == 0 {
		total = wireLen
	}
	if ihl < 20 || len(b) < ihl || total < ihl {
		return false, malformed("IPv4 header length %d, total length %d, %d bytes captured", ihl, total, len(b))
	}
	if b[9] != protoTCP || be.Uint16(b[6:8])&0x1fff != 0 {
		return false, nil // not TCP, or a fragment without the TCP header
	}
	ev.Family = 4
	ev.Saddr = netip.AddrFrom4([4]byte(b[12:16]))
	ev.Daddr = netip.AddrFrom4([4]byte(b[16:20]))
	return decodeTCP(b[ihl:], total-ihl, ev)
}

// decodeIPv6 walks the extension headers that can precede TCP.
func decodeIPv6(b []byte, wireLen int, ev *event.Event) (bool, error) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return false, malformed("IPv6 header cut at %d bytes", len(b))
	}
	payload := int(be.Uint16(b[4:6]))
	if payload == 0 { // jumbogram, GSO or BIG TCP
		payload = wireLen - 40
	}
	next, off := b[6], 40
	for range 8 {
		switch next {
		case protoTCP:
			if payload < off-40 {
				return false, malformed("IPv6 payload length %d shorter than its %d bytes of extension headers", payload, off-40)
			}
			ev.Family = 6
			ev.Saddr = netip.AddrFrom16([16]byte(b[8:24]))
			ev.Daddr = netip.AddrFrom16([16]byte(b[24:40]))
			return decodeTCP(b[off:], payload-(off-40), ev)
		case 0, 43, 60, 51, 44, 135: // hop-by-hop, routing, destination, AH, fragment, mobility
			if len(b) < off+8 {
				return false, malformed("IPv6 extension header %d cut at %d bytes", next, len(b)-off)
			}
			if next == 44 && be.Uint16(b[off+2:off+4])&0xfff8 != 0 {
				return false, nil // later fragment: no TCP header
			}
			next, off = b[off], off+extLen(next, b[off+1])
		default:
			return false, nil // not TCP (or behind ESP)
		}
	}
	return false, malformed("more than 8 IPv6 extension headers")
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

// decodeTCP reads the TCP header; segLen is header plus payload as the IP
// header states it (the capture may hold less: the snap length).
func decodeTCP(b []byte, segLen int, ev *event.Event) (bool, error) {
	if len(b) < 20 {
		return false, malformed("TCP header cut at %d bytes", len(b))
	}
	hdr := int(b[12]>>4) * 4
	if hdr < 20 || segLen < hdr {
		return false, malformed("TCP data offset %d bytes in a segment of %d", hdr, segLen)
	}
	ev.Sport, ev.Dport = be.Uint16(b[0:2]), be.Uint16(b[2:4])
	ev.Seq, ev.Ack = be.Uint32(b[4:8]), be.Uint32(b[8:12])
	ev.Flags = uint16(b[13]) | uint16(b[12]&1)<<8
	ev.Win = be.Uint16(b[14:16])
	ev.HdrLen = uint8(hdr)
	ev.Len = uint32(segLen - hdr)
	parseOptions(b[20:min(hdr, len(b))], &ev.Opts)
	return true, nil
}

// parseOptions stops at the end-of-list option or at the first malformed
// length, as the kernel's parser does; what was parsed before stays.
func parseOptions(b []byte, o *event.Options) {
	for len(b) > 0 {
		kind := b[0]
		if kind == 0 {
			return
		}
		if kind == 1 {
			b = b[1:]
			continue
		}
		if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
			return
		}
		setOption(o, kind, b[2:b[1]])
		b = b[b[1]:]
	}
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
