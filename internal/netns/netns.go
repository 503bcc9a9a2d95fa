// Package netns builds the two-namespace test bed for privileged tests: a
// client namespace A and a server namespace B joined by a veth pair, with
// 198.51.100.1/24 in A and 198.51.100.2/24 in B (2001:db8::1/64 and ::2/64 too).
//
// Everything is done through netlink and setns from Go, so it works where no
// iproute2 is installed (a busybox guest). The namespaces are named like
// `ip netns add` names them: bind mounts of the namespace under /run/netns
// (the directory is created if missing; unlike iproute2 we do not make it a
// shared mount, which only matters to other mount namespaces). So
// `ip netns exec NAME …` or `nsenter --net=/run/netns/NAME …` can be used to
// look inside while a test runs; the package itself only uses the handles.
//
// A thread's network namespace is per thread, so code that must run inside a
// namespace goes through Do, which runs it on a locked OS thread switched into
// the namespace. Sockets keep the namespace they were created in, so a
// listener or connection made inside Do can be used from any goroutine.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RunDir is where named namespaces are bind-mounted, as by `ip netns add`.
const RunDir = "/run/netns"

// Addresses given to the pair, A ("client") first.
var (
	PrefixV4 = netip.MustParsePrefix("198.51.100.0/24")
	PrefixV6 = netip.MustParsePrefix("2001:db8::/64")
	AddrA    = netip.MustParseAddr("198.51.100.1")
	AddrB    = netip.MustParseAddr("198.51.100.2")
	AddrA6   = netip.MustParseAddr("2001:db8::1")
	AddrB6   = netip.MustParseAddr("2001:db8::2")
)

// Pair is two named network namespaces joined by a veth pair. A is the
// client side, B the server side. Close removes everything.
type Pair struct {
	NameA, NameB   string          // names under RunDir
	A, B           vnetns.NsHandle // open handles (fds) on the namespaces
	IfA, IfB       string          // veth end inside A and inside B
	IndexA, IndexB int             // their ifindexes, each in its own namespace
	AddrA, AddrB   netip.Addr      // IPv4 of IfA and IfB
	AddrA6, AddrB6 netip.Addr      // IPv6 of IfA and IfB (no DAD, usable at once)

	hA, hB *netlink.Handle
	closed bool
}

// NewPair creates the namespaces, the veth pair and the addresses, and sets
// every link (lo included) up. Names are prefix plus the pid and a random
// suffix, so parallel tests and leftovers of a crashed run do not collide.
// On error everything already created is removed again.
func NewPair(prefix string) (*Pair, error) {
	id, err := uniqueID()
	if err != nil {
		return nil, err
	}
	p := &Pair{
		NameA: prefix + "-" + id + "-a", NameB: prefix + "-" + id + "-b",
		A: vnetns.None(), B: vnetns.None(),
		IfA: "v" + id[len(id)-6:] + "a", IfB: "v" + id[len(id)-6:] + "b",
		AddrA: AddrA, AddrB: AddrB, AddrA6: AddrA6, AddrB6: AddrB6,
	}
	if err := p.setUp(); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

func uniqueID() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random name suffix: %w", err)
	}
	return fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b[:])), nil
}

func (p *Pair) setUp() error {
	var err error
	if p.A, err = newNamed(p.NameA); err != nil {
		return err
	}
	if p.B, err = newNamed(p.NameB); err != nil {
		return err
	}
	if p.hA, err = netlink.NewHandleAt(p.A, unix.NETLINK_ROUTE); err != nil {
		return fmt.Errorf("open netlink in %s: %w", p.NameA, err)
	}
	if p.hB, err = netlink.NewHandleAt(p.B, unix.NETLINK_ROUTE); err != nil {
		return fmt.Errorf("open netlink in %s: %w", p.NameB, err)
	}
	if err := p.addVeth(); err != nil {
		return err
	}
	if p.IndexA, err = configure(p.hA, p.NameA, p.IfA, p.AddrA, p.AddrA6); err != nil {
		return err
	}
	p.IndexB, err = configure(p.hB, p.NameB, p.IfB, p.AddrB, p.AddrB6)
	return err
}

