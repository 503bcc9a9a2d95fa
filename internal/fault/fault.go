// Package fault injects network faults for privileged tests. Dropper is a
// tiny TC program, assembled in Go with cilium/ebpf's asm package (no C, no
// clang, no nftables), that drops the first N IPv4 TCP segments carrying
// payload to one destination port on one interface, then lets everything
// pass. It attaches with tcx where the kernel has it and with a clsact
// filter otherwise, so it runs on the host and in the 6.1 and 6.12 guests
// alike.
//
// The program reads fixed offsets: an Ethernet header, an IPv4 header
// without options (IHL 5) and a TCP header. Anything else (IPv6, IP options,
// ARP, a segment without payload) passes untouched. The budget is
// decremented without an atomic operation: a test drives one flow, so two
// CPUs racing on the last drop is not a case worth the complexity.
package fault

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"tcptracer/internal/netns"
)

// Attach modes, as the tracer names them.
const (
	ModeTCX    = "tcx"
	ModeClsact = "clsact"
)

// TC verdicts. -1 (TC_ACT_UNSPEC, TCX_NEXT) hands the packet to the next
// program or filter, so a dropper never short-cuts someone else's program.
const (
	actNext = -1
	actShot = 2
)

// Offsets into the packet (Ethernet, IPv4 without options, TCP).
const (
	offEthProto = 12
	offIPVerIHL = 14
	offIPTotLen = 16
	offIPProto  = 23
	offTCPDport = 36
	offTCPSeq   = 38
	offTCPDoff  = 46
	headersLen  = 54 // 14 + 20 + 20
	ipHdrLen    = 20
)

// __sk_buff fields holding the packet's bounds.
const (
	skbData    = 76
	skbDataEnd = 80
)

// Offsets in the state map's one value.
const (
	stRemaining = 0 // drops left
	stDropped   = 4 // drops done
	stFirstSeq  = 8 // the first dropped segment's seq, in network order
	stateSize   = 16
)

// Spec says where to drop and what.
type Spec struct {
	Netns   vnetns.NsHandle // namespace holding Iface; vnetns.None() for the caller's
	Iface   string
	Egress  bool   // false: ingress
	Port    uint16 // TCP destination port of the segments to drop
	Count   uint32 // how many segments with payload to drop; 0 means 1
	Clsact  bool   // skip tcx even where the kernel has it
	Verbose bool   // the verifier's log in load errors
}

// Dropper is an attached drop program. Close detaches it.
type Dropper struct {
	mode   string
	state  *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
	nl     *netlink.Handle
	filter *netlink.BpfFilter
	qdisc  netlink.Qdisc
}

// Drop loads the program and attaches it to s.Iface.
func Drop(s Spec) (*Dropper, error) {
	if s.Count == 0 {
		s.Count = 1
	}
	d := &Dropper{}
	if err := d.load(s); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	if err := d.attach(s); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

func (d *Dropper) load(s Spec) error {
	var err error
	d.state, err = ebpf.NewMap(&ebpf.MapSpec{Name: "fault_state", Type: ebpf.Array, KeySize: 4, ValueSize: stateSize, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("create fault state map: %w", err)
	}
	var v [stateSize]byte
	binary.NativeEndian.PutUint32(v[stRemaining:], s.Count)
	if err := d.state.Put(uint32(0), v[:]); err != nil {
		return fmt.Errorf("set drop budget: %w", err)
	}
	spec := &ebpf.ProgramSpec{Name: "fault_drop", Type: ebpf.SchedCLS, License: "GPL", Instructions: program(d.state.FD(), s.Port)}
	opts := ebpf.ProgramOptions{}
	if s.Verbose {
		opts.LogLevel = ebpf.LogLevelInstruction
	}
	if d.prog, err = ebpf.NewProgramWithOptions(spec, opts); err != nil {
		return fmt.Errorf("load fault_drop: %w", err)
	}
	return nil
}

// native16 is what a plain 16-bit load on this machine reads from the
// network-order bytes of v, so the program compares without byte swaps.
func native16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// program: R2 = data; R7 = payload length; R8 = seq; R0 = the state value.
func program(mapFD int, port uint16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, headersLen),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, offEthProto, asm.Half),
		asm.JNE.Imm(asm.R5, native16(unix.ETH_P_IP), "pass"),
		asm.LoadMem(asm.R5, asm.R2, offIPVerIHL, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, "pass"),
		asm.LoadMem(asm.R5, asm.R2, offIPProto, asm.Byte),
		asm.JNE.Imm(asm.R5, unix.IPPROTO_TCP, "pass"),
		asm.LoadMem(asm.R5, asm.R2, offTCPDport, asm.Half),
		asm.JNE.Imm(asm.R5, native16(port), "pass"),
		// payload = tot_len - 20 - doff*4
		asm.LoadMem(asm.R7, asm.R2, offIPTotLen, asm.Half),
		asm.HostTo(asm.BE, asm.R7, asm.Half),
		asm.LoadMem(asm.R5, asm.R2, offTCPDoff, asm.Byte),
		asm.And.Imm(asm.R5, 0xf0),
		asm.RSh.Imm(asm.R5, 2),
		asm.Sub.Imm(asm.R7, ipHdrLen),
		asm.Sub.Reg(asm.R7, asm.R5),
		asm.JSLE.Imm(asm.R7, 0, "pass"),
		asm.LoadMem(asm.R8, asm.R2, offTCPSeq, asm.Word),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, stRemaining, asm.Word),
		asm.JEq.Imm(asm.R1, 0, "pass"),
		asm.Sub.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, stRemaining, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, stDropped, asm.Word),
		asm.JNE.Imm(asm.R1, 0, "count"),
		asm.StoreMem(asm.R0, stFirstSeq, asm.R8, asm.Word),
		asm.Add.Imm(asm.R1, 1).WithSymbol("count"),
		asm.StoreMem(asm.R0, stDropped, asm.R1, asm.Word),
		asm.Mov.Imm(asm.R0, actShot),
		asm.Return(),
		asm.Mov.Imm(asm.R0, actNext).WithSymbol("pass"),
		asm.Return(),
	}
}

