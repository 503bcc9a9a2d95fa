#!/usr/bin/env bash
# Loopback benchmark: throughput with tcptracer attached, and with tcpdump
# capturing, each divided by the throughput of the same workload alone.
# See bench/README.md for what it measures and how to read the table.
#
#   sudo bench/loopback.sh            T=5 seconds per run, R=3 runs per configuration
#   sudo T=10 R=5 bench/loopback.sh
#   sudo TRACER_OUT=null bench/loopback.sh   tracer output to /dev/null, not counted
#   sudo TRACER=/path/to/tcptracer bench/loopback.sh   measure that build
#
# Traffic stays on 127.0.0.1:20000; only lo is ever traced or captured.
set -euo pipefail

PORT=20000
ADDR=127.0.0.1:$PORT
T=${T:-5}
R=${R:-3}
TRACER_OUT=${TRACER_OUT:-file}
TRACER=${TRACER:-}
LOAD=
[[ $T =~ ^[0-9]+$ ]] && T=${T}s

# workload name | load flags
WORKLOADS=(
	"bulk, 1 conn|-mode bulk -conns 1"
	"ping-pong, 1 conn|-mode pingpong -conns 1 -size 64"
	"ping-pong, 4 conns|-mode pingpong -conns 4 -size 64"
)
CONFIGS=(baseline tracer tcpdump)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BG_PIDS=()
WORK=
EXTRA=
TICKS0=0

die() {
	echo "loopback.sh: $*" >&2
	exit 1
}

log() { echo "$*" >&2; }

