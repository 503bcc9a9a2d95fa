// Package conn annotates the tracer's event stream in place: a running
// index, a stable connection id, Wireshark-style relative Seq/Ack, loopback
// duplicate marking, interface names and the owning process of each segment.
// It is pure Go and keeps bounded state, so it can run on a busy host for as
// long as the tracer does.
//
// A connection is found by socket cookie first, then by family and the
// sorted pair of endpoints (IPv4-mapped addresses unmapped). A socket seen
// before its port was chosen (SYN_SENT fires before the port is assigned)
// is held by its cookie until its SYN or a later event gives the full tuple.
// A listening socket's cookie is ignored: it handles every connection's SYN.
//
// A tuple gets a new connection id when a SYN (without ACK) carries an ISN
// other than the one known for its sender, when a SYN follows a
// mid-connection start (data seen, no handshake), when a socket on it goes
// to SYN_SENT again, or when a SYN arrives after the connection ended. It
// ends when both FINs are acknowledged, on a RST (segment or reset event), or
// when its local sockets went to CLOSE (both of them, or the only one on this
// host). Ended connections are dropped GracePeriod after they ended; at most
// MaxConns are kept.
package conn

import (
	"net/netip"

	"tcptracer/event"
)

const (
	// GracePeriod is how long, in event timestamp nanoseconds, a connection
	// that ended (both FINs acked, a RST, or both sockets CLOSE) stays known.
	// Late segments (the loopback twin of the last ACK, TIME_WAIT
	// retransmissions) keep its id; after that the tuple is forgotten and
	// a segment on it starts a new connection.
	GracePeriod uint64 = 60e9

	// MaxConns caps the connections kept at once. When a new connection
	// would exceed it, the least recently active one is evicted: the tracer
	// prefers forgetting an idle connection to growing without bound.
	MaxConns = 65536

	// maxCookies bounds the socket cookies remembered per connection (one
	// per local socket is normal: the client's and the server's).
	maxCookies = 4
)

// Tracker annotates events. It is not safe for concurrent use: the tracer
// calls Annotate from its single reading goroutine.
type Tracker struct {
	ifname  func(ifindex uint32) string
	ifnames map[uint32]string

	index  uint64 // last Index handed out
	nextID uint64 // next connection id
	now    uint64 // latest event timestamp seen

	byTuple  map[tupleKey]*connection
	byCookie map[uint64]*connection
	pending  map[partialKey]*connection // connecting sockets whose local port is not yet known

	live  connList // every known connection, most recently active first
	ended connList // ended connections, in the order they ended
	free  *connection
	n     int

	grace    uint64
	maxConns int

	twins  twinTable
	recent recentTable // the last segment observations, for drops
}

// NewTracker returns a Tracker that names interfaces with ifname (it may be
// nil, then Iface is left as the tracer set it). Names are cached per ifindex.
func NewTracker(ifname func(ifindex uint32) string) *Tracker {
	return &Tracker{
		ifname:   ifname,
		ifnames:  make(map[uint32]string),
		nextID:   1,
		byTuple:  make(map[tupleKey]*connection),
		byCookie: make(map[uint64]*connection),
		pending:  make(map[partialKey]*connection),
		grace:    GracePeriod,
		maxConns: MaxConns,
	}
}

// Annotate fills ev's annotations (Index, Conn, SeqRel/AckRel, Wire, TwinOf, Iface
// and, for segments, the owning process) and updates the tracker's state.
func (t *Tracker) Annotate(ev *event.Event) {
	t.index++
	ev.Index = t.index
	ev.Conn, ev.TwinOf, ev.Wire = 0, 0, false
	ev.SeqRel, ev.AckRel, ev.HasSeqRel, ev.HasAckRel = 0, 0, false, false
	if ev.TS > t.now {
		t.now = ev.TS
	}
	t.expire()
	if ev.Type == event.TypeStart || ev.Type == event.TypeLost {
		return
	}
	src, dst, fam := endpoints(ev)
	c := t.resolve(ev, fam, src, dst)
	if c != nil {
		ev.Conn = c.id
		t.live.moveToFront(c)
		if ev.Type != event.TypeSegment && ev.Type != event.TypeDrop {
			c.markLocal(src)
		}
	}
	switch ev.Type {
	case event.TypeSegment:
		t.segment(ev, c, src, dst)
		t.recent.add(ev, src)
	case event.TypeDrop:
		t.dropped(ev, c, src, dst)
	case event.TypeRcvState:
		t.rcvState(ev, c, src, dst)
	case event.TypeConnect:
		t.connect(ev, c, src)
	case event.TypeState:
		t.state(ev, c, src)
	case event.TypeRetransmit:
		t.recordOwner(ev, c, src)
		c.relNumbers(ev, src, dst)
	case event.TypeReset:
		t.recordOwner(ev, c, src)
		t.end(c)
	}
}

func (t *Tracker) segment(ev *event.Event, c *connection, src, dst endpoint) {
	t.setIface(ev)
	t.pairTwin(ev)
	if c != nil {
		t.track(c, ev, src, dst)
		c.relNumbers(ev, src, dst)
	}
	local := dst
	if ev.Dir == event.Egress {
		local = src
	}
	c.attribute(ev, local)
}

