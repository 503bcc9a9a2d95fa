package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"tcptracer/analysis/expect"
	"tcptracer/capture"
	"tcptracer/event"
	"tcptracer/output"
	"tcptracer/report"
)

// runAnalyze rebuilds timelines, findings and verdicts from a saved JSON
// stream; the report is the one the live run printed.
func runAnalyze(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("analyze")
	format := fs.String("format", "json", "")
	var exps listFlag
	fs.Var(&exps, "expect", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("analyze: want one FILE (or - for standard input)")
	}
	ro, err := reportOptions(*format, env.Stdout)
	if err != nil {
		return err
	}
	if ro.Expectations, err = expect.Parse(exps...); err != nil {
		return usagef("--expect: %v", err)
	}
	in, name, err := openInput(fs.Arg(0), env)
	if err != nil {
		return err
	}
	defer in.Close()
	out := bufio.NewWriterSize(env.Stdout, 64<<10)
	r := report.New(out, ro)
	if err := feedInput(ctx, in, name, r, env.Stderr); err != nil {
		return err
	}
	if err := r.Finish(); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if len(r.Failures()) > 0 {
		return exitError{ExitFailure}
	}
	return nil
}

func openInput(path string, env Env) (io.ReadCloser, string, error) {
	if path == "-" {
		return io.NopCloser(env.Stdin), "standard input", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", path, err)
	}
	return f, path, nil
}

// feedInput feeds a packet capture (pcap or pcapng, told by its magic
// number) or a saved JSON stream to the report.
func feedInput(ctx context.Context, in io.Reader, name string, r *report.Reporter, stderr io.Writer) error {
	br := bufio.NewReaderSize(in, capture.BufferSize)
	magic, _ := br.Peek(4)
	if f := capture.Sniff(magic); f != capture.FormatNone {
		fmt.Fprintf(stderr, "tcptracer: %s is a %s capture: findings, rules and verdicts come from the packets alone; "+
			"a capture has no owners (pid, comm) and no kernel view (socket states, kernel retransmissions)\n", name, f)
		return feedCapture(ctx, br, name, r, stderr)
	}
	return feedFile(ctx, br, name, r)
}

// feedFile decodes every event line and feeds the report; report lines of
// an earlier run (finding, violation, summary) are skipped.
func feedFile(ctx context.Context, in io.Reader, name string, r *report.Reporter) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var ev event.Event
	for line := 1; sc.Scan(); line++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := sc.Bytes()
		if len(b) == 0 || isReportLine(b) {
			continue
		}
		if err := output.Decode(b, &ev); err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if err := r.Feed(&ev); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// Report lines start with their type, as every line tcptracer writes.
var reportPrefixes = [][]byte{[]byte(`{"type":"finding"`), []byte(`{"type":"violation"`), []byte(`{"type":"summary"`)}

func isReportLine(b []byte) bool {
	for _, p := range reportPrefixes {
		if bytes.HasPrefix(b, p) {
			return true
		}
	}
	return false
}
