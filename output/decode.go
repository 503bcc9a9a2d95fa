package output

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"tcptracer/event"
)

// wireEvent mirrors every field any line type can carry. Pointers stand for
// the fields that may be null. Decoding is the offline path (tcptracer
// analyze), so encoding/json is fine here.
type wireEvent struct {
	Type string  `json:"type"`
	TS   uint64  `json:"ts_ns"`
	Conn *uint64 `json:"conn"`
	ID   uint64  `json:"id"`

	Kernel  string       `json:"kernel"`
	Version string       `json:"version"`
	Hooks   []wireHook   `json:"hooks"`
	Filters *wireFilters `json:"filters"`
	Ifaces  []string     `json:"ifaces"`

	Iface   *string      `json:"iface"`
	Ifindex uint32       `json:"ifindex"`
	Dir     string       `json:"dir"`
	Point   string       `json:"point"`
	Wire    bool         `json:"wire"`
	Family  *string      `json:"family"`
	Saddr   *string      `json:"saddr"`
	Sport   uint16       `json:"sport"`
	Daddr   *string      `json:"daddr"`
	Dport   uint16       `json:"dport"`
	Side    *string      `json:"side"`
	Guessed bool         `json:"roles_guessed"`
	Seq     uint32       `json:"seq"`
	Ack     uint32       `json:"ack"`
	SeqRel  *uint32      `json:"seq_rel"`
	AckRel  *uint32      `json:"ack_rel"`
	Derived bool         `json:"rel_derived"`
	Flags   []string     `json:"flags"`
	Len     uint32       `json:"len"`
	Win     uint16       `json:"win"`
	HdrLen  uint8        `json:"hdr_len"`
	GSOSegs uint16       `json:"gso_segs"`
	GSOSize uint16       `json:"gso_size"`
	Options *wireOptions `json:"options"`
	TwinOf  *uint64      `json:"twin_of"`

	Cookie   uint64  `json:"cookie"`
	PID      *uint32 `json:"pid"`
	TGID     *uint32 `json:"tgid"`
	UID      *uint32 `json:"uid"`
	Comm     *string `json:"comm"`
	PIDSrc   string  `json:"pid_src"`
	ISN      uint32  `json:"isn"`
	Ret      int32   `json:"ret"`
	OldState string  `json:"old_state"`
	NewState string  `json:"new_state"`
	State    string  `json:"state"`
	SndUna   uint32  `json:"snd_una"`
	SndNxt   uint32  `json:"snd_nxt"`
	RcvNxt   uint32  `json:"rcv_nxt"`
	Reason   *string `json:"reason"`
	Count    uint64  `json:"count"`

	Sender       *wireSender `json:"sender"`
	ReasonCode   *uint32     `json:"reason_code"`
	Location     *string     `json:"location"`
	LocationAddr string      `json:"location_addr"`
	SegmentID    *uint64     `json:"segment_id"`
}

// wireSender is the sender object of segment and retransmit lines.
type wireSender struct {
	SndUna       uint32  `json:"snd_una"`
	SndNxt       uint32  `json:"snd_nxt"`
	RcvNxt       uint32  `json:"rcv_nxt"`
	SndWnd       uint32  `json:"snd_wnd"`
	Cwnd         uint32  `json:"cwnd"`
	Ssthresh     uint32  `json:"ssthresh"`
	SRTT         uint32  `json:"srtt_us"`
	RTTVar       uint32  `json:"rttvar_us"`
	RTOVar       uint32  `json:"rto_var_us"`
	RTO          *uint32 `json:"rto_us"`
	PacketsOut   uint32  `json:"packets_out"`
	RetransOut   uint32  `json:"retrans_out"`
	LostOut      uint32  `json:"lost_out"`
	SackedOut    uint32  `json:"sacked_out"`
	Delivered    uint32  `json:"delivered"`
	TotalRetrans uint32  `json:"total_retrans"`
	DSACKDups    uint32  `json:"dsack_dups"`
	TLPHighSeq   uint32  `json:"tlp_high_seq"`
	MSS          uint32  `json:"mss"`
	Retransmits  uint8   `json:"retransmits"`
	Backoff      uint8   `json:"backoff"`
	CAState      string  `json:"ca_state"`
}

