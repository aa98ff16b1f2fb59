#!/bin/bash
# t-gen-xml.sh - tools/gen-thin-xml.py makes XML that the reference tools
# accept and reproduce: the other tests are only as good as their data.
#
#   - deterministic (same arguments, same bytes; the seed matters);
#   - 0.9 dialect: 0.9.0 restore + 0.9.0 dump gives the XML back byte for byte,
#     and 0.9.0 thin_check accepts the image;
#   - 1.x dialect: 1.1.0 restore + 1.1.0 dump gives the XML back (def names
#     aside: 1.1.0 names a def after its first leaf's block number);
#   - both dialects describe the same pool: 0.9.0's (expanded) dump of the
#     1.1.0-restored 1.x XML is the 0.9 XML;
#   - bad arguments are refused.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

SIZE=16M

# normalise_defs FILE: rename defs 1, 2, ... in order of appearance.
normalise_defs() {
    awk '
        match($0, /<def name="[^"]*"/) {
            n = substr($0, RSTART + 11, RLENGTH - 12); map[n] = ++k
            sub(/<def name="[^"]*"/, "<def name=\"" k "\"")
        }
        match($0, /<ref name="[^"]*"/) {
            n = substr($0, RSTART + 11, RLENGTH - 12)
            sub(/<ref name="[^"]*"/, "<ref name=\"" map[n] "\"")
        }
        { printf "%s%s", sep, $0; sep = "\n" }' "$1"
}

t_deterministic() {
    gen_xml "$T/a.xml" --devices 3 --snapshots 2 --mappings-per-device 500 --empty-devices 1 --seed 5
    gen_xml "$T/b.xml" --devices 3 --snapshots 2 --mappings-per-device 500 --empty-devices 1 --seed 5
    gen_xml "$T/c.xml" --devices 3 --snapshots 2 --mappings-per-device 500 --empty-devices 1 --seed 6
    expect_same "$T/a.xml" "$T/b.xml" "second run with the same arguments"
    cmp -s "$T/a.xml" "$T/c.xml" && fail "a different seed gave the same XML"
    return 0
}
tcase deterministic t_deterministic

t_superblock_args() {
    gen_xml "$T/x.xml" --devices 1 --snapshots 2 --mappings-per-device 10 --time 9 \
        --transaction 77 --data-block-size 1024 --nr-data-blocks 5000
    head -n 1 "$T/x.xml" >"$T/line"
    grep -q 'time="9" transaction="77" flags="0" version="2" data_block_size="1024" nr_data_blocks="5000"' \
        "$T/line" || fail "superblock line is: $(cat "$T/line")"
}
tcase superblock-arguments t_superblock_args

t_counts() {
    local n
    gen_xml "$T/x.xml" --devices 2 --snapshots 3 --empty-devices 4 --mappings-per-device 77 --run-length 1
    n=$(grep -c '<device ' "$T/x.xml")
    [ "$n" -eq 9 ] || fail "expected 9 devices, found $n"
    n=$(grep -c '<single_mapping' "$T/x.xml")
    [ "$n" -eq $((5 * 77)) ] || fail "--run-length 1: expected $((5 * 77)) single mappings, found $n"
    grep -q '<range_mapping' "$T/x.xml" && fail "--run-length 1 produced a range_mapping"
    return 0
}
tcase counts-and-singles t_counts

t_refuses() {   # ARGS...
    need_cmd python3
    run python3 "$GEN" "$@"
    [ "$RC" -eq 2 ] || fail "expected exit 2 (argparse), got $RC"
    expect_stdout_empty
}
tcase refuses-bad-block-size t_refuses --data-block-size 100
tcase refuses-time-before-snapshots t_refuses --snapshots 3 --time 2
tcase refuses-too-few-data-blocks t_refuses --mappings-per-device 5000 --nr-data-blocks 10
tcase refuses-bad-dialect t_refuses --dialect 2.0

