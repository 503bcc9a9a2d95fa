// Command loopback is the loopback benchmark: what tcptracer costs TCP on
// 127.0.0.1, next to the same workload alone and under tcpdump, in one
// interleaved run. It also runs the Go micro-benchmarks of the user-side
// hot path and reads the kernel side's cost per program from bpf_stats,
// and prints everything as one table (see bench/README.md).
//
//	go run ./bench/loopback [-t 5s] [-r 3] [-readme bench/README.md]
//
// It needs root (the tracer loads eBPF programs, tcpdump opens lo). Traffic
// stays on 127.0.0.1; only lo is traced or captured.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type config struct {
	dur     time.Duration // per run
	reps    int
	tracer  string // prebuilt tracer binary; empty: build one
	goBin   string
	readme  string // file whose results section is rewritten; empty: none
	micro   bool   // run the Go micro-benchmarks
	portAny bool   // also measure the tracer with --port 0
	only    string // run only the workloads whose name contains this
	root    string // repository root
	scratch string // tmpfs directory for binaries and output
	loadBin string
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "loopback: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "loopback: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("loopback", flag.ContinueOnError)
	fs.DurationVar(&c.dur, "t", 4*time.Second, "duration of one run")
	fs.IntVar(&c.reps, "r", 3, "runs per workload and configuration")
	fs.StringVar(&c.tracer, "tracer", "", "measure this tcptracer binary instead of building one")
	fs.StringVar(&c.goBin, "go", "go", "go command (builds and micro-benchmarks)")
	fs.StringVar(&c.readme, "readme", "", "rewrite the results section of this file (bench/README.md)")
	fs.BoolVar(&c.micro, "micro", true, "run the Go micro-benchmarks first")
	fs.BoolVar(&c.portAny, "port0", true, "also measure the tracer with --port 0 (every port)")
	fs.StringVar(&c.only, "w", "", "run only the workloads whose name contains this (e.g. \"4 conns\")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.dur < 500*time.Millisecond || c.reps < 1 {
		return nil, fmt.Errorf("-t %v -r %d: want at least 500ms and 1 run", c.dur, c.reps)
	}
	return c, nil
}

func run(ctx context.Context, cfg *config) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the tracer loads eBPF programs and tcpdump opens lo")
	}
	root, err := repoRoot(cfg.goBin)
	if err != nil {
		return err
	}
	cfg.root = root
	if err := makeScratch(cfg); err != nil {
		return err
	}
	defer os.RemoveAll(cfg.scratch)
	if err := preflight(cfg); err != nil {
		return err
	}
	if err := buildBinaries(ctx, cfg); err != nil {
		return err
	}
	res := &results{cfg: cfg, started: time.Now().UTC(), machine: describeMachine()}
	res.idleBefore = checkIdle("before")
	if cfg.micro {
		if res.micro, err = runMicro(ctx, cfg); err != nil {
			return err
		}
	}
	restore, err := enableBPFStats()
	if err != nil {
		return err
	}
	defer restore()
	if err := runAll(ctx, cfg, res); err != nil {
		return err
	}
	res.idleAfter = checkIdle("after")
	table := res.render()
	fmt.Print(table)
	if cfg.readme != "" {
		return writeReadme(cfg.readme, table)
	}
	return nil
}
