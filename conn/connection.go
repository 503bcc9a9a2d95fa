package conn

import (
	"net/netip"

	"tcptracer/event"
)

type owner struct {
	pid, tgid, uid uint32
	comm           string
	known          bool
}

// side is what the tracker knows about one end of a connection.
type side struct {
	ep       endpoint
	role     event.Side
	base     event.Seq // base of this side's relative numbers, when from is set
	from     base
	finEnd   event.Seq // sequence number just after this side's FIN
	finSent  bool
	finAcked bool
	closed   bool // this end's socket went to CLOSE
	local    bool // a socket event came from this end: it is on this host
	owner    owner
}

// base says where a side's relative-number base came from.
type base uint8

const (
	baseNone    base = iota
	baseSYN          // the side's SYN (or SYN-ACK): its ISN
	baseConnect      // the connect event's ISN
	baseKernel       // the kernel's snd_una or rcv_nxt, minus one, from a state or rcv_state event
	baseSegment      // the side's first seq (or the peer's first ack), minus one, as Wireshark does
)

// derived says the base is not an ISN the side announced.
func (b base) derived() bool { return b == baseKernel || b == baseSegment }

// announced says the side's ISN is known: from its SYN or connect.
func (s *side) announced() bool { return s.from == baseSYN || s.from == baseConnect }

// learnISN sets the base from an announced ISN; it replaces a derived base.
func (s *side) learnISN(isn uint32, from base) {
	if !s.announced() {
		s.base, s.from = event.Seq(isn), from
	}
}

// derive sets a derived base, one before n, when no base is known.
func (s *side) derive(n uint32, from base) {
	if s.from == baseNone {
		s.base, s.from = event.Seq(n)-1, from
	}
}

type connection struct {
	id      uint64
	key     tupleKey
	keyed   bool // key is registered in byTuple (false while pending)
	pkey    partialKey
	pending bool
	sides   [2]side
	nonSYN  bool // a segment without SYN was seen: the handshake is over
	// rolesSet says sides[].role is decided (on the connection's first
	// event); rolesGuessed that no opening told it.
	rolesSet     bool
	rolesGuessed bool
	ended        bool
	endTS        uint64
	cookies      [maxCookies]uint64
	ncookie      int

	prev, next   *connection // in Tracker.live
	eprev, enext *connection // in Tracker.ended
}

func (c *connection) sideOf(e endpoint) *side {
	switch e {
	case c.sides[0].ep:
		return &c.sides[0]
	case c.sides[1].ep:
		return &c.sides[1]
	}
	return nil
}

func (c *connection) peerOf(s *side) *side {
	if s == &c.sides[0] {
		return &c.sides[1]
	}
	return &c.sides[0]
}

// relNumbers sets SeqRel from the sender's base and, for an ACK, AckRel
// from the receiver's. Unknown bases leave the Has flags false.
func relNumbers(ev *event.Event, sender, receiver *side) {
	if sender != nil && sender.from != baseNone {
		ev.SeqRel, ev.HasSeqRel = uint32(event.Seq(ev.Seq)-sender.base), true
		ev.RelDerived = sender.from.derived()
	}
	if ev.Flags&event.ACK == 0 || receiver == nil || receiver.from == baseNone {
		return
	}
	ev.AckRel, ev.HasAckRel = uint32(event.Seq(ev.Ack)-receiver.base), true
	ev.RelDerived = ev.RelDerived || receiver.from.derived()
}

// publishSide tells the event which end its source is, deciding the roles
// on the connection's first event.
func (c *connection) publishSide(ev *event.Event, src, dst endpoint) {
	if !c.rolesSet {
		c.setRoles(ev, src, dst)
	}
	ev.RolesGuessed = c.rolesGuessed
	if s := c.sideOf(src); s != nil {
		ev.Side = s.role
	} else if d := c.sideOf(dst); d != nil {
		ev.Side = d.role.Peer()
	}
}

// setRoles decides client and server from the connection's first event:
// the opening when it is one (SYN, SYN-ACK, connect, SYN_SENT, a
// listener's SYN_RECV), else a guess.
func (c *connection) setRoles(ev *event.Event, src, dst endpoint) {
	client := src
	syn := ev.Type == event.TypeSegment && ev.Flags&event.SYN != 0
	switch {
	case syn && ev.Flags&event.ACK == 0, ev.Type == event.TypeConnect:
	case syn:
		client = dst
	case ev.Type == event.TypeState && ev.NewState == event.StateSynSent:
	case ev.Type == event.TypeState && ev.OldState == event.StateListen:
		client = dst
	default:
		client = guessClient(src, dst)
		c.rolesGuessed = true
	}
	c.rolesSet = true
	for i := range c.sides {
		c.sides[i].role = event.Server
		if c.sides[i].ep == client {
			c.sides[i].role = event.Client
		}
	}
	if c.sides[0].role == c.sides[1].role { // client is not one of the ends (pending, unspecified address)
		c.sides[0].role, c.sides[1].role = event.Client, event.Server
		if c.sideOf(dst) == &c.sides[0] {
			c.sides[0].role, c.sides[1].role = event.Server, event.Client
		}
	}
}

