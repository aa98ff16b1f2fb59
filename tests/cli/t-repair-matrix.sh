#!/bin/bash
# t-repair-matrix.sh - the damage matrix of issue 5, run by
# bench/repair-recovery --verify: every metadata block in use, in turn,
# zeroed and (separately) with only its checksum broken; each damaged copy
# repaired by our thin_repair.  For every cell: the repair succeeds, the
# output passes thin_check, holds no mapping the input did not, and holds
# every mapping except those that lived in the damaged block (a live mapping
# leaf, for each device sharing it) and those of devices the report says it
# LEFT OUT (a lost top-level leaf over devices that cannot be told apart).
# The recovery ratio over the matrix is printed.
#
# make check: one small generated pool (several devices, two snapshots
# sharing leaves through <def>s, an empty device; about 60 cells, seconds),
# and the kernel-formatted empty pool.
# SLOW=1 adds a larger generated pool (3-level trees, many devices) and the
# kernel-written fixtures with and without a held metadata snapshot.
#
# Not in the matrix: kernel fixtures 02-thins-snaps and 04-discard-delete
# with the superblock destroyed.  Their last transaction only removed
# mappings, and with no superblock the newest of the many intact committed
# generations cannot be told from the one before (1.1.0 and 0.9.0 choose the
# same older one; docs/thin_repair.md).
# shellcheck source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

MATRIX=$REPO/bench/repair-recovery
POOL_ARGS='--dialect 1.x --devices 2 --snapshots 2 --mappings-per-device 1200 --share-chunk 600 --share-fraction 0.5 --empty-devices 1 --seed 3'

verify() {   # IMAGE...
    need_bin thin_repair
    need_bin thin_dump
    need_cmd python3
    local CMD_TIMEOUT=1800
    run python3 "$MATRIX" --verify "$@"
    sed 's/^/      /' "$STDOUT"
    [ "$RC" -eq 0 ] || fail "broken promises: $(grep -c BROKEN "$STDOUT") (first: $(grep -m1 BROKEN "$STDOUT"))"
    expect_stdout_match '^recovery ratio ours: '
}

t_small() {
    cached_image small 1x 4M $POOL_ARGS
    verify "$IMAGE"
}
tcase small-generated t_small

# A kernel-formatted pool with no device: any damage still gives an empty pool.
t_fresh() {
    kernel_image 01-fresh
    verify "$IMAGE"
}
tcase kernel-fresh t_fresh

# Ours against the references on the same cells: never less.
t_against_references() {
    need_ref both
    [ -x "$REF_09/thin_repair" ] && [ -x "$REF_1X/thin_repair" ] || skip "reference thin_repair missing"
    cached_image small 1x 4M $POOL_ARGS
    local CMD_TIMEOUT=600
    run python3 "$MATRIX" --check "$BIN/thin_check" "$IMAGE"
    sed 's/^/      /' "$STDOUT"
    [ "$RC" -eq 0 ] || fail "bench/repair-recovery failed"
    python3 - "$STDOUT" <<'EOF' || fail "we recover less than a reference"
import re, sys
r = {m.group(1): int(m.group(2)) for m in
     re.finditer(r'recovery ratio (\S+): (\d+)/', open(sys.argv[1]).read())}
ok = all(r['ours'] >= v for v in r.values())
wrong = re.findall(r'^\s+ours .* wrong (\d+)', open(sys.argv[1]).read(), re.M)
sys.exit(0 if ok and wrong == ['0'] else 1)
EOF
}
tcase against-references t_against_references

t_slow_generated() {
    [ "${SLOW:-0}" = 1 ] || skip "SLOW=1 only"
    # device 0: 70000 mappings in single runs, a 3-level tree
    cached_image big 1x 16M --dialect 1.x --devices 2 --snapshots 2 --mappings-per-device 70000 \
        --run-length 1 --share-chunk 5000 --share-fraction 0.6 --empty-devices 1 --seed 21
    verify --max-blocks 60 "$IMAGE"
}
tcase slow-generated t_slow_generated

t_slow_many_devices() {
    [ "${SLOW:-0}" = 1 ] || skip "SLOW=1 only"
    cached_image many 1x 8M --devices 400 --mappings-per-device 7 --seed 22
    verify --max-blocks 150 "$IMAGE"
}
tcase slow-many-devices t_slow_many_devices

t_slow_kernel() {   # NAME
    [ "${SLOW:-0}" = 1 ] || skip "SLOW=1 only"
    kernel_image "$1"
    verify "$IMAGE"
}
for k in 03-msnap-held 05-msnap-held-powercut 04-msnap-released; do
    tcase "slow-kernel.$k" t_slow_kernel "$k"
done

t_slow_kernel_pair() {   # NAME
    [ "${SLOW:-0}" = 1 ] || skip "SLOW=1 only"
    local src=$FIXTURES/kernel-pairs/$1.kernel.img.xz img=$CACHE/pair-$1.img
    [ -f "$src" ] || skip "fixture $src missing"
    [ -s "$img" ] || xz -dc "$src" >"$img" || fail "cannot unpack $src"
    verify --max-blocks 300 "$img"
}
for k in 01-thins 02-snapshots 03-msnap-writes 06-msnap-held 07-resize 08-many-devices; do
    tcase "slow-kernel-pair.$k" t_slow_kernel_pair "$k"
done

finish
