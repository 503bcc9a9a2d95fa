package capture

import (
	"encoding/binary"
	"fmt"
	"io"
)

// pcapHeader reads the 24-byte global header of a classic pcap file.
func (r *Reader) pcapHeader() error {
	h, err := r.take(24)
	if err != nil {
		return fmt.Errorf("read pcap header: %w", err)
	}
	switch magic := binary.LittleEndian.Uint32(h); magic {
	case magicMicro, magicNano:
		r.order, r.nano = binary.LittleEndian, magic == magicNano
	default:
		r.order, r.nano = binary.BigEndian, magic == 0x4d3cb2a1
	}
	// The top bits of the link type field may carry FCS information.
	r.link = r.order.Uint32(h[20:24]) & 0x0fffffff
	return nil
}

func (r *Reader) nextPcap() (Packet, error) {
	if r.atEOF() {
		return Packet{}, io.EOF
	}
	h, err := r.take(16)
	if err != nil {
		return Packet{}, r.fail(fmt.Errorf("record header %w", err))
	}
	sec, frac := r.order.Uint32(h[0:4]), r.order.Uint32(h[4:8])
	incl, orig := r.order.Uint32(h[8:12]), r.order.Uint32(h[12:16])
	if !r.nano {
		if frac >= 1e6 {
			return Packet{}, r.fail(fmt.Errorf("microseconds %d out of range: not a pcap record", frac))
		}
		frac *= 1000
	}
	if frac >= 1e9 {
		return Packet{}, r.fail(fmt.Errorf("nanoseconds %d out of range: not a pcap record", frac))
	}
	if incl > maxRecord {
		return Packet{}, r.fail(fmt.Errorf("captured length %d is implausible: not a pcap record", incl))
	}
	data, err := r.take(int(incl))
	if err != nil {
		return Packet{}, r.fail(fmt.Errorf("packet data %w", err))
	}
	r.n++
	return Packet{Number: r.n, TS: int64(sec)*1e9 + int64(frac), OrigLen: int(max(orig, incl)),
		LinkType: r.link, Iface: 1, Data: data}, nil
}
