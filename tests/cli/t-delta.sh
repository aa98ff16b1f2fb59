#!/bin/bash
# t-delta.sh - thin_delta: the same bytes as thin-provisioning-tools 1.1.0
# (plain and --verbose, --thin/--snap, --root, -m) on the kernel-written
# fixtures (golden 1.1.0 output, as sha256, kept below) and on images
# restored by the reference tools from generated XML, including 1.x XML
# whose <def>s make devices share leaves (live comparison); its command
# line, bad input, unknown device ids, input untouched.
#
# Where we deliberately differ from 1.1.0: exit status 1 (not 64) for a
# run-time failure; a missing --thin1/--root1 (or 2) is command-line misuse
# (exit 2; 1.1.0 checks the input file first and exits 64); XML input is
# refused by name.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=../lib/cli-cases.sh
. "$(dirname "$0")/../lib/cli-cases.sh"

SIZE=16M

good_image() {
    cached_image good 1x 8M --devices 2 --snapshots 2 --mappings-per-device 2000 --share-fraction 0.6 --seed 41
}

# ------------------------------------------------------------ command line

t_help() {
    need_bin thin_delta
    run_ok "$BIN/thin_delta" "$1"
    expect_stdout_match '^Usage: thin_delta \[OPTIONS\] <INPUT>$'
    expect_stdout_match '--thin1 <DEV_ID>'
    expect_stdout_match '--root2 <BLOCKNR>'
    expect_stderr_empty
}
tcase help-long t_help --help
tcase help-short t_help -h

tcase help-same-as-1.1.0 cli_help_as_1x thin_delta

tcase version-long cli_version thin_delta --version
tcase version-short cli_version thin_delta -V

tcase bad-option cli_usage thin_delta 'hedgehogs' --hedgehogs-only --thin1 0 --thin2 1 IMG
tcase no-input cli_usage thin_delta 'input' --thin1 0 --thin2 1
tcase two-inputs cli_usage thin_delta 'unexpected' --thin1 0 --thin2 1 IMG IMG
tcase no-thin1 cli_usage thin_delta '--thin1 or --root1 not specified' --snap2 1 IMG
tcase no-thin2 cli_usage thin_delta '--thin2 or --root2 not specified' --thin1 1 IMG
tcase thin1-and-root1 cli_usage thin_delta 'cannot be used with' --thin1 1 --root1 5 --thin2 1 IMG
tcase thin1-twice cli_usage thin_delta 'multiple' --thin1 1 --snap1 2 --thin2 1 IMG
tcase thin2-not-a-number cli_usage thin_delta "'x'" --thin1 1 --thin2 x IMG
tcase root2-negative cli_usage thin_delta "'-1'" --thin1 1 --root2 -1 IMG
tcase metadata-snap-value cli_usage thin_delta 'metadata-snap' --metadata-snap=5 --thin1 0 --thin2 1 IMG

# ------------------------------------------------------------ bad input

t_bad_input() {   # PATTERN SETUP
    need_bin thin_delta
    local pat=$1
    case $2 in
        missing) IMAGE=$T/no-such-file ;;
        dir) IMAGE=$T ;;
        tiny) head -c 1024 /dev/zero >"$T/tiny"; IMAGE=$T/tiny ;;
        zero) truncate -s 16M "$T/zero"; IMAGE=$T/zero ;;
        xml) good_image; cp "$XML" "$T/in.xml"; IMAGE=$T/in.xml ;;
    esac
    run_fail "$BIN/thin_delta" --thin1 0 --thin2 1 "$IMAGE"
    expect_stderr_match -i "$pat"
    expect_stdout_empty
}
tcase missing-input t_bad_input "Couldn't find input file" missing
tcase input-is-directory t_bad_input 'Not a block device or regular file' dir
tcase tiny-input t_bad_input 'too small' tiny
tcase zeroed-input t_bad_input 'superblock' zero
tcase xml-input t_bad_input 'XML' xml

t_unknown_id() {   # ARGS (the unknown id is 99)
    need_bin thin_delta
    good_image
    run_fail "$BIN/thin_delta" "$@" "$IMAGE"
    expect_stderr_match 'snap[12] \(99\)'
    expect_stdout_empty
}
tcase unknown-thin1 t_unknown_id --thin1 99 --thin2 0
tcase unknown-thin2 t_unknown_id --thin1 0 --thin2 99
tcase unknown-both t_unknown_id --thin1 99 --thin2 98

t_no_snapshot() {
    need_bin thin_delta
    good_image
    run_fail "$BIN/thin_delta" -m --thin1 0 --thin2 1 "$IMAGE"
    expect_stderr_match -i 'no .*metadata snap'
    expect_stdout_empty
}
tcase no-metadata-snapshot t_no_snapshot

t_bad_root() {   # BLOCK
    need_bin thin_delta
    good_image
    run_fail "$BIN/thin_delta" --root1 "$1" --thin2 0 "$IMAGE"
    expect_stderr_match "block $1"
    expect_stdout_empty
}
tcase root-is-superblock t_bad_root 0
tcase root-past-end t_bad_root 99999