# cleanup stops whatever is still running in the background (a run that
# failed half way, or Ctrl-C) and removes the scratch directory.
cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -INT "$pid" 2>/dev/null || continue
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	BG_PIDS=()
	[ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

preflight() {
	[ "$(id -u)" = 0 ] || die "run as root: the tracer loads eBPF programs and tcpdump opens lo (try: sudo $0)"
	[[ $T =~ ^[0-9]+(\.[0-9]+)?(ms|s|m)$ ]] || die "T=$T: want seconds (5) or a Go duration (5s, 500ms)"
	[[ $R =~ ^[1-9][0-9]*$ ]] || die "R=$R: want a positive number of repeats"
	[[ $TRACER_OUT =~ ^(file|null)$ ]] || die "TRACER_OUT=$TRACER_OUT: want file or null"
	command -v go >/dev/null || die "go not found in PATH (needed to build the tracer and the load generator)"
	"$ROOT/.ci/deps.sh" test
	command -v tcpdump >/dev/null || die "tcpdump still missing after .ci/deps.sh test"
	if ss -Htln "sport = :$PORT" | grep -q .; then
		die "something already listens on port $PORT; the benchmark needs it"
	fi
}

# busy_pct: how busy all CPUs were over one second, in percent.
busy_pct() {
	local a b
	a=$(head -1 /proc/stat)
	sleep 1
	b=$(head -1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		n = split(a, x); split(b, y) # guest time (fields 10, 11) is already in user
		for (i = 2; i <= n && i <= 9; i++) { d = y[i] - x[i]; tot += d; if (i == 5 || i == 6) idle += d }
		printf "%.0f\n", tot ? 100 * (tot - idle) / tot : 0 }'
}

# check_idle warns when something else is using the CPUs: on a small
# machine another job's load moves the ratios more than the tracer does.
check_idle() {
	local when=$1 busy
	busy=$(busy_pct)
	echo "$busy" >>"$WORK/busy"
	[ "$busy" -lt 10 ] && return
	log "warning: CPUs ${busy}% busy $when the benchmark; the numbers will be noisy. Busiest processes:"
	ps -eo pid,pcpu,comm --sort=-pcpu | sed -n 2,4p >&2
}

# build puts both binaries in the scratch directory, not bin/: others may
# rebuild bin/tcptracer while the benchmark runs. TRACER=path skips building
# the tracer and measures that binary instead (e.g. an older build).
build() {
	mkdir -p "$WORK/bin"
	LOAD=$WORK/bin/load
	(cd "$ROOT" && go build -o "$LOAD" ./bench/load) || die "go build ./bench/load failed"
	if [ -n "$TRACER" ]; then
		[ -x "$TRACER" ] || die "TRACER=$TRACER is not an executable"
		log "measuring $TRACER"
		return
	fi
	TRACER=$WORK/bin/tcptracer
	(cd "$ROOT" && go build -o "$TRACER" ./cmd/tcptracer) || die "go build ./cmd/tcptracer failed"
	log "measuring the tracer built from $ROOT ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "no git"))"
}

# scratch prefers tmpfs: the tracer's output goes to a file there, which
# costs a memory copy, cheaper than a pipe to a counting process.
scratch() {
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		WORK=$(mktemp -d -p /dev/shm tcptracer-bench.XXXXXX)
	else
		WORK=$(mktemp -d)
	fi
	: >"$WORK/runs"
}

# wait_for FILE PATTERN PID: until PATTERN shows up in FILE, at most 30 s.
wait_for() {
	local file=$1 pattern=$2 pid=$3
	for _ in $(seq 600); do
		grep -q -m1 -- "$pattern" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# cpu_ticks PID: user+system clock ticks the process has used so far.
cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# stop PID: SIGINT, wait, and fail if it did not exit 0.
stop() {
	local pid=$1 rc=0
	kill -INT "$pid"
	wait "$pid" || rc=$?
	BG_PIDS=()
	return $rc
}

# start_tracer waits for the start line (every hook attached) and notes the
# CPU the tracer has used so far, so loading the programs is not counted.
# With TRACER_OUT=null the output goes to /dev/null and the start line is
# not seen: a fixed pause stands in for it and nothing is counted.
start_tracer() {
	local out=$WORK/tracer.out
	[ "$TRACER_OUT" = null ] && out=/dev/null
	"$TRACER" --iface lo --port $PORT >"$out" 2>"$WORK/tracer.err" &
	BG_PIDS=($!)
	if [ "$TRACER_OUT" = null ]; then
		sleep 2
		kill -0 "${BG_PIDS[0]}" 2>/dev/null || die "tcptracer did not start: $(cat "$WORK/tracer.err")"
	else
		wait_for "$out" '"type":"start"' "${BG_PIDS[0]}" ||
			die "tcptracer did not print its start line: $(cat "$WORK/tracer.err")"
	fi
	TICKS0=$(cpu_ticks "${BG_PIDS[0]}")
}

start_tcpdump() {
	tcpdump -i lo -s 96 -w /dev/null -U tcp port $PORT 2>"$WORK/tcpdump.err" &
	BG_PIDS=($!)
	wait_for "$WORK/tcpdump.err" 'listening on' $! ||
		die "tcpdump did not start: $(cat "$WORK/tcpdump.err")"
	TICKS0=$(cpu_ticks "${BG_PIDS[0]}")
}

# stop_tracer sets EXTRA to "segments lost cpu_ticks" for the run just
# finished. It must not run in a subshell: only this shell can wait for pid.
stop_tracer() {
	local pid=${BG_PIDS[0]} ticks events=- lost=-
	ticks=$(($(cpu_ticks "$pid") - TICKS0))
	stop "$pid" || die "tcptracer exited with status $?: $(cat "$WORK/tracer.err")"
	if [ "$TRACER_OUT" = null ]; then
		EXTRA="$events $lost $ticks"
		return
	fi
	events=$(grep -c '"type":"segment"' "$WORK/tracer.out" || true)
	# grep finds nothing in a run without losses; that is not a failure.
	lost=$({ grep '"type":"lost"' "$WORK/tracer.out" || true; } | sed -n 's/.*"count":\([0-9]*\).*/\1/p' |
		awk '{ s += $1 } END { print s + 0 }')
	rm -f "$WORK/tracer.out"
	EXTRA="$events $lost $ticks"
}

# stop_tcpdump sets EXTRA to "captured dropped cpu_ticks" from tcpdump's
# exit report.
stop_tcpdump() {
	local pid=${BG_PIDS[0]} ticks captured dropped
	ticks=$(($(cpu_ticks "$pid") - TICKS0))
	stop "$pid" || die "tcpdump exited with status $?: $(cat "$WORK/tcpdump.err")"
	captured=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured$/\1/p' "$WORK/tcpdump.err")
	dropped=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$WORK/tcpdump.err")
	EXTRA="${captured:--} ${dropped:--} $ticks"
}

# run_load FLAGS...: the rate from load's JSON line.
run_load() {
	local out
	out=$("$LOAD" -addr $ADDR -duration "$T" "$@") || die "load $* failed"
	sed -n 's/.*"rate":\([0-9.e+-]*\).*/\1/p' <<<"$out"
}

# run_one WORKLOAD_INDEX CONFIG REP appends one line to $WORK/runs:
# workload config rep rate events_or_captured lost_or_dropped cpu_ticks
run_one() {
	local w=$1 config=$2 rep=$3 flags rate
	EXTRA="- - 0"
	flags=${WORKLOADS[$w]#*|}
	case $config in
	tracer) start_tracer ;;
	tcpdump) start_tcpdump ;;
	esac
	# shellcheck disable=SC2086 # flags are words on purpose
	rate=$(run_load $flags)
	case $config in
	tracer) stop_tracer ;;
	tcpdump) stop_tcpdump ;;
	esac
	echo "$w $config $rep $rate $EXTRA" >>"$WORK/runs"
	log "$(printf '  %-20s %-8s run %d: %12.1f  (%s)' "${WORKLOADS[$w]%%|*}" "$config" "$rep" "$rate" "$EXTRA")"
}

