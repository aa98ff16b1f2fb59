#!/bin/bash
# t-pool.sh - thin_pool: what it writes is metadata the reference tools
# accept and read as we do; format is the kernel's; messages are refused as
# the kernel refuses them and a refusal leaves the file byte-identical; the
# data allocator behaves like a running kernel within one process; `run` is
# deterministic and its log names every state a killed run can leave
# (t-pool-crash.sh kills it).
# (fixtures/kernel-pairs and t-kernel-pairs.sh compare with the real kernel.)
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

need_pool() {
    need_bin thin_pool
    need_bin thin_dump
}

# fresh IMG [SIZE]: a zeroed metadata file.
fresh() {
    rm -f "$1"
    truncate -s "${2:-8M}" "$1" || fail "cannot create $1"
}

# script_text NAME: a history used by several cases.
script_text() {
    case $1 in
    snaps)
        cat <<'EOF'
format --data-block-size 128 --nr-data-blocks 4096
create_thin 0
create_thin 1
write 0 0 600           # a two-level mapping tree
write 1 0 40
write 0 1000 20
create_snap 2 0
write 0 10 20           # copy-on-write
write 2 100 10
create_snap 3 2         # snapshot of a snapshot
write 3 5 3
discard 0 200 100
discard 2 300 50
delete 1
set_transaction_id 0 7
create_thin 9
write 9 0 100
EOF
        ;;
    held)
        script_text snaps
        cat <<'EOF'
reserve_metadata_snap
write 0 0 30            # copy-on-write of metadata shared with the snapshot
write 0 5000 30
discard 2 0 50
delete 3
create_snap 4 0
write 4 7 1
set_transaction_id 7 8
EOF
        ;;
    *) fail "no script $1" ;;
    esac
}

# script NAME: write it to $T/NAME.tp.
script() {
    script_text "$1" >"$T/$1.tp"
}

# pool_from NAME IMG: run a script onto a fresh file.
pool_from() {
    script "$1"
    fresh "$2"
    run "$BIN/thin_pool" "$2" --script "$T/$1.tp"
    [ "$RC" -eq 0 ] || fail "thin_pool --script $1 failed ($RC): $(head -c 300 "$STDERR")"
}

# ------------------------------------------------------------------ format

t_format_is_kernels() {
    need_pool
    need_cmd xz
    kernel_image 01-fresh
    fresh "$T/m" "$(stat -c %s "$IMAGE")"
    run_ok "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 4096
    expect_stdout_empty
    cmp -s "$IMAGE" "$T/m" || fail "format differs from the kernel's fresh pool: $(cmp "$IMAGE" "$T/m" | head -1)"
}

t_format_status() {
    need_pool
    fresh "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 4096
    run_ok "$BIN/thin_pool" "$T/m" status
    printf '0 213/2048 0/4096 - rw discard_passdown queue_if_no_space - 512 \n' >"$T/want"
    expect_same "$T/want" "$STDOUT" "status of a fresh pool (the kernel's line)"
    # a 1 GiB device: the reserve is 4096 blocks at most, the low-water mark 1024
    fresh "$T/big" 1G
    run_ok "$BIN/thin_pool" "$T/big" format --data-block-size 1024 --nr-data-blocks 100000
    run_ok "$BIN/thin_pool" "$T/big" status
    expect_stdout_match '^0 [0-9]+/262144 0/100000 - rw discard_passdown queue_if_no_space - 1024 $'
    used=$(cut -d' ' -f2 "$STDOUT" | cut -d/ -f1)
    [ "$used" -gt 4096 ] && [ "$used" -lt 4160 ] || fail "used metadata $used: expected the 4096-block reserve plus a few"
}

t_format_refusals() {
    need_pool
    fresh "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 100
    remember_sum "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 100
    expect_stderr_match 'block 0 is not all zeroes'
    expect_unchanged "$T/m"
    run_usage "$BIN/thin_pool" "$T/m" format --data-block-size 100 --nr-data-blocks 100
    run_usage "$BIN/thin_pool" "$T/m" format --data-block-size 128
    run_usage "$BIN/thin_pool" "$T/m" format --data-block-size x --nr-data-blocks 1
    expect_unchanged "$T/m"
    fresh "$T/tiny" 16K
    run_fail "$BIN/thin_pool" "$T/tiny" format --data-block-size 128 --nr-data-blocks 10
    expect_stderr_match 'metadata space'
    fresh "$T/small" 64K
    run_fail "$BIN/thin_pool" "$T/small" format --data-block-size 128 --nr-data-blocks 100000000
    expect_stderr_match 'too small'
}

