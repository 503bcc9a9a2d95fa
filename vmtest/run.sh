#!/bin/bash
# run.sh: run the privileged end-to-end tests on every kernel of the pinned
# matrix (.ci/vmtest-kernels) with each attach mode forced, and print a
# kernel x cell table. Stock Debian kernels boot under qemu (TCG, 1 CPU) from a
# busybox initramfs; the pseudo-kernel "host" runs the same binary here.
#
# usage: vmtest/run.sh [FILTER...]
#   FILTER   run only pinned kernels whose package name contains FILTER
#            ("host" selects the host entry)
# environment:
#   VMTEST_CACHE=~/.cache/tcptracer-vmtest  downloaded and unpacked kernels, logs
#   VMTEST_KERNELS=.ci/vmtest-kernels       pin file
#   VMTEST_RUN=.                           -test.run pattern (default: every e2e test)
#   VMTEST_CELL_TIMEOUT=900                 seconds per cell
#   VMTEST_MEM=1024 VMTEST_ACCEL=tcg        guest MiB; tcg or kvm
#   VMTEST_JOBS=$(nproc)                    guests booted at once
#   VMTEST_KMODS='sch_ingress cls_bpf veth xfrm_user nfnetlink nf_tables nft_quota inet_diag tcp_diag'
#                                           guest modules, dependencies added; a
#                                           stock host autoloads the last two for
#                                           netlink handles in new namespaces
#   VMTEST_TOOLS='tcpdump ip tc ethtool nft ss' host programs copied with their libraries
#   VMTEST_ORACLE=on|off                    off: guest and host cells get TCPTRACER_ORACLE=off
#   VMTEST_PKG=./test/e2e                   test package built as the guest's e2e.test
#   GO=go                                   the go command
#   VMTEST_TC_ONLY='^(TestCleanup|TestWire)' tests that depend on the TC mode
#                                           alone: run in the first guest cell of
#                                           each TC mode only
#   VMTEST_GUEST_SKIP='Tshark|TestSoakMemory' tests needing programs guests
#                                           lack, or a load TCG cannot make
#   VMTEST_STANDIN=1                        test the harness with vmtest/standin
#                                           instead of ./test/e2e and ./cmd/tcptracer
# exit status: 0 if every cell passed, 1 if any cell failed or a kernel did not
# boot, 2 on a setup error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
CACHE=${VMTEST_CACHE:-${HOME:-/root}/.cache/tcptracer-vmtest}
PINS=${VMTEST_KERNELS:-$repo/.ci/vmtest-kernels}
RUN=${VMTEST_RUN:-.}
CELL_TIMEOUT=${VMTEST_CELL_TIMEOUT:-900}
MEM=${VMTEST_MEM:-1024}
ACCEL=${VMTEST_ACCEL:-tcg}
KMODS=${VMTEST_KMODS:-sch_ingress cls_bpf veth xfrm_user nfnetlink nf_tables nft_quota inet_diag tcp_diag}
TOOLS=${VMTEST_TOOLS:-tcpdump ip tc ethtool nft ss}
ORACLE=${VMTEST_ORACLE:-on}
STANDIN=${VMTEST_STANDIN:-0}
TC_ONLY=${VMTEST_TC_ONLY:-^(TestCleanup|TestWire)}
GUEST_SKIP=${VMTEST_GUEST_SKIP:-Tshark|TestSoakMemory}
GO=${GO:-go}
PKG=${VMTEST_PKG:-./test/e2e}
[ "$STANDIN" = 1 ] && PKG=./vmtest/standin

