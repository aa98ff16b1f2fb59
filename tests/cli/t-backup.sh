#!/bin/bash
# t-backup.sh - incremental backup from metadata snapshots, end to end on
# files (docs/incremental-backup.md): a pool made with thin_pool and a data
# file; a thin snapshot of the origin is the backup base; a held metadata
# snapshot makes the metadata still while it is read; a full backup copies
# the base's mapped blocks; later an incremental one copies only what the
# tree diff between the old base and a new snapshot says changed, and punches
# holes where blocks went.  The image then equals the new snapshot byte for
# byte (thin_pool read of every block).  Done with thin_backup, and with a
# plain script of thin_delta XML, thin_dump XML and dd, to show the tools
# compose.  Also: why the base must be a thin snapshot (a tree diff cannot
# see blocks overwritten in place), the image's state guard, bad input.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

BB=65536   # 128-sector data blocks

need_tools() {
    need_bin thin_pool
    need_bin thin_backup
    need_bin thin_delta
    need_bin thin_dump
}

# tp ARGS...: thin_pool on the case's pool ($T/m, $T/d).
tp() {
    run_ok "$BIN/thin_pool" "$T/m" --data "$T/d" "$@"
}

newpool() {   # NR_BLOCKS
    rm -f "$T/m" "$T/d"
    truncate -s 8M "$T/m" || fail "cannot create $T/m"
    truncate -s $(($1 * BB)) "$T/d" || fail "cannot create $T/d"
    tp format --data-block-size 128 --nr-data-blocks "$1"
}

# expect_image IMG ID: IMG is device ID, byte for byte, over IMG's length
# (and IMG covers ID's highest mapped block).
expect_image() {
    local img=$1 id=$2 n
    n=$(($(stat -c %s "$img") / BB))
    [ $((n * BB)) -eq "$(stat -c %s "$img")" ] || fail "$img is not a whole number of blocks"
    run_ok "$BIN/thin_pool" "$T/m" --data "$T/d" read "$id" 0 $((n + 8)) -o "$T/.dev"
    head -c $((n * BB)) "$T/.dev" >"$T/.dev-head"
    expect_same "$T/.dev-head" "$img" "image vs device $id"
    tail -c +$((n * BB + 1)) "$T/.dev" | cmp -s - <(head -c $((8 * BB)) /dev/zero) ||
        fail "device $id has mapped blocks past the end of $img"
}

# delta_counts BASE ID: "COPY DISCARD" from thin_delta -m (held snapshot).
delta_counts() {
    "$BIN/thin_delta" -m --snap1 "$1" --snap2 "$2" "$T/m" >"$T/.delta" || fail "thin_delta failed"
    awk -F'"' '/<(different|right_only) /{c += $4} /<left_only /{d += $4} END {print c + 0, d + 0}' "$T/.delta"
}

# ------------------------------------------------------------------ the copiers

# thin_backup: full ID IMG / incremental BASE ID IMG (from the held snapshot)
tb_full() {
    run_ok "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id "$1" -m -o "$2"
    expect_stdout_match "^full backup of device $1: [0-9]+ blocks copied \([0-9]+ bytes\)$"
}

tb_incremental() {
    local want
    want=$(delta_counts "$1" "$2")
    run_ok "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id "$1" --dev-id "$2" -m -o "$3"
    # only the blocks the tree diff names are copied
    expect_stdout_match "^incremental backup of device $2 over device $1: ${want% *} blocks copied, ${want#* } blocks discarded \($((${want% *} * BB)) bytes\)$"
}

# The same with the 1.1.0-compatible tools and dd: thin_dump gives the
# mappings, thin_delta the changed ranges.  (A user's script would be this.)
sh_full() {   # ID IMG
    local id=$1 img=$2 bs
    "$BIN/thin_dump" -m --dev-id "$id" "$T/m" >"$T/.map" || fail "thin_dump failed"
    bs=$(($(sed -n 's/.*data_block_size="\([0-9]*\)".*/\1/p' "$T/.map" | head -1) * 512))
    rm -f "$img"
    : >"$img"
    awk -F'"' '
        /<single_mapping / {print $2, $4}
        /<range_mapping / {for (i = 0; i < $6; i++) print $2 + i, $4 + i}' "$T/.map" |
        while read -r vb db; do
            dd if="$T/d" of="$img" bs="$bs" skip="$db" seek="$vb" count=1 conv=notrunc status=none
        done
}

