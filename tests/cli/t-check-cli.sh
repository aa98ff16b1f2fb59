#!/bin/bash
# t-check-cli.sh - thin_check's command line and output, against 1.1.0:
# options and their conflicts (exit 2 exactly where 1.1.0 exits 2), input
# pre-checks, the stdout info lines and stderr titles on clean images
# (byte-identical to 1.1.0), -m, --super-block-only, --skip-mappings,
# needs_check and its clearing, leaks and --ignore-non-fatal-errors, fatal
# problems that nothing can clear, inputs left untouched, O_EXCL on block
# devices, the progress bar on a terminal.
# shellcheck source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

MKDAMAGE=$REPO/tools/mkdamage.py
GENARGS='--devices 2 --snapshots 1 --mappings-per-device 1500 --share-fraction 0.6 --seed 3'
KERNEL='01-fresh 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut'

gen_image() {   # 1x|09: sets IMAGE
    # shellcheck disable=SC2086
    cached_image "snaps" "$1" 8M $GENARGS
}

damaged() {   # RECIPE BASE-IMAGE OUT
    need_cmd python3
    python3 "$MKDAMAGE" "$1" "$2" "$3" 2>"$T/mk.err" || fail "mkdamage $1: $(cat "$T/mk.err")"
}

ref_check() {   # ARGS...: 1.1.0's thin_check -> $T/ref.out, $T/ref.err, REFRC
    [ -x "$REF_1X/thin_check" ] || _missing "reference thin_check 1.1.0 not found in $REF_1X"
    "$REF_1X/thin_check" "$@" >"$T/ref.out" 2>"$T/ref.err"
    REFRC=$?
}

# ------------------------------------------------------------ options

t_help() {
    need_bin thin_check
    run_ok "$BIN/thin_check" "$1"
    expect_stdout_match '^Usage: thin_check \[OPTIONS\] <INPUT>'
    expect_stdout_match -- '--clear-needs-check-flag'
    expect_stderr_empty
}
tcase help-short t_help -h
tcase help-long t_help --help

t_version() {
    need_bin thin_check
    run_ok "$BIN/thin_check" "$1"
    [ "$(wc -l <"$STDOUT")" -eq 1 ] || fail "version output is not one line"
    expect_stdout_match '^[0-9]+\.[0-9]+\.[0-9]+$'
}
tcase version-short t_version -V
tcase version-long t_version --version

# Misuse: exit 2, as 1.1.0 (whose clap exits 2 for each of these).
t_usage() {   # ARGS...  (IMG stands for a valid image)
    local args=() a
    need_bin thin_check
    kernel_image 02-thins-snaps
    for a in "$@"; do
        [ "$a" = IMG ] && a=$IMAGE
        args+=("$a")
    done
    run_usage "$BIN/thin_check" "${args[@]}"
    expect_stderr_nonempty
    expect_stdout_empty
    ref_check "${args[@]}"
    [ "$REFRC" -eq 2 ] || fail "1.1.0 exits $REFRC for this, not 2: the test is wrong"
}
tcase usage-no-input t_usage
tcase usage-two-inputs t_usage IMG IMG
tcase usage-bad-option t_usage --hedgehogs-only IMG
tcase usage-version-with-input t_usage -V IMG
tcase usage-m-value t_usage -m5 IMG
tcase usage-metadata-snap-value t_usage --metadata-snap=5 IMG
tcase usage-override-bad t_usage --override-mapping-root abc IMG
tcase usage-override-missing t_usage IMG --override-details-root
for o in --ignore-non-fatal-errors -m --super-block-only --skip-mappings; do
    tcase "conflict-auto-repair$o" t_usage --auto-repair "$o" IMG
done
tcase conflict-auto-repair-override-mapping t_usage --auto-repair --override-mapping-root 5 IMG
tcase conflict-auto-repair-override-details t_usage --auto-repair --override-details-root 5 IMG
tcase conflict-clear-m t_usage --clear-needs-check-flag -m IMG
tcase conflict-clear-override-mapping t_usage --clear-needs-check-flag --override-mapping-root 5 IMG
tcase conflict-clear-override-details t_usage --clear-needs-check-flag --override-details-root 5 IMG

