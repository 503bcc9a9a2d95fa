package report

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"tcptracer/conn"
	"tcptracer/event"
	"tcptracer/timeline"
)

// opSize is the bytes of fuzz input one event is made from.
const opSize = 12

// fuzzEvents turns fuzz bytes into an event stream between two fixed
// endpoints: per opSize bytes one segment, state, retransmit, reset or
// lost event with fuzzed flags, numbers (near each side's last, so the
// rules have something to judge), window, options and time step.
func fuzzEvents(data []byte) []event.Event {
	ends := [2]netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("192.0.2.2:20000")}
	isn := [2]uint32{0xfffffff0, 1000}
	next := isn
	var ts uint64 = 1_000_000_000
	var evs []event.Event
	for ; len(data) >= opSize; data = data[opSize:] {
		op := data[:opSize]
		from := int(op[0] & 1)
		peer := 1 - from
		ts += uint64(op[1]) * 1_000_000
		ev := event.Event{TS: ts, Family: 4, Saddr: ends[from].Addr(), Sport: ends[from].Port(),
			Daddr: ends[peer].Addr(), Dport: ends[peer].Port(), Iface: "veth0", Ifindex: 2, Wire: true}
		delta := uint32(int16(binary.LittleEndian.Uint16(op[4:])))
		switch op[0] >> 5 {
		case 0, 1, 2, 3:
			ev.Type = event.TypeSegment
			ev.Dir = event.Dir(op[0] >> 1 & 1)
			ev.Flags = uint16(op[2]) | uint16(op[3]&1)<<8
			ev.Seq, ev.Ack = next[from]+delta, next[peer]+uint32(op[6])-128
			ev.Len, ev.Win, ev.HdrLen = uint32(op[7])*16, binary.LittleEndian.Uint16(op[8:]), 20
			ev.Opts = fuzzOptions(op, ev.Seq)
			if s := event.Seq(ev.Seq).Add(ev.Len); ev.Flags&event.SYN == 0 && s.GT(event.Seq(next[from])) {
				next[from] = uint32(s)
			}
		case 4, 5:
			ev.Type = event.TypeState
			ev.OldState, ev.NewState = op[2]%13, op[3]%13
			ev.SndUna, ev.SndNxt, ev.RcvNxt = next[from]-uint32(op[6]), next[from], next[peer]
		case 6:
			ev.Type = event.TypeRetransmit
			ev.Seq, ev.Len = next[from]+delta, uint32(op[7])*16
		default:
			ev.Type, ev.Reason = event.TypeReset, op[2]%3
			if op[3]&1 != 0 {
				ev = event.Event{Type: event.TypeLost, TS: ts, Count: uint64(op[6])}
			}
		}
		evs = append(evs, ev)
	}
	return evs
}

func fuzzOptions(op []byte, seq uint32) event.Options {
	var o event.Options
	if op[10]&1 != 0 {
		o.HasMSS, o.MSS = true, uint16(op[11])<<4
	}
	if op[10]&2 != 0 {
		o.HasWS, o.WScale = true, op[11] // beyond 14 on purpose
	}
	o.SACKPerm = op[10]&4 != 0
	if op[10]&8 != 0 {
		o.HasTS, o.TSval, o.TSecr = true, uint32(op[11]), uint32(op[6])
	}
	o.NSACK = op[10] >> 4 % 5
	for i := range o.NSACK {
		l := seq - uint32(op[11])*uint32(i+1)
		o.SACK[i] = event.SACKBlock{Left: l, Right: l + uint32(op[6])}
	}
	return o
}

// FuzzAnalyzer feeds fuzzed event streams through the connection model,
// the timeline, analysis and both report formats (the ladder included):
// nothing may panic, every connection that ends has a summary, and no
// count in it is more than the events could make.
func FuzzAnalyzer(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x02, 1, 0x02, 0, 0, 0, 128, 0, 0xff, 0xff, 0x0f, 200}, 3))
	f.Add([]byte{0, 1, 0x02, 0, 0, 0, 128, 0, 0, 4, 0x03, 200, 1, 1, 0x12, 0, 0, 0, 129, 0, 0, 4, 0x03, 14,
		0, 1, 0x10, 0, 1, 0, 129, 2, 0, 0, 0, 0, 1, 1, 0x18, 0, 0, 0, 131, 2, 0, 0, 0x28, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		evs := fuzzEvents(data)
		const bound = 1<<15 + 255*16
		var segs [2]int
		var out bytes.Buffer
		for _, format := range []Format{JSON, Text} {
			r := New(&out, Options{Format: format})
			r.tl = timeline.New(timeline.Options{MaxSegments: 8, OnEnd: func(c *timeline.Conn) {
				if c.Summary == nil {
					t.Fatalf("connection %d ended without a summary", c.ID)
				}
				for s, w := range c.Summary.Sent {
					// Bytes span the first to the highest seq sent, gaps
					// included; each event moves it by less than bound.
					if w.Segments > segs[s] || w.Bytes > uint64(len(evs))*bound {
						t.Fatalf("side %d: %d bytes in %d segments, from %d segment events", s, w.Bytes, w.Segments, segs[s])
					}
				}
			}})
			tr := conn.NewTracker(nil)
			segs = [2]int{}
			for i := range evs {
				ev := evs[i]
				tr.Annotate(&ev)
				if ev.Type == event.TypeSegment && ev.Conn != 0 {
					segs[ev.Side]++
				}
				if err := r.Feed(&ev); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Finish(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
