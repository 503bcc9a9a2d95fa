package tsharkcheck

import (
	"slices"
	"testing"
)

func TestParseAndCompare(t *testing.T) {
	// frame 3: retransmission beside fast_retransmission; frame 5: lost_segment.
	line := func(n string, set ...int) string {
		cols := make([]string, 1+len(Kinds))
		cols[0] = n
		for _, i := range set {
			cols[1+i] = "1"
		}
		return join(cols)
	}
	out := line("1") + "\n" + line("3", 0, 1) + "\n" + line("5", 4) + "\n" + line("7", 0) + "\n"
	ts, err := parseTshark([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ts["retransmission"], []int{7}) || !slices.Equal(ts["fast_retransmission"], []int{3}) ||
		!slices.Equal(ts["previous_segment_not_seen"], []int{5}) {
		t.Fatalf("parsed %v", ts)
	}
	tr, err := Analyze([]byte(`{"type":"summary"}
{"type":"finding","ts_ns":1,"conn":1,"segment":9,"kind":"retransmission"}
{"type":"finding","ts_ns":1,"conn":1,"segment":3,"kind":"fast_retransmission"}
`))
	if err != nil {
		t.Fatal(err)
	}
	rows := Compare(ts, tr)
	if r := rows[0]; r.Both != 0 || !slices.Equal(r.OnlyTshark, []int{7}) || !slices.Equal(r.OnlyTracer, []int{9}) {
		t.Errorf("retransmission row %v", r)
	}
	if r := rows[1]; !r.Agree() || r.Both != 1 {
		t.Errorf("fast_retransmission row %v", r)
	}
}

func join(cols []string) string {
	s := cols[0]
	for _, c := range cols[1:] {
		s += "\t" + c
	}
	return s
}
