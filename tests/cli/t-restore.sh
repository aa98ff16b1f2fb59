#!/bin/bash
# t-restore.sh - thin_restore: what it writes, against thin-provisioning-tools
# 1.1.0 and 0.9.0, and what it refuses.
#
#  - Generated XML in many shapes (tools/gen-thin-xml.py), both dialects: our
#    restore passes 1.1.0's and 0.9.0's thin_check; the expanded dump of our
#    restore equals the expanded dump of 1.1.0's restore of the same XML; the
#    two images are the same block for block (btree nodes compared by header
#    and used entries: 1.1.0 leaves stale bytes in unused slots); 1.1.0's
#    restore of our dump gives the same pool again; <def>/<ref> become really
#    shared leaves.
#  - Every dump (ours, 1.1.0's, 0.9.0's) and thin_delta's output validate
#    against docs/thin-xml.rng.
#  - Bad XML: exit 1, one message naming the XML line and column, the
#    output's superblock left invalid (even where a valid one was before),
#    the input untouched.
#  - The command line: help, version, misuse (exit 2), files, overrides, -q.
# shellcheck source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

SIZE=8M
SCHEMA=$REPO/docs/thin-xml.rng

# key | generator arguments
SHAPES='one|--devices 1 --mappings-per-device 3000 --seed 1
many|--devices 300 --mappings-per-device 12 --seed 2
snaps|--devices 2 --snapshots 3 --mappings-per-device 1500 --share-fraction 0.6 --seed 3
singles|--devices 2 --mappings-per-device 1500 --run-length 1 --seed 4
longruns|--devices 1 --snapshots 1 --mappings-per-device 20000 --run-length 2000 --seed 5
bigblock|--devices 2 --snapshots 1 --mappings-per-device 1500 --data-block-size 1024 --seed 6
empty|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7
nodevs|--devices 0
timetx|--devices 2 --snapshots 2 --mappings-per-device 400 --time 9 --transaction 77 --seed 10
defs|--dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8
defs-empty|--dialect 1.x --devices 1 --snapshots 2 --mappings-per-device 2000 --share-chunk 700 --empty-devices 2 --share-empty --seed 9
defs-small|--dialect 1.x --devices 3 --snapshots 6 --mappings-per-device 5000 --share-chunk 50 --share-fraction 0.5 --seed 11
manydevs|--devices 700 --mappings-per-device 5 --seed 14
big|--devices 2 --snapshots 3 --mappings-per-device 60000 --run-length 3 --share-fraction 0.7 --seed 12'

shape_args() {
    printf '%s\n' "$SHAPES" | awk -F'|' -v k="$1" '$1 == k { print $2 }'
}

shape_size() {
    case $1 in big) echo 80M ;; *) echo "$SIZE" ;; esac
}

# shape_xml KEY: sets XML (generated once per file).
shape_xml() {
    XML=$CACHE/$1.xml
    if [ ! -s "$XML" ]; then
        # shellcheck disable=SC2046
        gen_xml "$XML.tmp" $(shape_args "$1")
        mv "$XML.tmp" "$XML"
    fi
}

# our_restore XML OUT [SIZE] [OPTIONS...]: a fresh output restored by us.
our_restore() {
    local xml=$1 out=$2 size=${3:-$SIZE}
    shift 3 2>/dev/null || shift $#
    rm -f "$out"
    truncate -s "$size" "$out" || fail "cannot create $out"
    run "$BIN/thin_restore" -i "$xml" -o "$out" "$@"
    [ "$RC" -eq 0 ] || fail "thin_restore exited $RC"
    expect_stdout_empty
    expect_stderr_empty
}

# ref_restore XML OUT SIZE [OPTIONS...]: the same with 1.1.0.
ref_restore() {
    local xml=$1 out=$2 size=$3
    shift 3
    rm -f "$out"
    truncate -s "$size" "$out" || fail "cannot create $out"
    "$REF_1X/thin_restore" -q -i "$xml" -o "$out" "$@" ||
        fail "reference thin_restore failed on $xml"
}

# expanded IMG OUT: our canonical dump.
expanded() {
    "$BIN/thin_dump" --expand-shared "$1" >"$2" 2>"$T/expand.err" ||
        fail "thin_dump --expand-shared $1 failed: $(head -c 300 "$T/expand.err")"
}

# The block-for-block comparison of two images (a helper script of this file).
BLKCMP=$FILE_TMP/blkcmp.py
cat >"$BLKCMP" <<'EOF'
import struct, sys
def norm(blk):
    flags, = struct.unpack_from('<I', blk, 4)
    if flags in (1, 2):
        nr, mx, vs = struct.unpack_from('<III', blk, 16)
        if mx * (8 + vs) + 32 <= 4096 and nr <= mx:
            # the header (checksum excluded: it covers the unused slots too)
            # and the used keys and values
            return blk[4:32] + blk[32:32 + 8 * nr] + blk[32 + 8 * mx:32 + 8 * mx + vs * nr]
    return blk[4:]
a = open(sys.argv[1], 'rb').read()
b = open(sys.argv[2], 'rb').read()
n = min(len(a), len(b)) // 4096
d = [i for i in range(n) if norm(a[i*4096:(i+1)*4096]) != norm(b[i*4096:(i+1)*4096])]
if d:
    print("%d blocks differ, first: %s" % (len(d), d[:10]))
sys.exit(1 if d else 0)
EOF

validate() {   # FILE LABEL
    xmllint --noout --relaxng "$SCHEMA" "$1" >"$T/xmllint.out" 2>&1 ||
        fail "$2 does not validate against docs/thin-xml.rng: $(head -c 400 "$T/xmllint.out")"
}

# ------------------------------------------------------------ generated shapes

