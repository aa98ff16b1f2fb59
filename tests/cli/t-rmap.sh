#!/bin/bash
# t-rmap.sh - thin_rmap: the same bytes as thin-provisioning-tools 1.1.0 on
# the kernel-written fixtures (golden 1.1.0 output, as sha256, kept below)
# and on images restored by the reference tools from generated XML (live
# comparison, including leaves shared through 1.x <def>s, which 1.1.0
# reports for the first device only); --region parsing with 1.1.0's
# messages; bad input; input untouched.
#
# Where we deliberately differ from 1.1.0: exit status 1 (not 64) for a
# run-time failure; XML input is refused by name.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=../lib/cli-cases.sh
. "$(dirname "$0")/../lib/cli-cases.sh"

SIZE=16M

good_image() {
    cached_image good 1x 8M --devices 2 --snapshots 2 --mappings-per-device 2000 --share-fraction 0.6 --seed 51
}

# ------------------------------------------------------------ command line

t_help() {
    need_bin thin_rmap
    run_ok "$BIN/thin_rmap" "$1"
    expect_stdout_match '^Usage: thin_rmap --region <BLOCK_RANGE> <INPUT>$'
    expect_stderr_empty
}
tcase help-long t_help --help
tcase help-short t_help -h

tcase help-same-as-1.1.0 cli_help_as_1x thin_rmap

tcase version-long cli_version thin_rmap --version
tcase version-short cli_version thin_rmap -V

tcase bad-option cli_usage thin_rmap 'hedgehogs' --hedgehogs-only --region 0..1 IMG
tcase no-input cli_usage thin_rmap 'input' --region 0..1
tcase no-region cli_usage thin_rmap 'region' IMG
tcase two-inputs cli_usage thin_rmap 'unexpected' --region 0..1 IMG IMG
tcase region-no-value cli_usage thin_rmap 'region|value' IMG --region

# 1.1.0's invalid_regions_should_fail, with its words for each
REGIONS='23,7890|invalid digit found in string
23..six|invalid digit found in string
found..7890|invalid digit found in string
89..88|end <= begin
89..89|end <= begin
89..|cannot parse integer from empty string
|cannot parse integer from empty string
89...99|invalid digit found in string
1..2..3|badly formed region
5|badly formed region
+..5|invalid digit found in string
0..18446744073709551616|number too large to fit in target type'

t_bad_region() {   # REGION WHY
    need_bin thin_rmap
    good_image
    run_usage "$BIN/thin_rmap" --region "$1" "$IMAGE"
    grep -qF "invalid value '$1' for '--region <BLOCK_RANGE>': $2" "$STDERR" ||
        fail "stderr does not say: invalid value '$1' ...: $2"
    expect_stdout_empty
}
while IFS='|' read -r r why; do
    tcase "bad-region.${r:-empty}" t_bad_region "$r" "$why"
done <<<"$REGIONS"

t_good_regions() {
    need_bin thin_rmap
    good_image
    run_ok "$BIN/thin_rmap" --region 23..7890 "$IMAGE"
    run_ok "$BIN/thin_rmap" --region 1..2 --region +3..04 --region 0..18446744073709551615 "$IMAGE"
    expect_stdout_match '^data [0-9]+\.\.[0-9]+ -> thin\([0-9]+\) [0-9]+\.\.[0-9]+$'
}
tcase good-regions t_good_regions

# ------------------------------------------------------------ bad input

t_bad_input() {   # PATTERN SETUP
    need_bin thin_rmap
    local pat=$1
    case $2 in
        missing) IMAGE=$T/no-such-file ;;
        dir) IMAGE=$T ;;
        tiny) head -c 1024 /dev/zero >"$T/tiny"; IMAGE=$T/tiny ;;
        zero) truncate -s 16M "$T/zero"; IMAGE=$T/zero ;;
        xml) good_image; cp "$XML" "$T/in.xml"; IMAGE=$T/in.xml ;;
    esac
    run_fail "$BIN/thin_rmap" --region 0..1000 "$IMAGE"
    expect_stderr_match -i "$pat"
    expect_stdout_empty
}
tcase missing-input t_bad_input "Couldn't find input file" missing
tcase input-is-directory t_bad_input 'Not a block device or regular file' dir
tcase tiny-input t_bad_input 'too small' tiny
tcase zeroed-input t_bad_input 'superblock' zero
tcase xml-input t_bad_input 'XML' xml

t_damaged_leaf() {
    local leaf
    need_bin thin_rmap
    need_cmd python3
    good_image
    cp "$IMAGE" "$T/img"
    leaf=$(python3 "$POKE" leaves "$T/img" | awk 'NR == 1 { print $3 }')
    [ -n "$leaf" ] || fail "no second leaf in device 0"
    python3 "$POKE" flip "$T/img" "$leaf" 100 >/dev/null
    run_fail "$BIN/thin_rmap" --region 0..100000 "$T/img"
    expect_stderr_match "block $leaf"
    expect_stdout_empty
}
tcase damaged-leaf t_damaged_leaf

t_untouched() {
    need_bin thin_rmap
    good_image
    cp "$IMAGE" "$T/img"
    chmod 444 "$T/img"
    remember_sum "$T/img"
    run_ok "$BIN/thin_rmap" --region 0..100000 "$T/img"
    expect_unchanged "$T/img"
}
tcase input-untouched-read-only t_untouched

# ------------------------------------------------------------ kernel fixtures (golden 1.1.0)