# Within a workload the configurations alternate, so slow drift of the
# machine (thermal, other tenants) hits all three alike.
run_all() {
	local w rep config
	for w in "${!WORKLOADS[@]}"; do
		for rep in $(seq "$R"); do
			for config in "${CONFIGS[@]}"; do
				run_one "$w" "$config" "$rep"
			done
		done
	done
}

# median W CONFIG COLUMN: median of one column over the repeats.
median() {
	awk -v w="$1" -v c="$2" -v col="$3" '$1 == w && $2 == c { print $col }' "$WORK/runs" |
		sort -g | awk '{ v[NR] = $1 } END {
			if (NR == 0 || v[1] == "-") { print "-"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# total W CONFIG COLUMN: sum of one column over the repeats.
total() {
	awk -v w="$1" -v c="$2" -v col="$3" '$1 == w && $2 == c { if ($col == "-") bad = 1; s += $col }
		END { if (bad) print "-"; else printf "%d\n", s }' "$WORK/runs"
}

ticks_pct() {
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v d="${T}" 'BEGIN {
		if (d ~ /ms$/) s = d / 1000; else if (d ~ /m$/) s = d * 60; else s = d + 0
		printf "%.0f%%", 100 * t / hz / s }'
}

unit_of() {
	case ${WORKLOADS[$1]} in
	*bulk*) echo MB/s ;;
	*) echo "round trips/s" ;;
	esac
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

report() {
	local w name base tr td
	printf '\nloopback benchmark: %s per run, %s runs per configuration, medians (kernel %s, %s CPUs)\n' \
		"$T" "$R" "$(uname -r)" "$(nproc)"
	printf 'CPUs busy before/after the runs: %s%% / %s%% (should be near 0)\n\n' \
		"$(sed -n 1p "$WORK/busy")" "$(sed -n 2p "$WORK/busy")"
	printf '%-20s %-14s %12s %12s %12s %13s %14s\n' workload unit baseline tracer tcpdump tracer/base tcpdump/base
	for w in "${!WORKLOADS[@]}"; do
		name=${WORKLOADS[$w]%%|*}
		base=$(median "$w" baseline 4)
		tr=$(median "$w" tracer 4)
		td=$(median "$w" tcpdump 4)
		printf '%-20s %-14s %12.1f %12.1f %12.1f %13s %14s\n' "$name" "$(unit_of "$w")" \
			"$base" "$tr" "$td" "$(ratio "$tr" "$base")" "$(ratio "$td" "$base")"
	done
	printf '\n%-20s %16s %13s %11s %17s %16s %12s\n' workload "tracer segments" "tracer lost" "tracer CPU" \
		"tcpdump captured" "tcpdump dropped" "tcpdump CPU"
	for w in "${!WORKLOADS[@]}"; do
		printf '%-20s %16s %13s %11s %17s %16s %12s\n' "${WORKLOADS[$w]%%|*}" \
			"$(median "$w" tracer 5)" "$(total "$w" tracer 6)" "$(ticks_pct "$(median "$w" tracer 7)")" \
			"$(median "$w" tcpdump 5)" "$(total "$w" tcpdump 6)" "$(ticks_pct "$(median "$w" tcpdump 7)")"
	done
	printf '\nsegments/captured and CPU (of one core, user+system of that process) are medians per run;\n'
	printf 'lost and dropped are totals over all %s runs.\n' "$R"
}

main() {
	preflight
	scratch
	build
	log "running ${#WORKLOADS[@]} workloads x ${#CONFIGS[@]} configurations x $R runs of $T"
	check_idle before
	run_all
	check_idle after
	report
}

main "$@"
