#!/bin/bash
# t-repair.sh - thin_repair and thin_dump --repair (issue 5).
#
#  - Clean images (generated in several shapes and restored by 1.1.0 and
#    0.9.0; the kernel-written fixtures): the repaired output passes our
#    thin_check and 1.1.0's, and its expanded dump equals the input's;
#    thin_dump --repair prints exactly what thin_dump prints.
#  - Damage of each kind of node, one at a time: what is salvaged, what the
#    report says, and that the output always passes thin_check and holds no
#    mapping the input did not.
#  - The superblock: overrides as 1.1.0 applies them; a damaged one needs
#    --data-block-size (named in the message) unless a metadata snapshot's
#    copy holds it; transaction id and nr_data_blocks are guessed and the
#    report says so.
#  - The command line: help, version, misuse (exit 2), lvconvert's extra
#    empty argument, files (missing, too small, the same, XML), -q; the input
#    is never modified; nothing is written to the output when nothing is
#    usable.
# The full damage matrix is in t-repair-matrix.sh.
# shellcheck source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

SIZE=8M

# A pool whose devices differ in their number of mappings, with leaves
# shared by a <def> (devices 1 and 3), an empty device, 2-level trees.
POOL_ARGS='--dialect 1.x --devices 2 --snapshots 2 --mappings-per-device 1200 --share-chunk 600 --share-fraction 0.5 --empty-devices 1 --seed 3'

# checker: our thin_check, else 1.1.0's.
checker() {
    if [ -x "$BIN/thin_check" ]; then echo "$BIN/thin_check"; else echo "$REF_1X/thin_check"; fi
}

# expanded IMG OUT: the canonical form of a pool (our dump).
expanded() {
    "$BIN/thin_dump" --expand-shared "$1" >"$2" 2>"$T/.dump-err" ||
        fail "thin_dump --expand-shared $1 failed: $(head -c 300 "$T/.dump-err")"
}

# fresh OUT [SIZE]: an output file of SIZE bytes.
fresh() {
    rm -f "$1"
    truncate -s "${2:-$SIZE}" "$1" || fail "cannot create $1"
}

# passes_checks IMG: our thin_check and (if installed) 1.1.0's accept it.
passes_checks() {
    "$(checker)" -q "$1" || fail "$(checker) rejects $1"
    if [ -x "$REF_1X/thin_check" ]; then
        "$REF_1X/thin_check" -q "$1" || fail "1.1.0 thin_check rejects $1"
    fi
}

# same_pool A B: equal expanded dumps.
same_pool() {
    expanded "$1" "$T/a.xml"
    expanded "$2" "$T/b.xml"
    expect_same "$T/a.xml" "$T/b.xml" "expanded dump of the repaired pool"
}

# same_devices A B: equal expanded dumps but for the superblock line.
same_devices() {
    expanded "$1" "$T/a.xml"
    expanded "$2" "$T/b.xml"
    sed -i 1d "$T/a.xml" "$T/b.xml"
    expect_same "$T/a.xml" "$T/b.xml" "devices of the repaired pool"
}

# trimmed_pool: POOL_ARGS, then devices 0 and 2 lose a few mappings so that
# every device has a different number of mappings except 1 and 3.
trimmed_pool() {
    local xml=$CACHE/trimmed.xml img=$CACHE/trimmed.1x.meta
    if [ ! -s "$img" ]; then
        # shellcheck disable=SC2086
        gen_xml "$CACHE/pool.xml" $POOL_ARGS
        python3 - "$CACHE/pool.xml" "$xml.tmp" <<'EOF' || fail "cannot trim the XML"
import re, sys
lines = open(sys.argv[1]).read().split('\n')
devs, cur = {}, None
for i, l in enumerate(lines):
    m = re.search(r'<device dev_id="(\d+)"', l)
    if m:
        cur = int(m.group(1)); devs[cur] = [i, []]; continue
    if '</device>' in l:
        cur = None
    elif cur is not None and 'mapping' in l:
        devs[cur][1].append(i)
drop = set()
for dev, k in ((0, 3), (2, 7)):
    gone = devs[dev][1][-k:]
    drop |= set(gone)
    n = sum(int((re.search(r'length="(\d+)"', lines[j]) or [0, 1])[1]) for j in gone)
    h = devs[dev][0]
    lines[h] = re.sub(r'mapped_blocks="(\d+)"',
                      lambda m: 'mapped_blocks="%d"' % (int(m.group(1)) - n), lines[h])
open(sys.argv[2], 'w').write('\n'.join(l for j, l in enumerate(lines) if j not in drop))
EOF
        mv "$xml.tmp" "$xml"
        make_image "$xml" 4M 1x "$img.tmp"
        mv "$img.tmp" "$img"
    fi
    XML=$xml
    IMAGE=$img
}

