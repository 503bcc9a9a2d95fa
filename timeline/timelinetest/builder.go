// Package timelinetest builds synthetic, already annotated event streams
// (connection id, Index, loopback duplicates, kernel views) for the tests
// of the timeline, analysis and output packages. The connection model's
// annotations (sides, relative numbers) come from a conn.Tracker the
// builder runs over each event, as the tracer does, so tests see what the
// one model publishes.
package timelinetest

import (
	"net/netip"
	"strings"

	"tcptracer/conn"
	"tcptracer/event"
)

// Sides, as the timeline numbers them.
const (
	Client = 0
	Server = 1
)

// Builder appends events to Events. Seq and ack numbers are given
// relative to each side's ISN and stored absolute.
type Builder struct {
	Events   []event.Event
	Conn     uint64
	Ends     [2]netip.AddrPort
	ISN      [2]uint32
	Loopback bool   // emit each segment twice: TC egress (not wire), then its ingress twin (wire)
	Step     uint64 // ns between events
	Win      uint16 // window for segments that are not SYNs
	TS       uint64
	// Senders gives each TC egress record the sending socket's state:
	// snd_nxt and rcv_nxt as the kernel has them, Cwnd and SRTT (µs).
	Senders bool
	Cwnd    uint32
	SRTT    uint32
	CA      uint8
	index   uint64
	sndNxt  [2]uint32
	sndUna  [2]uint32
	rcvNxt  [2]uint32
	tracker *conn.Tracker
}

// New returns a loopback builder for conn 1, client to server.
func New(client, server string) *Builder {
	b := &Builder{Conn: 1, Loopback: true, Step: 10_000, Win: 512, TS: 1_000_000_000,
		ISN: [2]uint32{0x1a2b3c4d, 0x9e8d7c6b}}
	b.Ends[Client] = netip.MustParseAddrPort(client)
	b.Ends[Server] = netip.MustParseAddrPort(server)
	b.sndNxt, b.sndUna = b.ISN, b.ISN
	return b
}

// add appends ev with the connection model's annotations. The builder's
// own Conn, Index, Wire and TwinOf are kept: tests set them on purpose.
func (b *Builder) add(ev event.Event) {
	if b.tracker == nil {
		b.tracker = conn.NewTracker(nil)
	}
	a := ev
	b.tracker.Annotate(&a)
	ev.Side, ev.RolesGuessed = a.Side, a.RolesGuessed
	ev.SeqRel, ev.AckRel, ev.HasSeqRel, ev.HasAckRel, ev.RelDerived = a.SeqRel, a.AckRel, a.HasSeqRel, a.HasAckRel, a.RelDerived
	b.Events = append(b.Events, ev)
}

// From starts the stream in the middle of a connection: each side has
// already sent up to next (relative) and had it acknowledged, which the
// kernel views of later state events report.
func (b *Builder) From(clientNext, serverNext uint32) *Builder {
	for side, n := range [2]uint32{clientNext, serverNext} {
		b.sndNxt[side] = b.ISN[side] + n
		b.sndUna[side] = b.sndNxt[side]
		b.rcvNxt[1-side] = b.sndNxt[side]
	}
	return b
}

// InFlight makes the last n bytes side sent (see From) unacknowledged:
// the kernel's snd_una of side's socket is n behind its snd_nxt.
func (b *Builder) InFlight(side int, n uint32) *Builder {
	b.sndUna[side] = b.sndNxt[side] - n
	return b
}

// Rebased returns the same stream with new ISNs: every absolute number
// moves with its side's ISN, and a fresh conn.Tracker annotates the events
// again. Relative numbers, and so everything the timeline and analysis
// say, must not change; an ISN near 2^32 tests the wraparound.
func (b *Builder) Rebased(isnClient, isnServer uint32) *Builder {
	nb := *b
	nb.tracker, nb.Events = nil, nil
	d := [2]uint32{isnClient - b.ISN[Client], isnServer - b.ISN[Server]}
	for i := 0; i < 2; i++ {
		nb.ISN[i] += d[i]
		nb.sndNxt[i] += d[i]
		nb.sndUna[i] += d[i]
		if b.rcvNxt[i] != 0 {
			nb.rcvNxt[i] += d[1-i]
		}
	}
	for _, ev := range b.Events {
		nb.add(nb.shift(ev, d))
	}
	return &nb
}

