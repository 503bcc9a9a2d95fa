package conn

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"tcptracer/event"
)

// annotate runs groups of events through a new tracker and returns them.
func annotate(groups [][]event.Event) []event.Event {
	tr := NewTracker(ifname)
	var out []event.Event
	for _, g := range groups {
		for i := range g {
			ev := g[i]
			tr.Annotate(&ev)
			out = append(out, ev)
		}
	}
	return out
}

// sides renders each event's side as C or S, with ? when guessed.
func sides(evs []event.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(map[event.Side]string{event.Client: "C", event.Server: "S"}[ev.Side])
		if ev.RolesGuessed {
			b.WriteByte('?')
		}
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// TestRelativeAcrossWrap: with ISNs just below 2^32 the relative numbers
// are those of any other session, and both FINs acked still end it.
func TestRelativeAcrossWrap(t *testing.T) {
	tr := NewTracker(ifname)
	want := run(t, NewTracker(ifname), echoSession(cli, srv, 1000, 5000))
	got := run(t, tr, echoSession(cli, srv, 0xfffffffe, 0xffffffff))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("across the wrap:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c := tr.byTuple[makeKey(4, endpoint{cli.Addr(), cli.Port()}, endpoint{srv.Addr(), srv.Port()})]
	if c == nil || !c.ended {
		t.Errorf("connection not ended by FINs acked across the wrap: %+v", c)
	}
}

// TestKernelBaseMidConnection: traced from the middle, a state event's
// snd_una and rcv_nxt give the bases (each is relative 1), so the first
// segments are numbered from the kernel's view, not from themselves, and
// every number says it is derived.
func TestKernelBaseMidConnection(t *testing.T) {
	st := stateEv(cli, srv, 7, event.StateEstablished, event.StateFinWait1)
	st.SndUna, st.SndNxt, st.RcvNxt = 0xffffffc0, 0x20, 5000 // 96 bytes in flight, across the wrap
	evs := annotate([][]event.Event{
		one(st),
		wire(srv, cli, 5000, 0x20, ack, 0),     // acks everything in flight
		wire(cli, srv, 0x20, 5000, fin|ack, 0), // the client's FIN
		wire(srv, cli, 5000, 0x21, fin|ack, 0), // the server's FIN
		one(retransmit(cli, srv, 7, 0x20)),     // a retransmit event carries seq_rel too
	})
	got := make([]string, len(evs))
	for i := range evs {
		got[i] = describe(&evs[i])
	}
	want := []string{
		"1 c1 state",
		"2 c1 segment seq=1 ack=97 derived lo", "3 c1 segment seq=1 ack=97 derived lo twin=2",
		"4 c1 segment seq=97 ack=1 derived lo", "5 c1 segment seq=97 ack=1 derived lo twin=4",
		"6 c1 segment seq=1 ack=98 derived lo", "7 c1 segment seq=1 ack=98 derived lo twin=6",
		"8 c1 retransmit seq=97 ack=- derived",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("annotations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := sides(evs); s != "C? S? S? C? C? S? S? C?" {
		t.Errorf("sides %s; want the client (the ephemeral port) guessed on every event", s)
	}
}

// TestSegmentBaseWithoutKernelView: with no state event first, the first
// seq (or the peer's first ack) is relative 1, as in Wireshark.
func TestSegmentBaseWithoutKernelView(t *testing.T) {
	evs := annotate([][]event.Event{wire(cli, srv, 1100, 5000, psh|ack, 10), wire(srv, cli, 5000, 1110, ack, 0)})
	for _, ev := range evs {
		if !ev.RelDerived || !ev.HasSeqRel || !ev.HasAckRel {
			t.Fatalf("event %d: derived %v has seq %v ack %v", ev.Index, ev.RelDerived, ev.HasSeqRel, ev.HasAckRel)
		}
	}
	if got := fmt.Sprint(evs[0].SeqRel, evs[0].AckRel, evs[2].SeqRel, evs[2].AckRel); got != "1 1 1 11" {
		t.Errorf("relative numbers %s, want 1 1 1 11", got)
	}
}

// TestRolesPublished: the opening decides the roles and every event of the
// connection carries them; without an opening they are guessed.
func TestRolesPublished(t *testing.T) {
	noPort := netip.AddrPortFrom(cli.Addr(), 0)
	high := netip.MustParseAddrPort("127.0.0.1:50000")
	for _, c := range []struct {
		name   string
		groups [][]event.Event
		want   string
	}{
		{"handshake", echoSession(cli, srv, 1000, 5000)[:3], "C C S S C C"},
		{"pending connecting socket, then its SYN",
			[][]event.Event{one(stateEv(noPort, srv, 9, event.StateClose, event.StateSynSent)), wire(cli, srv, 1000, 0, syn, 0),
				wire(srv, cli, 5000, 1001, syn|ack, 0)}, "C C C S S"},
		{"SYN-ACK first: its sender is the server", [][]event.Event{wire(srv, cli, 5000, 1001, syn|ack, 0)}, "S S"},
		{"listener's child first", [][]event.Event{one(stateEv(srv, cli, 0, event.StateListen, event.StateSynRecv))}, "S"},
		{"mid-connection, server sends first", [][]event.Event{wire(srv, cli, 5000, 1001, ack, 0), wire(cli, srv, 1001, 5000, ack, 0)},
			"S? S? C? C?"},
		{"mid-connection, both ports ephemeral: the first sender is the client",
			[][]event.Event{wire(high, cli, 5000, 1001, ack, 0), wire(cli, high, 1001, 5000, ack, 0)}, "C? C? S? S?"},
	} {
		if got := sides(annotate(c.groups)); got != c.want {
			t.Errorf("%s: sides %s, want %s", c.name, got, c.want)
		}
	}
}
