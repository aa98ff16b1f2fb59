#!/bin/bash
# t-hostile.sh - hostile input (issue 9): metadata and XML built to make a
# tool loop, recurse, allocate or overflow.  Every tool must answer in
# bounded time (30 s) and memory (1 GiB of address space, not enforced on
# sanitizer builds) with exit 0 or a clean exit 1 that says why; never a
# crash, a sanitizer report, exit 2, or a hang.
#
# Images (tools/damage-matrix.py hostile KIND, every block resealed so that
# only the rules behind the checksums can catch it; base: the kernel fixture
# 02, whose device 0 has a 2-level mapping tree): nr_entries and
# max_entries of 2^32-1, nodes pointing at themselves (mapping tree roots,
# details tree root), a cycle of two nodes, a 41-level tree, an internal
# node whose 252 children are one leaf, 500 devices naming one leaf 63504
# times each through shared nodes, a mapping to data block 2^40-1,
# superblock sizes of 2^63 (metadata_nr_blocks, both space maps), roots
# and the held snapshot at 2^63 or at a btree node.  Each is run through
# every read-only tool built (tests/lib/read-tools.sh); thin_dump's and
# thin_check's verdicts are pinned per kind (thin_dump's agree with 1.1.0's,
# where 1.1.0 does not crash on its own checks); thin_repair from each
# image exits 0 or 1, leaves it unchanged, and writes metadata thin_check
# accepts or no superblock at all.
#
# A 100 GB sparse file as metadata: holding a pool (same dump as the small
# image, check passes, fast), holding nothing, and holding a pool whose data
# space map claims one bitmap per metadata block (26 million of them).
#
# XML (thin_restore, onto an output that held valid metadata): entity
# expansion and external entities (refused: no DOCTYPE at all), a 16 MiB
# uuid (ignored, as by 1.1.0), a 16 MiB unknown attribute (refused), a
# number of a million digits, 2^64, ranges that pass 2^64 or
# the pool, a pool of 2^40 data blocks, 200000 nested unknown elements.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/read-tools.sh
. "$TESTLIB_DIR/read-tools.sh"

CMD_TIMEOUT=30
MEM_KB=1048576
MATRIX=$REPO/tools/damage-matrix.py

# run_all_read_tools IMG DEV1 DEV2 DUMP CHECK: every read tool on IMG, each
# clean; thin_dump's exit must be DUMP, thin_check's CHECK (0, 1, or "any").
run_all_read_tools() {
    local img=$1 dev1=$2 dev2=$3 want_dump=$4 want_check=$5 label tool args needs want ran=0
    while IFS='|' read -r label tool args needs; do
        run_read_tool "$MEM_KB" "$tool" "$args" "$needs"
        ran=$((ran + 1))
        case $RC in
            0) ;;
            1) [ -s "$STDERR" ] || fail "$label: exit 1 without a message" ;;
            2) fail "$label: exit 2 (command-line misuse) on hostile input" ;;
            124 | 137) fail "$label: timed out after ${CMD_TIMEOUT}s" ;;
            86) fail "$label: sanitizer report: $(grep -m1 -E 'ERROR|runtime error' "$STDERR")" ;;
            *) fail "$label: exit $RC (crash or signal): $(head -c 300 "$STDERR")" ;;
        esac
        case $label in
            dump) want=$want_dump ;;
            check) want=$want_check ;;
            *) want=any ;;
        esac
        if [ "$want" != any ] && [ "$RC" != "$want" ]; then
            fail "$label: expected exit $want, got $RC ($(head -n 1 "$STDERR"))"
        fi
        if [ "$tool" = thin_dump ] && [ "$RC" = 1 ] && [ "$(wc -l <"$STDERR")" -ne 1 ]; then
            fail "$label: expected one line on stderr, got $(wc -l <"$STDERR")"
        fi
    done < <(read_tool_lines "$img" "$dev1" "$dev2")
    [ "$ran" -gt 0 ] || fail "no read-only tool is built in $BIN"
}

