package tracer

import "testing"

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
