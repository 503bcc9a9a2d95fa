package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"tcptracer/event"
	"tcptracer/timeline"
	"tcptracer/tracer"
)

// startServer runs `tcptracer echo-server` as a process of its own and
// waits until it listens.
func startServer(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "echo-server", "--addr", addr)
	cmd.Env = append(os.Environ(), roleEnv+"=cli")
	errs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start echo server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(errs).ReadString('\n')
	if err != nil || !strings.Contains(line, "echo server on") {
		t.Fatalf("echo server did not start: %q %v", line, err)
	}
	return cmd
}

// checkSnapshotRan fails unless the start event lists the snapshot as done.
func checkSnapshotRan(t *testing.T, evs []event.Event) {
	t.Helper()
	h, ok := startHook(evs, "snapshot")
	if !ok {
		t.Fatal("the start event lists no snapshot")
	}
	if h.Mode != "iter/tcp" {
		t.Fatalf("snapshot refused: %+v", h.Refused)
	}
}

// startHook returns the start event's hook of that name.
func startHook(evs []event.Event, name string) (event.Hook, bool) {
	for _, ev := range evs {
		if ev.Type != event.TypeStart {
			continue
		}
		for _, h := range ev.Start.Hooks {
			if h.Name == name {
				return h, true
			}
		}
	}
	return event.Hook{}, false
}

// summaries runs the events through a timeline and returns its summaries.
func summariesOf(evs []event.Event) []*timeline.Summary {
	tl := timeline.New(timeline.Options{})
	var out []*timeline.Summary
	for i := range evs {
		for _, c := range tl.Feed(&evs[i]).Ended {
			out = append(out, c.Summary)
		}
	}
	for _, c := range tl.Flush() {
		out = append(out, c.Summary)
	}
	return out
}

// A server listening before the tracer starts, traced with --pid: the
// snapshot gives the listener its owner and opens its port to the
// classifier, so a new connection shows its handshake, its data and the
// server as its owner.
func TestSnapshotListenerPID(t *testing.T) {
	requireRoot(t)
	addr := fmt.Sprintf("127.0.0.1:%d", echoPort)
	srv := startServer(t, addr)
	pid := srv.Process.Pid
	o := tracer.DefaultOptions()
	o.Ifaces, o.PID = []string{"lo"}, uint32(pid)
	r := startTracer(t, o)
	_, release := waitingClient(t, addr)
	release()
	r.col.waitFor(t, "the server's socket to close", func(evs []event.Event) bool {
		for _, ev := range evs {
			if ev.Type == event.TypeState && ev.NewState == stCLOSE && int(ev.TGID) == pid && ev.Dport != 0 {
				return true
			}
		}
		return false
	})
	r.stop(t)
	evs := r.col.snapshot()
	checkSnapshotRan(t, evs)

	listener := false
	for _, ev := range evs {
		if ev.Type == event.TypeState && ev.OldState == event.StateListen && ev.NewState == event.StateListen &&
			ev.Sport == echoPort && int(ev.TGID) == pid && ev.PIDSrc == event.PIDOwner && ev.Comm != "" {
			listener = true
		}
	}
	if !listener {
		t.Errorf("no snapshot event for the listener owned by %d", pid)
	}
	c := findConn(t, evs)
	segs := connSegments(evs, c)
	checkHandshake(t, segs)
	checkData(t, segs)
	var s *timeline.Summary
	for _, x := range summariesOf(evs) {
		if x.Conn == c {
			s = x
		}
	}
	if s == nil {
		t.Fatalf("no summary of connection %d", c)
	}
	// Without an accept hook (tracepoint mode before Linux 6.4) the
	// accepted socket's owner is the process seen sending on it.
	wantSrc := event.PIDOwner
	if h, ok := startHook(evs, "accept_owner"); !ok || strings.HasPrefix(h.Target, "unavailable") {
		t.Logf("no accept owner hook (%+v): the server's owner is the sender's context", h)
		wantSrc = event.PIDCurrent
	}
	if !s.Opened || s.RolesGuessed || s.Owners[timeline.Server].TGID != uint32(pid) || s.Owners[timeline.Server].Source != wantSrc {
		t.Errorf("summary: opened %v, roles guessed %v, server owner %+v; want the handshake seen and owner %d (%s)",
			s.Opened, s.RolesGuessed, s.Owners[timeline.Server], pid, wantSrc)
	}
	if s.Sent[timeline.Client].Bytes != 2 || s.Sent[timeline.Server].Bytes != 2 {
		t.Errorf("bytes %d/%d, want 2/2 (AB and its echo)", s.Sent[timeline.Client].Bytes, s.Sent[timeline.Server].Bytes)
	}
}

// A connection open before the tracer starts: its first events are the
// snapshot's, which give both sockets their owner and conn the kernel's
// view, so the first segment traced already carries derived relative
// numbers: conn takes snd_una and rcv_nxt at start as relative 1.
func TestSnapshotOpenConnection(t *testing.T) {
	requireRoot(t)
	addr := serveEcho(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	echoOnce(t, c, "AB")
	clientPort := uint16(c.LocalAddr().(*net.TCPAddr).Port)

	o := tracer.DefaultOptions()
	o.Ifaces = []string{"lo"}
	r := startTracer(t, o)
	echoOnce(t, c, "CD")
	c.Close()
	r.col.waitFor(t, "both sockets to close", func(evs []event.Event) bool { return countConnCloses(evs) >= 2 })
	r.stop(t)
	evs := r.col.snapshot()
	checkSnapshotRan(t, evs)

	id := findConn(t, evs)
	var first *event.Event
	snapshots := 0
	for i := range evs {
		ev := &evs[i]
		if ev.Conn != id {
			continue
		}
		if first == nil {
			first = ev
		}
		if ev.Type == event.TypeState && ev.OldState == event.StateEstablished && ev.NewState == event.StateEstablished {
			snapshots++
			if ev.PIDSrc != event.PIDOwner || int(ev.TGID) != os.Getpid() {
				t.Errorf("snapshot of port %d: owner %d (%s), want %d", ev.Sport, ev.TGID, ev.PIDSrc, os.Getpid())
			}
		}
	}
	if first == nil || first.Type != event.TypeState || snapshots != 2 {
		t.Fatalf("first event of the connection %+v, %d snapshot events; want a snapshot state event for each socket", first, snapshots)
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Conn != id || ev.Type != event.TypeSegment || ev.Sport != clientPort || ev.Len == 0 {
			continue
		}
		if !ev.HasSeqRel || !ev.HasAckRel || !ev.RelDerived || ev.SeqRel != 1 || ev.AckRel != 1 {
			t.Errorf("first client data segment: seq_rel %d (known %v) ack_rel %d (known %v) derived %v; want 1, 1, derived",
				ev.SeqRel, ev.HasSeqRel, ev.AckRel, ev.HasAckRel, ev.RelDerived)
		}
		break
	}
	for _, s := range summariesOf(evs) {
		if s.Conn == id && (s.Owners[timeline.Client].TGID != uint32(os.Getpid()) || s.Owners[timeline.Server].TGID != uint32(os.Getpid())) {
			t.Errorf("summary owners %+v, want %d on both sides", s.Owners, os.Getpid())
		}
	}
}
