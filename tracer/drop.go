package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"

	"tcptracer/event"
)

// Drop programs: the tracepoint's arguments decide which one loads.
var (
	dropProg         = prog{"tp_kfree_skb", "tp_btf", "kfree_skb"}
	dropProgNoReason = prog{"tp_kfree_skb_noreason", "tp_btf", "kfree_skb"}
)

// attachDrops attaches the kfree_skb hook. Its absence is reported in
// the hooks, not fatal: the rest of the tracer works without it.
func (t *Tracer) attachDrops() error {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("load kernel BTF: %w", err)
	}
	hasReason, err := kfreeSkbHasReason(spec)
	h := event.Hook{Name: "kfree_skb", Mode: "tracepoint", Target: "tp_btf kfree_skb"}
	p := dropProg
	if err == nil && !hasReason {
		p = dropProgNoReason
		h.Target += " (no reason argument: drops report " + event.NoReason + ")"
	}
	if err == nil {
		_, err = t.attachGroup([]prog{p})
	}
	if err != nil {
		h.Target = "unavailable: " + err.Error()
	}
	t.hooks = append(t.hooks, h)
	t.drops = newDropNames(spec)
	return nil
}

// kfreeSkbHasReason reads the tracepoint's prototype from BTF: since 5.17
// it is (skb, location, reason[, rx_sk]), before that (skb, location).
func kfreeSkbHasReason(spec *btf.Spec) (bool, error) {
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_kfree_skb", &td); err != nil {
		return false, fmt.Errorf("find tracepoint kfree_skb in BTF: %w", err)
	}
	ptr, ok := btf.UnderlyingType(td.Type).(*btf.Pointer)
	if !ok {
		return false, errors.New("btf_trace_kfree_skb is not a function pointer")
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		return false, errors.New("btf_trace_kfree_skb is not a function pointer")
	}
	// The first parameter is the tracepoint's private data pointer.
	return len(proto.Params) >= 4, nil
}

// dropNames turns a drop's reason and location into names: the reason
// from the running kernel's enum skb_drop_reason, the location from
// /proc/kallsyms, read once when the first drop needs it.
type dropNames struct {
	reasons map[uint32]string
	syms    []ksym
	loaded  bool
	cache   map[uint64]string
}

type ksym struct {
	addr uint64
	name string
}

func newDropNames(spec *btf.Spec) *dropNames {
	d := &dropNames{reasons: map[uint32]string{}, cache: map[uint64]string{}}
	var e *btf.Enum
	if spec == nil || spec.TypeByName("skb_drop_reason", &e) != nil {
		return d
	}
	for _, v := range e.Values {
		d.reasons[uint32(v.Value)] = reasonName(v.Name)
	}
	return d
}

// reasonName drops the enumerator's prefix, as the kernel's own
// tracepoint output does: SKB_DROP_REASON_NETFILTER_DROP is NETFILTER_DROP.
func reasonName(n string) string {
	if s, ok := strings.CutPrefix(n, "SKB_DROP_REASON_"); ok {
		return s
	}
	return strings.TrimPrefix(n, "SKB_")
}

func (d *dropNames) reason(r uint32) string {
	if n, ok := d.reasons[r]; ok {
		return n
	}
	return "reason " + strconv.FormatUint(uint64(r), 10)
}

// symbol resolves a kernel text address to symbol+0xoffset.
func (d *dropNames) symbol(addr uint64) string {
	if !d.loaded {
		d.loaded = true
		d.syms, _ = readKallsyms("/proc/kallsyms")
	}
	if s, ok := d.cache[addr]; ok {
		return s
	}
	s := ""
	i := sort.Search(len(d.syms), func(i int) bool { return d.syms[i].addr > addr }) - 1
	if i >= 0 && addr != 0 {
		s = fmt.Sprintf("%s+0x%x", d.syms[i].name, addr-d.syms[i].addr)
	}
	if len(d.cache) < 4096 {
		d.cache[addr] = s
	}
	return s
}

// readKallsyms reads the text symbols, sorted by address. Without the
// privilege to see addresses the kernel shows zeros, and the list is empty.
func readKallsyms(path string) ([]ksym, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	var syms []ksym
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s, ok := parseKsym(sc.Text())
		if ok {
			syms = append(syms, s)
		}
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	return syms, sc.Err()
}

func parseKsym(line string) (ksym, bool) {
	f := strings.Fields(line)
	if len(f) < 3 || (f[1] != "t" && f[1] != "T") {
		return ksym{}, false
	}
	addr, err := strconv.ParseUint(f[0], 16, 64)
	if err != nil || addr == 0 {
		return ksym{}, false
	}
	return ksym{addr: addr, name: f[2]}, true
}
