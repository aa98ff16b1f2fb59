#!/bin/bash
# t-metadata-size.sh - thin_metadata_size: the same output as
# thin-provisioning-tools 1.1.0 for every unit and every -n form (golden
# 1.1.0 output kept below; a live comparison on many random sizes when 1.1.0
# is installed), its size syntax and 1.1.0's messages, block-size rules.
#
# Where we deliberately differ from 1.1.0: exit status 1 (not 64) for an
# invalid block size or a pool smaller than a block (1.1.0 treats them as
# run-time errors; so do we, but with exit 1).
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

TOOL=thin_metadata_size

t_help() {
    need_bin "$TOOL"
    run_ok "$BIN/$TOOL" "$1"
    expect_stdout_match '^Usage: thin_metadata_size \[OPTIONS\] --block-size'
    expect_stdout_match '--numeric-only\[=<OPT>\]'
    expect_stderr_empty
}
tcase help-long t_help --help
tcase help-short t_help -h

t_help_as_1x() {
    need_ref 1x
    need_bin "$TOOL"
    "$REF_1X/$TOOL" --help >"$T/expected"
    run_ok "$BIN/$TOOL" --help
    expect_same "$T/expected" "$STDOUT" "help text"
}
tcase help-same-as-1.1.0 t_help_as_1x

t_version() {
    need_bin "$TOOL"
    run_ok "$BIN/$TOOL" "$1"
    expect_stderr_empty
    [ "$(wc -l <"$STDOUT")" -eq 1 ] || fail "version output should be one line"
    expect_stdout_match '^[0-9]+\.[0-9]+\.[0-9]+$'
}
tcase version-long t_version --version
tcase version-short t_version -V

t_usage() {   # PATTERN ARGS...
    local pat=$1
    shift
    need_bin "$TOOL"
    run_usage "$BIN/$TOOL" "$@"
    grep -qF -- "$pat" "$STDERR" || fail "stderr does not say: $pat"
    expect_stdout_empty
}
tcase no-args t_usage 'the following required arguments were not provided'
tcase no-block-size t_usage '--block-size' -s 2097152 -m 1
tcase no-pool-size t_usage '--pool-size' -b 128 -m 1
tcase no-max-thins t_usage '--max-thins' -s 2097152 -b 128
tcase bad-option t_usage 'hedgehogs' -s 2097152 -b 128 -m 1 --hedgehogs-only
tcase extra-argument t_usage "unexpected argument 'foo'" -s 2097152 -b 128 -m 1 foo
tcase bad-unit t_usage "invalid value 'x' for '--unit <UNIT>': Invalid unit specifier" -s 2097152 -b 128 -m 1 -u x
tcase bad-size-unit t_usage "invalid value '1x' for '--block-size <SIZE[bskmg]>': Invalid unit specifier" -s 2097152 -b 1x -m 1
tcase size-no-number t_usage "invalid value 'x' for '--block-size <SIZE[bskmg]>': cannot parse integer from empty string" -s 2097152 -b x -m 1
tcase size-plus t_usage "invalid value '+5' for '--pool-size <SIZE[bskmgtp]>': cannot parse integer from empty string" -s +5 -b 128 -m 1
tcase size-too-big t_usage "invalid value '16e' for '--pool-size <SIZE[bskmgtp]>': value out of bounds" -s 16e -b 64k -m 1
tcase size-overflow t_usage "number too large to fit in target type" -s 99999999999999999999k -b 64k -m 1
tcase thins-not-number t_usage "invalid value 'x' for '--max-thins <NUM>': invalid digit found in string" -s 2097152 -b 128 -m x
tcase thins-negative t_usage "-1" -s 2097152 -b 128 -m -1
tcase numeric-bad t_usage "invalid value 'foo' for '--numeric-only[=<OPT>]'" -s 2097152 -b 128 -m 1 -n=foo
tcase twice t_usage "cannot be used multiple times" -s 2097152 -s 1 -b 128 -m 1

t_out() {   # EXPECTED ARGS...
    local want=$1
    shift
    need_bin "$TOOL"
    run_ok "$BIN/$TOOL" "$@"
    expect_stderr_empty
    printf '%s\n' "$want" >"$T/expected"
    expect_same "$T/expected" "$STDOUT" "$TOOL $*"
}
# 1.1.0's dev_size_and_block_size_succeeds
tcase tpt-example t_out '1064 sectors' -s 2097152 -b 128 -m 1
tcase tpt-example-long-options t_out '1064 sectors' --pool-size 2097152 --block-size 128 --max-thins 1
tcase block-64k t_out '8344 sectors' -s 16777216 -b 64k -m 1
tcase block-1g t_out '24 sectors' -s 16777216 -b 1g -m 1
tcase block-bytes t_out '8344 sectors' -s 16777216 -b 65536b -m 1
tcase cap t_out '33292800 sectors' -s 1e -b 64k -m 10
tcase plus-thins t_out '1096 sectors' -s 2097152 -b 128 -m +5
tcase wrapping t_out '1048 sectors' -s 2097152 -b 128 -m 18446744073709551615
tcase tie-half-even t_out '1.12 mebibytes' -s 128 -b 128 -m 286 -u m
tcase tie-shortest-up t_out '0.0000010728836059570313 terabytes' -s 128 -b 128 -m 286 -u t
tcase two-decimals t_out '15.88 gibibytes' -s 100t -b 64k -m 10 -u g

t_block_sizes_ok() {
    local b
    need_bin "$TOOL"
    for b in 128 256 384 2097152; do
        run_ok "$BIN/$TOOL" -s 16777216 -b "$b" -m 1
    done
}
tcase valid-block-sizes t_block_sizes_ok

