package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"tcptracer/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	cli   = netip.MustParseAddrPort("127.0.0.1:40000")
	srv   = netip.MustParseAddrPort("127.0.0.1:20000")
	cli6  = netip.MustParseAddrPort("[2001:db8::1]:51000")
	srv6  = netip.MustParseAddrPort("[2001:db8::2]:20000")
	anyV4 = netip.MustParseAddrPort("0.0.0.0:20000")
)

func withTuple(ev event.Event, from, to netip.AddrPort) event.Event {
	ev.Family = 4
	if from.Addr().Is6() {
		ev.Family = 6
	}
	ev.Saddr, ev.Sport, ev.Daddr, ev.Dport = from.Addr(), from.Port(), to.Addr(), to.Port()
	return ev
}

func synOptions() event.Options {
	return event.Options{MSS: 65495, HasMSS: true, WScale: 7, HasWS: true, SACKPerm: true, HasTS: true, TSval: 3000000001, TSecr: 0}
}

// goldenCases hold, per event type, the lines of its golden file. The
// values are those of the echo scenario (client 40000 -> server 20000,
// client ISN 1000, server ISN 5000) plus the edge cases of each type.
var goldenCases = []struct {
	name   string
	events []event.Event
}{{
	name: "start",
	events: []event.Event{{
		Type: event.TypeStart, TS: 1000, Index: 1,
		Start: &event.Start{
			Kernel: "6.18.0-test", Version: "v0.1.0", Port: 20000, Ifaces: []string{"lo"},
			Hooks: []event.Hook{
				{Name: "tcp_v4_connect", Mode: "tracepoint", Target: "tp_btf inet_sock_set_state: the record for tcp_v4_connect is written when the socket leaves SYN_SENT", Refused: []event.Refusal{
					{Mode: "fentry", Reason: "load programs: program fentry_v6_connect: load program: operation not permitted (MEMLOCK may be too low, consider rlimit.RemoveMemlock)"},
					{Mode: "kprobe", Reason: "attach kprobe tcp_v4_connect: creating tracefs event (arch-specific fallback for \"tcp_v4_connect\"): creating probe entry on tracefs: checking trace event ebpf_e4fdd7328bf62999/tcp_v4_connect: neither debugfs nor tracefs are mounted"},
				}},
				{Name: "tcp_v6_connect", Mode: "tracepoint", Target: "tp_btf inet_sock_set_state: the record for tcp_v6_connect is written when the socket leaves SYN_SENT", Refused: []event.Refusal{
					{Mode: "fentry", Reason: "load programs: program fentry_v6_connect: load program: operation not permitted (MEMLOCK may be too low, consider rlimit.RemoveMemlock)"},
					{Mode: "kprobe", Reason: "attach kprobe tcp_v4_connect: creating tracefs event (arch-specific fallback for \"tcp_v4_connect\"): creating probe entry on tracefs: checking trace event ebpf_e4fdd7328bf62999/tcp_v4_connect: neither debugfs nor tracefs are mounted"},
				}},
				{Name: "tcp_rcv_state_process", Mode: "tracepoint", Target: "tp_btf inet_sock_set_state (kernel view on each state change; no per-segment record)", Refused: []event.Refusal{
					{Mode: "fentry", Reason: "load programs: program fentry_v6_connect: load program: operation not permitted (MEMLOCK may be too low, consider rlimit.RemoveMemlock)"},
					{Mode: "kprobe", Reason: "attach kprobe tcp_v4_connect: creating tracefs event (arch-specific fallback for \"tcp_v4_connect\"): creating probe entry on tracefs: checking trace event ebpf_e4fdd7328bf62999/tcp_v4_connect: neither debugfs nor tracefs are mounted"},
				}},
				{Name: "accept_owner", Mode: "tracepoint", Target: "tp_btf sock_recv_length + sock_send_length", Refused: []event.Refusal{
					{Mode: "fentry", Reason: "load programs: program fentry_v6_connect: load program: operation not permitted (MEMLOCK may be too low, consider rlimit.RemoveMemlock)"},
					{Mode: "kprobe", Reason: "attach kprobe tcp_v4_connect: creating tracefs event (arch-specific fallback for \"tcp_v4_connect\"): creating probe entry on tracefs: checking trace event ebpf_e4fdd7328bf62999/tcp_v4_connect: neither debugfs nor tracefs are mounted"},
				}},
				{Name: "inet_sock_set_state", Mode: "tracepoint", Target: "tp_btf inet_sock_set_state"},
				{Name: "tcp_retransmit_skb", Mode: "tracepoint", Target: "tp_btf tcp_retransmit_skb"},
				{Name: "tcp_send_reset", Mode: "tracepoint", Target: "tp_btf tcp_send_reset"},
				{Name: "tcp_receive_reset", Mode: "tracepoint", Target: "tp_btf tcp_receive_reset"},
				{Name: "tc", Mode: "tcx", Target: "ingress+egress on [lo]"},
			},
		},
	}, {
		Type: event.TypeStart, TS: 2000, Index: 1,
		Start: &event.Start{Kernel: "6.1.0-cloud", Version: "dev", PID: 4242, Family: 6},
	}},
}, {
	name: "segment",
	events: []event.Event{
		withTuple(event.Event{Type: event.TypeSegment, TS: 1000100, Conn: 1, Index: 2, Ifindex: 1, Iface: "lo", Dir: event.Egress,
			Seq: 1000, Flags: event.SYN, Win: 65495, HdrLen: 40, Opts: synOptions(), HasSeqRel: true,
			PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner}, cli, srv),
		withTuple(event.Event{Type: event.TypeSegment, TS: 1000200, Conn: 1, Index: 3, Ifindex: 1, Iface: "lo", Dir: event.Ingress,
			Seq: 1000, Flags: event.SYN, Win: 65495, HdrLen: 40, Opts: synOptions(), HasSeqRel: true, Wire: true, TwinOf: 2,
			PID: 200, TGID: 200, Comm: "server", PIDSrc: event.PIDOwner}, cli, srv),
		withTuple(event.Event{Type: event.TypeSegment, TS: 1000300, Conn: 1, Index: 8, Ifindex: 1, Iface: "lo", Dir: event.Egress,
			Seq: 1001, Ack: 5001, Flags: event.PSH | event.ACK, Len: 2, Win: 512, HdrLen: 32,
			Opts:   event.Options{HasTS: true, TSval: 3000000002, TSecr: 3000000001},
			SeqRel: 1, AckRel: 1, HasSeqRel: true, HasAckRel: true, PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner}, cli, srv),
		// Traced from the middle: the roles are guessed, the bases derived.
		withTuple(event.Event{Type: event.TypeSegment, TS: 1000400, Conn: 7, Index: 40, Ifindex: 3, Dir: event.Ingress, Wire: true, GSOSegs: 3, GSOSize: 1448,
			Seq: 4000000000, Ack: 12345, Flags: event.ACK | event.ECE | event.CWR, Win: 1024, HdrLen: 44,
			Side: event.Server, RolesGuessed: true, SeqRel: 1, AckRel: 1, HasSeqRel: true, HasAckRel: true, RelDerived: true,
			Opts: event.Options{NSACK: 2, SACK: [4]event.SACKBlock{{Left: 12000, Right: 13000}, {Left: 14000, Right: 15000}}}}, srv6, cli6),
		withTuple(event.Event{Type: event.TypeSegment, TS: 1000450, Conn: 1, Index: 41, Ifindex: 1, Iface: "lo", Dir: event.Egress,
			Seq: 1003, Ack: 5003, Flags: event.ACK, Len: 1448, Win: 512, HdrLen: 20, SeqRel: 3, AckRel: 3, HasSeqRel: true, HasAckRel: true,
			PID: 100, Comm: "client", PIDSrc: event.PIDOwner, Sender: testSender()}, cli, srv),
	},
}, {
	name: "connect",
	events: []event.Event{
		withTuple(event.Event{Type: event.TypeConnect, TS: 1000500, Conn: 1, Index: 4, Cookie: 4097,
			PID: 100, TGID: 100, UID: 1000, Comm: "client", PIDSrc: event.PIDOwner, ISN: 1000}, cli, srv),
		withTuple(event.Event{Type: event.TypeConnect, TS: 1000600, Conn: 2, Index: 9, Cookie: 4099,
			PID: 101, TGID: 100, UID: 0, Comm: "client", PIDSrc: event.PIDOwner, Ret: -111}, cli6, srv6),
	},
}, {
	name: "state",
	events: []event.Event{
		withTuple(event.Event{Type: event.TypeState, TS: 1000700, Conn: 1, Index: 5, Cookie: 4097, OldState: 2, NewState: 1,
			SndUna: 1001, SndNxt: 1001, RcvNxt: 5001, PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner}, cli, srv),
		withTuple(event.Event{Type: event.TypeState, TS: 1000800, Index: 6, Cookie: 4096, OldState: 7, NewState: 10,
			PID: 7, TGID: 7, Comm: "ksoftirqd/0", PIDSrc: event.PIDCurrent}, anyV4, netip.AddrPortFrom(netip.IPv4Unspecified(), 0)),
	},
}, {
	name: "rcv_state",
	events: []event.Event{
		withTuple(event.Event{Type: event.TypeRcvState, TS: 1000900, Conn: 1, Index: 10, Cookie: 4097, OldState: 2,
			SndUna: 1000, SndNxt: 1001, RcvNxt: 0, Seq: 5000, Ack: 1001, Flags: event.SYN | event.ACK,
			AckRel: 1, HasSeqRel: true, HasAckRel: true, PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner}, cli, srv),
		// Traced from the middle: the bases come from the kernel's snd_una and rcv_nxt.
		withTuple(event.Event{Type: event.TypeRcvState, TS: 1001000, Conn: 3, Index: 11, Cookie: 4100, OldState: 4,
			SndUna: 77, SndNxt: 78, RcvNxt: 900, Seq: 900, Ack: 78, Flags: event.FIN | event.ACK,
			Side: event.Server, RolesGuessed: true, SeqRel: 1, AckRel: 2, HasSeqRel: true, HasAckRel: true, RelDerived: true,
			PID: 0, Comm: "swapper/1", PIDSrc: event.PIDCurrent}, srv6, cli6),
	},
}, {
	name: "retransmit",
	events: []event.Event{
		withTuple(event.Event{Type: event.TypeRetransmit, TS: 1001100, Conn: 1, Index: 12, Cookie: 4097, OldState: 1,
			Seq: 1001, Len: 2, SeqRel: 1, HasSeqRel: true, PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner}, cli, srv),
		withTuple(event.Event{Type: event.TypeRetransmit, TS: 1001200, Conn: 4, Index: 13, Cookie: 5000, OldState: 2,
			Seq: 99, Len: 0}, cli6, srv6),
		withTuple(event.Event{Type: event.TypeRetransmit, TS: 1001250, Conn: 1, Index: 42, Cookie: 4097, OldState: 1,
			Seq: 1003, Len: 1448, SeqRel: 3, HasSeqRel: true, PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner,
			Sender: recoverySender()}, cli, srv),
	},
}, {
	name: "drop",
	events: []event.Event{
		withTuple(event.Event{Type: event.TypeDrop, TS: 1001260, Conn: 1, Index: 43, Ifindex: 1, Iface: "lo",
			Seq: 1003, Ack: 5003, Flags: event.ACK, Len: 1448, SeqRel: 3, AckRel: 3, HasSeqRel: true, HasAckRel: true,
			Drop: event.Drop{HasReason: true, Reason: 12, ReasonName: "NETFILTER_DROP", Location: 0xffffffff81c2a3bc,
				Symbol: "nf_hook_slow+0x9c", Segment: 41}}, cli, srv),
		withTuple(event.Event{Type: event.TypeDrop, TS: 1001270, Index: 44, Seq: 77, Flags: event.SYN,
			Drop: event.Drop{ReasonName: event.NoReason, Location: 0xffffffff81b00010}}, cli6, srv6),
	},
}, {
	name: "reset",
	events: []event.Event{
		withTuple(event.Event{Type: event.TypeReset, TS: 1001300, Conn: 5, Index: 14, Reason: event.ResetSent, OldState: 7, Side: event.Server,
			PID: 9, TGID: 9, Comm: "ksoftirqd/1", PIDSrc: event.PIDCurrent}, srv, cli),
		withTuple(event.Event{Type: event.TypeReset, TS: 1001400, Conn: 5, Index: 15, Cookie: 4097, Reason: event.ResetReceived,
			OldState: 2, PID: 100, TGID: 100, Comm: "client", PIDSrc: event.PIDOwner}, cli, srv),
	},
}, {
	name:   "lost",
	events: []event.Event{{Type: event.TypeLost, TS: 1001500, Index: 16, Count: 17}},
}}

