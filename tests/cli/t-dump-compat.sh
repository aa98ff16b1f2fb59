#!/bin/bash
# t-dump-compat.sh - our thin_dump must print exactly the bytes that
# thin-provisioning-tools 1.1.0's thin_dump prints for the same image.
#
# Images: XML from tools/gen-thin-xml.py in many shapes (one device, 300
# devices, snapshots, singles only, long runs, 1024-sector blocks, empty
# devices, no device, a 3-level mapping tree, odd time/transaction),
# restored by the reference thin_restore (1.1.0 and 0.9.0 lay metadata out
# differently, and 0.9.0 makes empty devices share one leaf); 1.x-dialect
# XML with <def>/<ref> restored by 1.1.0, so that leaves are really shared
# between devices; and the kernel-written fixtures, compared with golden
# 1.1.0 output (always) and with the live 1.1.0 binary (when installed).
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

SIZE=8M

# key | restorers | generator arguments
SHAPES='one|1x 09|--devices 1 --mappings-per-device 3000 --seed 1
many|1x 09|--devices 300 --mappings-per-device 12 --seed 2
snaps|1x 09|--devices 2 --snapshots 3 --mappings-per-device 1500 --share-fraction 0.6 --seed 3
singles|1x 09|--devices 2 --mappings-per-device 1500 --run-length 1 --seed 4
longruns|1x 09|--devices 1 --snapshots 1 --mappings-per-device 20000 --run-length 2000 --seed 5
bigblock|1x 09|--devices 2 --snapshots 1 --mappings-per-device 1500 --data-block-size 1024 --seed 6
empty|1x 09|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7
nodevs|1x 09|--devices 0
deep|1x 09|--devices 1 --snapshots 1 --share-fraction 0.9 --mappings-per-device 70000 --run-length 8 --seed 12
timetx|1x 09|--devices 2 --snapshots 2 --mappings-per-device 400 --time 9 --transaction 77 --seed 10
defs|1x|--dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8
defs-empty|1x|--dialect 1.x --devices 1 --snapshots 2 --mappings-per-device 2000 --share-chunk 700 --empty-devices 2 --share-empty --seed 9'

# shape_args KEY: the generator arguments of a shape.
shape_args() {
    printf '%s\n' "$SHAPES" | awk -F'|' -v k="$1" '$1 == k { print $3 }'
}

# shape_image KEY RESTORER: sets IMAGE (and XML).
shape_image() {
    local args
    args=$(shape_args "$1")
    # shellcheck disable=SC2086
    cached_image "$1" "$2" "$SIZE" $args
}

# dev_ids: the dev_id values of $XML, one per line.
dev_ids() {
    grep -o 'dev_id="[0-9]*"' "$XML" | cut -d'"' -f2
}

# compare_with_ref IMAGE ARGS...: ours and 1.1.0's `thin_dump ARGS IMAGE` agree.
compare_with_ref() {
    local img=$1 rrc
    shift
    need_ref 1x
    need_bin thin_dump
    "$REF_1X/thin_dump" "$@" "$img" >"$T/expected" 2>"$T/expected.err"
    rrc=$?
    [ "$rrc" -eq 0 ] || fail "reference thin_dump $* failed ($rrc): $(head -c 300 "$T/expected.err")"
    run "$BIN/thin_dump" "$@" "$img"
    [ "$RC" -eq 0 ] || fail "thin_dump $* exited $RC (1.1.0: 0)"
    expect_stderr_empty
    expect_same "$T/expected" "$STDOUT" "thin_dump${*:+ $*}"
}

# compare_with_golden GOLDEN IMAGE ARGS...: ours equals a stored 1.1.0 output.
compare_with_golden() {
    local golden=$1 img=$2
    shift 2
    [ -f "$golden" ] || fail "golden file $golden is missing (fixtures/kernel/make-golden.sh)"
    need_bin thin_dump
    run "$BIN/thin_dump" "$@" "$img"
    [ "$RC" -eq 0 ] || fail "thin_dump $* exited $RC (1.1.0: 0)"
    expect_stderr_empty
    expect_same "$golden" "$STDOUT" "thin_dump $* vs $(basename "$golden")"
}

# ------------------------------------------------------------ generated images

