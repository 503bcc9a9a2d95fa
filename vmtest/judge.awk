# judge.awk: the verdict on one cell's log (go test -v output framed by
# VMTEST-CELL-BEGIN/END). Prints "PASS|FAIL<TAB>events<TAB>seconds<TAB>reason".
# A cell passes only if tests ran, all passed, none skipped, and every MATRIX
# line reports exactly the forced modes (want="attach/tc"): a tracer that fell
# back to another mode on its own must not count as proof of the forced one.
#
# usage: awk -v want=fentry/clsact -f judge.awk CELL.log

/--- PASS/ { pass++ }
/--- FAIL: / {
	fail++
	name = $0
	sub(/.*--- FAIL: /, "", name)
	sub(/ .*/, "", name)
	if (name !~ /\//) failed = failed (failed == "" ? "" : " ") name # top-level tests only
}
/--- SKIP/ { skip++ }
/^panic: / { panicked = 1 }
/Kernel panic - not syncing/ { kpanic = 1 }

match($0, /MATRIX attach=[^ ]+ tc=[^ ]+ events=[0-9]+/) {
	split(substr($0, RSTART, RLENGTH), kv, /[ =]/)
	got = kv[3] "/" kv[5]
	if (got != want && index(wrong " ", " " got " ") == 0) wrong = wrong " " got
	events = events (events == "" ? "" : ",") kv[7]
	matrix++
}

/^VMTEST-CELL-END / {
	ended = 1
	for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	rc = v["rc"]
	secs = sprintf("%.1f", v["end"] - v["start"])
}

END {
	if (!ended && kpanic) reason = "guest kernel panicked"
	else if (!ended) reason = "cell did not finish (guest hung, crashed or timed out)"
	else if (panicked) reason = "test binary panicked (rc=" rc ")"
	else if (fail) reason = "failed: " failed
	else if (rc != 0) reason = "exit status " rc
	else if (skip) reason = skip " test(s) skipped"
	else if (!pass) reason = "no test ran (-test.run matched nothing?)"
	else if (!matrix) reason = "no MATRIX line"
	else if (wrong != "") reason = "modes used:" wrong
	# "-" for empty fields: tab-separated reads collapse empty ones
	printf "%s\t%s\t%s\t%s\n", reason == "" ? "PASS" : "FAIL", \
		events == "" ? "-" : events, secs == "" ? "-" : secs, reason == "" ? "-" : reason
}
