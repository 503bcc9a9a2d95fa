// Package output renders annotated events. The NDJSON form (one object per
// line, "type" first, documented in README.md) is built by hand into a
// reused buffer: the tracer writes one line per segment, and reflection
// there would cost more than the rest of the pipeline.
package output

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"tcptracer/event"
)

// rfc3339Nano is RFC 3339 with all nine digits of the nanoseconds, so
// every "ts" has the same width.
const rfc3339Nano = "2006-01-02T15:04:05.000000000Z07:00"

// JSONWriter writes events as JSON lines into its own buffer and hands
// the buffer to the underlying writer when it is full or flushed: one copy
// per record, not two (encode, then bufio). The caller flushes it (on a
// timer and at exit); it is not safe for concurrent use.
type JSONWriter struct {
	w     io.Writer
	buf   []byte
	cache *encCache
	wall  int64 // wall clock minus CLOCK_MONOTONIC in ns; 0: no "ts" field
}

// SetWallClock makes every line carry "ts" after "ts_ns": the wall-clock
// time of ts_ns in RFC 3339 with nanoseconds (UTC), computed with offset,
// the wall clock minus CLOCK_MONOTONIC measured once at start.
func (j *JSONWriter) SetWallClock(offset int64) { j.wall = offset }

// flushAt is the buffered size that triggers a write: large writes keep
// the syscall count per record negligible.
const flushAt = 64 << 10

// NewJSONWriter returns a JSONWriter writing to w.
func NewJSONWriter(w io.Writer) *JSONWriter {
	return &JSONWriter{w: w, buf: make([]byte, 0, flushAt+4096), cache: &encCache{}}
}

// Lines returns a writer for other JSON lines that must interleave with
// the events in order (the analysis report): they go into the same buffer.
func (j *JSONWriter) Lines() io.Writer { return linesWriter{j} }

type linesWriter struct{ j *JSONWriter }

