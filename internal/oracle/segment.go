// Package oracle is an independent witness for the tracer: it captures with
// tcpdump and decodes the capture in pure Go, so a privileged test can set
// what the tracer reported beside what was on the wire. Nothing here shares
// code with the tracer; only the TCP vocabulary (flag bits and names, the
// options struct) comes from package event.
package oracle

import (
	"fmt"
	"net/netip"
	"time"

	"tcptracer/event"
)

// Segment is one TCP segment as tcpdump saw it.
type Segment struct {
	Time         time.Time // capture time (wall clock, as in the pcap file)
	Saddr, Daddr netip.Addr
	Sport, Dport uint16
	Seq, Ack     uint32 // absolute, as on the wire
	Flags        uint16 // 9 bits: event.FIN (1) … event.NS (256)
	Len          uint32 // payload bytes, from the IP lengths (not cut by the snapshot length)
	Win          uint16 // raw window field, not scaled

	// Extras beyond the minimum, for comparing options with the tracer.
	HdrLen uint8         // TCP header length in bytes
	Opts   event.Options // options found in the captured part of the header
}

// Has reports whether every flag in mask is set.
func (s Segment) Has(mask uint16) bool { return s.Flags&mask == mask }

// String prints the segment in one line, for test failures.
func (s Segment) String() string {
	return fmt.Sprintf("%s %s > %s [%s] seq %d ack %d win %d len %d",
		s.Time.UTC().Format("15:04:05.000000"),
		netip.AddrPortFrom(s.Saddr, s.Sport), netip.AddrPortFrom(s.Daddr, s.Dport),
		event.Flags(s.Flags), s.Seq, s.Ack, s.Win, s.Len)
}
