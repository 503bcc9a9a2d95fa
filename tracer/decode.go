package tracer

import (
	"bytes"
	"fmt"
	"net/netip"
	"unsafe"

	"tcptracer/event"
)

// Record kinds as the kernel writes them (bpf/events.h).
const (
	recSegment    = uint8(event.TypeSegment)
	recConnect    = uint8(event.TypeConnect)
	recState      = uint8(event.TypeState)
	recRcvState   = uint8(event.TypeRcvState)
	recRetransmit = uint8(event.TypeRetransmit)
	recReset      = uint8(event.TypeReset)
	recDrop       = uint8(event.TypeDrop)
)

const (
	hdrSize     = int(unsafe.Sizeof(tcptracerRecHdr{}))
	typeOffset  = int(unsafe.Offsetof(tcptracerRecHdr{}.Type))
	segmentSize = int(unsafe.Sizeof(tcptracerSegmentEvent{}))
	connectSize = int(unsafe.Sizeof(tcptracerConnectEvent{}))
	stateSize   = int(unsafe.Sizeof(tcptracerStateEvent{}))
	sockSize    = int(unsafe.Sizeof(tcptracerSockEvent{}))
	dropSize    = int(unsafe.Sizeof(tcptracerDropEvent{}))
)

// Decoder turns raw records into events. It keeps a small cache of comm
// strings so that decoding a record does not allocate in steady state.
type Decoder struct {
	comms  map[[16]byte]string
	ifname func(uint32) string
	lost   uint32 // the last record's lost stamp
	drops  *dropNames
}

// LostStamp returns the last decoded record's count of failed
// reservations (low 32 bits) at the time it was written.
func (d *Decoder) LostStamp() uint32 { return d.lost }

// NewDecoder returns a Decoder; ifname may be nil.
func NewDecoder(ifname func(uint32) string) *Decoder {
	return &Decoder{comms: map[[16]byte]string{}, ifname: ifname}
}

// Decode fills ev from one ring buffer record. The records are the
// generated twins of the C structs, in host byte order, so after checking
// the size the bytes are read in place (the same as decoding every field
// with binary.NativeEndian, without the per-field cost).
func (d *Decoder) Decode(raw []byte, ev *event.Event) error {
	if len(raw) < hdrSize {
		return fmt.Errorf("record of %d bytes, shorter than its %d-byte header", len(raw), hdrSize)
	}
	typ := raw[typeOffset]
	need := recordSize(typ)
	if need == 0 {
		return fmt.Errorf("record of unknown type %d", typ)
	}
	if len(raw) < need {
		return fmt.Errorf("%s record of %d bytes, want %d", event.Type(typ), len(raw), need)
	}
	*ev = event.Event{}
	p := unsafe.Pointer(&raw[0])
	switch typ {
	case recSegment:
		d.segment((*tcptracerSegmentEvent)(p), ev)
	case recConnect:
		d.connect((*tcptracerConnectEvent)(p), ev)
	case recState, recRcvState:
		d.state((*tcptracerStateEvent)(p), ev)
	case recRetransmit, recReset:
		d.sock((*tcptracerSockEvent)(p), ev)
	case recDrop:
		d.drop((*tcptracerDropEvent)(p), ev)
	}
	return nil
}

func recordSize(typ uint8) int {
	switch typ {
	case recSegment:
		return segmentSize
	case recConnect:
		return connectSize
	case recState, recRcvState:
		return stateSize
	case recRetransmit, recReset:
		return sockSize
	case recDrop:
		return dropSize
	}
	return 0
}

func (d *Decoder) header(h *tcptracerRecHdr, ev *event.Event) {
	ev.Type = event.Type(h.Type)
	ev.TS = h.TsNs
	d.lost = h.Lost
	ev.Cookie = h.Cookie
	ev.Sport, ev.Dport = h.Sport, h.Dport
	if h.Family == afInet6 {
		ev.Family = 6
		ev.Saddr = netip.AddrFrom16(h.Saddr)
		ev.Daddr = netip.AddrFrom16(h.Daddr)
		return
	}
	ev.Family = 4
	ev.Saddr = netip.AddrFrom4([4]byte(h.Saddr[:4]))
	ev.Daddr = netip.AddrFrom4([4]byte(h.Daddr[:4]))
}

func (d *Decoder) proc(p *tcptracerProcInfo, ev *event.Event) {
	// A source the decoder does not know attributes nothing: the JSON
	// would otherwise print a pid beside "pid_src":"none".
	ev.PIDSrc = event.PIDSource(p.Src)
	if ev.PIDSrc != event.PIDOwner && ev.PIDSrc != event.PIDCurrent {
		ev.PIDSrc = event.PIDNone
		return
	}
	ev.PID, ev.TGID, ev.UID = p.Pid, p.Tgid, p.Uid
	c, ok := d.comms[p.Comm]
	if !ok {
		b := p.Comm[:]
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		c = string(b)
		if len(d.comms) > 4096 {
			clear(d.comms)
		}
		d.comms[p.Comm] = c
	}
	ev.Comm = c
}

