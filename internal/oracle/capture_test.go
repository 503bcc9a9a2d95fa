package oracle

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"tcptracer/internal/privtest"
	"testing"
	"time"

	"tcptracer/event"
	"tcptracer/internal/echo"
	"tcptracer/internal/netns"
)

func requirePrivileged(t *testing.T) { t.Helper(); privtest.RequireRoot(t, "tcpdump") }

// serveEcho runs an echo server on ln until the test ends.
func serveEcho(t *testing.T, ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- echo.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func TestCaptureLoopbackEcho(t *testing.T) {
	requirePrivileged(t)
	ln, err := echo.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(t, ln)
	server := ln.Addr().(*net.TCPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before := time.Now()
	c, err := Start(ctx, "lo", fmt.Sprintf("tcp port %d", server.Port()))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echo.Client(ctx, server.String(), []byte("AB")); err != nil || string(got) != "AB" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	segs, err := c.Stop()
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	checkEchoSession(t, segs, server)
	if st := c.Stats(); st.Captured != uint64(len(segs)) {
		t.Errorf("tcpdump captured %d packets, decoded %d segments", st.Captured, len(segs))
	}
	for _, s := range segs {
		if s.Time.Before(before.Add(-time.Second)) || s.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("timestamp %v outside the test's run", s.Time)
		}
	}
	if _, err := c.Stop(); err == nil {
		t.Error("second Stop: no error")
	}
}

// TestCaptureInNamespace runs tcpdump on the server's veth end, which
// exists only inside namespace B: capturing anything proves tcpdump ran
// there.
func TestCaptureInNamespace(t *testing.T) {
	requirePrivileged(t)
	p, err := netns.NewPair("tt-oracle")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	ln, err := p.Listen(p.B, netip.AddrPortFrom(p.AddrB, 20000).String())
	if err != nil {
		t.Fatal(err)
	}
	serveEcho(t, ln)
	server := ln.Addr().(*net.TCPAddr).AddrPort()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := Start(ctx, p.IfB, "tcp port 20000", p.B)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echo.ClientWith(ctx, p.Dialer(p.A), server.String(), []byte("AB")); err != nil || string(got) != "AB" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	segs, err := c.Stop()
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	checkEchoSession(t, segs, server)
	if segs[0].Saddr != p.AddrA {
		t.Errorf("SYN from %s, want %s", segs[0].Saddr, p.AddrA)
	}
}

// checkEchoSession checks the reference scenario in the capture: each
// segment once, in order, with the numbers TCP prescribes.
func checkEchoSession(t *testing.T, segs []Segment, server netip.AddrPort) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("capture:%s", dump(segs))
		}
	}()
	if len(segs) < 7 {
		t.Fatalf("%d segments, want at least 7", len(segs))
	}
	syn := segs[0]
	if syn.Flags != event.SYN || syn.Daddr != server.Addr() || syn.Dport != server.Port() || !syn.Opts.HasMSS {
		t.Fatalf("first segment %v, want a SYN with MSS to %s", syn, server)
	}
	toServer := func(s Segment) bool { return s.Dport == server.Port() }
	cISN, sISN := syn.Seq, segs[1].Seq
	for _, w := range []struct {
		what            string
		fromClient      bool
		flags, mustHave uint16
		seq, ack, len   uint32
		ackOnly         bool // match on ack, any seq
	}{
		{what: "SYN-ACK", flags: event.SYN | event.ACK, seq: sISN, ack: cISN + 1},
		{what: "handshake ACK", fromClient: true, flags: event.ACK, seq: cISN + 1, ack: sISN + 1},
		{what: `"AB"`, fromClient: true, mustHave: event.PSH | event.ACK, seq: cISN + 1, ack: sISN + 1, len: 2},
		{what: "echo", mustHave: event.PSH | event.ACK, seq: sISN + 1, ack: cISN + 3, len: 2},
		{what: "client FIN", fromClient: true, mustHave: event.FIN | event.ACK, seq: cISN + 3, ack: sISN + 3},
		{what: "server FIN", mustHave: event.FIN | event.ACK, seq: sISN + 3, ack: cISN + 4},
		{what: "last ACK", fromClient: true, flags: event.ACK, seq: cISN + 4, ack: sISN + 4},
	} {
		n := 0
		for _, s := range segs {
			if toServer(s) == w.fromClient && s.Seq == w.seq && s.Ack == w.ack && s.Len == w.len &&
				(w.flags == 0 || s.Flags == w.flags) && s.Has(w.mustHave) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s (seq %d ack %d len %d): seen %d times, want once", w.what, w.seq, w.ack, w.len, n)
		}
	}
	if last := segs[len(segs)-1]; !toServer(last) || last.Flags != event.ACK || last.Ack != sISN+4 {
		t.Errorf("last segment %v, want the client's ACK of the server's FIN", last)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].Time.Before(segs[i-1].Time) {
			t.Errorf("segment %d is earlier than segment %d", i, i-1)
		}
	}
}

func TestStartErrors(t *testing.T) {
	requirePrivileged(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct{ name, iface, filter, want string }{
		{"missing interface", "tt-nonexistent", "", "exited before listening"},
		{"bad filter", "lo", "tcp port", "syntax error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Start(ctx, tc.iface, tc.filter)
			if err == nil {
				c.Stop()
				t.Fatal("Start: no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Ending the context stops tcpdump; Stop still returns what it captured.
func TestCaptureStopsWithContext(t *testing.T) {
	requirePrivileged(t)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Start(ctx, "lo", "tcp port 9")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump still running 10s after its context ended")
	}
	segs, err := c.Stop()
	if err != nil || len(segs) != 0 {
		t.Fatalf("Stop = %v, %v; want no segments and no error", segs, err)
	}
}
