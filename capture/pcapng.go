package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// pcapng block types.
const (
	blockIDB = 1           // interface description
	blockOPB = 2           // packet (obsolete)
	blockSPB = 3           // simple packet
	blockISB = 5           // interface statistics
	blockEPB = 6           // enhanced packet
	blockSHB = magicPcapng // section header
)

// Option codes.
const (
	optEnd      = 0
	optComment  = 1
	optIfName   = 2
	optIfTsres  = 9
	optIfTsoff  = 14
	optEPBFlags = 2
)

// ifaceDesc is what an interface description block says.
type ifaceDesc struct {
	link    uint32
	snaplen uint32
	name    string
	// Timestamps are ticks of 10^-exp10 s, or 2^-exp2 s when pow2.
	pow2   bool
	exp    uint8
	offset int64 // seconds added to every timestamp (if_tsoffset)
}

// firstSection reads the section header block that must open the stream.
func (r *Reader) firstSection() error {
	typ, body, err := r.block()
	if err != nil {
		return fmt.Errorf("read pcapng section header: %w", err)
	}
	if typ != blockSHB {
		return fmt.Errorf("read pcapng section header: block type %#x", typ)
	}
	return r.section(body)
}

// section starts a new section: its interfaces replace the last one's.
func (r *Reader) section(body []byte) error {
	if len(body) < 16 {
		return fmt.Errorf("section header of %d bytes is too short", len(body))
	}
	if major := r.order.Uint16(body[4:6]); major != 1 {
		return fmt.Errorf("pcapng version %d.%d is not supported", major, r.order.Uint16(body[6:8]))
	}
	r.ifaces, r.shbSeen = r.ifaces[:0], true
	return nil
}

// block reads one block: its type and its body (without the type and the
// two length fields). A section header sets the byte order first.
func (r *Reader) block() (uint32, []byte, error) {
	h, err := r.br.Peek(12)
	if err != nil {
		return 0, nil, fmt.Errorf("block header truncated: %w", noEOF(err))
	}
	if binary.LittleEndian.Uint32(h) == blockSHB {
		switch bom := binary.LittleEndian.Uint32(h[8:12]); bom {
		case byteOrderBOM:
			r.order = binary.LittleEndian
		case bits.ReverseBytes32(byteOrderBOM):
			r.order = binary.BigEndian
		default:
			return 0, nil, fmt.Errorf("section header byte-order magic %#08x is wrong", bom)
		}
	}
	typ, total := r.order.Uint32(h[0:4]), r.order.Uint32(h[4:8])
	if total < 12 || total%4 != 0 {
		return 0, nil, fmt.Errorf("block type %#x: total length %d is not a multiple of 4 of at least 12", typ, total)
	}
	if total > maxRecord && !isPacketBlock(typ) {
		return typ, nil, r.skipBlock(typ, total)
	}
	b, err := r.take(int(total))
	if err != nil {
		return 0, nil, fmt.Errorf("block type %#x %w", typ, err)
	}
	if trailer := r.order.Uint32(b[total-4:]); trailer != total {
		return 0, nil, fmt.Errorf("block type %#x: trailing length %d differs from %d", typ, trailer, total)
	}
	return typ, b[8 : total-4], nil
}

// skipBlock passes over a block too large to hold that no packet is in.
func (r *Reader) skipBlock(typ, total uint32) error {
	if _, err := r.br.Discard(int(total)); err != nil {
		return fmt.Errorf("block type %#x truncated: %w", typ, noEOF(err))
	}
	return errSkipped
}

var errSkipped = errors.New("block skipped")

func isPacketBlock(typ uint32) bool { return typ == blockEPB || typ == blockSPB || typ == blockOPB }

func (r *Reader) nextPcapng() (Packet, error) {
	for {
		if r.atEOF() {
			return Packet{}, io.EOF
		}
		typ, body, err := r.block()
		if errors.Is(err, errSkipped) {
			continue
		}
		if err != nil {
			return Packet{}, r.fail(err)
		}
		p, ok, err := r.handle(typ, body)
		if err != nil {
			return Packet{}, r.fail(err)
		}
		if ok {
			r.n++
			p.Number = r.n
			return p, nil
		}
	}
}

// handle interprets one block; ok says it was a packet.
func (r *Reader) handle(typ uint32, body []byte) (Packet, bool, error) {
	switch typ {
	case blockSHB:
		return Packet{}, false, r.section(body)
	case blockIDB:
		return Packet{}, false, r.interfaceBlock(body)
	case blockEPB:
		return r.enhanced(body)
	case blockSPB:
		return r.simple(body)
	case blockOPB:
		return r.obsolete(body)
	}
	return Packet{}, false, nil // statistics, name resolution, custom, …
}

