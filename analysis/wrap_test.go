package analysis_test

import (
	"fmt"
	"strings"
	"testing"

	"tcptracer/timeline"
	tt "tcptracer/timeline/timelinetest"
)

// Client ISN 5 below 2^32, server ISN 1 below: the handshake and the first
// bytes of each direction cross the wrap.
const wrapClientISN, wrapServerISN = 0xfffffffb, 0xffffffff

// describeRun renders what analysis decided about each segment, without
// absolute numbers (violation details print them when the ISN is unknown).
func describeRun(segs []timeline.Segment) string {
	var b strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&b, "#%d %s %s seq=%d ack=%d len=%d win=%d %s", s.Index, s.From,
			tt.FlagString(s.Flags), s.SeqRel, s.AckRel, s.Len, s.Win, strings.Join(kinds(s), ","))
		for _, v := range s.Violations {
			fmt.Fprintf(&b, " !%s@%d", v.Rule, v.Index)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestWraparound runs every finding and rule case again with ISNs just
// below 2^32: relative numbers, findings and violations must not change.
func TestWraparound(t *testing.T) {
	type namedCase struct {
		name string
		b    *tt.Builder
	}
	var cases []namedCase
	for _, c := range findingCases {
		cases = append(cases, namedCase{c.name, c.b})
	}
	for _, c := range ruleCases {
		cases = append(cases, namedCase{c.name, c.b})
	}
	crossed := 0
	for _, c := range cases {
		want := describeRun(run(c.b))
		wrapped := c.b.Rebased(wrapClientISN, wrapServerISN)
		got := describeRun(run(wrapped))
		if got != want {
			t.Errorf("%s across the wrap:\n%s\nwant, as without it:\n%s", c.name, got, want)
		}
		for _, ev := range wrapped.Events {
			if ev.HasSeqRel && ev.Seq < ev.SeqRel {
				crossed++ // the absolute number wrapped below its relative one
				break
			}
		}
	}
	if crossed < len(cases)/2 {
		t.Errorf("only %d of %d cases have numbers across the wrap; the test would prove little", crossed, len(cases))
	}
}
