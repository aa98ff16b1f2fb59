#!/bin/bash
# t-ls.sh - thin_ls: the same bytes as thin-provisioning-tools 1.1.0 (every
# field, headers or not, -m), on the kernel-written fixtures (golden 1.1.0
# output kept below) and on images restored by the reference tools from
# generated XML (live comparison); its command line, bad input, input
# untouched.
#
# Where we deliberately differ from 1.1.0: exit status 1 (not 64) for a
# run-time failure; no "Scanning data mappings" progress title on stderr;
# error messages name the block and device; XML input is refused by name.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=../lib/cli-cases.sh
. "$(dirname "$0")/../lib/cli-cases.sh"

SIZE=16M
ALL=DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,HIGHEST_BLOCK,MAPPED_SECTORS,EXCLUSIVE_SECTORS,SHARED_SECTORS,HIGHEST_SECTOR,MAPPED_BYTES,EXCLUSIVE_BYTES,SHARED_BYTES,HIGHEST_BYTE,MAPPED,EXCLUSIVE,SHARED,HIGHEST_MAPPED,TRANSACTION,CREATE_TIME,SNAP_TIME
MAIN=DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,HIGHEST_BLOCK,TRANSACTION,CREATE_TIME,SNAP_TIME

good_image() {
    cached_image good 1x 8M --devices 2 --snapshots 2 --mappings-per-device 2000 --share-fraction 0.6 --seed 31
}

# ------------------------------------------------------------ command line

t_help() {
    need_bin thin_ls
    run_ok "$BIN/thin_ls" "$1"
    expect_stdout_match '^Usage: thin_ls \[OPTIONS\] <INPUT>$'
    expect_stdout_match '--no-headers'
    expect_stdout_match '-o, --format <FIELDS>'
    expect_stderr_empty
}
tcase help-long t_help --help
tcase help-short t_help -h

tcase help-same-as-1.1.0 cli_help_as_1x thin_ls

tcase version-long cli_version thin_ls --version
tcase version-short cli_version thin_ls -V

tcase bad-option cli_usage thin_ls 'hedgehogs' --hedgehogs-only IMG
tcase no-input cli_usage thin_ls 'input'
tcase two-inputs cli_usage thin_ls 'unexpected' IMG IMG
tcase unknown-field cli_usage thin_ls "'FOO'" -o DEV,FOO IMG
tcase lower-case-field cli_usage thin_ls "'dev'" -o dev IMG
tcase empty-field cli_usage thin_ls "''" -o DEV, IMG
tcase format-twice cli_usage thin_ls 'format' -o DEV -o MAPPED IMG
tcase format-no-value cli_usage thin_ls 'format|value' IMG -o
tcase metadata-snap-value cli_usage thin_ls 'metadata-snap' --metadata-snap=5 IMG

# ------------------------------------------------------------ bad input

t_bad_input() {   # PATTERN SETUP
    need_bin thin_ls
    local pat=$1
    case $2 in
        missing) IMAGE=$T/no-such-file ;;
        dir) IMAGE=$T ;;
        tiny) head -c 1024 /dev/zero >"$T/tiny"; IMAGE=$T/tiny ;;
        zero) truncate -s 16M "$T/zero"; IMAGE=$T/zero ;;
        xml) good_image; cp "$XML" "$T/in.xml"; IMAGE=$T/in.xml ;;
    esac
    run_fail "$BIN/thin_ls" -o "$ALL" "$IMAGE"
    expect_stderr_match -i "$pat"
    expect_stdout_empty
}
tcase missing-input t_bad_input "Couldn't find input file" missing
tcase input-is-directory t_bad_input 'Not a block device or regular file' dir
tcase tiny-input t_bad_input 'too small' tiny
tcase zeroed-input t_bad_input 'superblock' zero
tcase xml-input t_bad_input 'XML' xml

t_no_snapshot() {
    need_bin thin_ls
    good_image
    run_fail "$BIN/thin_ls" -m "$IMAGE"
    expect_stderr_match -i 'no .*metadata snap'
    expect_stdout_empty
}
tcase no-metadata-snapshot t_no_snapshot

t_damaged_leaf() {
    local leaf
    need_bin thin_ls
    need_cmd python3
    good_image
    cp "$IMAGE" "$T/img"
    leaf=$(python3 "$POKE" leaves "$T/img" | awk 'NR == 1 { print $3 }')
    [ -n "$leaf" ] || fail "no second leaf in device 0"
    python3 "$POKE" flip "$T/img" "$leaf" 100 >/dev/null
    run_fail "$BIN/thin_ls" -o "$ALL" "$T/img"
    expect_stderr_match "block $leaf"
    expect_stdout_empty
    # columns that need no mapping still work (1.1.0 does not read leaves then)
    run_ok "$BIN/thin_ls" -o DEV,TRANSACTION,CREATE_TIME,SNAP_TIME "$T/img"
}
tcase damaged-leaf t_damaged_leaf

