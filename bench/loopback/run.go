package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	port      = 20000
	otherPort = 20001 // traffic the tracer's port filter rejects
)

// workload is one load pattern; pin runs the load on one CPU (taskset).
type workload struct {
	name   string
	unit   string
	args   []string
	pin    bool
	port   int
	reject bool // traffic on a port the tracer does not trace: kernel cost of rejection
	port0  bool // also run the tracer with --port 0 (the per-record budget without a port filter)
}

var workloads = []workload{
	{name: "bulk, 1 conn", unit: "MB/s", args: []string{"-mode", "bulk", "-conns", "1"}, port: port},
	{name: "ping-pong, 1 conn, pinned", unit: "round trips/s", args: []string{"-mode", "pingpong", "-conns", "1", "-size", "64"}, pin: true, port: port, port0: true},
	{name: "ping-pong, 4 conns", unit: "round trips/s", args: []string{"-mode", "pingpong", "-conns", "4", "-size", "64"}, port: port, port0: true},
	{name: "ping-pong, 1 conn, other port", unit: "round trips/s", args: []string{"-mode", "pingpong", "-conns", "1", "-size", "64"}, port: otherPort, reject: true},
}

type configName string

const (
	baseline  configName = "baseline"
	tracer    configName = "tracer"
	tracerAny configName = "tracer --port 0"
	tcpdump   configName = "tcpdump"
	emptyTC   configName = "empty classifier"
)

// sample is one run of one workload in one configuration.
type sample struct {
	rate      float64
	cpu       float64 // share of one core used by the tool during the load
	records   uint64  // tracer: segment records; tcpdump: packets captured
	lost      uint64  // tracer: lost records; tcpdump: dropped by kernel
	progs     map[string]progDelta
	hasRecord bool
}

// configs keeps a run to a few minutes: tcpdump where it is the
// comparison, --port 0 on the ping-pongs (most records per second), the
// empty classifier where its floor is read.
func (c *config) configs(w workload) []configName {
	cs := []configName{baseline, tracer}
	if !w.reject {
		cs = append(cs, tcpdump)
	}
	if c.portAny && w.port0 {
		cs = append(cs, tracerAny)
	}
	if w.reject || w.pin {
		cs = append(cs, emptyTC)
	}
	return cs
}

// runAll interleaves the configurations inside each repetition, rotating
// their order, so drift of the machine hits all of them alike.
func runAll(ctx context.Context, cfg *config, res *results) error {
	res.samples = map[string]map[configName][]sample{}
	for _, w := range workloads {
		res.samples[w.name] = map[configName][]sample{}
		if !strings.Contains(w.name, cfg.only) {
			continue
		}
		cs := cfg.configs(w)
		for rep := 0; rep < cfg.reps; rep++ {
			for i := range cs {
				c := cs[(i+rep)%len(cs)]
				s, err := runOne(ctx, cfg, w, c)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", w.name, c, err)
				}
				res.samples[w.name][c] = append(res.samples[w.name][c], s)
				logf("  %-30s %-16s run %d: %12.1f %s  cpu %5.1f%%  records %d  lost %d",
					w.name, c, rep+1, s.rate, w.unit, 100*s.cpu, s.records, s.lost)
			}
		}
	}
	return nil
}

func runOne(ctx context.Context, cfg *config, w workload, c configName) (sample, error) {
	if err := waitPortFree(ctx, w.port); err != nil {
		return sample{}, err
	}
	switch c {
	case tracer, tracerAny:
		return runTracer(ctx, cfg, w, c == tracerAny)
	case tcpdump:
		return runTcpdump(ctx, cfg, w)
	case emptyTC:
		return runEmpty(ctx, cfg, w)
	}
	rate, err := runLoad(ctx, cfg, w)
	return sample{rate: rate}, err
}

// runLoad runs bench/load once and returns its rate.
func runLoad(ctx context.Context, cfg *config, w workload) (float64, error) {
	args := append([]string{"-addr", fmt.Sprintf("127.0.0.1:%d", w.port), "-duration", cfg.dur.String()}, w.args...)
	name := cfg.loadBin
	if w.pin {
		args = append([]string{"-c", "1", name}, args...)
		name = "taskset"
	}
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return 0, fmt.Errorf("run load: %w", exitDetail(err))
	}
	var r struct{ Rate float64 }
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("parse load result %q: %w", out, err)
	}
	return r.Rate, nil
}

