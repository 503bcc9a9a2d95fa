package timeline

import (
	"tcptracer/event"
)

// connect records the client's owner from tcp_v4_connect, and its ISN
// for the analyzer's handshake rules.
func (c *Conn) connect(ev *event.Event) {
	side := ev.Side
	c.opened = true
	c.ConnRet = ev.Ret
	if ev.PIDSrc == event.PIDOwner { // connect runs in the owner's context
		c.Owners[side] = Owner{PID: ev.PID, TGID: ev.TGID, Comm: ev.Comm, Source: ev.PIDSrc}
	}
	if ev.ISN == 0 && ev.Ret != 0 {
		return
	}
	c.an.SetISN(int(side), event.Seq(ev.ISN))
}

// owner keeps the best attribution seen for a side: owner beats current.
func (c *Conn) owner(side Side, ev *event.Event) {
	o := &c.Owners[side]
	if ev.PIDSrc == event.PIDNone || o.Source == event.PIDOwner || (o.Source != event.PIDNone && ev.PIDSrc != event.PIDOwner) {
		return
	}
	*o = Owner{PID: ev.PID, TGID: ev.TGID, Comm: ev.Comm, Source: ev.PIDSrc}
}

// state records a socket's state change and pairs it with its cause.
func (c *Conn) state(ev *event.Event) {
	side := ev.Side
	if ev.OldState == event.StateClose && ev.NewState == event.StateSynSent {
		c.opened = true
	}
	c.owner(side, ev)
	sc := StateChange{Index: ev.Index, TS: ev.TS, Side: side, Old: ev.OldState, New: ev.NewState,
		SndUna: event.Seq(ev.SndUna), SndNxt: event.Seq(ev.SndNxt), RcvNxt: event.Seq(ev.RcvNxt)}
	sc.Cause = c.cause(side, &sc)
	c.States = append(c.States, sc)
	c.sock[side], c.sockKnown[side] = ev.NewState, true
	if ev.NewState == event.StateFinWait1 && !c.closerSet {
		c.closedBy(side)
	}
}

// rcvState identifies the segment tcp_rcv_state_process handled, so the
// state changes that follow on that socket pair with it.
func (c *Conn) rcvState(ev *event.Event) {
	side := ev.Side
	for i := len(c.Segments) - 1; i >= 0 && i >= len(c.Segments)-16; i-- {
		s := &c.Segments[i]
		if s.From != side && s.Seq == event.Seq(ev.Seq) && s.Ack == event.Seq(ev.Ack) && s.Flags == ev.Flags && s.Len == ev.Len {
			s.RcvOldState = ev.OldState
			c.lastRcv[side] = i
			return
		}
	}
}

// reset counts the kernel's reset events, to set beside the RST segments
// on the wire; a received one closes like a RST.
func (c *Conn) reset(ev *event.Event) {
	side := ev.Side
	if ev.Reason == event.ResetReceived {
		c.rstRecv++
	}
	c.owner(side, ev)
	switch ev.Reason {
	case event.ResetSent:
		c.rstSent[side]++
	case event.ResetReceived:
		c.rst = true
		c.closedBy(side.Peer())
	}
}

// cause returns the Index of the segment whose arrival made a state
// change: the one a rcv_state event identified, else the latest segment
// to that socket whose end matches the kernel's rcv_nxt (a RST for a
// reset), else the connection's last segment if it went to that socket.
func (c *Conn) cause(side Side, sc *StateChange) uint64 {
	needRST, ok := receiveCaused(sc.Old, sc.New)
	if !ok {
		return 0
	}
	if i := c.lastRcv[side]; i >= 0 {
		s := &c.Segments[i]
		if sc.RcvNxt == 0 || s.End() == sc.RcvNxt || s.Flags&event.RST != 0 {
			return s.Index
		}
	}
	for i := len(c.Segments) - 1; i >= 0 && i >= len(c.Segments)-8; i-- {
		s := &c.Segments[i]
		if s.From == side {
			continue
		}
		rst := s.Flags&event.RST != 0
		if rst || (!needRST && (sc.RcvNxt == 0 || s.End() == sc.RcvNxt)) {
			return s.Index
		}
	}
	if n := len(c.Segments); n > 0 && c.Segments[n-1].From != side && !needRST {
		return c.Segments[n-1].Index
	}
	return 0
}

// receiveCaused says whether a transition happens on receiving a segment,
// and whether only a RST can cause it.
func receiveCaused(old, new uint8) (needRST, ok bool) {
	switch {
	case old == event.StateSynSent && new == event.StateEstablished,
		old == event.StateSynRecv && new == event.StateEstablished,
		old == event.StateListen && new == event.StateSynRecv,
		old == event.StateEstablished && new == event.StateCloseWait,
		old == event.StateFinWait1 && (new == event.StateFinWait2 || new == event.StateClosing || new == event.StateTimeWait || new == event.StateClose),
		old == event.StateFinWait2 && (new == event.StateTimeWait || new == event.StateClose),
		old == event.StateClosing && (new == event.StateTimeWait || new == event.StateClose),
		old == event.StateLastAck && new == event.StateClose:
		return false, true
	case new == event.StateClose && old != event.StateTimeWait:
		return true, true
	}
	return false, false
}

// allClosed: every socket whose state is known is closed.
func (c *Conn) allClosed() bool {
	for s := Client; s <= Server; s++ {
		if c.sockKnown[s] && !closedState(c.sock[s]) {
			return false
		}
	}
	return true
}

// resetsPending says whether a local socket sent more RST segments than the
// kernel has reported sending so far.
func (c *Conn) resetsPending() bool {
	var wire [2]int
	for i := range c.Segments {
		if seg := &c.Segments[i]; seg.Flags&event.RST != 0 {
			wire[seg.From]++
		}
	}
	for s := Client; s <= Server; s++ {
		if c.sockKnown[s] && wire[s] > c.rstSent[s] {
			return true
		}
	}
	return false
}

func closedState(s uint8) bool { return s == event.StateClose || s == event.StateTimeWait }

// finished says why the connection is over, or "" if it is not: a RST or
// both FINs acknowledged, once every socket whose state is known is closed;
// or a connect that failed.
func (c *Conn) finished() string {
	if !c.allClosed() {
		return ""
	}
	switch {
	case c.rst && c.resetsPending():
		return "" // the kernel's report of the RST is still to come; see Feed
	case c.rst:
		return "reset"
	case c.finAcked[Client] && c.finAcked[Server]:
		return "closed"
	case c.sockKnown[Client] && len(c.States) > 0 && c.States[len(c.States)-1].Old == event.StateSynSent:
		return "failed"
	}
	return ""
}