t_check() {   # KEY: our restore passes both reference checkers
    local key=$1
    need_bin thin_restore
    need_ref both
    shape_xml "$key"
    our_restore "$XML" "$T/our.meta" "$(shape_size "$key")"
    run "$REF_1X/thin_check" "$T/our.meta"
    [ "$RC" -eq 0 ] || fail "1.1.0 thin_check rejects our restore"
    run "$REF_09/thin_check" "$T/our.meta"
    [ "$RC" -eq 0 ] || fail "0.9.0 thin_check rejects our restore"
}

t_same_pool() {   # KEY: the expanded dumps of ours and 1.1.0's restore agree
    local key=$1 size
    need_bin thin_restore
    need_bin thin_dump
    need_ref 1x
    shape_xml "$key"
    size=$(shape_size "$key")
    our_restore "$XML" "$T/our.meta" "$size"
    ref_restore "$XML" "$T/ref.meta" "$size"
    expanded "$T/our.meta" "$T/our.x"
    expanded "$T/ref.meta" "$T/ref.x"
    expect_same "$T/ref.x" "$T/our.x" "expanded dump of our restore vs 1.1.0's"
}

t_same_layout() {   # KEY: ... and the images are the same block for block
    local key=$1 size
    need_bin thin_restore
    need_ref 1x
    need_cmd python3
    shape_xml "$key"
    size=$(shape_size "$key")
    our_restore "$XML" "$T/our.meta" "$size"
    ref_restore "$XML" "$T/ref.meta" "$size"
    python3 "$BLKCMP" "$T/ref.meta" "$T/our.meta" >"$T/blkcmp.out" ||
        fail "our image is laid out differently from 1.1.0's: $(cat "$T/blkcmp.out")"
}

t_roundtrip() {   # KEY: 1.1.0 restores our dump to the same pool
    local key=$1 size
    need_bin thin_restore
    need_bin thin_dump
    need_ref 1x
    shape_xml "$key"
    size=$(shape_size "$key")
    our_restore "$XML" "$T/our.meta" "$size"
    "$BIN/thin_dump" -o "$T/our.xml" "$T/our.meta" || fail "thin_dump failed"
    ref_restore "$T/our.xml" "$T/again.meta" "$size"
    expanded "$T/our.meta" "$T/our.x"
    expanded "$T/again.meta" "$T/again.x"
    expect_same "$T/our.x" "$T/again.x" "expanded dump after 1.1.0 restored our dump"
    # and we restore our own dump to the same pool
    our_restore "$T/our.xml" "$T/ours-again.meta" "$size"
    expanded "$T/ours-again.meta" "$T/ours-again.x"
    expect_same "$T/our.x" "$T/ours-again.x" "expanded dump after we restored our dump"
}

t_schema() {   # KEY: every dump of our restore validates
    local key=$1
    need_bin thin_restore
    need_bin thin_dump
    need_ref both
    need_cmd xmllint
    shape_xml "$key"
    validate "$XML" "the generated XML"
    our_restore "$XML" "$T/our.meta" "$(shape_size "$key")"
    "$BIN/thin_dump" "$T/our.meta" >"$T/ours.xml" || fail "thin_dump failed"
    validate "$T/ours.xml" "our dump"
    "$REF_1X/thin_dump" "$T/our.meta" >"$T/ref1x.xml" || fail "1.1.0 thin_dump failed"
    validate "$T/ref1x.xml" "1.1.0's dump"
    "$REF_09/thin_dump" "$T/our.meta" >"$T/ref09.xml" || fail "0.9.0 thin_dump failed"
    validate "$T/ref09.xml" "0.9.0's dump"
}

while IFS='|' read -r key _; do
    tcase "$key.check" t_check "$key"
    tcase "$key.same-pool-as-1.1.0" t_same_pool "$key"
    tcase "$key.same-layout-as-1.1.0" t_same_layout "$key"
    tcase "$key.roundtrip" t_roundtrip "$key"
done <<<"$SHAPES"
for key in one empty defs defs-empty timetx; do
    tcase "$key.schema" t_schema "$key"
done

# <def>/<ref> must come back as leaves shared between devices, and 1.1.0
# must see them as defs again.
t_defs_shared() {
    local key=$1 n
    need_bin thin_restore
    need_ref 1x
    need_cmd python3
    shape_xml "$key"
    our_restore "$XML" "$T/our.meta"
    "$REF_1X/thin_dump" "$T/our.meta" >"$T/ref.xml" || fail "1.1.0 thin_dump failed"
    n=$(grep -c '<def ' "$T/ref.xml")
    [ "$n" -ge 2 ] || fail "1.1.0's dump of our restore of $key has $n defs, expected >= 2"
    python3 "$POKE" leaves "$T/our.meta" >"$T/leaves" || fail "meta-poke leaves failed"
    awk '{ for (i = 2; i <= NF; i++) seen[$i]++ } END { for (b in seen) if (seen[b] > 1) s++; exit !s }' \
        "$T/leaves" || fail "no leaf block is shared between devices"
}
tcase "defs.leaves-really-shared" t_defs_shared defs
tcase "defs-small.leaves-really-shared" t_defs_shared defs-small