t_block_size_bad() {   # BLOCK MESSAGE
    need_bin "$TOOL"
    run_fail "$BIN/$TOOL" -s 16777216 -b "$1" -m 1
    expect_stderr_match "$2"
    expect_stdout_empty
}
for b in 0 64 127 2097153 1M 100k; do
    tcase "invalid-block-size.$b" t_block_size_bad "$b" 'block size must be a multiple of 64 KiB'
done
for b in 2097280 4194304 2g; do
    tcase "invalid-block-size.$b" t_block_size_bad "$b" 'maximum block size is 1 GiB'
done

t_pool_too_small() {
    need_bin "$TOOL"
    run_fail "$BIN/$TOOL" -s 100 -b 128 -m 1
    expect_stderr_match 'pool size must be larger than block size'
}
tcase pool-smaller-than-block t_pool_too_small

# unit | full | -n | -n=short | -n=long   (1.1.0: -s 1t -b 64k -m 1000 -u UNIT)
UNITS='b|549494784 bytes|549494784|549494784b|549494784bytes
s|1073232 sectors|1073232|1073232s|1073232sectors
k|536616 kibibytes|536616|536616k|536616kibibytes
K|549494.78 kilobytes|549494.78|549494.78K|549494.78kilobytes
m|524.04 mebibytes|524.04|524.04m|524.04mebibytes
M|549.49 megabytes|549.49|549.49M|549.49megabytes
g|0.5117568969726563 gibibytes|0.5117568969726563|0.5117568969726563g|0.5117568969726563gibibytes
G|0.549494784 gigabytes|0.549494784|0.549494784G|0.549494784gigabytes
t|0.0004997625946998596 terabytes|0.0004997625946998596|0.0004997625946998596t|0.0004997625946998596terabytes
T|0.000549494784 terabytes|0.000549494784|0.000549494784T|0.000549494784terabytes
p|0.0000004880494088865817 pebibytes|0.0000004880494088865817|0.0000004880494088865817p|0.0000004880494088865817pebibytes
P|0.000000549494784 petabytes|0.000000549494784|0.000000549494784P|0.000000549494784petabytes
e|0.0000000004766107508658024 exbibytes|0.0000000004766107508658024|0.0000000004766107508658024e|0.0000000004766107508658024exbibytes
E|0.000000000549494784 exabytes|0.000000000549494784|0.000000000549494784E|0.000000000549494784exabytes'

t_unit() {   # UNIT FULL NUMERIC SHORT LONG
    need_bin "$TOOL"
    local u=$1 a
    a=(-s 1t -b 64k -m 1000 -u "$u")
    run_ok "$BIN/$TOOL" "${a[@]}"
    [ "$(cat "$STDOUT")" = "$2" ] || fail "-u $u: got '$(cat "$STDOUT")', 1.1.0: '$2'"
    run_ok "$BIN/$TOOL" "${a[@]}" -n
    [ "$(cat "$STDOUT")" = "$3" ] || fail "-u $u -n: got '$(cat "$STDOUT")', 1.1.0: '$3'"
    run_ok "$BIN/$TOOL" "${a[@]}" -n=short
    [ "$(cat "$STDOUT")" = "$4" ] || fail "-u $u -n=short: got '$(cat "$STDOUT")', 1.1.0: '$4'"
    run_ok "$BIN/$TOOL" "${a[@]}" --numeric-only=long
    [ "$(cat "$STDOUT")" = "$5" ] || fail "-u $u --numeric-only=long: got '$(cat "$STDOUT")', 1.1.0: '$5'"
}
while IFS='|' read -r u full num short long; do
    tcase "unit.$u" t_unit "$u" "$full" "$num" "$short" "$long"
done <<<"$UNITS"

t_unit_words() {
    need_bin "$TOOL"
    local w
    for w in byte sector kibibyte KiB mebibyte MiB gibibyte GiB tebibyte TiB pebibyte PiB \
        exbibyte EiB kilobyte kB megabyte MB gigabyte GB terabyte TB petabyte PB exabyte EB; do
        run_ok "$BIN/$TOOL" -s 1t -b 64k -m 1000 -u "$w"
    done
}
tcase unit-words t_unit_words

t_random_vs_1x() {
    local i s b m u args rrc
    need_ref 1x
    need_bin "$TOOL"
    RANDOM=7
    for i in $(seq 1 200); do
        s=$((RANDOM * RANDOM + 1))k
        b=$(((RANDOM % 64 + 1) * 64))k
        m=$((RANDOM % 5000))
        u=$(printf '%s\n' b s k K m M g G t T p P e E | sed -n "$((RANDOM % 14 + 1))p")
        args=(-s "$s" -b "$b" -m "$m" -u "$u")
        case $((i % 4)) in
            1) args+=(-n) ;;
            2) args+=(-n=short) ;;
            3) args+=(--numeric-only=long) ;;
        esac
        "$REF_1X/$TOOL" "${args[@]}" >"$T/expected" 2>/dev/null
        rrc=$?
        run "$BIN/$TOOL" "${args[@]}"
        if ! { [ "$rrc" -eq 0 ] && [ "$RC" -eq 0 ]; } && ! { [ "$rrc" -eq 64 ] && [ "$RC" -eq 1 ]; }; then
            fail "$TOOL ${args[*]}: exit $RC, 1.1.0 $rrc"
        fi
        expect_same "$T/expected" "$STDOUT" "$TOOL ${args[*]}"
    done
}
tcase random-vs-1.1.0 t_random_vs_1x

finish
