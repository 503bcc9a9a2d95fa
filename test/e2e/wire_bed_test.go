package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"

	"tcptracer/internal/echo"
	"tcptracer/internal/fault"
	"tcptracer/internal/netns"
	"tcptracer/internal/oracle"
)

// wireScenario is one shape of bulk traffic for the wire oracle. Every
// scenario runs in namespaces of its own: the client in A, the server in A
// too (loopback) or in B across the veth pair, so no port can collide with
// the host's and nothing outside the test is traced.
type wireScenario struct {
	name       string
	veth       bool // false: over the loopback of namespace A
	ipv6       bool
	noOffloads bool // veth: TSO, GSO and GRO off on both ends, so the kernel segments after TC
	dropOnce   bool // veth, IPv4: B's ingress drops the first client data segment once
}

var wireScenarios = []wireScenario{
	{name: "lo-ipv4"},
	{name: "lo-ipv6", ipv6: true},
	{name: "veth", veth: true},
	{name: "veth-ipv6-no-offloads", veth: true, ipv6: true, noOffloads: true},
	{name: "veth-no-offloads", veth: true, noOffloads: true},
	{name: "veth-drop-once", veth: true, dropOnce: true},
}

// Sizes of the transfer: each direction carries wireBytes() in writes of
// wireWrite. TCPTRACER_WIRE_BYTES overrides the size (bytes, or with a K or
// M suffix); the default is smaller on one CPU, as in the emulated VM
// guests, where a MiB already makes thousands of segments.
const wireWrite = 256 << 10

func wireBytes(t *testing.T) int {
	t.Helper()
	v := os.Getenv("TCPTRACER_WIRE_BYTES")
	if v == "" {
		if runtime.NumCPU() == 1 {
			return 1 << 20
		}
		return 4 << 20
	}
	mult := 1
	switch {
	case strings.HasSuffix(v, "K"):
		mult, v = 1<<10, strings.TrimSuffix(v, "K")
	case strings.HasSuffix(v, "M"):
		mult, v = 1<<20, strings.TrimSuffix(v, "M")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("TCPTRACER_WIRE_BYTES=%q: want a positive size such as 4M", os.Getenv("TCPTRACER_WIRE_BYTES"))
	}
	return n * mult
}

// wireBed is the namespaces, the server and the interface under test.
type wireBed struct {
	sc      wireScenario
	pair    *netns.Pair
	iface   string // traced and captured, inside A
	ifindex int
	server  netip.AddrPort
	ln      net.Listener
	stopSrv func() error
	dropper *fault.Dropper
}