say() { printf 'vmtest: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

check_host() {
	command -v qemu-system-x86_64 >/dev/null || die "missing qemu-system-x86_64 (run vmtest/deps.sh)"
	if [ ! -x /bin/busybox ] || ! file_is_static /bin/busybox; then
		die "missing static /bin/busybox (run vmtest/deps.sh)"
	fi
	command -v "$GO" >/dev/null || die "missing go ($GO)"
	[ -r "$PINS" ] || die "missing pin file $PINS"
}

file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

# --- test binaries ---------------------------------------------------------

# build_bins DIR: the test binary (e2e.test) and the tracer, both static.
build_bins() {
	local out=$1
	mkdir -p "$out"
	local tags=()
	[ "$STANDIN" = 1 ] && tags=(-tags vmtest_standin)
	[ -d "$repo/$PKG" ] || die "no $PKG yet (VMTEST_STANDIN=1 tests the harness alone)"
	(cd "$repo" && CGO_ENABLED=0 "$GO" test -c "${tags[@]}" -o "$out/e2e.test" "$PKG") || die "cannot build $PKG"
	[ "$STANDIN" = 1 ] && return
	if ! ls "$repo"/cmd/tcptracer/*.go >/dev/null 2>&1; then
		say "warning: no ./cmd/tcptracer yet, the guest gets no tracer binary"
		return
	fi
	(cd "$repo" && CGO_ENABLED=0 "$GO" build -o "$out/tcptracer" ./cmd/tcptracer) || die "cannot build ./cmd/tcptracer"
}

# --- pinned kernels --------------------------------------------------------

# pins: the pin file without comments and blank lines, filtered by the
# command-line arguments.
pins() {
	local line fields
	while read -r line; do
		read -ra fields <<<"${line%%#*}"
		[ ${#fields[@]} -gt 0 ] || continue
		selected "${fields[0]}" "$@" && echo "${fields[*]}"
	done <"$PINS"
}

selected() {
	local name=$1 f
	shift
	[ $# -eq 0 ] && return 0
	for f; do [[ $name == *"$f"* ]] && return 0; done
	return 1
}

# fetch_kernel PKG VERSION: unpack the package once into the cache and print
# its directory. apt-get download needs no install and no root, but a fresh
# machine may need its package lists refreshed first.
fetch_kernel() {
	local pkg=$1 ver=$2 dir=$CACHE/k/$1_$2
	# apt-get download names it NAME_VERSION_ARCH.deb, an epoch's ":" as "%3a"
	local deb=$CACHE/debs/${pkg}_${ver//:/%3a}_amd64.deb
	if [ ! -d "$dir/boot" ]; then
		mkdir -p "$CACHE/debs"
		if ! apt-cache show "$pkg=$ver" >/dev/null 2>&1; then
			[ "$(id -u)" = 0 ] && apt-get update -qq >&2
		fi
		(cd "$CACHE/debs" && apt-get download -q "$pkg=$ver" >&2) ||
			die "cannot download $pkg=$ver (no longer in the archive? update the pin in $PINS)"
		rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
		dpkg -x "$deb" "$dir.tmp" || die "cannot unpack $deb"
		mv "$dir.tmp" "$dir"
		rm -f "$deb"
	fi
	echo "$dir"
}

# kernel_release KDIR: the uname -r of an unpacked kernel package.
kernel_release() {
	local v=("$1"/boot/vmlinuz-*)
	echo "${v[0]##*/vmlinuz-}"
}

# at_least RELEASE MAJOR.MINOR
at_least() {
	local maj min wmaj wmin
	IFS=.- read -r maj min _ <<<"$1"
	IFS=. read -r wmaj wmin <<<"$2"
	[ "$maj" -gt "$wmaj" ] || { [ "$maj" -eq "$wmaj" ] && [ "$min" -ge "$wmin" ]; }
}

# default_cells RELEASE IS_HOST: the cells a pin line gets when it lists none.
# tcx needs 6.6; the host is expected to refuse fentry and lack kprobes, so it
# runs the tracepoint fallback only.
default_cells() {
	local rel=$1 is_host=$2 tc=clsact a
	at_least "$rel" 6.6 && tc=tcx
	if [ "$is_host" = 1 ]; then
		[ "$tc" = tcx ] && echo tracepoint/tcx
		echo tracepoint/clsact
		return
	fi
	for a in fentry kprobe tracepoint; do echo "$a/$tc"; done
}

# --- initramfs -------------------------------------------------------------

# copy_tool ROOT PROG: PROG, its shared libraries and the loader, at the same
# paths as on this host (the loader finds Debian's multiarch dirs by itself).
copy_tool() {
	local root=$1 path lib
	path=$(command -v "$2") || return 1
	install -D "$path" "$root$path"
	for lib in $(ldd "$path" | awk '/=> \//{print $3} /^\t\//{print $1}'); do
		[ -e "$root$lib" ] || install -D "$(readlink -f "$lib")" "$root$lib"
	done
}

