#!/bin/bash
# kernel/continue.sh DUMP - print a history that continues the pool of DUMP.
#
# DUMP is `thin_dump --expand-shared` of a metadata image (made by thin_pool,
# thin_restore, or the kernel). The history has no `format` line: it is run by
# kernel/run.sh --meta-in on that image (the kernel opens the pool) and by
# `thin_pool IMAGE --script` on a copy. It touches what is there: writes into
# the holes of the first device's mapping tree (inserts into existing leaves,
# splits of full ones), overwrites (copy-on-write of shared blocks), a snapshot
# of the first device, a metadata snapshot and writes under it, a new thin,
# release, deletion of the last device, a discard, set_transaction_id, and a
# second metadata snapshot that stays held at the end.
# With --held DUMP_M (the image holds a metadata snapshot, DUMP_M is its
# `thin_dump --expand-shared -m`) it starts by releasing it, which makes the
# kernel walk and drop the held snapshot's trees. When fewer than 1024 data
# blocks are free it first grows the data device (resize_data).
# Deterministic: the same dumps give the same history.
set -euo pipefail
held=
if [ "${1:-}" = --held ]; then held=${2:-}; shift 2 || true; fi
[ $# -eq 1 ] && [ -f "$1" ] && { [ -z "$held" ] || [ -f "$held" ]; } ||
    { echo "usage: kernel/continue.sh [--held DUMP_M.xml] DUMP.xml" >&2; exit 2; }
exec awk -v held="$held" '
function attr(name,   m) {
    if (match($0, " " name "=\"[0-9]+\"")) {
        m = substr($0, RSTART, RLENGTH); sub(/.*="/, "", m); sub(/"/, "", m); return m + 0
    }
    return -1
}
function add(b, n) {            # a run of mapped blocks [b, b+n) of device d (in order)
    if (!(d in first)) first[d] = b
    else if (b > end[d] && nholes[d] < 64) holes[d, ++nholes[d]] = end[d]
    if (nmapped[d] < 12 && nmapped[d] + n >= 12) tenth[d] = b + (11 - nmapped[d])
    end[d] = b + n; nmapped[d] += n
}
function used(b, n,   i) { for (i = 0; i < n; i++) if (!((b + i) in inuse)) { inuse[b + i]; nused++ } }
FILENAME == held && /<single_mapping / { used(attr("data_block"), 1) }
FILENAME == held && /<range_mapping /  { used(attr("data_begin"), attr("length")) }
FILENAME == held { next }
/<superblock / { tid = attr("transaction"); bs = attr("data_block_size"); nr = attr("nr_data_blocks") }
/<device /      { d = attr("dev_id"); devs[++nd] = d; if (d > maxid) maxid = d; nholes[d] = 0; nmapped[d] = 0 }
/<single_mapping / { add(attr("origin_block"), 1); used(attr("data_block"), 1) }
/<range_mapping /  { add(attr("origin_begin"), attr("length")); used(attr("data_begin"), attr("length")) }
function w(id, b, n) {          # write, unless past the guest thin size (1 TiB)
    if (b + n <= cap) print "write", id, b, n
}
END {
    if (tid < 0) { print "continue.sh: no superblock in the dump" > "/dev/stderr"; exit 1 }
    cap = int(2147483648 / bs)
    print "# continuation (kernel/continue.sh): the pool is opened, not formatted"
    if (nr - nused < 1024) print "resize_data", nused + 2048
    if (held != "") print "release_metadata_snap"
    if (nd == 0) { print "create_thin 0"; devs[++nd] = 0; maxid = 0 }
    D = devs[1]; E = devs[nd]
    fD = (D in first) ? first[D] : 0; eD = (D in end) ? end[D] : 0
    snap = maxid + 1; thin = maxid + 2
    print "# overwrite the first mapped blocks of device " D ", then fill holes in its tree"
    w(D, fD, 4)
    for (i = 1; i <= nholes[D] && i <= 40; i++) w(D, holes[D, i], 1)
    w(D, eD + 1000, 8)
    print "create_snap", snap, D
    w(D, fD, 2)
    print "reserve_metadata_snap"
    w(snap, fD + 2, 3)
    if (E != D) {
        fE = (E in first) ? first[E] : 0
        w(E, fE, 2)
        for (i = 1; i <= nholes[E] && i <= 20; i++) w(E, holes[E, i], 1)
    }
    print "create_thin", thin
    w(thin, 0, 16)
    print "status"
    print "release_metadata_snap"
    if (E != D) print "delete", E
    if (D in tenth) print "discard", D, tenth[D], 8
    print "commit"
    print "set_transaction_id", tid, tid + 1
    print "reserve_metadata_snap"
    w(thin, 16, 8)
    w(D, eD + 2000, 4)
    print "status"
}' ${held:+"$held"} "$1"
