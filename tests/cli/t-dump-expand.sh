#!/bin/bash
# t-dump-expand.sh - thin_dump --expand-shared is the canonical form of a
# pool's content: no <def>/<ref>, every device in full, runs merged across
# leaf boundaries as 0.9.0 merges them. Two images hold the same pool
# exactly when their expanded dumps are identical, whoever wrote them.
#
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

GEN_DEFS='--dialect 1.x --devices 2 --snapshots 4 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --seed 8'

# body FILE: the device elements and mappings, without the superblock line
# (0.9.0 writes flags="0" and a trailing newline; the bodies are the same).
body() {
    grep -v '^<superblock\|^</superblock>' "$1"
}

# The 1.x XML has defs and 1.1.0 restores them as shared leaves; the expanded
# dump has none, and its devices equal 0.9.0's dump of the same image.
case_expand_matches_09() {
    need_ref both
    need_bin thin_dump
    # shellcheck disable=SC2086
    cached_image defs 1x 16M $GEN_DEFS
    run_ok "$BIN/thin_dump" "$IMAGE"
    expect_stdout_match '<def name='
    run_ok "$BIN/thin_dump" --expand-shared "$IMAGE"
    cp "$STDOUT" ours
    grep -q '<def\|<ref' ours && fail "expanded dump still has <def>/<ref>"
    "$REF_09/thin_dump" "$IMAGE" >old || fail "0.9.0 thin_dump failed"
    body old >old.body
    body ours >ours.body
    expect_same old.body ours.body "0.9.0's dump vs our --expand-shared"
    # the superblock line is 1.1.0's
    head -n 1 ours | grep -q '^<superblock uuid="" time="[0-9]*" transaction="[0-9]*" version="2" ' ||
        fail "superblock line not in 1.1.0's form: $(head -n 1 ours)"
}

# The same XML restored by 0.9.0 and by 1.1.0 (different layouts, different
# sharing) is the same pool: identical expanded dumps.
case_writers_agree() {
    need_ref both
    need_bin thin_dump
    gen_xml x.xml --devices 3 --snapshots 3 --mappings-per-device 2500 --share-fraction 0.5 --seed 21
    make_image x.xml 16M 1x a.img
    make_image x.xml 16M 09 b.img
    run_ok "$BIN/thin_dump" --expand-shared a.img
    cp "$STDOUT" a.xml
    run_ok "$BIN/thin_dump" --expand-shared b.img
    cp "$STDOUT" b.xml
    body a.xml >a.body
    body b.xml >b.body
    expect_same a.body b.body "expanded dumps of 1.1.0's and 0.9.0's restores"
    # and a different pool is not equal
    gen_xml y.xml --devices 3 --snapshots 3 --mappings-per-device 2500 --share-fraction 0.5 --seed 22
    make_image y.xml 16M 1x c.img
    run_ok "$BIN/thin_dump" --expand-shared c.img
    body "$STDOUT" >c.body
    cmp -s a.body c.body && fail "different pools gave the same expanded dump"
    return 0
}

# Kernel images: the expanded dump of the held snapshot, and of the live
# trees, holds exactly the mappings of the 1.1.0 dump with refs spliced in.
case_kernel_expand() {
    need_bin thin_dump
    local name
    for name in 02-thins-snaps 03-msnap-held 05-msnap-held-powercut; do
        kernel_image "$name"
        run_ok "$BIN/thin_dump" --expand-shared -f human_readable "$IMAGE"
        # every mapped block of every device, as "dev vblock data time"
        awk '/^device:/ { d = $2 } /^    \(/ {
                 split(substr($1, 2), o, "\\.\\."); split(substr($3, 2), b, "\\.\\.");
                 for (i = 0; i <= o[2] - o[1]; i++) print d, o[1] + i, b[1] + i, $4 }' \
            "$STDOUT" | sort >expanded
        # the golden 1.1.0 dump with its defs spliced into the devices
        awk '/^def:/ { name = $2; indef = 1; next }
             /^device:/ { d = $2; indef = 0; next }
             /^$/ { indef = 0; next }
             /^    ref:/ { refs[d] = refs[d] " " $2; next }
             /^    \(/ { if (indef) defs[name] = defs[name] "\n" $0; else own[d] = own[d] "\n" $0 }
             END { for (d in refs) { n = split(refs[d], r, " ");
                       for (i = 1; i <= n; i++) own[d] = own[d] defs[r[i]] }
                   for (d in own) { m = split(own[d], l, "\n");
                       for (i = 1; i <= m; i++) if (l[i] != "") {
                           split(l[i], f, " "); split(substr(f[1], 2), o, "\\.\\.");
                           split(substr(f[3], 2), b, "\\.\\.");
                           for (k = 0; k <= o[2] - o[1]; k++) print d, o[1] + k, b[1] + k, f[4] } } }' \
            "$FIXTURES/kernel/$name.dump.human" | sort >golden
        expect_same golden expanded "$name: mappings of the expanded dump vs 1.1.0's"
    done
}

tcase expand-matches-0.9.0 case_expand_matches_09
tcase expand-writers-agree case_writers_agree
tcase expand-kernel-images case_kernel_expand
finish
