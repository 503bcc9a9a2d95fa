// Package report turns the annotated event stream into what a person or a
// script reads about each connection: findings and violations per segment
// and a summary per connection as JSON lines, or a ladder diagram and a
// verdict as text. The live tracer and `tcptracer analyze` both go through
// a Reporter, so a saved stream gives the same report as the live run.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"tcptracer/analysis/expect"
	"tcptracer/event"
	"tcptracer/output/ladder"
	"tcptracer/timeline"
)

// Format of the report.
type Format int

const (
	JSON Format = iota // finding, violation and summary lines
	Text               // a ladder diagram and a verdict per connection
)

// Options configure a Reporter.
type Options struct {
	Format       Format
	Color        bool // ANSI colour in text (only for terminals)
	Expectations []expect.Expectation
	// IdleTimeout ends connections with no event for this long (event time);
	// 0 keeps timeline's default.
	IdleTimeout time.Duration
	// MaxMemory bounds the timeline's connections and history (bytes);
	// 0 keeps timeline's default.
	MaxMemory int64
	// Stream, in text, draws each connection's ladder row by row as events
	// arrive (a live view) instead of whole when it ends.
	Stream bool
}

// Reporter feeds a timeline and writes its findings and summaries.
type Reporter struct {
	opts     Options
	w        io.Writer
	enc      *json.Encoder
	tl       *timeline.Timeline
	conns    int
	failures []expect.Failure
	held     int
	findings int
	stream   *ladder.Stream
}

// New writes the report to w.
func New(w io.Writer, o Options) *Reporter {
	r := &Reporter{opts: o, w: w, tl: timeline.New(timeline.Options{IdleTimeout: o.IdleTimeout, MaxMemory: o.MaxMemory})}
	if o.Format == Text && o.Stream {
		r.stream = ladder.NewStream(w, o.Color)
	}
	return r
}

// Feed takes one annotated event (not kept after Feed returns).
func (r *Reporter) Feed(ev *event.Event) error {
	res := r.tl.Feed(ev)
	if r.stream != nil {
		if err := r.streamRows(&res); err != nil {
			return err
		}
	}
	if s := res.Segment; s != nil {
		r.findings += len(s.Findings)
		if r.opts.Format == JSON {
			if err := r.segmentLines(ev.Conn, s); err != nil {
				return err
			}
		}
	}
	r.held = r.tl.Len()
	return r.ended(res.Ended)
}

// Finish ends every connection still open (tracing stopped) and reports it.
func (r *Reporter) Finish() error {
	err := r.ended(r.tl.Flush())
	r.held = 0
	return err
}

// Open is the number of connections not yet ended.
func (r *Reporter) Open() int { return r.held }

// Conns is the number of connections reported so far.
func (r *Reporter) Conns() int { return r.conns }

// Findings is the number of findings on the segments fed so far.
func (r *Reporter) Findings() int { return r.findings }

// Failures lists every verdict or expectation that failed so far.
func (r *Reporter) Failures() []expect.Failure { return r.failures }

func (r *Reporter) ended(conns []*timeline.Conn) error {
	for _, c := range conns {
		r.conns++
		fails := expect.Verify(c.Summary, r.opts.Expectations)
		r.failures = append(r.failures, fails...)
		var err error
		if r.opts.Format == Text {
			err = r.text(c, fails)
		} else {
			err = r.lateViolations(c)
			if err == nil {
				err = r.writeJSON(newSummaryLine(c.Summary, c.LastTS, fails))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// streamRows draws the rows one event made, before its connection's end.
func (r *Reporter) streamRows(res *timeline.Result) error {
	c := res.Conn
	if c == nil {
		return nil
	}
	var err error
	switch {
	case res.Segment != nil:
		err = r.stream.Segment(c, res.Segment)
	case res.State != nil:
		err = r.stream.State(c, res.State)
	}
	for _, s := range res.Updated {
		if err == nil {
			err = r.stream.Amend(c, s)
		}
	}
	return err
}

func (r *Reporter) text(c *timeline.Conn, fails []expect.Failure) error {
	var err error
	if r.stream != nil {
		err = r.stream.End(c)
	} else {
		err = ladder.Render(r.w, c, r.opts.Color)
	}
	if err != nil {
		return fmt.Errorf("render connection %d: %w", c.ID, err)
	}
	for _, f := range fails {
		if f.Expectation == "ok" {
			continue // the verdict line already says it
		}
		if _, err := fmt.Fprintf(r.w, "expectation failed: %s\n", f); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(r.w)
	return err
}

func (r *Reporter) segmentLines(conn uint64, s *timeline.Segment) error {
	for _, f := range s.Findings {
		l := findingLine{Type: "finding", TS: s.TS, Conn: conn, Segment: s.Index, Kind: f.Kind.String(), Num: f.Num, Ref: f.Ref}
		if err := r.writeJSON(l); err != nil {
			return err
		}
	}
	for _, v := range s.Violations {
		l := violationLine{Type: "violation", TS: s.TS, Conn: conn, Segment: v.Index, Rule: v.Rule.String(), Detail: v.Detail}
		if err := r.writeJSON(l); err != nil {
			return err
		}
	}
	return nil
}

// lateViolations writes the violations only the connection's end showed.
func (r *Reporter) lateViolations(c *timeline.Conn) error {
	for _, v := range c.Summary.Late {
		l := violationLine{Type: "violation", TS: c.LastTS, Conn: c.ID, Segment: v.Index, Rule: v.Rule.String(), Detail: v.Detail}
		if err := r.writeJSON(l); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reporter) writeJSON(v any) error {
	if r.enc == nil {
		r.enc = json.NewEncoder(r.w)
		r.enc.SetEscapeHTML(false) // expectations such as bytes>=N stay readable
	}
	if err := r.enc.Encode(v); err != nil {
		return fmt.Errorf("write report line: %w", err)
	}
	return nil
}

type findingLine struct {
	Type    string `json:"type"`
	TS      uint64 `json:"ts_ns"`
	Conn    uint64 `json:"conn"`
	Segment uint64 `json:"segment"`
	Kind    string `json:"kind"`
	Num     int    `json:"num,omitempty"`
	Ref     uint64 `json:"ref,omitempty"`
}

type violationLine struct {
	Type    string `json:"type"`
	TS      uint64 `json:"ts_ns"`
	Conn    uint64 `json:"conn"`
	Segment uint64 `json:"segment"`
	Rule    string `json:"rule"`
	Detail  string `json:"detail"`
}
