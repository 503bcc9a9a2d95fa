package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"

	"tcptracer/event"
	"tcptracer/internal/netns"
	"tcptracer/internal/oracle"
	"tcptracer/tracer"
)

func TestEchoLoopback(t *testing.T) {
	requireRoot(t)
	o := tracer.DefaultOptions()
	o.Ifaces = []string{"lo"}
	r := startTracer(t, o)
	addr := fmt.Sprintf("127.0.0.1:%d", echoPort)
	s := runEcho(t, r, sessionSetup{
		listen:     func() (net.Listener, error) { return net.Listen("tcp", addr) },
		serverAddr: addr,
		captureNs: func(ctx context.Context) (*oracle.Capture, error) {
			return oracle.Start(ctx, "lo", fmt.Sprintf("tcp port %d", echoPort))
		},
	})
	checkSession(t, s, true)
}

func TestEchoVeth(t *testing.T) {
	requireRoot(t)
	pair, err := netns.NewPair("tcptr")
	if err != nil {
		t.Fatalf("create namespaces: %v", err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	nsA := filepath.Join(netns.RunDir, pair.NameA)
	o := tracer.DefaultOptions()
	o.Ifaces = []string{pair.IfA}
	o.Netns = nsA
	r := startTracer(t, o)
	addr := fmt.Sprintf("%s:%d", pair.AddrB, echoPort)
	s := runEcho(t, r, sessionSetup{
		listen:      func() (net.Listener, error) { return netns.Listen(pair.B, addr) },
		serverAddr:  addr,
		clientNetns: nsA,
		captureNs: func(ctx context.Context) (*oracle.Capture, error) {
			return oracle.Start(ctx, pair.IfA, fmt.Sprintf("tcp port %d", echoPort), pair.A)
		},
	})
	checkSession(t, s, false)
}

// checkSession asserts everything the reference session must show.
func checkSession(t *testing.T, s session, loopback bool) {
	t.Helper()
	start := s.events[0]
	if start.Type != event.TypeStart {
		t.Fatalf("first event is %s, want start", start.Type)
	}
	attach, tc := hookMode(start, "tcp_v4_connect"), hookMode(start, "tc")
	checkForcedModes(t, attach, tc)
	c := findConn(t, s.events)
	segs := connSegments(s.events, c)
	checkHandshake(t, segs)
	checkSides(t, s.events, c)
	checkData(t, segs)
	checkTeardown(t, segs)
	checkStates(t, s.events, c)
	checkConnect(t, s, c, segs, attach)
	if attach != tracer.ModeTracepoint {
		checkRcvState(t, s.events, c, segs)
	}
	checkTwins(t, s.events, c, loopback)
	if oracleOn() {
		checkOracle(t, s.wire, segs)
	} else {
		t.Logf("ORACLE off: tcpdump comparison not run")
	}
	t.Logf("MATRIX attach=%s tc=%s events=%d", attach, tc, len(s.events))
}

func hookMode(start event.Event, name string) string {
	for _, h := range start.Start.Hooks {
		if h.Name == name {
			return h.Mode
		}
	}
	return ""
}

func checkForcedModes(t *testing.T, attach, tc string) {
	t.Helper()
	if want := envMode("TCPTRACER_ATTACH"); want != tracer.ModeAuto && attach != want {
		t.Fatalf("function hooks attached as %q, forced %q", attach, want)
	}
	if want := envMode("TCPTRACER_TC"); want != tracer.ModeAuto && tc != want {
		t.Fatalf("TC attached as %q, forced %q", tc, want)
	}
	if attach == "" || tc == "" {
		t.Fatalf("start event lacks modes: attach=%q tc=%q", attach, tc)
	}
}
