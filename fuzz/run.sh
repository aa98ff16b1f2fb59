#!/bin/sh
# run.sh OUT SECONDS TARGET... - run each libFuzzer target for SECONDS
# (make fuzz / make fuzz-smoke).  Seeds: fuzz/corpus/TARGET (read only);
# new inputs: OUT/work/TARGET; crashes: OUT/artifacts/TARGET/.  Prints one
# line per target with the executions run; exit 1 if any target crashed.
# Extra libFuzzer flags may be given in FUZZ_FLAGS (e.g. -jobs=2 -workers=2).
set -u
out=$1
secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
status=0
for t in "$@"; do
	mkdir -p "$out/work/$t" "$out/artifacts/$t"
	dict=
	[ -f "$here/$t.dict" ] && dict=-dict=$here/$t.dict
	log=$out/$t.log
	# shellcheck disable=SC2086
	"$out/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" $dict \
		${FUZZ_FLAGS:-} "$out/work/$t" "$here/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		echo "$t: ${execs:-?} executions in ${secs}s, $cov, no crash"
	else
		status=1
		echo "$t: FAILED (exit $rc) after ${execs:-?} executions; log: $log"
		grep -E 'ERROR|SUMMARY|fuzz invariant|Test unit written' "$log" | head -n 8 | sed 's/^/    /'
	fi
done
exit $status