func (l linesWriter) Write(p []byte) (int, error) {
	l.j.buf = append(l.j.buf, p...)
	if len(l.j.buf) >= flushAt {
		if err := l.j.Flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Write appends ev as one line.
func (j *JSONWriter) Write(ev *event.Event) error {
	n := len(j.buf)
	b, err := appendEvent(j.buf, ev, j.cache, j.wall)
	if err != nil {
		j.buf = j.buf[:n]
		return err
	}
	j.buf = append(b, '\n')
	if len(j.buf) < flushAt {
		return nil
	}
	if err := j.Flush(); err != nil {
		return fmt.Errorf("write %s event: %w", ev.Type, err)
	}
	return nil
}

// Flush writes buffered lines to the underlying writer.
func (j *JSONWriter) Flush() error {
	if len(j.buf) == 0 {
		return nil
	}
	_, err := j.w.Write(j.buf)
	j.buf = j.buf[:0]
	if err != nil {
		return fmt.Errorf("flush json output: %w", err)
	}
	return nil
}

// AppendJSON appends ev as one JSON object (without a newline) to b.
func AppendJSON(b []byte, ev *event.Event) ([]byte, error) { return appendEvent(b, ev, nil, 0) }

// appendEvent is AppendJSON with an optional cache of rendered pieces (see
// encCache; a nil cache renders every piece) and the wall clock offset of
// SetWallClock.
func appendEvent(b []byte, ev *event.Event, c *encCache, wall int64) ([]byte, error) {
	b = appendHeader(b, ev, c, wall)
	switch ev.Type {
	case event.TypeStart:
		b = appendStart(b, ev.Start)
	case event.TypeSegment:
		b = appendSegment(b, ev, c)
	case event.TypeConnect:
		b = appendConnect(b, ev)
	case event.TypeState:
		b = appendState(b, ev)
	case event.TypeRcvState:
		b = appendRcvState(b, ev)
	case event.TypeRetransmit:
		b = appendRetransmit(b, ev)
	case event.TypeReset:
		b = appendReset(b, ev)
	case event.TypeLost:
		b = appendUint(b, "count", ev.Count)
	case event.TypeDrop:
		b = appendDrop(b, ev)
	default:
		return b, fmt.Errorf("encode event: unknown type %d", ev.Type)
	}
	return append(b, '}'), nil
}

func appendHeader(b []byte, ev *event.Event, c *encCache, wall int64) []byte {
	b = appendTypeHead(b, ev.Type)
	b = appendU64(b, ev.TS)
	if wall != 0 {
		b = c.wallTime(append(b, `,"ts":"`...), int64(ev.TS)+wall)
		b = append(b, '"')
	}
	b = fieldOptUint(b, `,"conn":`, ev.Conn, ev.Conn != 0)
	return fieldUint(b, `,"id":`, ev.Index)
}

func appendStart(b []byte, s *event.Start) []byte {
	if s == nil {
		s = &event.Start{}
	}
	b = appendString(b, "kernel", s.Kernel)
	b = appendString(b, "version", s.Version)
	b = append(b, `,"hooks":[`...)
	for i := range s.Hooks {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendHook(b, &s.Hooks[i])
	}
	b = append(b, `],"filters":{"port":`...)
	b = strconv.AppendUint(b, uint64(s.Port), 10)
	b = appendOptUint(b, "pid", uint64(s.PID), s.PID != 0)
	b = appendString(b, "family", filterFamily(s.Family))
	b = append(b, `},"ifaces":[`...)
	for i, name := range s.Ifaces {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, name)
	}
	return append(b, ']')
}

func appendHook(b []byte, h *event.Hook) []byte {
	b = append(b, `{"hook":`...)
	b = appendQuoted(b, h.Name)
	b = appendString(b, "mode", h.Mode)
	b = appendString(b, "target", h.Target)
	b = append(b, `,"refused":[`...)
	for i, r := range h.Refused {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"mode":`...)
		b = appendQuoted(b, r.Mode)
		b = appendString(b, "reason", r.Reason)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func appendSegment(b []byte, ev *event.Event, c *encCache) []byte {
	b = c.where(b, ev)
	b = fieldUint(b, `,"seq":`, uint64(ev.Seq))
	b = fieldUint(b, `,"ack":`, uint64(ev.Ack))
	b = appendRel(b, ev)
	b = appendFlags(b, ev.Flags)
	b = fieldUint(b, `,"len":`, uint64(ev.Len))
	b = fieldUint(b, `,"win":`, uint64(ev.Win))
	b = fieldUint(b, `,"hdr_len":`, uint64(ev.HdrLen))
	b = fieldUint(b, `,"gso_segs":`, uint64(ev.GSOSegs))
	b = fieldUint(b, `,"gso_size":`, uint64(ev.GSOSize))
	b = appendOptions(b, &ev.Opts)
	b = fieldOptUint(b, `,"twin_of":`, ev.TwinOf, ev.TwinOf != 0)
	b = c.owner(b, ev)
	return appendSender(b, &ev.Sender)
}

// appendSegmentWhere writes where a segment was seen and its tuple, which
// repeat for every segment of a connection in one direction at one point.
func appendSegmentWhere(b []byte, ev *event.Event) []byte {
	b = appendOptString(b, "iface", ev.Iface, ev.Iface != "")
	b = appendUint(b, "ifindex", uint64(ev.Ifindex))
	b = appendString(b, "dir", ev.Dir.String())
	b = appendString(b, "point", ev.Point.String())
	b = appendBool(b, "wire", ev.Wire)
	return appendTuple(b, ev)
}

// appendSegmentOwner writes a segment's process attribution.
func appendSegmentOwner(b []byte, ev *event.Event) []byte {
	known := ev.PIDSrc != event.PIDNone
	b = appendOptUint(b, "pid", uint64(ev.PID), known)
	b = appendOptUint(b, "tgid", uint64(ev.TGID), known)
	b = appendOptString(b, "comm", ev.Comm, known)
	return appendString(b, "pid_src", ev.PIDSrc.String())
}

// appendSender writes the sending socket's state, or null where the
// record has none (ingress, xmit, no full socket).
func appendSender(b []byte, s *event.Sender) []byte {
	if !s.Valid {
		return append(b, `,"sender":null`...)
	}
	b = fieldUint(b, `,"sender":{"snd_una":`, uint64(s.SndUna))
	for _, f := range [...]struct {
		k string
		v uint32
	}{
		{`,"snd_nxt":`, s.SndNxt}, {`,"rcv_nxt":`, s.RcvNxt}, {`,"snd_wnd":`, s.SndWnd},
		{`,"cwnd":`, s.Cwnd}, {`,"ssthresh":`, s.Ssthresh}, {`,"srtt_us":`, s.SRTT},
		{`,"rttvar_us":`, s.RTTVar}, {`,"rto_var_us":`, s.RTOVar},
	} {
		b = fieldUint(b, f.k, uint64(f.v))
	}
	b = fieldOptUint(b, `,"rto_us":`, uint64(s.RTO), s.RTO != 0)
	for _, f := range [...]struct {
		k string
		v uint32
	}{
		{`,"packets_out":`, s.PacketsOut}, {`,"retrans_out":`, s.RetransOut}, {`,"lost_out":`, s.LostOut},
		{`,"sacked_out":`, s.SackedOut}, {`,"delivered":`, s.Delivered}, {`,"total_retrans":`, s.TotalRetrans},
		{`,"dsack_dups":`, s.DSACKDups}, {`,"tlp_high_seq":`, s.TLPHighSeq}, {`,"mss":`, s.MSS},
		{`,"retransmits":`, uint32(s.Retransmits)}, {`,"backoff":`, uint32(s.Backoff)},
	} {
		b = fieldUint(b, f.k, uint64(f.v))
	}
	b = appendString(b, "ca_state", event.CAStateName(s.CAState))
	return append(b, '}')
}

// appendDrop writes a drop: the reason by the kernel's name (and number),
// where it happened, and the dropped segment's numbers.
func appendDrop(b []byte, ev *event.Event) []byte {
	d := &ev.Drop
	b = appendString(b, "reason", d.ReasonName)
	b = appendOptUint(b, "reason_code", uint64(d.Reason), d.HasReason)
	b = appendOptString(b, "location", d.Symbol, d.Symbol != "")
	b = appendKey(b, "location_addr")
	b = append(b, `"0x`...)
	b = strconv.AppendUint(b, d.Location, 16)
	b = append(b, '"')
	b = appendOptString(b, "iface", ev.Iface, ev.Iface != "")
	b = appendUint(b, "ifindex", uint64(ev.Ifindex))
	b = appendTuple(b, ev)
	b = appendUint(b, "seq", uint64(ev.Seq))
	b = appendUint(b, "ack", uint64(ev.Ack))
	b = appendRel(b, ev)
	b = appendFlags(b, ev.Flags)
	b = appendUint(b, "len", uint64(ev.Len))
	return appendOptUint(b, "segment_id", ev.Drop.Segment, ev.Drop.Segment != 0)
}

func appendConnect(b []byte, ev *event.Event) []byte {
	b = appendTuple(b, ev)
	b = appendUint(b, "cookie", ev.Cookie)
	known := ev.PIDSrc != event.PIDNone
	b = appendOptUint(b, "pid", uint64(ev.PID), known)
	b = appendOptUint(b, "tgid", uint64(ev.TGID), known)
	b = appendOptUint(b, "uid", uint64(ev.UID), known)
	b = appendOptString(b, "comm", ev.Comm, known)
	b = appendString(b, "pid_src", ev.PIDSrc.String())
	b = appendUint(b, "isn", uint64(ev.ISN))
	b = appendKey(b, "ret")
	return strconv.AppendInt(b, int64(ev.Ret), 10)
}

func appendState(b []byte, ev *event.Event) []byte {
	b = appendTuple(b, ev)
	b = appendUint(b, "cookie", ev.Cookie)
	b = appendString(b, "old_state", event.StateName(ev.OldState))
	b = appendString(b, "new_state", event.StateName(ev.NewState))
	b = appendSeqSpace(b, ev)
	b = appendPID(b, ev)
	return appendSender(b, &ev.Sender)
}

// appendRcvState writes the state the socket was in when the segment
// arrived (OldState) and the segment's numbers.
func appendRcvState(b []byte, ev *event.Event) []byte {
	b = appendTuple(b, ev)
	b = appendUint(b, "cookie", ev.Cookie)
	b = appendString(b, "state", event.StateName(ev.OldState))
	b = appendSeqSpace(b, ev)
	b = appendUint(b, "seq", uint64(ev.Seq))
	b = appendUint(b, "ack", uint64(ev.Ack))
	b = appendRel(b, ev)
	b = appendFlags(b, ev.Flags)
	b = appendUint(b, "len", uint64(ev.Len))
	return appendPID(b, ev)
}

func appendRetransmit(b []byte, ev *event.Event) []byte {
	b = appendTuple(b, ev)
	b = appendUint(b, "cookie", ev.Cookie)
	b = appendString(b, "state", event.StateName(ev.OldState))
	b = appendUint(b, "seq", uint64(ev.Seq))
	b = appendUint(b, "len", uint64(ev.Len))
	b = appendOptUint(b, "seq_rel", uint64(ev.SeqRel), ev.HasSeqRel)
	b = appendBool(b, "rel_derived", ev.RelDerived)
	b = appendPID(b, ev)
	b = appendString(b, "cause", event.RetransmitCause(&ev.Sender, ev.OldState))
	return appendSender(b, &ev.Sender)
}

func appendReset(b []byte, ev *event.Event) []byte {
	b = appendTuple(b, ev)
	b = appendUint(b, "cookie", ev.Cookie)
	b = appendOptString(b, "reason", resetReason(ev.Reason), ev.Reason != 0)
	b = appendString(b, "state", event.StateName(ev.OldState))
	return appendPID(b, ev)
}

func appendTuple(b []byte, ev *event.Event) []byte {
	fam := familyName(ev.Family)
	b = appendOptString(b, "family", fam, fam != "")
	b = appendAddr(b, "saddr", ev.Saddr)
	b = appendUint(b, "sport", uint64(ev.Sport))
	b = appendAddr(b, "daddr", ev.Daddr)
	b = appendUint(b, "dport", uint64(ev.Dport))
	return appendSide(b, ev)
}

// appendSide writes which end of the connection the source is, as
// conn.Tracker decided: null when the event belongs to no connection.
func appendSide(b []byte, ev *event.Event) []byte {
	b = appendOptString(b, "side", ev.Side.String(), ev.Conn != 0)
	return appendBool(b, "roles_guessed", ev.Conn != 0 && ev.RolesGuessed)
}

func appendRel(b []byte, ev *event.Event) []byte {
	b = fieldOptUint(b, `,"seq_rel":`, uint64(ev.SeqRel), ev.HasSeqRel)
	b = fieldOptUint(b, `,"ack_rel":`, uint64(ev.AckRel), ev.HasAckRel)
	return appendBool(b, "rel_derived", ev.RelDerived)
}

func appendSeqSpace(b []byte, ev *event.Event) []byte {
	b = appendUint(b, "snd_una", uint64(ev.SndUna))
	b = appendUint(b, "snd_nxt", uint64(ev.SndNxt))
	return appendUint(b, "rcv_nxt", uint64(ev.RcvNxt))
}

// appendPID writes the attribution of state, rcv_state, retransmit and
// reset events; pid, tgid and comm are null when no process is known.
func appendPID(b []byte, ev *event.Event) []byte {
	known := ev.PIDSrc != event.PIDNone
	b = appendOptUint(b, "pid", uint64(ev.PID), known)
	b = appendOptUint(b, "tgid", uint64(ev.TGID), known)
	b = appendOptString(b, "comm", ev.Comm, known)
	return appendString(b, "pid_src", ev.PIDSrc.String())
}

func appendFlags(b []byte, flags uint16) []byte {
	return append(b, flagLists[int(flags)&(len(flagLists)-1)]...)
}

// flagLists holds the rendered "flags" member of every 9-bit flag set.
var flagLists = func() (l [1 << len(event.FlagNames)]string) {
	for f := range l {
		b := []byte(`,"flags":[`)
		for i, name := range event.FlagNames {
			if f&(1<<i) == 0 {
				continue
			}
			if b[len(b)-1] != '[' {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, name...)
			b = append(b, '"')
		}
		l[f] = string(append(b, ']'))
	}
	return l
}()

// appendTypeHead starts a line: type, then the ts_ns key.
func appendTypeHead(b []byte, t event.Type) []byte {
	if int(t) < len(typeHeads) {
		return append(b, typeHeads[t]...)
	}
	return append(appendQuoted(append(b, `{"type":`...), t.String()), `,"ts_ns":`...)
}

// typeHeads holds the line starts of the types there are (and some room).
var typeHeads = func() (h [32]string) {
	for t := range h {
		h[t] = `{"type":` + string(appendQuoted(nil, event.Type(t).String())) + `,"ts_ns":`
	}
	return h
}()

// appendOptions opens each member with the brace or the comma before it,
// so no member needs to know whether it is the first.
func appendOptions(b []byte, o *event.Options) []byte {
	b = append(b, `,"options":`...)
	sep := byte('{')
	if o.HasMSS {
		b = fieldUint(append(b, sep), `"mss":`, uint64(o.MSS))
		sep = ','
	}
	if o.HasWS {
		b = fieldUint(append(b, sep), `"wscale":`, uint64(o.WScale))
		sep = ','
	}
	if o.SACKPerm {
		b = append(append(b, sep), `"sack_perm":true`...)
		sep = ','
	}
	if o.HasTS {
		b = fieldUint(append(b, sep), `"ts":{"val":`, uint64(o.TSval))
		b = fieldUint(b, `,"ecr":`, uint64(o.TSecr))
		b = append(b, '}')
		sep = ','
	}
	if o.NSACK > 0 {
		b = appendSACK(append(b, sep), o)
		sep = ','
	}
	if sep == '{' {
		return append(b, "{}"...)
	}
	return append(b, '}')
}

func appendSACK(b []byte, o *event.Options) []byte {
	b = append(b, `"sack":[`...)
	for i, blk := range o.SACK[:min(int(o.NSACK), len(o.SACK))] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"left":`...)
		b = strconv.AppendUint(b, uint64(blk.Left), 10)
		b = appendUint(b, "right", uint64(blk.Right))
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendKey(b []byte, key string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	return append(b, `":`...)
}

func appendUint(b []byte, key string, v uint64) []byte {
	return appendU64(appendKey(b, key), v)
}

// fieldUint appends a member whose key is given in full, punctuation
// included (`,"seq":`): one copy for the key on the hot path.
func fieldUint(b []byte, field string, v uint64) []byte {
	return appendU64(append(b, field...), v)
}

func fieldOptUint(b []byte, field string, v uint64, ok bool) []byte {
	b = append(b, field...)
	if !ok {
		return append(b, "null"...)
	}
	return appendU64(b, v)
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendU64 is strconv.AppendUint(b, v, 10) without its generic layers:
// two digits per division, one copy at the end.
func appendU64(b []byte, v uint64) []byte {
	if v < 10 {
		return append(b, byte('0'+v))
	}
	var t [20]byte
	i := len(t)
	for v >= 100 {
		q := v / 100
		r := (v - q*100) * 2
		i -= 2
		t[i], t[i+1] = digitPairs[r], digitPairs[r+1]
		v = q
	}
	if v >= 10 {
		i -= 2
		t[i], t[i+1] = digitPairs[v*2], digitPairs[v*2+1]
	} else {
		i--
		t[i] = byte('0' + v)
	}
	return append(b, t[i:]...)
}

func appendOptUint(b []byte, key string, v uint64, ok bool) []byte {
	if !ok {
		return append(appendKey(b, key), "null"...)
	}
	return appendUint(b, key, v)
}

func appendString(b []byte, key, v string) []byte {
	return appendQuoted(appendKey(b, key), v)
}

func appendOptString(b []byte, key, v string, ok bool) []byte {
	if !ok {
		return append(appendKey(b, key), "null"...)
	}
	return appendString(b, key, v)
}

func appendAddr(b []byte, key string, a netip.Addr) []byte {
	b = appendKey(b, key)
	if !a.IsValid() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = a.AppendTo(b)
	return append(b, '"')
}

func familyName(f uint8) string {
	switch f {
	case 4:
		return "ipv4"
	case 6:
		return "ipv6"
	}
	return ""
}

func filterFamily(f uint8) string {
	if name := familyName(f); name != "" {
		return name
	}
	return "any"
}

func resetReason(r uint8) string {
	switch r {
	case event.ResetSent:
		return "sent"
	case event.ResetReceived:
		return "received"
	}
	return "unknown"
}

func appendBool(b []byte, key string, v bool) []byte {
	b = appendKey(b, key)
	return strconv.AppendBool(b, v)
}
