package tracer

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"tcptracer/event"
)

// xmitProg records what traced non-loopback interfaces transmit, after the
// qdisc and after software GSO: the packets capture tools see leaving.
var xmitProg = prog{"tp_xmit", "tp_btf", "net_dev_start_xmit"}

// attachXmit registers the traced interfaces that are not loopback and,
// if there are any, attaches the transmit tracepoint. On loopback every
// packet also passes TC ingress, which is where capture sees it.
func (t *Tracer) attachXmit() error {
	ino, err := netnsInode(t.opts.Netns)
	if err != nil {
		return err
	}
	m := t.shared["xmit_ifaces"]
	var names []string
	for _, ifc := range t.tc.ifaces {
		lnk, err := t.tc.nl.LinkByIndex(ifc.index)
		if err != nil {
			return fmt.Errorf("look up interface %s: %w", ifc.name, err)
		}
		if lnk.Attrs().Flags&net.FlagLoopback != 0 {
			continue
		}
		key := tcptracerXmitKey{Ifindex: uint32(ifc.index), Netns: ino}
		if err := m.Put(key, uint8(1)); err != nil {
			return fmt.Errorf("register %s for the transmit hook: %w", ifc.name, err)
		}
		names = append(names, ifc.name)
	}
	if len(names) == 0 {
		return nil
	}
	if _, err := t.attachGroup([]prog{xmitProg}); err != nil {
		return err
	}
	t.hooks = append(t.hooks, event.Hook{Name: "xmit", Mode: "tracepoint",
		Target: fmt.Sprintf("tp_btf %s on %v", xmitProg.target, names)})
	return nil
}

// netnsInode identifies a network namespace the way the kernel's
// net->ns.inum does: the inode of its nsfs file.
func netnsInode(path string) (uint32, error) {
	if path == "" {
		path = "/proc/self/ns/net"
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("stat network namespace %s: no inode", path)
	}
	return uint32(st.Ino), nil
}