# fixture | arguments | sha256 of 1.1.0's stdout
GOLDEN='01-fresh|--region 0..4096|e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
02-thins-snaps|--region 0..4096|34eaac28ab48b32a30e1d04d24ad2acf1ded37da2c0c92f66e4ea5d9418faa77
02-thins-snaps|--region 100..200 --region 5..17 --region 360..380|265270ce3e4fe506d0c547bd3d36746e2dd9cd9f2ebe72bd8df35c54853d3755
03-msnap-held|--region 0..4096|9b53426c518205723cd0b4f7d998118e7f26dbaeccf52c828aa899030bf16cc6
03-msnap-held|--region 100..200 --region 5..17 --region 360..380|df35960cac75a9103f7b7ebc6ac585666a42b8f68eae6106cf39520a0f11fdba
04-msnap-released|--region 0..4096|0997cb6bebb91d3177b5622aafdb24b305cffbe498431e2790bad1a98a7f608a
04-msnap-released|--region 100..200 --region 5..17 --region 360..380|b260e4b3971036243918d8d4289cd93d7dbf9bd1985884d4c935de5c9b743b13
05-msnap-held-powercut|--region 0..4096|dfc60fde746eade160b0544234bc61511bb62d4acaddfef45979caeb51243dcc
05-msnap-held-powercut|--region 100..200 --region 5..17 --region 360..380|b1d80b74942b61f11611f1c68de90f69e1f68d20aac25fa864d4a804aceb952e'

t_kernel() {   # FIXTURE ARGS SHA256
    local name=$1 opts=$2 sum=$3
    need_bin thin_rmap
    kernel_image "$name"
    # shellcheck disable=SC2086
    run_ok "$BIN/thin_rmap" $opts "$IMAGE"
    expect_stderr_empty
    [ "$(sha256sum <"$STDOUT" | cut -c1-64)" = "$sum" ] ||
        fail "thin_rmap $opts differs from 1.1.0's output (sha256 $sum)"
}
while IFS='|' read -r f a s; do
    tcase "kernel.$f.${a// /_}" t_kernel "$f" "$a" "$s"
done <<<"$GOLDEN"

t_shared_leaf_once() {
    # 02: devices 0 and 10 share leaf 95 (thin blocks 506..); 1.1.0 reports it
    # for device 0 only, device 11's own copy of it too
    need_bin thin_rmap
    kernel_image 02-thins-snaps
    run_ok "$BIN/thin_rmap" --region 360..361 "$IMAGE"
    printf 'data 360..361 -> thin(0) 616..617\ndata 360..361 -> thin(11) 616..617\n' >"$T/expected"
    expect_same "$T/expected" "$STDOUT"
}
tcase kernel.shared-leaf-reported-once t_shared_leaf_once

# ------------------------------------------------------------ live comparison with 1.1.0

compare_rmap() {   # IMAGE ARGS...
    local img=$1 rrc
    shift
    "$REF_1X/thin_rmap" "$@" "$img" >"$T/expected" 2>"$T/expected.err"
    rrc=$?
    run "$BIN/thin_rmap" "$@" "$img"
    case $rrc in
        0) [ "$RC" -eq 0 ] || fail "thin_rmap $* exited $RC (1.1.0: 0)" ;;
        64) [ "$RC" -eq 1 ] || fail "thin_rmap $* exited $RC (1.1.0: 64, so 1)" ;;
        *) fail "reference thin_rmap $* exited $rrc" ;;
    esac
    expect_same "$T/expected" "$STDOUT" "thin_rmap $*"
}

t_kernel_live() {
    local f
    need_ref 1x
    need_bin thin_rmap
    for f in 01-fresh 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut; do
        kernel_image "$f"
        compare_rmap "$IMAGE" --region 0..18446744073709551615
        compare_rmap "$IMAGE" --region 7..8 --region 300..330 --region 320..400
    done
}
tcase kernel-vs-1.1.0 t_kernel_live

SHAPES='snaps|1x 09|--devices 2 --snapshots 3 --mappings-per-device 1500 --share-fraction 0.6 --seed 3
singles|1x 09|--devices 2 --mappings-per-device 1500 --run-length 1 --seed 4
longruns|1x 09|--devices 1 --snapshots 1 --mappings-per-device 20000 --run-length 2000 --seed 5
empty|1x 09|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7
many|1x|--devices 300 --mappings-per-device 12 --seed 2
big|1x|--devices 2 --snapshots 4 --mappings-per-device 50000 --share-fraction 0.9 --seed 11
defs|1x|--dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8
defs-empty|1x|--dialect 1.x --devices 1 --snapshots 2 --mappings-per-device 2000 --share-chunk 700 --empty-devices 2 --share-empty --seed 9'

t_shape() {   # KEY RESTORER
    local args
    need_ref 1x
    need_bin thin_rmap
    args=$(printf '%s\n' "$SHAPES" | awk -F'|' -v k="$1" '$1 == k { print $3 }')
    # shellcheck disable=SC2086
    cached_image "$1" "$2" "$SIZE" $args
    compare_rmap "$IMAGE" --region 0..18446744073709551615
    compare_rmap "$IMAGE" --region 1000..1100 --region 0..10 --region 5..20 --region 3000..9000
    compare_rmap "$IMAGE" --region 50000..50001
}
while IFS='|' read -r key which _; do
    for w in $which; do
        tcase "shape.$key.$w" t_shape "$key" "$w"
    done
done <<<"$SHAPES"

finish
