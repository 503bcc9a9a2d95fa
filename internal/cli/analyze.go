package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"tcptracer/analysis/expect"
	"tcptracer/event"
	"tcptracer/output"
	"tcptracer/report"
)

// runAnalyze rebuilds timelines, findings and verdicts from a saved JSON
// stream; the report is the one the live run printed.
func runAnalyze(ctx context.Context, in *invocation, env Env) error {
	ro, err := reportOptions(in, env.Stdout)
	if err != nil {
		return err
	}
	if ro.Expectations, err = expect.Parse(in.list("expect")...); err != nil {
		return usagef("--expect: %v", err)
	}
	src, name, err := openInput(in.args[0], env)
	if err != nil {
		return err
	}
	defer src.Close()
	out := bufio.NewWriterSize(env.Stdout, 64<<10)
	limitHeap(ro.MaxMemory)
	r := report.New(out, ro)
	if err := feedFile(ctx, src, name, r); err != nil {
		return err
	}
	if err := r.Finish(); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if fails := r.Failures(); len(fails) > 0 {
		reportFailures(env.Stderr, "analyze", r.Conns(), fails)
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

// maxLine is the longest line analyze reads.
const maxLine = 16 << 20

// feedFile decodes every event line and feeds the report; report lines of
// an earlier run (finding, violation, summary) are skipped. A line that is
// not a complete event of its type stops it with the file, the line and
// what is wrong.
func feedFile(ctx context.Context, src io.Reader, name string, r *report.Reporter) error {
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var ev event.Event
	line := 1
	for ; sc.Scan(); line++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := sc.Bytes()
		if len(b) == 0 || isReportLine(b) {
			continue
		}
		if err := decodeLine(b, &ev); err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if err := r.Feed(&ev); err != nil {
			return err
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("%s:%d: line longer than the limit of %d MiB: not a line tcptracer writes", name, line, maxLine>>20)
	case err != nil:
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// decodeLine decodes b and checks that it has every field its type has.
func decodeLine(b []byte, ev *event.Event) error {
	if err := output.Decode(b, ev); err != nil {
		return err
	}
	missing, err := output.MissingField(b, ev.Type)
	if err != nil {
		return err
	}
	if missing != "" {
		return fmt.Errorf("%s event lacks the field %q", ev.Type, missing)
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
