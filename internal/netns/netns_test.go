package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"tcptracer/internal/privtest"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"tcptracer/internal/echo"
)

func requireRoot(t *testing.T) { t.Helper(); privtest.RequireRoot(t) }

func newPair(t *testing.T) *Pair {
	t.Helper()
	p, err := NewPair("tt-netns")
	if err != nil {
		t.Fatalf("NewPair: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPairEchoAndCleanup(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	checkLayout(t, p)
	inodes := []uint64{nsInode(t, p.A), nsInode(t, p.B)}

	for _, tc := range []struct{ name, listen string }{
		{"ipv4", netip.AddrPortFrom(p.AddrB, 0).String()},
		{"ipv6", netip.AddrPortFrom(p.AddrB6, 0).String()},
	} {
		t.Run(tc.name, func(t *testing.T) { echoAcross(t, p, tc.listen) })
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checkGone(t, p, inodes)
}

// checkLayout verifies names, links and addresses on both sides and that
// nothing of the pair shows in the caller's namespace.
func checkLayout(t *testing.T, p *Pair) {
	t.Helper()
	for _, name := range []string{p.NameA, p.NameB} {
		if _, err := os.Stat(filepath.Join(RunDir, name)); err != nil {
			t.Errorf("namespace file: %v", err)
		}
	}
	for _, side := range []struct {
		ns     vnetns.NsHandle
		ifname string
		index  int
		v4, v6 netip.Addr
	}{{p.A, p.IfA, p.IndexA, p.AddrA, p.AddrA6}, {p.B, p.IfB, p.IndexB, p.AddrB, p.AddrB6}} {
		checkLink(t, side.ns, side.ifname, side.index, side.v4, side.v6)
	}
	for _, name := range []string{p.IfA, p.IfB} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s is visible in the caller's namespace", name)
		}
	}
	if nsInode(t, p.A) == nsInode(t, p.B) || nsInode(t, p.A) == currentInode(t) {
		t.Errorf("namespaces are not distinct: A %d, B %d, caller %d", nsInode(t, p.A), nsInode(t, p.B), currentInode(t))
	}
}

func checkLink(t *testing.T, ns vnetns.NsHandle, ifname string, index int, v4, v6 netip.Addr) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{ifname, "lo"} {
		link, err := h.LinkByName(name)
		if err != nil {
			t.Errorf("%s in %s: %v", name, ns, err)
			continue
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s in %s is not up", name, ns)
		}
		if name == ifname && (link.Type() != "veth" || link.Attrs().Index != index) {
			t.Errorf("%s: type %s index %d, want veth index %d", name, link.Type(), link.Attrs().Index, index)
		}
	}
	got := map[netip.Addr]bool{}
	link, _ := h.LinkByName(ifname)
	if link == nil {
		return
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		got[ip.Unmap()] = true
	}
	if !got[v4] || !got[v6] {
		t.Errorf("%s addresses %v, want %s and %s", ifname, got, v4, v6)
	}
}