// runTracer starts the tracer, waits for its start line (every hook
// attached), runs the load, stops the tracer and counts its records with
// the project's own decoder. CPU and bpf_stats are read between the start
// line and the end of the load, so loading the programs is not counted.
func runTracer(ctx context.Context, cfg *config, w workload, anyPort bool) (sample, error) {
	out := filepath.Join(cfg.scratch, "tracer.out")
	defer os.Remove(out)
	p := "20000"
	if anyPort {
		p = "0"
	}
	proc, err := startProc(ctx, out, filepath.Join(cfg.scratch, "tracer.err"), cfg.tracer, "--iface", "lo", "--port", p)
	if err != nil {
		return sample{}, err
	}
	defer proc.kill()
	if err := proc.waitFor(out, `"type":"start"`); err != nil {
		return sample{}, fmt.Errorf("tcptracer did not start: %w", err)
	}
	progs0, err := tracerPrograms(proc.cmd.Process.Pid)
	if err != nil {
		return sample{}, err
	}
	t0 := cpuTime(proc.cmd.Process.Pid)
	start := time.Now()
	rate, err := runLoad(ctx, cfg, w)
	if err != nil {
		return sample{}, err
	}
	cpu := (cpuTime(proc.cmd.Process.Pid) - t0).Seconds() / time.Since(start).Seconds()
	progs1, err := tracerPrograms(proc.cmd.Process.Pid)
	if err != nil {
		return sample{}, err
	}
	if err := proc.stop(); err != nil {
		return sample{}, fmt.Errorf("tcptracer: %w", err)
	}
	segs, lost, err := countRecords(out)
	if err != nil {
		return sample{}, err
	}
	return sample{rate: rate, cpu: cpu, records: segs, lost: lost, progs: diffPrograms(progs0, progs1), hasRecord: true}, nil
}

func runTcpdump(ctx context.Context, cfg *config, w workload) (sample, error) {
	errf := filepath.Join(cfg.scratch, "tcpdump.err")
	proc, err := startProc(ctx, os.DevNull, errf, "tcpdump", "-i", "lo", "-s", "96", "-w", os.DevNull, "-U",
		"tcp", "port", strconv.Itoa(port))
	if err != nil {
		return sample{}, err
	}
	defer proc.kill()
	if err := proc.waitFor(errf, "listening on"); err != nil {
		return sample{}, fmt.Errorf("tcpdump did not start: %w", err)
	}
	t0 := cpuTime(proc.cmd.Process.Pid)
	start := time.Now()
	rate, err := runLoad(ctx, cfg, w)
	if err != nil {
		return sample{}, err
	}
	cpu := (cpuTime(proc.cmd.Process.Pid) - t0).Seconds() / time.Since(start).Seconds()
	if err := proc.stop(); err != nil {
		return sample{}, fmt.Errorf("tcpdump: %w", err)
	}
	msg, _ := os.ReadFile(errf)
	captured, dropped := tcpdumpCounts(msg)
	return sample{rate: rate, cpu: cpu, records: captured, lost: dropped, hasRecord: true}, nil
}

var (
	capturedRe = regexp.MustCompile(`(?m)^(\d+) packets? captured$`)
	droppedRe  = regexp.MustCompile(`(?m)^(\d+) packets? dropped by kernel$`)
)

// tcpdumpCounts reads the packets captured and dropped from tcpdump's
// exit report.
func tcpdumpCounts(msg []byte) (captured, dropped uint64) {
	if m := capturedRe.FindSubmatch(msg); m != nil {
		captured, _ = strconv.ParseUint(string(m[1]), 10, 64)
	}
	if m := droppedRe.FindSubmatch(msg); m != nil {
		dropped, _ = strconv.ParseUint(string(m[1]), 10, 64)
	}
	return captured, dropped
}

type proc struct {
	cmd  *exec.Cmd
	done chan error
	errf string
}

func startProc(ctx context.Context, stdout, stderr, name string, args ...string) (*proc, error) {
	o, err := os.Create(stdout)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", stdout, err)
	}
	defer o.Close()
	e, err := os.Create(stderr)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", stderr, err)
	}
	defer e.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = o, e
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), errf: stderr}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// waitFor polls file for pattern, at most 30 s, failing early if the
// process exits.
func (p *proc) waitFor(file, pattern string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if b, err := os.ReadFile(file); err == nil && bytes.Contains(b, []byte(pattern)) {
			return nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("exited (%v): %s", err, p.stderr())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no %q within 30 s: %s", pattern, p.stderr())
}

func (p *proc) stderr() string {
	b, _ := os.ReadFile(p.errf)
	return strings.TrimSpace(string(b))
}

// stop sends SIGINT and waits for a clean exit.
func (p *proc) stop() error {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		return fmt.Errorf("signal: %w", err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			return fmt.Errorf("exit: %w: %s", err, p.stderr())
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("did not exit within 30 s of SIGINT")
	}
}

// kill ends a process that stop did not (a failed run, Ctrl-C).
func (p *proc) kill() {
	select {
	case err := <-p.done:
		p.done <- err
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

func exitDetail(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// portFree fails when something already listens on a port the benchmark needs.
func portFree(p int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return fmt.Errorf("port %d is busy; the benchmark needs it: %w", p, err)
	}
	return l.Close()
}

// waitPortFree waits, at most a minute, for a process outside the
// benchmark that listens on the port (a test run elsewhere) to let go; the
// run it disturbed is noisy, so this says so.
func waitPortFree(ctx context.Context, p int) error {
	deadline := time.Now().Add(time.Minute)
	warned := false
	for {
		err := portFree(p)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		if !warned {
			logf("warning: port %d is in use by another process; waiting (its traffic also lands in the tracer's figures)", p)
			warned = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// countRecords reads the tracer's output with the project's decoder: the
// segment records and the sum of the lost events' counts.
func countRecords(path string) (segs, lost uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("open tracer output: %w", err)
	}
	defer f.Close()
	return countStream(bufio.NewReaderSize(f, 1<<20))
}