// shift moves ev's absolute numbers by each side's ISN change d.
func (b *Builder) shift(ev event.Event, d [2]uint32) event.Event {
	src := Server
	if netip.AddrPortFrom(ev.Saddr, ev.Sport) == b.Ends[Client] {
		src = Client
	}
	dst := 1 - src
	acked := ev.Flags&event.ACK != 0
	switch ev.Type {
	case event.TypeSegment:
		ev.Seq += d[src]
		if acked {
			ev.Ack += d[dst]
		}
	case event.TypeRcvState: // the tuple is the receiving socket's
		ev.Seq += d[dst]
		if acked {
			ev.Ack += d[src]
		}
	case event.TypeConnect:
		ev.ISN += d[src]
	case event.TypeRetransmit:
		ev.Seq += d[src]
	}
	if ev.Type == event.TypeState || ev.Type == event.TypeRcvState {
		ev.SndUna, ev.SndNxt = ev.SndUna+d[src], ev.SndNxt+d[src]
		if ev.RcvNxt != 0 {
			ev.RcvNxt += d[dst]
		}
	}
	return ev
}

// Wait advances time by ns.
func (b *Builder) Wait(ns uint64) *Builder { b.TS += ns; return b }

func (b *Builder) base(t event.Type, side int) event.Event {
	b.TS += b.Step
	b.index++
	peer := 1 - side
	return event.Event{Type: t, TS: b.TS, Family: 4, Conn: b.Conn, Index: b.index,
		Saddr: b.Ends[side].Addr(), Sport: b.Ends[side].Port(),
		Daddr: b.Ends[peer].Addr(), Dport: b.Ends[peer].Port()}
}

// Flags parses "S", "SA", "A", "PA", "FA", "R", "RA".
func Flags(s string) uint16 {
	var f uint16
	for _, c := range s {
		f |= map[rune]uint16{'S': event.SYN, 'A': event.ACK, 'P': event.PSH, 'F': event.FIN, 'R': event.RST}[c]
	}
	return f
}

// Seg sends one segment with the builder's window.
func (b *Builder) Seg(from int, flags string, seq, ack, n uint32) *Builder {
	return b.SegW(from, flags, seq, ack, n, b.Win)
}

// SegW sends one segment with an explicit window.
func (b *Builder) SegW(from int, flags string, seq, ack, n uint32, win uint16) *Builder {
	peer := 1 - from
	ev := b.base(event.TypeSegment, from)
	ev.Dir, ev.Iface, ev.Ifindex, ev.Wire = event.Egress, "lo", 1, !b.Loopback
	ev.Seq, ev.Ack, ev.Flags, ev.Len, ev.Win, ev.HdrLen = b.ISN[from]+seq, b.ISN[peer]+ack, Flags(flags), n, win, 32
	if ev.Flags&event.ACK == 0 {
		ev.Ack = 0
	}
	if ev.Flags&event.SYN != 0 {
		ev.Win, ev.HdrLen = 65495, 40
		ev.Opts = event.Options{MSS: 65495, HasMSS: true, WScale: 7, HasWS: true, SACKPerm: true}
	}
	if b.Senders {
		ev.Sender = event.Sender{Valid: true, SndNxt: b.sndNxt[from], RcvNxt: b.rcvNxt[from], Cwnd: b.Cwnd, SRTT: b.SRTT, CAState: b.CA}
	}
	b.add(ev)
	b.kernelView(&ev, from)
	if b.Loopback {
		dup := ev
		dup.Sender = event.Sender{}
		b.TS += 2_000
		b.index++
		dup.TS, dup.Index, dup.Dir, dup.Wire, dup.TwinOf = b.TS, b.index, event.Ingress, true, ev.Index
		b.add(dup)
	}
	return b
}

