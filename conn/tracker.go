// Package conn is the one connection model. It annotates the tracer's
// event stream in place: a running index, a stable connection id, which
// end is client and which server (and whether that was guessed),
// Wireshark-style relative Seq/Ack, loopback duplicate marking, interface
// names and the owning process of each segment. Later stages (timeline,
// analysis, report, output) read these annotations and recompute none of
// them. It is pure Go and keeps bounded state, so it can run on a busy host
// for as long as the tracer does.
//
// Roles are decided on a connection's first event: the sender of a SYN,
// the caller of connect and a socket going to SYN_SENT are the client; a
// SYN-ACK's sender and a listener's child the server. Otherwise (traced
// from the middle) the end with a port below 32768 is the server when only
// one has one, else the first sender is the client, and the roles are
// marked guessed.
//
// Relative numbers count from each side's ISN, learned from its SYN or
// the connect event. When both were missed the base is derived, and the
// events say so: from the kernel's snd_una and rcv_nxt in a state or
// rcv_state event (each is relative 1), else from the first seq seen (or
// the peer's first ack), which is then relative 1, as Wireshark does. An
// ISN learned later replaces a derived base.
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

// Annotate fills ev's annotations (Index, Conn, Side, RolesGuessed,
// SeqRel/AckRel, RelDerived, Wire, TwinOf, Iface and, for segments, the
// owning process) and updates the tracker's state.
func (t *Tracker) Annotate(ev *event.Event) {
	t.index++
	ev.Index = t.index
	ev.Conn, ev.TwinOf, ev.Wire = 0, 0, false
	ev.Side, ev.RolesGuessed = event.Client, false
	ev.SeqRel, ev.AckRel, ev.HasSeqRel, ev.HasAckRel, ev.RelDerived = 0, 0, false, false, false
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
		c.publishSide(ev, src, dst)
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
		if c != nil {
			relNumbers(ev, c.sideOf(src), c.sideOf(dst))
		}
	case event.TypeReset:
		t.recordOwner(ev, c, src)
		t.end(c)
	}
}

func (t *Tracker) segment(ev *event.Event, c *connection, src, dst endpoint) {
	t.setIface(ev)
	t.pairTwin(ev)
	if c != nil {
		s, r := c.sideOf(src), c.sideOf(dst)
		t.track(c, ev, s, r)
		if s != nil && r != nil {
			s.derive(ev.Seq, baseSegment)
			if ev.Flags&event.ACK != 0 {
				r.derive(ev.Ack, baseSegment)
			}
		}
		relNumbers(ev, s, r)
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
	if c == nil {
		return
	}
	l, r := c.sideOf(local), c.sideOf(remote)
	kernelBase(ev, l, r)
	t.track(c, ev, r, l)
	relNumbers(ev, r, l)
}

func (t *Tracker) connect(ev *event.Event, c *connection, local endpoint) {
	t.recordOwner(ev, c, local)
	if c == nil || ev.Ret != 0 {
		return
	}
	if s := c.sideOf(local); s != nil {
		s.learnISN(ev.ISN, baseConnect)
	}
}

// state ends the connection when its sockets have gone to CLOSE: both of
// them, or the only one on this host (the peer never produced a socket
// event), or a connecting socket that never got a port. Before that, it
// gives a connection traced from the middle its bases from the kernel.
func (t *Tracker) state(ev *event.Event, c *connection, local endpoint) {
	t.recordOwner(ev, c, local)
	if c == nil {
		return
	}
	s := c.sideOf(local)
	if s == nil {
		return
	}
	kernelBase(ev, s, c.peerOf(s))
	if ev.NewState != event.StateClose {
		return
	}
	s.closed = true
	peer := c.peerOf(s)
	if peer.closed || !peer.local || c.pending {
		t.end(c)
	}
}

// kernelBase derives bases from the kernel's view of a socket (local)
// when tracing started mid-connection and no segment of that direction
// was seen yet: snd_una is the local side's relative 1 (as after a SYN),
// rcv_nxt the peer's. A socket still in its handshake gives nothing: the
// handshake will give the real ISNs.
func kernelBase(ev *event.Event, local, peer *side) {
	switch ev.OldState {
	case 0, event.StateClose, event.StateListen, event.StateSynSent:
		return
	}
	if local != nil && ev.SndUna != 0 {
		local.derive(ev.SndUna, baseKernel)
	}
	if peer != nil && ev.RcvNxt != 0 {
		peer.derive(ev.RcvNxt, baseKernel)
	}
}

// track learns ISNs and notices the end of the connection from one segment
// sent by s to r.
func (t *Tracker) track(c *connection, ev *event.Event, s, r *side) {
	if s == nil || r == nil {
		return
	}
	if ev.Flags&event.SYN != 0 {
		s.learnISN(ev.Seq, baseSYN)
	} else {
		c.nonSYN = true
	}
	if ev.Flags&event.FIN != 0 && !s.finSent {
		s.finEnd, s.finSent = event.Seq(ev.Seq).Add(ev.Len+1), true
	}
	if ev.Flags&event.ACK != 0 && r.finSent && event.Seq(ev.Ack).GE(r.finEnd) {
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
