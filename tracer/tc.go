package tracer

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Our clsact filters go first in line: priority 1, shared by every
// tcptracer (cls_bpf keeps several filters under one priority, each with a
// handle the kernel picks), unless another classifier holds it.
const filterPrio = 1

type tcIface struct {
	name  string
	index int
}

// tcAttachment is everything attached for TC, kept for Close.
type tcAttachment struct {
	mode   string
	ifaces []tcIface
	links  []link.Link
	// qdiscs[ifindex] is true when the clsact qdisc there is tcptracer's, so
	// Close removes it once nothing is attached to it any more.
	qdiscs map[int]bool
	self   owner // how our filters are named
	swept  *Cleanup
	nl     *netlink.Handle
}

func (t *Tracer) attachTC() error {
	nl, err := netlinkHandle(t.opts.Netns)
	if err != nil {
		return err
	}
	a := &tcAttachment{nl: nl, qdiscs: map[int]bool{}}
	t.tc = a
	if a.self, err = selfOwner(); err != nil {
		return err
	}
	a.sweep()
	if a.ifaces, err = chooseIfaces(nl, t.opts.Ifaces); err != nil {
		return err
	}
	for _, ifc := range a.ifaces {
		t.ifname[uint32(ifc.index)] = ifc.name
	}
	coll, err := t.loadPrograms("tc_ingress", "tc_egress")
	if err != nil {
		return err
	}
	t.colls = append(t.colls, coll)
	in, eg := coll.Programs["tc_ingress"], coll.Programs["tc_egress"]
	refused, err := a.attach(t.opts, in, eg)
	if err != nil {
		return err
	}
	t.tcHook(refused)
	return nil
}

// sweep removes what dead tracers left in the namespace before we add to
// it: their classifiers would keep running, and trace into nobody's ring.
// A failure here is reported, not fatal: tracing works beside an orphan.
func (a *tcAttachment) sweep() {
	c, err := planCleanup(a.nl, a.self.pidns)
	if err == nil {
		err = c.Apply()
	}
	if c == nil {
		c = &Cleanup{}
	}
	c.Err = err
	a.swept = c
}

// attach tries tcx, then clsact, unless one is forced.
func (a *tcAttachment) attach(o Options, in, eg *ebpf.Program) (string, error) {
	if o.TC != ModeClsact {
		err := inNetns(o.Netns, func() error { return a.attachTCX(in, eg) })
		if err == nil {
			a.mode = ModeTCX
			return "", nil
		}
		a.closeLinks()
		if o.TC == ModeTCX {
			return "", fmt.Errorf("tc mode tcx: %w", err)
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return "", err
		}
		a.mode = ModeClsact
		return err.Error(), a.attachClsact(in, eg)
	}
	a.mode = ModeClsact
	return "", a.attachClsact(in, eg)
}

func (a *tcAttachment) attachTCX(in, eg *ebpf.Program) error {
	for _, ifc := range a.ifaces {
		for _, d := range []struct {
			prog *ebpf.Program
			typ  ebpf.AttachType
			name string
		}{{in, ebpf.AttachTCXIngress, "ingress"}, {eg, ebpf.AttachTCXEgress, "egress"}} {
			l, err := link.AttachTCX(link.TCXOptions{
				Interface: ifc.index,
				Program:   d.prog,
				Attach:    d.typ,
				Anchor:    link.Head(),
			})
			if err != nil {
				return fmt.Errorf("attach tcx %s to %s: %w", d.name, ifc.name, err)
			}
			a.links = append(a.links, l)
		}
	}
	return nil
}

