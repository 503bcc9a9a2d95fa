package conn

import "tcptracer/event"

// recentSegs is how many segment observations a drop may be matched
// against: the kernel frees a dropped skb within the same softirq or
// transmit call that the tracer saw it in, so only the last few matter.
const recentSegs = 64

// recentSeg is what identifies a segment observation for a drop.
type recentSeg struct {
	index    uint64
	conn     uint64
	src      endpoint
	seq, ack uint32
	len      uint32
	flags    uint16
}

// recentTable remembers the latest segment observations in a ring.
type recentTable struct {
	ring [recentSegs]recentSeg
	n    int
}

func (r *recentTable) add(ev *event.Event, src endpoint) {
	if ev.Conn == 0 {
		return
	}
	r.ring[r.n%recentSegs] = recentSeg{index: ev.Index, conn: ev.Conn, src: src,
		seq: ev.Seq, ack: ev.Ack, len: ev.Len, flags: ev.Flags}
	r.n++
}

// find returns the Index of the latest observation of the segment a drop
// event describes (same connection, sender, seq, ack, flags and length), or 0.
func (r *recentTable) find(ev *event.Event, src endpoint) uint64 {
	if ev.Conn == 0 {
		return 0
	}
	for i := 1; i <= min(r.n, recentSegs); i++ {
		s := &r.ring[(r.n-i)%recentSegs]
		if s.conn == ev.Conn && s.src == src && s.seq == ev.Seq && s.ack == ev.Ack && s.len == ev.Len && s.flags == ev.Flags {
			return s.index
		}
	}
	return 0
}

// dropped ties a drop event to the segment it freed and gives it the
// connection's relative numbers (the tuple is the packet's: src sent it).
func (t *Tracker) dropped(ev *event.Event, c *connection, src, dst endpoint) {
	if ev.Ifindex != 0 {
		t.setIface(ev)
	}
	ev.Drop.Segment = t.recent.find(ev, src)
	if c != nil {
		relNumbers(ev, c.sideOf(src), c.sideOf(dst))
	}
}
