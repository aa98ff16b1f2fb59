#!/bin/bash
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# t-kernel-pairs.sh - the same history gives the same pool in thin_pool and in
# the Linux kernel.
#
# fixtures/kernel-pairs/NAME.thinpool is a history (thin_pool's script
# language); NAME.kernel.img.xz is the metadata the real kernel (Linux 6.1
# under qemu) left after running it, recorded by `make kernel-check`
# (kernel/check.sh, see NAME.txt); NAME.status holds the kernel's
# `dmsetup status` line at each `status` line. Each case runs the history
# through $BIN/thin_pool on a file of the kernel image's size and compares, in
# the canonical form (`thin_dump --expand-shared`: data block numbers, times,
# device details): the live pool, the held metadata snapshot (-m) or its
# absence, the status lines, and 1.1.0's thin_check verdict. No kernel needed.
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

PAIRS=$FIXTURES/kernel-pairs

# pair_kernel NAME: unpack the kernel's image once per file; sets KIMG.
pair_kernel() {
    KIMG=$CACHE/$1.kernel.img
    if [ ! -s "$KIMG" ]; then
        need_cmd xz
        xz -dc "$PAIRS/$1.kernel.img.xz" >"$KIMG.tmp" || fail "cannot unpack $PAIRS/$1.kernel.img.xz"
        mv "$KIMG.tmp" "$KIMG"
    fi
}

# pair_ours NAME: run the history through thin_pool once per file; sets OIMG
# and OOUT (thin_pool's stdout).
pair_ours() {
    pair_kernel "$1"
    OIMG=$CACHE/$1.ours.img
    OOUT=$CACHE/$1.ours.out
    [ -s "$OIMG" ] && return 0
    rm -f "$OIMG.tmp"
    truncate -s "$(stat -c %s "$KIMG")" "$OIMG.tmp"
    run "$BIN/thin_pool" "$OIMG.tmp" --script "$PAIRS/$1.thinpool"
    [ "$RC" -eq 0 ] || fail "thin_pool --script $1.thinpool exited $RC"
    cp "$STDOUT" "$OOUT"
    mv "$OIMG.tmp" "$OIMG"
}

need_pool() {
    [ -x "$BIN/thin_pool" ] || skip "$BIN/thin_pool does not exist yet"
    need_bin thin_dump
}

# expanded IMAGE OUT [-m]: thin_dump --expand-shared; returns its exit code.
expanded() {
    "$BIN/thin_dump" --expand-shared ${3:+"$3"} "$1" >"$2" 2>"$2.err"
}

t_live() {   # NAME
    need_pool
    pair_ours "$1"
    expanded "$KIMG" "$T/kernel.xml" || fail "thin_dump of the kernel's image failed: $(head -c 200 "$T/kernel.xml.err")"
    expanded "$OIMG" "$T/ours.xml" || fail "thin_dump of thin_pool's image failed: $(head -c 200 "$T/ours.xml.err")"
    grep -q '<device ' "$T/kernel.xml" || fail "the kernel's pool has no device: a pair that tests nothing"
    expect_same "$T/kernel.xml" "$T/ours.xml" "thin_dump --expand-shared (kernel -> thin_pool)"
}

t_held() {   # NAME
    local krc orc
    need_pool
    pair_ours "$1"
    expanded "$KIMG" "$T/kernel.xml" -m
    krc=$?
    expanded "$OIMG" "$T/ours.xml" -m
    orc=$?
    if [ "$krc" -ne 0 ]; then
        [ "$orc" -ne 0 ] || fail "thin_pool's image holds a metadata snapshot, the kernel's does not"
        return 0
    fi
    [ "$orc" -eq 0 ] || fail "the kernel's image holds a metadata snapshot, thin_pool's does not: $(head -c 200 "$T/ours.xml.err")"
    expect_same "$T/kernel.xml" "$T/ours.xml" "thin_dump --expand-shared -m (kernel -> thin_pool)"
}

# norm_status FILE: the status lines of FILE ("[0 LEN thin-pool ]TRANSACTION
# USED/TOTAL USED/TOTAL HELD ..."), fields from the transaction id on, with the
# held root's block number (a layout detail) replaced by HELD.
norm_status() {
    sed 's/^.*thin-pool //' "$1" |
        awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+\/[0-9]+$/ && $3 ~ /^[0-9]+\/[0-9]+$/ {
                 if ($4 != "-") $4 = "HELD"; $1 = $1; print }'
}

t_status() {   # NAME
    need_pool
    pair_ours "$1"
    [ -f "$PAIRS/$1.status" ] || fail "$PAIRS/$1.status is missing"
    sed 's/^[0-9]*: //' "$PAIRS/$1.status" >"$T/kernel.lines"
    norm_status "$T/kernel.lines" >"$T/kernel.status"
    norm_status "$OOUT" >"$T/ours.status"
    [ -s "$T/kernel.status" ] || fail "no status line recorded for $1"
    expect_same "$T/kernel.status" "$T/ours.status" "status lines (kernel -> thin_pool)"
}

t_check() {   # NAME
    need_pool
    need_ref 1x
    pair_ours "$1"
    run_ok "$REF_1X/thin_check" "$OIMG"
    if expanded "$OIMG" "$T/m.xml" -m; then
        run_ok "$REF_1X/thin_check" -m "$OIMG"
    fi
}

# every history in kernel/scenarios has a pair recorded from that exact text
t_current() {
    local s n=0
    for s in "$REPO"/kernel/scenarios/*.thinpool; do
        [ -e "$s" ] || continue
        n=$((n + 1))
        [ -f "$PAIRS/$(basename "$s")" ] || fail "$(basename "$s") has no recorded pair: run make kernel-check"
        cmp -s "$s" "$PAIRS/$(basename "$s")" ||
            fail "kernel/scenarios/$(basename "$s") changed since its pair was recorded: run make kernel-check"
    done
    [ "$n" -gt 0 ] || fail "no history in kernel/scenarios"
}

tcase pairs-current t_current
for f in "$PAIRS"/*.thinpool; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .thinpool)
    tcase "$name-live" t_live "$name"
    tcase "$name-held" t_held "$name"
    tcase "$name-status" t_status "$name"
    tcase "$name-check" t_check "$name"
done
finish