# ------------------------------------------------------------------ reference tools

t_refs_accept() {   # SCRIPT
    need_pool
    need_ref both
    pool_from "$1" "$T/m"
    run_ok "$REF_1X/thin_check" "$T/m"
    run_ok "$REF_09/thin_check" "$T/m"
    run_ok "$BIN/thin_dump" "$T/m"
    cp "$STDOUT" "$T/ours.xml"
    run_ok "$REF_1X/thin_dump" "$T/m"
    expect_same "$STDOUT" "$T/ours.xml" "1.1.0's thin_dump vs ours"
    grep -q '<device dev_id="9"' "$T/ours.xml" || fail "device 9 missing from the dump"
}

t_held_snapshot() {
    need_pool
    need_ref both
    # the pool as it was at reserve time...
    pool_from snaps "$T/before"
    run_ok "$BIN/thin_dump" "$T/before"
    sed 's/ nr_data_blocks="[0-9]*"//' "$STDOUT" >"$T/at-reserve.xml"
    # ...is what -m shows after more changes
    pool_from held "$T/m"
    run_ok "$REF_1X/thin_check" "$T/m"
    run_ok "$REF_1X/thin_check" -m "$T/m"
    run_ok "$REF_09/thin_check" "$T/m"
    run_ok "$BIN/thin_dump" -m "$T/m"
    cp "$STDOUT" "$T/ours-m.xml"
    sed 's/ nr_data_blocks="[0-9]*"//; s/ metadata_snap="[0-9]*"//' "$T/ours-m.xml" >"$T/m.xml"
    expect_same "$T/at-reserve.xml" "$T/m.xml" "thin_dump -m vs the pool at reserve time"
    run_ok "$REF_1X/thin_dump" -m "$T/m"
    expect_same "$T/ours-m.xml" "$STDOUT" "1.1.0's thin_dump -m vs ours"
    run_ok "$BIN/thin_pool" "$T/m" status
    held=$(cut -d' ' -f4 "$STDOUT")
    [ "$held" != - ] || fail "status shows no held root"
    grep -q "metadata_snap=\"$held\"" "$T/ours-m.xml" ||
        run_ok "$BIN/thin_dump" -m"$held" "$T/m"
    # released: the snapshot's own blocks are freed, thin_check still clean
    run_ok "$BIN/thin_pool" "$T/m" release_metadata_snap
    run_ok "$REF_1X/thin_check" "$T/m"
    run_fail "$REF_1X/thin_check" -m "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" status
    expect_stdout_match '^8 [0-9]+/2048 [0-9]+/4096 - rw '
}

# ------------------------------------------------------------------ refusals

t_refusals_unchanged() {
    need_pool
    pool_from snaps "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" reserve_metadata_snap
    remember_sum "$T/m"
    local c
    while IFS='|' read -r c re; do
        # shellcheck disable=SC2086
        run_fail "$BIN/thin_pool" "$T/m" $c
        expect_stderr_match "$re"
        expect_unchanged "$T/m"
    done <<'EOF'
create_thin 0|thin device 0 already exists
create_snap 2 0|thin device 2 already exists
create_snap 20 21|origin device 21 does not exist
delete 1|thin device 1 does not exist
set_transaction_id 6 9|mismatched transaction id
reserve_metadata_snap|already exists.*release it
write 1 0|thin device 1 does not exist
discard 5 0 10|thin device 5 does not exist
resize_data 10|cannot reduce
create_thin 16777216|out of range
EOF
    run_ok "$BIN/thin_pool" "$T/m" release_metadata_snap
    remember_sum "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" release_metadata_snap
    expect_stderr_match 'no pool metadata snapshot'
    expect_unchanged "$T/m"
}