t_untouched() {
    need_bin thin_ls
    good_image
    cp "$IMAGE" "$T/img"
    chmod 444 "$T/img"
    remember_sum "$T/img"
    run_ok "$BIN/thin_ls" -o "$ALL" "$T/img"
    run_ok "$BIN/thin_ls" "$T/img"
    expect_unchanged "$T/img"
}
tcase input-untouched-read-only t_untouched

t_broken_pipe() {
    need_bin thin_ls
    cached_image many 1x 32M --devices 3000 --mappings-per-device 1 --seed 32
    set +o pipefail
    "$BIN/thin_ls" -o "$ALL" "$IMAGE" 2>"$T/err" | head -c 10 >/dev/null
    [ ! -s "$T/err" ] || fail "stderr on a broken pipe: $(head -c 200 "$T/err")"
}
tcase quiet-broken-pipe t_broken_pipe

# ------------------------------------------------------------ kernel fixtures (golden 1.1.0)

# 1.1.0's `thin_ls --no-headers -o $MAIN` on each fixture (and with -m).
golden_main() {
    case $1 in
        01-fresh) ;;
        02-thins-snaps) cat <<'EOF'
 0 320  4 316 630 0 0 1 
 1  16 16   0  15 0 0 0 
 2  24 24   0 135 0 0 0 
10 320  4 316 630 0 1 2 
11 336 16 320 655 0 2 2 
EOF
        ;;
        03-msnap-held) cat <<'EOF'
 0 348 21 327 783 0 0 1 
 1  24  0  24  23 0 0 2 
 2   8  8   0   7 1 1 1 
10 332  5 327 662 0 1 1 
11  24  0  24  23 1 2 2 
EOF
        ;;
        03-msnap-held-m) cat <<'EOF'
 0 332  2 330 662 0 0 1 
 1  16 16   0  15 0 0 0 
10 332  2 330 662 0 1 1 
EOF
        ;;
        04-msnap-released) cat <<'EOF'
 0 348 21 327 783 0 0 1 
 1  24 24   0  23 0 0 0 
 2   8  8   0   7 1 1 1 
10 332  5 327 662 0 1 1 
EOF
        ;;
        05-msnap-held-powercut) cat <<'EOF'
 0 308 24 284 598 0 0 1 
 1  16 16   0  15 0 0 0 
 2   4  4   0   3 0 1 1 
10 308 24 284 598 0 1 1 
EOF
        ;;
        05-msnap-held-powercut-m) cat <<'EOF'
 0 300  0 300 598 0 0 1 
 1  16 16   0  15 0 0 0 
10 300  0 300 598 0 1 1 
EOF
        ;;
    esac
}

# sha256 of 1.1.0's `thin_ls -o $ALL` and of `thin_ls` (default fields).
golden_sums() {
    case $1 in
        01-fresh) echo 893d3d9a092ef72b21a66701080f17765445a17e55b9adb7449880df18ab0be8 c868c83443c5a8805992d906a97f1613146c14684fb01d74d952bb01324409f3 ;;
        02-thins-snaps) echo dd51eaf40d4974d4208bb98312839ca7fd49df6acc105252ce9a6225fdc4e576 e3671113729562060e2d1d21a94bdb17b25311ab461f1197edd992977412d74f ;;
        03-msnap-held) echo a709100f5236f06e38cb7bc9ce943f79554760978d93a22624a23c4eb59e6c4e 4c3cb5efd22547e98adba4fb3dfae074e088464fae0c2a69438271ff9c7785cf ;;
        04-msnap-released) echo 828c224e53b760e5af6eb41c02b8c95d2061c177268f3f4e3b81da19a7f96e75 087691bd2ae412e6a5a67e1fecf169c63483b22ea98c6f34f3900495568e6916 ;;
        05-msnap-held-powercut) echo 044bf64d16c50b14fa672f1a58e982ac988479826e45c6e790b58673e7de363c 87779b19caff16a27a5ba99c9ec5795beea79be4f8b7273c7873af0c2d3f513d ;;
    esac
}