sh_incremental() {   # BASE ID IMG
    local base=$1 id=$2 img=$3 bs
    "$BIN/thin_delta" -m --snap1 "$base" --snap2 "$id" "$T/m" >"$T/.delta" || fail "thin_delta failed"
    "$BIN/thin_dump" -m --dev-id "$id" "$T/m" >"$T/.map" || fail "thin_dump failed"
    bs=$(($(sed -n 's/.*data_block_size="\([0-9]*\)".*/\1/p' "$T/.delta") * 512))
    # left_only: the blocks went; zero them (within the image)
    awk -F'"' '/<left_only /{print $2, $4}' "$T/.delta" |
        while read -r begin len; do
            fallocate -p -o $((begin * bs)) -l $((len * bs)) "$img"
        done
    # different, right_only: copy from the data blocks the new tree names
    awk -F'"' '
        FNR == NR && /<(different|right_only) / {for (i = 0; i < $4; i++) want[$2 + i] = 1; next}
        FNR != NR && /<single_mapping / {if ($2 in want) print $2, $4}
        FNR != NR && /<range_mapping / {for (i = 0; i < $6; i++) if (($2 + i) in want) print $2 + i, $4 + i}
    ' "$T/.delta" "$T/.map" |
        while read -r vb db; do
            dd if="$T/d" of="$img" bs="$bs" skip="$db" seek="$vb" count=1 conv=notrunc status=none
        done
}

# ------------------------------------------------------------------ end to end

# backup_cycle full|incremental: the workflow of docs/incremental-backup.md,
# three backups; the copier is thin_backup (tb) or the script (sh).
t_cycle() {
    local how=$1 img=$T/img
    need_tools
    need_cmd python3 fallocate
    newpool 4000
    tp create_thin 1
    tp write 1 0 400 --tag r0
    tp write 1 1000 50 --tag r0
    tp write 1 3000 --tag r0 --offset 0 --length 4096

    # backup 1: a snapshot as the base, read through a held metadata snapshot
    tp create_snap 100 1
    tp reserve_metadata_snap
    tp write 1 0 3 --tag live          # the origin goes on changing
    "${how}_full" 100 "$img"
    tp release_metadata_snap
    expect_image "$img" 100

    # round 1: copy-on-write (whole and partial), in place after that,
    # new blocks, discards, a discarded block written again
    tp write 1 10 20 --tag r1
    tp write 1 12 3 --tag r1b
    tp write 1 50 --tag r1p --offset 100 --length 10
    tp write 1 2000 30 --tag r1
    tp discard 1 1000 25
    tp discard 1 300 10
    tp write 1 305 --tag r1
    tp create_snap 101 1
    tp reserve_metadata_snap
    tp write 1 60 5 --tag live
    "${how}_incremental" 100 101 "$img"
    tp release_metadata_snap
    tp delete 100
    expect_image "$img" 101

    # round 2: the tail goes, more changes; the image keeps its length,
    # the blocks that went read as zeroes
    tp discard 1 2000 30
    tp discard 1 3000
    tp write 1 399 3 --tag r2
    tp write 1 12 --tag r2 --offset 60000 --length 5536
    tp create_snap 102 1
    tp reserve_metadata_snap
    "${how}_incremental" 101 102 "$img"
    tp release_metadata_snap
    tp delete 101
    expect_image "$img" 102

    # the increments add up to what a full backup of the last base gives
    tp reserve_metadata_snap
    "${how}_full" 102 "$T/full"
    tp release_metadata_snap
    expect_image "$T/full" 102
    cmp -s "$T/full" "$img" 2>/dev/null || cmp -s "$T/full" <(head -c "$(stat -c %s "$T/full")" "$img") ||
        fail "the incremental image differs from a full backup"
    # and the origin, unchanged since the last snapshot but for the 'live' writes
    tp read 1 60 5 -o "$T/live"
    yes "dev 1 block 60 tag live" | head -c "$BB" | cmp -s - <(head -c "$BB" "$T/live") ||
        fail "the origin lost a write made during a backup"
}