// rcvState handles a segment as the receiving socket's state machine saw
// it: the event's tuple is the socket's (local first), so the sender is the
// remote end.
func (t *Tracker) rcvState(ev *event.Event, c *connection, local, remote endpoint) {
	t.recordOwner(ev, c, local)
	if c != nil {
		t.track(c, ev, remote, local)
	}
	c.relNumbers(ev, remote, local)
}

func (t *Tracker) connect(ev *event.Event, c *connection, local endpoint) {
	t.recordOwner(ev, c, local)
	if c == nil || ev.Ret != 0 {
		return
	}
	if s := c.sideOf(local); s != nil && !s.hasISN {
		s.isn, s.hasISN = ev.ISN, true
	}
}

// state ends the connection when its sockets have gone to CLOSE: both of
// them, or the only one on this host (the peer never produced a socket
// event), or a connecting socket that never got a port.
func (t *Tracker) state(ev *event.Event, c *connection, local endpoint) {
	t.recordOwner(ev, c, local)
	if c == nil || ev.NewState != stateClose {
		return
	}
	s := c.sideOf(local)
	if s == nil {
		return
	}
	s.closed = true
	peer := &c.sides[0]
	if peer == s {
		peer = &c.sides[1]
	}
	if peer.closed || !peer.local || c.pending {
		t.end(c)
	}
}

// track learns ISNs and notices the end of the connection from one segment
// sent by sender to receiver.
func (t *Tracker) track(c *connection, ev *event.Event, sender, receiver endpoint) {
	s, r := c.sideOf(sender), c.sideOf(receiver)
	if s == nil || r == nil {
		return
	}
	if ev.Flags&event.SYN != 0 {
		if !s.hasISN {
			s.isn, s.hasISN = ev.Seq, true
		}
	} else {
		c.nonSYN = true
	}
	if ev.Flags&event.FIN != 0 && !s.finSent {
		s.finEnd, s.finSent = ev.Seq+ev.Len+1, true
	}
	if ev.Flags&event.ACK != 0 && r.finSent && seqGE(ev.Ack, r.finEnd) {
		r.finAcked = true
	}
	if ev.Flags&event.RST != 0 || (s.finAcked && r.finAcked) {
		t.end(c)
	}
}

// markLocal notes that a socket event came from the socket at e.
func (c *connection) markLocal(e endpoint) {
	if s := c.sideOf(e); s != nil {
		s.local = true
	}
}

func (t *Tracker) recordOwner(ev *event.Event, c *connection, local endpoint) {
	if c == nil || ev.PIDSrc != event.PIDOwner {
		return
	}
	if s := c.sideOf(local); s != nil {
		s.owner = owner{pid: ev.PID, tgid: ev.TGID, uid: ev.UID, comm: ev.Comm, known: true}
	}
}

func (t *Tracker) setIface(ev *event.Event) {
	if t.ifname == nil {
		return
	}
	name, ok := t.ifnames[ev.Ifindex]
	if !ok {
		name = t.ifname(ev.Ifindex)
		t.ifnames[ev.Ifindex] = name
	}
	ev.Iface = name
}

// pairTwin decides whether a segment observation is the wire's and pairs
// it with its other sighting. TC egress shows what the stack sent before
// the qdisc and any software GSO split: the wire shows it again later (TC
// ingress on lo, where capture sees it too; the transmit hook elsewhere).
// TC ingress and the transmit hook see what the interface carried.
func (t *Tracker) pairTwin(ev *event.Event) {
	if ev.Dir == event.Egress && ev.Point == event.PointTC {
		t.twins.expect(ev)
		return
	}
	ev.Wire = true
	ev.TwinOf = t.twins.take(ev)
}

// endpoints returns the event's source and destination with IPv4-mapped
// IPv6 addresses unmapped, so a dual-stack socket's events and the IPv4
// segments on the wire land on the same connection.
func endpoints(ev *event.Event) (src, dst endpoint, fam uint8) {
	src = endpoint{addr: ev.Saddr.Unmap(), port: ev.Sport}
	dst = endpoint{addr: ev.Daddr.Unmap(), port: ev.Dport}
	fam = ev.Family
	if src.addr.Is4() && dst.addr.Is4() {
		fam = 4
	}
	return src, dst, fam
}

// seqGE compares sequence numbers modulo 2^32 (RFC 1982 style).
func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }

type endpoint struct {
	addr netip.Addr
	port uint16
}

// complete says whether the endpoint names one socket end: a listening or
// not yet bound socket has an unspecified address or port 0.
func (e endpoint) complete() bool {
	return e.addr.IsValid() && !e.addr.IsUnspecified() && e.port != 0
}

func (e endpoint) less(o endpoint) bool {
	if c := e.addr.Compare(o.addr); c != 0 {
		return c < 0
	}
	return e.port < o.port
}

// tupleKey is the family and the two endpoints in sorted order, so both
// directions and both local sockets of a loopback connection share it.
type tupleKey struct {
	family uint8
	lo, hi endpoint
}

func makeKey(fam uint8, a, b endpoint) tupleKey {
	if b.less(a) {
		a, b = b, a
	}
	return tupleKey{family: fam, lo: a, hi: b}
}

// partialKey finds a connecting socket seen before its port was chosen
// (inet_sock_set_state to SYN_SENT fires before the port is assigned).
type partialKey struct {
	family uint8
	local  netip.Addr
	remote endpoint
}