// newWireBed builds the scenario's namespaces and starts the echo server
// on an ephemeral port. Everything is removed at cleanup, on every path.
func newWireBed(t *testing.T, sc wireScenario) *wireBed {
	t.Helper()
	pair, err := netns.NewPair("tcpwire")
	if err != nil {
		t.Fatalf("create namespaces: %v", err)
	}
	t.Cleanup(func() {
		if err := pair.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	b := &wireBed{sc: sc, pair: pair, iface: "lo", ifindex: 1}
	serverNs, addr := pair.A, netip.MustParseAddr("127.0.0.1")
	if sc.ipv6 {
		addr = netip.IPv6Loopback()
	}
	if sc.veth {
		b.iface, b.ifindex, serverNs, addr = pair.IfA, pair.IndexA, pair.B, pair.AddrB
		if sc.ipv6 {
			addr = pair.AddrB6
		}
	}
	if sc.noOffloads {
		offloadsOff(t, pair.A, pair.IfA)
		offloadsOff(t, pair.B, pair.IfB)
	}
	b.listen(t, serverNs, addr)
	if sc.dropOnce {
		b.dropFirst(t)
	}
	return b
}

func (b *wireBed) listen(t *testing.T, ns vnetns.NsHandle, addr netip.Addr) {
	t.Helper()
	ln, err := netns.Listen(ns, netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	b.ln, b.server = ln, ln.Addr().(*net.TCPAddr).AddrPort()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- echo.Serve(ctx, ln) }()
	stopped := false
	b.stopSrv = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-served
	}
	t.Cleanup(func() {
		if err := b.stopSrv(); err != nil {
			t.Errorf("echo server: %v", err)
		}
	})
}

// offloadsOff turns segmentation and receive offloads off on a veth end,
// as on many virtual NICs and tunnels: the kernel then segments in software
// after the TC egress hook.
func offloadsOff(t *testing.T, ns vnetns.NsHandle, dev string) {
	t.Helper()
	path, err := exec.LookPath("ethtool")
	if err != nil {
		t.Fatalf("find ethtool (Debian's ethtool package; .ci/deps.sh test installs it): %v", err)
	}
	var out []byte
	err = netns.Do(ns, func() error {
		var err error
		out, err = exec.Command(path, "-K", dev, "tso", "off", "gso", "off", "gro", "off").CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("ethtool -K %s tso off gso off gro off: %v\n%s", dev, err, out)
	}
	err = netns.Do(ns, func() error {
		var err error
		out, err = exec.Command(path, "-k", dev).CombinedOutput()
		return err
	})
	for _, f := range []string{"tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload"} {
		if err != nil || !strings.Contains(string(out), f+": off") {
			t.Fatalf("ethtool -k %s after turning offloads off (%v): %s not off\n%s", dev, err, f, out)
		}
	}
}

// dropFirst attaches the test's dropper to B's ingress: the first client
// segment with payload is lost after it crossed A's interface, so the
// capture there holds it and its retransmission.
func (b *wireBed) dropFirst(t *testing.T) {
	t.Helper()
	if b.sc.ipv6 || !b.sc.veth {
		t.Fatalf("scenario %s: the dropper handles IPv4 over Ethernet only", b.sc.name)
	}
	d, err := fault.Drop(fault.Spec{Netns: b.pair.B, Iface: b.pair.IfB, Port: b.server.Port()})
	if err != nil {
		t.Fatalf("attach the dropper: %v", err)
	}
	b.dropper = d
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("detach the dropper: %v", err)
		}
	})
}

func (b *wireBed) nsPath() string { return filepath.Join(netns.RunDir, b.pair.NameA) }

func (b *wireBed) tracerArgs() []string {
	// A ring far larger than the default: the oracle compares every
	// segment, and records lost to a full ring are another test's subject.
	return []string{"--format", "json", "--netns", b.nsPath(), "--iface", b.iface,
		"--port", strconv.Itoa(int(b.server.Port())), "--ring-size", "64M",
		"--attach", envMode("TCPTRACER_ATTACH"), "--tc", envMode("TCPTRACER_TC")}
}

// wireRun is what one run of a scenario recorded.
type wireRun struct {
	bed      *wireBed
	total    int         // bytes each way
	stream   []wireEvent // the tracer's whole stream
	capture  []oracle.Segment
	pcap     []byte
	elapsed  time.Duration // the transfer alone
	dropped  uint32        // dropOnce: how many segments the dropper dropped
	dropSeq  uint32        // and the first one's seq
	captured bool          // false with TCPTRACER_ORACLE=off
}