// guessClient picks the server as the endpoint with a port below the
// ephemeral range when only one has one, else the first sender is the client.
func guessClient(src, dst endpoint) endpoint {
	const ephemeral = 32768
	if src.port < ephemeral && dst.port >= ephemeral {
		return dst
	}
	return src
}

// attribute gives a segment the owner of the socket that observed it
// locally, or says no process is known.
func (c *connection) attribute(ev *event.Event, local endpoint) {
	var o owner
	if c != nil {
		if s := c.sideOf(local); s != nil {
			o = s.owner
		}
	}
	ev.PID, ev.TGID, ev.UID, ev.Comm = o.pid, o.tgid, o.uid, o.comm
	ev.PIDSrc = event.PIDNone
	if o.known {
		ev.PIDSrc = event.PIDOwner
	}
}

// resolve finds or creates the connection of ev, or returns nil when the
// event names no connection (a listening socket, an unbound socket with no
// cookie).
func (t *Tracker) resolve(ev *event.Event, fam uint8, src, dst endpoint) *connection {
	cookie := connCookie(ev)
	if cookie != 0 {
		if c := t.byCookie[cookie]; c != nil {
			if c.pending && src.complete() && dst.complete() {
				c = t.settle(c, makeKey(fam, src, dst))
			}
			return c
		}
	}
	if !dst.complete() {
		return nil
	}
	if !src.complete() {
		if cookie == 0 {
			return nil
		}
		c := t.newPending(partialKey{family: fam, local: src.addr, remote: dst})
		t.addCookie(c, cookie)
		return c
	}
	key := makeKey(fam, src, dst)
	c := t.byTuple[key]
	if c == nil || startsGeneration(c, ev, src, dst) {
		c = t.adoptPending(ev, fam, src, dst)
		if c == nil {
			c = t.newConn()
		}
		t.bind(c, key)
	}
	if cookie != 0 {
		t.addCookie(c, cookie)
	}
	return c
}

// connCookie returns the event's socket cookie if it names a connection's
// socket. A listening socket's cookie does not: it handles the SYNs of
// every connection to its port.
func connCookie(ev *event.Event) uint64 {
	if ev.Type != event.TypeConnect && (ev.OldState == event.StateListen || ev.NewState == event.StateListen) {
		return 0
	}
	return ev.Cookie
}

// startsGeneration says whether ev, on a tuple that already has connection
// c, begins a new connection on the same tuple (port reuse).
func startsGeneration(c *connection, ev *event.Event, src, dst endpoint) bool {
	switch ev.Type {
	case event.TypeSegment, event.TypeRcvState:
		if ev.Flags&(event.SYN|event.ACK) != event.SYN {
			return false
		}
		sender := src
		if ev.Type == event.TypeRcvState {
			sender = dst
		}
		return c.ended || newISN(c.sideOf(sender), ev.Seq, c.nonSYN)
	case event.TypeState:
		if ev.NewState != event.StateSynSent {
			return false
		}
		s := c.sideOf(src)
		return c.ended || (s != nil && s.announced())
	case event.TypeConnect:
		return ev.Ret == 0 && newISN(c.sideOf(src), ev.ISN, false)
	}
	return false
}

// newISN says whether isn, announced by side s, cannot belong to the
// connection s is part of: it differs from the ISN already known, or the
// connection is past its handshake without one having been seen.
func newISN(s *side, isn uint32, pastHandshake bool) bool {
	if s == nil {
		return false
	}
	if s.announced() {
		return s.base != event.Seq(isn)
	}
	return pastHandshake
}

// adoptPending returns the connecting socket first seen without a local
// port, when ev is the SYN it sends or its connect record.
func (t *Tracker) adoptPending(ev *event.Event, fam uint8, src, dst endpoint) *connection {
	syn := ev.Type == event.TypeSegment && ev.Flags&(event.SYN|event.ACK) == event.SYN
	// kprobe mode's connect record has no cookie and may come before the
	// SYN's; it names the connecting socket as surely as the SYN does.
	if !syn && ev.Type != event.TypeConnect {
		return nil
	}
	if c := t.pending[partialKey{family: fam, local: src.addr, remote: dst}]; c != nil {
		return c
	}
	// An IPv6 socket reports SYN_SENT before its source address is chosen.
	return t.pending[partialKey{family: fam, local: netip.IPv6Unspecified(), remote: dst}]
}