t_bad_input() {
    need_pool
    run_fail "$BIN/thin_pool" "$T/nope" status
    expect_stderr_match "Couldn't find"
    fresh "$T/z"
    remember_sum "$T/z"
    run_fail "$BIN/thin_pool" "$T/z" create_thin 0
    expect_stderr_match 'format it first'
    expect_unchanged "$T/z"
    run_usage "$BIN/thin_pool" "$T/z" frobnicate
    expect_stderr_match "unknown command 'frobnicate'"
    run_usage "$BIN/thin_pool" "$T/z" create_thin
    run_usage "$BIN/thin_pool" "$T/z" create_thin 1 2
    run_usage "$BIN/thin_pool" "$T/z" write 0 -1
    run_usage "$BIN/thin_pool" "$T/z" run --ops 5
    run_usage "$BIN/thin_pool" "$T/z"
    run_usage "$BIN/thin_pool" --bogus x y
    run_ok "$BIN/thin_pool" --help
    expect_stdout_match 'reserve_metadata_snap'
    run_ok "$BIN/thin_pool" -V
    expect_unchanged "$T/z"
    # damaged metadata: a clear error, not a crash
    run_ok "$BIN/thin_pool" "$T/z" format --data-block-size 128 --nr-data-blocks 100
    printf 'garbage' | dd of="$T/z" bs=1 seek=100 conv=notrunc 2>/dev/null
    run_fail "$BIN/thin_pool" "$T/z" create_thin 0
    expect_stderr_match 'checksum'
    # XML is not metadata
    printf '<superblock uuid="">\n' >"$T/x.xml"
    truncate -s 8M "$T/x.xml"
    run_fail "$BIN/thin_pool" "$T/x.xml" status
}

t_script_errors() {
    need_pool
    fresh "$T/m"
    printf 'format --data-block-size 128 --nr-data-blocks 100\ncreate_thin 0\nwrite 0 0 5\n\n  # a comment\ncreate_thin 0\nwrite 0 5 5\n' >"$T/s.tp"
    run_fail "$BIN/thin_pool" "$T/m" --script "$T/s.tp"
    expect_stderr_match "s.tp:6: thin device 0 already exists"
    # the lines before the refused one were carried out and committed
    run_ok "$BIN/thin_dump" "$T/m"
    expect_stdout_match 'data_begin="0" length="5"'
    grep -q 'origin_begin="5"' "$STDOUT" && fail "a line after the error was run"
    printf 'status\nwrite 0 x\n' >"$T/s2.tp"
    run_fail "$BIN/thin_pool" "$T/m" --script "$T/s2.tp"
    expect_stderr_match 's2.tp:2: invalid block'
    expect_stdout_match '^0 '
    printf 'status extra\n' | run_fail "$BIN/thin_pool" "$T/m" --script -
    run_fail "$BIN/thin_pool" "$T/m" --script "$T/missing.tp"
    printf 'format --data-block-size 128 --nr-data-blocks 100\n' >"$T/f.tp"
    run_fail "$BIN/thin_pool" "$T/m" --script "$T/f.tp"
    expect_stderr_match 'not all zeroes'
}

# ------------------------------------------------------------------ semantics

# One process carries the allocator's cursor, like a running pool; a new
# process starts it at 0, like a reactivated pool.
t_cursor_carries_over() {
    need_pool
    fresh "$T/a"
    printf 'format --data-block-size 128 --nr-data-blocks 100\ncreate_thin 0\nwrite 0 0 50\ndiscard 0 0 10\ncommit\nwrite 0 100 5\n' >"$T/s.tp"
    run_ok "$BIN/thin_pool" "$T/a" --script "$T/s.tp"
    run_ok "$BIN/thin_dump" "$T/a"
    expect_stdout_match 'origin_begin="100" data_begin="50" length="5"'
    fresh "$T/b"
    run_ok "$BIN/thin_pool" "$T/b" format --data-block-size 128 --nr-data-blocks 100
    run_ok "$BIN/thin_pool" "$T/b" create_thin 0
    run_ok "$BIN/thin_pool" "$T/b" write 0 0 50
    run_ok "$BIN/thin_pool" "$T/b" discard 0 0 10
    run_ok "$BIN/thin_pool" "$T/b" write 0 100 5
    run_ok "$BIN/thin_dump" "$T/b"
    expect_stdout_match 'origin_begin="100" data_begin="0" length="5"'
}