t_shape() {   # KEY RESTORER MODE
    local key=$1 which=$2 mode=$3
    local ids first last mid
    shape_image "$key" "$which"
    mapfile -t ids < <(dev_ids)
    if [ ${#ids[@]} -gt 0 ]; then
        first=${ids[0]}
        last=${ids[${#ids[@]} - 1]}
        mid=${ids[${#ids[@]} / 2]}
    else
        first=0 last=0 mid=0
    fi
    case $mode in
        xml) compare_with_ref "$IMAGE" ;;
        human) compare_with_ref "$IMAGE" -f human_readable ;;
        format-xml) compare_with_ref "$IMAGE" --format xml ;;
        skip-mappings) compare_with_ref "$IMAGE" --skip-mappings ;;
        skip-mappings-human) compare_with_ref "$IMAGE" --skip-mappings -f human_readable ;;
        dev-id-one) compare_with_ref "$IMAGE" --dev-id "$mid" ;;
        dev-id-several) compare_with_ref "$IMAGE" --dev-id "$last" --dev-id "$first" --dev-id "$mid" --dev-id "$last" ;;
        dev-id-unknown) compare_with_ref "$IMAGE" --dev-id 999999 ;;
        dev-id-mixed) compare_with_ref "$IMAGE" --dev-id 999999 --dev-id "$first" ;;
        dev-id-human) compare_with_ref "$IMAGE" -f human_readable --dev-id "$first" --dev-id "$last" ;;
        dev-id-skip) compare_with_ref "$IMAGE" --skip-mappings --dev-id "$first" ;;
        *) fail "unknown mode $mode" ;;
    esac
}

MODES='xml human skip-mappings dev-id-one dev-id-several dev-id-unknown dev-id-mixed dev-id-human'
while IFS='|' read -r key restorers _; do
    for which in $restorers; do
        for mode in $MODES; do
            tcase "$key.$which-restore.$mode" t_shape "$key" "$which" "$mode"
        done
    done
done <<<"$SHAPES"
# A few extra spellings, on one shape each.
tcase "snaps.1x-restore.format-xml" t_shape snaps 1x format-xml
tcase "snaps.1x-restore.skip-mappings-human" t_shape snaps 1x skip-mappings-human
tcase "defs.1x-restore.dev-id-skip" t_shape defs 1x dev-id-skip
tcase "empty.09-restore.dev-id-skip" t_shape empty 09 dev-id-skip

# The <def>/<ref> shapes must really share leaves once restored, or the
# cases above prove nothing about sharing.
t_defs_are_shared() {
    local key=$1 n
    need_ref 1x
    shape_image "$key" 1x
    "$REF_1X/thin_dump" "$IMAGE" >"$T/ref.xml" || fail "reference thin_dump failed"
    n=$(grep -c '<def ' "$T/ref.xml")
    [ "$n" -ge 2 ] || fail "1.1.0 dump of the restored $key image has $n defs, expected >= 2"
    python3 "$POKE" leaves "$IMAGE" >"$T/leaves" || fail "meta-poke leaves failed"
    # some leaf block must appear in the lists of two devices
    awk '{ for (i = 2; i <= NF; i++) seen[$i]++ } END { for (b in seen) if (seen[b] > 1) s++; exit !s }' \
        "$T/leaves" || fail "no leaf block is shared between devices in the restored $key image"
}
tcase "defs.leaves-really-shared" t_defs_are_shared defs
tcase "defs-empty.leaves-really-shared" t_defs_are_shared defs-empty

# needs_check set: 1.1.0 prints flags="1" (and 1 in the human-readable line).
t_needs_check() {
    local mode=$1
    shape_image snaps 1x
    cp "$IMAGE" "$T/nc.meta"
    python3 "$POKE" set "$T/nc.meta" 0 4 4 1 --fix-csum || fail "cannot set needs_check"
    case $mode in
        xml) compare_with_ref "$T/nc.meta" ;;
        human) compare_with_ref "$T/nc.meta" -f human_readable ;;
    esac
}
tcase "needs-check.xml" t_needs_check xml
tcase "needs-check.human" t_needs_check human