# Allowed combinations (1.1.0 accepts them too).
t_allowed() {   # FIXTURE ARGS...
    local fx=$1
    shift
    need_bin thin_check
    kernel_image "$fx"
    cp "$IMAGE" "$T/m.img"
    run_ok "$BIN/thin_check" "$@" "$T/m.img"
    ref_check "$@" "$T/m.img"
    [ "$REFRC" -eq 0 ] || fail "1.1.0 refuses this ($REFRC): the test is wrong"
}
tcase allowed-clear-sb-only t_allowed 02-thins-snaps --clear-needs-check-flag --super-block-only
tcase allowed-clear-skip-mappings t_allowed 02-thins-snaps --clear-needs-check-flag --skip-mappings
tcase allowed-clear-ignore t_allowed 02-thins-snaps --clear-needs-check-flag --ignore-non-fatal-errors
tcase allowed-auto-repair-clear t_allowed 02-thins-snaps --auto-repair --clear-needs-check-flag
tcase allowed-m-sb-only t_allowed 03-msnap-held -m --super-block-only
tcase allowed-m-skip-mappings t_allowed 03-msnap-held -m --skip-mappings
tcase allowed-io-engine t_allowed 02-thins-snaps --io-engine sync

# lvm2 2.03.16-2.03.21 pass empty words from thin_check_options on as
# arguments (shared/LVM2.md): we ignore them; 1.1.0 takes "" for the input
# and then refuses the real one (exit 2).
t_empty_word() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/m.img"
    run_ok "$BIN/thin_check" -q "" --clear-needs-check-flag "$T/m.img"
    ref_check -q "" --clear-needs-check-flag "$T/m.img"
    [ "$REFRC" -eq 2 ] || fail "1.1.0 now accepts an empty word ($REFRC): update this test"
}
tcase empty-word-ignored t_empty_word

t_async() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    run_fail "$BIN/thin_check" --io-engine async "$IMAGE"
    expect_stderr_match 'async'
}
tcase io-engine-async t_async

# ------------------------------------------------------------ input pre-checks

t_missing() {
    need_bin thin_check
    run_fail "$BIN/thin_check" "$T/no-such-file"
    expect_stderr_match "Couldn't find input file"
}
tcase input-missing t_missing

t_dir() {
    need_bin thin_check
    run_fail "$BIN/thin_check" "$T"
    expect_stderr_match 'Not a block device or regular file'
}
tcase input-directory t_dir

t_tiny() {
    need_bin thin_check
    head -c 1024 /dev/zero >"$T/tiny"
    run_fail "$BIN/thin_check" "$T/tiny"
    expect_stderr_match 'too small'
}
tcase input-tiny t_tiny

t_xml() {
    need_bin thin_check
    gen_xml "$T/x.xml" $GENARGS
    run_fail "$BIN/thin_check" "$T/x.xml"
    expect_stderr_match 'This looks like XML'
}
tcase input-xml t_xml

t_zeroed() {
    need_bin thin_check
    truncate -s 16M "$T/z.img"
    run_fail "$BIN/thin_check" "$T/z.img"
    expect_stderr_match 'bad checksum in superblock'
    expect_stdout_empty
}
tcase input-zeroed t_zeroed

t_readonly() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/ro.img"
    chmod a-w "$T/ro.img"
    run_ok "$BIN/thin_check" "$T/ro.img"
}
tcase input-readonly t_readonly

# ------------------------------------------------------------ clean images vs 1.1.0

# Same exit, stdout and stderr as 1.1.0 (stderr is not a terminal here),
# and the input untouched, also with the repairing options.
t_clean() {   # IMAGE-KIND NAME [ARGS...]
    local kind=$1 name=$2
    shift 2
    need_bin thin_check
    if [ "$kind" = kernel ]; then kernel_image "$name"; else gen_image "$name"; fi
    cp "$IMAGE" "$T/c.img"
    remember_sum "$T/c.img"
    run_ok "$BIN/thin_check" "$@" "$T/c.img"
    expect_unchanged "$T/c.img"
    cp "$STDOUT" "$T/our.out"
    cp "$STDERR" "$T/our.err"
    ref_check "$@" "$T/c.img"
    [ "$REFRC" -eq 0 ] || fail "1.1.0 fails on this clean image ($REFRC)"
    expect_same "$T/ref.out" "$T/our.out" "stdout"
    expect_same "$T/ref.err" "$T/our.err" "stderr"
    for opt in --auto-repair --clear-needs-check-flag; do
        run_ok "$BIN/thin_check" -q "$opt" "$T/c.img"
        expect_unchanged "$T/c.img"
    done
}
for k in $KERNEL; do
    tcase "clean-kernel-$k" t_clean kernel "$k"
    tcase "clean-kernel-$k-sb-only" t_clean kernel "$k" --super-block-only
    tcase "clean-kernel-$k-skip-mappings" t_clean kernel "$k" --skip-mappings
    tcase "clean-kernel-$k-quiet" t_clean kernel "$k" -q
