#!/bin/bash
# tests/valgrind/run.sh BUILD BIN - a chosen subset of the tests under
# valgrind (memcheck, full leak check): a few unit-test programs, and a few
# command-level cases of each main tool (dump, restore, check, repair,
# pool, ls) run through wrappers that exec valgrind on the real binaries.
# `make check-valgrind`; `make check` runs it when valgrind is installed
# (with CI=true a missing valgrind is a failure).  About 2-3 minutes.
#
# A memory error or a definite/indirect leak makes valgrind exit 99 (a case
# expecting exit 0 or 1 then fails) and leaves a report in
# BUILD/valgrind/logs/, which fails the run even where an exit status is
# not checked.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
build=$(cd "$1" && pwd)
bin=$(cd "$2" && pwd)

if ! command -v valgrind >/dev/null 2>&1; then
	if [ "${CI:-}" = true ]; then
		echo "check-valgrind: valgrind is not installed (CI=true: required; scripts/install-deps.sh installs it)" >&2
		exit 1
	fi
	echo "check-valgrind: SKIPPED (valgrind is not installed)"
	exit 0
fi

vdir=$build/valgrind
rm -rf "$vdir"
mkdir -p "$vdir/bin" "$vdir/logs"
vg() {
	valgrind -q --error-exitcode=99 --leak-check=full \
		--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--log-file="$vdir/logs/%p.log" "$@"
}
VG_ARGS="-q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect"
for t in "$bin"/thin_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	printf '#!/bin/sh\nexec valgrind %s --log-file=%s/logs/%%p.log %s "$@"\n' \
		"$VG_ARGS" "$vdir" "$t" >"$vdir/bin/$name"
	chmod +x "$vdir/bin/$name"
done

status=0
start=$(date +%s)

# unit-test programs (in-process: CK_FORK=no)
for u in test_btree test_cursor test_refs; do
	exe=$build/tests/$u
	if [ ! -x "$exe" ]; then
		echo "check-valgrind: $exe is missing" >&2
		status=1
		continue
	fi
	if CK_FORK=no THINMETA_FIXTURES=$build/fixtures vg "$exe" >"$vdir/$u.out" 2>&1; then
		echo "PASS  valgrind unit: $u"
	else
		echo "FAIL  valgrind unit: $u (see $vdir/$u.out)"
		status=1
	fi
done

# command-level cases, FILE:CASE-GLOB
cases="
t-dump-cli:m-plain
t-dump-cli:zeroed-superblock
t-restore:kernel.02-thins-snaps.restore
t-restore:bad.not-xml
t-check-cli:clean-kernel-03-m
t-check-cli:input-zeroed
t-repair:leaf-zeroed
t-pool:cow-and-status
t-ls:damaged-leaf
"
for c in $cases; do
	file=${c%%:*}
	glob=${c#*:}
	out=$vdir/$file.$(printf '%s' "$glob" | tr -c 'a-zA-Z0-9.-' _).out
	if CASE=$glob BIN=$vdir/bin CLI_LOG=$vdir/cli-failures.log \
		bash "$REPO/tests/cli/run.sh" "$file" >"$out" 2>&1; then
		n=$(tail -n 1 "$out")
		case $n in
		0\ passed*) echo "FAIL  valgrind cli: $file $glob ran no case"; status=1 ;;
		*) echo "PASS  valgrind cli: $file $glob ($n)" ;;
		esac
	else
		echo "FAIL  valgrind cli: $file $glob (see $out, $vdir/cli-failures.log)"
		grep '^FAIL' "$out" | head -n 5 | sed 's/^/    /'
		status=1
	fi
done

# any report at all is a failure
for l in "$vdir"/logs/*.log; do
	[ -s "$l" ] || continue
	echo "FAIL  valgrind report: $l"
	head -n 20 "$l" | sed 's/^/    /'
	status=1
done
echo "check-valgrind: $(ls "$vdir/logs" | wc -l) processes under valgrind in $(($(date +%s) - start)) s: $([ $status -eq 0 ] && echo ok || echo FAILED)"
exit $status