// attach tries tcx, then a clsact filter where tcx is not supported.
func (d *Dropper) attach(s Spec) error {
	if !s.Clsact {
		err := netns.Do(s.Netns, func() error { return d.attachTCX(s) })
		if err == nil {
			d.mode = ModeTCX
			return nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return err
		}
	}
	d.mode = ModeClsact
	return d.attachClsact(s)
}

func (d *Dropper) attachTCX(s Spec) error {
	ifc, err := netlink.LinkByName(s.Iface) // runs inside s.Netns
	if err != nil {
		return fmt.Errorf("find %s: %w", s.Iface, err)
	}
	at := ebpf.AttachTCXIngress
	if s.Egress {
		at = ebpf.AttachTCXEgress
	}
	d.link, err = link.AttachTCX(link.TCXOptions{Interface: ifc.Attrs().Index, Program: d.prog, Attach: at, Anchor: link.Tail()})
	if err != nil {
		return fmt.Errorf("attach fault_drop (tcx) to %s: %w", s.Iface, err)
	}
	return nil
}

func (d *Dropper) attachClsact(s Spec) error {
	var err error
	if d.nl, err = netlink.NewHandleAt(s.Netns); err != nil {
		return fmt.Errorf("open netlink for %s: %w", s.Iface, err)
	}
	ifc, err := d.nl.LinkByName(s.Iface)
	if err != nil {
		return fmt.Errorf("find %s: %w", s.Iface, err)
	}
	idx := ifc.Attrs().Index
	q := &netlink.GenericQdisc{QdiscType: "clsact",
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	switch err := d.nl.QdiscAdd(q); {
	case err == nil:
		d.qdisc = q
	case !errors.Is(err, unix.EEXIST):
		return fmt.Errorf("add clsact qdisc to %s: %w", s.Iface, err)
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if s.Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	// Priority 0xfff0: after the tracer's filter (priority 1), so the
	// tracer still sees what is dropped when both share an interface.
	f := &netlink.BpfFilter{Fd: d.prog.FD(), Name: "fault_drop", DirectAction: true,
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: parent, Handle: 0xfa17, Protocol: unix.ETH_P_ALL, Priority: 0xfff0}}
	if err := d.nl.FilterAdd(f); err != nil {
		return fmt.Errorf("add fault_drop clsact filter to %s: %w", s.Iface, err)
	}
	d.filter = f
	return nil
}

// Mode says how the program is attached: ModeTCX or ModeClsact.
func (d *Dropper) Mode() string { return d.mode }

// Dropped returns how many segments were dropped and the first one's
// sequence number (as on the wire, host order here).
func (d *Dropper) Dropped() (n uint32, firstSeq uint32, err error) {
	var v [stateSize]byte
	if err := d.state.Lookup(uint32(0), v[:]); err != nil {
		return 0, 0, fmt.Errorf("read fault state: %w", err)
	}
	return binary.NativeEndian.Uint32(v[stDropped:]), binary.BigEndian.Uint32(v[stFirstSeq:]), nil
}

// Close detaches and unloads; safe on a partly built Dropper and twice.
func (d *Dropper) Close() error {
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
		d.link = nil
	}
	if d.filter != nil {
		if err := d.nl.FilterDel(d.filter); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete fault_drop filter: %w", err))
		}
		d.filter = nil
	}
	if d.qdisc != nil {
		if err := d.nl.QdiscDel(d.qdisc); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("delete clsact qdisc: %w", err))
		}
		d.qdisc = nil
	}
	if d.nl != nil {
		d.nl.Close()
		d.nl = nil
	}
	if d.prog != nil {
		errs = append(errs, d.prog.Close())
		d.prog = nil
	}
	if d.state != nil {
		errs = append(errs, d.state.Close())
		d.state = nil
	}
	return errors.Join(errs...)
}