# repair_hostile IMG: thin_repair from IMG, bounded, exits 0 or 1 with one
# line; what it writes then passes thin_check (or holds no superblock).
repair_hostile() {
    local img=$1
    [ -x "$BIN/thin_repair" ] || return 0
    remember_sum "$img"
    rm -f "$T/rep.img"
    truncate -s 8M "$T/rep.img"
    run_bounded "$MEM_KB" "$BIN/thin_repair" -i "$img" -o "$T/rep.img"
    case $RC in
        0) ;;
        1) [ -s "$STDERR" ] || fail "thin_repair: exit 1 without a message" ;;
        124 | 137) fail "thin_repair timed out after ${CMD_TIMEOUT}s" ;;
        *) fail "thin_repair: exit $RC: $(head -c 300 "$STDERR")" ;;
    esac
    expect_unchanged "$img"
    if [ "$RC" = 0 ]; then
        run_bounded "$MEM_KB" "$BIN/thin_check" "$T/rep.img"
        [ "$RC" = 0 ] || fail "thin_repair wrote metadata that thin_check rejects: $(head -n 3 "$STDERR")"
    else
        [ "$(sb_field "$T/rep.img" csum_ok)" = 0 ] ||
            fail "a failed thin_repair left a valid superblock behind"
    fi
}

t_image() {   # KIND DUMP CHECK
    need_cmd python3
    need_bin thin_dump
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/h.img"
    python3 "$MATRIX" hostile "$1" "$T/h.img" || fail "cannot make the $1 image"
    run_all_read_tools "$T/h.img" 0 10 "$2" "$3"
    repair_hostile "$T/h.img"
}

# kind | thin_dump's exit | thin_check's exit
# (metadata_nr_blocks is not used by the kernel nor by 1.1.0, whose
# thin_check passes it too; thin_dump without -m reads neither the space
# maps nor the held snapshot, so their roots past the end do not stop it,
# as they do not stop 1.1.0's)
KINDS='nr-entries|1|1
max-entries|1|1
self-bottom|1|1
self-top|1|1
self-details|1|1
cycle|1|1
deep|1|1
wide|1|1
huge-values|0|1
metadata-nr-blocks|0|0
meta-sm-nr-blocks|0|1
data-sm-nr-blocks|0|1
data-sm-nr-blocks-dev|0|1
roots-out-of-range|1|1
held-root-node|0|1
held-root-huge|0|1'

while IFS='|' read -r kind d c; do
    tcase "image.$kind" t_image "$kind" "$d" "$c"
done <<<"$KINDS"

# 500 devices, each naming one leaf 63504 times through 252 shared nodes
# (1 MiB of metadata): listed naively, 250 MB of leaf lists and a 600 MB
# dump.  A tree names a leaf once: thin_dump refuses it at once.
t_fanout() {
    local xml=$T/pool.xml img=$T/fan.img start
    need_bin thin_dump
    need_bin thin_restore
    gen_xml "$xml" --devices 500 --mappings-per-device 1 --seed 3
    truncate -s 16M "$img"
    run "$BIN/thin_restore" -q -i "$xml" -o "$img"
    [ "$RC" -eq 0 ] || fail "our thin_restore failed"
    python3 "$MATRIX" hostile fanout "$img" || fail "cannot make the fanout image"
    start=$SECONDS
    run_all_read_tools "$img" 0 1 1 1
    [ $((SECONDS - start)) -le 60 ] || fail "the read tools took $((SECONDS - start)) s"
}
tcase image.fanout-500-devices t_fanout

# ---------------------------------------------------------------- 100 GB sparse file

sparse_100g() {   # OUT: a 100 GB sparse file with fixture 02 at its start
    need_cmd truncate dd
    kernel_image 02-thins-snaps
    truncate -s 100G "$1" || skip "cannot create a 100 GB sparse file here"
    dd if="$IMAGE" of="$1" conv=notrunc status=none || fail "cannot copy the fixture"
}

