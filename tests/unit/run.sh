#!/bin/sh
# Run each unit-test executable (Check); report the ones that failed.
failed=0
for t in "$@"; do
	echo "== $(basename "$t")"
	"$t" || { echo "FAILED: $t"; failed=$((failed + 1)); }
done
echo "unit test programs: $# run, $failed failed"
[ "$failed" -eq 0 ]
