package conn

import (
	"testing"

	"tcptracer/event"
)

// gso is a TC egress observation of a super-packet of n bytes cut in
// gsoSize pieces.
func gso(ifindex uint32, seq, n uint32, gsoSize uint16, flags uint16) event.Event {
	ev := seg(ifindex, event.Egress, cli, srv, seq, 1, flags, n)
	ev.GSOSize, ev.GSOSegs = gsoSize, uint16((n+uint32(gsoSize)-1)/uint32(gsoSize))
	return ev
}

func xmit(ifindex uint32, seq, n uint32, flags uint16) event.Event {
	ev := seg(ifindex, event.Egress, cli, srv, seq, 1, flags, n)
	ev.Point = event.PointXmit
	return ev
}

type twinWant struct {
	wire   bool
	twinOf uint64
}

func checkTwins(t *testing.T, evs []event.Event, want []twinWant) {
	t.Helper()
	tr := NewTracker(ifname)
	for i := range evs {
		tr.Annotate(&evs[i])
		got := twinWant{evs[i].Wire, evs[i].TwinOf}
		if got != want[i] {
			t.Errorf("event %d (%s %s seq=%d len=%d): wire=%v twin_of=%d, want wire=%v twin_of=%d",
				evs[i].Index, evs[i].Dir, evs[i].Point, evs[i].Seq, evs[i].Len, got.wire, got.twinOf, want[i].wire, want[i].twinOf)
		}
	}
}

func TestTwinsGSOPiecesOnLoopback(t *testing.T) {
	const mss = 65483
	evs := []event.Event{
		gso(lo, 1000, 2*mss, mss, ack|psh|cwr),
		seg(lo, event.Ingress, cli, srv, 1000, 1, ack|cwr, mss),     // first piece: no PSH
		seg(lo, event.Ingress, cli, srv, 1000+mss, 1, ack|psh, mss), // last piece: no CWR
	}
	checkTwins(t, evs, []twinWant{{false, 0}, {true, 1}, {true, 1}})
}

func TestTwinsGSOWholeOnLoopback(t *testing.T) {
	evs := []event.Event{
		gso(lo, 1000, 3000, 1448, ack|psh),
		seg(lo, event.Ingress, cli, srv, 1000, 1, ack|psh, 3000),
	}
	checkTwins(t, evs, []twinWant{{false, 0}, {true, 1}})
}

func TestTwinsSoftwareGSOOnVeth(t *testing.T) {
	evs := []event.Event{
		gso(3, 1, 1448*2+100, 1448, ack|psh|fin),
		xmit(3, 1, 1448, ack),
		xmit(3, 1+1448, 1448, ack),
		xmit(3, 1+2*1448, 100, ack|psh|fin),
		xmit(3, 1+2*1448, 100, ack|psh|fin), // a second transmission: nothing left to pair
	}
	checkTwins(t, evs, []twinWant{{false, 0}, {true, 1}, {true, 1}, {true, 1}, {true, 0}})
}

func TestTwinsPieceWithWrongFlagsDoesNotPair(t *testing.T) {
	evs := []event.Event{
		gso(lo, 1000, 2000, 1000, ack|fin),
		seg(lo, event.Ingress, cli, srv, 1000, 1, ack|fin, 1000), // FIN on a piece that is not the last
		seg(lo, event.Ingress, cli, srv, 1000, 1, ack, 999),      // not a whole piece
	}
	checkTwins(t, evs, []twinWant{{false, 0}, {true, 0}, {true, 0}})
}

func TestTwinsIngressOnOtherInterfaceIsWireAlone(t *testing.T) {
	evs := []event.Event{
		seg(2, event.Ingress, srv, cli, 5000, 1001, ack, 10),
		xmit(2, 1001, 10, ack), // no TC egress sighting before it
	}
	checkTwins(t, evs, []twinWant{{true, 0}, {true, 0}})
}

// TestTwinsBurst: a burst of sightings whose seqs are a power of two apart
// (32 KiB segments on lo, the ingress copies still queued) all wait for
// their twins; none is pushed out of the table by the others.
func TestTwinsBurst(t *testing.T) {
	const n, size = 64, 32768
	var evs []event.Event
	var want []twinWant
	for i := range uint32(n) {
		evs = append(evs, seg(lo, event.Egress, cli, srv, 1000+i*size, 1, ack, size))
		want = append(want, twinWant{false, 0})
	}
	for i := range uint32(n) {
		evs = append(evs, seg(lo, event.Ingress, cli, srv, 1000+i*size, 1, ack, size))
		want = append(want, twinWant{true, uint64(i + 1)})
	}
	checkTwins(t, evs, want)
}