# dev_root IMG DEV: the root block of a device's mapping tree.
dev_root() {
    python3 - "$1" "$2" <<'EOF'
import struct, sys
img = open(sys.argv[1], 'rb').read()
def blk(b): return img[b * 4096:(b + 1) * 4096]
def node(b):
    d = blk(b)
    flags, _, nr, mx, vs = struct.unpack_from('<IQIII', d, 4)
    keys = struct.unpack_from('<%dQ' % nr, d, 32)
    vals = [struct.unpack_from('<Q', d, 32 + 8 * mx + 8 * i)[0] for i in range(nr)]
    return flags, keys, vals
def find(b, dev):
    flags, keys, vals = node(b)
    for k, v in zip(keys, vals):
        if flags & 1:
            r = find(v, dev)
            if r is not None:
                return r
        elif k == dev:
            return v
r = find(struct.unpack_from('<Q', blk(0), 320)[0], int(sys.argv[2]))
print(r)
EOF
}

# damaged IMG BLOCK zero|checksum: a copy of IMG with BLOCK damaged; sets DMG.
damaged() {
    DMG=$T/damaged.meta
    cp "$1" "$DMG" || fail "cannot copy $1"
    case $3 in
        zero) python3 "$POKE" zero "$DMG" "$2" || fail "cannot zero block $2" ;;
        checksum) python3 "$POKE" flip "$DMG" "$2" 0 || fail "cannot flip block $2" ;;
    esac
}

# no_wrong_mappings ORIG OUT: every mapping OUT holds, ORIG holds the same way.
no_wrong_mappings() {
    expanded "$1" "$T/orig.xml"
    expanded "$2" "$T/out.xml"
    python3 - "$T/orig.xml" "$T/out.xml" <<'EOF' || fail "the repaired pool holds mappings the input did not"
import re, sys
def load(p):
    m, dev = {}, None
    for l in open(p):
        x = re.search(r'<device dev_id="(\d+)"', l)
        if x: dev = int(x.group(1)); continue
        x = re.search(r'origin_block="(\d+)" data_block="(\d+)" time="(\d+)"', l)
        if x: m[(dev, int(x.group(1)))] = (int(x.group(2)), int(x.group(3))); continue
        x = re.search(r'origin_begin="(\d+)" data_begin="(\d+)" length="(\d+)" time="(\d+)"', l)
        if x:
            o, d, n, t = (int(g) for g in x.groups())
            for i in range(n): m[(dev, o + i)] = (d + i, t)
    return m
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = [k for k, v in b.items() if a.get(k) != v]
if bad: print("not in the input:", bad[:5]); sys.exit(1)
print(len(b))
EOF
}

# count_mappings XML_EXPANDED: number of mappings.
count_mappings() {
    python3 - "$1" <<'EOF'
import re, sys
n = 0
for l in open(sys.argv[1]):
    if 'single_mapping' in l: n += 1
    x = re.search(r'length="(\d+)"', l)
    if x: n += int(x.group(1))
print(n)
EOF
}

# ---------------------------------------------------------------- command line

t_help() {
    need_bin thin_repair
    run_ok "$BIN/thin_repair" --help
    expect_stdout_match '^Usage: thin_repair'
    expect_stdout_match -- '--transaction-id'
    expect_stderr_empty
    run_ok "$BIN/thin_repair" -h
    expect_stdout_match 'Usage'
}
tcase help t_help

t_version() {
    need_bin thin_repair
    run_ok "$BIN/thin_repair" -V
    [ "$(cat "$STDOUT")" = 1.1.0 ] || fail "version is '$(cat "$STDOUT")'"
    run_ok "$BIN/thin_repair" --version
}
tcase version t_version