// testSender is a socket in open state with an RTT measured.
func testSender() event.Sender {
	return event.Sender{Valid: true, SndUna: 1003, SndNxt: 1003, RcvNxt: 5003, SndWnd: 65536, Cwnd: 10, Ssthresh: 2147483647,
		SRTT: 50, RTTVar: 25, RTOVar: 200000, RTO: 201000, PacketsOut: 0, Delivered: 2, MSS: 1448}
}

// recoverySender is a socket in fast recovery, retransmitting.
func recoverySender() event.Sender {
	s := testSender()
	s.SndNxt, s.Cwnd, s.Ssthresh, s.PacketsOut, s.RetransOut, s.LostOut, s.SackedOut = 7347, 7, 7, 3, 1, 1, 2
	s.TotalRetrans, s.CAState = 1, 3
	return s
}

func writeAll(t *testing.T, evs []event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewJSONWriter(&buf)
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatalf("write event %d: %v", i, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return buf.Bytes()
}

func TestJSONGolden(t *testing.T) {
	for _, tt := range goldenCases {
		t.Run(tt.name, func(t *testing.T) {
			got := writeAll(t, tt.events)
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", path, got, want)
			}
			checkLines(t, got, tt.name)
		})
	}
}

// checkLines asserts what the schema promises of every line: valid JSON,
// "type" first, then ts_ns, conn and id.
func checkLines(t *testing.T, out []byte, typ string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for _, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Errorf("invalid JSON: %s", line)
		}
		prefix := `{"type":"` + typ + `","ts_ns":`
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, `,"conn":`) {
			t.Errorf("line does not start with type, ts_ns, conn: %s", line)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range goldenCases {
		for i := range tt.events {
			want := &tt.events[i]
			line, err := AppendJSON(nil, want)
			if err != nil {
				t.Fatalf("%s %d: %v", tt.name, i, err)
			}
			var got event.Event
			if err := Decode(line, &got); err != nil {
				t.Fatalf("%s %d: decode %s: %v", tt.name, i, line, err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("%s %d: round trip differs\nline: %s\ngot:  %+v\nwant: %+v", tt.name, i, line, got, *want)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"not json", `{"type":`, "decode event"},
		{"unknown type", `{"type":"bogus","ts_ns":1}`, `unknown type "bogus"`},
		{"bad address", `{"type":"segment","saddr":"300.1.1.1"}`, "parse address"},
		{"bad flag", `{"type":"segment","flags":["SYN","XMAS"]}`, `unknown flag "XMAS"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev event.Event
			err := Decode([]byte(tt.line), &ev)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteUnknownType(t *testing.T) {
	w := NewJSONWriter(&bytes.Buffer{})
	if err := w.Write(&event.Event{Type: 99}); err == nil {
		t.Fatal("writing an unknown type succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFlushError(t *testing.T) {
	w := NewJSONWriter(failWriter{})
	if err := w.Write(&event.Event{Type: event.TypeLost, Count: 1}); err != nil {
		t.Fatalf("buffered write failed early: %v", err)
	}
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("flush error %v, want the writer's", err)
	}
}

func TestCommEscaping(t *testing.T) {
	tests := []struct {
		comm string
		want string // the JSON string as written
	}{
		{"client", `"client"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"tab\there\nnl\rcr", `"tab\there\nnl\rcr"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"ünï⌘", `"ünï⌘"`},
		{"bad\xff\xfeend", `"bad\ufffd\ufffdend"`},
		{"ls\u2028ps\u2029", `"ls\u2028ps\u2029"`},
		{"</script>&", `"</script>&"`},
	}
	for _, tt := range tests {
		ev := withTuple(event.Event{Type: event.TypeConnect, Comm: tt.comm, PIDSrc: event.PIDOwner}, cli, srv)
		line, err := AppendJSON(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(line), `"comm":`+tt.want+`,`) {
			t.Errorf("comm %q: line %s does not contain %s", tt.comm, line, tt.want)
		}
		var back event.Event
		if err := Decode(line, &back); err != nil {
			t.Fatalf("comm %q: decode %s: %v", tt.comm, line, err)
		}
		if want := string([]rune(tt.comm)); back.Comm != want {
			t.Errorf("comm %q: decoded as %q, want %q", tt.comm, back.Comm, want)
		}
	}
}

func TestWriteSegmentDoesNotAllocate(t *testing.T) {
	w := NewJSONWriter(discard{})
	ev := goldenCases[1].events[2]
	if ev.Type != event.TypeSegment {
		t.Fatal("fixture is not a segment")
	}
	ev.Opts = synOptions()
	ev.Opts.NSACK, ev.Opts.SACK[0] = 1, event.SACKBlock{Left: 1, Right: 2}
	allocs := testing.AllocsPerRun(1000, func() {
		ev.Seq++
		if err := w.Write(&ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Write allocates %.1f times per segment, want 0", allocs)
	}
}

// discard is io.Discard without bufio's ReadFrom shortcut, so the writer
// goes through its normal path.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestCacheSameBytes: the writer's cached pieces give the same line as
// rendering every piece, also when two connections share a cache slot and
// when a connection's owner becomes known.
func TestCacheSameBytes(t *testing.T) {
	var evs []event.Event
	for _, tt := range goldenCases {
		evs = append(evs, tt.events...)
	}
	seg := goldenCases[1].events[2]
	for i := range 600 { // more tuples than slots: collisions and evictions
		ev := seg
		ev.Sport, ev.Dport = uint16(40000+i%300), uint16(20000+i%7)
		ev.Dir, ev.Wire = event.Dir(i&1), i&2 != 0
		ev.PID, ev.PIDSrc = uint32(i%70), event.PIDSource(i%3)
		evs = append(evs, ev)
	}
	got := writeAll(t, evs)
	var want []byte
	for i := range evs {
		line, err := AppendJSON(nil, &evs[i])
		if err != nil {
			t.Fatal(err)
		}
		want = append(append(want, line...), '\n')
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("cached output differs from uncached:\n%s\nwant:\n%s", got, want)
	}
}

func TestAppendU64(t *testing.T) {
	for _, v := range []uint64{0, 9, 10, 99, 100, 999, 1000, 1e19 - 1, 1e19, 12345678, 99999999, 1e8, 100000001, 4294967295, 1e16 + 7, 18446744073709551615} {
		if got, want := string(appendU64(nil, v)), strconv.FormatUint(v, 10); got != want {
			t.Errorf("appendU64(%d) = %s", v, got)
		}
	}
}

// TestWallTimeCache: the once-a-second date and time give the same text
// as formatting every stamp, across second boundaries and back.
func TestWallTimeCache(t *testing.T) {
	c := &encCache{}
	for _, ns := range []int64{1764620000000000000, 1764620000999999999, 1764620001000000001, 1764620000000000007, 1, 0} {
		got := string(c.wallTime(nil, ns))
		if want := time.Unix(0, ns).UTC().Format(rfc3339Nano); got != want {
			t.Errorf("wallTime(%d) = %s, want %s", ns, got, want)
		}
	}
}
