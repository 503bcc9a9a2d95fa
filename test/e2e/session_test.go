package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"tcptracer/internal/privtest"
	"testing"
	"time"

	"tcptracer/conn"
	"tcptracer/event"
	"tcptracer/internal/echo"
	"tcptracer/internal/oracle"
	"tcptracer/tracer"
)

const (
	echoPort    = 20000
	waitTimeout = 20 * time.Second // generous: guests run under emulation
)

// requireRoot: privileged tests fail under CI and skip elsewhere when not root.
func requireRoot(t *testing.T) { t.Helper(); privtest.RequireRoot(t) }

func envMode(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return tracer.ModeAuto
}

func oracleOn() bool { return os.Getenv("TCPTRACER_ORACLE") != "off" }

// collector records copies of every annotated event.
type collector struct {
	tracker *conn.Tracker
	mu      sync.Mutex
	events  []event.Event
}

func (c *collector) HandleEvent(ev *event.Event) error {
	c.tracker.Annotate(ev)
	c.mu.Lock()
	c.events = append(c.events, *ev)
	c.mu.Unlock()
	return nil
}

func (c *collector) snapshot() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.Event(nil), c.events...)
}

// waitFor polls the collected events until ok holds or the timeout passes.
func (c *collector) waitFor(t *testing.T, what string, ok func([]event.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if ok(c.snapshot()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; %d events so far", waitTimeout, what, len(c.snapshot()))
}

// running is a tracer streaming into a collector.
type running struct {
	tr     *tracer.Tracer
	col    *collector
	cancel context.CancelFunc
	done   chan error
}

func startTracer(t *testing.T, o tracer.Options) *running {
	t.Helper()
	o.Attach, o.TC = envMode("TCPTRACER_ATTACH"), envMode("TCPTRACER_TC")
	tr, err := tracer.New(o)
	if err != nil {
		t.Fatalf("start tracer (attach=%s tc=%s): %v", o.Attach, o.TC, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{tr: tr, col: &collector{tracker: conn.NewTracker(nil)}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- tr.Run(ctx, r.col) }()
	t.Cleanup(func() { r.stop(t) })
	r.col.waitFor(t, "the start event", func(evs []event.Event) bool { return len(evs) > 0 })
	return r
}

// stop drains and detaches; safe to call twice.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		t.Errorf("tracer run: %v", err)
	}
	if err := r.tr.Close(); err != nil {
		t.Errorf("tracer close: %v", err)
	}
}

// session is what one echo exchange produced.
type session struct {
	events    []event.Event
	wire      []oracle.Segment
	clientPID int
}

type sessionSetup struct {
	listen      func() (net.Listener, error)
	serverAddr  string
	clientNetns string
	captureNs   func(ctx context.Context) (*oracle.Capture, error)
}

// runEcho runs the reference session under r and, unless disabled, tcpdump.
func runEcho(t *testing.T, r *running, s sessionSetup) session {
	t.Helper()
	var capture *oracle.Capture
	if oracleOn() {
		var err error
		if capture, err = s.captureNs(context.Background()); err != nil {
			t.Fatalf("start tcpdump: %v", err)
		}
	}
	ln, err := s.listen()
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srvCtx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- echo.Serve(srvCtx, ln) }()

	pid := runClientProcess(t, s.serverAddr, s.clientNetns)
	r.col.waitFor(t, "both sockets of the session to close", func(evs []event.Event) bool {
		return countConnCloses(evs) >= 2
	})
	stopServer()
	if err := <-served; err != nil {
		t.Errorf("echo server: %v", err)
	}
	r.col.waitFor(t, "the listener to close", func(evs []event.Event) bool {
		for _, ev := range evs {
			if ev.Type == event.TypeState && ev.OldState == stLISTEN && ev.NewState == stCLOSE {
				return true
			}
		}
		return false
	})
	var wire []oracle.Segment
	if capture != nil {
		if wire, err = capture.Stop(); err != nil {
			t.Fatalf("stop tcpdump: %v", err)
		}
	}
	r.stop(t)
	return session{events: r.col.snapshot(), wire: wire, clientPID: pid}
}

// runClientProcess runs this test binary as the echo client and returns its pid.
func runClientProcess(t *testing.T, addr, nsPath string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=client", "TCPTRACER_E2E_ADDR="+addr, "TCPTRACER_E2E_NETNS="+nsPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("echo client: %v\n%s", err, out)
	}
	return cmd.Process.Pid
}

func countConnCloses(evs []event.Event) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == event.TypeState && ev.NewState == stCLOSE && ev.Conn != 0 && ev.OldState != stLISTEN {
			n++
		}
	}
	return n
}

// clientComm is the kernel's comm for the client process: the binary's
// base name cut to 15 bytes.
func clientComm() string {
	b := filepath.Base(os.Args[0])
	if len(b) > 15 {
		b = b[:15]
	}
	return b
}

const (
	stLISTEN = event.StateListen
	stCLOSE  = event.StateClose
)
