package output

import (
	"net/netip"
	"time"

	"tcptracer/event"
)

// encCache keeps rendered pieces of lines that repeat from one segment to
// the next: where it was seen with its tuple and side (the same for every
// segment of a connection in one direction at one point), its owner, and
// the wall-clock second of "ts". A hit is one copy instead of a dozen
// formatted fields. The pieces are
// rendered by the same functions as without a cache, so the output is the
// same byte for byte. A nil *encCache renders every time.
type encCache struct {
	wheres [256]whereEntry
	owners [64]ownerEntry
	sec    int64  // the Unix second rendered in secText
	secLen int    // len(secText) when sec is valid, else 0
	secBuf []byte // "2006-01-02T15:04:05." of sec
}

type whereKey struct {
	saddr, daddr netip.Addr
	iface        string
	ifindex      uint32
	sport, dport uint16
	family       uint8
	dir          event.Dir
	point        event.Point
	side         event.Side
	wire         bool
	inConn       bool // Conn != 0: side and roles_guessed are written
	guessed      bool
}

type whereEntry struct {
	key  whereKey
	text []byte
	ok   bool
}

type ownerKey struct {
	comm      string
	pid, tgid uint32
	src       event.PIDSource
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
		dport: ev.Dport, family: ev.Family, dir: ev.Dir, point: ev.Point, side: ev.Side, wire: ev.Wire,
		inConn: ev.Conn != 0, guessed: ev.RolesGuessed}
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
	k := ownerKey{comm: ev.Comm, pid: ev.PID, tgid: ev.TGID, src: ev.PIDSrc}
	e := &c.owners[uint(k.pid)%uint(len(c.owners))]
	if !e.ok || e.key != k {
		e.key, e.ok = k, true
		e.text = appendSegmentOwner(e.text[:0], ev)
	}
	return append(b, e.text...)
}

// wallTime appends ns (Unix nanoseconds) as RFC 3339 with nine digits of
// nanoseconds in UTC, as time.Format with rfc3339Nano does; the date and
// time of day are formatted once per second.
func (c *encCache) wallTime(b []byte, ns int64) []byte {
	if c == nil || ns < 0 {
		return time.Unix(0, ns).UTC().AppendFormat(b, rfc3339Nano)
	}
	sec, frac := ns/1e9, ns%1e9
	if c.secLen == 0 || sec != c.sec {
		c.secBuf = time.Unix(sec, 0).UTC().AppendFormat(c.secBuf[:0], "2006-01-02T15:04:05.")
		c.sec, c.secLen = sec, len(c.secBuf)
	}
	b = append(b, c.secBuf...)
	for d := int64(1e8); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	return append(b, 'Z')
}
