package tracer

import (
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestFilterNameRoundTrip(t *testing.T) {
	o := owner{pid: 4242, start: 981234, pidns: 4026531836, tracer: 3, qdisc: true}
	name := o.filterName("egress")
	if name != "tcptracer_egress pid=4242 start=981234 pidns=4026531836 tracer=3 qdisc=1" {
		t.Errorf("name %q", name)
	}
	got, ok := parseFilterName(name)
	if !ok || got != o {
		t.Errorf("parse %q: %+v, %v; want %+v", name, got, ok, o)
	}
}

func TestParseFilterNameRejects(t *testing.T) {
	for _, name := range []string{
		"tcptracer_ingress", // an older tcptracer: no owner
		"othertool pid=1 start=2 pidns=3 tracer=4 qdisc=0",
		"tcptracer_ingress pid=x start=2 pidns=3 tracer=4 qdisc=0",
		"tcptracer_ingress pid=0 start=2 pidns=3 tracer=4 qdisc=0",
		"tcptracer_ingress pid=1 pid=1 pidns=3 tracer=4 qdisc=0",
		"tcptracer_ingress pid=1 start=2 pidns=3 tracer=4",
	} {
		if o, ok := parseFilterName(name); ok {
			t.Errorf("parse %q: %+v, want no owner", name, o)
		}
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and a ')' of its own.
	stat := "77 (a b) c)) Z 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615\n"
	st, err := parseStat([]byte(stat))
	if err != nil || st != (procStat{state: 'Z', start: 123456}) {
		t.Errorf("stat %+v, %v; want state Z, start 123456", st, err)
	}
	if _, err := parseStat([]byte("77 (x) S 1")); err == nil {
		t.Error("short stat: no error")
	}
}

// Our own process is running; a pid that does not exist is gone; a reused
// pid (same pid, other start time) is gone; another pid namespace is unknown.
func TestOwnerState(t *testing.T) {
	self, err := selfOwner()
	if err != nil {
		t.Fatal(err)
	}
	if s := self.state(self.pidns); s != OwnerRunning {
		t.Errorf("self: %v", s)
	}
	reused := self
	reused.start++
	if s := reused.state(self.pidns); s != OwnerGone {
		t.Errorf("reused pid: %v", s)
	}
	dead := self
	dead.pid = 1<<22 + 1 // above pid_max's limit
	if s := dead.state(self.pidns); s != OwnerGone {
		t.Errorf("no such pid: %v", s)
	}
	if s := self.state(self.pidns + 1); s != OwnerUnknown {
		t.Errorf("other pid namespace: %v", s)
	}
	if self.pid != os.Getpid() {
		t.Errorf("pid %d", self.pid)
	}
}

func TestChoosePrio(t *testing.T) {
	bpf := func(prio, proto uint16) netlink.Filter {
		return &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{Priority: prio, Protocol: proto}}
	}
	u32 := func(prio uint16) netlink.Filter {
		return &netlink.U32{FilterAttrs: netlink.FilterAttrs{Priority: prio, Protocol: unix.ETH_P_ALL}}
	}
	for _, c := range []struct {
		name string
		have []netlink.Filter
		want uint16
	}{
		{"empty", nil, 1},
		{"another tracer at 1", []netlink.Filter{bpf(1, unix.ETH_P_ALL)}, 1},
		{"u32 at 1", []netlink.Filter{u32(1), u32(2), bpf(4, unix.ETH_P_ALL)}, 3},
		{"bpf for IPv4 only at 1", []netlink.Filter{bpf(1, unix.ETH_P_IP)}, 2},
	} {
		if got := choosePrio(c.have); got != c.want {
			t.Errorf("%s: prio %d, want %d", c.name, got, c.want)
		}
	}
}
