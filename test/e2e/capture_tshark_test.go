package e2e

// Captures against Wireshark (issue 12): tcpdump records faulty traffic in
// the tests' own namespaces, then `tcptracer analyze` and `tshark -r` read
// the same bytes and their findings are compared packet by packet and kind
// by kind. No clock or ordering question arises: both number the packets
// as the capture holds them. Set TCPTRACER_KEEP_CAPTURES=DIR to keep the
// captures (the committed corpus in capture/testdata was made so).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"

	"tcptracer/capture"
	"tcptracer/event"
	"tcptracer/internal/cli"
	"tcptracer/internal/fault"
	"tcptracer/internal/netns"
	"tcptracer/internal/oracle"
	"tcptracer/internal/privtest"
	"tcptracer/internal/tsharkcheck"
)

type captureScenario struct {
	name  string
	iface func(b *faultBed) string // where tcpdump listens, in A
	run   func(t *testing.T, b *faultBed)
}

var captureScenarios = []captureScenario{
	{"veth-drop", vethA, runDropped},
	{"veth-drop-bulk", vethA, runDropBulk},
	{"veth-zero-window", vethA, runZeroWindow},
	{"veth-reset", vethA, runResets},
	{"veth-ipv6-bulk", vethA, func(t *testing.T, b *faultBed) {
		exchange(t, b.pair.A, fmt.Sprintf("[%s]:%d", b.pair.AddrB6, echoPort), b.pair.B, 256<<10)
	}},
	{"any-sll2", func(*faultBed) string { return "any" }, func(t *testing.T, b *faultBed) {
		exchange(t, b.pair.A, b.addr, b.pair.B, 64<<10)
	}},
	{"lo", func(*faultBed) string { return "lo" }, func(t *testing.T, b *faultBed) {
		exchange(t, b.pair.A, fmt.Sprintf("127.0.0.1:%d", echoPort), b.pair.A, 2)
	}},
}

func vethA(b *faultBed) string { return b.pair.IfA }

func TestCaptureTshark(t *testing.T) {
	for _, sc := range captureScenarios {
		t.Run(sc.name, func(t *testing.T) {
			privtest.RequireRoot(t, "tcpdump", "tshark")
			b := newFaultBed(t)
			c, err := oracle.Start(context.Background(), sc.iface(b), "tcp", b.pair.A)
			if err != nil {
				t.Fatalf("start tcpdump: %v", err)
			}
			sc.run(t, b)
			if _, err := c.Stop(); err != nil {
				t.Fatalf("stop tcpdump: %v", err)
			}
			keepCapture(t, sc.name, c.Pcap())
			rows := compareTshark(t, c.Pcap())
			if strings.HasPrefix(sc.name, "veth-drop") {
				checkRetransmissionNamed(t, rows)
			}
			// The same packets without the first data segment: a capture
			// that missed one (previous_segment_not_seen, ack_lost_segment).
			if cut := withoutFirstData(t, c.Pcap()); cut != nil {
				t.Run("cut", func(t *testing.T) { compareTshark(t, cut) })
			}
		})
	}
}

// compareTshark analyses the capture both ways and fails on every kind
// where the packets flagged differ, except the differences of definition
// tsharkDifferences explains, which are logged.
func compareTshark(t *testing.T, pcap []byte) []tsharkcheck.Row {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), []string{"analyze", "-"}, cli.Env{Stdin: bytes.NewReader(pcap), Stdout: &out, Stderr: &errOut})
	if code != 0 && code != cli.ExitFailure {
		t.Fatalf("analyze exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "no owners") {
		t.Errorf("analyze does not say what a capture lacks: %q", errOut.String())
	}
	got, err := tsharkcheck.Analyze(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, err := tsharkcheck.Tshark(ctx, pcap)
	if err != nil {
		t.Fatal(err)
	}
	// The one deliberate difference (README: "Compared with Wireshark"):
	// RFC 5681's condition (a), judged from the packets themselves.
	frames, err := oracle.Tshark(ctx, pcap)
	if err != nil {
		t.Fatal(err)
	}
	if exempt := oracle.RFC5681Exempt(frames); len(exempt) > 0 {
		nums := make([]int, len(exempt))
		for i, f := range exempt {
			nums[i] = f.Number
		}
		t.Logf("tshark's duplicate ACKs %v acknowledge all the peer sent (RFC 5681 (a)): not the tracer's to flag", nums)
		want["duplicate_ack"] = slices.DeleteFunc(want["duplicate_ack"], func(n int) bool { return slices.Contains(nums, n) })
	}
	rows := tsharkcheck.Compare(want, got)
	for _, r := range rows {
		if r.Tshark+r.Tracer == 0 {
			continue
		}
		t.Log(r)
		if why, ok := tsharkDifferences[r.Kind]; ok && !r.Agree() {
			t.Logf("  %s differs by definition: %s", r.Kind, why)
			continue
		}
		if !r.Agree() {
			t.Errorf("%s: analyze and tshark flag different packets: %v", r.Kind, r)
		}
	}
	return rows
}

// tsharkDifferences are the kinds whose definitions are not Wireshark's,
// with the reason (README: "Compared with Wireshark").
var tsharkDifferences = map[string]string{
	// Seen on every capture cut after its first data segment. Wireshark
	// moves its "max seq to be acked" to the sender's next seq each time
	// it flags an ACK, so it flags again at the next ACK past a later
	// segment (packet 6 of the cut captures); the tracer's lostAcked keeps
	// the highest contiguous seq at the hole and suppresses the second flag
	// with its duplicate-ACK marker, then flags ACKs of later bulk data
	// that Wireshark does not. An open difference in analysis/, not in the
	// capture reader: both read the same packets.
	"ack_lost_segment": "after a segment the capture missed, Wireshark and analysis/ re-arm the check differently",
}

// checkRetransmissionNamed: the resent segment is a retransmission for both.
func checkRetransmissionNamed(t *testing.T, rows []tsharkcheck.Row) {
	t.Helper()
	for _, r := range rows {
		if (r.Kind == "retransmission" || r.Kind == "fast_retransmission") && r.Both > 0 {
			return
		}
	}
	t.Errorf("no packet both analyze and tshark call a retransmission: %v", rows)
}

// withoutFirstData rewrites a classic pcap without its first packet that
// carries TCP payload; nil when there is none.
func withoutFirstData(t *testing.T, pcap []byte) []byte {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(pcap))
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), pcap[:24]...)
	cut := false
	for off := 24; ; {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		rec := pcap[off : off+16+len(p.Data)]
		off += len(rec)
		if ok, _ := capture.Decode(&p, &ev); ok && ev.Len > 0 && !cut {
			cut = true
			continue
		}
		out = append(out, rec...)
	}
	if !cut {
		return nil
	}
	return out
}

