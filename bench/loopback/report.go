package main

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

type results struct {
	cfg        *config
	started    time.Time
	machine    string
	idleBefore idle
	idleAfter  idle
	micro      []micro
	samples    map[string]map[configName][]sample
}

// stat is a median with the spread (min and max) around it.
type stat struct{ med, lo, hi float64 }

func summarize(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: med, lo: s[0], hi: s[len(s)-1]}
}

// spreadPct is the spread as a share of the median: (max-min)/median.
func (s stat) spreadPct() float64 {
	if s.med == 0 {
		return 0
	}
	return 100 * (s.hi - s.lo) / s.med
}

func pick(ss []sample, f func(sample) float64) []float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	return v
}

// ratios divides each run by the baseline run of the same repetition.
func ratios(runs, base []sample) stat {
	var v []float64
	for i := range min(len(runs), len(base)) {
		if base[i].rate > 0 {
			v = append(v, runs[i].rate/base[i].rate)
		}
	}
	return summarize(v)
}

func (r *results) render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s; %s; %s per run, %d runs per configuration, interleaved.\n\n",
		r.started.Format("2006-01-02 15:04 MST"), r.machine, r.cfg.dur, r.cfg.reps)
	fmt.Fprintf(&b, "CPUs busy before/after: %.0f%% / %.0f%% (load average %s / %s).", 100*r.idleBefore.busy,
		100*r.idleAfter.busy, r.idleBefore.loadavg, r.idleAfter.loadavg)
	if !r.idleBefore.ok() || !r.idleAfter.ok() {
		fmt.Fprintf(&b, " **Warning: the machine was not idle** (busiest before: %s; after: %s): the figures are noisy.",
			strings.Join(r.idleBefore.top, ", "), strings.Join(r.idleAfter.top, ", "))
	}
	b.WriteString("\n\n")
	r.renderGoals(&b)
	r.renderThroughput(&b)
	r.renderTools(&b)
	r.renderKernel(&b)
	r.renderMicro(&b)
	return b.String()
}

// ran is the workloads this run measured (-w may select some).
func (r *results) ran() []workload {
	var ws []workload
	for _, w := range workloads {
		if len(r.samples[w.name][baseline]) > 0 {
			ws = append(ws, w)
		}
	}
	return ws
}

func (r *results) renderThroughput(b *strings.Builder) {
	b.WriteString("Throughput: medians, spread (max-min)/median in brackets; ratios are per repetition against the baseline run beside it, median [min-max].\n\n")
	b.WriteString("| workload | unit | baseline | tracer | tcpdump -s 96 -w | tracer --port 0 | tracer/base | tcpdump/base | port 0/base | empty classifier/base |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, w := range r.ran() {
		s := r.samples[w.name]
		rate := func(c configName) string {
			if len(s[c]) == 0 {
				return "-"
			}
			st := summarize(pick(s[c], func(x sample) float64 { return x.rate }))
			return fmt.Sprintf("%.1f (±%.0f%%)", st.med, st.spreadPct()/2)
		}
		ratio := func(c configName) string {
			if len(s[c]) == 0 {
				return "-"
			}
			st := ratios(s[c], s[baseline])
			return fmt.Sprintf("%.3f [%.2f-%.2f]", st.med, st.lo, st.hi)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w.name, w.unit, rate(baseline), rate(tracer),
			rate(tcpdump), rate(tracerAny), ratio(tracer), ratio(tcpdump), ratio(tracerAny), ratio(emptyTC))
	}
	b.WriteString("\n")
}

