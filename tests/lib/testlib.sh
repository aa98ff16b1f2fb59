# shellcheck shell=bash
# testlib.sh - helpers for thinmeta's command-level tests (tests/cli/t-*.sh).
#
# A test file sources this, declares cases with `tcase NAME FUNCTION [ARGS...]`
# and ends with `finish`. Each case runs in a subshell inside its own scratch
# directory $T (also the working directory); an assertion that does not hold
# calls `fail`, which ends the case. Results are printed as
#   PASS  <file>: <case>
#   FAIL  <file>: <case>            (+ the first lines of the details)
#   SKIP  <file>: <case> (<reason>)
# and the file ends with the line `N passed, N failed, N skipped`.
#
# Environment:
#   BIN       directory of the binaries under test   (default: <repo>/bin)
#   REF_1X    thin-provisioning-tools 1.1.0 binaries (default: /opt/tpt-rust/usr/sbin)
#   REF_09    thin-provisioning-tools 0.9.0 binaries (default: /usr/sbin)
#   CI        "true": missing reference tools make cases FAIL instead of SKIP
#   CASE      glob: run only the cases whose name matches
#   CLI_LOG   failure log, appended to (default: $TMPDIR/thinmeta-cli-failures.log)
#   KEEP_TMP  1: keep the scratch directories (their path is printed)
#   CMD_TIMEOUT  seconds before a command under test is killed (default 60)
#
# Within a case:
#   run CMD...         run, stdout -> $STDOUT, stderr -> $STDERR, exit code -> $RC
#   run_ok CMD...      run; exit code must be 0
#   run_fail CMD...    run; must fail at run time: exit 1..125 but not 2
#                      (2 is for command-line misuse; >= 126 is a crash/kill)
#   run_usage CMD...   run; must exit 2 (command-line misuse)
#   expect_stdout_match [-i] ERE / expect_stderr_match [-i] ERE
#   expect_stdout_empty / expect_stderr_empty / expect_stdout_nonempty / expect_stderr_nonempty
#   expect_same EXPECTED_FILE GOT_FILE [LABEL]   byte equality, logs a diff
#   remember_sum FILE / expect_unchanged FILE    sha256 before/after
#   expect_absent FILE
#   need_ref [1x|09|both]   skip (CI: fail) when the reference tools are missing
#   need_bin TOOL           the tool under test must exist in $BIN
#   need_cmd CMD...         skip when a helper program is missing
#   need_nonroot            skip when running as root (permission tests)
#   make_image XML SIZE [1x|09] [OUT]   restore XML with a reference thin_restore
#                                       into a fresh SIZE-byte file; sets $IMAGE
#   cached_image KEY 1x|09 SIZE GEN-ARGS...    generate XML with tools/gen-thin-xml.py
#                      and restore it, once per test file; sets $IMAGE and $XML
#   kernel_image NAME  unpack fixtures/kernel/NAME.meta.img.xz once; sets $IMAGE
#   gen_xml OUT GEN-ARGS...   run the generator
#   sb_field IMAGE FIELD [--at BLOCK]   a superblock field (tools/meta-poke.py sb)
#   skip REASON / fail MESSAGE / note TEXT (extra detail for the failure log)
#
# Variables set here for the test files (IMAGE, XML, RC, ...) look unused to shellcheck.
# shellcheck disable=SC2034

set -u

TESTLIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$TESTLIB_DIR/../.." && pwd)
BIN=${BIN:-$REPO/bin}
REF_1X=${REF_1X:-/opt/tpt-rust/usr/sbin}
REF_09=${REF_09:-/usr/sbin}
GEN=$REPO/tools/gen-thin-xml.py
POKE=$REPO/tools/meta-poke.py
FIXTURES=$REPO/fixtures
CLI_LOG=${CLI_LOG:-${TMPDIR:-/tmp}/thinmeta-cli-failures.log}
CMD_TIMEOUT=${CMD_TIMEOUT:-60}
TEST_FILE=$(basename "$0" .sh)

