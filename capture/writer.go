package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Writer writes one pcapng section: a section header, interface
// descriptions as interfaces are added, and enhanced packet blocks.
// Timestamps are written in nanoseconds (if_tsresol 9). It is not safe for
// concurrent use.
type Writer struct {
	w     *bufio.Writer
	n     int64 // bytes written
	buf   []byte
	hdr   [8]byte
	nifs  uint32
	links []uint32
}

var le = binary.LittleEndian

// Section is what the section header says about the capture.
type Section struct {
	Comment     string // opt_comment
	Hardware    string // shb_hardware
	OS          string // shb_os
	Application string // shb_userappl
}

// NewWriter writes the section header to w.
func NewWriter(w io.Writer, s Section) (*Writer, error) {
	wr := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	b := le.AppendUint32(nil, byteOrderBOM)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, ^uint64(0)) // section length not given
	b = appendOption(b, optComment, s.Comment)
	b = appendOption(b, 2, s.Hardware)
	b = appendOption(b, 3, s.OS)
	b = appendOption(b, 4, s.Application)
	b = appendEnd(b)
	if err := wr.block(blockSHB, b); err != nil {
		return nil, err
	}
	return wr, nil
}

// Interface describes one interface.
type Interface struct {
	Link    uint32 // a LINKTYPE_* value that matches the bytes written
	Snaplen uint32
	Name    string // if_name
	Comment string
}

// AddInterface writes an interface description block and returns the id
// packets on it are written with.
func (w *Writer) AddInterface(i Interface) (uint32, error) {
	b := le.AppendUint16(nil, uint16(i.Link))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, i.Snaplen)
	b = appendOption(b, optComment, i.Comment)
	b = appendOption(b, optIfName, i.Name)
	b = appendOptionBytes(b, optIfTsres, []byte{9})
	b = appendEnd(b)
	if err := w.block(blockIDB, b); err != nil {
		return 0, err
	}
	w.nifs++
	w.links = append(w.links, i.Link)
	return w.nifs - 1, nil
}

// WritePacket writes an enhanced packet block: data as captured, origLen
// the packet's length on the wire, dir its direction (epb_flags) and an
// opt_comment when comment is not empty.
func (w *Writer) WritePacket(iface uint32, ts int64, data []byte, origLen int, dir Dir, comment []byte) error {
	if iface >= w.nifs {
		return fmt.Errorf("write packet: interface %d was not added", iface)
	}
	b := w.buf[:0]
	b = le.AppendUint32(b, iface)
	b = le.AppendUint32(b, uint32(uint64(ts)>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(max(origLen, len(data))))
	b = append(b, data...)
	b = pad(b)
	if dir != DirUnknown {
		var flags [4]byte
		le.PutUint32(flags[:], uint32(dir))
		b = appendOptionBytes(b, optEPBFlags, flags[:])
	}
	if len(comment) > 0 {
		b = appendOption(b, optComment, comment)
		b = appendEnd(b)
	} else if dir != DirUnknown {
		b = appendEnd(b)
	}
	w.buf = b
	return w.block(blockEPB, b)
}

// WriteStatistics writes an interface statistics block for an interface:
// its time and a comment (tcptracer says there how many records were lost).
func (w *Writer) WriteStatistics(iface uint32, ts int64, comment string) error {
	if iface >= w.nifs {
		return fmt.Errorf("write statistics: interface %d was not added", iface)
	}
	b := le.AppendUint32(nil, iface)
	b = le.AppendUint32(b, uint32(uint64(ts)>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = appendOption(b, optComment, comment)
	b = appendEnd(b)
	return w.block(blockISB, b)
}

// Size is the number of bytes written so far (buffered ones included).
func (w *Writer) Size() int64 { return w.n }

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	return nil
}

func (w *Writer) block(typ uint32, body []byte) error {
	total := uint32(len(body) + 12)
	h := w.hdr[:] // a local array would escape through bufio to the heap
	le.PutUint32(h[0:4], typ)
	le.PutUint32(h[4:8], total)
	w.w.Write(h)
	w.w.Write(body)
	if _, err := w.w.Write(h[4:8]); err != nil {
		return fmt.Errorf("write pcapng block: %w", err)
	}
	w.n += int64(total)
	return nil
}

func appendOption[T string | []byte](b []byte, code uint16, v T) []byte {
	if len(v) == 0 {
		return b
	}
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(min(len(v), 0xfff0)))
	b = append(b, v[:min(len(v), 0xfff0)]...)
	return pad(b)
}

func appendOptionBytes(b []byte, code uint16, v []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	return pad(b)
}

func appendEnd(b []byte) []byte { return append(b, 0, 0, 0, 0) }

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