t_sparse_pool() {
    need_bin thin_dump
    sparse_100g "$T/big.img"
    run_all_read_tools "$T/big.img" 0 10 0 0
    run_bounded "$MEM_KB" "$BIN/thin_dump" "$T/big.img"
    cp "$STDOUT" "$T/big.xml"
    run_bounded "$MEM_KB" "$BIN/thin_dump" "$IMAGE"
    expect_same "$STDOUT" "$T/big.xml" "dump of the 100 GB file"
}

t_sparse_empty() {
    need_bin thin_dump
    # thin_repair scans for nodes: the first 4161600 blocks, never the
    # whole 100 GB, and reads none of them: holes are zero blocks unread
    # (was about 10-60 s reading 16 GiB of zeroes, now about 0.01 s)
    CMD_TIMEOUT=20
    truncate -s 100G "$T/big.img" || skip "cannot create a 100 GB sparse file here"
    run_all_read_tools "$T/big.img" 0 10 1 1
}

t_sparse_data_sm() {
    need_bin thin_dump
    sparse_100g "$T/big.img"
    python3 "$MATRIX" hostile data-sm-nr-blocks-dev "$T/big.img" || fail "cannot make the image"
    [ "$(sb_field "$T/big.img" data_nr_blocks)" = $((26214400 * 16320)) ] ||
        fail "the data space map size was not set"
    run_all_read_tools "$T/big.img" 0 10 0 1
}

tcase sparse-100g.pool t_sparse_pool
tcase sparse-100g.zeroes t_sparse_empty
tcase sparse-100g.data-sm-26M-bitmaps t_sparse_data_sm

# ---------------------------------------------------------------- XML

SB_OPEN='<superblock uuid="" time="0" transaction="1" data_block_size="128" nr_data_blocks="1000">'
DEV_OPEN='<device dev_id="1" mapped_blocks="1" transaction="0" creation_time="0" snap_time="0">'

# restore_hostile WANT_RC MESSAGE_ERE: restore $T/h.xml onto an output that
# held valid metadata; a refusal must name the problem and leave no valid
# superblock behind.
restore_hostile() {
    local want=$1 ere=$2
    need_bin thin_restore
    need_cmd python3
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/out.img"
    run_bounded "$MEM_KB" "$BIN/thin_restore" -i "$T/h.xml" -o "$T/out.img"
    case $RC in
        0 | 1) ;;
        124 | 137) fail "thin_restore timed out after ${CMD_TIMEOUT}s" ;;
        *) fail "thin_restore: exit $RC: $(head -c 300 "$STDERR")" ;;
    esac
    [ "$want" = any ] || [ "$RC" = "$want" ] || fail "expected exit $want, got $RC"
    if [ "$RC" = 1 ]; then
        [ "$(wc -l <"$STDERR")" -eq 1 ] || fail "expected one line on stderr"
        expect_stderr_match "$ere"
        [ "$(sb_field "$T/out.img" csum_ok)" = 0 ] ||
            fail "a refused restore left a valid superblock behind"
    elif [ -x "$BIN/thin_check" ]; then
        run "$BIN/thin_check" "$T/out.img"
        [ "$RC" = 0 ] || fail "the restored metadata fails thin_check: $(head -n 3 "$STDERR")"
    fi
}

t_xml_entities() {
    python3 - "$T/h.xml" <<'EOF'
import sys
ents = ['<!ENTITY lol "lol">'] + ['<!ENTITY lol%d "%s">' % (i, ('&lol%s;' % (i - 1 or '')) * 10)
                                  for i in range(1, 10)]
open(sys.argv[1], 'w').write('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n%s\n]>\n'
    '<superblock uuid="&lol9;" time="0" transaction="1" data_block_size="128" '
    'nr_data_blocks="100">\n</superblock>\n' % '\n'.join(ents))
EOF
    restore_hostile 1 'DOCTYPE'
}