# 0.9.0's superblock attributes are read and ignored, as 1.1.0 does.
t_09_attributes() {
    need_bin thin_restore
    need_cmd python3
    gen_xml "$T/in.xml" --devices 1 --mappings-per-device 100 --seed 3
    sed -i '1s/<superblock uuid=""/<superblock uuid="0123456789abcdef" metadata_snap="77"/; 1s/flags="0"/flags="1"/; 1s/version="[0-9]*"/version="1"/' "$T/in.xml"
    grep -q 'metadata_snap="77"' "$T/in.xml" || fail "could not edit the XML"
    our_restore "$T/in.xml" "$T/our.meta"
    [ "$(sb_field "$T/our.meta" version)" = 2 ] || fail "version is not 2"
    [ "$(sb_field "$T/our.meta" flags)" = 0 ] || fail "flags are not 0"
    [ "$(sb_field "$T/our.meta" metadata_snap)" = 0 ] || fail "a metadata snapshot is recorded"
    [ "$(head -c 32 "$T/our.meta" | tail -c 16 | tr -d '\0' | wc -c)" -eq 0 ] ||
        fail "the uuid is not zero"
}
tcase "dialect-0.9.0-attributes-ignored" t_09_attributes

# The kernel's pools, through their golden 1.1.0 dumps.
t_kernel_dump() {   # NAME
    local xml=$FIXTURES/kernel/$1.dump.xml
    need_bin thin_restore
    need_ref 1x
    need_cmd python3
    [ -f "$xml" ] || fail "$xml is missing"
    our_restore "$xml" "$T/our.meta"
    ref_restore "$xml" "$T/ref.meta" "$SIZE"
    run "$REF_1X/thin_check" -q "$T/our.meta"
    [ "$RC" -eq 0 ] || fail "1.1.0 thin_check rejects our restore"
    python3 "$BLKCMP" "$T/ref.meta" "$T/our.meta" >"$T/blkcmp.out" ||
        fail "laid out differently from 1.1.0: $(cat "$T/blkcmp.out")"
    "$BIN/thin_dump" "$T/our.meta" >"$T/dump.xml" || fail "thin_dump failed"
    expect_same "$xml" "$T/dump.xml" "our dump of the restored $1 vs its golden dump"
}
for k in 01-fresh 04-msnap-released; do
    tcase "kernel.$k.restore" t_kernel_dump "$k"
done
# 02's golden dump names its def after the kernel's block 95: ours renames it
t_kernel_02() {
    need_bin thin_restore
    need_bin thin_dump
    our_restore "$FIXTURES/kernel/02-thins-snaps.dump.xml" "$T/our.meta"
    kernel_image 02-thins-snaps
    expanded "$IMAGE" "$T/kernel.x"
    expanded "$T/our.meta" "$T/our.x"
    expect_same "$T/kernel.x" "$T/our.x" "expanded dump of the kernel's pool vs our restore"
}
tcase "kernel.02-thins-snaps.restore" t_kernel_02

# thin_delta's output is in the schema too.
t_delta_schema() {
    need_ref both
    need_cmd xmllint
    cached_image deltapool 1x "$SIZE" --devices 2 --snapshots 1 --mappings-per-device 800 --seed 30
    local tool args
    for tool in "$REF_1X/thin_delta" "$REF_09/thin_delta"; do
        for args in "--snap1 0 --snap2 2" "--verbose --snap1 0 --snap2 2" "--snap1 0 --snap2 1"; do
            # shellcheck disable=SC2086
            "$tool" $args "$IMAGE" >"$T/delta.xml" 2>/dev/null || fail "$tool $args failed"
            validate "$T/delta.xml" "$tool $args output"
        done
    done
}
tcase "schema.thin-delta" t_delta_schema

# The schema is not a rubber stamp.
t_schema_rejects() {
    need_cmd xmllint
    local sb='<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="100">'
    local dev='<device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">'
    local body
    for body in '<foo/>' "$dev<single_mapping origin_block=\"0\" data_block=\"1\" time=\"16777216\"/></device>" \
        "$dev<range_mapping origin_begin=\"0\" data_begin=\"1\" length=\"0\" time=\"0\"/></device>" \
        '<device dev_id="1"/>' 'text' '<def name="a"><ref name="b"/></def>' \
        "$dev<single_mapping origin_block=\"-1\" data_block=\"1\" time=\"0\"/></device>"; do
        printf '%s%s</superblock>' "$sb" "$body" >"$T/bad.xml"
        if xmllint --noout --relaxng "$SCHEMA" "$T/bad.xml" >/dev/null 2>&1; then
            fail "the schema accepts: $body"
        fi
    done
}
tcase "schema.rejects-bad-documents" t_schema_rejects

# ------------------------------------------------------------ bad XML

SB='<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="100">'
DEV='<device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">'
DEV2='<device dev_id="2" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">'

# bad_case LINE MESSAGE-ERE: restore $T/bad.xml onto an output that held a
# valid pool; it must fail with "bad.xml:LINE:COL:" and the message, leave
# no valid superblock, and not touch the input.
bad_case() {
    local line=$1 ere=$2
    need_bin thin_restore
    need_bin thin_dump
    gen_xml "$T/good.xml" --devices 1 --mappings-per-device 50 --seed 5
    our_restore "$T/good.xml" "$T/out.meta" 1M
    "$BIN/thin_dump" "$T/out.meta" >/dev/null 2>&1 || fail "the good restore does not dump"
    remember_sum "$T/bad.xml"
    run_fail "$BIN/thin_restore" -i "$T/bad.xml" -o "$T/out.meta"
    expect_stdout_empty
    [ "$(wc -l <"$STDERR")" -eq 1 ] || fail "expected one line on stderr"
    if [ -n "$line" ]; then
        expect_stderr_match "bad\\.xml:$line:[0-9]+: "
    fi
    expect_stderr_match "$ere"
    expect_unchanged "$T/bad.xml"
    [ "$(head -c 4096 "$T/out.meta" | tr -d '\0' | wc -c)" -eq 0 ] ||
        fail "block 0 of the output is not zeroed"
    run "$BIN/thin_dump" "$T/out.meta"
    [ "$RC" -ne 0 ] || fail "thin_dump accepts the output of a failed restore"
}

