// Package expect parses and checks the expectations `tcptracer verify`
// holds each connection's summary to.
//
// Grammar (one expectation per argument, or several separated by commas):
//
//	expectation := flag | metric op value
//	flag        := "ok" | "no-retransmissions" | "no-findings" | "no-resets" | "no-drops" | "no-rto"
//	             | "no-violations" | "no-disagreements" | "no-" finding
//	finding     := a tcp.analysis kind, e.g. duplicate_ack, zero_window
//	metric      := "handshake-rtt" | "duration"                 (value: a Go duration, 5ms)
//	             | "bytes" | "bytes-c2s" | "bytes-s2c" | "segments"
//	             | "retransmissions" | "kernel-retransmissions" | "findings"
//	             | "resets" | "drops" | "rtos"                   (value: an integer)
//	             | "cwnd"               (the largest congestion window either sender had, segments)
//	             | "srtt"               (the largest smoothed RTT either sender had; a Go duration)
//	op          := "<" | "<=" | ">" | ">=" | "==" | "!="
//
// Names may also be spelled as in the JSON summary, with underscores
// (handshake_rtt<5ms, no_retransmissions, no-duplicate-ack).
package expect

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"tcptracer/analysis"
	"tcptracer/timeline"
)

// Expectation is one parsed expectation.
type Expectation struct {
	Text   string // as written
	metric string
	op     string
	value  int64 // nanoseconds for durations
	kind   analysis.Kind
}

// Failure is one expectation a connection did not meet.
type Failure struct {
	Conn        uint64
	Expectation string
	Got         string
}

func (f Failure) String() string {
	return fmt.Sprintf("conn %d: %s failed (got %s)", f.Conn, f.Expectation, f.Got)
}

// metrics maps each metric to whether its value is a duration, and how
// to read it from a summary.
var metrics = map[string]struct {
	duration bool
	get      func(*timeline.Summary) (int64, bool)
}{
	"handshake-rtt": {true, func(s *timeline.Summary) (int64, bool) { return int64(s.HandshakeRTT), s.HasHandshakeRTT }},
	"duration":      {true, func(s *timeline.Summary) (int64, bool) { return int64(s.Duration), true }},
	"bytes": {false, func(s *timeline.Summary) (int64, bool) {
		return int64(s.Sent[timeline.Client].Bytes + s.Sent[timeline.Server].Bytes), true
	}},
	"bytes-c2s": {false, func(s *timeline.Summary) (int64, bool) { return int64(s.Sent[timeline.Client].Bytes), true }},
	"bytes-s2c": {false, func(s *timeline.Summary) (int64, bool) { return int64(s.Sent[timeline.Server].Bytes), true }},
	"segments": {false, func(s *timeline.Summary) (int64, bool) {
		return int64(s.Sent[timeline.Client].Segments + s.Sent[timeline.Server].Segments), true
	}},
	"retransmissions":        {false, func(s *timeline.Summary) (int64, bool) { return int64(s.Retransmissions), true }},
	"kernel-retransmissions": {false, func(s *timeline.Summary) (int64, bool) { return int64(s.KernelRetransmissions), s.KernelKnown }},
	"findings":               {false, func(s *timeline.Summary) (int64, bool) { return int64(total(s.Findings)), true }},
	"resets":                 {false, func(s *timeline.Summary) (int64, bool) { return int64(s.Resets), true }},
	"drops":                  {false, func(s *timeline.Summary) (int64, bool) { return int64(s.DropCount), true }},
	"rtos":                   {false, func(s *timeline.Summary) (int64, bool) { return int64(s.RTOs), true }},
	"cwnd":                   {false, maxCwnd},
	"srtt":                   {true, maxSRTT},
}

// maxCwnd is the largest congestion window a local sender had; unknown
// when the tracer read no sender's state.
func maxCwnd(s *timeline.Summary) (int64, bool) {
	var v int64
	for side, known := range s.SenderKnown {
		if known {
			v = max(v, int64(s.Senders[side].MaxCwnd))
		}
	}
	return v, s.SenderKnown[0] || s.SenderKnown[1]
}

// maxSRTT is the largest smoothed RTT a local sender measured.
func maxSRTT(s *timeline.Summary) (int64, bool) {
	var v int64
	for side, known := range s.SenderKnown {
		if known {
			v = max(v, int64(s.Senders[side].MaxSRTT))
		}
	}
	return v, s.SenderKnown[0] || s.SenderKnown[1]
}

// flags are the value-less expectations, as metric op value.
var flags = map[string]string{
	"no-retransmissions": "retransmissions==0",
	"no-findings":        "findings==0",
	"no-resets":          "resets==0",
	"no-drops":           "drops==0",
	"no-rto":             "rtos==0",
}

// Parse reads expectations from arguments, each possibly comma-separated.
// Every unknown or malformed one is named in the error.
func Parse(args ...string) ([]Expectation, error) {
	var out []Expectation
	var errs []error
	for _, arg := range args {
		for _, text := range strings.Split(arg, ",") {
			text = strings.TrimSpace(text)
			if text == "" {
				continue
			}
			e, err := parseOne(text)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, e)
		}
	}
	if len(errs) > 0 {
		errs = append(errs, errors.New(Valid()))
	}
	return out, errors.Join(errs...)
}