FILE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/thinmeta-cli.XXXXXX") || exit 1
CACHE=$FILE_TMP/cache
mkdir -p "$CACHE"
T=$FILE_TMP
STDOUT=$T/stdout
STDERR=$T/stderr
LAST_CMD=
RC=
IMAGE=
XML=
_npass=0
_nfail=0
_nskip=0
_ncase=0

_cleanup() {
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "scratch kept: $FILE_TMP" >&2
    else
        rm -rf "$FILE_TMP"
    fi
}
trap _cleanup EXIT

# ---------------------------------------------------------------- case control

# note TEXT...: add detail lines to this case's failure report.
note() {
    printf '%s\n' "$*" >>"$T/.details"
}

# fail MESSAGE: the case fails; ends the case's subshell.
fail() {
    {
        printf 'failed: %s\n' "$*"
        if [ -n "${LAST_CMD:-}" ]; then
            printf 'last command: %s\n' "$LAST_CMD"
            printf 'exit code: %s\n' "${RC:-?}"
            _head_of "stderr" "$STDERR"
            _head_of "stdout" "$STDOUT"
        fi
    } >>"$T/.details"
    exit 1
}

# skip REASON: the case is skipped; ends the case's subshell.
skip() {
    printf '%s' "$*" >"$T/.skip"
    exit 77
}

_head_of() {   # LABEL FILE
    [ -f "$2" ] || return 0
    if [ -s "$2" ]; then
        printf '%s (%s bytes, first lines):\n' "$1" "$(wc -c <"$2")"
        head -n 8 "$2" | cut -c1-200 | sed 's/^/    | /'
    else
        printf '%s: (empty)\n' "$1"
    fi
}

# tcase NAME FUNCTION [ARGS...]: run one case.
tcase() {
    local name=$1 rc status
    shift
    if [ -n "${CASE:-}" ]; then
        # shellcheck disable=SC2053
        [[ $name == $CASE ]] || return 0
    fi
    _ncase=$((_ncase + 1))
    T=$FILE_TMP/case-$_ncase
    STDOUT=$T/stdout
    STDERR=$T/stderr
    LAST_CMD=
    RC=
    mkdir -p "$T"
    (
        cd "$T" || exit 1
        "$@"
    ) </dev/null 2>"$T/.stderr"
    rc=$?
    case $rc in
        0)
            status=PASS
            _npass=$((_npass + 1))
            printf 'PASS  %s: %s\n' "$TEST_FILE" "$name"
            ;;
        77)
            status=SKIP
            _nskip=$((_nskip + 1))
            printf 'SKIP  %s: %s (%s)\n' "$TEST_FILE" "$name" "$(cat "$T/.skip" 2>/dev/null)"
            ;;
        *)
            status=FAIL
            _nfail=$((_nfail + 1))
            printf 'FAIL  %s: %s\n' "$TEST_FILE" "$name"
            [ -s "$T/.details" ] || echo "failed: case ended with exit code $rc" >"$T/.details"
            if [ -s "$T/.stderr" ]; then
                echo "stderr of the case's own shell code:"
                head -n 10 "$T/.stderr" | sed 's/^/    | /'
            fi >>"$T/.details"
            head -n 12 "$T/.details" | sed 's/^/      /'
            {
                printf '=== FAIL %s: %s  (%s)\n' "$TEST_FILE" "$name" "$(date '+%F %T')"
                printf 'BIN=%s\n' "$BIN"
                cat "$T/.details"
                echo
            } >>"$CLI_LOG"
            ;;
    esac
    [ "$status" = FAIL ] && [ "${KEEP_TMP:-0}" = 1 ] && echo "      scratch: $T"
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
    return 0
}

