package oracle

import (
	"context"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"tcptracer/event"
	"tcptracer/internal/privtest"
)

func TestParseTshark(t *testing.T) {
	empty := strings.Repeat("\t", len(AnalysisFields))
	analysis := func(set ...string) string {
		cols := make([]string, len(AnalysisFields))
		for i, f := range AnalysisFields {
			for _, s := range set {
				if s == f {
					cols[i] = "1"
				}
			}
		}
		return strings.Join(cols, "\t") + "\t"
	}
	in := "1\t0\t198.51.100.1\t\t40000\t198.51.100.2\t\t20000\t1000\t0\t0x0002\t0\t" + empty + "\n" +
		"7\t0\t\t2001:db8::2\t20000\t\t2001:db8::1\t40000\t5001\t1101\t0x0010\t0\t" + analysis("duplicate_ack") + "2\n" +
		"9\t3\t198.51.100.1\t\t40000\t198.51.100.2\t\t20000\t1101\t5001\t0x0018\t100\t" + analysis("retransmission", "fast_retransmission") + "\n"
	got, err := ParseTshark(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Frame{
		{Number: 1, Key: Key{Saddr: a4, Sport: 40000, Daddr: b4, Dport: 20000, Seq: 1000, Flags: event.SYN}},
		{Number: 7, Key: Key{Saddr: b6, Sport: 20000, Daddr: a6, Dport: 40000, Seq: 5001, Ack: 1101, Flags: event.ACK},
			Analysis: []string{"duplicate_ack"}, DupAckNum: 2},
		{Number: 9, Stream: 3, Key: Key{Saddr: a4, Sport: 40000, Daddr: b4, Dport: 20000, Seq: 1101, Ack: 5001, Flags: event.PSH | event.ACK, Len: 100},
			Analysis: []string{"retransmission", "fast_retransmission"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTshark:\n got %+v\nwant %+v", got, want)
	}
	if !got[2].Has("fast_retransmission") || got[2].Has("out_of_order") {
		t.Errorf("Has on %+v", got[2])
	}
}

func TestParseTsharkErrors(t *testing.T) {
	empty := strings.Repeat("\t", len(AnalysisFields))
	for _, tc := range []struct{ name, line, want string }{
		{"short line", "1\t0\t198.51.100.1", "fields, want"},
		{"bad flags", "1\t0\t198.51.100.1\t\t40000\t198.51.100.2\t\t20000\t1000\t0\tSYN\t0\t" + empty, "tcp.flags"},
		{"no address", "1\t0\t\t\t40000\t198.51.100.2\t\t20000\t1000\t0\t0x0002\t0\t" + empty, "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTshark(strings.NewReader(tc.line + "\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 1") {
				t.Errorf("error %v, want one naming line 1 and %q", err, tc.want)
			}
		})
	}
}

// TestTsharkAnalysis runs the real tshark on a built capture: the command
// line, the field names and the parser must agree with the tshark
// installed, and its verdicts are the ones the e2e tests rely on.
func TestTsharkAnalysis(t *testing.T) {
	privtest.RequireRoot(t, "tshark")
	ms := time.Millisecond
	data := make([]byte, 100)
	c2s := func(d time.Duration, seq, ack uint32, flags uint16, payload []byte) record {
		s := tcpSpec{sport: 40000, dport: 20000, seq: seq, ack: ack, flags: flags, win: 1000, payload: payload}
		return record{ts: t0.Add(d), frame: ether(etherIPv4, false, ipv4("198.51.100.1", "198.51.100.2", nil, protoTCP, 0, s.bytes()))}
	}
	s2c := func(d time.Duration, seq, ack uint32, flags, win uint16) record {
		s := tcpSpec{sport: 20000, dport: 40000, seq: seq, ack: ack, flags: flags, win: win}
		return record{ts: t0.Add(d), frame: ether(etherIPv4, false, ipv4("198.51.100.2", "198.51.100.1", nil, protoTCP, 0, s.bytes()))}
	}
	pcap := pcapBytes(binary.LittleEndian, false, LinkEthernet,
		c2s(0, 1000, 0, event.SYN, nil),
		s2c(1*ms, 5000, 1001, event.SYN|event.ACK, 1000),
		c2s(2*ms, 1001, 5001, event.ACK, nil),
		c2s(3*ms, 1001, 5001, event.PSH|event.ACK, data),
		c2s(4*ms, 1201, 5001, event.PSH|event.ACK, data), // 1101..1201 never seen
		s2c(5*ms, 5001, 1101, event.ACK, 1000),
		s2c(6*ms, 5001, 1101, event.ACK, 1000),
		s2c(7*ms, 5001, 1101, event.ACK, 1000),
		c2s(8*ms, 1101, 5001, event.PSH|event.ACK, data),
		c2s(500*ms, 1101, 5001, event.PSH|event.ACK, data),
		s2c(501*ms, 5001, 1301, event.ACK, 0),
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	frames, err := Tshark(ctx, pcap)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 11 {
		t.Fatalf("%d frames, want 11: %+v", len(frames), frames)
	}
	want := map[int][]string{
		5:  {"lost_segment"},
		7:  {"duplicate_ack"},
		8:  {"duplicate_ack"},
		9:  {"retransmission", "fast_retransmission"},
		10: {"retransmission"},
		11: {"zero_window"},
	}
	for _, f := range frames {
		if !reflect.DeepEqual(f.Analysis, want[f.Number]) {
			t.Errorf("frame %d (%s): analysis %v, want %v", f.Number, f.Key, f.Analysis, want[f.Number])
		}
	}
	if frames[7].DupAckNum != 2 || frames[3].Key.Len != 100 || frames[1].Key.Flags != event.SYN|event.ACK {
		t.Errorf("frames 2, 4, 8 decoded as %+v, %+v, %+v", frames[1], frames[3], frames[7])
	}
}
