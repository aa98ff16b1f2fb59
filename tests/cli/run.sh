#!/bin/bash
# run.sh - run thinmeta's command-level tests.
#
#   tests/cli/run.sh                 every tests/cli/t-*.sh
#   tests/cli/run.sh dump-cli        only t-*dump-cli*  (arguments or TEST= are globs
#   TEST='t-dump-*' tests/cli/run.sh  matched against the file name without .sh;
#                                     a word without glob characters matches as *word*)
#   CASE='kernel-*' tests/cli/run.sh  only the cases whose name matches
#
# Environment: BIN (binaries under test, default <repo>/bin), REF_1X, REF_09,
# CI=true (missing reference tools are failures), KEEP_TMP=1, CLI_LOG
# (see tests/lib/testlib.sh).
#
# Prints one PASS/FAIL/SKIP line per case and ends with exactly the line
# "N passed, N failed, N skipped"; exits 1 if anything failed. Details of
# every failure (command, expected vs got, diff head) go to $CLI_LOG.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export BIN=${BIN:-$REPO/bin}
export CLI_LOG=${CLI_LOG:-${TMPDIR:-/tmp}/thinmeta-cli-failures.log}

patterns=()
if [ $# -gt 0 ]; then
    patterns=("$@")
elif [ -n "${TEST:-}" ]; then
    patterns=("$TEST")
fi

selected() {   # NAME (without .sh)
    local p
    [ ${#patterns[@]} -eq 0 ] && return 0
    for p in "${patterns[@]}"; do
        p=${p%.sh}
        case $p in
            *[*?[]*) ;;
            *) p="*$p*" ;;
        esac
        # shellcheck disable=SC2053
        [[ $1 == $p ]] && return 0
    done
    return 1
}

: >"$CLI_LOG"
counts=$(mktemp "${TMPDIR:-/tmp}/thinmeta-cli-counts.XXXXXX") || exit 1
trap 'rm -f "$counts"' EXIT

echo "BIN=$BIN"
pass=0 failed=0 skipped=0 files=0
for f in "$HERE"/t-*.sh; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .sh)
    selected "$name" || continue
    files=$((files + 1))
    : >"$counts"
    CLI_COUNTS=$counts bash "$f"
    rc=$?
    if read -r p fl s <"$counts" && [ -n "${s:-}" ]; then
        pass=$((pass + p)) failed=$((failed + fl)) skipped=$((skipped + s))
        if [ "$rc" -ne 0 ] && [ "$fl" -eq 0 ]; then
            echo "FAIL  $name: (test file exited with status $rc)"
            failed=$((failed + 1))
        fi
    else
        echo "FAIL  $name: (test file aborted with status $rc before its summary)"
        printf '=== FAIL %s: test file aborted (status %s)\n\n' "$name" "$rc" >>"$CLI_LOG"
        failed=$((failed + 1))
    fi
done

[ "$files" -gt 0 ] || echo "no test file matched: ${patterns[*]}"
[ "$failed" -eq 0 ] || echo "failure details: $CLI_LOG"
echo "$pass passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$files" -gt 0 ]
