package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"tcptracer/conn"
	"tcptracer/event"
	"tcptracer/output"
	"tcptracer/report"
	"tcptracer/tracer"
)

// pipeline is the tracer's Handler: annotate, let a watcher look, write
// the event (JSON format) and feed the analysis report.
type pipeline struct {
	tracker *conn.Tracker
	json    *output.JSONWriter // nil in text format
	text    *bufio.Writer      // nil in JSON format
	report  *report.Reporter
	watch   func(ev *event.Event)
	open    atomic.Int64 // connections not yet ended, for other goroutines
	count   *counters    // for the live view and the exit tally
	// hold, if set, is called before output is written to a terminal that
	// also shows the status line; it clears the line and returns the
	// function that lets the status line be drawn again.
	hold func() (release func())
}

// newPipeline splits o.MaxMemory (when set): a quarter bounds conn's
// table (at 256M, its full 65536 connections), the rest the timeline's
// connections and history.
func newPipeline(stdout io.Writer, o report.Options) *pipeline {
	p := &pipeline{tracker: conn.NewTracker(nil), count: newCounters()}
	if o.MaxMemory > 0 {
		limitHeap(o.MaxMemory)
		p.tracker.Bound(o.MaxMemory / 4)
		o.MaxMemory -= o.MaxMemory / 4
	}
	if o.Format == report.Text {
		p.text = bufio.NewWriterSize(stdout, 64<<10)
		p.report = report.New(p.text, o)
	} else {
		p.json = output.NewJSONWriter(stdout)
		p.json.SetWallClock(wallClockOffset())
		p.report = report.New(p.json.Lines(), o)
	}
	return p
}

// heapHeadroom is what the process holds beyond the tables --max-memory
// bounds: event and output buffers, garbage between collections.
const heapHeadroom = 32 << 20

// limitHeap holds the Go heap to the bound plus headroom (unless
// GOMEMLIMIT says otherwise): without a limit, tables live at the bound
// may let the heap grow to twice that before a collection.
func limitHeap(maxMem int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(maxMem + heapHeadroom)
	}
}

func (p *pipeline) HandleEvent(ev *event.Event) error {
	p.tracker.Annotate(ev)
	if p.watch != nil {
		p.watch(ev)
	}
	if p.json != nil {
		if err := p.json.Write(ev); err != nil {
			return err
		}
	}
	if err := p.report.Feed(ev); err != nil {
		return err
	}
	p.open.Store(int64(p.report.Open()))
	p.count.count(ev, p.report.Conns(), p.report.Open(), p.report.Findings())
	return nil
}

func (p *pipeline) Flush() error {
	if p.hold != nil && p.pending() {
		defer p.hold()()
	}
	if p.json != nil {
		return p.json.Flush()
	}
	return p.text.Flush()
}

// pending says whether output is buffered, waiting for Flush.
func (p *pipeline) pending() bool {
	if p.json != nil {
		b, ok := p.json.Lines().(interface{ Buffered() int })
		return !ok || b.Buffered() > 0
	}
	return p.text.Buffered() > 0
}

// finish reports the connections still open and flushes.
func (p *pipeline) finish() error {
	if err := p.report.Finish(); err != nil {
		return err
	}
	p.open.Store(0)
	p.count.conns.Store(int64(p.report.Conns()))
	p.count.open.Store(0)
	return p.Flush()
}

func runTrace(ctx context.Context, in *invocation, env Env) error {
	o, err := traceOptions(in)
	if err != nil {
		return err
	}
	ro, err := reportOptions(in, env.Stdout)
	if err != nil {
		return err
	}
	ro.Stream = true // a live trace draws each ladder as it happens
	if d := in.dur("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	ctx, stop := stopWhenReaderGone(ctx, env.Stdout)
	defer stop()
	p := newPipeline(env.Stdout, ro)
	l := startLive(p, env)
	err = trace(ctx, o, p, env.Stderr)
	l.finish()
	return err
}

// reportOptions reads --format, --color and --max-memory (where the
// command takes them).
func reportOptions(in *invocation, stdout io.Writer) (report.Options, error) {
	o := report.Options{Format: report.JSON}
	if in.str("format") != "json" {
		o = report.Options{Format: report.Text, Color: useColor(in.str("color"), stdout)}
	}
	if in.takes("max-memory") {
		o.MaxMemory = int64(in.uint("max-memory"))
	}
	return o, nil
}

// useColor: always, never, or auto: stdout is a terminal and NO_COLOR
// (https://no-color.org) is unset or empty.
func useColor(when string, stdout io.Writer) bool {
	switch when {
	case "always":
		return true
	case "never":
		return false
	}
	return isTerminal(stdout) && os.Getenv("NO_COLOR") == ""
}

// isTerminal says whether w is a terminal: a file the tty ioctls answer
// (a character device such as /dev/null is not one).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// trace attaches, streams until ctx ends, and always detaches.
func trace(ctx context.Context, o tracer.Options, p *pipeline, stderr io.Writer) error {
	t, err := tracer.New(o)
	if err != nil {
		return err
	}
	defer t.Close() // on a panic too; after finishTrace it does nothing
	reportSwept(t.Swept(), stderr)
	if isTerminal(stderr) {
		fmt.Fprintf(stderr, "tcptracer: %s; Ctrl-C to stop\n", describe(t, o))
	}
	return finishTrace(t, t.Run(ctx, p), p)
}

// describe says in one line what is being traced, for a person watching.
func describe(t *tracer.Tracer, o tracer.Options) string {
	port := "every port"
	if o.Port != 0 {
		port = fmt.Sprintf("port %d", o.Port)
	}
	var modes []string
	for _, h := range t.Hooks() {
		if h.Name == "tcp_v4_connect" || h.Name == "tc" {
			modes = append(modes, h.Name+"="+h.Mode)
		}
	}
	return fmt.Sprintf("tracing %s on %s (%s)", port, strings.Join(t.Ifaces(), ","), strings.Join(modes, ", "))
}

// runTracer streams on a goroutine of its own. A panic there detaches
// before it ends the process: no deferred Close elsewhere would run.
func runTracer(ctx context.Context, t *tracer.Tracer, p *pipeline) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				t.Close()
				panic(r)
			}
		}()
		done <- t.Run(ctx, p)
	}()
	return done
}

// reportSwept tells what the start removed that killed tracers had left.
func reportSwept(c *tracer.Cleanup, stderr io.Writer) {
	if c == nil {
		return
	}
	for _, f := range c.Remove {
		fmt.Fprintf(stderr, "tcptracer: removed %s\n", f)
	}
	for _, q := range c.Qdiscs {
		fmt.Fprintf(stderr, "tcptracer: removed the clsact qdisc on %s that a killed tracer had added\n", q)
	}
	if c.Err != nil {
		fmt.Fprintf(stderr, "tcptracer: warning: removing what killed tracers left: %v (see tcptracer cleanup)\n", c.Err)
	}
}

// finishTrace detaches, then reports what is still open. A closed stdout
// (EPIPE) ends the run cleanly; there is nowhere left to report to.
func finishTrace(t *tracer.Tracer, runErr error, p *pipeline) error {
	if c, err := t.Counters(); err == nil { // for the tally; gone after Close
		p.count.malformed.Store(c.Malformed)
	}
	closeErr := t.Close()
	if closeErr != nil {
		closeErr = fmt.Errorf("detach: %w", closeErr)
		if runErr != nil && !isClosedPipe(runErr) {
			return errors.Join(runErr, closeErr)
		}
		return closeErr
	}
	if runErr != nil {
		return runErr
	}
	return p.finish()
}
