#!/bin/bash
# t-pool-crash.sh - crash safety of thin_pool (issue 9): `thin_pool run` is
# killed with SIGKILL at random moments, again and again on the same pool
# (each run picks up what the last kill left); after every kill the image
# must hold exactly a committed state:
#   - its superblock is the one the run started from, or the one of a
#     `prepare` line of the run's log (the last commit, or the commit under
#     way when the kill came: the log names both);
#   - what a dump of the image says (devices, every mapping, transaction id
#     and time; our thin_dump, and 1.1.0's when installed) has the content
#     digest the log recorded for that superblock (`content` of the prepare
#     line, computed by thin_pool before block 0 was written; see
#     docs/thin_pool.md) or, for the starting superblock, the digest of the
#     dump taken before the run;
#   - thin_check passes (ours, and 1.1.0's when installed).
# `make check`: 6 kills; SLOW=1 (make check-slow): 300.  The case prints
# how many kills landed on the starting state, on a logged commit and on a
# commit under way (prepare line without its commit line).
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

if [ "${SLOW:-0}" = 1 ]; then KILLS=${KILLS:-300}; else KILLS=${KILLS:-6}; fi

# digest < XML: the content digest of a thin_dump (docs/thin_pool.md, --log)
digest() {
    python3 -c '
import sys, zlib, xml.etree.ElementTree as ET
crc = 0
def add(s):
    global crc
    crc = zlib.crc32(s.encode(), crc)
defs, devs, cur, sb = {}, [], None, None
for ev, el in ET.iterparse(sys.stdin.buffer, events=("start", "end")):
    t = el.tag
    if ev == "end":
        el.clear()
    elif t == "superblock":
        sb = dict(el.attrib)
    elif t == "def":
        cur = defs.setdefault(el.get("name"), [])
    elif t == "device":
        cur = []
        devs.append((int(el.get("dev_id")), dict(el.attrib), cur))
    elif t == "ref":
        cur.extend(defs[el.get("name")])
    elif t == "single_mapping":
        cur.append((int(el.get("origin_block")), int(el.get("data_block")), int(el.get("time"))))
    elif t == "range_mapping":
        o, d, n, tm = (int(el.get(k)) for k in ("origin_begin", "data_begin", "length", "time"))
        cur.extend((o + i, d + i, tm) for i in range(n))
add("tid %s time %s\n" % (sb["transaction"], sb["time"]))
for i, a, maps in sorted(devs, key=lambda x: x[0]):
    add("dev %d mapped %s trans %s ctime %s stime %s\n" % (
        i, a["mapped_blocks"], a["transaction"], a["creation_time"], a["snap_time"]))
    add("".join("%d %d %d\n" % m for m in sorted(maps)))
print("%08x" % crc)'
}

# image_digest IMG: the digest of our dump (and 1.1.0's must agree)
image_digest() {
    local d r
    run "$BIN/thin_dump" "$1"
    [ "$RC" -eq 0 ] || fail "thin_dump fails on the image: $(head -n 1 "$STDERR")"
    d=$(digest <"$STDOUT") || fail "cannot digest the dump"
    if [ -x "$REF_1X/thin_dump" ]; then
        run "$REF_1X/thin_dump" "$1"
        [ "$RC" -eq 0 ] || fail "1.1.0's thin_dump fails on the image: $(head -n 1 "$STDERR")"
        r=$(digest <"$STDOUT")
        [ "$r" = "$d" ] || fail "1.1.0's dump says otherwise ($r, ours $d)"
    fi
    echo "$d"
}

t_killed() {
    local m=$T/m i delay first start disk line want got at_start=0 committed=0 under_way=0
    need_bin thin_pool
    need_bin thin_dump
    need_bin thin_check
    need_cmd python3 timeout od
    rm -f "$m"
    truncate -s 32M "$m"
    run_ok "$BIN/thin_pool" "$m" format --data-block-size 128 --nr-data-blocks 200000
    first=$(od -An -tx4 -N4 "$m" | tr -d ' ')
    start=$(image_digest "$m") || exit 1
    for ((i = 1; i <= KILLS; i++)); do
        # 0.05 .. 1.2 s, a different moment each time (and each seed)
        delay=$(awk -v i="$i" 'BEGIN { srand(i * 7919); printf "%.2f", 0.05 + rand() * 1.15 }')
        rm -f "$T/log"
        timeout -s KILL "$delay" "$BIN/thin_pool" "$m" run --ops 100000000 --seed "$i" \
            --log "$T/log" >/dev/null 2>"$T/run.err"
        [ $? -eq 137 ] || fail "kill $i: thin_pool run ended by itself: $(head -c 300 "$T/run.err")"
        disk=$(od -An -tx4 -N4 "$m" | tr -d ' ')
        got=$(image_digest "$m") || exit 1
        if [ "$disk" = "$first" ]; then
            want=$start
            at_start=$((at_start + 1))
        else
            line=$(grep "^prepare .* sb $disk " "$T/log" 2>/dev/null | tail -n 1)
            [ -n "$line" ] || fail "kill $i (${delay}s): superblock $disk is neither the start ($first) nor one the log names"
            want=$(sed -n 's/.* content \([0-9a-f-]*\)$/\1/p' <<<"$line")
            case $want in '' | -) fail "kill $i: the log has no content digest: $line" ;; esac
            if grep -q "^commit .* sb $disk " "$T/log"; then
                committed=$((committed + 1))
            else
                under_way=$((under_way + 1))
            fi
        fi
        [ "$got" = "$want" ] ||
            fail "kill $i (${delay}s): the image (superblock $disk) holds content $got, the committed state was $want"
        run "$BIN/thin_check" "$m"
        [ "$RC" -eq 0 ] || fail "kill $i (${delay}s): thin_check fails: $(head -n 3 "$STDERR")"
        if [ -x "$REF_1X/thin_check" ]; then
            run "$REF_1X/thin_check" "$m"
            [ "$RC" -eq 0 ] || fail "kill $i (${delay}s): 1.1.0's thin_check fails: $(head -n 3 "$STDERR")"
        fi
        first=$disk
        start=$got
    done
    # (a case's stdout reaches the terminal)
    echo "      $KILLS kills: $at_start at the starting state, $committed on a logged commit, $under_way on a commit under way"
    [ $((committed + under_way)) -gt 0 ] || fail "no kill came after a commit: the runs were too short"
}

tcase "run-killed-$KILLS-times" t_killed
finish