// newNamed creates a named namespace. vishvananda/netns.NewNamed moves the
// calling thread into the new namespace, so it runs on a thread of its own.
func newNamed(name string) (vnetns.NsHandle, error) {
	var h vnetns.NsHandle
	err := Do(vnetns.None(), func() error {
		var err error
		h, err = vnetns.NewNamed(name)
		return err
	})
	if err != nil {
		return vnetns.None(), fmt.Errorf("create network namespace %s: %w", name, err)
	}
	return h, nil
}

// addVeth creates IfA in A with its peer IfB placed directly in B, so the
// names never appear in the caller's namespace.
func (p *Pair) addVeth() error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: p.IfA},
		PeerName:      p.IfB,
		PeerNamespace: netlink.NsFd(p.B),
	}
	if err := p.hA.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s (%s) - %s (%s): %w", p.IfA, p.NameA, p.IfB, p.NameB, err)
	}
	return nil
}

// configure addresses ifname and sets it and lo up; it returns ifname's index.
func configure(h *netlink.Handle, ns, ifname string, v4, v6 netip.Addr) (int, error) {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("find %s in %s: %w", ifname, ns, err)
	}
	for _, a := range []netip.Prefix{netip.PrefixFrom(v4, PrefixV4.Bits()), netip.PrefixFrom(v6, PrefixV6.Bits())} {
		addr := &netlink.Addr{IPNet: prefixToIPNet(a), Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(link, addr); err != nil {
			return 0, fmt.Errorf("add %s to %s in %s: %w", a, ifname, ns, err)
		}
	}
	if err := setUp(h, ns, "lo"); err != nil {
		return 0, err
	}
	if err := h.LinkSetUp(link); err != nil {
		return 0, fmt.Errorf("set %s up in %s: %w", ifname, ns, err)
	}
	return link.Attrs().Index, nil
}

func setUp(h *netlink.Handle, ns, ifname string) error {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", ifname, ns, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up in %s: %w", ifname, ns, err)
	}
	return nil
}

// Close deletes the veth pair, closes the handles and unmounts and removes
// both namespace files. The namespaces themselves vanish once nothing holds
// them: sockets created inside (listeners, connections) must be closed by
// the caller first. Close is safe to call twice.
func (p *Pair) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.hA != nil {
		if err := deleteLink(p.hA, p.IfA); err != nil {
			errs = append(errs, fmt.Errorf("delete veth %s in %s: %w", p.IfA, p.NameA, err))
		}
		p.hA.Close()
	}
	if p.hB != nil {
		p.hB.Close()
	}
	for _, ns := range []struct {
		name string
		h    *vnetns.NsHandle
	}{{p.NameA, &p.A}, {p.NameB, &p.B}} {
		errs = append(errs, closeNamed(ns.name, ns.h))
	}
	return errors.Join(errs...)
}

// deleteLink removes a veth end (and so its peer); a link already gone is
// not an error.
func deleteLink(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return h.LinkDel(link)
}

func closeNamed(name string, h *vnetns.NsHandle) error {
	if h.IsOpen() {
		h.Close()
	}
	path := filepath.Join(RunDir, name)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := vnetns.DeleteNamed(name); err != nil {
		return fmt.Errorf("delete network namespace %s: %w", name, err)
	}
	return nil
}

// Do runs f on an OS thread switched into network namespace ns and switches
// the thread back afterwards; vnetns.None() runs f on a locked thread left in
// the current namespace. f runs on a goroutine of its own (so it must not
// call t.Fatal) and goroutines it starts are not in ns. If the thread cannot
// be switched back it is kept locked, and Go discards it when f's goroutine
// ends, so no other goroutine ever runs in the wrong namespace.
func Do(ns vnetns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- doLocked(ns, f) }()
	return <-errc
}

func doLocked(ns vnetns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current network namespace: %w", err)
	}
	defer orig.Close()
	if ns.IsOpen() {
		if err := vnetns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			return fmt.Errorf("enter network namespace %s: %w", ns, err)
		}
	}
	ferr := f()
	if err := vnetns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("restore network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
