package cli

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"tcptracer/event"
)

// counters is what the live view and the exit tally report. The tracer's
// goroutine writes them (pipeline.count); the live view reads them.
type counters struct {
	events, segments, lost atomic.Uint64
	malformed              atomic.Uint64 // packets the classifier skipped as malformed, read at exit
	conns, open, findings  atomic.Int64
	started                atomic.Bool
	startedCh              chan struct{} // closed at the start event
}

func newCounters() *counters { return &counters{startedCh: make(chan struct{})} }

// count records one event and what the report made of it so far.
func (c *counters) count(ev *event.Event, conns, open, findings int) {
	c.events.Add(1)
	switch ev.Type {
	case event.TypeSegment:
		c.segments.Add(1)
	case event.TypeLost:
		c.lost.Add(ev.Count)
	case event.TypeStart:
		if !c.started.Swap(true) {
			close(c.startedCh)
		}
	}
	c.conns.Store(int64(conns + open))
	c.open.Store(int64(open))
	c.findings.Store(int64(findings))
}

// statusInterval is how often the status line is redrawn.
var statusInterval = time.Second

// live is the person's view of a run on stderr: on a terminal a status
// line redrawn every statusInterval; elsewhere a line when records were
// lost (at most one per interval); and in both, the tally at exit.
type live struct {
	c        *counters
	w        io.Writer
	terminal bool
	stop     chan struct{}
	done     sync.WaitGroup
	mu       sync.Mutex // one writer at a time: the ticker, finish
	shown    bool       // a status line is on the screen
	lostSeen uint64     // lost records already reported
	last     uint64     // events at the previous tick
	begin    time.Time
}

// startLive shows the run of p on env.Stderr. When stdout is a terminal
// too (the same screen, in practice), the pipeline clears the status line
// before it writes, so output never lands after the status text.
func startLive(p *pipeline, env Env) *live {
	l := newLive(p.count, env.Stderr)
	if l.terminal && isTerminal(env.Stdout) {
		p.hold = l.hold
	}
	return l
}

func newLive(c *counters, stderr io.Writer) *live {
	l := &live{c: c, w: stderr, terminal: isTerminal(stderr), stop: make(chan struct{}), begin: time.Now()}
	l.done.Add(1)
	go l.loop()
	return l
}

// hold clears the status line and keeps it off the screen until release:
// the next tick draws it again, below what was written meanwhile.
func (l *live) hold() (release func()) {
	l.mu.Lock()
	if l.shown {
		fmt.Fprint(l.w, "\r\x1b[K")
		l.shown = false
	}
	return l.mu.Unlock
}

func (l *live) loop() {
	defer l.done.Done()
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	prev := time.Now()
	started := l.c.startedCh
	for {
		select {
		case <-l.stop:
			return
		case <-started:
			l.tick(0) // the status line shows from the start
			started = nil
		case now := <-t.C:
			l.tick(now.Sub(prev))
			prev = now
		}
	}
}

func (l *live) tick(elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.c.started.Load() {
		return
	}
	events, rate := l.c.events.Load(), 0.0
	if elapsed > 0 {
		rate = float64(events-l.last) / elapsed.Seconds()
	}
	l.last = events
	lost := l.c.lost.Load()
	if l.terminal {
		fmt.Fprintf(l.w, "\r\x1b[K%s", l.status(rate, lost))
		l.shown = true
		return
	}
	if lost > l.lostSeen {
		fmt.Fprintf(l.w, "tcptracer: %d records lost in the kernel so far (ring buffer full: a larger --ring-size helps)\n", lost)
		l.lostSeen = lost
	}
}

// status is the one-line view: "12s  2310 events/s  3 open  41 connections  0 findings  0 lost".
func (l *live) status(rate float64, lost uint64) string {
	return fmt.Sprintf("%s  %.0f events/s  %d open  %s  %s  %d lost",
		time.Since(l.begin).Round(time.Second), rate, l.c.open.Load(), plural(uint64(l.c.conns.Load()), "connection"),
		plural(uint64(l.c.findings.Load()), "finding"), lost)
}

// finish stops the status line, clears it and prints the tally, as
// tcpdump prints its packet counts at exit.
func (l *live) finish() {
	close(l.stop)
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown {
		fmt.Fprint(l.w, "\r\x1b[K")
	}
	if l.c.started.Load() { // a run that never started has nothing to count
		fmt.Fprintln(l.w, tally(l.c))
	}
}

// tally is the line printed at exit. Malformed packets (lengths or
// offsets that do not hold together, skipped and never reported) are
// named only when there were some, so the usual line stays as it was.
func tally(c *counters) string {
	s := fmt.Sprintf("tcptracer: %s, %s, %s, %s lost in the kernel",
		plural(c.events.Load(), "event"), plural(c.segments.Load(), "segment"),
		plural(uint64(c.conns.Load()), "connection"), plural(c.lost.Load(), "record"))
	if n := c.malformed.Load(); n > 0 {
		s += fmt.Sprintf(", %s skipped as malformed", plural(n, "packet"))
	}
	return s
}

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// wallClockOffset is the wall clock minus CLOCK_MONOTONIC (the clock of
// every ts_ns), measured once at start for the "ts" field.
func wallClockOffset() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Now().UnixNano() - ts.Nano()
}
