package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"tcptracer/event"
	"tcptracer/internal/ptytest"
	"tcptracer/report"
)

var (
	statusRe = regexp.MustCompile(`\r\x1b\[K\d+s  \d+ events/s  \d+ open  \d+ connections?  \d+ findings?  \d+ lost`)
	tallyRe  = regexp.MustCompile(`(?m)tcptracer: \d+ events?, \d+ segments?, \d+ connections?, \d+ records? lost in the kernel\r?$`)
)

// feed counts a start event, two segments and a lost report.
func feed(c *counters) {
	c.count(&event.Event{Type: event.TypeStart}, 0, 0, 0)
	c.count(&event.Event{Type: event.TypeSegment}, 0, 1, 0)
	c.count(&event.Event{Type: event.TypeSegment}, 0, 1, 1)
	c.count(&event.Event{Type: event.TypeLost, Count: 7}, 0, 1, 1)
}

// On a terminal the status line is drawn (from the start event on) and
// cleared at exit, then the tally is printed.
func TestLiveOnTerminal(t *testing.T) {
	master, slave := ptytest.Open(t)
	screen := ptytest.Read(master)
	c := newCounters()
	l := newLive(c, slave)
	c.count(&event.Event{Type: event.TypeStart}, 0, 0, 0)
	if out := screen.WaitFor("events/s"); !statusRe.MatchString(out) {
		t.Fatalf("no status line on the terminal: %q", out)
	}
	feed(c)
	l.finish()
	out := screen.WaitFor("lost in the kernel")
	if !tallyRe.MatchString(out) || !strings.Contains(out, "5 events, 2 segments, 1 connection, 7 records lost") {
		t.Errorf("no tally after the status line: %q", out)
	}
}

// Elsewhere there is no status line, only the tally.
func TestLiveNotOnTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCounters()
	l := newLive(c, f)
	feed(c)
	l.tick(1e9) // what the ticker does each second
	l.finish()
	f.Close()
	b, _ := os.ReadFile(f.Name())
	out := string(b)
	if strings.Contains(out, "events/s") || strings.Contains(out, "\x1b") {
		t.Errorf("status line where stderr is not a terminal: %q", out)
	}
	if !tallyRe.MatchString(out) {
		t.Errorf("no tally: %q", out)
	}
	if !strings.Contains(out, "7 records lost in the kernel so far") {
		t.Errorf("lost records not reported on stderr: %q", out)
	}
}

// A run that never started (it failed first) prints no tally.
func TestLiveNoTallyWithoutStart(t *testing.T) {
	var b strings.Builder
	l := newLive(newCounters(), &b)
	l.finish()
	if b.Len() != 0 {
		t.Errorf("output %q from a run that never started", b.String())
	}
}

// With stdout on the same terminal, output clears the status line first,
// so no line of output starts after the status text.
func TestLiveClearsBeforeOutput(t *testing.T) {
	master, tty := ptytest.Open(t)
	screen := ptytest.Read(master)
	p := newPipeline(tty, report.Options{Format: report.Text})
	l := startLive(p, Env{Stdout: tty, Stderr: tty})
	if p.hold == nil {
		t.Fatal("stdout and stderr on one terminal, but output does not clear the status line")
	}
	p.count.count(&event.Event{Type: event.TypeStart}, 0, 0, 0)
	screen.WaitFor("events/s")
	fmt.Fprint(p.text, "OUTPUT LINE\n")
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	out := screen.WaitFor("OUTPUT LINE")
	l.finish()
	if !strings.Contains(out, "lost\r\x1b[KOUTPUT LINE") {
		t.Errorf("output not on a cleared line: %q", out)
	}
	p2 := newPipeline(io.Discard, report.Options{Format: report.JSON})
	if startLive(p2, Env{Stdout: io.Discard, Stderr: tty}).finish(); p2.hold != nil {
		t.Error("stdout not a terminal, yet output holds the status line")
	}
}

// The exit tally names malformed packets when the classifier skipped some,
// and keeps its usual form otherwise.
func TestTallyMalformed(t *testing.T) {
	c := newCounters()
	if s := tally(c); !tallyRe.MatchString(s) || strings.Contains(s, "malformed") {
		t.Errorf("tally with no malformed packet: %q", s)
	}
	c.malformed.Store(3)
	if s := tally(c); !strings.HasSuffix(s, "0 records lost in the kernel, 3 packets skipped as malformed") {
		t.Errorf("tally: %q, want it to end with the 3 malformed packets", s)
	}
}