func (r *results) renderTools(b *strings.Builder) {
	b.WriteString("The tools' own processes: CPU is user+system time (/proc/PID/stat) during the load, as a share of one core, median; records/s are the tracer's segment records (decoded from its output) or tcpdump's captured packets per second of load, median; lost and dropped are totals over all runs.\n\n")
	b.WriteString("| workload | tracer CPU | tracer records/s | tracer lost | tcpdump CPU | tcpdump packets/s | tcpdump dropped | port 0 CPU | port 0 records/s | port 0 lost |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	secs := r.cfg.dur.Seconds()
	for _, w := range r.ran() {
		s := r.samples[w.name]
		cpu := func(c configName) string {
			if len(s[c]) == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f%%", 100*summarize(pick(s[c], func(x sample) float64 { return x.cpu })).med)
		}
		recs := func(c configName) string {
			if len(s[c]) == 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f", summarize(pick(s[c], func(x sample) float64 { return float64(x.records) / secs })).med)
		}
		lost := func(c configName) string {
			if len(s[c]) == 0 {
				return "-"
			}
			var n uint64
			for _, x := range s[c] {
				n += x.lost
			}
			return fmt.Sprint(n)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w.name, cpu(tracer), recs(tracer), lost(tracer),
			cpu(tcpdump), recs(tcpdump), lost(tcpdump), cpu(tracerAny), recs(tracerAny), lost(tracerAny))
	}
	b.WriteString("\n")
}

// tcPrograms are the classifier's programs: their runs are packets.
var tcPrograms = []string{"tc_ingress", "tc_egress", "empty_tc"}

func (r *results) renderKernel(b *strings.Builder) {
	b.WriteString("Kernel side (bpf_stats, kernel.bpf_stats_enabled=1 during the run): per program, ns per run and runs per segment record, medians over the runs; " +
		"\"TC ns/record\" is the classifier's run time over the segment records it emitted (on the other-port workload every packet is rejected, so ns/run there is the cost of a rejected packet); " +
		"\"all ns/record\" adds every program of the tracer; the empty classifier (returns at once, on lo ingress and egress) is the floor of a TC program under bpf_stats on this machine.\n\n")
	b.WriteString("| workload | config | TC ns/packet | TC ns/record | all ns/record | per program: ns/run (runs/record) |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, w := range workloads {
		for _, c := range []configName{tracer, tracerAny, emptyTC} {
			ss := r.samples[w.name][c]
			if len(ss) == 0 {
				continue
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", w.name, c, kernelTC(ss, false), kernelTC(ss, true),
				kernelAll(ss), kernelPrograms(ss))
		}
	}
	b.WriteString("\n")
}

func tcDelta(x sample) progDelta {
	var d progDelta
	for _, n := range tcPrograms {
		d.runtime += x.progs[n].runtime
		d.count += x.progs[n].count
	}
	return d
}

func kernelTC(ss []sample, perRecord bool) string {
	if perRecord && ss[0].records == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", tcNs(ss, perRecord))
}

func kernelAll(ss []sample) string {
	if ss[0].records == 0 {
		return "-"
	}
	v := pick(ss, func(x sample) float64 {
		var ns int64
		for _, d := range x.progs {
			ns += d.runtime.Nanoseconds()
		}
		return float64(ns) / float64(max(x.records, 1))
	})
	return fmt.Sprintf("%.0f", summarize(v).med)
}

func kernelPrograms(ss []sample) string {
	var names []string
	for n := range ss[0].progs {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		ns := summarize(pick(ss, func(x sample) float64 {
			d := x.progs[n]
			if d.count == 0 {
				return 0
			}
			return float64(d.runtime.Nanoseconds()) / float64(d.count)
		})).med
		per := summarize(pick(ss, func(x sample) float64 {
			return float64(x.progs[n].count) / float64(max(x.records, 1))
		})).med
		if summarize(pick(ss, func(x sample) float64 { return float64(x.progs[n].count) })).med == 0 {
			continue
		}
		if ss[0].records == 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", n, ns))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f (%.2f)", n, ns, per))
	}
	return strings.Join(parts, ", ")
}

func (r *results) renderMicro(b *strings.Builder) {
	if len(r.micro) == 0 {
		return
	}
	b.WriteString("User side, Go micro-benchmarks on one core (`go test -bench . -benchmem -cpu 1`, run before the loopback runs):\n\n")
	b.WriteString("| benchmark | ns/op | records/s | B/op | allocs/op |\n| --- | --- | --- | --- | --- |\n")
	for _, m := range r.micro {
		rate := "-"
		if m.rate > 0 {
			rate = fmt.Sprintf("%.2f M", m.rate/1e6)
		}
		fmt.Fprintf(b, "| %s | %.0f | %s | %.0f | %.0f |\n", m.name, m.nsOp, rate, m.bytesOp, m.allocs)
	}
	b.WriteString("\n")
}

const (
	beginMark = "<!-- results: written by make bench -->"
	endMark   = "<!-- end of results -->"
)

