#!/bin/bash
# t-check-live.sh - checking a pool's metadata while the pool changes it.
#
# `thin_pool IMG run --keep-held` (bin/thin_pool) is a running pool: it
# commits transaction after transaction into IMG, with a metadata snapshot
# held throughout.  Meanwhile, over and over:
#   - thin_check -m passes, and thin_dump -m prints the same bytes each
#     time (only the held snapshot's blocks are read, which the pool never
#     overwrites while they are held);
#   - thin_check without -m either passes or says only that the superblock
#     changed during the check - never damage from torn reads.
# A few seconds in `make check`; a minute with SLOW=1 (make check-slow).
# Skipped when bin/thin_pool has not been built.
# shellcheck source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

SECONDS_LIVE=3
[ "${SLOW:-0}" = 1 ] && SECONDS_LIVE=60

need_pool() {
    [ -x "$BIN/thin_pool" ] || skip "no $BIN/thin_pool (the write path's tool is not built): live checks need it"
}

t_live() {   # SEED
    local seed=$1 reps=0 rc pid
    need_bin thin_check
    need_bin thin_dump
    need_pool
    truncate -s 16M "$T/p.img"
    "$BIN/thin_pool" "$T/p.img" format --data-block-size 128 --nr-data-blocks 8192 >"$T/pool.out" 2>&1 ||
        fail "thin_pool format failed: $(tail -n 1 "$T/pool.out")"
    "$BIN/thin_pool" "$T/p.img" run --ops 300 --seed "$seed" --keep-held >>"$T/pool.out" 2>&1 ||
        fail "thin_pool run (setup) failed: $(tail -n 1 "$T/pool.out")"
    "$BIN/thin_dump" -m "$T/p.img" >"$T/first.xml" 2>"$T/first.err" ||
        fail "thin_dump -m failed before the run: $(cat "$T/first.err")"

    "$BIN/thin_pool" "$T/p.img" run --ops 100000000 --seed $((seed + 1)) --keep-held \
        --seconds "$SECONDS_LIVE" >>"$T/pool.out" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        reps=$((reps + 1))
        "$BIN/thin_check" -m "$T/p.img" >"$T/m.out" 2>"$T/m.err"
        rc=$?
        if [ "$rc" -ne 0 ]; then
            kill "$pid" 2>/dev/null
            fail "thin_check -m failed on repetition $reps (exit $rc): $(grep '^\[' "$T/m.err" | head -n 3)"
        fi
        "$BIN/thin_dump" -m "$T/p.img" >"$T/again.xml" 2>"$T/again.err"
        if ! cmp -s "$T/first.xml" "$T/again.xml"; then
            kill "$pid" 2>/dev/null
            fail "thin_dump -m printed different bytes on repetition $reps"
        fi
        "$BIN/thin_check" "$T/p.img" >"$T/l.out" 2>"$T/l.err"
        rc=$?
        if [ "$rc" -ne 0 ] && { ! grep -q '\[fatal sb_changed\]' "$T/l.err" ||
            grep '^\[' "$T/l.err" | grep -qv 'sb_changed'; }; then
            kill "$pid" 2>/dev/null
            cp "$T/p.img" "$T/failed.img"
            fail "thin_check without -m reported more than a changed superblock on repetition $reps: $(grep '^\[' "$T/l.err" | head -n 3)"
        fi
    done
    wait "$pid" || fail "thin_pool run failed: $(tail -n 1 "$T/pool.out")"
    [ "$reps" -ge 2 ] || fail "only $reps repetitions: the run was too short to test anything"
    run_ok "$BIN/thin_check" "$T/p.img"
    run_ok "$BIN/thin_check" -m "$T/p.img"
    note "$reps repetitions"
}
tcase live-keep-held-seed1 t_live 1
tcase live-keep-held-seed7 t_live 7

finish