done
tcase clean-kernel-03-m t_clean kernel 03-msnap-held -m
tcase clean-kernel-05-m t_clean kernel 05-msnap-held-powercut -m
tcase clean-gen-1x t_clean gen 1x
tcase clean-gen-09 t_clean gen 09

t_quiet() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    damaged csum-bottom-leaf "$IMAGE" "$T/d.img"
    run_fail "$BIN/thin_check" -q "$T/d.img"
    expect_stdout_empty
    expect_stderr_empty
}
tcase quiet-on-damage t_quiet

# Many shapes of generated pools: all pass, as in 1.1.0.
t_shape() {   # WHICH GEN-ARGS...
    local which=$1
    shift
    need_bin thin_check
    cached_image "shape-$which-$*" "$which" 16M "$@"
    run_ok "$BIN/thin_check" "$IMAGE"
    run_ok "$BIN/thin_check" --auto-repair -q "$IMAGE"
}
while IFS='|' read -r key args; do
    tcase "shape-$key-1x" t_shape 1x $args
    tcase "shape-$key-09" t_shape 09 $args
done <<'EOF'
one|--devices 1 --mappings-per-device 3000 --seed 1
many|--devices 300 --mappings-per-device 12 --seed 2
singles|--devices 2 --mappings-per-device 1500 --run-length 1 --seed 4
longruns|--devices 1 --snapshots 1 --mappings-per-device 20000 --run-length 2000 --seed 5
empty|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7
nodevs|--devices 0
deep|--devices 1 --mappings-per-device 70000 --run-length 1 --seed 11
EOF
tcase shape-defs-1x t_shape 1x --dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8

# ------------------------------------------------------------ -m

t_m_none() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    run_fail "$BIN/thin_check" -m "$IMAGE"
    expect_stdout_empty
    expect_stderr_match 'no current metadata snap'
}
tcase m-without-snapshot t_m_none

# 1.1.0: info lines only once the snapshot's superblock is read.
t_m_bad_snap() {
    need_bin thin_check
    kernel_image 03-msnap-held
    damaged csum-snap-sb "$IMAGE" "$T/d.img"
    run_fail "$BIN/thin_check" -m "$T/d.img"
    expect_stdout_empty
    run_fail "$BIN/thin_check" "$T/d.img"
    expect_stdout_match '^TRANSACTION_ID=2$'
}
tcase m-bad-snapshot t_m_bad_snap

# -m reads only the held snapshot: damage to the live trees is not seen.
t_m_only_snap() {
    need_bin thin_check
    kernel_image 05-msnap-held-powercut
    damaged csum-top "$IMAGE" "$T/d.img"
    run_fail "$BIN/thin_check" "$T/d.img"
    run_ok "$BIN/thin_check" -m "$T/d.img"
}
tcase m-reads-snapshot-only t_m_only_snap

# ------------------------------------------------------------ needs_check

sb_flags() { python3 "$POKE" sb "$1" | sed -n 's/^flags=//p'; }

t_needs_check() {   # ARGS...
    need_bin thin_check
    need_cmd python3
    kernel_image 02-thins-snaps
    damaged needs-check "$IMAGE" "$T/n.img"
    remember_sum "$T/n.img"
    run_ok "$BIN/thin_check" "$T/n.img"
    expect_stderr_match '\[info sb_needs_check\]'
    expect_unchanged "$T/n.img"
    run_ok "$BIN/thin_check" "$@" "$T/n.img"
    [ "$(sb_flags "$T/n.img")" = 0 ] || fail "needs_check still set after thin_check $*"
    run_ok "$BIN/thin_check" "$T/n.img"
    if grep -q sb_needs_check "$STDERR"; then fail "needs_check still reported"; fi
}
tcase needs-check-clear t_needs_check --clear-needs-check-flag
tcase needs-check-clear-sb-only t_needs_check --clear-needs-check-flag --super-block-only
tcase needs-check-clear-skip-mappings t_needs_check --clear-needs-check-flag --skip-mappings
tcase needs-check-auto-repair t_needs_check --auto-repair