xml_case() {   # LINE ERE CONTENT
    printf '%s' "$3" >"$T/bad.xml"
    bad_case "$1" "$2"
}

tcase "bad.empty-file" xml_case 1 'ends before </superblock>' ''
tcase "bad.binary" xml_case 1 'not well-formed' "$(printf 'x\001\002\003')"
tcase "bad.not-xml" xml_case 1 'not well-formed' 'this is not XML'
tcase "bad.no-end" xml_case 2 'ends before </superblock>' "$SB
$DEV</device>"
tcase "bad.mismatched-tag" xml_case 2 'not well-formed' "$SB
$DEV</def></superblock>"
tcase "bad.junk-after" xml_case 2 'not well-formed' "$SB
</superblock><superblock/>"
tcase "bad.unknown-element" xml_case 3 'unknown element <foo>' "$SB
$DEV
<foo/></device></superblock>"
tcase "bad.unknown-root" xml_case 1 'unknown element <metadata>' '<metadata/>'
tcase "bad.unknown-attribute" xml_case 2 "unknown attribute 'colour' in <device>" "$SB
<device dev_id=\"1\" colour=\"red\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\"></device></superblock>"
tcase "bad.missing-attribute" xml_case 3 '<single_mapping> has no time attribute' "$SB
$DEV
<single_mapping origin_block=\"0\" data_block=\"1\"/></device></superblock>"
tcase "bad.missing-superblock-attribute" xml_case 1 '<superblock> has no nr_data_blocks attribute' \
    '<superblock uuid="" time="1" transaction="2" data_block_size="128"></superblock>'
tcase "bad.time-too-wide" xml_case 3 'time="16777216" of <single_mapping> is out of range' "$SB
$DEV
<single_mapping origin_block=\"0\" data_block=\"1\" time=\"16777216\"/></device></superblock>"
tcase "bad.dev-id-too-big" xml_case 2 'dev_id="4294967296" of <device> is out of range' "$SB
<device dev_id=\"4294967296\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\"></device></superblock>"
tcase "bad.u64-overflow" xml_case 3 'out of range' "$SB
$DEV
<single_mapping origin_block=\"18446744073709551616\" data_block=\"1\" time=\"0\"/></device></superblock>"
tcase "bad.not-a-number" xml_case 3 'is not a decimal number' "$SB
$DEV
<single_mapping origin_block=\"0x10\" data_block=\"1\" time=\"0\"/></device></superblock>"
tcase "bad.negative" xml_case 3 'is not a decimal number' "$SB
$DEV
<single_mapping origin_block=\"-1\" data_block=\"1\" time=\"0\"/></device></superblock>"
tcase "bad.zero-length" xml_case 3 'length="0" of <range_mapping> is out of range' "$SB
$DEV
<range_mapping origin_begin=\"0\" data_begin=\"1\" length=\"0\" time=\"0\"/></device></superblock>"
tcase "bad.past-nr-data-blocks" xml_case 4 'past the pool.s nr_data_blocks 100' "$SB
$DEV
<single_mapping origin_block=\"0\" data_block=\"1\" time=\"0\"/>
<range_mapping origin_begin=\"1\" data_begin=\"98\" length=\"3\" time=\"0\"/></device></superblock>"
tcase "bad.overlapping" xml_case 4 'does not follow virtual block 14' "$SB
$DEV
<range_mapping origin_begin=\"10\" data_begin=\"0\" length=\"5\" time=\"0\"/>
<single_mapping origin_block=\"14\" data_block=\"50\" time=\"0\"/></device></superblock>"
tcase "bad.unsorted" xml_case 4 'does not follow virtual block 20' "$SB
$DEV
<single_mapping origin_block=\"20\" data_block=\"1\" time=\"0\"/>
<single_mapping origin_block=\"3\" data_block=\"2\" time=\"0\"/></device></superblock>"
tcase "bad.ref-overlaps" xml_case 6 "def 'd' starts at virtual block 5" "$SB
<def name=\"d\"><range_mapping origin_begin=\"5\" data_begin=\"0\" length=\"5\" time=\"0\"/></def>
$DEV
<single_mapping origin_block=\"7\" data_block=\"50\" time=\"0\"/>

<ref name=\"d\"/></device></superblock>"
tcase "bad.unknown-ref" xml_case 3 "ref to an unknown def 'nope'" "$SB
$DEV
<ref name=\"nope\"/></device></superblock>"
tcase "bad.ref-before-def" xml_case 2 "unknown def 'd'" "$SB
$DEV<ref name=\"d\"/></device>
<def name=\"d\"></def></superblock>"
tcase "bad.ref-in-def" xml_case 2 '<ref> is not allowed inside <def>' "$SB
<def name=\"a\"><ref name=\"a\"/></def></superblock>"
tcase "bad.nested-def" xml_case 3 '<def> is not allowed inside <def>' "$SB
<def name=\"a\">
<def name=\"b\"></def></def></superblock>"
tcase "bad.device-in-device" xml_case 2 '<device> is not allowed inside <device>' "$SB
$DEV$DEV2</device></device></superblock>"
tcase "bad.mapping-outside" xml_case 2 '<single_mapping> is not allowed directly inside <superblock>' "$SB
<single_mapping origin_block=\"0\" data_block=\"1\" time=\"0\"/></superblock>"
tcase "bad.device-outside" xml_case 1 '<device> is not allowed outside <superblock>' "$DEV</device>"
tcase "bad.child-of-mapping" xml_case 3 '<ref> is not allowed inside <single_mapping>' "$SB
$DEV<single_mapping origin_block=\"0\" data_block=\"1\" time=\"0\">
<ref name=\"x\"/></single_mapping></device></superblock>"
tcase "bad.duplicate-device" xml_case 3 'device 1 is given twice' "$SB
$DEV</device>
$DEV</device></superblock>"
tcase "bad.duplicate-def" xml_case 3 "def 'a' is defined twice" "$SB
<def name=\"a\"></def>
<def name=\"a\"></def></superblock>"
tcase "bad.text" xml_case 2 'unexpected text' "$SB
$DEV hello </device></superblock>"
tcase "bad.data-block-size" xml_case 1 'invalid data block size 100' \
    '<superblock uuid="" time="1" transaction="2" data_block_size="100" nr_data_blocks="100"></superblock>'