// Sighting is a segment the stack sent that TC egress saw and the wire did
// not carry (dropped by the qdisc, say): a record with wire false and no
// twin after it.
func (b *Builder) Sighting(from int, flags string, seq, ack, n uint32) *Builder {
	loopback := b.Loopback
	b.Loopback = false
	b.SegW(from, flags, seq, ack, n, b.Win)
	b.Loopback = loopback
	b.Events[len(b.Events)-1].Wire = false
	return b
}

// kernelView keeps the numbers state events report.
func (b *Builder) kernelView(ev *event.Event, from int) {
	end := ev.Seq + ev.Len
	if ev.Flags&(event.SYN|event.FIN) != 0 {
		end++
	}
	if event.Seq(end).GT(event.Seq(b.sndNxt[from])) || ev.Flags&event.SYN != 0 {
		b.sndNxt[from] = end
	}
	b.rcvNxt[1-from] = b.sndNxt[from]
	if ev.Flags&event.ACK != 0 {
		b.sndUna[1-from] = ev.Ack
	}
}

// State reports a state change of side's socket, with its kernel view.
func (b *Builder) State(side int, old, new string) *Builder {
	ev := b.base(event.TypeState, side)
	ev.OldState, ev.NewState = event.ParseState(old), event.ParseState(new)
	ev.SndUna, ev.SndNxt, ev.RcvNxt = b.sndUna[side], b.sndNxt[side], b.rcvNxt[side]
	ev.PID, ev.TGID, ev.Comm, ev.PIDSrc = 100+uint32(side), 100+uint32(side), []string{"client", "server"}[side], event.PIDOwner
	b.add(ev)
	return b
}

// RcvState reports tcp_rcv_state_process handling the last segment sent
// to side (state before: old).
func (b *Builder) RcvState(side int, old string) *Builder {
	var seg event.Event
	for i := len(b.Events) - 1; i >= 0; i-- {
		if e := b.Events[i]; e.Type == event.TypeSegment && e.Wire && e.Saddr == b.Ends[1-side].Addr() && e.Sport == b.Ends[1-side].Port() {
			seg = e
			break
		}
	}
	ev := b.base(event.TypeRcvState, side)
	ev.OldState = event.ParseState(old)
	ev.Seq, ev.Ack, ev.Flags, ev.Len = seg.Seq, seg.Ack, seg.Flags, seg.Len
	ev.SndUna, ev.SndNxt, ev.RcvNxt = b.sndUna[side], b.sndNxt[side], b.rcvNxt[side]
	b.add(ev)
	return b
}

// Connect reports tcp_v4_connect returning for the client.
func (b *Builder) Connect() *Builder {
	ev := b.base(event.TypeConnect, Client)
	ev.ISN, ev.PID, ev.TGID, ev.Comm, ev.PIDSrc = b.ISN[Client], 4242, 4242, "echo-client", event.PIDOwner
	b.add(ev)
	return b
}

// Retransmit reports the kernel retransmitting seq (relative) of len n.
func (b *Builder) Retransmit(from int, seq, n uint32) *Builder {
	ev := b.base(event.TypeRetransmit, from)
	ev.Seq, ev.Len = b.ISN[from]+seq, n
	b.add(ev)
	return b
}

// RetransmitIn is Retransmit with the socket's congestion state as the
// kernel resent (event.CAStateName numbering).
func (b *Builder) RetransmitIn(from int, seq, n uint32, ca uint8) *Builder {
	b.Retransmit(from, seq, n)
	ev := &b.Events[len(b.Events)-1]
	ev.OldState = event.ParseState("ESTABLISHED")
	ev.Sender = event.Sender{Valid: true, SndNxt: b.sndNxt[from], RcvNxt: b.rcvNxt[from], Cwnd: b.Cwnd, CAState: ca}
	return b
}

