// Package capture reads and writes packet captures (classic pcap and
// pcapng) in pure Go and turns their TCP packets into the tracer's events,
// so `tcptracer analyze` can check any capture and the live tracer can hand
// its wire segments to Wireshark. It imports nothing from cilium/ebpf and
// needs neither libpcap nor a kernel.
//
// A capture holds the packets alone: no socket owners, no socket states,
// no kernel retransmission reports. Events decoded from one carry only
// what the bytes say.
package capture

import (
	"errors"
	"fmt"
	"time"
)

// Link types (LINKTYPE_* values, the same numbers in pcap and pcapng).
const (
	LinkNull     = 0   // BSD loopback: 4-byte address family in the writer's byte order
	LinkEthernet = 1   // EN10MB; what Linux lo and veth capture as
	LinkRaw      = 101 // raw IP, version from the first nibble
	LinkLoop     = 108 // OpenBSD loopback: 4-byte address family, big-endian
	LinkSLL      = 113 // Linux cooked v1 (-i any with libpcap < 1.10)
	LinkIPv4     = 228
	LinkIPv6     = 229
	LinkSLL2     = 276 // Linux cooked v2 (-i any with libpcap >= 1.10)
)

// Dir is what the capture says about a packet's direction.
type Dir uint8

const (
	DirUnknown  Dir = iota
	DirInbound      // received (SLL packet types host, broadcast, multicast, other host; epb_flags inbound)
	DirOutbound     // sent (SLL packet type outgoing; epb_flags outbound)
)

// Packet is one packet record. Data is valid until the next call to
// Reader.Next.
type Packet struct {
	Number   int   // 1-based position in the capture, as Wireshark's frame.number
	TS       int64 // wall-clock time, Unix nanoseconds
	OrigLen  int   // length on the wire
	LinkType uint32
	// Iface is the pcapng interface id plus one (1 for classic pcap), and
	// IfName its if_name option, if any.
	Iface  uint32
	IfName string
	Dir    Dir
	Data   []byte
}

// Time returns the packet's timestamp.
func (p *Packet) Time() time.Time { return time.Unix(0, p.TS) }

// ErrMalformed marks a packet that is in the capture whole but does not
// parse as what its headers claim (a bad IP or TCP length, say). The
// capture is still readable after it.
var ErrMalformed = errors.New("malformed packet")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}
