#!/bin/bash
# t-pool-data.sh - thin_pool --data: a pool that lives wholly in two files.
# Writes put known bytes (the stamp "dev ID block B tag TAG\n" repeated)
# into the data blocks they provision; a new block is zeroed around a
# partial write, a copy-on-write copies the old block first, a write to an
# unshared block goes in place; `read` shows a thin device's blocks (zeroes
# where unmapped); the data file must be large enough; the metadata is the
# same with or without a data file; a failed data write commits nothing.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

BB=65536   # 128-sector data blocks

need_pool() {
    need_bin thin_pool
    need_bin thin_dump
}

# newpool META DATA NR_BLOCKS: formatted, with a data file of NR_BLOCKS blocks.
newpool() {
    rm -f "$1" "$2"
    truncate -s 8M "$1" || fail "cannot create $1"
    truncate -s $(($3 * BB)) "$2" || fail "cannot create $2"
    run_ok "$BIN/thin_pool" "$1" --data "$2" format --data-block-size 128 --nr-data-blocks "$3"
}

# tp ARGS...: thin_pool on the case's pool ($T/m, $T/d).
tp() {
    run_ok "$BIN/thin_pool" "$T/m" --data "$T/d" "$@"
}

# stamp DEV BLOCK TAG: the bytes a whole-block write puts there.
stamp() {
    yes "dev $1 block $2 tag $3" | head -c "$BB"
}

# block_of ID VBLOCK: the data block ID's VBLOCK maps to (thin_dump), or "".
block_of() {
    "$BIN/thin_dump" "$T/m" >"$T/.dump" || fail "thin_dump failed"
    python3 - "$T/.dump" "$1" "$2" <<'EOF'
import re, sys
dev, vb, cur = sys.argv[2], int(sys.argv[3]), None
for line in open(sys.argv[1]):
    m = re.search(r'<device dev_id="(\d+)"', line)
    if m:
        cur = m.group(1)
        continue
    if cur != dev:
        continue
    m = re.search(r'origin_(?:begin|block)="(\d+)" data_(?:begin|block)="(\d+)"(?: length="(\d+)")?', line)
    if m:
        o, d, n = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if o <= vb < o + n:
            print(d + vb - o)
EOF
}

# ------------------------------------------------------------------ the data file

t_format_needs_room() {
    need_pool
    truncate -s 8M "$T/m"
    truncate -s $((99 * BB)) "$T/d"
    remember_sum "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" --data "$T/d" format --data-block-size 128 --nr-data-blocks 100
    expect_stderr_match "data file '.*/d' holds 6488064 bytes: 100 data blocks of 65536 bytes need 6553600"
    expect_unchanged "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" --data "$T/nothere" format --data-block-size 128 --nr-data-blocks 1
    expect_stderr_match "data file '.*/nothere': No such file"
    expect_unchanged "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" --data "$T/m" format --data-block-size 128 --nr-data-blocks 1
    expect_stderr_match 'is the metadata file'
    expect_unchanged "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" --data "$T" format --data-block-size 128 --nr-data-blocks 1
    expect_stderr_match 'not a regular file or block device'
    truncate -s $((100 * BB)) "$T/d"
    run_ok "$BIN/thin_pool" "$T/m" --data "$T/d" format --data-block-size 128 --nr-data-blocks 100
    [ "$(stat -c %s "$T/d")" -eq $((100 * BB)) ] || fail "thin_pool changed the data file's size"
    # a data file that shrank since is refused at once
    truncate -s $((50 * BB)) "$T/d"
    run_fail "$BIN/thin_pool" "$T/m" --data "$T/d" status
    expect_stderr_match '100 data blocks of 65536 bytes need 6553600'
}

t_resize_needs_room() {
    need_pool
    newpool "$T/m" "$T/d" 100
    remember_sum "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" --data "$T/d" resize_data 200
    expect_stderr_match '200 data blocks of 65536 bytes need 13107200 \(grow it first'
    expect_unchanged "$T/m"
    truncate -s $((200 * BB)) "$T/d"
    tp resize_data 200
    tp create_thin 1
    tp write 1 0 200 --tag full
    tp read 1 199 --raw
    stamp 1 199 full >"$T/want"
    expect_same "$T/want" "$STDOUT" "block 199, in the grown part of the data file"
}

t_needs_data() {
    need_pool
    newpool "$T/m" "$T/d" 10
    run_ok "$BIN/thin_pool" "$T/m" create_thin 1
    run_usage "$BIN/thin_pool" "$T/m" read 1 0
    expect_stderr_match 'read needs the pool.s data file'
    run_usage "$BIN/thin_pool" "$T/m" write 1 0 --tag x
    run_usage "$BIN/thin_pool" "$T/m" --data
    run_usage "$BIN/thin_pool" "$T/m" --data "$T/d" write 1 0 --tag 'two words'
    run_usage "$BIN/thin_pool" "$T/m" --data "$T/d" write 1 0 --offset 65536
    run_usage "$BIN/thin_pool" "$T/m" --data "$T/d" write 1 0 --offset 65000 --length 600
    run_usage "$BIN/thin_pool" "$T/m" --data "$T/d" write 1 0 --length 0
    run_usage "$BIN/thin_pool" "$T/m" --data "$T/d" read 1 0 --tag x
    run_usage "$BIN/thin_pool" "$T/m" --data "$T/d" write 1 0 1 2
    # a write without --data touches only the metadata, as before
    run_ok "$BIN/thin_pool" "$T/m" write 1 0 3
    [ "$(block_of 1 2)" = 2 ] || fail "block 2 not mapped by a metadata-only write"
}