t_misuse() {
    need_bin thin_repair
    trimmed_pool
    fresh out.meta
    run_usage "$BIN/thin_repair"
    expect_stderr_match 'required arguments'
    run_usage "$BIN/thin_repair" -i "$IMAGE"
    expect_stderr_match -- '--output'
    run_usage "$BIN/thin_repair" -o out.meta
    expect_stderr_match -- '--input'
    run_usage "$BIN/thin_repair" --no-such-option -i "$IMAGE" -o out.meta
    run_usage "$BIN/thin_repair" -i "$IMAGE" -o out.meta extra1 extra2
    run_usage "$BIN/thin_repair" -i "$IMAGE" -o out.meta --data-block-size 100
    expect_stderr_match 'data-block-size'
    run_usage "$BIN/thin_repair" -i "$IMAGE" -o out.meta --transaction-id x
    run_usage "$BIN/thin_repair" -i "$IMAGE" -o
}
tcase misuse t_misuse

# lvm2 2.03.16-21: thin_repair "" -i IN -o OUT
t_lvconvert_empty_argument() {
    need_bin thin_repair
    trimmed_pool
    fresh out.meta
    run_ok "$BIN/thin_repair" "" -i "$IMAGE" -o out.meta
    same_pool "$IMAGE" out.meta
    fresh out.meta
    run_ok "$BIN/thin_repair" -q -i "$IMAGE" -o out.meta ""
    expect_stderr_empty
    expect_stdout_empty
}
tcase lvconvert-empty-argument t_lvconvert_empty_argument

t_files() {
    need_bin thin_repair
    trimmed_pool
    fresh out.meta
    run_fail "$BIN/thin_repair" -i no-such.meta -o out.meta
    expect_stderr_match "Couldn't find input file"
    mkdir dir
    run_fail "$BIN/thin_repair" -i dir -o out.meta
    run_fail "$BIN/thin_repair" -i "$IMAGE" -o no-such.meta
    expect_stderr_match "Couldn't find output file"
    fresh small.meta 20000
    run_fail "$BIN/thin_repair" -i "$IMAGE" -o small.meta
    expect_stderr_match 'too small'
    head -c 100 /dev/zero >tiny.meta
    run_fail "$BIN/thin_repair" -i tiny.meta -o out.meta
    expect_stderr_match 'too small'
    run_fail "$BIN/thin_repair" -i "$XML" -o out.meta
    expect_stderr_match 'XML'
    cp "$IMAGE" in.meta
    run_fail "$BIN/thin_repair" -i in.meta -o in.meta
    expect_stderr_match 'same'
    ln -s in.meta link.meta
    run_fail "$BIN/thin_repair" -i in.meta -o link.meta
    expect_stderr_match 'same'
    # an output too small for the pool: a clear message, exit 1
    fresh small.meta 48K
    run_fail "$BIN/thin_repair" -i "$IMAGE" -o small.meta
    expect_stderr_match 'too small|space'
}
tcase files t_files

t_input_untouched() {
    need_bin thin_repair
    trimmed_pool
    cp "$IMAGE" in.meta
    python3 "$POKE" flip in.meta "$(python3 "$POKE" leaves in.meta | awk '$1 == 0 { print $2 }')" 100
    remember_sum in.meta
    chmod 444 in.meta
    fresh out.meta
    run_ok "$BIN/thin_repair" -i in.meta -o out.meta
    run_ok "$BIN/thin_dump" -r in.meta
    expect_unchanged in.meta
}
tcase input-untouched t_input_untouched

t_nothing_usable() {
    need_bin thin_repair
    fresh zero.meta 4M
    # an output with something in it: it must stay as it was
    python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 16 * 1024)' >out.meta
    remember_sum out.meta
    run_fail "$BIN/thin_repair" -i zero.meta -o out.meta
    expect_stderr_match 'nothing usable'
    expect_stderr_match 'tried'
    expect_stderr_match 'next'
    expect_unchanged out.meta
    run_fail "$BIN/thin_repair" -i zero.meta -o out.meta --data-block-size 128 \
        --transaction-id 1 --nr-data-blocks 100
    expect_unchanged out.meta
    run_fail "$BIN/thin_dump" -r zero.meta
    expect_stdout_empty
    expect_stderr_match 'nothing usable'
    run_fail "$BIN/thin_dump" -r -q zero.meta
    expect_stderr_empty
}
tcase nothing-usable t_nothing_usable

# ---------------------------------------------------------------- clean images

# key | generator arguments | size
SHAPES='one|--devices 1 --mappings-per-device 3000 --seed 1|8M
snaps|--devices 2 --snapshots 3 --mappings-per-device 1500 --share-fraction 0.6 --seed 3|8M
defs|--dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8|8M
empty|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7|8M
nodevs|--devices 0|4M
manydevs|--devices 700 --mappings-per-device 5 --seed 14|8M
timetx|--devices 2 --snapshots 2 --mappings-per-device 400 --time 9 --transaction 77 --seed 10|8M'

