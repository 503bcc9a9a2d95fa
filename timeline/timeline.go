// Package timeline groups annotated events into connections: each segment
// with the state change it caused and the analysis package's findings, and
// a summary when the connection ends. Which end is client and server and
// the relative numbers are conn.Tracker's, read from the events. It is pure Go and bounded in memory:
// ended connections are summarised and dropped, idle ones expire, and a
// hard cap evicts the least recently active.
package timeline

import (
	"sort"
	"strings"
	"time"

	"tcptracer/event"
)

// Options bound the timeline; zero values take the defaults.
type Options struct {
	// IdleTimeout ends a connection with no event for this long, measured
	// in event time (TS), not wall time. Default 5 minutes.
	IdleTimeout time.Duration
	// MaxConns is the most connections held at once; beyond it the least
	// recently active one is ended as "evicted". Default 4096.
	MaxConns int
	// MaxSegments is the most segments kept per connection for the
	// ladder; later ones are still analysed and counted. Default 10000.
	MaxSegments int
	// RetransmitWindow is how far apart in time a kernel retransmit event
	// and the wire segments of its range may be and still match; of
	// several sendings within it, the nearest to the event wins. Default
	// 100ms: well below the 200ms minimum RTO that separates two
	// retransmissions by timer, and wide enough for a slow (emulated)
	// machine between the transmission and the tracepoint.
	RetransmitWindow time.Duration
	// KernelRetransmits says the retransmit tracepoint is attached, so a
	// segment without a kernel event is known not to be a retransmission.
	// It is also turned on by a start event listing a retransmit hook or
	// by the first retransmit event.
	KernelRetransmits bool
	// MaxMemory bounds, in bytes, what the timeline holds: connections
	// and their history (segments with their findings, state changes).
	// Beyond it the oldest history of the least recently active
	// connections is dropped first, counted in their summaries (Dropped
	// says what went); if the connections alone exceed it, the least
	// recently active are ended as "evicted". Default 256 MiB.
	MaxMemory int64
	// OnEnd, if set, is called with each connection as it ends (the same
	// connections Feed and Flush return).
	OnEnd func(*Conn)
}

func (o *Options) defaults() {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 4096
	}
	if o.MaxSegments <= 0 {
		o.MaxSegments = 10000
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	if o.RetransmitWindow <= 0 {
		o.RetransmitWindow = 100 * time.Millisecond
	}
}

// DefaultMaxMemory is Options.MaxMemory's default, sized for a small host.
const DefaultMaxMemory = 256 << 20

// Result is what one Feed produced. Its pointers are valid until the next
// Feed or Flush.
type Result struct {
	// Segment is the record made for a non-duplicate segment event:
	// relative numbers, findings, violations. Nil for other events.
	Segment *Segment
	// Updated lists earlier segments whose kernel retransmit flag this
	// event set (the kernel event came after the segment).
	Updated []*Segment
	// State is the state change this event recorded, nil for other events.
	State *StateChange
	// Conn is the connection the event went to, nil when none (it may
	// also be in Ended).
	Conn *Conn
	// Ended lists the connections that ended with this event (closed,
	// reset, idle, evicted), each with its Summary.
	Ended []*Conn
}

// Timeline holds the open connections.
type Timeline struct {
	opts   Options
	conns  map[uint64]*Conn
	lru    lruList
	ended  recentSet // ids of ended connections, so stragglers are ignored
	tuples tupleSet  // recent 4-tuples, for reused_ports
	now    uint64
	res    Result
	// Connections reset but not yet ended: a socket's RST went out before
	// the kernel reported sending it (an abortive close closes first).
	resetWait []*Conn
	mem       int64 // bytes held, as Conn.memory counts them
}

// resetGrace bounds, in event time, the wait for the kernel's report of a
// reset whose RST segment was already seen.
const resetGrace = 50 * time.Millisecond

// New returns an empty timeline.
func New(opts Options) *Timeline {
	opts.defaults()
	return &Timeline{
		opts:   opts,
		conns:  make(map[uint64]*Conn),
		ended:  newRecentSet(4 * opts.MaxConns),
		tuples: newTupleSet(4 * opts.MaxConns),
		mem:    setsBytes(4 * opts.MaxConns),
	}
}

// Memory returns the bytes held, as the bound counts them.
func (t *Timeline) Memory() int64 { return t.mem }

// Len returns how many connections are held.
func (t *Timeline) Len() int { return len(t.conns) }

