package tracer

import (
	"fmt"
	"unsafe"

	"tcptracer/event"
)

// recHeaders is the kernel's headers record (bpf/capture.h): not an event
// of the stream, it goes to a HeadersHandler only.
const recHeaders = 32

var headersSize = int(unsafe.Sizeof(tcptracerHeadersEvent{}))

// Headers is the IP and TCP header bytes of a wire segment, recorded by the
// kernel right after the segment's own record (Options.CaptureHeaders).
type Headers struct {
	// Seg holds what identifies the segment: TS (of this record, a few
	// hundred ns after the segment's), the tuple, Ifindex, Dir, Point, Seq
	// and Ack, as the segment event has them.
	Seg     event.Event
	OrigLen uint32 // the IP packet's length on the wire
	Data    []byte // IP header onwards, cut after the TCP header; reused after HandleHeaders
}

// HeadersHandler is implemented by handlers that take header bytes. With
// Options.CaptureHeaders set, Run hands every headers record to it.
type HeadersHandler interface {
	HandleHeaders(h *Headers) error
}

// isHeaders says whether raw is a headers record.
func isHeaders(raw []byte) bool { return len(raw) > typeOffset && raw[typeOffset] == recHeaders }

// DecodeHeaders fills h from a headers record; h.Data points into raw.
func (d *Decoder) DecodeHeaders(raw []byte, h *Headers) error {
	if len(raw) < headersSize {
		return fmt.Errorf("headers record of %d bytes, want %d", len(raw), headersSize)
	}
	c := (*tcptracerHeadersEvent)(unsafe.Pointer(&raw[0]))
	h.Seg = event.Event{}
	d.header(&c.Hdr, &h.Seg)
	h.Seg.Type = event.TypeSegment
	h.Seg.Ifindex, h.Seg.Seq, h.Seg.Ack = c.Ifindex, c.Seq, c.Ack
	h.Seg.Dir, h.Seg.Point = event.Dir(c.Dir), event.Point(c.Point)
	h.OrigLen = c.OrigLen
	n := min(int(c.CapLen), len(c.Data))
	off := int(unsafe.Offsetof(c.Data))
	h.Data = raw[off : off+n]
	return nil
}