t_damaged_leaf() {
    local leaf
    need_bin thin_delta
    need_cmd python3
    good_image
    cp "$IMAGE" "$T/img"
    leaf=$(python3 "$POKE" leaves "$T/img" | awk 'NR == 1 { print $3 }')
    [ -n "$leaf" ] || fail "no second leaf in device 0"
    python3 "$POKE" flip "$T/img" "$leaf" 100 >/dev/null
    run_fail "$BIN/thin_delta" --thin1 0 --thin2 1 "$T/img"
    expect_stderr_match "block $leaf"
    # the XML is held back: nothing half-written
    expect_stdout_empty
}
tcase damaged-leaf t_damaged_leaf

t_untouched() {
    need_bin thin_delta
    good_image
    cp "$IMAGE" "$T/img"
    chmod 444 "$T/img"
    remember_sum "$T/img"
    run_ok "$BIN/thin_delta" --thin1 0 --thin2 2 "$T/img"
    run_ok "$BIN/thin_delta" --verbose --thin1 0 --thin2 1 "$T/img"
    expect_unchanged "$T/img"
}
tcase input-untouched-read-only t_untouched

t_same() {   # 1.1.0's test_same_dev_id / test_same_root (200 mappings: the root is a leaf)
    local root
    need_bin thin_delta
    need_ref 1x
    cat >"$T/one.xml" <<'EOF'
<superblock uuid="" time="0" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="20480">
  <device dev_id="0" mapped_blocks="200" transaction="0" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="0" length="200" time="0"/>
  </device>
</superblock>
EOF
    make_image "$T/one.xml" 16M 1x "$T/one.meta"
    printf '%s\n' '<superblock uuid="" time="0" transaction="1" data_block_size="128" nr_data_blocks="20480">' \
        '  <diff left="0" right="0">' '    <same begin="0" length="200"/>' '  </diff>' >"$T/expected"
    printf '</superblock>' >>"$T/expected"
    run_ok "$BIN/thin_delta" --thin1 0 --thin2 0 "$T/one.meta"
    expect_same "$T/expected" "$STDOUT" "same device"
    need_cmd python3
    root=$(python3 "$POKE" leaves "$T/one.meta" | awk '{ print $2 }')
    sed -i "s/left=\"0\" right=\"0\"/left_root=\"$root\" right_root=\"$root\"/" "$T/expected"
    run_ok "$BIN/thin_delta" --root1 "$root" --root2 "$root" "$T/one.meta"
    expect_same "$T/expected" "$STDOUT" "same root"
}
tcase same-device-and-root t_same

# ------------------------------------------------------------ kernel fixtures (golden 1.1.0)

# fixture | arguments | sha256 of 1.1.0's stdout
GOLDEN='02-thins-snaps|--thin1 0 --thin2 10|dabdf1c14d049cc193f2f5485eaf876aa40c5124db6104d28c3da173ed7c6912
02-thins-snaps|--verbose --thin1 0 --thin2 10|9cc152e6c50357fa3dc0bebe6563b083ea546a9c4319b8735e012c53c5e8845c
02-thins-snaps|--thin1 10 --thin2 11|9bfcc4efa6b0d40fb043d1a6762e09c65bbc8f636ffcde00022be964f3d90b27
02-thins-snaps|--verbose --snap1 1 --snap2 2|31d9fd23e2e41cf6fc873b4369cc210e68206eb4a0f9e3d0b2960a65477e447e
02-thins-snaps|--thin1 11 --thin2 0|5f895d1f607473900a5806de977a9bcd0ccddbcf809b2ec09eddc9663a13ccd0
02-thins-snaps|--root1 139 --thin2 2|3568256f4134754d67acc6315ba169bf1d2c2bef4138d6c304952aa348f4f3d9
03-msnap-held|-m --thin1 0 --thin2 10|cd00e4168abcfc5d232794c85e5f1242a51e4eda74478b65a726d7ec5eadec09
03-msnap-held|--thin1 0 --thin2 10|022358d778b68bff672ed22258536d686ca2ef640ae3de344c2e40cfde04df10
03-msnap-held|--verbose --thin1 1 --thin2 11|f15b0b55b411682c9877593701f48623f917b36b06380f4dfc5f6e8ae9637fda
04-msnap-released|--thin1 0 --thin2 2|6da7819093592c78be6876d95741d6d7e01370cac65826314f7d48d9f8c35642
05-msnap-held-powercut|-m --verbose --thin1 0 --thin2 10|c4c3589d2ac7f5035206fe0cb0838ceb2420253fb6b77cb3c16a805ac46032d9
05-msnap-held-powercut|--thin1 0 --thin2 10|4bdcc5f46b2f7bb488086868ab5f1bcd673ed186a51924171a371010a0c7f709'

