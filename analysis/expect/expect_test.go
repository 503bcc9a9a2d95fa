package expect

import (
	"strings"
	"testing"
	"time"

	"tcptracer/analysis"
	"tcptracer/timeline"
)

func summary() *timeline.Summary {
	s := &timeline.Summary{Conn: 7, HandshakeRTT: 40 * time.Microsecond, HasHandshakeRTT: true,
		Duration: 300 * time.Millisecond, Findings: map[string]int{"duplicate_ack": 2}, Verdict: "ok"}
	s.Sent[timeline.Client] = timeline.Way{Bytes: 2, Segments: 6}
	s.Sent[timeline.Server] = timeline.Way{Bytes: 2, Segments: 5, Retransmissions: 1}
	s.Retransmissions = 1
	s.DropCount, s.RTOs = 1, 1
	s.DropsRepairs = []string{"drop #9 (NETFILTER_DROP) of segment #8 (client seq 1 len 2): repaired by #12, the kernel's rto retransmission #11"}
	s.SenderKnown[timeline.Client] = true
	s.Senders[timeline.Client] = timeline.SenderStats{MaxSRTT: 80 * time.Microsecond, MaxCwnd: 10}
	return s
}

func TestParseErrorsNameEachUnknown(t *testing.T) {
	_, err := Parse("no-findings,bogus", "rtt<5ms", "bytes>=x", "duration=2s")
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{`"bogus"`, `"rtt<5ms"`, `"bytes>=x"`, `"duration=2s"`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		exp  string
		fail bool
	}{
		{"no-retransmissions", true},
		{"no-findings", true},
		{"no-resets", false},
		{"no-violations", false},
		{"ok", false},
		{"no-disagreements", false},
		{"no-duplicate_ack", true},
		{"no-zero_window", false},
		{"handshake-rtt<5ms", false},
		{"handshake-rtt<10us", true},
		{"duration<2s", false},
		{"duration<=300ms", false},
		{"duration>1s", true},
		{"bytes>=4", false},
		{"bytes>=5", true},
		{"bytes-c2s==2", false},
		{"bytes-s2c!=2", true},
		{"segments==11", false},
		{"retransmissions<=1", false},
		{"findings<2", true},
		{"kernel-retransmissions==0", true}, // unknown without the tracepoint: fails
		{"no-drops", true},
		{"drops<=1", false},
		{"drops<1", true},
		{"no-rto", true},
		{"rtos<=1", false},
		{"srtt<1ms", false},
		{"srtt<50us", true},
		{"cwnd>=10", false},
		{"cwnd>=11", true},
	}
	for _, tc := range cases {
		exps, err := Parse(tc.exp)
		if err != nil {
			t.Fatalf("parse %s: %v", tc.exp, err)
		}
		fails := Check(summary(), exps)
		if (len(fails) > 0) != tc.fail {
			t.Errorf("%s: failures %v, want failing=%v", tc.exp, fails, tc.fail)
		}
		if len(fails) > 0 && (fails[0].Expectation != tc.exp || fails[0].Conn != 7) {
			t.Errorf("failure %+v does not name %s on conn 7", fails[0], tc.exp)
		}
	}
}

// A failed drop expectation says which segment was dropped, why, and
// what repaired it.
func TestNoDropsNamesTheDrop(t *testing.T) {
	exps, _ := Parse("no-drops")
	fails := Check(summary(), exps)
	if len(fails) != 1 || !strings.Contains(fails[0].Got, "NETFILTER_DROP") || !strings.Contains(fails[0].Got, "rto retransmission") {
		t.Errorf("failure %v does not explain the drop", fails)
	}
}

// Without a sender's state, srtt and cwnd are unknown, and fail.
func TestSenderMetricsUnknown(t *testing.T) {
	s := summary()
	s.SenderKnown = [2]bool{}
	exps, _ := Parse("srtt<1s", "cwnd>=1")
	if fails := Check(s, exps); len(fails) != 2 || fails[0].Got != "unknown" {
		t.Errorf("failures %v, want both unknown", fails)
	}
}

func TestVerifyIncludesVerdict(t *testing.T) {
	s := summary()
	s.Violations = []analysis.Violation{{Rule: analysis.AckInRange, Index: 9}}
	s.Verdict = "ack-in-range at #9"
	fails := Verify(s, nil)
	if len(fails) != 1 || fails[0].Expectation != "ok" || fails[0].Got != "ack-in-range at #9" {
		t.Errorf("Verify = %v", fails)
	}
	if got := fails[0].String(); got != "conn 7: ok failed (got ack-in-range at #9)" {
		t.Errorf("String = %q", got)
	}
}

// The JSON spellings (underscores) are accepted beside the grammar's.
func TestParseJSONSpellings(t *testing.T) {
	s := summary()
	for _, text := range []string{"handshake_rtt<5ms", "no_retransmissions", "no-duplicate-ack", "no_duplicate_ack", "kernel_retransmissions==0", "bytes_c2s>=2"} {
		exps, err := Parse(text)
		if err != nil || len(exps) != 1 {
			t.Errorf("Parse(%q): %v", text, err)
			continue
		}
		if exps[0].Text != text {
			t.Errorf("Parse(%q).Text = %q, want it as written", text, exps[0].Text)
		}
	}
	if f := Check(s, mustParse(t, "no-duplicate-ack")); len(f) != 1 {
		t.Errorf("no-duplicate-ack on a summary with two: failures %v, want one", f)
	}
}

// An unknown name is answered with the valid ones.
func TestParseErrorListsValid(t *testing.T) {
	for _, c := range []struct{ text, says string }{
		{"bogus", "no-retransmissions"},
		{"no-bogus", `unknown finding "bogus"`},
		{"latency<5ms", `unknown metric "latency"`},
		{"bytes=5", `unknown operator "="`},
	} {
		_, err := Parse(c.text)
		if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "handshake-rtt") || !strings.Contains(err.Error(), "zero_window") {
			t.Errorf("Parse(%q) = %v; want it to say %q and list the valid names", c.text, err, c.says)
		}
	}
}

func mustParse(t *testing.T, text string) []Expectation {
	t.Helper()
	e, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