# Superblock overrides: 1.1.0 takes max(given, on-disk) for the transaction
# id and nr_data_blocks, replaces the data block size, and ignores all three
# under -m.
t_override() {   # ARGS...
    shape_image timetx 1x
    compare_with_ref "$IMAGE" "$@"
}
tcase override.transaction-id-larger t_override --transaction-id 2345
tcase override.transaction-id-smaller t_override --transaction-id 3
tcase override.nr-data-blocks-larger t_override --nr-data-blocks 234500
tcase override.nr-data-blocks-smaller t_override --nr-data-blocks 10
tcase override.data-block-size-larger t_override --data-block-size 8192
tcase override.data-block-size-odd t_override --data-block-size 64
tcase override.all-human t_override -f human_readable --transaction-id 100 --nr-data-blocks 99999 --data-block-size 256
tcase override.all-skip-mappings t_override --skip-mappings --transaction-id 100 --nr-data-blocks 99999 --data-block-size 256

t_override_m() {
    kernel_image 03-msnap-held
    compare_with_ref "$IMAGE" -m --transaction-id 100 --nr-data-blocks 99999 --data-block-size 256
}
tcase override.ignored-under-m t_override_m

# ------------------------------------------------------------ kernel fixtures

KERNEL='01-fresh 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut'
HELD='03-msnap-held 05-msnap-held-powercut'

t_kernel_golden() {   # NAME VARIANT
    local name=$1 variant=$2 dir=$FIXTURES/kernel
    kernel_image "$name"
    case $variant in
        xml) compare_with_golden "$dir/$name.dump.xml" "$IMAGE" ;;
        human) compare_with_golden "$dir/$name.dump.human" "$IMAGE" -f human_readable ;;
        m-xml) compare_with_golden "$dir/$name.dump-m.xml" "$IMAGE" -m ;;
        m-human) compare_with_golden "$dir/$name.dump-m.human" "$IMAGE" -m -f human_readable ;;
        m-long) compare_with_golden "$dir/$name.dump-m.xml" "$IMAGE" --metadata-snap ;;
    esac
}

t_kernel_live() {   # NAME ARGS...
    local name=$1
    shift
    kernel_image "$name"
    compare_with_ref "$IMAGE" "$@"
}

# The golden files must still be what 1.1.0 prints (else regenerate them).
t_golden_current() {
    local name=$1 dir=$FIXTURES/kernel f args
    need_ref 1x
    kernel_image "$name"
    for f in dump.xml dump.human dump-m.xml dump-m.human; do
        [ -f "$dir/$name.$f" ] || continue
        case $f in
            dump.xml) args=() ;;
            dump.human) args=(-f human_readable) ;;
            dump-m.xml) args=(-m) ;;
            dump-m.human) args=(-m -f human_readable) ;;
        esac
        "$REF_1X/thin_dump" "${args[@]}" "$IMAGE" >"$T/ref.$f" || fail "reference thin_dump ${args[*]} failed"
        expect_same "$dir/$name.$f" "$T/ref.$f" "golden $name.$f (regenerate: fixtures/kernel/make-golden.sh)"
    done
}

for k in $KERNEL; do
    tcase "kernel.$k.golden-current" t_golden_current "$k"
    tcase "kernel.$k.xml" t_kernel_golden "$k" xml
    tcase "kernel.$k.human" t_kernel_golden "$k" human
    tcase "kernel.$k.skip-mappings" t_kernel_live "$k" --skip-mappings
done
for k in 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut; do
    tcase "kernel.$k.dev-id-0" t_kernel_live "$k" --dev-id 0
    tcase "kernel.$k.dev-id-10" t_kernel_live "$k" --dev-id 10
    tcase "kernel.$k.dev-id-0-10" t_kernel_live "$k" --dev-id 10 --dev-id 0 --dev-id 10
    tcase "kernel.$k.dev-id-0-11" t_kernel_live "$k" --dev-id 0 --dev-id 11
    tcase "kernel.$k.dev-id-1-11-human" t_kernel_live "$k" -f human_readable --dev-id 1 --dev-id 11
    tcase "kernel.$k.dev-id-99" t_kernel_live "$k" --dev-id 99
done
for k in $HELD; do
    tcase "kernel.$k.m-xml" t_kernel_golden "$k" m-xml
    tcase "kernel.$k.m-human" t_kernel_golden "$k" m-human
    tcase "kernel.$k.metadata-snap" t_kernel_golden "$k" m-long
    tcase "kernel.$k.m-dev-id-10" t_kernel_live "$k" -m --dev-id 10
    tcase "kernel.$k.m-dev-id-0-10" t_kernel_live "$k" -m --dev-id 0 --dev-id 10
    tcase "kernel.$k.m-skip-mappings" t_kernel_live "$k" -m --skip-mappings
done

finish