# finish: print this file's summary; exit status 1 if any case failed.
# When run by run.sh, CLI_COUNTS names a file that receives "pass fail skip".
finish() {
    if [ -n "${CLI_COUNTS:-}" ]; then
        echo "$_npass $_nfail $_nskip" >"$CLI_COUNTS"
    else
        [ "$_nfail" -eq 0 ] || echo "failure details: $CLI_LOG"
        echo "$_npass passed, $_nfail failed, $_nskip skipped"
    fi
    [ "$_nfail" -eq 0 ]
    exit $?
}

# ---------------------------------------------------------------- running commands

run() {
    LAST_CMD=$(printf '%q ' "$@")
    LAST_CMD=${LAST_CMD% }
    timeout --foreground -k 5 "$CMD_TIMEOUT" "$@" >"$STDOUT" 2>"$STDERR" </dev/null
    RC=$?
    return 0
}

run_ok() {
    run "$@"
    [ "$RC" -eq 0 ] || fail "expected exit status 0, got $RC"
}

run_fail() {
    run "$@"
    if [ "$RC" -eq 0 ]; then
        fail "expected a failure (exit 1..125, not 2), got exit 0"
    elif [ "$RC" -eq 2 ]; then
        fail "expected a run-time failure, got exit 2 (reserved for command-line misuse)"
    elif [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
        fail "timed out after ${CMD_TIMEOUT}s"
    elif [ "$RC" -ge 126 ]; then
        fail "expected a clean failure, got exit $RC (crash or signal)"
    fi
}

run_usage() {
    run "$@"
    [ "$RC" -eq 2 ] || fail "expected exit status 2 (command-line misuse), got $RC"
}

# ---------------------------------------------------------------- assertions

_match() {   # WHICH FILE [-i] ERE
    local which=$1 file=$2 flags=-E
    shift 2
    if [ "$1" = -i ]; then
        flags=-Ei
        shift
    fi
    grep -q "$flags" -e "$1" "$file" || fail "$which does not match /$1/"
}

expect_stdout_match() { _match stdout "$STDOUT" "$@"; }
expect_stderr_match() { _match stderr "$STDERR" "$@"; }
expect_stdout_empty() { [ ! -s "$STDOUT" ] || fail "stdout should be empty"; }
expect_stderr_empty() { [ ! -s "$STDERR" ] || fail "stderr should be empty"; }
expect_stdout_nonempty() { [ -s "$STDOUT" ] || fail "stdout should not be empty"; }
expect_stderr_nonempty() { [ -s "$STDERR" ] || fail "stderr should not be empty (an error message was expected)"; }

# expect_same EXPECTED GOT [LABEL]
expect_same() {
    local exp=$1 got=$2 label=${3:-output}
    [ -f "$exp" ] || fail "$label: expected file $exp is missing"
    [ -f "$got" ] || fail "$label: file $got was not written"
    cmp -s "$exp" "$got" && return 0
    {
        printf '%s differs: expected %s (%s bytes), got %s (%s bytes)\n' "$label" \
            "$exp" "$(wc -c <"$exp")" "$got" "$(wc -c <"$got")"
        printf 'cmp: %s\n' "$(cmp "$exp" "$got" 2>&1 | head -n 1)"
        echo "diff (expected -> got), first 40 lines:"
        diff -u "$exp" "$got" | head -n 40 | cut -c1-200 | sed 's/^/    /'
    } >>"$T/.details"
    fail "$label differs from the expected bytes"
}

declare -A _SUMS=()
remember_sum() {
    _SUMS[$1]=$(sha256sum <"$1" | cut -d' ' -f1)
}
expect_unchanged() {
    local now
    now=$(sha256sum <"$1" | cut -d' ' -f1)
    [ "$now" = "${_SUMS[$1]:-}" ] || fail "$1 was modified (sha256 ${_SUMS[$1]:-unset} -> $now)"
}

expect_absent() {
    [ ! -e "$1" ] || fail "$1 should not exist ($(wc -c <"$1") bytes left behind)"
}

# ---------------------------------------------------------------- requirements

_missing() {   # REASON: skip, or fail under CI=true
    if [ "${CI:-}" = true ]; then
        fail "$* (CI=true: required)"
    fi
    skip "$*"
}

need_ref() {
    local which=${1:-1x}
    case $which in
        1x | both)
            if [ ! -x "$REF_1X/thin_dump" ] || [ ! -x "$REF_1X/thin_restore" ]; then
                _missing "reference thin-provisioning-tools 1.1.0 not found in $REF_1X"
            fi
            ;;
    esac
    case $which in
        09 | both)
            if [ ! -x "$REF_09/thin_dump" ] || [ ! -x "$REF_09/thin_restore" ]; then
                _missing "reference thin-provisioning-tools 0.9.0 not found in $REF_09"
            fi
            ;;
    esac
}