# The full image is sparse: unmapped blocks are holes, and so are zero blocks.
t_full_sparse() {
    need_tools
    newpool 100
    tp create_thin 1
    tp write 1 5 --tag x
    tp write 1 90 --tag y --offset 0 --length 10
    run_ok "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 1 -o "$T/img"
    expect_stdout_match '^full backup of device 1: 2 blocks copied \(131072 bytes\)$'
    [ "$(stat -c %s "$T/img")" -eq $((91 * BB)) ] || fail "the image is not 91 blocks long"
    expect_image "$T/img" 1
    used=$(($(stat -c %b "$T/img") * $(stat -c %B "$T/img")))
    [ "$used" -le $((3 * BB)) ] || fail "the image uses $used bytes on disk: holes were written"
    # an empty device: an empty image
    tp create_thin 2
    run_ok "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 2 -o "$T/empty" -q
    expect_stdout_empty
    if [ ! -f "$T/empty" ] || [ -s "$T/empty" ]; then
        fail "the image of an empty device is not empty"
    fi
    # a full backup replaces an older image and its state
    run_ok "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 2 -o "$T/img" -q
    [ ! -s "$T/img" ] || fail "the old image was not replaced"
    grep -q '^image dev_id 2 ' "$T/img.thin_backup" || fail "the state file names the wrong device"
    [ -z "$(find "$T" -maxdepth 1 -regextype egrep -regex '.*/(img|empty)\.[A-Za-z0-9]{6}')" ] ||
        fail "a temporary file was left behind"
}

# Why the base is a thin snapshot: after reserve_metadata_snap, a write to a
# block the device alone maps goes in place; the held snapshot's tree and the
# live tree map it to the same data block, so a tree diff says "same" though
# the bytes changed.  1.1.0's thin_delta says the same.  A thin snapshot makes
# the write copy, and the diff sees it.
t_why_a_thin_snapshot() {
    need_tools
    need_cmd python3
    newpool 100
    tp create_thin 1
    tp write 1 0 10 --tag a
    tp reserve_metadata_snap
    tp write 1 3 --tag b
    tp write 1 20 --tag b            # a new block: the live tree is a new one
    held=$(python3 "$POKE" leaves "$T/m" --snap | awk '$1 == 1 {print $2}')
    live=$(python3 "$POKE" leaves "$T/m" | awk '$1 == 1 {print $2}')
    if [ -z "$held" ] || [ -z "$live" ] || [ "$held" = "$live" ]; then
        fail "cannot find the two trees' roots"
    fi
    for td in "$BIN/thin_delta" "$REF_1X/thin_delta"; do
        [ -x "$td" ] || continue
        run_ok "$td" --root1 "$held" --root2 "$live" "$T/m"
        expect_stdout_match '<same begin="0" length="10"/>'
        expect_stdout_match '<right_only begin="20" length="1"/>'
    done
    tp read 1 3 --raw
    yes "dev 1 block 3 tag b" | head -c "$BB" | cmp -s - "$STDOUT" || fail "block 3 was not rewritten"
    tp release_metadata_snap
    # with a thin snapshot as the base
    tp create_snap 2 1
    tp write 1 4 --tag c
    tp reserve_metadata_snap
    run_ok "$BIN/thin_delta" -m --snap1 2 --snap2 1 "$T/m"
    expect_stdout_match '<different begin="4" length="1"/>'
}

# ------------------------------------------------------------------ the state guard