// runWire runs the scenario's transfer with the tracer and, unless the
// oracle is off, tcpdump on the same interface, and stops both once the
// tracer has seen the connection and the listener close.
func runWire(t *testing.T, sc wireScenario) *wireRun {
	t.Helper()
	b := newWireBed(t, sc)
	r := &wireRun{bed: b, total: wireBytes(t)}
	var tr *tracerCLI
	var capture *oracle.Capture
	t.Cleanup(func() { r.keepArtifacts(t, tr, capture) }) // after both stopped, on every path
	tr = startTracerCLI(t, b.tracerArgs()...)
	if oracleOn() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		t.Cleanup(cancel)
		var err error
		if capture, err = oracle.Start(ctx, b.iface, fmt.Sprintf("tcp port %d", b.server.Port()), b.pair.A); err != nil {
			t.Fatalf("start tcpdump: %v", err)
		}
		t.Cleanup(func() { capture.Stop() }) // a no-op error once stopped below
	}
	r.transfer(t)
	tr.waitFor(t, "both sockets of the connection to close", func(evs []wireEvent) bool {
		return closes(evs, b.server.Port()) >= 2
	}, func(evs []wireEvent) string { return stateChanges(evs, b.server.Port()) })
	if err := b.stopSrv(); err != nil {
		t.Errorf("echo server: %v", err)
	}
	tr.waitFor(t, "the listener to close", func(evs []wireEvent) bool { return listenerClosed(evs, b.server.Port()) },
		func(evs []wireEvent) string { return stateChanges(evs, b.server.Port()) })
	if capture != nil {
		segs, err := capture.Stop()
		if err != nil {
			t.Fatalf("stop tcpdump: %v", err)
		}
		r.capture, r.pcap, r.captured = segs, capture.Pcap(), true
	}
	tr.stop(t)
	r.stream = tr.snapshot()
	r.readDropper(t)
	return r
}

func (r *wireRun) transfer(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitTimeout)
	defer cancel()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return netns.Dial(ctx, r.bed.pair.A, network, addr)
	}
	start := time.Now()
	if err := echo.Bulk(ctx, dial, r.bed.server.String(), r.total, wireWrite); err != nil {
		t.Fatalf("bulk transfer of %d bytes each way: %v", r.total, err)
	}
	r.elapsed = time.Since(start)
}

func (r *wireRun) readDropper(t *testing.T) {
	t.Helper()
	if r.bed.dropper == nil {
		return
	}
	n, seq, err := r.bed.dropper.Dropped()
	if err != nil {
		t.Fatalf("read the dropper: %v", err)
	}
	if n != 1 {
		t.Fatalf("the dropper dropped %d segments, want 1", n)
	}
	r.dropped, r.dropSeq = n, seq
}

// keepArtifacts writes the stream and the capture to
// $TCPTRACER_WIRE_ARTIFACTS, for a look with Wireshark or jq; as a cleanup,
// so a run that failed half-way leaves what it had.
func (r *wireRun) keepArtifacts(t *testing.T, tr *tracerCLI, capture *oracle.Capture) {
	t.Helper()
	dir := os.Getenv("TCPTRACER_WIRE_ARTIFACTS")
	if dir == "" || tr == nil {
		return
	}
	base := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	tr.mu.Lock()
	err := os.WriteFile(base+".json", tr.raw.Bytes(), 0o644)
	tr.mu.Unlock()
	if err == nil && capture != nil {
		err = os.WriteFile(base+".pcap", capture.Pcap(), 0o644)
	}
	if err != nil {
		t.Errorf("keep artifacts: %v", err)
		return
	}
	t.Logf("artifacts: %s.json, %s.pcap", base, base)
}

// stateChanges lists the state events on port, for a wait that timed out.
func stateChanges(evs []wireEvent, port uint16) string {
	var b strings.Builder
	for i := range evs {
		e := &evs[i]
		if e.Type == "state" && (e.Sport == port || e.Dport == port) {
			fmt.Fprintf(&b, "\n  #%d %s:%d > %s:%d %s>%s", e.ID, e.Saddr, e.Sport, e.Daddr, e.Dport, e.OldState, e.NewState)
		}
	}
	if b.Len() == 0 {
		return "no state event on the port"
	}
	return "state events on the port:" + b.String()
}

// closes counts the sockets on port that went to CLOSE (the listener aside).
func closes(evs []wireEvent, port uint16) int {
	n := 0
	for i := range evs {
		e := &evs[i]
		if e.Type == "state" && e.NewState == "CLOSE" && e.OldState != "LISTEN" && (e.Sport == port || e.Dport == port) {
			n++
		}
	}
	return n
}

func listenerClosed(evs []wireEvent, port uint16) bool {
	for i := range evs {
		e := &evs[i]
		if e.Type == "state" && e.OldState == "LISTEN" && e.NewState == "CLOSE" && e.Sport == port {
			return true
		}
	}
	return false
}
