// Package tsharkcheck compares the findings `tcptracer analyze` reports on
// a capture with Wireshark's tcp.analysis flags on the same bytes, packet
// by packet and kind by kind. Both sides number packets the same way (the
// 1-based frame number), so no matching of keys or clocks is involved:
// any difference is a difference of definitions.
//
// It runs tshark, so tests that use it carry "Tshark" in their name (VM
// guests have none). internal/oracle's tshark runner (keyed by segment, for
// comparing the live tracer with a capture) reads the same fields; once it
// is merged, Tshark can be a thin view of oracle.Tshark's Frame.Number and
// Frame.Analysis.
package tsharkcheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// Kinds pairs each Wireshark tcp.analysis field (the suffix) with the
// tracer's finding kind of the same meaning.
var Kinds = []struct{ Tshark, Tracer string }{
	{"retransmission", "retransmission"},
	{"fast_retransmission", "fast_retransmission"},
	{"spurious_retransmission", "spurious_retransmission"},
	{"out_of_order", "out_of_order"},
	{"lost_segment", "previous_segment_not_seen"},
	{"ack_lost_segment", "ack_lost_segment"},
	{"duplicate_ack", "duplicate_ack"},
	{"zero_window", "zero_window"},
	{"zero_window_probe", "zero_window_probe"},
	{"zero_window_probe_ack", "zero_window_probe_ack"},
	{"window_update", "window_update"},
	{"window_full", "window_full"},
	{"keep_alive", "keep_alive"},
	{"keep_alive_ack", "keep_alive_ack"},
	{"reused_ports", "reused_ports"},
}

// Frames lists, per tracer kind name, the packet numbers flagged with it,
// ascending.
type Frames map[string][]int

// Args is tshark's command line for a capture on stdin. Preferences that
// change the analysis are set, so a user's profile cannot.
func Args() []string {
	args := []string{"-r", "-", "-n", "-T", "fields", "-E", "header=n", "-E", "separator=/t", "-E", "occurrence=f",
		"-o", "tcp.analyze_sequence_numbers:TRUE", "-e", "frame.number"}
	for _, k := range Kinds {
		args = append(args, "-e", "tcp.analysis."+k.Tshark)
	}
	return args
}

// Tshark runs tshark on a capture (pcap or pcapng) and returns its flags.
// Wireshark sets "retransmission" beside "fast_retransmission" and
// "spurious_retransmission"; the tracer names one kind, so the plain flag
// is dropped where a sharper one is set.
func Tshark(ctx context.Context, capture []byte) (Frames, error) {
	path, err := exec.LookPath("tshark")
	if err != nil {
		return nil, fmt.Errorf("find tshark: %w", err)
	}
	cmd := exec.CommandContext(ctx, path, Args()...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(capture), &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run tshark: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return parseTshark(out.Bytes())
}

func parseTshark(out []byte) (Frames, error) {
	fr := Frames{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 1+len(Kinds) {
			return nil, fmt.Errorf("tshark line %q: %d fields, want %d", sc.Text(), len(cols), 1+len(Kinds))
		}
		n, err := strconv.Atoi(cols[0])
		if err != nil {
			return nil, fmt.Errorf("tshark frame number %q: %w", cols[0], err)
		}
		sharper := cols[2] != "" || cols[3] != ""
		for i, k := range Kinds {
			if cols[1+i] != "" && !(i == 0 && sharper) {
				fr[k.Tracer] = append(fr[k.Tracer], n)
			}
		}
	}
	return fr, sc.Err()
}

// Analyze collects the finding lines of a JSON report (what
// `tcptracer analyze FILE` prints).
func Analyze(report []byte) (Frames, error) {
	fr := Frames{}
	sc := bufio.NewScanner(bytes.NewReader(report))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !bytes.HasPrefix(sc.Bytes(), []byte(`{"type":"finding"`)) {
			continue
		}
		var l struct {
			Segment int    `json:"segment"`
			Kind    string `json:"kind"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("finding line %q: %w", sc.Text(), err)
		}
		fr[l.Kind] = append(fr[l.Kind], l.Segment)
	}
	for k := range fr {
		slices.Sort(fr[k])
	}
	return fr, sc.Err()
}

// Row is one kind's agreement.
type Row struct {
	Kind                   string
	Tshark, Tracer, Both   int
	OnlyTshark, OnlyTracer []int
}

// Agree says the two sides flag the same packets.
func (r Row) Agree() bool { return len(r.OnlyTshark) == 0 && len(r.OnlyTracer) == 0 }

func (r Row) String() string {
	s := fmt.Sprintf("%-26s tshark %4d  tracer %4d  both %4d", r.Kind, r.Tshark, r.Tracer, r.Both)
	if len(r.OnlyTshark) > 0 {
		s += fmt.Sprintf("  only tshark %v", clip(r.OnlyTshark))
	}
	if len(r.OnlyTracer) > 0 {
		s += fmt.Sprintf("  only tracer %v", clip(r.OnlyTracer))
	}
	return s
}

func clip(v []int) []int { return v[:min(len(v), 12)] }

// Compare returns one row per kind, in Kinds order.
func Compare(tshark, tracer Frames) []Row {
	rows := make([]Row, 0, len(Kinds))
	for _, k := range Kinds {
		a, b := tshark[k.Tracer], tracer[k.Tracer]
		r := Row{Kind: k.Tracer, Tshark: len(a), Tracer: len(b)}
		i, j := 0, 0
		for i < len(a) || j < len(b) {
			switch {
			case j == len(b) || (i < len(a) && a[i] < b[j]):
				r.OnlyTshark = append(r.OnlyTshark, a[i])
				i++
			case i == len(a) || b[j] < a[i]:
				r.OnlyTracer = append(r.OnlyTracer, b[j])
				j++
			default:
				r.Both++
				i, j = i+1, j+1
			}
		}
		rows = append(rows, r)
	}
	return rows
}