t_kernel() {   # FIXTURE ARGS SHA256
    local name=$1 opts=$2 sum=$3
    need_bin thin_delta
    kernel_image "$name"
    # shellcheck disable=SC2086
    run_ok "$BIN/thin_delta" $opts "$IMAGE"
    expect_stderr_empty
    [ "$(sha256sum <"$STDOUT" | cut -c1-64)" = "$sum" ] ||
        fail "thin_delta $opts differs from 1.1.0's output (sha256 $sum)"
}
while IFS='|' read -r f a s; do
    tcase "kernel.$f.${a// /_}" t_kernel "$f" "$a" "$s"
done <<<"$GOLDEN"

# ------------------------------------------------------------ live comparison with 1.1.0

# compare_delta IMAGE ARGS...: same stdout as 1.1.0, exit 0 <-> 0, 64 <-> 1.
compare_delta() {
    local img=$1 rrc
    shift
    "$REF_1X/thin_delta" "$@" "$img" >"$T/expected" 2>"$T/expected.err"
    rrc=$?
    run "$BIN/thin_delta" "$@" "$img"
    case $rrc in
        0) [ "$RC" -eq 0 ] || fail "thin_delta $* exited $RC (1.1.0: 0)" ;;
        64) [ "$RC" -eq 1 ] || fail "thin_delta $* exited $RC (1.1.0: 64, so 1)" ;;
        *) fail "reference thin_delta $* exited $rrc" ;;
    esac
    expect_same "$T/expected" "$STDOUT" "thin_delta $*"
}

# compare_pairs IMAGE [-m]: every ordered pair of (up to 6 of) its devices.
compare_pairs() {
    local img=$1 snap=${2:-} ids x y
    # shellcheck disable=SC2086
    mapfile -t ids < <("$REF_1X/thin_ls" $snap --no-headers -o DEV "$img" 2>/dev/null | tr -d ' ')
    [ "${#ids[@]}" -gt 6 ] && ids=("${ids[@]:0:3}" "${ids[@]: -3}")
    for x in "${ids[@]}"; do
        for y in "${ids[@]}"; do
            # shellcheck disable=SC2086
            compare_delta "$img" $snap --thin1 "$x" --thin2 "$y"
            # shellcheck disable=SC2086
            compare_delta "$img" $snap --verbose --snap1 "$x" --snap2 "$y"
        done
    done
}

t_kernel_live() {
    local f
    need_ref 1x
    need_bin thin_delta
    for f in 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut; do
        kernel_image "$f"
        compare_pairs "$IMAGE"
    done
    kernel_image 03-msnap-held
    compare_pairs "$IMAGE" -m
    kernel_image 05-msnap-held-powercut
    compare_pairs "$IMAGE" -m
}
tcase kernel-vs-1.1.0 t_kernel_live

t_roots_live() {
    local r1 r2
    need_ref 1x
    need_bin thin_delta
    need_cmd python3
    kernel_image 02-thins-snaps
    r1=$(python3 "$POKE" leaves "$IMAGE" | awk '$1 == 1 { print $2 }')
    r2=$(python3 "$POKE" leaves "$IMAGE" | awk '$1 == 2 { print $2 }')
    compare_delta "$IMAGE" --root1 "$r1" --root2 "$r2"
    compare_delta "$IMAGE" --verbose --root1 "$r2" --thin2 1
    compare_delta "$IMAGE" --thin1 2 --root2 "$r1"
    compare_delta "$IMAGE" --root1 0 --thin2 1
    compare_delta "$IMAGE" --thin1 1 --thin2 77
}
tcase roots-vs-1.1.0 t_roots_live

# key | restorers | generator arguments
SHAPES='snaps|1x 09|--devices 2 --snapshots 3 --mappings-per-device 1500 --share-fraction 0.6 --seed 3
singles|1x 09|--devices 2 --snapshots 1 --mappings-per-device 1500 --run-length 1 --seed 4
longruns|1x 09|--devices 1 --snapshots 1 --mappings-per-device 20000 --run-length 2000 --seed 5
empty|1x 09|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7
share0|1x 09|--devices 2 --snapshots 2 --mappings-per-device 2000 --share-fraction 0 --seed 13
share1|1x 09|--devices 2 --snapshots 2 --mappings-per-device 2000 --share-fraction 1 --seed 14
big|1x|--devices 2 --snapshots 4 --mappings-per-device 50000 --share-fraction 0.9 --seed 11
defs|1x|--dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8
defs-big|1x|--dialect 1.x --devices 1 --snapshots 3 --mappings-per-device 40000 --share-chunk 3000 --share-fraction 0.9 --seed 16
defs-empty|1x|--dialect 1.x --devices 1 --snapshots 2 --mappings-per-device 2000 --share-chunk 700 --empty-devices 2 --share-empty --seed 9'

t_shape() {   # KEY RESTORER
    local args
    need_ref 1x
    need_bin thin_delta
    args=$(printf '%s\n' "$SHAPES" | awk -F'|' -v k="$1" '$1 == k { print $3 }')
    # shellcheck disable=SC2086
    cached_image "$1" "$2" "$SIZE" $args
    compare_pairs "$IMAGE"
}
while IFS='|' read -r key which _; do
    for w in $which; do
        tcase "shape.$key.$w" t_shape "$key" "$w"
    done
done <<<"$SHAPES"

finish
