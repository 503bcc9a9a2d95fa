package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"tcptracer/analysis"
	"tcptracer/event"
	"tcptracer/internal/netns"
	"tcptracer/internal/oracle"
	"tcptracer/output/ladder"
	"tcptracer/timeline"
	"tcptracer/tracer"
)

// faultBed is a namespace pair (client A, server B) with the tracer's TC
// programs on A's veth end, as in TestEchoVeth, and optionally tcpdump there.
type faultBed struct {
	pair    *netns.Pair
	nsA     string
	addr    string // the server's address in B, port 20000
	r       *running
	capture *oracle.Capture
}

// newFaultBed creates the namespaces (removed at cleanup, after the
// tracer and anything registered later have stopped) without starting
// the tracer, so a fault can be attached first.
func newFaultBed(t *testing.T) *faultBed {
	t.Helper()
	requireRoot(t)
	pair, err := netns.NewPair("tcpft")
	if err != nil {
		t.Fatalf("create namespaces: %v", err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	return &faultBed{pair: pair, nsA: filepath.Join(netns.RunDir, pair.NameA),
		addr: fmt.Sprintf("%s:%d", pair.AddrB, echoPort)}
}

func (b *faultBed) startTracer(t *testing.T) {
	t.Helper()
	o := tracer.DefaultOptions()
	o.Ifaces = []string{b.pair.IfA}
	o.Netns = b.nsA
	b.r = startTracer(t, o)
}

// setup is the session setup runEcho takes for this bed.
func (b *faultBed) setup() sessionSetup {
	return sessionSetup{
		listen:      func() (net.Listener, error) { return netns.Listen(b.pair.B, b.addr) },
		serverAddr:  b.addr,
		clientNetns: b.nsA,
		captureNs:   b.captureFunc,
	}
}

func (b *faultBed) captureFunc(ctx context.Context) (*oracle.Capture, error) {
	return oracle.Start(ctx, b.pair.IfA, fmt.Sprintf("tcp port %d", echoPort), b.pair.A)
}

// startCapture runs tcpdump on A's veth end unless the oracle is off.
func (b *faultBed) startCapture(t *testing.T) {
	t.Helper()
	if !oracleOn() {
		return
	}
	c, err := b.captureFunc(context.Background())
	if err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	b.capture = c
}

// finish stops tcpdump and the tracer and returns what each recorded.
func (b *faultBed) finish(t *testing.T) ([]event.Event, []oracle.Segment) {
	t.Helper()
	var wire []oracle.Segment
	if b.capture != nil {
		var err error
		if wire, err = b.capture.Stop(); err != nil {
			t.Fatalf("stop tcpdump: %v", err)
		}
	}
	b.r.stop(t)
	return b.r.col.snapshot(), wire
}

// listen opens the server's listener in B, closed at cleanup.
func (b *faultBed) listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := netns.Listen(b.pair.B, b.addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptOne accepts one connection in the background.
func acceptOne(ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

// dial connects from A to the server, bounded by waitTimeout.
func (b *faultBed) dial(t *testing.T) *net.TCPConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := netns.Dial(ctx, b.pair.A, "tcp", b.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// analyse runs the recorded stream through the timeline and returns the
// connection id's record, summarised; on failure its ladder is logged.
func analyse(t *testing.T, evs []event.Event, id uint64) *timeline.Conn {
	t.Helper()
	tl := timeline.New(timeline.Options{})
	var found *timeline.Conn
	keep := func(cs []*timeline.Conn) {
		for _, c := range cs {
			if c.ID == id {
				found = c
			}
		}
	}
	for i := range evs {
		keep(tl.Feed(&evs[i]).Ended)
	}
	keep(tl.Flush())
	if found == nil {
		t.Fatalf("the timeline never ended connection %d", id)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var buf bytes.Buffer
			ladder.Render(&buf, found, false)
			t.Logf("connection %d as analysed:\n%s", id, buf.String())
		}
	})
	return found
}

// segByIndex is the timeline's record of the segment at stream index idx.
func segByIndex(t *testing.T, c *timeline.Conn, idx uint64) *timeline.Segment {
	t.Helper()
	for i := range c.Segments {
		if c.Segments[i].Index == idx {
			return &c.Segments[i]
		}
	}
	t.Fatalf("segment #%d not in connection %d's timeline", idx, c.ID)
	return nil
}

func kindNames(s *timeline.Segment) []string {
	var out []string
	for _, f := range s.Findings {
		out = append(out, f.Kind.String())
	}
	return out
}

func hasFinding(s *timeline.Segment, ks ...analysis.Kind) bool {
	return slices.ContainsFunc(s.Findings, func(f analysis.Finding) bool { return slices.Contains(ks, f.Kind) })
}

// checkVerdictOK: no TCP rule broken anywhere in the connection.
func checkVerdictOK(t *testing.T, c *timeline.Conn) {
	t.Helper()
	if s := c.Summary; !s.OK() || s.Verdict != "ok" {
		t.Errorf("verdict %q, want ok (violations %v)", s.Verdict, s.Violations)
	}
}

// eventsOf lists the connection's events of one type.
func eventsOf(evs []event.Event, c uint64, typ event.Type) []event.Event {
	var out []event.Event
	for _, ev := range evs {
		if ev.Type == typ && ev.Conn == c {
			out = append(out, ev)
		}
	}
	return out
}

// transitions lists a side's state changes as "OLD>NEW".
func transitions(evs []event.Event, c uint64, server bool) []string {
	var out []string
	for _, ev := range eventsOf(evs, c, event.TypeState) {
		if (ev.Sport == echoPort) == server {
			out = append(out, event.StateName(ev.OldState)+">"+event.StateName(ev.NewState))
		}
	}
	return out
}

// resets returns the connection's reset events by reason.
func resets(evs []event.Event, c uint64, reason uint8) []event.Event {
	var out []event.Event
	for _, ev := range eventsOf(evs, c, event.TypeReset) {
		if ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}

func hasReset(reason uint8, sport uint16) func([]event.Event) bool {
	return func(evs []event.Event) bool {
		for _, ev := range evs {
			if inBed(ev) && ev.Type == event.TypeReset && ev.Reason == reason && portIs(ev.Sport, sport) {
				return true
			}
		}
		return false
	}
}

func hasTransition(sport uint16, old, new string) func([]event.Event) bool {
	return func(evs []event.Event) bool {
		for _, ev := range evs {
			if inBed(ev) && ev.Type == event.TypeState && portIs(ev.Sport, sport) &&
				event.StateName(ev.OldState) == old && event.StateName(ev.NewState) == new {
				return true
			}
		}
		return false
	}
}

// inBed: the event belongs to the namespace pair's addresses. The socket
// tracepoints see the whole host, where other traffic on port 20000 (over
// loopback, say) may run at the same time.
func inBed(ev event.Event) bool {
	return netns.PrefixV4.Contains(ev.Saddr) || netns.PrefixV4.Contains(ev.Daddr)
}

// bedCloses counts the pair's sockets that went to CLOSE (listener aside).
func bedCloses(evs []event.Event) int {
	n := 0
	for _, ev := range evs {
		if inBed(ev) && ev.Type == event.TypeState && ev.NewState == stCLOSE && ev.Conn != 0 && ev.OldState != stLISTEN {
			n++
		}
	}
	return n
}

// portIs matches a local port; want 0 stands for the client's (any but
// the server's), when the test does not know it.
func portIs(port, want uint16) bool {
	if want == 0 {
		return port != echoPort
	}
	return port == want
}

func all(fs ...func([]event.Event) bool) func([]event.Event) bool {
	return func(evs []event.Event) bool {
		for _, f := range fs {
			if !f(evs) {
				return false
			}
		}
		return true
	}
}

func localPort(c net.Conn) uint16 { return uint16(c.LocalAddr().(*net.TCPAddr).Port) }

// dumpOnTimeout wraps a waitFor condition so that, if it never holds, the
// events seen are logged when the test fails.
func dumpOnTimeout(t *testing.T, b *faultBed, ok func([]event.Event) bool) func([]event.Event) bool {
	var last []event.Event
	t.Cleanup(func() {
		if t.Failed() {
			for _, ev := range last {
				if !inBed(ev) {
					continue
				}
				t.Logf("event #%d %s conn %d %v:%d > %v:%d %s %s>%s reason %d seq %d ack %d",
					ev.Index, ev.Type, ev.Conn, ev.Saddr, ev.Sport, ev.Daddr, ev.Dport, event.Flags(ev.Flags),
					event.StateName(ev.OldState), event.StateName(ev.NewState), ev.Reason, ev.Seq, ev.Ack)
			}
		}
	})
	return func(evs []event.Event) bool {
		last = evs
		return ok(evs)
	}
}