// echoAcross runs one echo session from A to a server in B and checks both
// ends' addresses, which proves each socket lives in its namespace.
func echoAcross(t *testing.T, p *Pair, listen string) {
	ln, err := p.Listen(p.B, listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- echo.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	server := ln.Addr().String()
	got, err := echo.ClientWith(ctx, p.Dialer(p.A), server, []byte("AB"))
	if err != nil || string(got) != "AB" {
		t.Fatalf("echo across the pair: %q, %v", got, err)
	}
	c, err := p.Dial(ctx, p.A, "tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	if want := map[bool]netip.Addr{true: p.AddrA, false: p.AddrA6}[local.Is4()]; local != want {
		t.Errorf("client address %s, want %s", local, want)
	}
	if got, want := socketNS(t, ln.(*net.TCPListener)), nsInode(t, p.B); got != want {
		t.Errorf("listener in net:[%d], want B net:[%d]", got, want)
	}
	if got, want := socketNS(t, c.(*net.TCPConn)), nsInode(t, p.A); got != want {
		t.Errorf("client socket in net:[%d], want A net:[%d]", got, want)
	}
}

// socketNS asks the kernel which network namespace a socket belongs to.
func socketNS(t *testing.T, s syscall.Conn) uint64 {
	t.Helper()
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ino uint64
	var ierr error
	err = rc.Control(func(fd uintptr) {
		nsfd, err := unix.IoctlRetInt(int(fd), unix.SIOCGSKNS)
		if err != nil {
			ierr = err
			return
		}
		defer unix.Close(nsfd)
		var st unix.Stat_t
		ierr = unix.Fstat(nsfd, &st)
		ino = st.Ino
	})
	if err != nil || ierr != nil {
		t.Fatalf("SIOCGSKNS: %v %v", err, ierr)
	}
	return ino
}

// checkGone verifies that Close left no namespace file, no link and no
// process or thread in either namespace.
func checkGone(t *testing.T, p *Pair, inodes []uint64) {
	t.Helper()
	for _, name := range []string{p.NameA, p.NameB} {
		if _, err := os.Lstat(filepath.Join(RunDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace file %s still there: %v", name, err)
		}
		if mounted(t, filepath.Join(RunDir, name)) {
			t.Errorf("%s is still mounted", name)
		}
	}
	for _, name := range []string{p.IfA, p.IfB} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s left in the caller's namespace", name)
		}
	}
	if p.A.IsOpen() || p.B.IsOpen() {
		t.Errorf("handles still open after Close: A %v, B %v", p.A, p.B)
	}
	for _, ino := range inodes {
		if holders := nsHolders(t, ino); len(holders) > 0 {
			t.Errorf("net:[%d] still held by %v", ino, holders)
		}
	}
}

func TestDoRestoresThread(t *testing.T) {
	requireRoot(t)
	p := newPair(t)
	root := currentInode(t)
	want := errors.New("from f")
	for i := range 50 {
		ns := []vnetns.NsHandle{p.A, p.B}[i%2]
		var inside uint64
		err := p.Do(ns, func() error {
			inside = threadInode()
			return want
		})
		if !errors.Is(err, want) {
			t.Fatalf("Do returned %v, want f's error", err)
		}
		if inside != nsInode(t, ns) {
			t.Fatalf("f ran in net:[%d], want net:[%d]", inside, nsInode(t, ns))
		}
	}
	// Every thread of the process must be back in the caller's namespace.
	if stray := threadsNotIn(t, root); len(stray) > 0 {
		t.Fatalf("threads left in another namespace: %v", stray)
	}
}

// Two pairs use the same addresses without clashing.
func TestTwoPairs(t *testing.T) {
	requireRoot(t)
	p1, p2 := newPair(t), newPair(t)
	if p1.NameA == p2.NameA || p1.IfA == p2.IfA {
		t.Fatalf("names collide: %s/%s and %s/%s", p1.NameA, p1.IfA, p2.NameA, p2.IfA)
	}
	for _, p := range []*Pair{p1, p2} {
		echoAcross(t, p, netip.AddrPortFrom(p.AddrB, 20000).String())
	}
}

func TestDoBadHandle(t *testing.T) {
	requireRoot(t)
	err := Do(vnetns.NsHandle(999999), func() error { t.Error("f ran"); return nil })
	if err == nil || !strings.Contains(err.Error(), "enter network namespace") {
		t.Fatalf("Do with a bad handle = %v", err)
	}
}

func nsInode(t *testing.T, h vnetns.NsHandle) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatalf("stat namespace handle %d: %v", h, err)
	}
	return st.Ino
}

func currentInode(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// threadInode is the namespace of the calling thread; the caller is on a
// locked thread (inside Do).
func threadInode() uint64 {
	var st unix.Stat_t
	unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), &st)
	return st.Ino
}

func threadsNotIn(t *testing.T, ino uint64) []string {
	t.Helper()
	links, _ := filepath.Glob("/proc/self/task/*/ns/net")
	var stray []string
	for _, l := range links {
		var st unix.Stat_t
		if unix.Stat(l, &st) == nil && st.Ino != ino {
			stray = append(stray, l)
		}
	}
	return stray
}

// nsHolders lists every task on the host whose network namespace is ino.
func nsHolders(t *testing.T, ino uint64) []string {
	t.Helper()
	links, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/ns/net")
	var out []string
	for _, l := range links {
		var st unix.Stat_t
		if unix.Stat(l, &st) == nil && st.Ino == ino {
			out = append(out, l)
		}
	}
	return out
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}