// writeReadme replaces the results section of the README (between the
// markers, appended when missing) with table.
func writeReadme(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	section := beginMark + "\n\n" + table + endMark
	s := string(old)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i >= 0 && j > i {
		s = s[:i] + section + s[j+len(endMark):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n## Latest results\n\n" + section + "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	logf("results written to %s", path)
	return nil
}

// goal is one of issue 9's targets with the figure this run measured.
type goal struct {
	what     string
	measured string
	met      bool
	known    bool
}

func (r *results) renderGoals(b *strings.Builder) {
	b.WriteString("Goals (issue 9) against this run:\n\n| goal | measured | met |\n| --- | --- | --- |\n")
	for _, g := range r.goals() {
		verdict := "no"
		switch {
		case !g.known:
			verdict = "not measured"
		case g.met:
			verdict = "yes"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", g.what, g.measured, verdict)
	}
	b.WriteString("\n")
}

func (r *results) goals() []goal {
	var gs []goal
	for _, t := range []struct {
		workload string
		min      float64
	}{{"bulk, 1 conn", 0.97}, {"ping-pong, 1 conn, pinned", 0.95}, {"ping-pong, 4 conns", 0.90}} {
		s := r.samples[t.workload]
		tr, td := ratios(s[tracer], s[baseline]), ratios(s[tcpdump], s[baseline])
		gs = append(gs, goal{what: fmt.Sprintf("%s: tracer/base >= %.2f and >= tcpdump/base", t.workload, t.min),
			measured: fmt.Sprintf("%.3f (tcpdump %.3f)", tr.med, td.med), met: tr.med >= t.min && tr.med >= td.med,
			known: len(s[tracer]) > 0 && len(s[tcpdump]) > 0})
	}
	gs = append(gs, r.lostGoal(), r.cpuGoal())
	gs = append(gs, r.microGoal("BenchmarkDecodeToJSON", "decode -> annotate -> JSON >= 5 M records/s on one core", 5e6),
		r.microGoal("BenchmarkPipeline", "with timeline and analysis >= 2.5 M records/s on one core", 2.5e6))
	gs = append(gs, r.kernelGoal("ping-pong, 1 conn, pinned", tracer, true, "<= 120 ns per emitted segment record (TC, pinned ping-pong)", 120),
		r.kernelGoal("ping-pong, 1 conn, other port", tracer, false, "<= 40 ns per packet the filter rejects (TC, other port)", 40),
		r.kernelGoal("ping-pong, 4 conns", tracerAny, true, "--port 0 within the same budget: <= 120 ns per record (TC, 4-conn ping-pong)", 120))
	return gs
}

func (r *results) lostGoal() goal {
	var lost uint64
	n := 0
	for _, w := range r.ran() {
		for _, c := range []configName{tracer, tracerAny} {
			for _, x := range r.samples[w.name][c] {
				lost += x.lost
				n++
			}
		}
	}
	return goal{what: "zero lost records from the default ring", measured: fmt.Sprintf("%d lost in %d tracer runs", lost, n), met: lost == 0, known: n > 0}
}

// cpuGoal scales the tracer's CPU on 4-connection ping-pong (the most
// records per second) to 250k records/s.
func (r *results) cpuGoal() goal {
	ss := r.samples["ping-pong, 4 conns"][tracer]
	g := goal{what: "tracer process <= 5% of one core at 250k records/s"}
	if len(ss) == 0 {
		return g
	}
	secs := r.cfg.dur.Seconds()
	per := summarize(pick(ss, func(x sample) float64 { return x.cpu / max(float64(x.records)/secs, 1) })).med
	g.known, g.met = true, per*250e3 <= 0.05
	g.measured = fmt.Sprintf("%.1f%% (%.2f µs of CPU per record, 4-conn ping-pong)", 100*per*250e3, per*1e6)
	return g
}

func (r *results) microGoal(name, what string, min float64) goal {
	for _, m := range r.micro {
		if m.name == name {
			return goal{what: what, measured: fmt.Sprintf("%.2f M/s (%s, %.0f ns)", m.rate/1e6, name, m.nsOp), met: m.rate >= min, known: true}
		}
	}
	return goal{what: what}
}

func (r *results) kernelGoal(workload string, c configName, perRecord bool, what string, max float64) goal {
	ss := r.samples[workload][c]
	floor := r.samples[workload][emptyTC]
	g := goal{what: what}
	if len(ss) == 0 || (perRecord && ss[0].records == 0) {
		return g
	}
	v := tcNs(ss, perRecord)
	g.known, g.met = true, v <= max
	g.measured = fmt.Sprintf("%.0f ns", v)
	if len(floor) > 0 {
		f := tcNs(floor, false)
		g.measured += fmt.Sprintf(" (%.0f above the empty classifier's %.0f)", v-f, f)
	}
	return g
}

func tcNs(ss []sample, perRecord bool) float64 {
	return summarize(pick(ss, func(x sample) float64 {
		d := tcDelta(x)
		div := float64(d.count)
		if perRecord {
			div = float64(x.records)
		}
		if div == 0 {
			return 0
		}
		return float64(d.runtime.Nanoseconds()) / div
	})).med
}
