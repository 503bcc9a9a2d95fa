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

// Our clsact filters: first in line, and recognisable by handle.
const (
	filterPrio   = 1
	filterHandle = 0x7a63
)

type tcIface struct {
	name  string
	index int
}

// tcAttachment is everything attached for TC, kept for Close.
type tcAttachment struct {
	mode    string
	ifaces  []tcIface
	links   []link.Link
	filters []*netlink.BpfFilter
	qdiscs  []netlink.Qdisc // clsact qdiscs we created (others' are left alone)
	nl      *netlink.Handle
}

func (t *Tracer) attachTC() error {
	nl, err := netlinkHandle(t.opts.Netns)
	if err != nil {
		return err
	}
	a := &tcAttachment{nl: nl}
	t.tc = a
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
		if err := a.ensureClsact(ifc); err != nil {
			return err
		}
		for _, d := range []struct {
			prog   *ebpf.Program
			parent uint32
			name   string
		}{{in, netlink.HANDLE_MIN_INGRESS, "ingress"}, {eg, netlink.HANDLE_MIN_EGRESS, "egress"}} {
			f := &netlink.BpfFilter{
				FilterAttrs: netlink.FilterAttrs{
					LinkIndex: ifc.index,
					Parent:    d.parent,
					Handle:    filterHandle,
					Protocol:  unix.ETH_P_ALL,
					Priority:  filterPrio,
				},
				Fd:           d.prog.FD(),
				Name:         "tcptracer_" + d.name,
				DirectAction: true,
			}
			if err := a.nl.FilterAdd(f); err != nil {
				return fmt.Errorf("add clsact %s filter to %s: %w", d.name, ifc.name, err)
			}
			a.filters = append(a.filters, f)
		}
	}
	return nil
}

// ensureClsact adds a clsact qdisc unless the interface already has one.
func (a *tcAttachment) ensureClsact(ifc tcIface) error {
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
		return nil
	}
	if err != nil {
		return fmt.Errorf("add clsact qdisc to %s: %w", ifc.name, err)
	}
	a.qdiscs = append(a.qdiscs, q)
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

func (a *tcAttachment) close() error {
	errs := []error{a.closeLinks()}
	for _, f := range a.filters {
		if err := a.nl.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete clsact filter on ifindex %d: %w", f.LinkIndex, err))
		}
	}
	for _, q := range a.qdiscs {
		if err := a.nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("delete clsact qdisc on ifindex %d: %w", q.Attrs().LinkIndex, err))
		}
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
