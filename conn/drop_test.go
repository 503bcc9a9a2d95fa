package conn

import (
	"testing"

	"tcptracer/event"
)

// A drop names the latest observation of the segment it freed: same sender,
// seq, ack, flags and length, on the same connection; an ack that differs
// names none.
func TestDropTiedToSegment(t *testing.T) {
	tr := NewTracker(ifname)
	seg := func(dir event.Dir, wire bool, seq, an uint32) *event.Event {
		ev := &event.Event{Type: event.TypeSegment, Ifindex: lo, Dir: dir, Wire: wire, Seq: seq, Ack: an, Flags: psh | ack, Len: 2}
		tuple(ev, cli, srv)
		tr.Annotate(ev)
		return ev
	}
	seg(event.Egress, false, 1001, 5001)
	ingress := seg(event.Ingress, true, 1001, 5001)
	seg(event.Egress, false, 1003, 5001) // a later segment of the same sender
	drop := &event.Event{Type: event.TypeDrop, Ifindex: lo, Seq: 1001, Ack: 5001, Flags: psh | ack, Len: 2}
	tuple(drop, cli, srv)
	tr.Annotate(drop)
	if drop.Drop.Segment != ingress.Index || drop.Conn != ingress.Conn || drop.Iface != "lo" {
		t.Errorf("drop tied to #%d on conn %d (%q), want #%d on conn %d", drop.Drop.Segment, drop.Conn, drop.Iface, ingress.Index, ingress.Conn)
	}
	other := &event.Event{Type: event.TypeDrop, Seq: 1001, Ack: 5000, Flags: psh | ack, Len: 2}
	tuple(other, cli, srv)
	tr.Annotate(other)
	if other.Drop.Segment != 0 {
		t.Errorf("a drop with another ack tied to #%d", other.Drop.Segment)
	}
}
