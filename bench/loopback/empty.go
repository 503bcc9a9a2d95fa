package main

import (
	"context"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// runEmpty measures the floor: a classifier that does nothing (returns
// TCX_NEXT) on lo ingress and egress. Its ns/run is what bpf_stats and the
// TC hook cost on this machine before any work, the yardstick for the
// tracer's per-packet figures.
func runEmpty(ctx context.Context, cfg *config, w workload) (sample, error) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return sample{}, fmt.Errorf("find lo: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "empty_tc",
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()}, // TCX_NEXT
	})
	if err != nil {
		return sample{}, fmt.Errorf("load empty classifier: %w", err)
	}
	defer prog.Close()
	for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
		l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Index, Program: prog, Attach: at})
		if err != nil {
			return sample{}, fmt.Errorf("attach empty classifier to lo: %w", err)
		}
		defer l.Close()
	}
	st0, err := prog.Stats()
	if err != nil {
		return sample{}, fmt.Errorf("read stats of the empty classifier: %w", err)
	}
	rate, err := runLoad(ctx, cfg, w)
	if err != nil {
		return sample{}, err
	}
	st1, err := prog.Stats()
	if err != nil {
		return sample{}, fmt.Errorf("read stats of the empty classifier: %w", err)
	}
	d := progDelta{runtime: st1.Runtime - st0.Runtime, count: st1.RunCount - st0.RunCount}
	return sample{rate: rate, progs: map[string]progDelta{"empty_tc": d}}, nil
}