need_bin() {
    [ -x "$BIN/$1" ] || fail "$BIN/$1 does not exist or is not executable (not built yet?)"
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || _missing "$c is not installed"
    done
}

need_nonroot() {
    [ "$(id -u)" -ne 0 ] || skip "running as root: permissions are not enforced"
}

# ---------------------------------------------------------------- test data

gen_xml() {   # OUT GEN-ARGS...
    local out=$1
    shift
    need_cmd python3
    python3 "$GEN" "$@" -o "$out" 2>"$T/.gen-err" ||
        fail "generator failed: gen-thin-xml.py $* ($(head -c 300 "$T/.gen-err"))"
}

# make_image XML SIZE [1x|09] [OUT]: restore with a reference thin_restore.
make_image() {
    local xml=$1 size=$2 which=${3:-1x} out=${4:-}
    local tool
    need_ref "$which"
    if [ "$which" = 09 ]; then tool=$REF_09/thin_restore; else tool=$REF_1X/thin_restore; fi
    [ -n "$out" ] || out=$T/$(basename "$xml" .xml).$which.meta
    rm -f "$out"
    truncate -s "$size" "$out" || fail "cannot create $out"
    "$tool" -q -i "$xml" -o "$out" >"$T/.restore-err" 2>&1 ||
        fail "reference restore failed: $tool -i $xml -o $out: $(head -c 300 "$T/.restore-err")"
    IMAGE=$out
}

# cached_image KEY 1x|09 SIZE GEN-ARGS...: generated and restored once per file.
cached_image() {
    local key=$1 which=$2 size=$3
    shift 3
    local xml=$CACHE/$key.xml img=$CACHE/$key.$which.meta
    if [ ! -s "$img" ] || [ ! -s "$xml" ]; then
        need_ref "$which"
        if [ ! -s "$xml" ]; then
            gen_xml "$xml.tmp" "$@"
            mv "$xml.tmp" "$xml"
        fi
        make_image "$xml" "$size" "$which" "$img.tmp"
        mv "$img.tmp" "$img"
    fi
    XML=$xml
    IMAGE=$img
}

# kernel_image NAME: fixtures/kernel/NAME.meta.img.xz, unpacked once per file.
kernel_image() {
    local src=$FIXTURES/kernel/$1.meta.img.xz
    local img=$CACHE/kernel-$1.img
    if [ ! -s "$img" ]; then
        [ -f "$src" ] || fail "fixture $src is missing"
        need_cmd xz
        xz -dc "$src" >"$img.tmp" || fail "cannot unpack $src"
        mv "$img.tmp" "$img"
    fi
    IMAGE=$img
}

# sb_field IMAGE FIELD [--at BLOCK]: one superblock field (see tools/meta-poke.py sb).
sb_field() {
    local img=$1 field=$2 v
    shift 2
    v=$(python3 "$POKE" sb "$img" "$@" | sed -n "s/^$field=//p")
    [ -n "$v" ] || fail "cannot read superblock field $field of $img"
    printf '%s\n' "$v"
}
