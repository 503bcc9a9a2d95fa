package tracer

import (
	"bytes"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestReasonName(t *testing.T) {
	for in, want := range map[string]string{
		"SKB_DROP_REASON_NETFILTER_DROP": "NETFILTER_DROP",
		"SKB_DROP_REASON_NOT_SPECIFIED":  "NOT_SPECIFIED",
		"SKB_CONSUMED":                   "CONSUMED",
		"SKB_NOT_DROPPED_YET":            "NOT_DROPPED_YET",
	} {
		if got := reasonName(in); got != want {
			t.Errorf("reasonName(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSymbol(t *testing.T) {
	d := &dropNames{loaded: true, cache: map[uint64]string{}, reasons: map[uint32]string{12: "NETFILTER_DROP"}}
	for _, line := range []string{
		"ffffffff81000000 T _stext",
		"ffffffff81c2a320 t nf_hook_slow",
		"ffffffff81c2a400 T nf_hook_slow_list",
		"ffffffff82000000 d some_data",
		"0000000000000000 T hidden",
	} {
		if s, ok := parseKsym(line); ok {
			d.syms = append(d.syms, s)
		}
	}
	if len(d.syms) != 3 {
		t.Fatalf("parsed %d text symbols, want 3", len(d.syms))
	}
	if got := d.symbol(0xffffffff81c2a3bc); got != "nf_hook_slow+0x9c" {
		t.Errorf("symbol = %q, want nf_hook_slow+0x9c", got)
	}
	if got := d.symbol(0x1000); got != "" {
		t.Errorf("address below every symbol resolved to %q", got)
	}
	if got := d.reason(12); got != "NETFILTER_DROP" {
		t.Errorf("reason(12) = %q", got)
	}
	if got := d.reason(999); got != "reason 999" {
		t.Errorf("unknown reason = %q, want its number", got)
	}
}

// kfreeSkbSpec is BTF holding the tracepoint's typedef with the given
// parameters after the private data pointer, and the reason enum.
func kfreeSkbSpec(t *testing.T, params ...string) *btf.Spec {
	t.Helper()
	void := &btf.Pointer{Target: (*btf.Void)(nil)}
	proto := &btf.FuncProto{Return: (*btf.Void)(nil), Params: []btf.FuncParam{{Type: void}}}
	for _, p := range params {
		proto.Params = append(proto.Params, btf.FuncParam{Name: p, Type: void})
	}
	td := &btf.Typedef{Name: "btf_trace_kfree_skb", Type: &btf.Pointer{Target: proto}}
	reasons := &btf.Enum{Name: "skb_drop_reason", Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0}, {Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 12}}}
	b, err := btf.NewBuilder([]btf.Type{td, reasons}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// The reason argument is found from the tracepoint's prototype: kernels
// before 5.17 pass (skb, location), later ones add the reason (and 6.x
// the receiving socket).
func TestKfreeSkbHasReason(t *testing.T) {
	for _, tc := range []struct {
		params []string
		want   bool
	}{
		{[]string{"skb", "location"}, false},
		{[]string{"skb", "location", "reason"}, true},
		{[]string{"skb", "location", "reason", "rx_sk"}, true},
	} {
		got, err := kfreeSkbHasReason(kfreeSkbSpec(t, tc.params...))
		if err != nil || got != tc.want {
			t.Errorf("%v: has reason %v (%v), want %v", tc.params, got, err, tc.want)
		}
	}
	d := newDropNames(kfreeSkbSpec(t))
	if got := d.reason(12); got != "NETFILTER_DROP" {
		t.Errorf("reason 12 from BTF = %q", got)
	}
}