// settle gives pending connection c its full tuple. If segments already
// made a live connection on that tuple (the SYN went out before anything
// tied it to c), that one keeps the tuple and takes over c's cookies and
// what c knew about its local socket.
func (t *Tracker) settle(c *connection, key tupleKey) *connection {
	d := t.byTuple[key]
	if d == nil || d.ended {
		t.bind(c, key)
		return c
	}
	if s := d.sideOf(c.pkey.remote); s != nil {
		local := &d.sides[0]
		if local == s {
			local = &d.sides[1]
		}
		if !local.owner.known {
			local.owner = c.sides[0].owner
		}
		local.local = local.local || c.sides[0].local
	}
	for _, k := range c.cookies[:c.ncookie] {
		t.addCookie(d, k)
	}
	t.drop(c)
	return d
}

func (t *Tracker) newPending(pk partialKey) *connection {
	c := t.newConn()
	c.pkey, c.pending = pk, true
	c.sides[0].ep = endpoint{addr: pk.local}
	c.sides[1].ep = pk.remote
	t.pending[pk] = c
	return c
}

// bind registers c (new or pending) under key, replacing and ending an
// older connection on the same tuple. A pending connection keeps what it
// learned about its two sides: its remote end is already complete, its
// local end gains the port.
func (t *Tracker) bind(c *connection, key tupleKey) {
	if old := t.byTuple[key]; old != nil && old != c {
		old.keyed = false
		t.end(old)
	}
	if c.pending {
		if t.pending[c.pkey] == c {
			delete(t.pending, c.pkey)
		}
		c.pending = false
	}
	c.key, c.keyed = key, true
	t.byTuple[key] = c
	local, remote := c.sides[0], c.sides[1]
	if key.lo == remote.ep {
		c.sides[0], c.sides[1] = remote, local
	}
	c.sides[0].ep, c.sides[1].ep = key.lo, key.hi
}

func (t *Tracker) addCookie(c *connection, cookie uint64) {
	for _, k := range c.cookies[:c.ncookie] {
		if k == cookie {
			return
		}
	}
	if c.ncookie == maxCookies {
		return
	}
	c.cookies[c.ncookie] = cookie
	c.ncookie++
	t.byCookie[cookie] = c
}

func (t *Tracker) newConn() *connection {
	if t.n >= t.maxConns {
		t.drop(t.live.tail)
	}
	c := t.free
	if c != nil {
		t.free = c.next
		*c = connection{}
	} else {
		c = new(connection)
	}
	c.id = t.nextID
	t.nextID++
	t.live.pushFront(c)
	t.n++
	return c
}

// end marks c ended; it is dropped GracePeriod later.
func (t *Tracker) end(c *connection) {
	if c == nil || c.ended {
		return
	}
	c.ended, c.endTS = true, t.now
	t.ended.pushBackEnded(c)
}

// expire drops connections that ended more than the grace period ago.
func (t *Tracker) expire() {
	for c := t.ended.head; c != nil && t.now-c.endTS > t.grace; c = t.ended.head {
		t.drop(c)
	}
}

func (t *Tracker) drop(c *connection) {
	t.live.remove(c)
	if c.ended {
		t.ended.removeEnded(c)
	}
	if c.keyed && t.byTuple[c.key] == c {
		delete(t.byTuple, c.key)
	}
	if c.pending && t.pending[c.pkey] == c {
		delete(t.pending, c.pkey)
	}
	for _, k := range c.cookies[:c.ncookie] {
		if t.byCookie[k] == c {
			delete(t.byCookie, k)
		}
	}
	t.n--
	*c = connection{next: t.free}
	t.free = c
}

// connList is an intrusive doubly linked list; live uses prev/next, ended
// uses eprev/enext, so one connection can be in both without allocating.
type connList struct{ head, tail *connection }

func (l *connList) pushFront(c *connection) {
	c.prev, c.next = nil, l.head
	if l.head != nil {
		l.head.prev = c
	} else {
		l.tail = c
	}
	l.head = c
}

func (l *connList) remove(c *connection) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

func (l *connList) moveToFront(c *connection) {
	if l.head == c {
		return
	}
	l.remove(c)
	l.pushFront(c)
}

func (l *connList) pushBackEnded(c *connection) {
	c.enext, c.eprev = nil, l.tail
	if l.tail != nil {
		l.tail.enext = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *connList) removeEnded(c *connection) {
	if c.eprev != nil {
		c.eprev.enext = c.enext
	} else {
		l.head = c.enext
	}
	if c.enext != nil {
		c.enext.eprev = c.eprev
	} else {
		l.tail = c.eprev
	}
	c.eprev, c.enext = nil, nil
}