// Drop is the kernel dropping the last wire segment from side, with reason.
func (b *Builder) Drop(from int, reason string) *Builder {
	var seg event.Event
	for i := len(b.Events) - 1; i >= 0; i-- {
		if e := b.Events[i]; e.Type == event.TypeSegment && e.Wire && e.Sport == b.Ends[from].Port() {
			seg = e
			break
		}
	}
	ev := b.base(event.TypeDrop, from)
	ev.Seq, ev.Ack, ev.Flags, ev.Len = seg.Seq, seg.Ack, seg.Flags, seg.Len
	ev.Drop = event.Drop{HasReason: true, ReasonName: reason, Symbol: "nf_hook_slow+0x9c", Segment: seg.Index}
	b.add(ev)
	return b
}

// Reset is a kernel reset event of side's socket: "sent" or "received".
func (b *Builder) Reset(side int, reason string) *Builder {
	ev := b.base(event.TypeReset, side)
	ev.Reason = event.ResetSent
	if reason == "received" {
		ev.Reason = event.ResetReceived
	}
	b.add(ev)
	return b
}

// Handshake is the three-way handshake with its state changes.
func (b *Builder) Handshake() *Builder {
	return b.State(Client, "CLOSE", "SYN_SENT").
		Seg(Client, "S", 0, 0, 0).
		Connect().
		Seg(Server, "SA", 0, 1, 0).
		State(Client, "SYN_SENT", "ESTABLISHED").
		Seg(Client, "A", 1, 1, 0).
		State(Server, "LISTEN", "SYN_RECV").
		State(Server, "SYN_RECV", "ESTABLISHED")
}

// Echo is the reference scenario: the client sends "AB", the server
// acknowledges and echoes it, the client closes first, then the server.
func Echo() *Builder {
	b := New("127.0.0.1:40000", "127.0.0.1:20000").Handshake()
	return b.Seg(Client, "PA", 1, 1, 2).
		Seg(Server, "A", 1, 3, 0).
		Seg(Server, "PA", 1, 3, 2).
		Seg(Client, "A", 3, 3, 0).
		State(Client, "ESTABLISHED", "FIN_WAIT1").
		Seg(Client, "FA", 3, 3, 0).
		State(Server, "ESTABLISHED", "CLOSE_WAIT").
		Seg(Server, "A", 3, 4, 0).
		State(Client, "FIN_WAIT1", "FIN_WAIT2").
		State(Server, "CLOSE_WAIT", "LAST_ACK").
		Seg(Server, "FA", 3, 4, 0).
		Seg(Client, "A", 4, 4, 0).
		State(Client, "FIN_WAIT2", "CLOSE").
		State(Server, "LAST_ACK", "CLOSE")
}

// Names lists the events' types, for debugging tests.
func (b *Builder) Names() string {
	var s []string
	for _, e := range b.Events {
		s = append(s, e.Type.String())
	}
	return strings.Join(s, " ")
}

// Next starts another connection (id) with new ISNs on the same builder,
// so streams can hold several connections.
func (b *Builder) Next(id uint64, isnClient, isnServer uint32) *Builder {
	b.Conn = id
	b.ISN = [2]uint32{isnClient, isnServer}
	b.sndNxt, b.sndUna, b.rcvNxt = b.ISN, b.ISN, [2]uint32{}
	return b
}

// Lost reports lost ring buffer records.
func (b *Builder) Lost(n uint64) *Builder {
	ev := b.base(event.TypeLost, Client)
	ev.Conn, ev.Count = 0, n
	b.add(ev)
	return b
}

// FlagString is the inverse of Flags, for golden files.
func FlagString(f uint16) string {
	var s strings.Builder
	for _, p := range []struct {
		bit uint16
		c   byte
	}{{event.SYN, 'S'}, {event.FIN, 'F'}, {event.RST, 'R'}, {event.PSH, 'P'}, {event.ACK, 'A'}} {
		if f&p.bit != 0 {
			s.WriteByte(p.c)
		}
	}
	return s.String()
}