t_clean() {   # KEY 1x|09
    need_bin thin_repair
    local args size
    args=$(printf '%s\n' "$SHAPES" | awk -F'|' -v k="$1" '$1 == k { print $2 }')
    size=$(printf '%s\n' "$SHAPES" | awk -F'|' -v k="$1" '$1 == k { print $3 }')
    # shellcheck disable=SC2086
    cached_image "$1" "$2" "$size" $args
    fresh out.meta "$size"
    run_ok "$BIN/thin_repair" -i "$IMAGE" -o out.meta
    expect_stdout_empty
    expect_stderr_match 'the metadata is intact'
    passes_checks out.meta
    same_pool "$IMAGE" out.meta
    # the superblock's values come through
    "$BIN/thin_dump" --skip-mappings "$IMAGE" | head -n 1 >sb.in
    "$BIN/thin_dump" --skip-mappings out.meta | head -n 1 >sb.out
    expect_same sb.in sb.out "superblock line"
    # thin_dump --repair says what thin_dump says
    for opts in "" "-f human_readable" "--skip-mappings" "--dev-id 1 --dev-id 3"; do
        # shellcheck disable=SC2086
        "$BIN/thin_dump" $opts "$IMAGE" >plain.out
        # shellcheck disable=SC2086
        run_ok "$BIN/thin_dump" -r $opts "$IMAGE"
        expect_stderr_empty
        expect_same plain.out "$STDOUT" "thin_dump -r $opts"
    done
}
for key in one snaps defs empty nodevs manydevs timetx; do
    tcase "clean.$key.1x" t_clean "$key" 1x
done
for key in snaps empty; do
    tcase "clean.$key.09" t_clean "$key" 09
done

t_kernel_clean() {
    need_bin thin_repair
    kernel_image "$1"
    fresh out.meta
    run_ok "$BIN/thin_repair" -i "$IMAGE" -o out.meta
    passes_checks out.meta
    same_pool "$IMAGE" out.meta
    "$BIN/thin_dump" "$IMAGE" >plain.out
    run_ok "$BIN/thin_dump" --repair "$IMAGE"
    expect_same plain.out "$STDOUT" "thin_dump --repair"
    expect_same "$FIXTURES/kernel/$1.dump.xml" "$STDOUT" "thin_dump --repair against the golden 1.1.0 dump"
}
for k in 01-fresh 02-thins-snaps 03-msnap-held 04-msnap-released 05-msnap-held-powercut; do
    tcase "kernel-clean.$k" t_kernel_clean "$k"
done

# ---------------------------------------------------------------- overrides

t_overrides() {
    need_bin thin_repair
    trimmed_pool   # transaction 5, 128 sectors, 5120 data blocks
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$IMAGE" -o out.meta --transaction-id 9 --nr-data-blocks 9000 \
        --data-block-size 256
    [ "$(sb_field out.meta transaction)" = 9 ] || fail "transaction id not raised"
    [ "$(sb_field out.meta data_nr_blocks)" = 9000 ] || fail "nr_data_blocks not raised"
    [ "$(sb_field out.meta data_block_size)" = 256 ] || fail "data block size not replaced"
    passes_checks out.meta
    # smaller values do not lower them (1.1.0: the larger wins)
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$IMAGE" -o out.meta --transaction-id 2 --nr-data-blocks 10
    [ "$(sb_field out.meta transaction)" = 5 ] || fail "transaction id lowered"
    [ "$(sb_field out.meta data_nr_blocks)" = 5120 ] || fail "nr_data_blocks lowered"
    run_ok "$BIN/thin_dump" -r --transaction-id 9 "$IMAGE"
    expect_stdout_match '^<superblock [^>]*transaction="9"'
}
tcase overrides t_overrides

# ---------------------------------------------------------------- superblock damage

