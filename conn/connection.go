package conn

import (
	"net/netip"

	"tcptracer/event"
)

// Kernel TCP state numbers used here (see event.StateName).
const (
	stateSynSent = 2
	stateClose   = 7
	stateListen  = 10
)

type owner struct {
	pid, tgid, uid uint32
	comm           string
	known          bool
}

// side is what the tracker knows about one end of a connection.
type side struct {
	ep       endpoint
	isn      uint32
	hasISN   bool
	finEnd   uint32 // sequence number just after this side's FIN
	finSent  bool
	finAcked bool
	closed   bool // this end's socket went to CLOSE
	local    bool // a socket event came from this end: it is on this host
	owner    owner
}

type connection struct {
	id      uint64
	key     tupleKey
	keyed   bool // key is registered in byTuple (false while pending)
	pkey    partialKey
	pending bool
	sides   [2]side
	nonSYN  bool // a segment without SYN was seen: the handshake is over
	ended   bool
	endTS   uint64
	cookies [maxCookies]uint64
	ncookie int

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

// relNumbers sets SeqRel from the sender's ISN and, for an ACK, AckRel
// from the receiver's. Unknown ISNs leave the Has flags false.
func (c *connection) relNumbers(ev *event.Event, sender, receiver endpoint) {
	if c == nil {
		return
	}
	if s := c.sideOf(sender); s != nil && s.hasISN {
		ev.SeqRel, ev.HasSeqRel = ev.Seq-s.isn, true
	}
	if ev.Flags&event.ACK == 0 {
		return
	}
	if r := c.sideOf(receiver); r != nil && r.hasISN {
		ev.AckRel, ev.HasAckRel = ev.Ack-r.isn, true
	}
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
	if ev.Type != event.TypeConnect && (ev.OldState == stateListen || ev.NewState == stateListen) {
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
		if ev.NewState != stateSynSent {
			return false
		}
		s := c.sideOf(src)
		return c.ended || (s != nil && s.hasISN)
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
	if s.hasISN {
		return s.isn != isn
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
