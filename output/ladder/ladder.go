// Package ladder draws a connection as the classic TCP ladder diagram:
// client on the left, server on the right, one arrow per segment with time
// going down, each labelled with flags, relative Seq/Ack, Len and findings,
// and each socket's state changes beside its own column.
package ladder

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	"tcptracer/event"
	"tcptracer/timeline"
)

const (
	stateWidth = 30 // the column left of the client's bar
	arrowWidth = 46 // between the bars
)

// ANSI colours, used only when asked.
const (
	reset  = "\x1b[0m"
	green  = "\x1b[32m"
	blue   = "\x1b[34m"
	yellow = "\x1b[33m"
	red    = "\x1b[31m"
	cyan   = "\x1b[36m"
	bold   = "\x1b[1m"
)

type painter bool

func (p painter) paint(code, s string) string {
	if !p || s == "" {
		return s
	}
	return code + s + reset
}

// line is one row of the diagram, in stream order.
type line struct {
	index uint64
	seg   *timeline.Segment
	state *timeline.StateChange
}

// Render writes the ladder of one connection, with its summary when it
// has ended. Loopback duplicates are already folded into one arrow.
func Render(w io.Writer, c *timeline.Conn, color bool) error {
	bw := bufio.NewWriter(w)
	p := painter(color)
	header(bw, c, p)
	if d := c.Dropped; d.Segments > 0 || d.States > 0 {
		fmt.Fprintf(bw, "%*s%d earlier segments and %d state changes not kept (--max-memory), through #%d; counted in the summary\n",
			17+stateWidth, "", d.Segments, d.States, d.Through)
	}
	var sv senderView
	for _, l := range lines(c) {
		if l.seg != nil {
			segment(bw, c, l.seg, sv.note(l.seg), p)
		} else {
			state(bw, c, l.state, p)
		}
	}
	if c.Truncated > 0 {
		fmt.Fprintf(bw, "%*s%d later segments not kept\n", 17+stateWidth, "", c.Truncated)
	}
	if c.Summary != nil {
		footer(bw, c.Summary, p)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write ladder of conn %d: %w", c.ID, err)
	}
	return nil
}

func lines(c *timeline.Conn) []line {
	ls := make([]line, 0, len(c.Segments)+len(c.States))
	for i := range c.Segments {
		ls = append(ls, line{index: c.Segments[i].Index, seg: &c.Segments[i]})
	}
	for i := range c.States {
		ls = append(ls, line{index: c.States[i].Index, state: &c.States[i]})
	}
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].index < ls[j].index })
	return ls
}

func header(w io.Writer, c *timeline.Conn, p painter) {
	guess := ""
	if c.RolesGuessed {
		guess = " (roles guessed: handshake not seen)"
	}
	fmt.Fprintln(w, p.paint(bold, fmt.Sprintf("conn %d: client %s -> server %s%s", c.ID, c.Client, c.Server, guess)))
	left := fmt.Sprintf("client %s", c.Client)
	fmt.Fprintf(w, "%9s %6s %*s%*s server %s\n", "ms", "#", stateWidth, left, arrowWidth+2, "", c.Server)
}

// prefix is the time and index columns.
func prefix(c *timeline.Conn, ts, index uint64, showIndex bool) string {
	ms := float64(ts-c.FirstTS) / 1e6
	idx := ""
	if showIndex {
		idx = fmt.Sprintf("#%d", index)
	}
	return fmt.Sprintf("%9.3f %6s ", ms, idx)
}

// senderView remembers the sender state last shown per side, so the
// ladder shows cwnd and srtt only when they change.
type senderView struct {
	shown      [2]bool
	cwnd, srtt [2]uint32
	ca         [2]uint8
}

func (v *senderView) note(s *timeline.Segment) string {
	k := &s.Sender
	if !k.Valid {
		return ""
	}
	f := s.From
	if v.shown[f] && v.cwnd[f] == k.Cwnd && v.srtt[f] == k.SRTT && v.ca[f] == k.CAState {
		return ""
	}
	v.shown[f], v.cwnd[f], v.srtt[f], v.ca[f] = true, k.Cwnd, k.SRTT, k.CAState
	return fmt.Sprintf("(%s: cwnd=%d srtt=%dus %s)", f, k.Cwnd, k.SRTT, event.CAStateName(k.CAState))
}