t_sb_needs_block_size() {   # zero|checksum
    need_bin thin_repair
    trimmed_pool
    damaged "$IMAGE" 0 "$1"
    python3 -c 'import sys; sys.stdout.buffer.write(b"\xa5" * 4 * 1024 * 1024)' >out.meta
    remember_sum out.meta
    run_fail "$BIN/thin_repair" -i "$DMG" -o out.meta
    expect_stderr_match -- '--data-block-size'
    expect_unchanged out.meta
    if [ "$1" = checksum ]; then
        expect_stderr_match 'damaged superblock reads 128'
    fi
    run_fail "$BIN/thin_dump" -r "$DMG"
    expect_stderr_match -- '--data-block-size'
    expect_stdout_empty
    # given the block size: the rest is guessed, and said to be
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta --data-block-size 128
    expect_stderr_match 'transaction id [0-9]+ \(guessed\)'
    expect_stderr_match 'nr data blocks [0-9]+ \(guessed\)'
    passes_checks out.meta
    same_devices "$IMAGE" out.meta
    # given all three: the same pool, superblock line included
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta --data-block-size 128 \
        --transaction-id 5 --nr-data-blocks 5120
    "$BIN/thin_dump" "$IMAGE" >a.xml
    "$BIN/thin_dump" out.meta >b.xml
    expanded "$IMAGE" a.xml
    expanded out.meta b.xml
    expect_same a.xml b.xml "dump after repair with all three values"
    run_ok "$BIN/thin_dump" -r --data-block-size 128 --transaction-id 5 --nr-data-blocks 5120 "$DMG"
    "$BIN/thin_dump" "$IMAGE" >plain.out
    "$BIN/thin_dump" --expand-shared "$IMAGE" >/dev/null
    head -n 1 plain.out >l1
    head -n 1 "$STDOUT" >l2
    expect_same l1 l2 "superblock line of thin_dump -r with the three values"
}
tcase sb-zeroed t_sb_needs_block_size zero
tcase sb-bad-checksum t_sb_needs_block_size checksum

# The kernel's metadata snapshot keeps a copy of the superblock: it knows the
# data block size.
t_sb_snapshot_copy() {
    need_bin thin_repair
    kernel_image 03-msnap-held
    damaged "$IMAGE" 0 zero
    fresh out.meta
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    expect_stderr_match "data block size 128 \(metadata snapshot's superblock copy\)"
    passes_checks out.meta
    same_devices "$IMAGE" out.meta
}
tcase sb-snapshot-copy t_sb_snapshot_copy

# ---------------------------------------------------------------- node damage

t_leaf() {   # zero|checksum
    need_bin thin_repair
    trimmed_pool
    local leaf expect got
    leaf=$(python3 "$POKE" leaves "$IMAGE" | awk '$1 == 0 { print $3 }')
    damaged "$IMAGE" "$leaf" "$1"
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    expect_stderr_match "block $leaf \(device 0 mapping tree\)"
    expect_stderr_match 'device 0: [0-9]+ mappings recovered of 1192'
    expect_stderr_match 'lost virtual blocks [0-9]+\.\.[0-9]+'
    passes_checks out.meta
    got=$(no_wrong_mappings "$IMAGE" out.meta)
    expanded "$IMAGE" orig.xml
    # everything but the leaf's mappings
    expect=$(( $(count_mappings orig.xml) - $(python3 - "$IMAGE" "$leaf" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()[int(sys.argv[2]) * 4096:][:4096]
print(struct.unpack_from('<I', d, 16)[0])
EOF
) ))
    [ "$got" = "$expect" ] || fail "recovered $got mappings, expected $expect"
    # thin_dump --repair: the same content, the report on stderr
    run_ok "$BIN/thin_dump" -r "$DMG"
    expect_stderr_match 'repair report'
    run_ok "$BIN/thin_dump" -r -q "$DMG"
    expect_stderr_empty
}
tcase leaf-zeroed t_leaf zero
tcase leaf-bad-checksum t_leaf checksum

# A shared leaf (devices 1 and 3 share the def's leaves): both lose it.
t_shared_leaf() {
    need_bin thin_repair
    trimmed_pool
    local leaf
    leaf=$(python3 "$POKE" leaves "$IMAGE" | awk '$1 == 1 { print $2 }')
    python3 "$POKE" leaves "$IMAGE" | awk -v l="$leaf" '$1 == 3 { for (i = 2; i <= NF; i++) if ($i == l) f = 1 } END { exit !f }' ||
        skip "the restored pool does not share leaf $leaf"
    damaged "$IMAGE" "$leaf" zero
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    expect_stderr_match 'device 1: [0-9]+ mappings recovered of 1200'
    expect_stderr_match 'device 3: [0-9]+ mappings recovered of 1200'
    passes_checks out.meta
    no_wrong_mappings "$IMAGE" out.meta >/dev/null
}
tcase shared-leaf t_shared_leaf

