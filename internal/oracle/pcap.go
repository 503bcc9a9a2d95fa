package oracle

import (
	"bufio"
	"bytes"
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
	_, segs, err := readPcap(r, nil)
	return segs, err
}

// rawRecord is one pcap record as it was in the file.
type rawRecord struct {
	ts      time.Time
	data    []byte
	origLen int
}

// readPcap is ReadPcap; with raw non-nil it also keeps each segment's
// record, raw[i] holding segment i's.
func readPcap(r io.Reader, raw *[]rawRecord) (pcapFile, []Segment, error) {
	br := bufio.NewReader(r)
	f, err := readHeader(br)
	if err != nil {
		return f, nil, err
	}
	var segs []Segment
	for n := 1; ; n++ {
		ts, data, origLen, err := f.readRecord(br)
		if errors.Is(err, io.EOF) {
			return f, segs, nil
		}
		if err != nil {
			return f, segs, fmt.Errorf("read pcap record %d: %w", n, err)
		}
		seg, ok, err := decodeFrame(f.linkType, data, origLen)
		if err != nil {
			return f, segs, fmt.Errorf("decode pcap record %d: %w", n, err)
		}
		if ok {
			seg.Time = ts
			segs = append(segs, seg)
			if raw != nil {
				*raw = append(*raw, rawRecord{ts, data, origLen})
			}
		}
	}
}

// Reorder returns a classic pcap (nanosecond timestamps, the capture's
// link type) of the capture's TCP segments in another order and with other
// times: record k is segment order[k] (an index into what ReadPcap
// returns), stamped times[k]. It shows tshark the packets as another
// observer saw them, in its order and by its clock.
func Reorder(pcap []byte, order []int, times []time.Time) ([]byte, error) {
	if len(order) != len(times) {
		return nil, fmt.Errorf("reorder pcap: %d indices but %d times", len(order), len(times))
	}
	var raw []rawRecord
	f, _, err := readPcap(bytes.NewReader(pcap), &raw)
	if err != nil {
		return nil, fmt.Errorf("reorder pcap: %w", err)
	}
	le := binary.LittleEndian
	out := make([]byte, 24, 24+len(pcap))
	le.PutUint32(out[0:], 0xa1b23c4d)
	le.PutUint16(out[4:], 2)
	le.PutUint16(out[6:], 4)
	le.PutUint32(out[16:], maxRecordSize)
	le.PutUint32(out[20:], f.linkType)
	for k, i := range order {
		if i < 0 || i >= len(raw) {
			return nil, fmt.Errorf("reorder pcap: index %d outside the capture's %d segments", i, len(raw))
		}
		rec, ts := raw[i], times[k]
		out = le.AppendUint32(out, uint32(ts.Unix()))
		out = le.AppendUint32(out, uint32(ts.Nanosecond()))
		out = le.AppendUint32(out, uint32(len(rec.data)))
		out = le.AppendUint32(out, uint32(rec.origLen))
		out = append(out, rec.data...)
	}
	return out, nil
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