tcase "bad.doctype" xml_case 1 'document type declarations' "<!DOCTYPE superblock>
$SB</superblock>"
# a billion laughs: refused at the DOCTYPE, before any entity is declared
LAUGHS='<!DOCTYPE lolz [<!ENTITY lol "lol">'
for i in 1 2 3 4 5 6 7 8 9; do
    LAUGHS="$LAUGHS<!ENTITY lol$i \"$(for _ in 1 2 3 4 5 6 7 8 9 10; do printf '&lol%s;' "$([ "$i" -gt 1 ] && echo $((i - 1)))"; done)\">"
done
LAUGHS="$LAUGHS]>
<superblock uuid=\"&lol9;\" time=\"1\" transaction=\"2\" data_block_size=\"128\" nr_data_blocks=\"100\"></superblock>"
tcase "bad.entity-expansion" xml_case 1 'document type declarations' "$LAUGHS"
# the kernel's metadata snapshot dumps say nr_data_blocks="0": not restorable
t_snapshot_dump() {
    cp "$FIXTURES/kernel/03-msnap-held.dump-m.xml" "$T/bad.xml"
    bad_case "" "past the pool.s nr_data_blocks 0"
}
tcase "bad.kernel-snapshot-dump" t_snapshot_dump

t_truncated() {   # a real dump cut short, at several places
    local cut
    need_bin thin_restore
    gen_xml "$T/full.xml" --dialect 1.x --devices 2 --snapshots 2 --mappings-per-device 2000 --share-chunk 300 --seed 6
    for cut in 10 2000 20000 "$(($(wc -c <"$T/full.xml") - 5))"; do
        head -c "$cut" "$T/full.xml" >"$T/bad.xml"
        bad_case "[0-9]+" 'ends before </superblock>|not well-formed'
    done
}
tcase "bad.truncated" t_truncated

t_out_of_space() {   # a pool that does not fit the output
    need_bin thin_restore
    gen_xml "$T/bad.xml" --devices 2 --mappings-per-device 60000 --run-length 1 --seed 7
    bad_case "[0-9]+" 'out of metadata space'
}
tcase "bad.out-of-metadata-space" t_out_of_space

# ------------------------------------------------------------ the parallel reader
# A regular file is cut into pieces parsed on several threads (thin_dump's
# own lines without expat, anything else with expat), the builder fed in
# document order.  THIN_RESTORE_THREADS=1 reads with one expat parser in turn;
# THIN_RESTORE_PIECE sets the piece size, THIN_RESTORE_EXPAT_ONLY=1 turns the
# canonical-line path off, THIN_RESTORE_STATS=1 prints what the reader did.
# Whatever the cutting, the output bytes and every error message must be
# those of the one-parser reading.

# par_restore XML OUT THREADS PIECE [EXPAT_ONLY [SIZE]]: sets STATS and RC;
# stderr without the statistics line is in $T/par.err.
par_restore() {
    local xml=$1 out=$2 threads=$3 piece=$4 expat=${5:-0} size=${6:-$SIZE}
    rm -f "$out"
    truncate -s "$size" "$out" || fail "cannot create $out"
    run env THIN_RESTORE_STATS=1 THIN_RESTORE_THREADS="$threads" THIN_RESTORE_PIECE="$piece" \
        THIN_RESTORE_EXPAT_ONLY="$expat" "$BIN/thin_restore" -i "$xml" -o "$out"
    STATS=$(grep 'reader:' "$STDERR")
    grep -v 'reader:' "$STDERR" >"$T/par.err"
    [ -n "$STATS" ] || fail "THIN_RESTORE_STATS printed nothing"
}

stat_of() {   # FIELD-NAME: the number before it in $STATS
    printf '%s\n' "$STATS" | sed -n "s/.* \\([0-9][0-9]*\\) $1.*/\\1/p"
}

# KEY: the same bytes from one parser and from many pieces on 2 or 3 threads
t_par_same() {
    local key=$1 size cfg
    need_bin thin_restore
    shape_xml "$key"
    size=$(shape_size "$key")
    par_restore "$XML" "$T/seq.meta" 1 0 0 "$size"
    [ "$RC" -eq 0 ] || fail "one-parser restore failed: $(cat "$T/par.err")"
    [[ $STATS == *" 1 threads"* ]] || fail "THIN_RESTORE_THREADS=1 used threads: $STATS"
    for cfg in "2 1 0" "2 997 0" "2 65536 0" "3 4096 0" "2 997 1" "2 1 1"; do
        # shellcheck disable=SC2086
        set -- $cfg
        par_restore "$XML" "$T/par.meta" "$1" "$2" "$3" "$size"
        [ "$RC" -eq 0 ] || fail "restore with $cfg failed: $(cat "$T/par.err")"
        [ ! -s "$T/par.err" ] || fail "restore with $cfg printed: $(head -c 300 "$T/par.err")"
        [[ $STATS == *"re-read: no"* ]] || fail "threads/piece/expat-only $cfg fell back: $STATS"
        if [ "$(wc -l <"$XML")" -gt 3 ]; then
            [ "$(stat_of pieces)" -gt 1 ] || fail "threads/piece/expat-only $cfg: one piece: $STATS"
        fi
        if [ "$3" = 0 ] && [ "$(wc -l <"$XML")" -gt 3 ]; then
            [ "$(stat_of bytes)" -gt 0 ] || fail "no canonical line read without expat: $STATS"
        fi
        cmp -s "$T/seq.meta" "$T/par.meta" ||
            fail "threads/piece/expat-only $cfg wrote other bytes than one parser"
    done
}
while IFS='|' read -r key _; do
    tcase "$key.parallel-same-bytes" t_par_same "$key"