func segment(w io.Writer, c *timeline.Conn, s *timeline.Segment, sender string, p painter) {
	arrow, code := arrowRight(label(s)), green
	if s.From == timeline.Server {
		arrow, code = arrowLeft(label(s)), blue
	}
	fmt.Fprintf(w, "%s%*s|%s|\n", prefix(c, s.TS, s.Index, true), stateWidth, "", p.paint(code, arrow))
	ns := notes(s)
	if sender != "" {
		ns = append(ns, sender)
	}
	for _, note := range ns {
		code := yellow
		if strings.HasPrefix(note, "!!") || strings.HasPrefix(note, "XX") {
			code = red
		}
		pad := arrowWidth - 2 - len(note)
		if pad < 0 {
			pad = 0
		}
		fmt.Fprintf(w, "%17s%*s|  %s%*s|\n", "", stateWidth, "", p.paint(code, note), pad, "")
	}
}

// label is "[SYN, ACK] Seq=0 Ack=1 Len=0", as Wireshark's info column.
func label(s *timeline.Segment) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] Seq=%d", event.Flags(s.Flags).Wireshark(), s.SeqRel)
	if s.HasAck {
		fmt.Fprintf(&b, " Ack=%d", s.AckRel)
	}
	fmt.Fprintf(&b, " Len=%d", s.Len)
	if s.Derived {
		b.WriteString(" ~")
	}
	return b.String()
}

// notes are the findings, the kernel's word and the violations of a segment.
func notes(s *timeline.Segment) []string {
	var out []string
	for _, f := range s.Findings {
		out = append(out, "["+f.String()+"]")
	}
	why := ""
	if s.Explained != "" {
		why = ": " + strings.ReplaceAll(s.Explained, "_", " ")
	}
	switch {
	case s.KernelRetransmit:
		out = append(out, "(kernel: retransmitted"+why+")")
	case s.KernelKnown && s.Retransmission:
		out = append(out, "(kernel: not a retransmission"+why+")")
	}
	if s.Dropped != "" {
		out = append(out, fmt.Sprintf("XX dropped by the kernel: %s (#%d)", s.Dropped, s.DropIndex))
	}
	if s.Repairs != 0 {
		out = append(out, fmt.Sprintf("(repairs drop #%d)", s.Repairs))
	}
	for _, v := range s.Violations {
		out = append(out, "!! "+v.Rule.String()+": "+v.Detail)
	}
	return out
}

func arrowRight(l string) string {
	body := "-- " + l + " "
	return body + dashes(arrowWidth-len(body)-1) + ">"
}

func arrowLeft(l string) string {
	body := "<-- " + l + " "
	return body + dashes(arrowWidth-len(body))
}

func dashes(n int) string {
	if n < 1 {
		n = 1
	}
	return strings.Repeat("-", n)
}

func state(w io.Writer, c *timeline.Conn, sc *timeline.StateChange, p painter) {
	text := event.StateName(sc.Old) + ">" + event.StateName(sc.New)
	if sc.Cause != 0 {
		text = fmt.Sprintf("%s (#%d)", text, sc.Cause)
	}
	pre := prefix(c, sc.TS, sc.Index, false)
	if sc.Side == timeline.Client {
		pad := stateWidth - len(text)
		if pad < 0 {
			pad = 0
		}
		fmt.Fprintf(w, "%s%*s%s|%*s|\n", pre, pad, "", p.paint(cyan, text), arrowWidth, "")
		return
	}
	fmt.Fprintf(w, "%s%*s|%*s| %s\n", pre, stateWidth, "", arrowWidth, "", p.paint(cyan, text))
}

func footer(w io.Writer, s *timeline.Summary, p painter) {
	code := green
	if !s.OK() {
		code = red
	}
	fmt.Fprintf(w, "verdict: %s\n", p.paint(code, s.Verdict))
	for _, v := range s.Violations {
		fmt.Fprintf(w, "  %s\n", p.paint(red, v.String()))
	}
	for _, d := range s.DropsRepairs {
		fmt.Fprintf(w, "  %s\n", p.paint(yellow, d))
	}
	fmt.Fprintln(w, s.String())
}