# 1.1.0 tries to clear the flag with plain --skip-mappings, on a read-only
# descriptor ("Bad file descriptor", exit 64): we neither write nor fail.
t_skip_mappings_needs_check() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    damaged needs-check "$IMAGE" "$T/n.img"
    remember_sum "$T/n.img"
    run_ok "$BIN/thin_check" --skip-mappings "$T/n.img"
    expect_unchanged "$T/n.img"
}
tcase needs-check-skip-mappings-readonly t_skip_mappings_needs_check

# needs_check and a leak: clearing modes that do not look at the space maps
# clear the flag (1.1.0 clear_needs_check_if_*); with the full check the
# leak is repaired too.
t_clear_with_leak() {   # RECHECK-EXIT ARGS...
    local recheck=$1
    shift
    need_bin thin_check
    kernel_image 02-thins-snaps
    damaged leak-meta "$IMAGE" "$T/l.img"
    damaged needs-check "$T/l.img" "$T/n.img"
    cp "$T/n.img" "$T/r.img"
    run_ok "$BIN/thin_check" --clear-needs-check-flag "$@" "$T/n.img"
    [ "$(sb_flags "$T/n.img")" = 0 ] || fail "needs_check not cleared"
    run "$BIN/thin_check" "$T/n.img"
    [ "$RC" -eq "$recheck" ] || fail "re-check exited $RC, expected $recheck"
    ref_check --clear-needs-check-flag "$@" "$T/r.img"
    [ "$REFRC" -eq 0 ] || fail "1.1.0 fails here ($REFRC): the test is wrong"
}
tcase clear-with-leak-sb-only t_clear_with_leak 1 --super-block-only
tcase clear-with-leak-skip-mappings t_clear_with_leak 1 --skip-mappings
tcase clear-with-leak-ignore t_clear_with_leak 0 --ignore-non-fatal-errors
tcase clear-with-leak-full t_clear_with_leak 0

# ------------------------------------------------------------ leaks and fatal problems

t_leak_non_fatal() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    damaged leak-data "$IMAGE" "$T/l.img"
    remember_sum "$T/l.img"
    run_fail "$BIN/thin_check" "$T/l.img"
    expect_stderr_match '\[non-fatal data_leak\] data block [0-9]+: reference count 1 in the space map, 0 references found'
    expect_stderr_match 'auto-repair'
    run_ok "$BIN/thin_check" --ignore-non-fatal-errors "$T/l.img"
    expect_unchanged "$T/l.img"
}
tcase leaks-are-non-fatal t_leak_non_fatal

t_fatal_not_ignored() {   # ARGS...
    need_bin thin_check
    kernel_image 02-thins-snaps
    damaged under-meta "$IMAGE" "$T/u.img"
    damaged needs-check "$T/u.img" "$T/n.img"
    remember_sum "$T/n.img"
    run_fail "$BIN/thin_check" "$@" "$T/n.img"
    expect_stderr_match '\[fatal meta_undercount\]'
    expect_unchanged "$T/n.img"
}
tcase fatal-ignore t_fatal_not_ignored --ignore-non-fatal-errors
tcase fatal-clear t_fatal_not_ignored --clear-needs-check-flag
tcase fatal-auto-repair t_fatal_not_ignored --auto-repair

# The node path we print is the one 1.1.0 prints for the same node.
t_node_path() {   # FIXTURE
    need_bin thin_check
    kernel_image "$1"
    damaged csum-top "$IMAGE" "$T/d.img"
    run_fail "$BIN/thin_check" "$T/d.img"
    ours=$(sed -n 's/.*block_checksum\].*(node path \([A-Za-z0-9+\/=]*\)).*/\1/p' "$STDERR" | head -n 1)
    [ -n "$ours" ] || fail "no node path in our report"
    ref_check "$T/d.img"
    theirs=$(sed -n 's/.*checksum error \([A-Za-z0-9+\/=]*\),.*/\1/p' "$T/ref.err" | head -n 1)
    [ -n "$theirs" ] || fail "no node path in 1.1.0's report: $(head -c 200 "$T/ref.err")"
    [ "$ours" = "$theirs" ] || fail "node path $ours, 1.1.0 prints $theirs"
}
tcase node-path-k02 t_node_path 02-thins-snaps
tcase node-path-k05 t_node_path 05-msnap-held-powercut

