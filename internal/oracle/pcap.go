package oracle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Link types (LINKTYPE_* values of the pcap file format) that ReadPcap
// understands. Others are refused with an error naming the value.
const (
	LinkEthernet  = 1   // EN10MB; also what Linux loopback and veth capture as
	LinkRaw       = 101 // raw IP, version from the first nibble
	LinkLinuxSLL  = 113 // "cooked" v1, e.g. -i any with older libpcap
	LinkIPv4      = 228
	LinkIPv6      = 229
	LinkLinuxSLL2 = 276 // "cooked" v2, -i any with libpcap >= 1.10
)

const (
	pcapngMagic   = 0x0a0d0d0a
	maxRecordSize = 256 << 10 // far above any snapshot length tcpdump uses
)

// pcapFile is the decoded global header.
type pcapFile struct {
	order    binary.ByteOrder
	nano     bool
	linkType uint32
}

// ReadPcap decodes a classic pcap stream (either byte order, micro- or
// nanosecond timestamps) and returns its TCP segments in file order.
// Packets that are not TCP over IPv4/IPv6, and IP fragments past the first,
// are skipped; a TCP packet too short to hold its header is an error, as is
// a record cut short at the end of the stream.
func ReadPcap(r io.Reader) ([]Segment, error) {
	br := bufio.NewReader(r)
	f, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	var segs []Segment
	for n := 1; ; n++ {
		ts, data, origLen, err := f.readRecord(br)
		if errors.Is(err, io.EOF) {
			return segs, nil
		}
		if err != nil {
			return segs, fmt.Errorf("read pcap record %d: %w", n, err)
		}
		seg, ok, err := decodeFrame(f.linkType, data, origLen)
		if err != nil {
			return segs, fmt.Errorf("decode pcap record %d: %w", n, err)
		}
		if ok {
			seg.Time = ts
			segs = append(segs, seg)
		}
	}
}

func readHeader(r io.Reader) (pcapFile, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return pcapFile{}, fmt.Errorf("read pcap header: %w", err)
	}
	var f pcapFile
	switch magic := binary.LittleEndian.Uint32(h[:4]); magic {
	case 0xa1b2c3d4, 0xa1b23c4d:
		f.order = binary.LittleEndian
		f.nano = magic == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		f.order = binary.BigEndian
		f.nano = magic == 0x4d3cb2a1
	case pcapngMagic:
		return f, errors.New("read pcap header: file is pcapng, want classic pcap")
	default:
		return f, fmt.Errorf("read pcap header: bad magic %#08x", magic)
	}
	// The top bits of the link type field may carry FCS information.
	f.linkType = f.order.Uint32(h[20:24]) & 0x0fffffff
	return f, nil
}

// readRecord returns io.EOF only at a clean record boundary.
func (f pcapFile) readRecord(r io.Reader) (time.Time, []byte, int, error) {
	var h [16]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return time.Time{}, nil, 0, err
	}
	sec, frac := f.order.Uint32(h[0:4]), f.order.Uint32(h[4:8])
	incl, orig := f.order.Uint32(h[8:12]), f.order.Uint32(h[12:16])
	if incl > maxRecordSize {
		return time.Time{}, nil, 0, fmt.Errorf("captured length %d is implausible", incl)
	}
	data := make([]byte, incl)
	if _, err := io.ReadFull(r, data); err != nil {
		return time.Time{}, nil, 0, fmt.Errorf("read %d bytes of packet data: %w", incl, noEOF(err))
	}
	if !f.nano {
		frac *= 1000
	}
	return time.Unix(int64(sec), int64(frac)), data, int(orig), nil
}

// noEOF turns a bare EOF inside a record into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