# guest_etc ROOT: the few files glibc programs look up. tcpdump looks up the
# user it drops privileges to ("tcpdump", or "root" with -Z root) and refuses
# to run if it is missing.
guest_etc() {
	local root=$1 tcpdump_pw
	mkdir -p "$root/etc"
	tcpdump_pw=$(getent passwd tcpdump || echo 'tcpdump:x:102:105::/nonexistent:/usr/sbin/nologin')
	printf 'root:x:0:0:root:/tmp:/bin/sh\n%s\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' "$tcpdump_pw" >"$root/etc/passwd"
	printf 'root:x:0:\ntcpdump:x:%s:\nnogroup:x:65534:\n' "$(echo "$tcpdump_pw" | cut -d: -f4)" >"$root/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
}

# guest_env FILE: settings /init sources before running the cells.
guest_env() {
	{
		printf 'VMTEST_RUN=%q\n' "$RUN"
		printf 'VMTEST_CELL_TIMEOUT=%q\n' "$CELL_TIMEOUT"
		printf 'VMTEST_TC_ONLY=%q\n' "$TC_ONLY"
		printf 'VMTEST_GUEST_SKIP=%q\n' "$GUEST_SKIP"
		printf 'export TCPTRACER_BIN=/opt/tcptracer\n'
		# The memory soak, smaller under emulation (test/e2e/soak_test.go).
		printf 'export TCPTRACER_SOAK_CONNS=100 TCPTRACER_SOAK_DURATION=20s TCPTRACER_SOAK_MEMORY=16\n'
		[ "$ORACLE" = off ] && printf 'export TCPTRACER_ORACLE=off\n'
		true
	} >"$1"
}

