package e2e

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"tcptracer/internal/oracle"
)

// The wire tests' own logic, checked without root on made-up streams.

var (
	unitClient = netip.MustParseAddrPort("198.51.100.1:40000")
	unitServer = netip.MustParseAddrPort("198.51.100.2:20000")
)

func unitSeg(toServer bool, seq uint32, n uint32, flags ...string) wireEvent {
	e := wireEvent{Type: "segment", Saddr: unitServer.Addr(), Sport: unitServer.Port(), Daddr: unitClient.Addr(), Dport: unitClient.Port(),
		Seq: seq, Len: n, Flags: append([]string{"ACK"}, flags...)}
	if toServer {
		e.Saddr, e.Sport, e.Daddr, e.Dport = e.Daddr, e.Dport, e.Saddr, e.Sport
	}
	return e
}

func TestCovers(t *testing.T) {
	b := &wireBed{server: unitServer}
	isn := uint32(1<<32 - 1000) // the transfer wraps around 2^32
	syn := wireEvent{Type: "segment", Saddr: unitClient.Addr(), Sport: unitClient.Port(), Daddr: unitServer.Addr(), Dport: unitServer.Port(),
		Seq: isn, Flags: []string{"SYN"}}
	for _, tc := range []struct {
		name string
		segs []wireEvent
		want string // "" for no error
	}{
		{"in order", []wireEvent{syn, unitSeg(true, isn+1, 1500), unitSeg(true, isn+1501, 1500)}, ""},
		{"resent and overlapping", []wireEvent{syn, unitSeg(true, isn+1001, 2000), unitSeg(true, isn+1, 1500), unitSeg(true, isn+1, 1000)}, ""},
		{"a hole", []wireEvent{syn, unitSeg(true, isn+1, 1000), unitSeg(true, isn+1501, 1500)}, "bytes 1000.. of 3000 never seen"},
		{"short", []wireEvent{syn, unitSeg(true, isn+1, 2999)}, "bytes 2999.. of 3000"},
		{"other direction only", []wireEvent{syn, unitSeg(false, isn+1, 3000)}, "bytes 0.. of 3000"},
		{"no SYN", []wireEvent{unitSeg(true, isn+1, 3000)}, "no SYN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := covers(tc.segs, b, true, 3000)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("covers = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestKindsOfFrame(t *testing.T) {
	for _, tc := range []struct {
		analysis []string
		want     []string
	}{
		{nil, nil},
		{[]string{"retransmission"}, []string{"retransmission"}},
		{[]string{"retransmission", "fast_retransmission"}, []string{"fast_retransmission"}},
		{[]string{"retransmission", "spurious_retransmission"}, []string{"spurious_retransmission"}},
		{[]string{"lost_segment", "window_full"}, []string{"previous_segment_not_seen", "window_full"}},
	} {
		if got := tsharkKinds(oracle.Frame{Analysis: tc.analysis}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("tsharkKinds(%v) = %v, want %v", tc.analysis, got, tc.want)
		}
	}
}

func TestRFC5681Exempt(t *testing.T) {
	frame := func(toServer bool, seq, ack, n uint32, dup bool) oracle.Frame {
		e := unitSeg(toServer, seq, n)
		e.Ack = ack
		f := oracle.Frame{Key: e.key()}
		if dup {
			f.Analysis = []string{"duplicate_ack"}
		}
		return f
	}
	frames := []oracle.Frame{
		frame(true, 1000, 5000, 100, false), // client sends 1000..1100
		frame(false, 5000, 1050, 0, false),  // server acks half
		frame(false, 5000, 1050, 0, true),   // a duplicate while 1050..1100 is outstanding: counts
		frame(false, 5000, 1100, 0, false),  // all acked
		frame(false, 5000, 1100, 0, true),   // D-SACK after a spurious resend: nothing outstanding
		frame(true, 1100, 5000, 50, false),  // more data
		frame(false, 5000, 1100, 0, true),   // now 1100..1150 is outstanding: counts
	}
	got := frameKeys(oracle.RFC5681Exempt(frames))
	if want := []oracle.Key{frames[4].Key}; !reflect.DeepEqual(got, want) {
		t.Errorf("exempt %v, want %v", got, want)
	}
}