# ------------------------------------------------------------------ writes and reads

t_write_read() {
    need_pool
    need_cmd hexdump
    newpool "$T/m" "$T/d" 100
    tp create_thin 1
    tp write 1 3 2 --tag first
    tp read 1 3 --raw
    stamp 1 3 first >"$T/want"
    expect_same "$T/want" "$STDOUT" "block 3 as written"
    # several blocks, unmapped ones zero; -o FILE is raw
    tp read 1 2 4 -o "$T/got"
    { head -c "$BB" /dev/zero; stamp 1 3 first; stamp 1 4 first; head -c "$BB" /dev/zero; } >"$T/want"
    expect_same "$T/want" "$T/got" "blocks 2..5"
    # the hex form is hexdump -C's, addressed from the device's first byte
    tp read 1 0 8
    cp "$STDOUT" "$T/hex"
    tp read 1 0 8 --raw
    hexdump -C "$STDOUT" >"$T/want"
    expect_same "$T/want" "$T/hex" "read's hex output vs hexdump -C"
    grep -q '^00030000  64 65 76 20 31 20 62 6c  6f 63 6b 20 33 20 74 61  |dev 1 block 3 ta|$' "$T/hex" ||
        fail "block 3 does not start at address 0x30000 in the hex output"
    # the data block holds the bytes: they are in the data file where the mapping says
    db=$(block_of 1 4)
    [ -n "$db" ] || fail "block 4 is not mapped"
    dd if="$T/d" of="$T/raw" bs="$BB" skip="$db" count=1 status=none
    stamp 1 4 first >"$T/want"
    expect_same "$T/want" "$T/raw" "data block $db in the data file"
    run_fail "$BIN/thin_pool" "$T/m" --data "$T/d" read 7 0
    expect_stderr_match 'thin device 7 does not exist'
}

t_partial_writes() {
    need_pool
    newpool "$T/m" "$T/d" 100
    tp create_thin 1
    # a partial write to an unmapped block: zeroes around it
    tp write 1 0 --tag a --offset 1000 --length 24
    tp read 1 0 --raw
    { head -c 1000 /dev/zero; stamp 1 0 a | tail -c +1001 | head -c 24; head -c $((BB - 1024)) /dev/zero; } >"$T/want"
    expect_same "$T/want" "$STDOUT" "partial write to a new block"
    # even when the data block held something before (discarded, reused)
    tp write 1 1 99 --tag old
    tp discard 1 1 99
    tp write 1 200 --tag b --offset 0 --length 10   # the cursor wraps to a used block
    tp read 1 200 --raw
    { stamp 1 200 b | head -c 10; head -c $((BB - 10)) /dev/zero; } >"$T/want"
    expect_same "$T/want" "$STDOUT" "partial write to a reused data block"
    # in place: the data block stays, the bytes around the write stay
    tp write 1 5 --tag c
    before=$(block_of 1 5)
    tp write 1 5 --tag d --offset 4096 --length 4096
    [ "$(block_of 1 5)" = "$before" ] || fail "an unshared block moved on write"
    tp read 1 5 --raw
    { stamp 1 5 c | head -c 4096; stamp 1 5 d | tail -c +4097 | head -c 4096; stamp 1 5 c | tail -c +8193; } >"$T/want"
    expect_same "$T/want" "$STDOUT" "in-place partial write"
}

t_copy_on_write() {
    need_pool
    newpool "$T/m" "$T/d" 100
    tp create_thin 1
    tp write 1 0 4 --tag orig
    tp create_snap 2 1
    # partial write to the origin: copied, then written over
    tp write 1 1 --tag new --offset 100 --length 200
    tp read 1 1 --raw
    { stamp 1 1 orig | head -c 100; stamp 1 1 new | tail -c +101 | head -c 200; stamp 1 1 orig | tail -c +301; } >"$T/want"
    expect_same "$T/want" "$STDOUT" "origin after a partial copy-on-write"
    [ "$(block_of 1 1)" != "$(block_of 2 1)" ] || fail "the write did not break sharing"
    tp read 2 1 --raw
    stamp 1 1 orig >"$T/want"
    expect_same "$T/want" "$STDOUT" "the snapshot keeps the old bytes"
    # whole-block write to the snapshot
    tp write 2 2 --tag snap
    tp read 2 2 --raw
    stamp 2 2 snap >"$T/want"
    expect_same "$T/want" "$STDOUT" "snapshot after a whole-block write"
    tp read 1 2 --raw
    stamp 1 2 orig >"$T/want"
    expect_same "$T/want" "$STDOUT" "the origin keeps its block"
    # a second write to the copied block goes in place
    b=$(block_of 1 1)
    tp write 1 1 --tag again --offset 0 --length 50
    [ "$(block_of 1 1)" = "$b" ] || fail "a block already copied was copied again"
    # discard: reads as zeroes again
    tp discard 1 0 4
    tp read 1 0 4 -o "$T/got"
    head -c $((4 * BB)) /dev/zero >"$T/want"
    expect_same "$T/want" "$T/got" "discarded blocks"
    tp read 2 0 --raw
    stamp 1 0 orig >"$T/want"
    expect_same "$T/want" "$STDOUT" "the snapshot after the origin's discard"
}