# common_cpio BINDIR OUT: the part of the initramfs every kernel shares.
common_cpio() {
	local bins=$1 out=$2 root tool
	root=$(mktemp -d "$WORK/root.XXXXXX")
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,opt}
	cp /bin/busybox "$root/bin/busybox"
	install -m 0755 "$here/guest/init" "$root/init"
	cp "$bins"/* "$root/opt/"
	[ -d "$repo/$PKG/testdata" ] && cp -r "$repo/$PKG/testdata" "$root/opt/"
	for tool in $TOOLS; do
		copy_tool "$root" "$tool" && continue
		say "warning: $tool not found on this host, not in the guest"
		[ "$tool" = tcpdump ] && ORACLE=off
	done
	guest_etc "$root"
	guest_env "$root/opt/vmtest.env"
	to_cpio "$root" "$out"
}

# Uncompressed: gzip -1 saves qemu about as much time loading a 20 MB initrd
# (~0.2 s) as it costs to compress it, and the guest boots no faster.
# The archive's "." becomes the guest's /: mktemp made it 0700, which would
# shut every user but root out of the whole file system.
to_cpio() { chmod 755 "$1" && (cd "$1" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) >"$2"; }

# module_file KDIR RELEASE NAME: the module's file in the package, if any.
# Module names use "_" where some file names have "-".
module_file() {
	local n f
	for n in "$3" "${3//_/-}"; do
		f=$(find "$1/lib/modules/$2" \( -name "$n.ko" -o -name "$n.ko.*" \) -print -quit)
		[ -n "$f" ] && { echo "$f"; return; }
	done
	return 0
}

decompress() {
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -dqc "$1" ;;
	*.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}

# add_module DIR KDIR RELEASE NAME: NAME after its dependencies (read from the
# module's own modinfo), each once, into DIR with the load order in DIR/order.
add_module() {
	local dir=$1 kdir=$2 rel=$3 name=$4 ko deps d
	grep -qx "$name" "$dir/order" 2>/dev/null && return
	ko=$(module_file "$kdir" "$rel" "$name")
	if [ -z "$ko" ]; then
		grep -q "/$name.ko" "$kdir/lib/modules/$rel/modules.builtin" 2>/dev/null ||
			say "warning: module $name neither in the package nor built into $rel"
		return
	fi
	decompress "$ko" >"$dir/$name.ko"
	deps=$(tr '\0' '\n' <"$dir/$name.ko" | sed -n 's/^depends=//p')
	for d in ${deps//,/ }; do add_module "$dir" "$kdir" "$rel" "$d"; done
	echo "$name" >>"$dir/order"
}

# kernel_cpio KDIR RELEASE CELLS OUT: modules and the cell list of one kernel.
kernel_cpio() {
	local kdir=$1 rel=$2 cells=$3 out=$4 root m
	root=$(mktemp -d "$WORK/kroot.XXXXXX")
	mkdir -p "$root/lib/modules" "$root/opt"
	for m in $KMODS; do add_module "$root/lib/modules" "$kdir" "$rel" "$m"; done
	# The kernel's config, where the tracer reads CONFIG_HZ (the sender's rto).
	if [ -f "$kdir/boot/config-$rel" ]; then
		mkdir -p "$root/boot"
		cp "$kdir/boot/config-$rel" "$root/boot/"
	fi
	echo "$cells" | tr '/' ' ' >"$root/opt/cells"
	to_cpio "$root" "$out"
}

# --- running cells ---------------------------------------------------------

# boot KDIR INITRD PREFIX TIMEOUT: boot the guest once. The console goes to
# PREFIX.console.log, cell output to PREFIX.cells.log, qemu's exit status to
# PREFIX.rc. Prints the host-side seconds until the guest's /init announced
# itself (nothing if it never did).
boot() {
	local kdir=$1 initrd=$2 prefix=$3 timeout=$4 accel t0 line booted=
	local vmlinuz=("$kdir"/boot/vmlinuz-*)
	case $ACCEL in
	kvm) accel=(-accel kvm -cpu host) ;;
	*) accel=(-accel tcg -cpu max) ;;
	esac
	t0=$(now)
	while IFS= read -r line; do
		line=${line%$'\r'}
		[ -z "$booted" ] && [[ $line == VMTEST-BOOTED* ]] && booted=$(elapsed "$t0" "$(now)")
		printf '%s\n' "$line"
	done < <(
		timeout -k 5 "$timeout" qemu-system-x86_64 "${accel[@]}" -smp 1 -m "$MEM" \
			-no-reboot -nodefaults -display none \
			-serial stdio -serial "file:$prefix.cells.raw" \
			-kernel "${vmlinuz[0]}" -initrd "$initrd" \
			-append "console=ttyS0 panic=-1 oops=panic loglevel=4 mitigations=off" \
			</dev/null 2>&1
		echo $? >"$prefix.rc"
	) >"$prefix.console.log"
	tr -d '\r' <"$prefix.cells.raw" >"$prefix.cells.log" 2>/dev/null || : >"$prefix.cells.log"
	rm -f "$prefix.cells.raw"
	echo "$booted"
}

# split_cells CELLSLOG OUTDIR: one file per cell, named attach-tc.log.
split_cells() {
	awk -v dir="$2" '
		/^VMTEST-CELL-BEGIN / { f = $2; gsub("/", "-", f); f = dir "/" f ".log" }
		f { print > f }
		/^VMTEST-CELL-END / { close(f); f = "" }
	' "$1"
}

# judge LOG ATTACH TC: "PASS|FAIL<TAB>events<TAB>seconds<TAB>reason" for one
# cell (see judge.awk).
judge() {
	[ -s "$1" ] || { printf 'FAIL\t-\t-\tno output (guest crashed or timed out before this cell)\n'; return; }
	awk -v want="$2/$3" -f "$here/judge.awk" "$1"
}

# record KERNEL CELL LOG: judge one cell and append it to the results.
record() {
	local kernel=$1 cell=$2 log=$3 verdict
	verdict=$(judge "$log" "${cell%/*}" "${cell#*/}")
	printf '%s\t%s\t%s\t%s\n' "$kernel" "$cell" "$verdict" "$log" >>"$RESULTS"
	say "$kernel $cell: $(cut -f1 <<<"$verdict")"
}