t_kernel() {   # FIXTURE [-m]
    local name=$1 snap=${2:-} sums
    need_bin thin_ls
    kernel_image "$name"
    golden_main "$name${snap:+-m}" >"$T/expected"
    # shellcheck disable=SC2086
    run_ok "$BIN/thin_ls" $snap --no-headers -o "$MAIN" "$IMAGE"
    expect_stderr_empty
    expect_same "$T/expected" "$STDOUT" "thin_ls $snap -o MAIN"
    [ -n "$snap" ] && return 0
    read -r -a sums <<<"$(golden_sums "$name")"
    run_ok "$BIN/thin_ls" -o "$ALL" "$IMAGE"
    [ "$(sha256sum <"$STDOUT" | cut -c1-64)" = "${sums[0]}" ] ||
        fail "thin_ls -o ALL differs from 1.1.0's output (sha256)"
    run_ok "$BIN/thin_ls" "$IMAGE"
    [ "$(sha256sum <"$STDOUT" | cut -c1-64)" = "${sums[1]}" ] ||
        fail "thin_ls (default fields) differs from 1.1.0's output (sha256)"
}
for f in 01-fresh 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut; do
    tcase "kernel.$f" t_kernel "$f"
done
tcase kernel.03-msnap-held.m t_kernel 03-msnap-held -m
tcase kernel.05-msnap-held-powercut.m t_kernel 05-msnap-held-powercut -m

# ------------------------------------------------------------ live comparison with 1.1.0

# compare_ls IMAGE ARGS...: same stdout as 1.1.0, exit 0 <-> 0, 64 <-> 1.
compare_ls() {
    local img=$1 rrc
    shift
    "$REF_1X/thin_ls" "$@" "$img" >"$T/expected" 2>"$T/expected.err"
    rrc=$?
    run "$BIN/thin_ls" "$@" "$img"
    case $rrc in
        0) [ "$RC" -eq 0 ] || fail "thin_ls $* exited $RC (1.1.0: 0)" ;;
        64) [ "$RC" -eq 1 ] || fail "thin_ls $* exited $RC (1.1.0: 64, so 1)" ;;
        *) fail "reference thin_ls $* exited $rrc" ;;
    esac
    expect_same "$T/expected" "$STDOUT" "thin_ls $*"
}

t_kernel_live() {
    local f
    need_ref 1x
    need_bin thin_ls
    for f in 01-fresh 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut; do
        kernel_image "$f"
        compare_ls "$IMAGE" -o "$ALL"
        compare_ls "$IMAGE" -m -o "$ALL"
        compare_ls "$IMAGE"
    done
}
tcase kernel-vs-1.1.0 t_kernel_live

# key | restorers | generator arguments
SHAPES='one|1x 09|--devices 1 --mappings-per-device 3000 --seed 1
many|1x 09|--devices 300 --mappings-per-device 12 --seed 2
snaps|1x 09|--devices 2 --snapshots 3 --mappings-per-device 1500 --share-fraction 0.6 --seed 3
singles|1x 09|--devices 2 --mappings-per-device 1500 --run-length 1 --seed 4
longruns|1x 09|--devices 1 --snapshots 1 --mappings-per-device 20000 --run-length 2000 --seed 5
bigblock|1x 09|--devices 2 --snapshots 1 --mappings-per-device 1500 --data-block-size 1024 --seed 6
empty|1x 09|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7
nodevs|1x 09|--devices 0
share0|1x 09|--devices 2 --snapshots 2 --mappings-per-device 2000 --share-fraction 0 --seed 13
share1|1x 09|--devices 2 --snapshots 2 --mappings-per-device 2000 --share-fraction 1 --seed 14
big|1x|--devices 3 --snapshots 5 --mappings-per-device 40000 --share-fraction 0.8 --seed 11
defs|1x|--dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8
defs-empty|1x|--dialect 1.x --devices 1 --snapshots 2 --mappings-per-device 2000 --share-chunk 700 --empty-devices 2 --share-empty --seed 9
defs-all|1x|--dialect 1.x --devices 1 --snapshots 3 --mappings-per-device 5000 --share-chunk 300 --share-fraction 1 --seed 15'

t_shape() {   # KEY RESTORER
    local args
    need_ref 1x
    need_bin thin_ls
    args=$(printf '%s\n' "$SHAPES" | awk -F'|' -v k="$1" '$1 == k { print $3 }')
    # shellcheck disable=SC2086
    cached_image "$1" "$2" "$SIZE" $args
    compare_ls "$IMAGE" -o "$ALL"
    # (1.1.0's thin_ls takes 0.5 s a run: the other forms on some shapes only)
    case $1 in
        snaps | empty | defs)
            compare_ls "$IMAGE"
            compare_ls "$IMAGE" --no-headers -o SHARED,DEV,EXCLUSIVE,HIGHEST_MAPPED
            compare_ls "$IMAGE" -m -o "$ALL"
            ;;
    esac
}
while IFS='|' read -r key which _; do
    for w in $which; do
        tcase "shape.$key.$w" t_shape "$key" "$w"
    done
done <<<"$SHAPES"

finish
