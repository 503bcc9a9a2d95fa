package timeline

import (
	"container/list"
	"net/netip"
)

type lruElem = list.Element

// lruList orders connections by last activity, oldest at the back.
type lruList struct{ l list.List }

func (l *lruList) push(c *Conn) *lruElem { return l.l.PushFront(c) }
func (l *lruList) touch(e *lruElem)      { l.l.MoveToFront(e) }
func (l *lruList) remove(e *lruElem)     { l.l.Remove(e) }

func (l *lruList) oldest() *Conn {
	if e := l.l.Back(); e != nil {
		return e.Value.(*Conn)
	}
	return nil
}

// newer returns the connection active just after c, or nil.
func (l *lruList) newer(c *Conn) *Conn {
	if e := c.elem.Prev(); e != nil {
		return e.Value.(*Conn)
	}
	return nil
}

// recentSet remembers the last n ids added, forgetting the oldest.
type recentSet struct {
	ids  map[uint64]struct{}
	ring []uint64
	next int
}

func newRecentSet(n int) recentSet {
	return recentSet{ids: make(map[uint64]struct{}, n), ring: make([]uint64, n)}
}

func (r *recentSet) has(id uint64) bool { _, ok := r.ids[id]; return ok }

func (r *recentSet) add(id uint64) {
	if old := r.ring[r.next]; old != 0 {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// tuple is a connection's endpoints, client first.
type tuple struct{ client, server netip.AddrPort }

// tupleSet remembers which connection last used a 4-tuple, for the last n
// tuples, so a new SYN on a used tuple can be flagged reused_ports.
type tupleSet struct {
	conn map[tuple]uint64
	ring []tuple
	next int
}

func newTupleSet(n int) tupleSet {
	return tupleSet{conn: make(map[tuple]uint64, n), ring: make([]tuple, n)}
}

// use records id on k and returns the id that used k before (0 if none).
func (s *tupleSet) use(k tuple, id uint64) uint64 {
	prev, ok := s.conn[k]
	if !ok {
		if old := s.ring[s.next]; old != (tuple{}) {
			delete(s.conn, old)
		}
		s.ring[s.next] = k
		s.next = (s.next + 1) % len(s.ring)
	}
	s.conn[k] = id
	if prev == id {
		return 0
	}
	return prev
}