# Sharing follows times, not reference counts; status commits first.
t_cow_and_status() {
    need_pool
    fresh "$T/m"
    cat >"$T/s.tp" <<'EOF'
format --data-block-size 128 --nr-data-blocks 1000
create_thin 0
write 0 0 10
create_snap 1 0
write 0 0 2             # shared: new blocks 10, 11 at time 1
write 0 0 2             # now exclusive: nothing
delete 1                # frees 0 and 1
write 0 5 1             # older than the snapshot: copied to 12, 5 freed
status
write 0 20 3            # uncommitted ...
status
EOF
    run_ok "$BIN/thin_pool" "$T/m" --script "$T/s.tp"
    expect_stdout_match '^0 [0-9]+/2048 10/1000 - rw'
    expect_stdout_match '^0 [0-9]+/2048 13/1000 - rw'
    run_ok "$BIN/thin_dump" "$T/m"
    expect_stdout_match 'origin_begin="0" data_begin="10" length="2" time="1"'
    expect_stdout_match 'origin_block="5" data_block="12" time="1"'
    expect_stdout_match 'origin_begin="2" data_begin="2" length="3" time="0"'
}

t_needs_check() {
    need_pool
    pool_from snaps "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" set_needs_check
    run_ok "$BIN/thin_pool" "$T/m" status
    expect_stdout_match ' ro discard_passdown queue_if_no_space needs_check [0-9]+ $'
    remember_sum "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" create_thin 40
    expect_stderr_match 'needs_check'
    expect_unchanged "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" clear_needs_check
    run_ok "$BIN/thin_pool" "$T/m" create_thin 40
}

t_resize() {
    need_pool
    need_ref 1x
    pool_from snaps "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" resize_data 40000
    run_ok "$BIN/thin_pool" "$T/m" write 9 200 10
    run_ok "$REF_1X/thin_check" "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" status
    expect_stdout_match ' [0-9]+/40000 '
    # a bigger metadata device: the space map grows on open, as on resume
    truncate -s 16M "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" status
    expect_stdout_match '^7 [0-9]+/4096 [0-9]+/40000 - rw .* 1024 $'
    run_ok "$REF_1X/thin_check" "$T/m"
    # a smaller one is refused
    truncate -s 8M "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" status
    expect_stderr_match 'too small'
}

# Running out of metadata part way: the pool fails as the kernel's does:
# nothing more is written but needs_check, and the last commit is intact.
t_out_of_metadata() {
    need_pool
    need_ref 1x
    fresh "$T/m" 256K
    run_ok "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 100000
    printf 'create_thin 0\nwrite 0 0 20000\n' >"$T/s.tp"
    run_fail "$BIN/thin_pool" "$T/m" --script "$T/s.tp"
    expect_stderr_match 's.tp:2: out of metadata space'
    run_ok "$BIN/thin_pool" "$T/m" status
    expect_stdout_match ' ro discard_passdown queue_if_no_space needs_check 16 $'
    remember_sum "$T/m"
    run_fail "$BIN/thin_pool" "$T/m" write 0 30000
    expect_stderr_match 'needs_check'
    expect_unchanged "$T/m"
    # at most the kernel's leak: the block allocated before the commit
    # that alloc_data_block() makes when only the reserve is left
    run_ok "$REF_1X/thin_check" --ignore-non-fatal-errors "$T/m"
    run_ok "$BIN/thin_dump" "$T/m"
    expect_stdout_match 'mapped_blocks="[0-9]+"'
}

# out of data space: a refusal; the blocks before it stay
t_out_of_data() {
    need_pool
    need_ref 1x
    fresh "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 100
    run_ok "$BIN/thin_pool" "$T/m" create_thin 0
    run_fail "$BIN/thin_pool" "$T/m" write 0 0 150
    expect_stderr_match 'out of data space'
    run_ok "$BIN/thin_pool" "$T/m" status
    expect_stdout_match '^0 [0-9]+/2048 100/100 - rw .* - 512 $'
    run_ok "$REF_1X/thin_check" "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" discard 0 0 10
    run_ok "$BIN/thin_pool" "$T/m" write 0 200 10
    run_ok "$BIN/thin_dump" "$T/m"
    expect_stdout_match 'origin_begin="200" data_begin="0" length="10"'
}