func keepCapture(t *testing.T, name string, pcap []byte) {
	dir := os.Getenv("TCPTRACER_KEEP_CAPTURES")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pcap"), pcap, 0o644); err != nil {
		t.Errorf("keep capture: %v", err)
	}
}

// exchange serves an echo listener in srvNs and sends n bytes from A,
// reading the echo back, then closes.
func exchange(t *testing.T, cliNs vnetns.NsHandle, addr string, srvNs vnetns.NsHandle, n int) {
	t.Helper()
	ln, err := netns.Listen(srvNs, addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := netns.Dial(ctx, cliNs, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTimeout))
	go c.Write(bytes.Repeat([]byte("AB"), n/2))
	if _, err := io.ReadFull(c, make([]byte, n/2*2)); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

func runDropped(t *testing.T, b *faultBed) {
	noTailLossProbes(t, b)
	d, err := fault.Drop(fault.Spec{Netns: b.pair.B, Iface: b.pair.IfB, Port: echoPort})
	if err != nil {
		t.Fatalf("attach the dropper: %v", err)
	}
	defer d.Close()
	exchange(t, b.pair.A, b.addr, b.pair.B, 2)
	if n, _, err := d.Dropped(); err != nil || n != 1 {
		t.Fatalf("dropper dropped %d segments (err %v), want 1", n, err)
	}
}

// runDropBulk drops three data segments at B's ingress during a bulk
// transfer: the capture on A sees them, B's duplicate ACKs with SACK
// blocks, and the retransmissions.
func runDropBulk(t *testing.T, b *faultBed) {
	d, err := fault.Drop(fault.Spec{Netns: b.pair.B, Iface: b.pair.IfB, Port: echoPort, Count: 3})
	if err != nil {
		t.Fatalf("attach the dropper: %v", err)
	}
	defer d.Close()
	exchange(t, b.pair.A, b.addr, b.pair.B, 256<<10)
	if n, _, err := d.Dropped(); err != nil || n != 3 {
		t.Fatalf("dropper dropped %d segments (err %v), want 3", n, err)
	}
}

// runZeroWindow: the server stops reading until its window closed and the
// client's persist timer probed it, then reads everything.
func runZeroWindow(t *testing.T, b *faultBed) {
	ln := b.listen(t)
	accepted := acceptOne(ln)
	client := b.dial(t)
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := client.Write(make([]byte, zeroWindowBytes))
		client.CloseWrite()
		wrote <- err
	}()
	time.Sleep(probeWait) // traffic shaping, not an assertion: let the persist timer probe
	if n, _ := io.Copy(io.Discard, srv); n != zeroWindowBytes {
		t.Fatalf("server read %d bytes, want %d", n, zeroWindowBytes)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("client write: %v", err)
	}
	srv.Close()
	io.Copy(io.Discard, client)
}

// runResets: a refused connection (RST|ACK to a SYN) and an abort (close
// with SO_LINGER 0 sends RST).
func runResets(t *testing.T, b *faultBed) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if c, err := netns.Dial(ctx, b.pair.A, "tcp", fmt.Sprintf("%s:%d", b.pair.AddrB, echoPort+1)); err == nil {
		c.Close()
		t.Fatal("dial to a port without listener succeeded")
	}
	ln := b.listen(t)
	accepted := acceptOne(ln)
	client := b.dial(t)
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	client.Write([]byte("AB"))
	io.ReadFull(srv, make([]byte, 2))
	client.SetLinger(0)
	client.Close()
	srv.SetReadDeadline(time.Now().Add(waitTimeout))
	io.Copy(io.Discard, srv)
}
