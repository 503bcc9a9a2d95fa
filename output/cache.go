package output

import (
	"net/netip"

	"tcptracer/event"
)

// encCache keeps rendered pieces of segment lines that repeat from one
// segment to the next: where it was seen with its tuple (the same for every
// segment of a connection in one direction at one point) and its owner. A
// hit is one copy instead of a dozen formatted fields. The pieces are
// rendered by the same functions as without a cache, so the output is the
// same byte for byte. A nil *encCache renders every time.
type encCache struct {
	wheres [256]whereEntry
	owners [64]ownerEntry
}

type whereKey struct {
	saddr, daddr netip.Addr
	iface        string
	ifindex      uint32
	sport, dport uint16
	family       uint8
	dir          event.Dir
	point        event.Point
	wire         bool
}

type whereEntry struct {
	key  whereKey
	text []byte
	ok   bool
}

type ownerKey struct {
	comm string
	pid  uint32
	src  event.PIDSource
}

type ownerEntry struct {
	key  ownerKey
	text []byte
	ok   bool
}

func (c *encCache) where(b []byte, ev *event.Event) []byte {
	if c == nil {
		return appendSegmentWhere(b, ev)
	}
	k := whereKey{saddr: ev.Saddr, daddr: ev.Daddr, iface: ev.Iface, ifindex: ev.Ifindex, sport: ev.Sport,
		dport: ev.Dport, family: ev.Family, dir: ev.Dir, point: ev.Point, wire: ev.Wire}
	h := uint(k.sport)*31 + uint(k.dport)*17 + uint(k.ifindex)*7 + uint(k.dir)*3 + uint(k.point)*5
	if k.wire {
		h++
	}
	e := &c.wheres[h%uint(len(c.wheres))]
	if !e.ok || e.key != k {
		e.key, e.ok = k, true
		e.text = appendSegmentWhere(e.text[:0], ev)
	}
	return append(b, e.text...)
}

func (c *encCache) owner(b []byte, ev *event.Event) []byte {
	if c == nil {
		return appendSegmentOwner(b, ev)
	}
	k := ownerKey{comm: ev.Comm, pid: ev.PID, src: ev.PIDSrc}
	e := &c.owners[uint(k.pid)%uint(len(c.owners))]
	if !e.ok || e.key != k {
		e.key, e.ok = k, true
		e.text = appendSegmentOwner(e.text[:0], ev)
	}
	return append(b, e.text...)
}
