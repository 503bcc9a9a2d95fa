package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"tcptracer/event"
	"tcptracer/internal/echo"
	"tcptracer/internal/oracle"
	"tcptracer/tracer"
)

// serveOn runs an echo server on addr until the test ends.
func serveOn(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- echo.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
}

// segmentPorts counts the traced segments by their non-echo-server port
// and by server port.
func segmentsByPort(evs []event.Event) map[uint16]int {
	n := map[uint16]int{}
	for _, ev := range evs {
		if ev.Type == event.TypeSegment {
			n[ev.Sport]++
			n[ev.Dport]++
		}
	}
	return n
}

// --port: only the chosen port's traffic is reported; 0 reports all.
func TestFilterPort(t *testing.T) {
	requireRoot(t)
	serveOn(t, "127.0.0.1:20000")
	serveOn(t, "127.0.0.1:20001")
	for _, port := range []uint16{20000, 0} {
		t.Run(fmt.Sprint(port), func(t *testing.T) {
			o := tracer.DefaultOptions()
			o.Ifaces, o.Port = []string{"lo"}, port
			r := startTracer(t, o)
			runClientProcess(t, "127.0.0.1:20001", "")
			runClientProcess(t, "127.0.0.1:20000", "")
			r.col.waitFor(t, "the port 20000 session to close", func(evs []event.Event) bool { return countConnCloses(evs) >= 2 })
			r.stop(t)
			n := segmentsByPort(r.col.snapshot())
			if n[20000] == 0 {
				t.Errorf("no segment of port 20000")
			}
			if port == 20000 && n[20001] != 0 {
				t.Errorf("--port 20000 reported %d segments of port 20001", n[20001])
			}
			if port == 0 && n[20001] == 0 {
				t.Errorf("--port 0 reported no segment of port 20001")
			}
		})
	}
}

// --pid: only the connection of the chosen process, handshake included;
// another client's connection to the same server is not reported.
func TestFilterPID(t *testing.T) {
	requireRoot(t)
	addr := fmt.Sprintf("127.0.0.1:%d", echoPort)
	serveOn(t, addr)
	a, releaseA := waitingClient(t, addr)
	b, releaseB := waitingClient(t, addr)
	o := tracer.DefaultOptions()
	o.Ifaces, o.PID = []string{"lo"}, uint32(a.Process.Pid)
	r := startTracer(t, o)
	releaseB()
	releaseA()
	r.col.waitFor(t, "the chosen client's socket to close", func(evs []event.Event) bool {
		for _, ev := range evs {
			if ev.Type == event.TypeState && ev.NewState == stCLOSE && int(ev.TGID) == a.Process.Pid {
				return true
			}
		}
		return false
	})
	r.stop(t)
	evs := r.col.snapshot()
	c := findConn(t, evs)
	segs := connSegments(evs, c)
	checkHandshake(t, segs)
	checkData(t, segs)
	checkTeardown(t, segs)
	for _, ev := range evs {
		if ev.PIDSrc == event.PIDOwner && ev.Type != event.TypeSegment && int(ev.TGID) != a.Process.Pid {
			t.Errorf("event of another process passed --pid %d: %s tgid %d", a.Process.Pid, ev.Type, ev.TGID)
		}
	}
	t.Logf("--pid %d: %d segments of one connection; client %d filtered out", a.Process.Pid, len(segs), b.Process.Pid)
}

// waitingClient starts a client process that connects when released.
func waitingClient(t *testing.T, addr string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=client-wait", "TCPTRACER_E2E_ADDR="+addr)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start client: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, func() {
		io.WriteString(in, "go\n")
		if err := cmd.Wait(); err != nil {
			t.Errorf("client %d: %v", cmd.Process.Pid, err)
		}
	}
}

// -6: the echo session over IPv6 loopback, checked like the IPv4 one and
// against tcpdump; -4 does not see it.
func TestFamilyIPv6(t *testing.T) {
	requireRoot(t)
	addr := fmt.Sprintf("[::1]:%d", echoPort)
	o := tracer.DefaultOptions()
	o.Ifaces, o.Family = []string{"lo"}, 6
	r := startTracer(t, o)
	s := runEcho(t, r, sessionSetup{
		listen:     func() (net.Listener, error) { return net.Listen("tcp6", addr) },
		serverAddr: addr,
		captureNs: func(ctx context.Context) (*oracle.Capture, error) {
			return oracle.Start(ctx, "lo", fmt.Sprintf("tcp port %d", echoPort))
		},
	})
	for _, ev := range s.events {
		if ev.Type != event.TypeStart && ev.Family != 6 {
			t.Fatalf("-6 reported an IPv%d %s event", ev.Family, ev.Type)
		}
	}
	checkSession(t, s, true)

	o.Family = 4
	r4 := startTracer(t, o)
	serveOn(t, addr)
	runClientProcess(t, addr, "")
	r4.stop(t) // drains the ring buffer: the session's records are all in it

	// -4 may report IPv4 sockets that exist (the snapshot at start of
	// what earlier tests left in TIME_WAIT, say), never the IPv6 session.
	for _, ev := range r4.col.snapshot() {
		if ev.Type != event.TypeStart && ev.Type != event.TypeLost && ev.Family != 4 {
			t.Errorf("-4 reported an IPv%d %s event of the IPv6 session", ev.Family, ev.Type)
		}
	}
}

// A ring buffer too small for a burst loses records, and says so.
func TestLostEvents(t *testing.T) {
	requireRoot(t)
	addr := fmt.Sprintf("127.0.0.1:%d", echoPort)
	o := tracer.DefaultOptions()
	o.Ifaces, o.RingSize, o.Poll = []string{"lo"}, 4096, 200*time.Millisecond
	r := startTracer(t, o)
	blast(t, addr, 300*time.Millisecond)
	r.col.waitFor(t, "a lost event", func(evs []event.Event) bool {
		for _, ev := range evs {
			if ev.Type == event.TypeLost && ev.Count > 0 {
				return true
			}
		}
		return false
	})
	r.stop(t)
	var lost uint64
	var segs int
	for _, ev := range r.col.snapshot() {
		lost += ev.Count
		if ev.Type == event.TypeSegment {
			segs++
		}
	}
	t.Logf("4 KiB ring, 200 ms polls: %d segments delivered, %d records reported lost", segs, lost)
}

// blast sends small writes with no pause for d, so the sender emits many
// segments in a burst.
func blast(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetNoDelay(true)
	buf := make([]byte, 100)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
}
