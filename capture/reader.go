package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Format is a capture file format.
type Format uint8

const (
	FormatNone Format = iota
	FormatPcap
	FormatPcapng
)

func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapng:
		return "pcapng"
	}
	return "not a capture"
}

const (
	magicMicro   = 0xa1b2c3d4
	magicNano    = 0xa1b23c4d
	magicPcapng  = 0x0a0d0d0a // the section header block's type
	byteOrderBOM = 0x1a2b3c4d

	// BufferSize is the read buffer a Reader wants: packet data is handed
	// out from it without a copy, so it bounds the largest record.
	BufferSize = 1 << 20
	maxRecord  = BufferSize - 64
)

// Sniff says which format a stream starting with b (at least 4 bytes) is.
func Sniff(b []byte) Format {
	if len(b) < 4 {
		return FormatNone
	}
	switch binary.LittleEndian.Uint32(b) {
	case magicMicro, magicNano, 0xd4c3b2a1, 0x4d3cb2a1:
		return FormatPcap
	case magicPcapng:
		return FormatPcapng
	}
	return FormatNone
}

// Reader reads packets from a pcap or pcapng stream.
type Reader struct {
	br     *bufio.Reader
	format Format
	n      int // packets handed out so far
	order  binary.ByteOrder

	// Classic pcap.
	nano bool
	link uint32

	// pcapng: the current section's interfaces.
	ifaces  []ifaceDesc
	shbSeen bool
}

// NewReader reads the file header of a pcap or pcapng stream. It reuses r
// when r is a *bufio.Reader of at least BufferSize.
func NewReader(r io.Reader) (*Reader, error) {
	size := BufferSize
	if s, ok := r.(interface{ Size() int64 }); ok && s.Size() < int64(size) {
		size = int(max(s.Size(), 16)) // an in-memory capture (a fuzz input): no record is larger
	}
	rd := &Reader{br: bufio.NewReaderSize(r, size)}
	magic, err := rd.br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read capture header: %w", noEOF(err))
	}
	switch rd.format = Sniff(magic); rd.format {
	case FormatPcap:
		err = rd.pcapHeader()
	case FormatPcapng:
		err = rd.firstSection()
	default:
		err = fmt.Errorf("read capture header: magic %#08x is neither pcap nor pcapng", binary.LittleEndian.Uint32(magic))
	}
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// Format is the stream's format.
func (r *Reader) Format() Format { return r.format }

// Next returns the next packet, or io.EOF at a clean end of the stream.
// A record cut short or a block that does not parse is an error naming the
// packet number; nothing can be read after it.
func (r *Reader) Next() (Packet, error) {
	if r.format == FormatPcap {
		return r.nextPcap()
	}
	return r.nextPcapng()
}

// fail names the packet being read.
func (r *Reader) fail(err error) error {
	return fmt.Errorf("packet %d: %w", r.n+1, err)
}

// take returns the next n bytes from the buffer without copying and
// consumes them; they stay valid until the next read.
func (r *Reader) take(n int) ([]byte, error) {
	if n > maxRecord {
		return nil, fmt.Errorf("record of %d bytes is implausible (at most %d)", n, maxRecord)
	}
	b, err := r.br.Peek(n)
	if err != nil {
		return nil, fmt.Errorf("truncated: want %d bytes, the file ends after %d: %w", n, len(b), noEOF(err))
	}
	_, _ = r.br.Discard(n) // cannot fail: Peek returned n bytes
	return b, nil
}

// atEOF reports a clean end of the stream (no byte left).
func (r *Reader) atEOF() bool {
	_, err := r.br.Peek(1)
	return errors.Is(err, io.EOF)
}

// noEOF turns a bare EOF inside a record into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