// Option presence bits (bpf/events.h).
const (
	optMSS      = 1
	optWScale   = 2
	optSACKPerm = 4
	optTS       = 8
)

func (d *Decoder) segment(s *tcptracerSegmentEvent, ev *event.Event) {
	d.header(&s.Hdr, ev)
	ev.Ifindex = s.Ifindex
	if d.ifname != nil {
		ev.Iface = d.ifname(s.Ifindex)
	}
	ev.Dir = event.Dir(s.Dir)
	ev.Point = event.Point(s.Point)
	ev.GSOSegs, ev.GSOSize = s.GsoSegs, s.GsoSize
	ev.Seq, ev.Ack, ev.Len = s.Seq, s.Ack, s.Len
	ev.Flags, ev.Win, ev.HdrLen = s.Flags, s.Win, s.HdrLen
	o := &ev.Opts
	o.HasMSS, o.MSS = s.OptMask&optMSS != 0, s.Mss
	o.HasWS, o.WScale = s.OptMask&optWScale != 0, s.Wscale
	o.SACKPerm = s.OptMask&optSACKPerm != 0
	o.HasTS, o.TSval, o.TSecr = s.OptMask&optTS != 0, s.Tsval, s.Tsecr
	o.NSACK = min(s.Nsack, 4)
	for i := range o.NSACK {
		o.SACK[i] = event.SACKBlock{Left: s.Sack[2*i], Right: s.Sack[2*i+1]}
	}
	decodeSender(&s.Sender, &ev.Sender)
}

// decodeSender converts the kernel's scaled RTT fields to microseconds.
func decodeSender(s *tcptracerSenderState, out *event.Sender) {
	if s.Valid == 0 {
		return
	}
	*out = event.Sender{
		Valid: true, SndUna: s.SndUna, SndNxt: s.SndNxt, RcvNxt: s.RcvNxt, SndWnd: s.SndWnd,
		Cwnd: s.SndCwnd, Ssthresh: s.Ssthresh,
		SRTT: s.SrttUs >> 3, RTTVar: s.MdevUs >> 2, RTOVar: s.RttvarUs, RTO: s.RtoUs,
		PacketsOut: s.PacketsOut, RetransOut: s.RetransOut, LostOut: s.LostOut, SackedOut: s.SackedOut,
		Delivered: s.Delivered, TotalRetrans: s.TotalRetrans, DSACKDups: s.DsackDups,
		TLPHighSeq: s.TlpHighSeq, MSS: s.Mss,
		CAState: s.CaState, Retransmits: s.Retransmits, Backoff: s.Backoff,
	}
}

func (d *Decoder) drop(s *tcptracerDropEvent, ev *event.Event) {
	d.header(&s.Hdr, ev)
	ev.Ifindex = s.Ifindex
	if d.ifname != nil && s.Ifindex != 0 {
		ev.Iface = d.ifname(s.Ifindex)
	}
	ev.Seq, ev.Ack, ev.Len, ev.Flags = s.Seq, s.Ack, s.Len, s.Flags
	ev.Drop = event.Drop{HasReason: s.HasReason != 0, Reason: s.Reason, Location: s.Location}
	if !ev.Drop.HasReason {
		ev.Drop.ReasonName = event.NoReason
	}
	if d.drops == nil {
		return
	}
	if ev.Drop.HasReason {
		ev.Drop.ReasonName = d.drops.reason(s.Reason)
	}
	ev.Drop.Symbol = d.drops.symbol(s.Location)
}

func (d *Decoder) connect(c *tcptracerConnectEvent, ev *event.Event) {
	d.header(&c.Hdr, ev)
	d.proc(&c.Proc, ev)
	ev.ISN, ev.Ret = c.Isn, c.Ret
}

func (d *Decoder) state(s *tcptracerStateEvent, ev *event.Event) {
	d.header(&s.Hdr, ev)
	d.proc(&s.Proc, ev)
	ev.SndUna, ev.SndNxt, ev.RcvNxt = s.SndUna, s.SndNxt, s.RcvNxt
	ev.OldState, ev.NewState = s.OldState, s.NewState
	ev.Seq, ev.Ack, ev.Len, ev.Flags = s.Seq, s.Ack, s.Len, s.Flags
	decodeSender(&s.Sender, &ev.Sender)
}

func (d *Decoder) sock(s *tcptracerSockEvent, ev *event.Event) {
	d.header(&s.Hdr, ev)
	d.proc(&s.Proc, ev)
	ev.Seq, ev.Len = s.Seq, s.Len
	ev.OldState = s.State
	// A reason the decoder does not know is no reason (null), not a
	// third kind the JSON could not name.
	if s.Reason == event.ResetSent || s.Reason == event.ResetReceived {
		ev.Reason = s.Reason
	}
	decodeSender(&s.Sender, &ev.Sender)
}