# Each finding says where and what it costs.
t_cost() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    damaged csum-bottom-leaf "$IMAGE" "$T/d.img"
    run_fail "$BIN/thin_check" "$T/d.img"
    expect_stderr_match '^\[fatal block_checksum\] mapping tree of device [0-9]+, block [0-9]+: bad checksum in btree node; at risk: device [0-9]+ virtual blocks \[[0-9]+\.\.[0-9]*[])]'
    expect_stderr_match '^\[fatal dev_damaged\] device [0-9]+: 1 damaged subtree\(s\); [0-9]+ of [0-9]+ mappings readable; unreadable: virtual blocks'
    expect_stderr_match '^summary: [0-9]+ fatal, [0-9]+ non-fatal problems: block_checksum 1, dev_damaged [0-9]+, leak_unreached 1'
    expect_stderr_match '^devices affected: '
}
tcase report-where-and-cost t_cost

# ------------------------------------------------------------ shared trees

# The live and held-snapshot details trees share a leaf that the walk
# reaches first from the snapshot (its root has the lower block number):
# the leaf's devices belong to both views.  (Found by fuzz_pool_script: a
# false "device N is in the mapping tree but not in the device details
# tree" for every device of that leaf.)
t_shared_details_leaf() {
    need_bin thin_check
    need_bin thin_pool
    local i
    {
        echo "format --data-block-size 128 --nr-data-blocks 2048"
        for i in $(seq 0 130); do echo "create_thin $i"; done   # two details leaves
        echo "reserve_metadata_snap"
        echo "write 80 80 3"    # shadows the second leaf only
        echo "commit"
    } >"$T/script"
    truncate -s 4M "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" --script "$T/script"
    run_ok "$BIN/thin_check" "$T/m"
    run_ok "$BIN/thin_check" -m "$T/m"
    run_ok "$BIN/thin_ls" --no-headers -o DEV "$T/m"
    [ "$(wc -l <"$STDOUT")" -eq 131 ] || fail "thin_ls lists $(wc -l <"$STDOUT") devices, not 131"
    if [ -x "$REF_1X/thin_check" ]; then   # the reference agrees (when installed)
        run_ok "$REF_1X/thin_check" "$T/m"
    fi
}
tcase shared-details-leaf-under-held-snapshot t_shared_details_leaf

# ------------------------------------------------------------ block devices

t_blockdev_busy() {
    need_bin thin_check
    need_cmd losetup python3
    [ "$(id -u)" -eq 0 ] || skip "needs root for a loop device"
    kernel_image 03-msnap-held
    cp "$IMAGE" "$T/lo.img"
    local dev
    dev=$(losetup -f --show "$T/lo.img" 2>/dev/null) || skip "cannot set up a loop device"
    run "$BIN/thin_check" "$dev"
    local rc_free=$RC
    # the holder says when it has the device open (a loaded machine may take
    # seconds to start python), then holds it until killed
    python3 -c "import os,sys,time; os.open(sys.argv[1], os.O_RDONLY | os.O_EXCL); open(sys.argv[2], 'w').close(); time.sleep(120)" "$dev" "$T/held" &
    local holder=$! i
    for i in $(seq 1 300); do
        [ -e "$T/held" ] && break
        sleep 0.1
    done
    [ -e "$T/held" ] || { kill "$holder" 2>/dev/null; losetup -d "$dev"; fail "the holder could not open $dev exclusively"; }
    run "$BIN/thin_check" "$dev"
    local rc_busy=$RC
    cp "$STDERR" "$T/busy.err"
    run "$BIN/thin_check" -m "$dev"
    local rc_m=$RC
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
    losetup -d "$dev"
    [ "$rc_free" -eq 0 ] || fail "thin_check on the idle loop device exited $rc_free"
    [ "$rc_busy" -eq 1 ] || fail "thin_check on a device in use exited $rc_busy, not 1"
    grep -q 'reserve a metadata snapshot' "$T/busy.err" || fail "no advice to use -m: $(cat "$T/busy.err")"
    [ "$rc_m" -eq 0 ] || fail "thin_check -m on a device in use exited $rc_m"
}
tcase blockdev-in-use t_blockdev_busy

# ------------------------------------------------------------ terminal

t_tty() {
    need_bin thin_check
    need_cmd script
    kernel_image 02-thins-snaps
    script -qec "$BIN/thin_check $IMAGE" /dev/null >"$T/tty.out" 2>&1 || fail "thin_check under a terminal failed"
    grep -q 'Checking thin metadata \[' "$T/tty.out" || fail "no progress bar on a terminal"
    grep -q 'TRANSACTION_ID=5' "$T/tty.out" || fail "no info line on a terminal"
    if grep -q '^device details tree' "$T/tty.out"; then fail "titles printed as lines on a terminal"; fi
}
tcase progress-bar-on-tty t_tty

finish