// Feed adds one event. The event is not kept: the caller may reuse it.
func (t *Timeline) Feed(ev *event.Event) Result {
	t.res = Result{}
	if ev.TS > t.now {
		t.now = ev.TS
	}
	switch ev.Type {
	case event.TypeStart:
		t.start(ev.Start)
		return t.res
	case event.TypeLost:
		t.markLossy(ev.Index)
		return t.res
	}
	t.expire()
	if ev.Conn == 0 || t.ended.has(ev.Conn) {
		return t.res
	}
	c := t.conn(ev)
	if c == nil {
		return t.res
	}
	t.res.Conn = c
	c.LastTS = max(c.LastTS, ev.TS)
	c.endpoints(ev)
	c.relDerived = c.relDerived || ev.RelDerived
	t.dispatch(c, ev)
	t.account(c)
	switch reason := c.finished(); {
	case reason != "":
		t.finish(c, reason)
	case c.rstWaitUntil == 0 && c.rst && c.resetsPending() && c.allClosed():
		c.rstWaitUntil = ev.TS + uint64(resetGrace)
		t.resetWait = append(t.resetWait, c)
	}
	// Reclaimed after the event, so the bound holds between events. The
	// Result's segments stay readable: dropping history copies the kept
	// ones to a smaller slice and leaves the old one to the collector.
	if t.mem > t.opts.MaxMemory {
		t.reclaim()
	}
	return t.res
}

// endResetWaits ends the reset connections whose grace has passed.
func (t *Timeline) endResetWaits() {
	keep := t.resetWait[:0]
	for _, c := range t.resetWait {
		switch {
		case t.conns[c.ID] != c: // ended meanwhile
		case t.now > c.rstWaitUntil:
			t.finish(c, "reset")
		default:
			keep = append(keep, c)
		}
	}
	t.resetWait = keep
}

func (t *Timeline) dispatch(c *Conn, ev *event.Event) {
	switch ev.Type {
	case event.TypeSegment:
		t.segment(c, ev)
	case event.TypeConnect:
		c.connect(ev)
	case event.TypeState:
		c.state(ev)
		t.res.State = &c.States[len(c.States)-1]
		c.senderState(ev)
	case event.TypeRcvState:
		c.rcvState(ev)
	case event.TypeRetransmit:
		t.opts.KernelRetransmits = true
		if s := c.kernelRetransmit(ev, uint64(t.opts.RetransmitWindow)); s != nil {
			t.res.Updated = append(t.res.Updated, s)
		}
		c.retransmitted(ev, ev.Side)
	case event.TypeDrop:
		c.drop(ev)
	case event.TypeReset:
		c.reset(ev)
	}
}

// Flush ends every connection still held (reason "flush"), oldest first.
func (t *Timeline) Flush() []*Conn {
	t.res = Result{}
	all := make([]*Conn, 0, len(t.conns))
	for _, c := range t.conns {
		all = append(all, c)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	for _, c := range all {
		t.finish(c, "flush")
	}
	return t.res.Ended
}

func (t *Timeline) start(s *event.Start) {
	if s == nil {
		return
	}
	for _, h := range s.Hooks {
		if strings.Contains(h.Name, "retransmit") {
			t.opts.KernelRetransmits = true
		}
	}
}

// markLossy records that events were lost at stream position index: any
// open connection may have lost some, so the rules that need their history
// are not judged until each direction is seen again. A connection first
// seen later starts afresh (its lost records, if any, came before it).
func (t *Timeline) markLossy(index uint64) {
	for _, c := range t.conns {
		c.an.Loss(index)
	}
}

// conn finds or creates the event's connection, making room under the cap.
func (t *Timeline) conn(ev *event.Event) *Conn {
	if c, ok := t.conns[ev.Conn]; ok {
		t.lru.touch(c.elem)
		return c
	}
	if !ev.Saddr.IsValid() || !ev.Daddr.IsValid() {
		return nil
	}
	c := newConn(ev.Conn)
	c.RolesGuessed = ev.RolesGuessed
	c.FirstTS, c.segCap = ev.TS, t.opts.MaxSegments
	for len(t.conns) >= t.opts.MaxConns {
		t.finish(t.lru.oldest(), "evicted")
	}
	t.conns[c.ID] = c
	c.elem = t.lru.push(c)
	return c
}

// expire ends connections idle for longer than IdleTimeout, and reset
// ones that waited long enough for the kernel's report.
func (t *Timeline) expire() {
	if len(t.resetWait) > 0 {
		t.endResetWaits()
	}
	idle := uint64(t.opts.IdleTimeout)
	for c := t.lru.oldest(); c != nil && c.LastTS+idle < t.now; c = t.lru.oldest() {
		t.finish(c, "idle")
	}
}

// finish summarises a connection and drops it.
func (t *Timeline) finish(c *Conn, reason string) {
	c.end = reason
	c.Summary = c.summarise(t.opts.KernelRetransmits)
	delete(t.conns, c.ID)
	t.lru.remove(c.elem)
	t.mem -= c.mem
	// A connection summarised because it was idle or made room is still
	// open for conn, which keeps its id: its later events start a new
	// timeline of the same id (and a second summary), not silence.
	if reason != "idle" && reason != "evicted" {
		t.ended.add(c.ID)
	}
	t.res.Ended = append(t.res.Ended, c)
	if t.opts.OnEnd != nil {
		t.opts.OnEnd(c)
	}
}