done <<<"$SHAPES"

# The base document of the error and odd-document cases: defs, refs, devices.
par_base() {
    gen_xml "$T/base.xml" --dialect 1.x --devices 3 --snapshots 3 --mappings-per-device 400 \
        --share-chunk 50 --share-fraction 0.5 --seed 21
}

# par_same_error LINE: bad.xml fails alike with one parser and with pieces
# (LINE: the line the message must name, an ERE)
par_same_error() {
    local line=$1 cfg
    par_restore "$T/bad.xml" "$T/seq.meta" 1 0 0 1M
    [ "$RC" -ne 0 ] && [ "$RC" -ne 2 ] || fail "one parser: exit $RC"
    [ "$(wc -l <"$T/par.err")" -eq 1 ] || fail "one parser: not one line: $(cat "$T/par.err")"
    grep -Eq "bad\\.xml:$line:[0-9]+: " "$T/par.err" ||
        fail "one parser does not name line $line: $(cat "$T/par.err")"
    cp "$T/par.err" "$T/seq.err"
    for cfg in "2 1 0" "2 600 0" "2 4096 0" "2 600 1" "3 50 0"; do
        # shellcheck disable=SC2086
        set -- $cfg
        par_restore "$T/bad.xml" "$T/par.meta" "$1" "$2" "$3" 1M
        [ "$RC" -ne 0 ] && [ "$RC" -ne 2 ] || fail "threads/piece/expat-only $cfg: exit $RC"
        cmp -s "$T/seq.err" "$T/par.err" ||
            fail "threads/piece/expat-only $cfg: '$(cat "$T/par.err")' instead of '$(cat "$T/seq.err")'"
        [ "$(head -c 4096 "$T/par.meta" | tr -d '\0' | wc -c)" -eq 0 ] ||
            fail "threads/piece/expat-only $cfg left a superblock"
    done
}

# PYTHON: bad.xml is base.xml's lines L changed by the code, which sets E to
# the line the error must name (1-based; 0: any).  Helpers: first(s, k) is
# the index of the first line at or after index k that contains s.
t_par_bad() {
    local line
    need_bin thin_restore
    need_cmd python3
    par_base
    line=$(python3 - "$T/base.xml" "$T/bad.xml" "$1" <<'PY'
import re, sys
L = open(sys.argv[1]).read().split('\n')
def first(s, k=0):
    return next(i for i in range(k, len(L)) if s in L[i])
E = 0
exec(sys.argv[3])
open(sys.argv[2], 'w').write('\n'.join(L))
print(E)
PY
) || fail "cannot edit the XML"
    [ "$line" = 0 ] && line='[0-9]+'
    par_same_error "$line"
}
tcase "parallel.error.time-out-of-range" t_par_bad \
    "i = first('<range_mapping', 250); L[i] = re.sub(r'time=\"[0-9]+\"', 'time=\"16777216\"', L[i]); E = i + 1"
tcase "parallel.error.unsorted" t_par_bad \
    "i = first('<range_mapping', 380); L[i] = re.sub(r'origin_begin=\"[0-9]+\"', 'origin_begin=\"0\"', L[i]); E = i + 1"
tcase "parallel.error.unknown-element" t_par_bad "L.insert(300, '    <foo/>'); E = 301"
tcase "parallel.error.device-not-closed" t_par_bad \
    "i = first('<device dev_id=\"2\"'); del L[i - 1]; E = i"
tcase "parallel.error.unclosed-mapping" t_par_bad \
    "i = first('<range_mapping', 230); L[i] = L[i].replace('/>', '>')"
tcase "parallel.error.bad-end-tag" t_par_bad \
    "i = first('</superblock>'); L[i] = L[i].replace('superblock', 'superblok'); E = i + 1"
tcase "parallel.error.truncated" t_par_bad "del L[400:]; L[-1] = L[-1][:17]; E = 400"
tcase "parallel.error.duplicate-device" t_par_bad \
    "i = first('<device dev_id=\"3\"'); L[i] = L[i].replace('dev_id=\"3\"', 'dev_id=\"0\"'); E = i + 1"
tcase "parallel.error.unknown-ref" t_par_bad \
    "i = first('<ref name=', 300); L[i] = L[i].replace('name=\"', 'name=\"x'); E = i + 1"
tcase "parallel.error.text" t_par_bad "L.insert(260, 'hello'); E = 261"
tcase "parallel.error.past-nr-data-blocks" t_par_bad \
    "i = first('<range_mapping', 320); L[i] = re.sub(r'data_begin=\"[0-9]+\"', 'data_begin=\"999999999\"', L[i]); E = i + 1"
tcase "parallel.error.unclosed-comment" t_par_bad "L.insert(350, '  <!--')"
tcase "parallel.error.twenty-digits" t_par_bad \
    "i = first('<range_mapping', 270); L[i] = L[i].replace('data_begin=\"', 'data_begin=\"00000000000000000000'); j = first('<range_mapping', i + 5); L[j] = L[j].replace('origin_begin=\"', 'origin_begin=\"99999999999999999999'); E = j + 1"
tcase "parallel.error.ref-in-def" t_par_bad \
    "i = first('<range_mapping', 100); L.insert(i, '    <ref name=\"1\"/>'); E = i + 1"