# ------------------------------------------------------------------ run

t_run_deterministic() {
    need_pool
    need_ref 1x
    fresh "$T/a" 16M
    run_ok "$BIN/thin_pool" "$T/a" format --data-block-size 128 --nr-data-blocks 20000
    cp "$T/a" "$T/b"
    cp "$T/a" "$T/c"
    run_ok "$BIN/thin_pool" "$T/a" run --ops 3000 --seed 11
    expect_stdout_match '^ops 3000 '
    run_ok "$BIN/thin_pool" "$T/b" run --ops 3000 --seed 11
    cmp -s "$T/a" "$T/b" || fail "the same --ops and --seed gave different pools"
    run_ok "$BIN/thin_pool" "$T/c" run --ops 3000 --seed 12
    cmp -s "$T/a" "$T/c" && fail "different seeds gave the same pool"
    run_ok "$REF_1X/thin_check" "$T/a"
    run_ok "$REF_1X/thin_check" "$T/c"
}

t_run_keep_held() {
    need_pool
    need_ref both
    fresh "$T/m" 16M
    run_ok "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 20000
    run_ok "$BIN/thin_pool" "$T/m" run --ops 2000 --seed 5 --keep-held --log "$T/log"
    run_ok "$REF_1X/thin_check" "$T/m"
    run_ok "$REF_1X/thin_check" -m "$T/m"
    run_ok "$REF_09/thin_check" "$T/m"
    run_ok "$BIN/thin_dump" -m "$T/m"
    run_ok "$BIN/thin_pool" "$T/m" status
    [ "$(cut -d' ' -f4 "$STDOUT")" != - ] || fail "--keep-held left no metadata snapshot"
    # one commit line per commit, the last one is the superblock on disk
    n=$(grep -c '^commit ' "$T/log")
    [ "$n" -gt 50 ] || fail "only $n commits logged"
    last=$(grep '^commit ' "$T/log" | tail -1 | sed 's/.* sb \([0-9a-f]*\) .*/\1/')
    disk=$(od -An -tx4 -N4 "$T/m" | tr -d ' ')
    [ "$last" = "$disk" ] || fail "the last logged superblock ($last) is not the one on disk ($disk)"
}

# Killed runs (kill -9 at random moments; the image holds exactly a
# committed state): t-pool-crash.sh.

# A second thin_pool on a file being written is refused, not interleaved.
t_one_writer() {
    need_pool
    fresh "$T/m" 16M
    run_ok "$BIN/thin_pool" "$T/m" format --data-block-size 128 --nr-data-blocks 30000
    "$BIN/thin_pool" "$T/m" run --ops 100000000 --seed 1 --log "$T/log" >/dev/null 2>&1 &
    local pid=$! i
    # the writer holds the pool once it has logged its first commit (a
    # loaded machine, or a sanitizer build, may take seconds to get there)
    for i in $(seq 1 600); do
        grep -q '^commit ' "$T/log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '^commit ' "$T/log" 2>/dev/null || { kill -KILL "$pid"; fail "the writer never committed"; }
    run "$BIN/thin_pool" "$T/m" status
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ "$RC" -eq 1 ] || fail "a second writer was let in (exit $RC)"
    expect_stderr_match 'in use by another thin_pool'
    run_ok "$BIN/thin_pool" "$T/m" status
}

tcase format-is-kernels t_format_is_kernels
tcase format-status t_format_status
tcase format-refusals t_format_refusals
tcase refs-accept-snaps t_refs_accept snaps
tcase refs-accept-held t_refs_accept held
tcase held-snapshot t_held_snapshot
tcase refusals-unchanged t_refusals_unchanged
tcase bad-input t_bad_input
tcase script-errors t_script_errors
tcase cursor-carries-over t_cursor_carries_over
tcase cow-and-status t_cow_and_status
tcase needs-check t_needs_check
tcase resize t_resize
tcase out-of-metadata t_out_of_metadata
tcase out-of-data t_out_of_data
tcase run-deterministic t_run_deterministic
tcase run-keep-held t_run_keep_held
tcase one-writer t_one_writer
finish
