#!/bin/bash
# judge_test.sh [-update]: golden tests for judge.awk. Each
# testdata/judge/CASE.ATTACH-TC.log is judged with ATTACH/TC forced and the
# verdict compared with CASE.ATTACH-TC.want (-update rewrites the .want files).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
update=0
[ "${1:-}" = -update ] && update=1
failed=0
for log in "$here"/testdata/judge/*.log; do
	cell=${log%.log}
	cell=${cell##*.}
	got=$(awk -v want="${cell/-//}" -f "$here/judge.awk" "$log")
	want=${log%.log}.want
	if [ "$update" = 1 ]; then
		printf '%s\n' "$got" >"$want"
	elif [ "$got" != "$(cat "$want")" ]; then
		printf 'FAIL %s\n got: %s\nwant: %s\n' "${log##*/}" "$got" "$(cat "$want")"
		failed=1
	fi
done
[ "$failed" = 0 ] && echo "judge_test: ok"
exit "$failed"