func (a *tcAttachment) attachClsact(in, eg *ebpf.Program) error {
	for _, ifc := range a.ifaces {
		o, err := a.prepareClsact(ifc)
		if err != nil {
			return err
		}
		for _, d := range []struct {
			prog   *ebpf.Program
			parent uint32
			name   string
		}{{in, netlink.HANDLE_MIN_INGRESS, "ingress"}, {eg, netlink.HANDLE_MIN_EGRESS, "egress"}} {
			if err := a.addFilter(ifc, d.parent, d.name, d.prog, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepareClsact makes sure ifc has a clsact qdisc and decides whether it is
// tcptracer's: we created it, or every filter on it is a tracer's that says
// so. A qdisc another tool made, or shares, is never ours to remove.
func (a *tcAttachment) prepareClsact(ifc tcIface) (owner, error) {
	created, err := a.ensureClsact(ifc)
	if err != nil {
		return owner{}, err
	}
	o := a.self
	if o.qdisc = created; !created {
		filters, err := listFilters(a.nl, ifc)
		if err != nil {
			return owner{}, err
		}
		o.qdisc = tracersQdisc(filters)
	}
	a.qdiscs[ifc.index] = o.qdisc
	return o, nil
}

// addFilter adds one direct-action cls_bpf filter named after its owner.
// The kernel picks the handle; Close finds the filter again by name.
func (a *tcAttachment) addFilter(ifc tcIface, parent uint32, dir string, prog *ebpf.Program, o owner) error {
	there, err := a.nl.FilterList(linkRef(ifc.index), parent)
	if err != nil {
		return fmt.Errorf("list clsact %s filters on %s: %w", dir, ifc.name, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifc.index,
			Parent:    parent,
			Protocol:  unix.ETH_P_ALL,
			Priority:  choosePrio(there),
		},
		Fd:           prog.FD(),
		Name:         o.filterName(dir),
		DirectAction: true,
	}
	if err := a.nl.FilterAdd(f); err != nil {
		return fmt.Errorf("add clsact %s filter to %s: %w", dir, ifc.name, err)
	}
	return nil
}

// choosePrio returns filterPrio unless a classifier other than a cls_bpf
// for every protocol holds it (the kernel refuses to mix them under one
// priority); then the lowest priority nobody holds.
func choosePrio(filters []netlink.Filter) uint16 {
	taken := map[uint16]bool{}
	for _, f := range filters {
		if _, ok := f.(*netlink.BpfFilter); ok && f.Attrs().Protocol == unix.ETH_P_ALL {
			continue
		}
		taken[f.Attrs().Priority] = true
	}
	p := uint16(filterPrio)
	for taken[p] && p < 0xffff {
		p++
	}
	return p
}

// ensureClsact adds a clsact qdisc unless the interface already has one,
// and says whether it added it.
func (a *tcAttachment) ensureClsact(ifc tcIface) (bool, error) {
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: ifc.index,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	err := a.nl.QdiscAdd(q)
	if errors.Is(err, unix.EEXIST) {
		return false, a.checkClsact(ifc)
	}
	if err != nil {
		return false, fmt.Errorf("add clsact qdisc to %s: %w", ifc.name, err)
	}
	return true, nil
}

// checkClsact explains the one EEXIST that is not a clsact qdisc to adopt:
// an ingress qdisc holds the same place and has no egress hook.
func (a *tcAttachment) checkClsact(ifc tcIface) error {
	qs, err := a.nl.QdiscList(linkRef(ifc.index))
	if err != nil {
		return fmt.Errorf("list qdiscs on %s: %w", ifc.name, err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_CLSACT && q.Type() != "clsact" {
			return fmt.Errorf("add clsact qdisc to %s: it has an %s qdisc in clsact's place (try --tc tcx)", ifc.name, q.Type())
		}
	}
	return nil
}

func (a *tcAttachment) closeLinks() error {
	var errs []error
	for _, l := range a.links {
		errs = append(errs, l.Close())
	}
	a.links = nil
	return errors.Join(errs...)
}

// close detaches the tcx links, or removes exactly this tracer's clsact
// filters and the qdiscs that are tcptracer's and left empty.
func (a *tcAttachment) close() error {
	errs := []error{a.closeLinks()}
	if len(a.qdiscs) > 0 {
		c, err := planRemoval(a.nl, a.ifaces, a.self.same, a.qdiscs)
		if err == nil {
			err = c.Apply()
		}
		errs = append(errs, err)
	}
	a.nl.Close()
	return errors.Join(errs...)
}

func (a *tcAttachment) names() []string {
	n := make([]string, len(a.ifaces))
	for i, ifc := range a.ifaces {
		n[i] = ifc.name
	}
	return n
}

// chooseIfaces resolves the requested names, or every interface that is up.
func chooseIfaces(nl *netlink.Handle, want []string) ([]tcIface, error) {
	var out []tcIface
	if len(want) == 0 {
		links, err := nl.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list interfaces: %w", err)
		}
		for _, l := range links {
			if l.Attrs().Flags&net.FlagUp != 0 {
				out = append(out, tcIface{l.Attrs().Name, l.Attrs().Index})
			}
		}
		if len(out) == 0 {
			return nil, errors.New("no interface is up")
		}
		return out, nil
	}
	for _, name := range want {
		l, err := nl.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", name, err)
		}
		out = append(out, tcIface{name, l.Attrs().Index})
	}
	return out, nil
}

// linkRef names an interface by index for netlink calls that take a Link.
func linkRef(index int) netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
}

func netlinkHandle(nsPath string) (*netlink.Handle, error) {
	if nsPath == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", nsPath, err)
	}
	return h, nil
}

// inNetns runs f on a thread switched into the namespace at nsPath (tcx
// resolves interface indexes in the caller's namespace). The thread is
// thrown away afterwards rather than trusted to switch back.
func inNetns(nsPath string, f func() error) error {
	if nsPath == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", nsPath, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", nsPath, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}