func (w *wireSender) sender() (event.Sender, error) {
	if w == nil {
		return event.Sender{}, nil
	}
	ca, ok := event.ParseCAState(w.CAState)
	if !ok {
		return event.Sender{}, fmt.Errorf("ca_state %q: unknown", w.CAState)
	}
	return event.Sender{Valid: true, SndUna: w.SndUna, SndNxt: w.SndNxt, RcvNxt: w.RcvNxt, SndWnd: w.SndWnd,
		Cwnd: w.Cwnd, Ssthresh: w.Ssthresh, SRTT: w.SRTT, RTTVar: w.RTTVar, RTOVar: w.RTOVar, RTO: deref(w.RTO),
		PacketsOut: w.PacketsOut, RetransOut: w.RetransOut, LostOut: w.LostOut, SackedOut: w.SackedOut,
		Delivered: w.Delivered, TotalRetrans: w.TotalRetrans, DSACKDups: w.DSACKDups, TLPHighSeq: w.TLPHighSeq,
		MSS: w.MSS, CAState: ca, Retransmits: w.Retransmits, Backoff: w.Backoff}, nil
}

// drop restores a drop line's own fields.
func (w *wireEvent) drop(ev *event.Event) error {
	d := event.Drop{ReasonName: deref(w.Reason), Symbol: deref(w.Location), Segment: deref(w.SegmentID)}
	d.Reason, d.HasReason = deref(w.ReasonCode), w.ReasonCode != nil
	if w.LocationAddr != "" {
		if _, err := fmt.Sscanf(w.LocationAddr, "0x%x", &d.Location); err != nil {
			return fmt.Errorf("location_addr %q: %w", w.LocationAddr, err)
		}
	}
	ev.Drop = d
	return nil
}

type wireHook struct {
	Hook    string `json:"hook"`
	Mode    string `json:"mode"`
	Target  string `json:"target"`
	Refused []struct {
		Mode   string `json:"mode"`
		Reason string `json:"reason"`
	} `json:"refused"`
}

type wireFilters struct {
	Port   uint16  `json:"port"`
	PID    *uint32 `json:"pid"`
	Family string  `json:"family"`
}

type wireOptions struct {
	MSS      *uint16 `json:"mss"`
	WScale   *uint8  `json:"wscale"`
	SACKPerm bool    `json:"sack_perm"`
	TS       *struct {
		Val uint32 `json:"val"`
		Ecr uint32 `json:"ecr"`
	} `json:"ts"`
	SACK []struct {
		Left  uint32 `json:"left"`
		Right uint32 `json:"right"`
	} `json:"sack"`
}

// Decode parses one JSON line written by JSONWriter into ev, replacing all
// of ev's fields.
func Decode(line []byte, ev *event.Event) error {
	var w wireEvent
	if err := json.Unmarshal(line, &w); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	*ev = event.Event{}
	ev.Type = event.ParseType(w.Type)
	if ev.Type == 0 {
		return fmt.Errorf("decode event: unknown type %q", w.Type)
	}
	ev.TS, ev.Index = w.TS, w.ID
	ev.Conn = deref(w.Conn)
	if ev.Type == event.TypeStart {
		ev.Start = w.start()
		return nil
	}
	ev.Count = w.Count
	if ev.Type == event.TypeLost {
		return nil
	}
	if err := w.fill(ev); err != nil {
		return fmt.Errorf("decode %s event: %w", w.Type, err)
	}
	return nil
}

