// Package output renders annotated events. The NDJSON form (one object per
// line, "type" first, documented in README.md) is built by hand into a
// reused buffer: the tracer writes one line per segment, and reflection
// there would cost more than the rest of the pipeline.
package output

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"

	"tcptracer/event"
)

// rfc3339Nano is RFC 3339 with all nine digits of the nanoseconds, so
// every "ts" has the same width.
const rfc3339Nano = "2006-01-02T15:04:05.000000000Z07:00"

// JSONWriter writes events as JSON lines through a buffer. The caller
// flushes it (on a timer and at exit); it is not safe for concurrent use.
type JSONWriter struct {
	w    *bufio.Writer
	buf  []byte
	wall int64 // wall clock minus CLOCK_MONOTONIC in ns; 0: no "ts" field
}

// SetWallClock makes every line carry "ts" after "ts_ns": the wall-clock
// time of ts_ns in RFC 3339 with nanoseconds (UTC), computed with offset,
// the wall clock minus CLOCK_MONOTONIC measured once at start.
func (j *JSONWriter) SetWallClock(offset int64) { j.wall = offset }

// NewJSONWriter returns a JSONWriter writing to w.
func NewJSONWriter(w io.Writer) *JSONWriter {
	return &JSONWriter{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 1024)}
}

// Lines returns the buffered writer behind j, for other JSON lines that
// must interleave with the events in order (the analysis report).
func (j *JSONWriter) Lines() io.Writer { return j.w }

// Write appends ev as one line.
func (j *JSONWriter) Write(ev *event.Event) error {
	b, err := appendJSON(j.buf[:0], ev, j.wall)
	if err != nil {
		return err
	}
	j.buf = append(b, '\n')
	if _, err := j.w.Write(j.buf); err != nil {
		return fmt.Errorf("write %s event: %w", ev.Type, err)
	}
	return nil
}

// Flush writes buffered lines to the underlying writer.
func (j *JSONWriter) Flush() error {
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("flush json output: %w", err)
	}
	return nil
}

// AppendJSON appends ev as one JSON object (without a newline) to b.
func AppendJSON(b []byte, ev *event.Event) ([]byte, error) { return appendJSON(b, ev, 0) }

func appendJSON(b []byte, ev *event.Event, wall int64) ([]byte, error) {
	b = appendHeader(b, ev, wall)
	switch ev.Type {
	case event.TypeStart:
		b = appendStart(b, ev.Start)
	case event.TypeSegment:
		b = appendSegment(b, ev)
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
	default:
		return b, fmt.Errorf("encode event: unknown type %d", ev.Type)
	}
	return append(b, '}'), nil
}

func appendHeader(b []byte, ev *event.Event, wall int64) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, ev.Type.String()...)
	b = append(b, '"')
	b = appendUint(b, "ts_ns", ev.TS)
	if wall != 0 {
		b = append(appendKey(b, "ts"), '"')
		b = time.Unix(0, int64(ev.TS)+wall).UTC().AppendFormat(b, rfc3339Nano)
		b = append(b, '"')
	}
	b = appendOptUint(b, "conn", ev.Conn, ev.Conn != 0)
	return appendUint(b, "id", ev.Index)
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

func appendSegment(b []byte, ev *event.Event) []byte {
	b = appendOptString(b, "iface", ev.Iface, ev.Iface != "")
	b = appendUint(b, "ifindex", uint64(ev.Ifindex))
	b = appendString(b, "dir", ev.Dir.String())
	b = appendString(b, "point", ev.Point.String())
	b = appendBool(b, "wire", ev.Wire)
	b = appendTuple(b, ev)
	b = appendUint(b, "seq", uint64(ev.Seq))
	b = appendUint(b, "ack", uint64(ev.Ack))
	b = appendRel(b, ev)
	b = appendFlags(b, ev.Flags)
	b = appendUint(b, "len", uint64(ev.Len))
	b = appendUint(b, "win", uint64(ev.Win))
	b = appendUint(b, "hdr_len", uint64(ev.HdrLen))
	b = appendUint(b, "gso_segs", uint64(ev.GSOSegs))
	b = appendUint(b, "gso_size", uint64(ev.GSOSize))
	b = appendOptions(b, &ev.Opts)
	b = appendOptUint(b, "twin_of", ev.TwinOf, ev.TwinOf != 0)
	known := ev.PIDSrc != event.PIDNone
	b = appendOptUint(b, "pid", uint64(ev.PID), known)
	b = appendOptUint(b, "tgid", uint64(ev.TGID), known)
	b = appendOptString(b, "comm", ev.Comm, known)
	return appendString(b, "pid_src", ev.PIDSrc.String())
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
	return appendPID(b, ev)
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
	return appendPID(b, ev)
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
	b = appendOptUint(b, "seq_rel", uint64(ev.SeqRel), ev.HasSeqRel)
	b = appendOptUint(b, "ack_rel", uint64(ev.AckRel), ev.HasAckRel)
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
	b = append(b, `,"flags":[`...)
	first := true
	for i, name := range event.FlagNames {
		if flags&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"')
	}
	return append(b, ']')
}

func appendOptions(b []byte, o *event.Options) []byte {
	b = append(b, `,"options":{`...)
	n := len(b)
	if o.HasMSS {
		b = appendUint(b, "mss", uint64(o.MSS))
	}
	if o.HasWS {
		b = appendUint(b, "wscale", uint64(o.WScale))
	}
	if o.SACKPerm {
		b = append(b, `,"sack_perm":true`...)
	}
	if o.HasTS {
		b = append(b, `,"ts":{"val":`...)
		b = strconv.AppendUint(b, uint64(o.TSval), 10)
		b = appendUint(b, "ecr", uint64(o.TSecr))
		b = append(b, '}')
	}
	if o.NSACK > 0 {
		b = appendSACK(b, o)
	}
	if len(b) > n { // drop the first member's leading comma
		copy(b[n:], b[n+1:])
		b = b[:len(b)-1]
	}
	return append(b, '}')
}

func appendSACK(b []byte, o *event.Options) []byte {
	b = append(b, `,"sack":[`...)
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
	b = append(b, ',', '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendUint(b []byte, key string, v uint64) []byte {
	return strconv.AppendUint(appendKey(b, key), v, 10)
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