# roundtrip-09 KEY GEN-ARGS...: 0.9.0 restore, check, dump == XML.
t_roundtrip_09() {
    local key=$1
    shift
    need_ref 09
    cached_image "$key" 09 "$SIZE" "$@"
    run "$REF_09/thin_check" -q "$IMAGE"
    [ "$RC" -eq 0 ] || fail "0.9.0 thin_check refused the 0.9.0-restored $key image"
    run "$REF_09/thin_dump" "$IMAGE"
    [ "$RC" -eq 0 ] || fail "0.9.0 thin_dump failed"
    expect_same "$XML" "$STDOUT" "0.9.0 dump of the 0.9.0 restore"
}

# roundtrip-1x KEY GEN-ARGS...: 1.1.0 restore + dump == XML (def names aside).
t_roundtrip_1x() {
    local key=$1
    shift
    need_ref 1x
    cached_image "$key-1x" 1x "$SIZE" --dialect 1.x "$@"
    run "$REF_1X/thin_dump" "$IMAGE"
    [ "$RC" -eq 0 ] || fail "1.1.0 thin_dump failed"
    normalise_defs "$XML" >"$T/expected"
    normalise_defs "$STDOUT" >"$T/got"
    expect_same "$T/expected" "$T/got" "1.1.0 dump of the 1.1.0 restore (def names normalised)"
}

# same-pool KEY GEN-ARGS...: 1.x XML restored by 1.1.0, dumped by 0.9.0 == 0.9 XML.
t_same_pool() {
    local key=$1
    shift
    need_ref both
    cached_image "$key-1x" 1x "$SIZE" --dialect 1.x "$@"
    gen_xml "$T/plain.xml" "$@"
    run "$REF_09/thin_dump" "$IMAGE"
    [ "$RC" -eq 0 ] || fail "0.9.0 thin_dump failed"
    expect_same "$T/plain.xml" "$STDOUT" "0.9.0 dump of the restored 1.x XML vs the 0.9 XML"
}

# check-1x KEY GEN-ARGS...: 1.1.0 thin_check accepts the 1.1.0-restored 1.x XML.
t_check_1x() {
    local key=$1
    shift
    need_ref 1x
    cached_image "$key-1x" 1x "$SIZE" --dialect 1.x "$@"
    run "$REF_1X/thin_check" -q "$IMAGE"
    [ "$RC" -eq 0 ] || fail "1.1.0 thin_check refused the restored $key image"
}

SHAPES='one|--devices 1 --mappings-per-device 3000 --seed 1
many|--devices 300 --mappings-per-device 12 --seed 2
snaps|--devices 2 --snapshots 3 --mappings-per-device 1500 --share-fraction 0.6 --seed 3
singles|--devices 2 --mappings-per-device 1500 --run-length 1 --seed 4
longruns|--devices 1 --snapshots 1 --mappings-per-device 20000 --run-length 2000 --seed 5
bigblock|--devices 2 --snapshots 1 --mappings-per-device 1500 --data-block-size 1024 --seed 6
empty|--devices 2 --mappings-per-device 300 --empty-devices 3 --seed 7
nodevs|--devices 0
defs|--devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8
defs-empty|--devices 1 --snapshots 2 --mappings-per-device 2000 --share-chunk 700 --empty-devices 2 --share-empty --seed 9'

while IFS='|' read -r key args; do
    # shellcheck disable=SC2086
    tcase "roundtrip-09.$key" t_roundtrip_09 "$key" $args
    case $key in
        snaps | longruns | bigblock) ;;   # short shared stretches: 1.1.0 copies them
        *)
            # shellcheck disable=SC2086
            tcase "roundtrip-1x.$key" t_roundtrip_1x "$key" $args
            ;;
    esac
    # shellcheck disable=SC2086
    tcase "same-pool.$key" t_same_pool "$key" $args
done <<<"$SHAPES"
tcase "check-1x.defs" t_check_1x defs --devices 2 --snapshots 4 --mappings-per-device 3000 \
    --share-chunk 600 --share-fraction 0.6 --seed 8
tcase "check-1x.defs-empty" t_check_1x defs-empty --devices 1 --snapshots 2 --mappings-per-device 2000 \
    --share-chunk 700 --empty-devices 2 --share-empty --seed 9

finish