setup_two_snaps() {
    newpool 200
    tp create_thin 1
    tp write 1 0 20 --tag a
    tp create_snap 10 1
    run_ok "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 10 -o "$T/img"
    tp write 1 5 --tag b
    tp create_snap 11 1
    remember_sum "$T/img"
    remember_sum "$T/img.thin_backup"
}

t_state_guard() {
    need_tools
    setup_two_snaps
    # the image holds 10, not 1
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 1 --dev-id 11 -o "$T/img"
    expect_stderr_match 'img holds device 10 \(created at time 1, 20 mapped blocks\), but --base-id is device 1 .*not this image.s base'
    expect_unchanged "$T/img"
    expect_unchanged "$T/img.thin_backup"
    # base 10 deleted and made again: another device under the same id
    tp delete 10
    tp create_snap 10 1
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 10 --dev-id 11 -o "$T/img"
    expect_stderr_match 'img holds device 10 \(created at time 1, 20 mapped blocks\), but --base-id is device 10 \(created at time 3'
    expect_unchanged "$T/img"
    # no state: no incremental
    cp "$T/img" "$T/other"
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 10 --dev-id 11 -o "$T/other"
    expect_stderr_match 'no state file .*other.thin_backup: make the image with thin_backup full first'
    printf 'garbage\n' >"$T/other.thin_backup"
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 10 --dev-id 11 -o "$T/other"
    expect_stderr_match 'not a thin_backup state file \(line 1\)'
}

# An incremental that broke off part way (here: the image may not grow past
# 1 MiB) may only be run again as it was, and that run finishes it.
t_interrupted() {
    need_tools
    setup_two_snaps
    tp write 1 100 --tag c
    tp create_snap 12 1
    (
        trap '' XFSZ
        ulimit -f 1024
        exec "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 10 --dev-id 12 -o "$T/img"
    ) >"$STDOUT" 2>"$STDERR"
    RC=$?
    LAST_CMD="thin_backup incremental (ulimit -f 1024)"
    [ "$RC" -eq 1 ] || fail "expected exit 1 from an incremental backup that cannot write, got $RC"
    expect_stderr_match 'img: cannot write block 100: File too large'
    grep -q '^updating dev_id 12 creation_time 3 mapped_blocks 21$' "$T/img.thin_backup" ||
        fail "the state does not say the image is being updated to device 12"
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 10 --dev-id 11 -o "$T/img"
    expect_stderr_match 'an incremental backup to device 12 .* broke off part way: run it again'
    run_ok "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 10 --dev-id 12 -o "$T/img"
    expect_image "$T/img" 12
    grep -q updating "$T/img.thin_backup" && fail "the state still says updating"
    grep -q '^image dev_id 12 creation_time 3 mapped_blocks 21$' "$T/img.thin_backup" ||
        fail "the state does not name device 12"
}

# ------------------------------------------------------------------ bad input