# The data file changes nothing in the metadata.
t_same_metadata() {
    need_pool
    cat >"$T/s.tp" <<'EOF'
format --data-block-size 128 --nr-data-blocks 2000
create_thin 0
write 0 0 600 --tag x
create_snap 1 0
write 0 10 20
write 1 100 30 --tag y --offset 512 --length 512
reserve_metadata_snap
discard 0 200 100
write 0 2000 5
delete 1
EOF
    sed 's/ --tag.*//' "$T/s.tp" >"$T/plain.tp"
    truncate -s 8M "$T/a" "$T/b"
    truncate -s $((2000 * BB)) "$T/d"
    run_ok "$BIN/thin_pool" "$T/a" --data "$T/d" --script "$T/s.tp"
    run_ok "$BIN/thin_pool" "$T/b" --script "$T/plain.tp"
    cmp -s "$T/a" "$T/b" || fail "the metadata differs with a data file: $(cmp "$T/a" "$T/b" | head -1)"
}

# run --data: deterministic, and every block holds its own virtual block's
# stamp (copy-on-write copied it to the right place).
t_run_data() {
    need_pool
    for x in 1 2; do
        newpool "$T/m$x" "$T/d$x" 3000
        run_ok "$BIN/thin_pool" "$T/m$x" --data "$T/d$x" run --ops 400 --seed 7
    done
    cmp -s "$T/m1" "$T/m2" || fail "two runs left different metadata"
    cmp -s "$T/d1" "$T/d2" || fail "two runs left different data"
    run_ok "$BIN/thin_dump" "$T/m1"
    python3 - "$STDOUT" "$T/d1" <<'EOF' || fail "a mapped block does not hold its virtual block's stamp"
import re, sys
BB = 65536
data = open(sys.argv[2], 'rb')
bad = checked = 0
for line in open(sys.argv[1]):
    m = re.search(r'origin_(?:begin|block)="(\d+)" data_(?:begin|block)="(\d+)"(?: length="(\d+)")?', line)
    if not m:
        continue
    o, d, n = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
    for i in range(n):
        data.seek((d + i) * BB)
        head = data.read(64).decode('ascii', 'replace')
        checked += 1
        if not re.match(r'dev \d+ block %d tag run\d+\n' % (o + i), head):
            bad += 1
            if bad < 5:
                print('vblock %d data block %d: %r' % (o + i, d + i, head[:40]))
print('checked', checked)
sys.exit(1 if bad or not checked else 0)
EOF
}

# A data write that fails (the file may not grow past a limit) commits nothing.
t_data_error() {
    need_pool
    newpool "$T/m" "$T/d" 1000
    tp create_thin 1
    tp write 1 0 10 --tag ok
    rm -f "$T/d"
    truncate -s 1M "$T/d"   # sparse: blocks 16.. lie beyond the size limit below
    truncate -s $((1000 * BB)) "$T/d"
    tp discard 1 0 10
    tp commit
    remember_sum "$T/m"
    cat >"$T/s.tp" <<'EOF'
write 1 0 5
write 1 100 30
EOF
    # the cursor hands out blocks 10.., the 7th of them lies past 1 MiB
    (
        trap '' XFSZ
        ulimit -f 1024
        exec "$BIN/thin_pool" "$T/m" --data "$T/d" --script "$T/s.tp"
    ) >"$STDOUT" 2>"$STDERR"
    RC=$?
    LAST_CMD="thin_pool --script (ulimit -f 1024)"
    [ "$RC" -eq 1 ] || fail "expected exit 1 after a failed data write, got $RC"
    expect_stderr_match "data file '.*/d': cannot write data block 16: File too large"
    expect_unchanged "$T/m"
}

tcase format-needs-room t_format_needs_room
tcase resize-needs-room t_resize_needs_room
tcase needs-data t_needs_data
tcase write-read t_write_read
tcase partial-writes t_partial_writes
tcase copy-on-write t_copy_on_write
tcase same-metadata t_same_metadata
tcase run-data t_run_data
tcase data-error t_data_error
finish
