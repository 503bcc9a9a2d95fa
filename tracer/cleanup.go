package tracer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ClsactFilter is a cls_bpf filter a tcptracer added, as the kernel lists it.
type ClsactFilter struct {
	Iface     string
	Index     int
	Direction string // ingress or egress
	Prio      uint16
	Handle    uint32
	ProgID    int
	Name      string     // the cls_bpf name, which records the owner
	PID       int        // the owner's pid; 0 when the name records none
	State     OwnerState // whether the owner still runs
	filter    *netlink.BpfFilter
	owner     owner
	hasOwner  bool
}

func (f ClsactFilter) String() string {
	who := "no owner recorded (an older tcptracer?)"
	if f.hasOwner {
		who = fmt.Sprintf("tcptracer pid %d, %s", f.PID, f.State)
	}
	return fmt.Sprintf("%s %s filter pref %d handle %#x (program id %d): %s", f.Iface, f.Direction, f.Prio, f.Handle, f.ProgID, who)
}

// Cleanup is what a tcptracer would remove in one network namespace: the
// filters whose tracer is gone, and the clsact qdiscs that go with them.
// Building one changes nothing; Apply removes.
type Cleanup struct {
	Found  []ClsactFilter // every tcptracer filter there, dead or alive
	Remove []ClsactFilter // the ones Apply deletes
	Qdiscs []string       // interfaces whose clsact qdisc Apply deletes, if still empty then
	Err    error          // at a tracer's start: why the sweep failed (it does not stop the tracer)
	qdisc  []tcIface
	nl     *netlink.Handle
}

// PlanCleanup finds what dead tracers left in the network namespace at
// nsPath ("" for the current one). Filters of a running tracer, of a tracer
// in another pid namespace, without a recorded owner, or of another tool
// are left alone. Close the Cleanup when done.
func PlanCleanup(nsPath string) (*Cleanup, error) {
	nl, err := netlinkHandle(nsPath)
	if err != nil {
		return nil, err
	}
	ns, err := pidNamespace()
	if err != nil {
		nl.Close()
		return nil, err
	}
	c, err := planCleanup(nl, ns)
	if err != nil {
		nl.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the netlink handle of a Cleanup from PlanCleanup.
func (c *Cleanup) Close() {
	if c.nl != nil {
		c.nl.Close()
	}
}

// planCleanup plans the removal of the dead tracers' filters on every
// interface that has a clsact qdisc.
func planCleanup(nl *netlink.Handle, selfNS uint64) (*Cleanup, error) {
	ifaces, err := clsactIfaces(nl)
	if err != nil {
		return nil, err
	}
	gone := func(o owner) bool { return o.state(selfNS) == OwnerGone }
	c, err := planRemoval(nl, ifaces, gone, nil)
	if err != nil {
		return nil, err
	}
	for i := range c.Found {
		if c.Found[i].hasOwner {
			c.Found[i].State = c.Found[i].owner.state(selfNS)
		}
	}
	for i := range c.Remove {
		c.Remove[i].State = OwnerGone
	}
	return c, nil
}

// clsactIfaces lists the interfaces that have a clsact qdisc: the only
// places a filter of ours can be.
func clsactIfaces(nl *netlink.Handle) ([]tcIface, error) {
	qs, err := nl.QdiscList(nil)
	if err != nil {
		return nil, fmt.Errorf("list qdiscs: %w", err)
	}
	var out []tcIface
	for _, q := range qs {
		if q.Type() != "clsact" {
			continue
		}
		idx := q.Attrs().LinkIndex
		name := fmt.Sprintf("if%d", idx)
		if l, err := nl.LinkByIndex(idx); err == nil {
			name = l.Attrs().Name
		}
		out = append(out, tcIface{name, idx})
	}
	return out, nil
}

// planRemoval selects the filters of ours whose owner match accepts, on
// ifaces, and the clsact qdiscs that then go too: those that are
// tcptracer's (qdiscOurs, or a removed filter says so) and would be left
// with nothing attached.
func planRemoval(nl *netlink.Handle, ifaces []tcIface, match func(owner) bool, qdiscOurs map[int]bool) (*Cleanup, error) {
	c := &Cleanup{nl: nl}
	for _, ifc := range ifaces {
		filters, err := listFilters(nl, ifc)
		if err != nil {
			return nil, err
		}
		ours, remains := qdiscOurs[ifc.index], false
		for _, f := range filters {
			cf, isOurs := asOurs(f, ifc)
			if !isOurs {
				remains = remains || attached(f)
				continue
			}
			c.Found = append(c.Found, cf)
			if !cf.hasOwner || !match(cf.owner) {
				remains = true
				continue
			}
			c.Remove = append(c.Remove, cf)
			ours = ours || cf.owner.qdisc
		}
		if ours && !remains {
			c.qdisc = append(c.qdisc, ifc)
			c.Qdiscs = append(c.Qdiscs, ifc.name)
		}
	}
	return c, nil
}

// Apply deletes the planned filters, then each planned qdisc that has
// nothing attached any more: a filter added meanwhile keeps it.
func (c *Cleanup) Apply() error {
	var errs []error
	for _, f := range c.Remove {
		if err := c.nl.FilterDel(f.filter); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete %s %s filter handle %#x: %w", f.Iface, f.Direction, f.Handle, err))
		}
	}
	for _, ifc := range c.qdisc {
		errs = append(errs, removeQdiscIfEmpty(c.nl, ifc))
	}
	return errors.Join(errs...)
}

func removeQdiscIfEmpty(nl *netlink.Handle, ifc tcIface) error {
	filters, err := listFilters(nl, ifc)
	if err != nil || len(filters) > 0 {
		return err
	}
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifc.index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete clsact qdisc on %s: %w", ifc.name, err)
	}
	return nil
}