# A device's internal root node: its leaves are orphans the space map
# vouches for, and come back.
t_internal() {   # zero|checksum
    need_bin thin_repair
    trimmed_pool
    local root
    root=$(dev_root "$IMAGE" 2)
    damaged "$IMAGE" "$root" "$1"
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    expect_stderr_match "block $root \(device 2 mapping tree\)"
    expect_stderr_match '[1-9][0-9]* brought back'
    passes_checks out.meta
    same_pool "$IMAGE" out.meta
    # 1.1.0 gives up here; 0.9.0 loses the device's mappings
    run_ok "$BIN/thin_dump" -r --expand-shared "$DMG"
    expanded "$IMAGE" a.xml
    sed 1d a.xml >a1
    sed 1d "$STDOUT" >b1
    expect_same a1 b1 "thin_dump -r --expand-shared"
}
tcase internal-zeroed t_internal zero
tcase internal-bad-checksum t_internal checksum

# The top-level leaf: devices whose number of mappings tells them apart get
# their trees back; devices 1 and 3 (1200 mappings each) are left out, and
# the report names them.
t_top_leaf() {
    need_bin thin_repair
    trimmed_pool
    local top
    top=$(sb_field "$IMAGE" mapping_root)
    damaged "$IMAGE" "$top" zero
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    expect_stderr_match 'device 1: LEFT OUT'
    expect_stderr_match 'device 3: LEFT OUT'
    expect_stderr_match 'device 0: [0-9]+ mappings recovered of 1192; its tree was matched'
    passes_checks out.meta
    no_wrong_mappings "$IMAGE" out.meta >/dev/null
    expanded out.meta b.xml
    grep -q 'dev_id="1"' b.xml && fail "device 1 should be left out"
    grep -q 'dev_id="0" mapped_blocks="1192"' b.xml || fail "device 0 should be complete"
    grep -q 'dev_id="2" mapped_blocks="1183"' b.xml || fail "device 2 should be complete"
    grep -q 'dev_id="4" mapped_blocks="0"' b.xml || fail "device 4 should be there"
}
tcase top-leaf t_top_leaf

# The details leaf: every device is still in the mapping tree; details are
# rebuilt so that all their mappings count as shared.
t_details_leaf() {
    need_bin thin_repair
    trimmed_pool
    local det
    det=$(sb_field "$IMAGE" details_root)
    damaged "$IMAGE" "$det" checksum
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    expect_stderr_match 'details rebuilt'
    passes_checks out.meta
    no_wrong_mappings "$IMAGE" out.meta >/dev/null
    expanded "$IMAGE" a.xml
    expanded out.meta b.xml
    [ "$(count_mappings a.xml)" = "$(count_mappings b.xml)" ] || fail "mappings lost"
    # snapshot time after every mapping's time, pool time not before it
    grep -q 'snap_time="3"' b.xml || fail "rebuilt details should have snap_time 3"
    grep -q '<superblock [^>]*time="3"' b.xml || fail "the pool's time should be 3"
}
tcase details-leaf t_details_leaf

# A leaf of the held metadata snapshot's trees only: the live pool is whole.
t_snapshot_only_node() {
    need_bin thin_repair
    kernel_image 03-msnap-held
    local leaf
    leaf=$(python3 "$POKE" leaves "$IMAGE" --snap | awk '{ for (i = 2; i <= NF; i++) print $i }' |
        sort -u | while read -r b; do
            python3 "$POKE" leaves "$IMAGE" | grep -qw "$b" || echo "$b"
        done | head -n 1)
    [ -n "$leaf" ] || skip "no leaf only the snapshot holds"
    damaged "$IMAGE" "$leaf" zero
    fresh out.meta
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    passes_checks out.meta
    same_pool "$IMAGE" out.meta
}
tcase snapshot-only-node t_snapshot_only_node

# The space maps are rebuilt from what was salvaged: damage there loses nothing.
t_space_map_damage() {
    need_bin thin_repair
    trimmed_pool
    local idx
    idx=$(python3 - "$IMAGE" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read(4096)
print(struct.unpack_from('<Q', d, 192 + 16)[0])
EOF
)
    damaged "$IMAGE" "$idx" zero
    fresh out.meta 4M
    run_ok "$BIN/thin_repair" -i "$DMG" -o out.meta
    passes_checks out.meta
    same_pool "$IMAGE" out.meta
}
tcase space-map-damage t_space_map_damage

finish