t_bad_input() {
    need_tools
    need_cmd python3
    newpool 200
    tp create_thin 1
    tp write 1 0 150 --tag a
    b=(--metadata "$T/m" --data "$T/d")

    run_fail "$BIN/thin_backup" full "${b[@]}" --dev-id 99 -o "$T/img"
    expect_stderr_match 'm: --dev-id 99: no such thin device in the metadata$'
    expect_absent "$T/img"
    run_fail "$BIN/thin_backup" full "${b[@]}" --dev-id 1 -m -o "$T/img"
    expect_stderr_match 'no current metadata snapshot'
    run_fail "$BIN/thin_backup" full --metadata "$T/nothere" --data "$T/d" --dev-id 1 -o "$T/img"
    expect_stderr_match 'nothere'
    run_fail "$BIN/thin_backup" full --metadata "$T/m" --data "$T/nothere" --dev-id 1 -o "$T/img"
    expect_stderr_match 'nothere: No such file or directory'
    run_fail "$BIN/thin_backup" full --metadata "$T/m" --data "$T/m" --dev-id 1 -o "$T/img"
    expect_stderr_match 'the data device is the metadata device'
    truncate -s $((100 * BB)) "$T/small"
    run_fail "$BIN/thin_backup" full --metadata "$T/m" --data "$T/small" --dev-id 1 -o "$T/img"
    expect_stderr_match 'too small for the pool.s 200 data blocks'
    remember_sum "$T/d"
    run_fail "$BIN/thin_backup" full "${b[@]}" --dev-id 1 -o "$T/d"
    expect_stderr_match 'would overwrite the pool.s metadata or data'
    expect_unchanged "$T/d"
    run_fail "$BIN/thin_backup" full "${b[@]}" --dev-id 1 -o "$T"
    expect_stderr_match 'not a regular file'
    expect_absent "$T/img"
    run_fail "$BIN/thin_backup" incremental "${b[@]}" --base-id 7 --dev-id 1 -o "$T/img"
    expect_stderr_match -- '--base-id 7: no such thin device'
    "$BIN/thin_dump" "$T/m" >"$T/x.xml"
    run_fail "$BIN/thin_backup" full --metadata "$T/x.xml" --data "$T/d" --dev-id 1 -o "$T/img"
    expect_absent "$T/img"

    # usage
    run_usage "$BIN/thin_backup"
    run_usage "$BIN/thin_backup" copy "${b[@]}" --dev-id 1 -o "$T/img"
    run_usage "$BIN/thin_backup" full "${b[@]}" -o "$T/img"
    run_usage "$BIN/thin_backup" full "${b[@]}" --dev-id 1
    run_usage "$BIN/thin_backup" full "${b[@]}" --dev-id x -o "$T/img"
    run_usage "$BIN/thin_backup" full "${b[@]}" --dev-id 1 --base-id 0 -o "$T/img"
    run_usage "$BIN/thin_backup" incremental "${b[@]}" --dev-id 1 -o "$T/img"
    run_usage "$BIN/thin_backup" full "${b[@]}" --dev-id 1 -o "$T/img" extra
    run_ok "$BIN/thin_backup" --help
    expect_stdout_match 'incremental'
}

# Damaged metadata: a clean error, no image (full) or an untouched one
# (incremental).
t_damaged() {
    need_tools
    need_cmd python3
    newpool 1000
    tp create_thin 1
    tp write 1 0 300 --tag a
    tp create_snap 2 1
    run_ok "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 2 -o "$T/img"
    tp write 1 0 300 --tag b          # every leaf of 1 is its own now
    cp "$T/m" "$T/good"
    remember_sum "$T/img"
    remember_sum "$T/img.thin_backup"
    leaf=$(python3 "$POKE" leaves "$T/m" | awk '$1 == 1 {print $3}')
    [ -n "$leaf" ] || fail "no second leaf for device 1"

    # a bad checksum
    python3 "$POKE" flip "$T/m" "$leaf" 100 || fail "meta-poke failed"
    run_fail "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 1 -o "$T/new"
    expect_stderr_match "block $leaf"
    expect_absent "$T/new"
    [ -z "$(find "$T" -maxdepth 1 -name 'new.*')" ] || fail "a temporary file was left behind"
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 2 --dev-id 1 -o "$T/img"
    expect_stderr_match "block $leaf"
    expect_unchanged "$T/img"
    expect_unchanged "$T/img.thin_backup"

    # a mapping past the data device (checksum made right)
    cp "$T/good" "$T/m"
    python3 "$POKE" set "$T/m" "$leaf" 2048 8 $((123456 << 24)) --fix-csum || fail "meta-poke failed"
    run_fail "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 1 -o "$T/new"
    expect_stderr_match 'device 1 maps block [0-9]+ to data block 123456, past the end of the data device \(1000 blocks\)'
    expect_absent "$T/new"
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 2 --dev-id 1 -o "$T/img"
    expect_stderr_match 'data block 123456, past the end of the data device'
    expect_unchanged "$T/img"
    expect_unchanged "$T/img.thin_backup"

    # a block past the largest possible image file (the last key, order kept)
    cp "$T/good" "$T/m"
    last=$(python3 "$POKE" leaves "$T/m" | awk '$1 == 1 {print $NF}')
    n=$(python3 -c 'import struct, sys
f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2]) * 4096 + 16)
print(struct.unpack("<I", f.read(4))[0])' "$T/m" "$last")
    python3 "$POKE" set "$T/m" "$last" $((32 + 8 * (n - 1))) 8 $((1 << 62)) --fix-csum || fail "meta-poke failed"
    run_fail "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 1 -o "$T/new"
    expect_stderr_match "device 1 maps block $((1 << 62)), past the largest possible image file"
    expect_absent "$T/new"
    run_fail "$BIN/thin_backup" incremental --metadata "$T/m" --data "$T/d" --base-id 2 --dev-id 1 -o "$T/img"
    expect_stderr_match "device 1 maps block $((1 << 62)), past the largest possible image file"
    expect_unchanged "$T/img"
    expect_unchanged "$T/img.thin_backup"

    # a zeroed superblock
    cp "$T/good" "$T/m"
    python3 "$POKE" zero "$T/m" 0 || fail "meta-poke failed"
    run_fail "$BIN/thin_backup" full --metadata "$T/m" --data "$T/d" --dev-id 1 -o "$T/new"
    expect_stderr_nonempty
    expect_absent "$T/new"
}