# run_vm KDIR [CELL...]: one boot runs all the cells of this kernel. A cell
# that crashes the guest fails, and the cells after it get a fresh boot.
run_vm() {
	local kdir=$1 rel cells todo out booted n=0 cell
	shift
	rel=$(kernel_release "$kdir")
	if [ $# -gt 0 ]; then cells=$(printf '%s\n' "$@"); else cells=$(default_cells "$rel" 0); fi
	out=$RUNDIR/$rel
	mkdir -p "$out"
	: >>"$RESULTS"
	todo=$cells
	while [ -n "$todo" ]; do
		n=$((n + 1))
		booted=$(boot_cells "$kdir" "$rel" "$todo" "$out/boot$n")
		if [ -z "$booted" ]; then
			no_boot "$rel" "$todo" "$out/boot$n"
			break
		fi
		[ $n -eq 1 ] && printf '%s\t%s s to /init (%s guest uptime)\n' "$rel" "$booted" \
			"$(sed -n 's/^VMTEST-BOOTED: .*uptime=//p' "$out/boot1.console.log" | head -1)" >>"$BOOTS"
		split_cells "$out/boot$n.cells.log" "$out"
		todo=$(after_crash "$out" "$out/boot$n.console.log" "$todo")
	done
	for cell in $cells; do
		grep -qF "$rel	$cell	" "$RESULTS" || record "$rel" "$cell" "$out/${cell/\//-}.log"
	done
}

# boot_cells KDIR RELEASE CELLS PREFIX: build this kernel's initramfs and boot it.
boot_cells() {
	local kdir=$1 rel=$2 cells=$3 prefix=$4 n
	kernel_cpio "$kdir" "$rel" "$cells" "$WORK/$rel.cpio"
	cat "$WORK/common.cpio" "$WORK/$rel.cpio" >"$WORK/$rel.initrd"
	n=$(echo "$cells" | wc -l)
	say "$rel: booting for $n cell(s) ($ACCEL, 1 CPU)"
	boot "$kdir" "$WORK/$rel.initrd" "$prefix" $((60 + n * CELL_TIMEOUT))
}

# no_boot RELEASE CELLS PREFIX: every cell left fails with the console log.
no_boot() {
	local rel=$1 cells=$2 prefix=$3 cell
	say "$rel: did not boot"
	printf '%s\tno boot (qemu exit status %s, see %s)\n' "$rel" "$(cat "$prefix.rc")" "$prefix.console.log" >>"$BOOTS"
	for cell in $cells; do
		printf '%s\t%s\tFAIL\t-\t-\tkernel did not boot\t%s\n' "$rel" "$cell" "$prefix.console.log" >>"$RESULTS"
	done
}

# after_crash OUTDIR CONSOLE CELLS: the cells still to run after a boot. The
# first cell that began and did not end gets the console's tail appended to
# its log; the cells after it are printed. Nothing if all ended, or if the
# guest died before starting a cell (another boot would not help).
after_crash() {
	local out=$1 console=$2 cell log rest=0
	for cell in $3; do
		log=$out/${cell/\//-}.log
		if [ "$rest" = 1 ]; then
			echo "$cell"
		elif [ ! -e "$log" ]; then
			return
		elif ! grep -q '^VMTEST-CELL-END' "$log"; then
			printf '\nVMTEST-CONSOLE (the guest died in this cell; console tail):\n' >>"$log"
			tail -n 40 "$console" >>"$log"
			rest=1
		fi
	done
}

# run_host [CELL...]: the cells run directly on this machine's kernel.
run_host() {
	local rel cells out cell log t0 t1 rc
	rel=$(uname -r)
	if [ $# -gt 0 ]; then cells=$(printf '%s\n' "$@"); else cells=$(default_cells "$rel" 1); fi
	out=$RUNDIR/host
	mkdir -p "$out"
	[ "$(id -u)" = 0 ] || say "warning: host cells need root"
	for cell in $cells; do
		log=$out/${cell/\//-}.log
		t0=$(now)
		echo "VMTEST-CELL-BEGIN $cell" >"$log"
		rc=0
		host_cell "${cell%/*}" "${cell#*/}" >>"$log" 2>&1 || rc=$?
		t1=$(now)
		echo "VMTEST-CELL-END $cell rc=$rc start=$t0 end=$t1" >>"$log"
		record "host $rel" "$cell" "$log"
	done
}

# host_cell ATTACH TC: go test runs a test binary in its package directory; so
# does this.
host_cell() {
	local dir=$repo/$PKG oracle=()
	[ "$ORACLE" = off ] && oracle=(TCPTRACER_ORACLE=off)
	(cd "$dir" && env CI=true TCPTRACER_ATTACH="$1" TCPTRACER_TC="$2" TCPTRACER_BIN="$WORK/bin/tcptracer" "${oracle[@]}" \
		timeout -k 5 "$CELL_TIMEOUT" "$WORK/bin/e2e.test" -test.v -test.count=1 \
		-test.run "$RUN" -test.timeout "$((CELL_TIMEOUT - 5))s")
}

# --- report ----------------------------------------------------------------

report() {
	local total=$1 failed
	echo
	printf '%-34s %-18s %-5s %-8s %6s  %s\n' KERNEL CELL RESULT EVENTS SECONDS NOTE
	while IFS=$'\t' read -r kernel cell status events secs reason log; do
		[ "$reason" = - ] && reason=
		printf '%-34s %-18s %-5s %-8s %6s  %s\n' "$kernel" "$cell" "$status" "$events" "$secs" "$reason"
	done <"$RESULTS"
	echo
	while IFS=$'\t' read -r kernel note; do printf 'boot %-30s %s\n' "$kernel" "$note"; done <"$BOOTS"
	failed=$(awk -F'\t' '$3 != "PASS"' "$RESULTS" | wc -l)
	printf 'cells: %d, failed: %d, wall time: %s s, logs: %s\n' "$(wc -l <"$RESULTS")" "$failed" "$total" "$RUNDIR"
	awk -F'\t' '$3 != "PASS" && !seen[$7]++ { print $7 "\t" $6 }' "$RESULTS" | while IFS=$'\t' read -r log reason; do
		printf '\n--- tail of %s\n' "$log"
		short_log "$log" | tail -n "${VMTEST_TAIL:-40}"
	done
}

# short_log LOG: the cell log with its dmesg section cut to the last lines,
# so a tail shows the test's own failure first.
short_log() {
	[ -e "$1" ] || { echo "(no log)"; return; }
	awk '
		/^VMTEST-DMESG-BEGIN/ { in_dmesg = 1; n = 0; next }
		/^VMTEST-DMESG-END/ {
			in_dmesg = 0
			print "(kernel log during the cell" (n > 8 ? ", last 8 of " n " lines" : "") ":)"
			for (i = (n > 8 ? n - 7 : 1); i <= n; i++) print buf[i]
			next
		}
		in_dmesg { buf[++n] = $0; next }
		{ print }
	' "$1"
}

# run_all PINLINE...: the guests first, VMTEST_JOBS at a time (default: one
# per CPU, as a TCG guest keeps one core busy), then the host cells, which
# should not compete with guests for the CPU. Each entry writes its own
# results and boot files, merged in pin order.
run_all() {
	local lines=("$@") kdirs=() fields i jobs=${VMTEST_JOBS:-$(nproc)} running=0
	for i in "${!lines[@]}"; do # downloads one at a time: apt takes a lock
		read -ra fields <<<"${lines[i]}"
		[ "${fields[0]}" = host ] || kdirs[i]=$(fetch_kernel "${fields[0]}" "${fields[1]}")
	done
	for i in "${!lines[@]}"; do
		read -ra fields <<<"${lines[i]}"
		[ "${fields[0]}" = host ] && continue
		if [ "$running" -ge "$jobs" ]; then
			wait -n || true
			running=$((running - 1))
		fi
		(RESULTS=$RUNDIR/results.$i BOOTS=$RUNDIR/boots.$i run_vm "${kdirs[i]}" "${fields[@]:2}") &
		running=$((running + 1))
	done
	wait || true
	for i in "${!lines[@]}"; do
		read -ra fields <<<"${lines[i]}"
		[ "${fields[0]}" = host ] && RESULTS=$RUNDIR/results.$i run_host "${fields[@]:1}"
		cat "$RUNDIR/results.$i" >>"$RESULTS" 2>/dev/null ||
			printf '%s\t-\tFAIL\t-\t-\tharness error (see messages above)\t-\n' "${fields[0]}" >>"$RESULTS"
		cat "$RUNDIR/boots.$i" >>"$BOOTS" 2>/dev/null || true
		rm -f "$RUNDIR/results.$i" "$RUNDIR/boots.$i"
	done
}

main() {
	local t0 lines status=0
	check_host
	t0=$(now)
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmtest.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
	RUNDIR=$CACHE/runs/$(date +%Y%m%d-%H%M%S)
	mkdir -p "$RUNDIR"
	RESULTS=$RUNDIR/results.tsv
	BOOTS=$RUNDIR/boots.tsv
	: >"$RESULTS"
	: >"$BOOTS"
	mapfile -t lines < <(pins "$@")
	[ ${#lines[@]} -gt 0 ] || die "no pinned kernel matches: $*"
	build_bins "$WORK/bin"
	common_cpio "$WORK/bin" "$WORK/common.cpio"
	run_all "${lines[@]}"
	report "$(elapsed "$t0" "$(now)")"
	awk -F'\t' '$3 != "PASS" { bad = 1 } END { exit bad }' "$RESULTS" || status=1
	grep -q 'no boot' "$BOOTS" && status=1
	prune_runs
	return $status
}

# prune_runs: keep the logs of the last 20 runs.
prune_runs() {
	find "$CACHE/runs" -mindepth 1 -maxdepth 1 -type d | sort | head -n -20 | xargs -r rm -rf
}

main "$@"
