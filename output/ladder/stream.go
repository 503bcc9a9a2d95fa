package ladder

import (
	"bytes"
	"fmt"
	"io"

	"tcptracer/timeline"
)

// Stream draws ladders row by row while the connections run, for a person
// watching a live trace: a connection's header when it is first seen, a
// row per segment and state change as it happens, a note when the
// kernel's word on a segment comes later, and the verdict when it ends.
// Rows of connections open at the same time interleave, so each row starts
// with its connection's id.
type Stream struct {
	w    io.Writer
	p    painter
	seen map[uint64]*senderView // the connections whose header is drawn
	buf  bytes.Buffer
}

// NewStream writes rows to w, coloured if asked; w should buffer (the
// tracer flushes it after every poll round).
func NewStream(w io.Writer, color bool) *Stream {
	return &Stream{w: w, p: painter(color), seen: map[uint64]*senderView{}}
}

// Segment draws one segment of c.
func (st *Stream) Segment(c *timeline.Conn, s *timeline.Segment) error {
	sv := st.open(c)
	segment(&st.buf, c, s, sv.note(s), st.p)
	return st.emit(c)
}

// State draws one state change of c.
func (st *Stream) State(c *timeline.Conn, sc *timeline.StateChange) error {
	st.open(c)
	state(&st.buf, c, sc, st.p)
	return st.emit(c)
}

// Amend notes the kernel's word on segment s of c, which came after its row.
func (st *Stream) Amend(c *timeline.Conn, s *timeline.Segment) error {
	if st.seen[c.ID] == nil {
		return nil
	}
	note := fmt.Sprintf("#%d (kernel: retransmitted)", s.Index)
	fmt.Fprintf(&st.buf, "%17s%*s|  %s%*s|\n", "", stateWidth, "", st.p.paint(yellow, note), max(arrowWidth-2-len(note), 0), "")
	return st.emit(c)
}

// End draws what only the end of c shows (violations found then, segments
// not kept) and its verdict, and forgets c.
func (st *Stream) End(c *timeline.Conn) error {
	st.open(c)
	for _, v := range c.Summary.Late {
		fmt.Fprintf(&st.buf, "%17s%*s|  %s\n", "", stateWidth, "", st.p.paint(red, "!! "+v.Rule.String()+" at #"+fmt.Sprint(v.Index)+": "+v.Detail))
	}
	if c.Truncated > 0 {
		fmt.Fprintf(&st.buf, "%*s%d later segments not kept\n", 17+stateWidth, "", c.Truncated)
	}
	footer(&st.buf, c.Summary, st.p)
	delete(st.seen, c.ID)
	return st.emit(c)
}

func (st *Stream) open(c *timeline.Conn) *senderView {
	if sv := st.seen[c.ID]; sv != nil {
		return sv
	}
	sv := &senderView{}
	st.seen[c.ID] = sv
	header(&st.buf, c, st.p)
	return sv
}

// emit writes the drawn rows, each tagged with c's id.
func (st *Stream) emit(c *timeline.Conn) error {
	tag := fmt.Appendf(nil, "c%-4d ", c.ID)
	var out []byte
	for _, line := range bytes.SplitAfter(st.buf.Bytes(), []byte("\n")) {
		if len(line) > 0 {
			out = append(append(out, tag...), line...)
		}
	}
	st.buf.Reset()
	if _, err := st.w.Write(out); err != nil {
		return fmt.Errorf("write ladder of conn %d: %w", c.ID, err)
	}
	return nil
}