t_xml_external() {
    printf '<?xml version="1.0"?>\n<!DOCTYPE superblock SYSTEM "file:///etc/passwd">\n%s\n</superblock>\n' \
        "$SB_OPEN" >"$T/h.xml"
    restore_hostile 1 'DOCTYPE'
}

# a 16 MiB uuid: ignored, as 1.1.0 ignores it (the dump says uuid="")
t_xml_giant_attr() {
    python3 -c "import sys; open(sys.argv[1], 'w').write('<superblock uuid=\"' + 'A' * (16 << 20) + '\" time=\"0\" transaction=\"1\" data_block_size=\"128\" nr_data_blocks=\"100\">\n</superblock>\n')" "$T/h.xml"
    restore_hostile 0 ''
    run_ok "$BIN/thin_dump" "$T/out.img"
    expect_stdout_match '^<superblock uuid="" time="0" transaction="1" '
}

# a 16 MiB value of an unknown attribute: refused, naming it
t_xml_giant_unknown() {
    python3 -c "import sys; open(sys.argv[1], 'w').write(sys.argv[2] + '\n<device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\" junk=\"' + 'B' * (16 << 20) + '\">\n</device>\n</superblock>\n')" "$T/h.xml" "$SB_OPEN"
    restore_hostile 1 "h.xml:2:1: unknown attribute 'junk' in <device>"
}

t_xml_long_number() {
    python3 -c "import sys; open(sys.argv[1], 'w').write('<superblock uuid=\"\" time=\"0\" transaction=\"' + '9' * (1 << 20) + '\" data_block_size=\"128\" nr_data_blocks=\"100\">\n</superblock>\n')" "$T/h.xml"
    restore_hostile 1 'transaction.*out of range'
}

t_xml_u64_overflow() {
    printf '<superblock uuid="" time="0" transaction="18446744073709551616" data_block_size="128" nr_data_blocks="100">\n</superblock>\n' >"$T/h.xml"
    restore_hostile 1 'transaction.*out of range'
}

t_xml_range_past_2_64() {
    printf '%s\n%s\n<range_mapping origin_begin="18446744073709551615" data_begin="0" length="2" time="0"/>\n</device>\n</superblock>\n' \
        "$SB_OPEN" "$DEV_OPEN" >"$T/h.xml"
    restore_hostile 1 '2\^64'
}

t_xml_range_past_pool() {
    printf '%s\n%s\n<range_mapping origin_begin="0" data_begin="0" length="18446744073709551615" time="0"/>\n</device>\n</superblock>\n' \
        "$SB_OPEN" "$DEV_OPEN" >"$T/h.xml"
    restore_hostile 1 'nr_data_blocks'
}

t_xml_huge_pool() {
    printf '<superblock uuid="" time="0" transaction="1" data_block_size="128" nr_data_blocks="1099511627776">\n%s\n<range_mapping origin_begin="0" data_begin="0" length="1099511627775" time="0"/>\n</device>\n</superblock>\n' \
        "$DEV_OPEN" >"$T/h.xml"
    restore_hostile 1 'metadata space'
}

t_xml_deep() {
    python3 -c "import sys; open(sys.argv[1], 'w').write(sys.argv[2] + '<a>' * 200000 + '</a>' * 200000 + '</superblock>\n')" \
        "$T/h.xml" "$SB_OPEN"
    restore_hostile 1 'unknown element'
}

tcase xml.entity-expansion t_xml_entities
tcase xml.external-entity t_xml_external
tcase xml.attribute-16MiB t_xml_giant_attr
tcase xml.unknown-attribute-16MiB t_xml_giant_unknown
tcase xml.number-1M-digits t_xml_long_number
tcase xml.number-2^64 t_xml_u64_overflow
tcase xml.range-past-2^64 t_xml_range_past_2_64
tcase xml.range-past-pool t_xml_range_past_pool
tcase xml.pool-2^40-blocks t_xml_huge_pool
tcase xml.nesting-200000 t_xml_deep
finish