# Hostile metadata (tools/damage-matrix.py hostile KIND on the kernel's
# fixture 02, every block resealed): thin_backup answers in bounded time
# with exit 0 or a clean exit 1 that says why, and a failed full backup
# leaves no image.
t_hostile() {
    local kind args rc
    need_bin thin_backup
    need_cmd python3 xz
    kernel_image 02-thins-snaps
    truncate -s $((4096 * BB)) "$T/d"
    python3 "$REPO/tools/damage-matrix.py" hostile --list | awk '{print $1}' >"$T/kinds"
    [ -s "$T/kinds" ] || fail "no hostile kinds"
    while read -r kind; do
        cp "$IMAGE" "$T/h.img"
        [ "$kind" = fanout ] && continue   # needs a restored pool (t-hostile.sh)
        python3 "$REPO/tools/damage-matrix.py" hostile "$kind" "$T/h.img" || fail "cannot make the $kind image"
        for args in "full --dev-id 0" "full --dev-id 10 -m" "incremental --base-id 10 --dev-id 11" \
                    "incremental --base-id 10 --dev-id 0"; do
            rm -f "$T/img" "$T/img".*
            : >"$T/img"
            printf 'thin_backup 1\ndata_block_size 128\nimage dev_id 10 creation_time 1 mapped_blocks 320\n' \
                >"$T/img.thin_backup"
            [ "${args%% *}" = full ] && rm -f "$T/img" "$T/img.thin_backup"
            # shellcheck disable=SC2086
            run "$BIN/thin_backup" $args --metadata "$T/h.img" --data "$T/d" -o "$T/img"
            rc=$RC
            note "$kind, $args: exit $rc $(head -n 1 "$STDERR")"
            case $rc in
                0) ;;
                1) [ -s "$STDERR" ] || fail "$kind, $args: exit 1 without a message" ;;
                *) fail "$kind, $args: exit $rc: $(head -c 300 "$STDERR")" ;;
            esac
            if [ "$rc" = 1 ] && [ "${args%% *}" = full ]; then
                expect_absent "$T/img"
            elif [ "$rc" = 1 ]; then
                # every metadata read comes before the image is touched
                [ ! -s "$T/img" ] || fail "$kind, $args: the image was written"
                if grep -q updating "$T/img.thin_backup"; then
                    fail "$kind, $args: the state was changed"
                fi
            fi
        done
    done <"$T/kinds"
}

tcase cycle-thin_backup t_cycle tb
tcase cycle-script t_cycle sh
tcase full-sparse t_full_sparse
tcase why-a-thin-snapshot t_why_a_thin_snapshot
tcase state-guard t_state_guard
tcase interrupted t_interrupted
tcase bad-input t_bad_input
tcase damaged t_damaged
tcase hostile t_hostile
finish
