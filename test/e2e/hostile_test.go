package e2e

import (
	"bytes"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"tcptracer/analysis"
	"tcptracer/event"
	"tcptracer/internal/netns"
	"tcptracer/timeline"
	"tcptracer/tracer"
)

// craftBed sends hand-built frames with AF_PACKET from namespace A over
// the veth pair; the tracer's TC programs are on B's end (the receiving
// one), and an AF_PACKET socket in B shows what arrived there.
type craftBed struct {
	pair       *netns.Pair
	macA, macB net.HardwareAddr
	send, recv int
	r          *running
	sentinels  int
	seen       int // events already judged
}

func newCraftBed(t *testing.T) *craftBed {
	t.Helper()
	requireRoot(t)
	p, err := netns.NewPair("tcptr-craft")
	if err != nil {
		t.Fatalf("create namespaces: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	b := &craftBed{pair: p}
	b.macA, b.send = packetSocket(t, p.A, p.IfA, 0, 0)
	b.macB, b.recv = packetSocket(t, p.B, p.IfB, p.IndexB, unix.ETH_P_ALL)
	o := tracer.DefaultOptions()
	o.Ifaces, o.Netns, o.Port = []string{p.IfB}, filepath.Join(netns.RunDir, p.NameB), echoPort
	b.r = startTracer(t, o)
	return b
}

// packetSocket opens an AF_PACKET socket in ns (bound to ifindex for
// proto when proto is set) and returns ifname's MAC address with it.
func packetSocket(t *testing.T, ns vnetns.NsHandle, ifname string, ifindex int, proto uint16) (net.HardwareAddr, int) {
	t.Helper()
	var mac net.HardwareAddr
	fd := -1
	err := netns.Do(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifc.HardwareAddr
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(proto))); err != nil {
			return err
		}
		if proto == 0 {
			return nil
		}
		tv := unix.Timeval{Sec: 5}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifindex})
	})
	if err != nil {
		t.Fatalf("packet socket on %s: %v", ifname, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return mac, fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// frame wraps an IP packet (and trailing bytes, e.g. Ethernet padding)
// for the wire from A to B.
func (b *craftBed) frame(l3, pad []byte) []byte {
	typ := uint16(unix.ETH_P_IP)
	if l3[0]>>4 == 6 {
		typ = unix.ETH_P_IPV6
	}
	return append(ether(b.macB, b.macA, typ, l3), pad...)
}

func (b *craftBed) transmit(t *testing.T, f []byte) {
	t.Helper()
	to := &unix.SockaddrLinklayer{Ifindex: b.pair.IndexA, Protocol: htons(uint16(f[12])<<8 | uint16(f[13])), Halen: 6}
	copy(to.Addr[:], b.macB)
	if err := unix.Sendto(b.send, f, 0, to); err != nil {
		t.Fatalf("send frame: %v", err)
	}
}

// arrived waits for f on B's packet socket, byte for byte; other frames
// (the namespaces' own neighbour discovery) are passed over.
func (b *craftBed) arrived(t *testing.T, f []byte) {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(b.recv, buf, 0)
		if err != nil {
			t.Fatalf("receive in B: %v", err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if bytes.Equal(buf[:n], f) {
			return
		}
	}
	t.Fatalf("frame % x did not reach B unchanged", f)
}

// sentinel is a well-formed SYN, sent after each case: TC handles the
// frames of one sending CPU in order, so once the tracer reported it,
// the case before it was handled.
func (b *craftBed) sentinel() (tcpSeg, uint32) {
	b.sentinels++
	seq := 0x5e000000 + uint32(b.sentinels)
	return tcpSeg{sport: craftSport + 1, dport: echoPort, seq: seq, flags: 0x02, win: 1000}, seq
}

// reported is what the tracer made of a segment, the fields compared.
type reported struct {
	Saddr, Daddr netip.Addr
	Sport, Dport uint16
	Seq, Ack     uint32
	Flags        uint16
	Win          uint16
	Len          uint32
	HdrLen       uint8
	Opts         event.Options
}

func reportedOf(ev *event.Event) reported {
	return reported{ev.Saddr, ev.Daddr, ev.Sport, ev.Dport, ev.Seq, ev.Ack, ev.Flags, ev.Win, ev.Len, ev.HdrLen, ev.Opts}
}

// run sends one case's frame and a sentinel and returns the segments the
// tracer reported for the case and how much the malformed count rose.
func (b *craftBed) run(t *testing.T, l3, pad []byte) ([]reported, uint64) {
	t.Helper()
	before := b.counters(t).Malformed
	f := b.frame(l3, pad)
	sent, seq := b.sentinel()
	s := b.frame(ipv4(nil, sent.bytes(), nil), nil)
	b.transmit(t, f)
	b.transmit(t, s)
	b.arrived(t, f)
	b.arrived(t, s)
	var got []reported
	b.r.col.waitFor(t, "the sentinel", func(evs []event.Event) bool {
		for i := b.seen; i < len(evs); i++ {
			ev := &evs[i]
			if ev.Type != event.TypeSegment || ev.Dir != event.Ingress || ev.Ifindex != uint32(b.pair.IndexB) {
				continue
			}
			if ev.Sport == craftSport+1 && ev.Seq == seq {
				b.seen = i + 1
				return true
			}
			got = append(got, reportedOf(ev))
		}
		got = got[:0]
		return false
	})
	return got, b.counters(t).Malformed - before
}

func (b *craftBed) counters(t *testing.T) tracer.Counts {
	t.Helper()
	c, err := b.r.tr.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pinCPU keeps the sending thread on one CPU, so the frames of a case
// and its sentinel share one backlog queue and TC sees them in order.
func pinCPU(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	for cpu := 0; cpu < 1024; cpu++ { // the first CPU this process may use
		if old.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	})
}

type hostileCase struct {
	name      string
	l3        []byte
	pad       []byte
	want      *reported // nil: nothing reported
	malformed uint64
}

var (
	fullOpts = event.Options{MSS: 1460, HasMSS: true, SACKPerm: true, HasTS: true, TSval: 7, HasWS: true, WScale: 7}
	onlyMSS  = event.Options{MSS: 1460, HasMSS: true}
	payload  = bytes.Repeat([]byte{0xee}, 8)
)

// craftSeg is the case's TCP segment: a SYN from craftSport with these
// options and payload.
func craftSeg(opts, data []byte) tcpSeg {
	return tcpSeg{sport: craftSport, dport: echoPort, seq: 1000, flags: 0x02, win: 64240, opts: opts, payload: data}
}

// want4 and want6 are the record a well-formed case must give.
func want4(s tcpSeg, o event.Options) *reported {
	return wantOf(craftSrc4, craftDst4, s, o)
}

func want6(s tcpSeg, o event.Options) *reported {
	return wantOf(craftSrc6, craftDst6, s, o)
}

func wantOf(src, dst netip.Addr, s tcpSeg, o event.Options) *reported {
	return &reported{Saddr: src, Daddr: dst, Sport: s.sport, Dport: s.dport, Seq: s.seq, Ack: s.ack,
		Flags: uint16(s.flags), Win: s.win, Len: uint32(len(s.payload)), HdrLen: uint8(20 + len(s.opts)), Opts: o}
}

// A fragment's TCP-looking payload: if it were parsed as TCP, port
// 20000 would pass the filter and these numbers would be reported.
var fakeTCP = tcpSeg{sport: craftSport, dport: echoPort, seq: 0xdeadbeef, ack: 0xfeedface, flags: 0x12, win: 0xeeee}.bytes()

func hostileCases() []hostileCase {
	syn := craftSeg(synOpts(7), nil)
	data := craftSeg(nil, payload)
	two := craftSeg(nil, payload[:2])
	short := func(n uint16) func([]byte) { return func(ip []byte) { ip[2], ip[3] = byte(n>>8), byte(n) } }
	plen := func(n uint16) func([]byte) { return func(ip []byte) { ip[4], ip[5] = byte(n>>8), byte(n) } }
	withDoff := func(d uint8) tcpSeg { s := craftSeg(nil, payload); s.doff = d; return s }
	badOpt := func(o ...byte) tcpSeg { return craftSeg(append([]byte{2, 4, 0x05, 0xb4}, o...), nil) }
	return []hostileCase{
		{name: "ipv4 SYN with options", l3: ipv4(nil, syn.bytes(), nil), want: want4(syn, fullOpts)},
		{name: "ipv4 options", l3: ipv4([]byte{1, 1, 1, 0}, data.bytes(), nil), want: want4(data, event.Options{})},
		{name: "ipv4 Ethernet padding after the packet", l3: ipv4(nil, two.bytes(), nil), pad: bytes.Repeat([]byte{0xee}, 18), want: want4(two, event.Options{})},
		{name: "ipv4 total length below header length", l3: ipv4(nil, data.bytes(), short(10)), malformed: 1},
		{name: "ipv4 total length below IP and TCP headers", l3: ipv4(nil, data.bytes(), short(30)), malformed: 1},
		{name: "ipv4 total length beyond the frame", l3: ipv4(nil, data.bytes(), short(20+20+8+100)), malformed: 1},
		{name: "ipv4 total length 0 (not a GSO packet)", l3: ipv4(nil, data.bytes(), short(0)), malformed: 1},
		{name: "ipv4 header length below 5", l3: ipv4(nil, data.bytes(), func(ip []byte) { ip[0] = 0x44 }), malformed: 1},
		{name: "ipv4 first fragment", l3: ipv4(nil, data.bytes(), func(ip []byte) { ip[6] = 0x20 }), want: want4(data, event.Options{})},
		{name: "ipv4 non-first fragment", l3: ipv4(nil, fakeTCP, func(ip []byte) { ip[7] = 3 }), malformed: 0},
		{name: "tcp doff below 5", l3: ipv4(nil, withDoff(4).bytes(), nil), malformed: 1},
		{name: "tcp doff beyond the packet", l3: ipv4(nil, withDoff(15).bytes(), nil), malformed: 1},
		{name: "tcp option length 0", l3: ipv4(nil, badOpt(3, 0, 7, 0).bytes(), nil), want: want4(badOpt(3, 0, 7, 0), onlyMSS)},
		{name: "tcp option length 1", l3: ipv4(nil, badOpt(8, 1, 0, 0).bytes(), nil), want: want4(badOpt(8, 1, 0, 0), onlyMSS)},
		{name: "tcp option overlong", l3: ipv4(nil, badOpt(8, 10, 0, 0).bytes(), nil), want: want4(badOpt(8, 10, 0, 0), onlyMSS)},
		{name: "tcp window scale 200", l3: ipv4(nil, craftSeg(synOpts(200), nil).bytes(), nil),
			want: want4(craftSeg(synOpts(200), nil), event.Options{MSS: 1460, HasMSS: true, SACKPerm: true, HasTS: true, TSval: 7, HasWS: true, WScale: 200})},
		{name: "ipv6 SYN with options", l3: ipv6(nil, syn.bytes(), nil), want: want6(syn, fullOpts)},
		{name: "ipv6 hop-by-hop, routing and destination options", l3: ipv6([]ext6{{0, optsBody}, {43, routingBody}, {60, optsBody}}, data.bytes(), nil), want: want6(data, event.Options{})},
		{name: "ipv6 payload length shorter than its extension headers", l3: ipv6([]ext6{{0, optsBody}, {60, optsBody}}, data.bytes(), plen(12)), malformed: 1},
		{name: "ipv6 payload length shorter than the TCP header", l3: ipv6([]ext6{{0, optsBody}}, data.bytes(), plen(8+12)), malformed: 1},
		{name: "ipv6 payload length 0 (not a GSO packet)", l3: ipv6(nil, data.bytes(), plen(0)), malformed: 1},
		{name: "ipv6 extension header longer than the payload", l3: ipv6([]ext6{{0, []byte{10, 1, 4, 0, 0, 0, 0}}}, data.bytes(), nil), malformed: 1},
		{name: "ipv6 payload length beyond the frame", l3: ipv6(nil, data.bytes(), plen(20+8+64)), malformed: 1},
		{name: "ipv6 first fragment", l3: ipv6([]ext6{{44, fragBody(0, true)}}, data.bytes(), nil), want: want6(data, event.Options{})},
		{name: "ipv6 non-first fragment", l3: ipv6([]ext6{{44, fragBody(3, false)}}, fakeTCP, nil), malformed: 0},
	}
}

// Crafted frames on the wire into the traced interface: each well-formed
// one is reported with exactly its numbers, each malformed one is not
// reported and counted once, fragments after the first are skipped, and
// every frame reaches the peer unchanged.
func TestHostilePackets(t *testing.T) {
	b := newCraftBed(t)
	pinCPU(t)
	for _, c := range hostileCases() {
		got, malformed := b.run(t, c.l3, c.pad)
		switch {
		case c.want == nil && len(got) > 0:
			t.Errorf("%s: reported %+v, want nothing", c.name, got)
		case c.want != nil && (len(got) != 1 || got[0] != *c.want):
			t.Errorf("%s: reported %+v\n want %+v", c.name, got, *c.want)
		}
		if malformed != c.malformed {
			t.Errorf("%s: malformed count rose by %d, want %d", c.name, malformed, c.malformed)
		}
	}
}

// A handshake whose SYNs ask for window scale 200, then an ACK with
// window 1: the analysis scales by 14 (RFC 7323), so the window is 16384,
// not zero, and no zero_window finding appears.
func TestHostileWindowScale(t *testing.T) {
	b := newCraftBed(t)
	pinCPU(t)
	client := tcpSeg{sport: craftSport, dport: echoPort, seq: 1000, flags: 0x02, win: 64240, opts: synOpts(200)}
	server := tcpSeg{sport: echoPort, dport: craftSport, seq: 5000, ack: 1001, flags: 0x12, win: 64240, opts: synOpts(200)}
	ack := tcpSeg{sport: craftSport, dport: echoPort, seq: 1001, ack: 5001, flags: 0x10, win: 1}
	swap := func(ip []byte) { // the SYN-ACK comes from the other end
		s, d := craftSrc4.As4(), craftDst4.As4()
		copy(ip[12:], d[:])
		copy(ip[16:], s[:])
	}
	for _, l3 := range [][]byte{ipv4(nil, client.bytes(), nil), ipv4(nil, server.bytes(), swap), ipv4(nil, ack.bytes(), nil)} {
		if got, _ := b.run(t, l3, nil); len(got) != 1 {
			t.Fatalf("reported %+v, want one segment", got)
		}
	}
	tl := timeline.New(timeline.Options{})
	var last *timeline.Segment
	for _, ev := range b.r.col.snapshot() {
		if ev.Sport != craftSport && ev.Dport != craftSport {
			continue
		}
		if r := tl.Feed(&ev); r.Segment != nil {
			s := *r.Segment
			last = &s
		}
	}
	if last == nil || last.Flags != 0x10 {
		t.Fatalf("no ACK segment in the timeline: %+v", last)
	}
	if last.Win != 1<<14 || !last.WinScaled {
		t.Errorf("ACK window %d (scaled %v), want %d", last.Win, last.WinScaled, 1<<14)
	}
	for _, f := range last.Findings {
		if f.Kind == analysis.ZeroWindow {
			t.Errorf("zero_window finding on a window of 1 << 14")
		}
	}
}