tcase "parallel.error.def-after-device-closed" t_par_bad \
    "i = first('</device>'); L.insert(i + 1, '    <range_mapping origin_begin=\"0\" data_begin=\"1\" length=\"1\" time=\"0\"/>'); E = i + 2"

# Valid documents in other forms: the same pool from one parser and from
# pieces, whether the cuts hold (re-read: no) or not (re-read: after N).
t_par_odd() {
    local expr=$1 cfg
    need_bin thin_restore
    need_cmd python3
    par_base
    python3 - "$T/base.xml" "$T/odd.xml" "$expr" <<'PY' || fail "cannot edit the XML"
import sys
s = open(sys.argv[1], 'rb').read().decode('utf-8')
L = s.split('\n')
exec(sys.argv[3])
out = '\n'.join(L)
open(sys.argv[2], 'wb').write(out.encode('latin-1') if 'ISO-8859-1' in out else out.encode('utf-8'))
PY
    par_restore "$T/odd.xml" "$T/seq.meta" 1 0 0 "$SIZE"
    [ "$RC" -eq 0 ] || fail "one parser refuses the document: $(cat "$T/par.err")"
    for cfg in "2 1 0" "2 600 0" "2 4096 0" "2 600 1"; do
        # shellcheck disable=SC2086
        set -- $cfg
        par_restore "$T/odd.xml" "$T/par.meta" "$1" "$2" "$3" "$SIZE"
        [ "$RC" -eq 0 ] || fail "threads/piece/expat-only $cfg: $(cat "$T/par.err")"
        cmp -s "$T/seq.meta" "$T/par.meta" ||
            fail "threads/piece/expat-only $cfg wrote other bytes than one parser ($STATS)"
    done
}
tcase "parallel.odd.crlf" t_par_odd "L = [l + '\\r' for l in L[:-1]] + L[-1:]"
tcase "parallel.odd.lines-in-comments" t_par_odd "L[300:300] = ['<!--', '  <device dev_id=\"99\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">', '    <range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"1\" time=\"0\"/>', '  <def name=\"x\">', '-->']"
tcase "parallel.odd.attribute-forms" t_par_odd "L = [l.replace(' length=', '  length=').replace('/>', ' />') if i % 3 == 0 else l.replace('\"', \"'\") if i % 3 == 1 else l for i, l in enumerate(L)]"
tcase "parallel.odd.tabs-and-blank-lines" t_par_odd "L = [('\\t' + l.lstrip()) if i % 2 else l + '\\n' for i, l in enumerate(L)]"
tcase "parallel.odd.entities-in-names" t_par_odd "L = [l.replace('name=\"1\"', 'name=\"a&amp;b&#x3c;\"') for l in L]"
tcase "parallel.odd.latin-1" t_par_odd "L.insert(0, '<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>'); L = [l.replace('name=\"2\"', 'name=\"\\u00e9t\\u00e9\"') for l in L]"
tcase "parallel.odd.utf8-bom-and-names" t_par_odd "L[0] = '\\ufeff' + L[0]; L = [l.replace('name=\"3\"', 'name=\"\\u00e9t\\u00e9\"') for l in L]"

# ------------------------------------------------------------ command line

t_help() {
    need_bin thin_restore
    run_ok "$BIN/thin_restore" --help
    expect_stdout_match '^Usage: thin_restore'
    expect_stdout_match '--input <FILE>'
    expect_stderr_empty
    run_ok "$BIN/thin_restore" -h
    expect_stdout_match '^Usage: thin_restore'
}
tcase "cli.help" t_help

t_version() {
    local v
    need_bin thin_restore
    v=$(sed -n 's/^#define THINMETA_VERSION "\(.*\)"/\1/p' "$REPO/common/tool.h")
    run_ok "$BIN/thin_restore" -V
    [ "$(cat "$STDOUT")" = "$v" ] || fail "-V printed '$(cat "$STDOUT")', expected '$v'"
    run_ok "$BIN/thin_restore" --version
    [ "$(cat "$STDOUT")" = "$v" ] || fail "--version printed '$(cat "$STDOUT")'"
}
tcase "cli.version" t_version

t_misuse() {
    need_bin thin_restore
    truncate -s 1M "$T/out.meta"
    gen_xml "$T/in.xml" --devices 1 --mappings-per-device 10
    run_usage "$BIN/thin_restore"
    expect_stderr_nonempty
    run_usage "$BIN/thin_restore" -i "$T/in.xml"
    expect_stderr_match 'output'
    run_usage "$BIN/thin_restore" -o "$T/out.meta"
    expect_stderr_match 'input'
    run_usage "$BIN/thin_restore" -i "$T/in.xml" -o "$T/out.meta" --frobnicate
    run_usage "$BIN/thin_restore" -i "$T/in.xml" -o "$T/out.meta" extra
    run_usage "$BIN/thin_restore" -i "$T/in.xml" -o "$T/out.meta" --transaction-id x
    run_usage "$BIN/thin_restore" -i "$T/in.xml" -o "$T/out.meta" --nr-data-blocks -1
    run_usage "$BIN/thin_restore" -i "$T/in.xml" -o "$T/out.meta" --data-block-size 0
    run_usage "$BIN/thin_restore" -i "$T/in.xml" -o
}
tcase "cli.misuse-exits-2" t_misuse