// listFilters lists the filters on both clsact hooks of ifc.
func listFilters(nl *netlink.Handle, ifc tcIface) ([]netlink.Filter, error) {
	var out []netlink.Filter
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := nl.FilterList(linkRef(ifc.index), parent)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			continue // no clsact qdisc (any more)
		}
		if err != nil {
			return nil, fmt.Errorf("list clsact filters on %s: %w", ifc.name, err)
		}
		out = append(out, fs...)
	}
	return out, nil
}

// asOurs reports f as a tcptracer filter, if its name says it is one.
func asOurs(f netlink.Filter, ifc tcIface) (ClsactFilter, bool) {
	bf, ok := f.(*netlink.BpfFilter)
	if !ok || bf.Handle == 0 || !strings.HasPrefix(bf.Name, filterPrefix) {
		return ClsactFilter{}, false
	}
	dir := "ingress"
	if bf.Parent == netlink.HANDLE_MIN_EGRESS {
		dir = "egress"
	}
	o, hasOwner := parseFilterName(bf.Name)
	del := *bf
	del.Fd = -1 // a delete carries no program
	cf := ClsactFilter{
		Iface: ifc.name, Index: ifc.index, Direction: dir, Prio: bf.Priority, Handle: bf.Handle,
		ProgID: bf.Id, Name: bf.Name, PID: o.pid, State: OwnerUnknown,
		filter: &del, owner: o, hasOwner: hasOwner,
	}
	return cf, true
}

// attached says whether a listed entry stands for something attached. A
// cls_bpf dump starts each priority with an entry of handle 0 that goes
// away with its last filter, so it does not count on its own.
func attached(f netlink.Filter) bool {
	_, isBpf := f.(*netlink.BpfFilter)
	return !isBpf || f.Attrs().Handle != 0
}

// tracersQdisc says whether an existing qdisc with these filters is
// tcptracer's: something is attached, and all of it is tracers' filters
// that say the qdisc is theirs.
func tracersQdisc(filters []netlink.Filter) bool {
	n := 0
	for _, f := range filters {
		if !attached(f) {
			continue
		}
		cf, ok := asOurs(f, tcIface{})
		if !ok || !cf.hasOwner || !cf.owner.qdisc {
			return false
		}
		n++
	}
	return n > 0
}

// same says whether two owners are the same Tracer.
func (o owner) same(p owner) bool {
	return o.pid == p.pid && o.start == p.start && o.pidns == p.pidns && o.tracer == p.tracer
}