// fill restores the fields of every type but start and lost; fields a type
// does not carry are absent from its line and stay zero.
func (w *wireEvent) fill(ev *event.Event) error {
	var err error
	if ev.Saddr, err = parseAddr(w.Saddr); err != nil {
		return err
	}
	if ev.Daddr, err = parseAddr(w.Daddr); err != nil {
		return err
	}
	if ev.Flags, err = parseFlags(w.Flags); err != nil {
		return err
	}
	ev.Family = parseFamily(deref(w.Family))
	ev.Sport, ev.Dport, ev.Cookie = w.Sport, w.Dport, w.Cookie
	ev.Ifindex, ev.Iface = w.Ifindex, deref(w.Iface)
	if w.Dir == "egress" {
		ev.Dir = event.Egress
	}
	ev.Seq, ev.Ack, ev.Len, ev.Win, ev.HdrLen = w.Seq, w.Ack, w.Len, w.Win, w.HdrLen
	ev.SeqRel, ev.HasSeqRel = deref(w.SeqRel), w.SeqRel != nil
	ev.AckRel, ev.HasAckRel = deref(w.AckRel), w.AckRel != nil
	ev.RelDerived = w.Derived
	if ev.Side, err = parseSide(w.Side); err != nil {
		return err
	}
	ev.RolesGuessed = w.Guessed
	ev.Wire, ev.TwinOf = w.Wire, deref(w.TwinOf)
	ev.GSOSegs, ev.GSOSize = w.GSOSegs, w.GSOSize
	if w.Point != "" {
		p, ok := event.ParsePoint(w.Point)
		if !ok {
			return fmt.Errorf("point %q: want tc or xmit", w.Point)
		}
		ev.Point = p
	}
	ev.Opts = w.Options.options()
	ev.PID, ev.TGID, ev.UID, ev.Comm = deref(w.PID), deref(w.TGID), deref(w.UID), deref(w.Comm)
	ev.PIDSrc = parsePIDSource(w.PIDSrc)
	ev.ISN, ev.Ret = w.ISN, w.Ret
	ev.OldState, ev.NewState = event.ParseState(w.OldState), event.ParseState(w.NewState)
	if w.State != "" {
		ev.OldState = event.ParseState(w.State)
	}
	ev.SndUna, ev.SndNxt, ev.RcvNxt = w.SndUna, w.SndNxt, w.RcvNxt
	if ev.Sender, err = w.Sender.sender(); err != nil {
		return err
	}
	if ev.Type == event.TypeDrop {
		return w.drop(ev)
	}
	ev.Reason = parseReason(deref(w.Reason))
	return nil
}

func (w *wireEvent) start() *event.Start {
	s := &event.Start{Kernel: w.Kernel, Version: w.Version}
	for _, h := range w.Hooks {
		hook := event.Hook{Name: h.Hook, Mode: h.Mode, Target: h.Target}
		for _, r := range h.Refused {
			hook.Refused = append(hook.Refused, event.Refusal{Mode: r.Mode, Reason: r.Reason})
		}
		s.Hooks = append(s.Hooks, hook)
	}
	if len(w.Ifaces) > 0 {
		s.Ifaces = w.Ifaces
	}
	if w.Filters != nil {
		s.Port, s.PID = w.Filters.Port, deref(w.Filters.PID)
		s.Family = parseFamily(w.Filters.Family)
	}
	return s
}

func (o *wireOptions) options() event.Options {
	var opts event.Options
	if o == nil {
		return opts
	}
	opts.MSS, opts.HasMSS = deref(o.MSS), o.MSS != nil
	opts.WScale, opts.HasWS = deref(o.WScale), o.WScale != nil
	opts.SACKPerm = o.SACKPerm
	if o.TS != nil {
		opts.HasTS, opts.TSval, opts.TSecr = true, o.TS.Val, o.TS.Ecr
	}
	for i, blk := range o.SACK {
		if i == len(opts.SACK) {
			break
		}
		opts.SACK[i] = event.SACKBlock{Left: blk.Left, Right: blk.Right}
		opts.NSACK++
	}
	return opts
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func parseAddr(s *string) (netip.Addr, error) {
	if s == nil {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(*s)
	if err != nil {
		return a, fmt.Errorf("parse address: %w", err)
	}
	return a, nil
}

func parseFlags(names []string) (uint16, error) {
	var flags event.Flags
	for _, n := range names {
		f, ok := event.ParseFlag(n)
		if !ok {
			return 0, fmt.Errorf("parse flags: unknown flag %q", n)
		}
		flags |= f
	}
	return uint16(flags), nil
}

// parseSide reads the side conn.Tracker gave the event (null: no connection).
func parseSide(s *string) (event.Side, error) {
	switch deref(s) {
	case "", event.Client.String():
		return event.Client, nil
	case event.Server.String():
		return event.Server, nil
	}
	return 0, fmt.Errorf("parse side: unknown side %q", *s)
}

func parseFamily(s string) uint8 {
	switch s {
	case "ipv4":
		return 4
	case "ipv6":
		return 6
	}
	return 0
}

func parsePIDSource(s string) event.PIDSource {
	switch s {
	case "owner":
		return event.PIDOwner
	case "current":
		return event.PIDCurrent
	}
	return event.PIDNone
}

func parseReason(s string) uint8 {
	switch s {
	case "sent":
		return event.ResetSent
	case "received":
		return event.ResetReceived
	}
	return 0
}