t_files() {
    need_bin thin_restore
    gen_xml "$T/in.xml" --devices 1 --mappings-per-device 10
    truncate -s 1M "$T/out.meta"
    run_fail "$BIN/thin_restore" -i "$T/missing.xml" -o "$T/out.meta"
    expect_stderr_match "Couldn't find input file"
    run_fail "$BIN/thin_restore" -i "$T/in.xml" -o "$T/missing.meta"
    expect_stderr_match "Couldn't find output file"
    expect_absent "$T/missing.meta"
    run_fail "$BIN/thin_restore" -i "$T" -o "$T/out.meta"
    expect_stderr_match 'directory'
    run_fail "$BIN/thin_restore" -i "$T/in.xml" -o "$T"
    expect_stderr_nonempty
    # 1.1.0's minimum: 40960 bytes
    truncate -s 40959 "$T/small.meta"
    run_fail "$BIN/thin_restore" -i "$T/in.xml" -o "$T/small.meta"
    expect_stderr_match 'too small'
    truncate -s 40960 "$T/ten.meta"
    run_ok "$BIN/thin_restore" -i "$T/in.xml" -o "$T/ten.meta"
    [ "$(stat -c %s "$T/ten.meta")" -eq 40960 ] || fail "the output was resized"
    # the input is never the output
    cp "$T/in.xml" "$T/both.xml"
    truncate -s 1M "$T/both.xml"
    remember_sum "$T/both.xml"
    run_fail "$BIN/thin_restore" -i "$T/both.xml" -o "$T/both.xml"
    expect_stderr_match 'same file'
    expect_unchanged "$T/both.xml"
}
tcase "cli.files" t_files

t_unwritable() {
    need_bin thin_restore
    need_nonroot
    gen_xml "$T/in.xml" --devices 1 --mappings-per-device 10
    truncate -s 1M "$T/out.meta"
    chmod 444 "$T/out.meta"
    run_fail "$BIN/thin_restore" -i "$T/in.xml" -o "$T/out.meta"
    expect_stderr_match 'Permission denied'
}
tcase "cli.unwritable-output" t_unwritable

t_quiet() {
    need_bin thin_restore
    gen_xml "$T/in.xml" --devices 1 --mappings-per-device 10
    truncate -s 1M "$T/out.meta"
    run_ok "$BIN/thin_restore" -q -i "$T/in.xml" -o "$T/out.meta"
    expect_stdout_empty
    expect_stderr_empty
    printf 'junk' >"$T/bad.xml"
    run_fail "$BIN/thin_restore" --quiet -i "$T/bad.xml" -o "$T/out.meta"
    expect_stdout_empty
    expect_stderr_empty
}
tcase "cli.quiet" t_quiet

t_input_untouched() {
    need_bin thin_restore
    shape_xml defs
    cp "$XML" "$T/in.xml"
    remember_sum "$T/in.xml"
    our_restore "$T/in.xml" "$T/out.meta"
    expect_unchanged "$T/in.xml"
}
tcase "cli.input-untouched" t_input_untouched

# Progress: on a terminal and for large inputs only, never with -q.
t_progress() {
    need_bin thin_restore
    need_cmd script
    gen_xml "$T/in.xml" --devices 1 --mappings-per-device 100
    # a comment after the document makes it large without making it slow
    { printf '\n<!-- '; head -c $((17 << 20)) /dev/zero | tr '\0' x; printf ' -->\n'; } >>"$T/in.xml"
    truncate -s 1M "$T/out.meta"
    script -qec "$BIN/thin_restore -i $T/in.xml -o $T/out.meta" /dev/null >"$T/tty.out" 2>&1 ||
        fail "thin_restore on a terminal failed: $(head -c 300 "$T/tty.out")"
    grep -q 'restoring: 100%' "$T/tty.out" || fail "no progress shown on a terminal"
    script -qec "$BIN/thin_restore -q -i $T/in.xml -o $T/out.meta" /dev/null >"$T/tty.out" 2>&1 ||
        fail "thin_restore -q on a terminal failed"
    [ ! -s "$T/tty.out" ] || fail "-q printed on a terminal: $(head -c 200 "$T/tty.out")"
    run_ok "$BIN/thin_restore" -i "$T/in.xml" -o "$T/out.meta"
    expect_stderr_empty
}
tcase "cli.progress-on-terminal-only" t_progress

# Overrides as 1.1.0 applies them: the larger transaction id and number of
# data blocks, the data block size replaced.
t_override() {   # OPTION VALUE FIELD EXPECTED
    local opt=$1 val=$2 field=$3 want=$4
    need_bin thin_restore
    need_bin thin_dump
    need_ref 1x
    gen_xml "$T/in.xml" --devices 2 --snapshots 1 --mappings-per-device 500 --transaction 50 --seed 4
    [ "$want" = xml ] && want=$(sed -n '1s/.*nr_data_blocks="\([0-9]*\)".*/\1/p' "$T/in.xml")
    our_restore "$T/in.xml" "$T/our.meta" "$SIZE" "$opt" "$val"
    ref_restore "$T/in.xml" "$T/ref.meta" "$SIZE" "$opt" "$val"
    [ "$(sb_field "$T/our.meta" "$field")" = "$want" ] ||
        fail "$field is $(sb_field "$T/our.meta" "$field"), expected $want"
    expanded "$T/our.meta" "$T/our.x"
    expanded "$T/ref.meta" "$T/ref.x"
    expect_same "$T/ref.x" "$T/our.x" "expanded dump with $opt $val vs 1.1.0's"
    run "$REF_1X/thin_check" -q "$T/our.meta"
    [ "$RC" -eq 0 ] || fail "1.1.0 thin_check rejects our restore with $opt $val"
}
tcase "override.transaction-id-larger" t_override --transaction-id 99 transaction 99
tcase "override.transaction-id-smaller" t_override --transaction-id 7 transaction 50
tcase "override.nr-data-blocks-larger" t_override --nr-data-blocks 100000 data_nr_blocks 100000
tcase "override.nr-data-blocks-smaller" t_override --nr-data-blocks 10 data_nr_blocks xml
tcase "override.data-block-size" t_override --data-block-size 256 data_block_size 256

finish