func (r *Reader) interfaceBlock(body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("interface description of %d bytes is too short", len(body))
	}
	d := ifaceDesc{link: uint32(r.order.Uint16(body[0:2])), snaplen: r.order.Uint32(body[4:8]), exp: 6}
	err := r.options(body[8:], func(code uint16, v []byte) error {
		switch {
		case code == optIfName:
			d.name = string(v)
		case code == optIfTsres && len(v) == 1:
			d.pow2, d.exp = v[0]&0x80 != 0, v[0]&0x7f
			if (!d.pow2 && d.exp > 18) || (d.pow2 && d.exp > 63) {
				return fmt.Errorf("if_tsresol %#x is out of range", v[0])
			}
		case code == optIfTsoff && len(v) == 8:
			d.offset = int64(r.order.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("interface %d: %w", len(r.ifaces), err)
	}
	r.ifaces = append(r.ifaces, d)
	return nil
}

func (r *Reader) enhanced(body []byte) (Packet, bool, error) {
	if len(body) < 20 {
		return Packet{}, false, fmt.Errorf("enhanced packet block of %d bytes is too short", len(body))
	}
	id := r.order.Uint32(body[0:4])
	ts := uint64(r.order.Uint32(body[4:8]))<<32 | uint64(r.order.Uint32(body[8:12]))
	p, rest, err := r.packet(id, ts, r.order.Uint32(body[12:16]), r.order.Uint32(body[16:20]), body[20:])
	if err != nil {
		return p, false, err
	}
	err = r.options(rest, func(code uint16, v []byte) error {
		if code == optEPBFlags && len(v) == 4 {
			p.Dir = Dir(r.order.Uint32(v) & 3)
		}
		return nil
	})
	return p, true, err
}

func (r *Reader) obsolete(body []byte) (Packet, bool, error) {
	if len(body) < 20 {
		return Packet{}, false, fmt.Errorf("packet block of %d bytes is too short", len(body))
	}
	id := uint32(r.order.Uint16(body[0:2]))
	ts := uint64(r.order.Uint32(body[4:8]))<<32 | uint64(r.order.Uint32(body[8:12]))
	p, _, err := r.packet(id, ts, r.order.Uint32(body[12:16]), r.order.Uint32(body[16:20]), body[20:])
	return p, err == nil, err
}

// simple reads a simple packet block: interface 0, no timestamp, and a
// captured length that is the original one cut at the snap length.
func (r *Reader) simple(body []byte) (Packet, bool, error) {
	if len(body) < 4 || len(r.ifaces) == 0 {
		return Packet{}, false, fmt.Errorf("simple packet block of %d bytes without an interface", len(body))
	}
	orig := r.order.Uint32(body[0:4])
	incl := min(orig, uint32(len(body)-4))
	if s := r.ifaces[0].snaplen; s != 0 {
		incl = min(incl, s)
	}
	p, _, err := r.packet(0, 0, incl, orig, body[4:])
	return p, err == nil, err
}

// packet checks the interface and the lengths; rest is what follows the
// padded packet data (the options).
func (r *Reader) packet(id uint32, ts uint64, incl, orig uint32, data []byte) (Packet, []byte, error) {
	if int(id) >= len(r.ifaces) {
		return Packet{}, nil, fmt.Errorf("interface id %d: the section describes %d interfaces", id, len(r.ifaces))
	}
	if uint64(incl) > uint64(len(data)) {
		return Packet{}, nil, fmt.Errorf("captured length %d exceeds the %d bytes of the block", incl, len(data))
	}
	d := &r.ifaces[id]
	pad := min(uint64(len(data)), (uint64(incl)+3)&^3)
	return Packet{TS: d.nanos(ts), OrigLen: int(max(orig, incl)), LinkType: d.link,
		Iface: id + 1, IfName: d.name, Data: data[:incl]}, data[pad:], nil
}

// nanos converts a timestamp in the interface's resolution to Unix ns.
func (d *ifaceDesc) nanos(ts uint64) int64 {
	off := d.offset * 1e9
	if d.pow2 {
		hi, lo := bits.Mul64(ts, 1e9)
		return off + int64(lo>>d.exp|hi<<(64-d.exp)) // hi<<64 is 0 in Go
	}
	switch {
	case d.exp == 9:
		return off + int64(ts)
	case d.exp < 9:
		return off + int64(ts)*pow10[9-d.exp]
	}
	return off + int64(ts/uint64(pow10[d.exp-9]))
}

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10}

// options walks an options list (code, length, value padded to 4) and
// calls f for each option until opt_endofopt or the end of the list.
func (r *Reader) options(b []byte, f func(code uint16, v []byte) error) error {
	for len(b) >= 4 {
		code, n := r.order.Uint16(b[0:2]), int(r.order.Uint16(b[2:4]))
		if code == optEnd {
			return nil
		}
		if 4+n > len(b) {
			return fmt.Errorf("option %d of %d bytes overruns its block", code, n)
		}
		if err := f(code, b[4:4+n]); err != nil {
			return err
		}
		b = b[min(len(b), 4+(n+3)&^3):]
	}
	return nil
}