// Valid says which expectations there are, for error messages.
func Valid() string {
	return fmt.Sprintf("valid expectations: %s; no-FINDING with FINDING one of %s; METRIC OP VALUE with METRIC one of %s (durations: handshake-rtt, duration, e.g. 5ms) and OP one of %s",
		strings.Join(flagNames(), ", "), strings.Join(kindNames(), ", "), strings.Join(metricNames(), ", "), strings.Join(ops, " "))
}

var ops = []string{"<", "<=", ">", ">=", "==", "!="}

func flagNames() []string {
	out := []string{"ok", "no-violations", "no-disagreements"}
	for f := range flags {
		out = append(out, f)
	}
	sort.Strings(out[3:])
	return out
}

func metricNames() []string {
	var out []string
	for m := range metrics {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func kindNames() []string {
	var out []string
	for _, k := range analysis.Kinds() {
		out = append(out, k.String())
	}
	return out
}

// canonical spells a flag or metric name with hyphens, as the grammar
// does, so the JSON field spelling (handshake_rtt) is accepted too.
func canonical(name string) string { return strings.ReplaceAll(strings.TrimSpace(name), "_", "-") }

// parseKind accepts a finding kind with underscores (as in JSON) or hyphens.
func parseKind(name string) analysis.Kind {
	return analysis.ParseKind(strings.ReplaceAll(name, "-", "_"))
}

func parseOne(text string) (Expectation, error) {
	e := Expectation{Text: text}
	i := strings.IndexAny(text, "<>=!")
	if i < 0 {
		return e, e.parseFlag(canonical(text))
	}
	if i == 0 {
		return e, fmt.Errorf("parse expectation %q: no metric before %q", text, text[:1])
	}
	e.metric, e.op = canonical(text[:i]), text[i:i+1]
	if i+1 < len(text) && text[i+1] == '=' {
		e.op = text[i : i+2]
	}
	m, ok := metrics[e.metric]
	switch {
	case !ok:
		return e, fmt.Errorf("parse expectation %q: unknown metric %q", text, e.metric)
	case e.op == "=" || e.op == "!":
		return e, fmt.Errorf("parse expectation %q: unknown operator %q (want one of %s)", text, e.op, strings.Join(ops, " "))
	}
	return e, e.parseValue(strings.TrimSpace(text[i+len(e.op):]), m.duration)
}

// parseFlag reads a value-less expectation (name already canonical).
func (e *Expectation) parseFlag(name string) error {
	switch {
	case name == "ok", name == "no-violations", name == "no-disagreements":
		e.metric = name
		return nil
	case flags[name] != "":
		f, err := parseOne(flags[name])
		f.Text = e.Text
		*e = f
		return err
	case strings.HasPrefix(name, "no-"):
		if e.kind = parseKind(name[3:]); e.kind == 0 {
			return fmt.Errorf("parse expectation %q: unknown finding %q", e.Text, name[3:])
		}
		e.metric = "no-finding"
		return nil
	}
	return fmt.Errorf("parse expectation %q: unknown", e.Text)
}

func (e *Expectation) parseValue(v string, duration bool) error {
	if duration {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("parse expectation %q: %w", e.Text, err)
		}
		e.value = int64(d)
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("parse expectation %q: %w", e.Text, err)
	}
	e.value = n
	return nil
}

// Check returns the expectations the summary does not meet.
func Check(s *timeline.Summary, exps []Expectation) []Failure {
	var out []Failure
	for _, e := range exps {
		if got, ok := e.check(s); !ok {
			out = append(out, Failure{Conn: s.Conn, Expectation: e.Text, Got: got})
		}
	}
	return out
}

// Verify is Check plus the connection's own verdict, named "ok".
func Verify(s *timeline.Summary, exps []Expectation) []Failure {
	out := Check(s, []Expectation{{Text: "ok", metric: "ok"}})
	return append(out, Check(s, exps)...)
}

func (e *Expectation) check(s *timeline.Summary) (string, bool) {
	switch e.metric {
	case "ok", "no-violations":
		return s.Verdict, s.OK()
	case "no-disagreements":
		return strconv.Itoa(s.Disagreements), s.Disagreements == 0
	case "no-finding":
		n := s.Findings[e.kind.String()]
		return fmt.Sprintf("%s=%d", e.kind, n), n == 0
	}
	m := metrics[e.metric]
	v, known := m.get(s)
	if !known {
		return "unknown", false
	}
	got := strconv.FormatInt(v, 10)
	if m.duration {
		got = time.Duration(v).String()
	}
	ok := compare(v, e.op, e.value)
	if !ok && e.metric == "drops" {
		got += ": " + strings.Join(s.DropsRepairs, "; ")
	}
	return got, ok
}

func compare(a int64, op string, b int64) bool {
	switch op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	case "==":
		return a == b
	case "!=":
		return a != b
	}
	return false
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
