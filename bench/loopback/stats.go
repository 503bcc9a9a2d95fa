package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// progStat is one program's bpf_stats counters at one moment.
type progStat struct {
	runtime time.Duration
	count   uint64
}

// progDelta is what a program ran during one load.
type progDelta struct {
	runtime time.Duration
	count   uint64
}

// tracerPrograms reads bpf_stats of the programs the tracer process holds,
// by name: the loaded programs whose ids appear in the process's fdinfo.
func tracerPrograms(pid int) (map[string]progStat, error) {
	ids, err := heldProgramIDs(pid)
	if err != nil {
		return nil, err
	}
	stats := map[string]progStat{}
	for _, id := range ids {
		name, st, err := programStat(id)
		if err != nil {
			return nil, err
		}
		prev := stats[name] // a name loaded twice (never so far) adds up
		stats[name] = progStat{runtime: prev.runtime + st.runtime, count: prev.count + st.count}
	}
	return stats, nil
}

func programStat(id ebpf.ProgramID) (string, progStat, error) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", progStat{}, fmt.Errorf("open program %d: %w", id, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return "", progStat{}, fmt.Errorf("read info of program %d: %w", id, err)
	}
	st, err := prog.Stats()
	if err != nil {
		return "", progStat{}, fmt.Errorf("read stats of program %s: %w", info.Name, err)
	}
	return info.Name, progStat{runtime: st.Runtime, count: st.RunCount}, nil
}

// heldProgramIDs lists the ids of the eBPF programs a process has open.
func heldProgramIDs(pid int) ([]ebpf.ProgramID, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list fdinfo of %d: %w", pid, err)
	}
	seen := map[ebpf.ProgramID]bool{}
	var ids []ebpf.ProgramID
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if id, ok := fdinfoProgID(b); ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("process %d holds no eBPF program", pid)
	}
	return ids, nil
}

func fdinfoProgID(b []byte) (ebpf.ProgramID, bool) {
	for line := range bytes.Lines(b) {
		v, ok := bytes.CutPrefix(line, []byte("prog_id:"))
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 32)
		return ebpf.ProgramID(n), err == nil
	}
	return 0, false
}

func diffPrograms(a, b map[string]progStat) map[string]progDelta {
	d := map[string]progDelta{}
	for name, s1 := range b {
		s0 := a[name]
		d[name] = progDelta{runtime: s1.runtime - s0.runtime, count: s1.count - s0.count}
	}
	return d
}

const bpfStatsSysctl = "/proc/sys/kernel/bpf_stats_enabled"

// enableBPFStats turns on run-time accounting of eBPF programs for the run
// and returns the function that restores the previous setting.
func enableBPFStats() (func(), error) {
	old, err := os.ReadFile(bpfStatsSysctl)
	if err != nil {
		return nil, fmt.Errorf("read kernel.bpf_stats_enabled: %w", err)
	}
	if err := os.WriteFile(bpfStatsSysctl, []byte("1\n"), 0o644); err != nil {
		return nil, fmt.Errorf("enable kernel.bpf_stats_enabled: %w", err)
	}
	return func() {
		if err := os.WriteFile(bpfStatsSysctl, old, 0o644); err != nil {
			logf("warning: restore kernel.bpf_stats_enabled to %s: %v", bytes.TrimSpace(old), err)
		}
	}, nil
}

const clockTick = time.Second / 100 // USER_HZ is 100 on every Linux ABI

// cpuTime is the user+system time a process has used so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return statTicks(b) * clockTick
}

// statTicks is utime+stime from a /proc/PID/stat line; the fields after
// the command name (which may hold spaces) start at state, field 3.
func statTicks(b []byte) time.Duration {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(u + s)
}

// idle is how busy the machine was just before or after the runs.
type idle struct {
	busy    float64 // share of all CPUs busy over one second
	loadavg string
	top     []string // the busiest processes then
}

func (i idle) ok() bool { return i.busy < 0.10 }

// checkIdle samples the CPUs for a second and warns when others use them:
// on a small machine another job moves the ratios more than the tracer does.
func checkIdle(when string) idle {
	var st idle
	la, _ := os.ReadFile("/proc/loadavg")
	st.loadavg = strings.Join(strings.Fields(string(la))[:min(3, len(strings.Fields(string(la))))], " ")
	t0, p0 := cpuTotals(), procTicks()
	time.Sleep(time.Second)
	t1, p1 := cpuTotals(), procTicks()
	if tot := t1[0] - t0[0]; tot > 0 {
		st.busy = 1 - float64(t1[1]-t0[1])/float64(tot)
	}
	st.top = busiest(p0, p1, 3)
	if !st.ok() {
		logf("warning: CPUs %.0f%% busy %s the benchmark (load average %s); the figures will be noisy. Busiest: %s",
			100*st.busy, when, st.loadavg, strings.Join(st.top, ", "))
	}
	return st
}

// cpuTotals returns all and idle (idle+iowait) ticks from /proc/stat.
func cpuTotals() [2]uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return [2]uint64{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	fs := strings.Fields(sc.Text())
	var t [2]uint64
	for i := 1; i < len(fs) && i <= 8; i++ { // guest time is already in user
		v, _ := strconv.ParseUint(fs[i], 10, 64)
		t[0] += v
		if i == 4 || i == 5 {
			t[1] += v
		}
	}
	return t
}

type procKey struct {
	pid  int
	comm string
}

func procTicks() map[procKey]time.Duration {
	m := map[procKey]time.Duration{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		comm := ""
		if i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')'); i >= 0 && j > i {
			comm = string(b[i+1 : j])
		}
		m[procKey{pid, comm}] = statTicks(b)
	}
	return m
}

func busiest(a, b map[procKey]time.Duration, n int) []string {
	type use struct {
		k procKey
		d time.Duration
	}
	var us []use
	for k, t1 := range b {
		if d := t1 - a[k]; d > 0 && k.pid != os.Getpid() {
			us = append(us, use{k, d})
		}
	}
	sort.Slice(us, func(i, j int) bool { return us[i].d > us[j].d })
	var out []string
	for _, u := range us[:min(n, len(us))] {
		out = append(out, fmt.Sprintf("%s[%d] %.0f%%", u.k.comm, u.k.pid, 100*(u.d*clockTick).Seconds()))
	}
	return out
}

// describeMachine names the CPU, its count and the kernel.
func describeMachine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d CPUs, kernel %s", model, numCPU(), strings.TrimSpace(string(rel)))
}

func numCPU() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n
}
