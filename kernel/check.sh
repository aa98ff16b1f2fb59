#!/bin/bash
# kernel/check.sh - `make kernel-check`: the real Linux kernel as an oracle.
#
# Usage: kernel/check.sh [SCENARIO.thinpool ...]   (default: kernel/scenarios/*)
#
# 1. record   Each history in kernel/scenarios/NAME.thinpool runs in the kernel
#             (kernel/run.sh). Its metadata image must pass thin_check 1.1.0, and
#             is kept as fixtures/kernel-pairs/NAME.kernel.img.xz with NAME.thinpool
#             (the history), NAME.status (the status lines) and NAME.txt (what ran,
#             kernel version, status lines, thin_check output). A pair recorded
#             before is kept when the history and the pool (expanded thin_dump, and
#             thin_dump -m) are the same; a different pool from the same history
#             fails (KCHECK_RERECORD=1 records it anyway).
# 2. pair     The same history through $BIN/thin_pool gives the same pool:
#             identical `thin_dump --expand-shared` (and `-m`) output.
# 3. accept   The kernel opens metadata WE wrote - thin_pool's image of each
#             history, thin_restore's images of generated XML, a thin_pool `run`
#             workload - and keeps running a history on it (kernel/continue.sh:
#             writes, copy-on-write, a snapshot, reserve/release, a delete, a
#             discard); the result must pass thin_check 1.1.0 (and -m when a
#             metadata snapshot is held).
# 4. same     thin_pool running that continuation on the same image gives the
#             same pool as the kernel did (and the same status lines: status).
# Steps whose tool is not built yet are skipped. Prints one line per result and
# a summary; exits 1 when anything failed.
#
# Env: BIN (our binaries, default <repo>/bin), REF_1X (default
# /opt/tpt-rust/usr/sbin), KCHECK_CACHE (default <repo>/build/kernel-cache; runs
# go to $KCHECK_CACHE/runs), KCHECK_RERECORD=1, KCHECK_NO_RECORD=1 (never write
# fixtures), KCHECK_TIMEOUT (seconds per guest run, default 300),
# KCHECK_CONTROL=1 (also accept/same on images we did not write: the kernel's
# own image of each history and 1.1.0's restore of each XML shape - controls
# that tell a bad continuation from a bad image).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
export KCHECK_CACHE=${KCHECK_CACHE:-$REPO/build/kernel-cache}
export BIN=${BIN:-$REPO/bin}
REF_1X=${REF_1X:-/opt/tpt-rust/usr/sbin}
PAIRS=$REPO/fixtures/kernel-pairs
WORK=$KCHECK_CACHE/runs
TIMEOUT=${KCHECK_TIMEOUT:-300}
GEN=$REPO/tools/gen-thin-xml.py

# XML shapes restored by thin_restore for the accept step: key|generator arguments
SHAPES='r-snaps|--devices 3 --snapshots 3 --mappings-per-device 2000 --share-fraction 0.5 --nr-data-blocks 16384 --seed 11
r-many|--devices 60 --mappings-per-device 100 --empty-devices 4 --nr-data-blocks 8192 --seed 12
r-singles|--devices 2 --snapshots 1 --mappings-per-device 1500 --run-length 1 --nr-data-blocks 8192 --seed 13
r-bigblock|--devices 2 --snapshots 1 --mappings-per-device 1500 --data-block-size 1024 --nr-data-blocks 4096 --time 9 --transaction 77 --seed 15
r-defs|--dialect 1.x --devices 2 --snapshots 3 --mappings-per-device 3000 --share-chunk 600 --share-fraction 0.6 --nr-data-blocks 16384 --seed 14'
RESTORE_META_SIZE=16M

npass=0 nfail=0 nskip=0
SUMMARY=$WORK/summary.txt
result() {   # PASS|FAIL|SKIP STEP SUBJECT DETAIL
    local line
    line=$(printf '%-4s  %-6s  %-28s  %s' "$1" "$2" "$3" "$4")
    echo "$line"
    echo "$line" >>"$SUMMARY"
    case $1 in PASS) npass=$((npass + 1)) ;; FAIL) nfail=$((nfail + 1)) ;; *) nskip=$((nskip + 1)) ;; esac
}
die() { echo "kernel-check: $*" >&2; exit 1; }

# dumps IMAGE PREFIX: PREFIX.xml (expanded) and, when a metadata snapshot is
# held, PREFIX.m.xml; returns 1 if the image cannot be dumped.
dumps() {
    rm -f "$2.xml" "$2.m.xml"
    "$BIN/thin_dump" --expand-shared "$1" >"$2.xml" 2>"$2.err" || return 1
    "$BIN/thin_dump" --expand-shared -m "$1" >"$2.m.xml" 2>/dev/null || rm -f "$2.m.xml"
    return 0
}
held() { [ -f "$1.m.xml" ]; }
# same_dumps A B: the two dump sets agree (held snapshot included); says how not.
same_dumps() {
    if ! cmp -s "$1.xml" "$2.xml"; then
        echo "expanded dumps differ: $(diff "$1.xml" "$2.xml" | grep -c '^[<>]') lines (diff $1.xml $2.xml)"
        return 1
    fi
    if [ -f "$1.m.xml" ] && [ -f "$2.m.xml" ]; then
        cmp -s "$1.m.xml" "$2.m.xml" ||
            { echo "thin_dump -m differs (diff $1.m.xml $2.m.xml)"; return 1; }
    elif [ -f "$1.m.xml" ] || [ -f "$2.m.xml" ]; then
        echo "a metadata snapshot is held in only one of them ($1 / $2)"
        return 1
    fi
    return 0
}
# ref_check IMAGE: thin_check 1.1.0 (and -m when held); prints the failure.
ref_check() {
    local out
    out=$("$REF_1X/thin_check" "$1" 2>&1) || { echo "thin_check: $(tail -n 3 <<<"$out" | tr '\n' ' ')"; return 1; }
    if "$BIN/thin_dump" -m --skip-mappings "$1" >/dev/null 2>&1; then
        out=$("$REF_1X/thin_check" -m "$1" 2>&1) || { echo "thin_check -m: $(tail -n 3 <<<"$out" | tr '\n' ' ')"; return 1; }
        echo "thin_check ok, -m ok"
    else
        echo "thin_check ok"
    fi
}
# norm_status FILE: status lines from the transaction id on ("0 LEN thin-pool "
# dropped), the held root's block number replaced by HELD
norm_status() {
    sed 's/^[0-9]*: //; s/^.*thin-pool //' "$1" |
        awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+\/[0-9]+$/ && $3 ~ /^[0-9]+\/[0-9]+$/ {
                 if ($4 != "-") $4 = "HELD"; $1 = $1; print }'
}
kernel_said() {   # OUTDIR: the guest's error and the kernel's dm messages
    tr -d '\r' <"$1/console.log" | grep -E '^@@K ERROR|^@@DMESG .*(thin|metadata|btree|sm_|space map|error|fail)' |
        grep -v 'CONFIG_IMA\|uevent\|ioctl: 4' | tail -n 6 | sed 's/^@@DMESG \[ *[0-9.]*\] //; s/^@@K //' | tr '\n' '|'
}
# run_kernel OUTDIR RUN.SH-ARGS...: run a guest; output goes to OUTDIR/run.log
run_kernel() {
    local out=$1
    shift
    mkdir -p "$out"
    "$HERE/run.sh" --timeout "$TIMEOUT" "$@" "$out" >"$out/run.log" 2>&1
}

# accept SUBJECT IMAGE: the kernel continues IMAGE; thin_check; thin_pool the same
accept() {
    local subj=$1 img=$2 dir=$WORK/accept/$1 msg
    local -a flag=()
    rm -rf "$dir"
    mkdir -p "$dir"
    dumps "$img" "$dir/in" || { result FAIL accept "$subj" "our thin_dump cannot read it: $(head -c 200 "$dir/in.err")"; return; }
    held "$dir/in" && flag=(--held "$dir/in.m.xml")
    "$HERE/continue.sh" "${flag[@]}" "$dir/in.xml" >"$dir/cont.thinpool" || { result FAIL accept "$subj" "continue.sh failed"; return; }
    if ! run_kernel "$dir/kernel" --meta-in "$img" "$dir/cont.thinpool"; then
        result FAIL accept "$subj" "the kernel refused or failed: $(kernel_said "$dir/kernel")"
        return
    fi
    if msg=$(ref_check "$dir/kernel/meta.img"); then
        result PASS accept "$subj" "kernel opened it, ran $(grep -c '^@@K line' "$dir/kernel/commands.txt") lines; $msg"
    else
        result FAIL accept "$subj" "after the kernel's run: $msg"
    fi
    if [ ! -x "$BIN/thin_pool" ]; then
        result SKIP same "$subj" "no $BIN/thin_pool"
        return
    fi
    dumps "$dir/kernel/meta.img" "$dir/k" || { result FAIL same "$subj" "cannot dump the kernel's image"; return; }
    cp --sparse=always "$img" "$dir/ours.img"
    if ! "$BIN/thin_pool" "$dir/ours.img" --script "$dir/cont.thinpool" >"$dir/ours.out" 2>&1; then
        result FAIL same "$subj" "thin_pool --script failed: $(tail -n 1 "$dir/ours.out")"
        return
    fi
    dumps "$dir/ours.img" "$dir/o" || { result FAIL same "$subj" "cannot dump thin_pool's image"; return; }
    if msg=$(same_dumps "$dir/k" "$dir/o"); then
        result PASS same "$subj" "thin_pool continued it exactly as the kernel did"
    else
        result FAIL same "$subj" "$msg"
    fi
    norm_status "$dir/kernel/status.txt" >"$dir/k.status"
    norm_status "$dir/ours.out" >"$dir/o.status"
    if [ -s "$dir/k.status" ] && cmp -s "$dir/k.status" "$dir/o.status"; then
        result PASS status "$subj" "$(wc -l <"$dir/k.status") status lines equal (metadata and data use, transaction, held)"
    else
        result FAIL status "$subj" "status lines differ (diff $dir/k.status $dir/o.status)"
    fi
}

# ---------------------------------------------------------------- start
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing: run scripts/install-deps.sh --kernel"
command -v xz >/dev/null || die "xz is missing"
[ -x "$REF_1X/thin_check" ] || die "thin_check 1.1.0 not found in $REF_1X (scripts/get-tpt-1x.sh)"
[ -x "$BIN/thin_dump" ] || die "$BIN/thin_dump is missing (make)"
"$HERE/fetch.sh" >/dev/null || die "kernel/fetch.sh failed"
"$HERE/build-initramfs.sh" >/dev/null || die "kernel/build-initramfs.sh failed"
mkdir -p "$WORK"
: >"$SUMMARY"
krel=$(cat "$KCHECK_CACHE/kernel-release")
echo "kernel-check: Linux $krel (Debian $(awk '$1 ~ /^linux-image-[0-9]/ { print $2 }' "$KCHECK_CACHE/versions.txt")) under qemu (TCG); BIN=$BIN"
have_pool=0
[ -x "$BIN/thin_pool" ] && have_pool=1

if [ $# -eq 0 ]; then set -- "$HERE"/scenarios/*.thinpool; fi
for scen in "$@"; do
    name=$(basename "$scen" .thinpool)
    dir=$WORK/pairs/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    # ---- 1. record
    if ! run_kernel "$dir/kernel" "$scen"; then
        result FAIL record "$name" "the kernel did not run it: $(kernel_said "$dir/kernel")"
        continue
    fi
    kimg=$dir/kernel/meta.img
    if ! kmsg=$(ref_check "$kimg"); then
        result FAIL record "$name" "the kernel's image fails: $kmsg"
        continue
    fi
    dumps "$kimg" "$dir/k" || { result FAIL record "$name" "our thin_dump cannot read the kernel's image: $(head -c 200 "$dir/k.err")"; continue; }
    state=new
    if [ -f "$PAIRS/$name.kernel.img.xz" ] && cmp -s "$scen" "$PAIRS/$name.thinpool"; then
        xz -dc "$PAIRS/$name.kernel.img.xz" >"$dir/recorded.img"
        if ! dumps "$dir/recorded.img" "$dir/r"; then
            state=unreadable
        elif msg=$(same_dumps "$dir/r" "$dir/k"); then
            state=same
        else
            state=changed
        fi
    elif [ -f "$PAIRS/$name.kernel.img.xz" ]; then
        state=history-changed
    fi
    if [ "$state" = same ]; then
        result PASS record "$name" "$kmsg; same pool as the recorded pair (kept)"
    elif [ "$state" = changed ] && [ "${KCHECK_RERECORD:-0}" != 1 ]; then
        result FAIL record "$name" "same history, different pool than recorded: $msg (KCHECK_RERECORD=1 to replace)"
    elif [ "${KCHECK_NO_RECORD:-0}" = 1 ]; then
        result PASS record "$name" "$kmsg; not recorded ($state, KCHECK_NO_RECORD=1)"
    else
        mkdir -p "$PAIRS"
        xz -9 -c "$kimg" >"$PAIRS/$name.kernel.img.xz.new" && mv "$PAIRS/$name.kernel.img.xz.new" "$PAIRS/$name.kernel.img.xz"
        cp "$scen" "$PAIRS/$name.thinpool"
        cp "$dir/kernel/status.txt" "$PAIRS/$name.status"
        {
            echo "# fixtures/kernel-pairs/$name: the history $name.thinpool as run by the Linux kernel"
            echo "# Recorded by \`make kernel-check\` (kernel/check.sh, guest: kernel/guest/history.sh)."
            echo "# tests/cli/t-kernel-pairs.sh runs $name.thinpool through bin/thin_pool and compares"
            echo "# thin_dump --expand-shared (and -m) with $name.kernel.img.xz."
            echo
            echo "## run"
            cat "$dir/kernel/run.txt"
            echo "recorded: $(date -u '+%Y-%m-%d %H:%M UTC')"
            echo "sha256 of the metadata image: $(sha256sum <"$kimg" | cut -d' ' -f1)"
            echo "thin_check 1.1.0: $kmsg"
            echo
            echo "## history ($name.thinpool)"
            sed 's/^/    /' "$scen"
            echo
            echo "## dmsetup status pool at each 'status' line (LINE: 0 LEN thin-pool TRANSACTION"
            echo "## USED_META/TOTAL_META USED_DATA/TOTAL_DATA HELD_ROOT|- rw|ro discard ... needs_check|- LOW_WATER)"
            sed 's/^/    /' "$dir/kernel/status.txt"
            echo
            echo "## what the guest ran (@@K line: the history line; +: the command)"
            sed 's/^/    /' "$dir/kernel/commands.txt"
        } >"$PAIRS/$name.txt"
        result PASS record "$name" "$kmsg; recorded ($state) -> fixtures/kernel-pairs/$name.kernel.img.xz"
    fi
    [ "${KCHECK_CONTROL:-0}" = 1 ] && accept "$name/kernel" "$kimg"
    # ---- 2. pair
    if [ $have_pool = 0 ]; then
        result SKIP pair "$name" "no $BIN/thin_pool"
        continue
    fi
    truncate -s "$(stat -c %s "$kimg")" "$dir/ours.img"
    if ! "$BIN/thin_pool" "$dir/ours.img" --script "$scen" >"$dir/ours.out" 2>&1; then
        result FAIL pair "$name" "thin_pool --script failed: $(tail -n 1 "$dir/ours.out")"
        continue
    fi
    if ! dumps "$dir/ours.img" "$dir/o"; then
        result FAIL pair "$name" "our thin_dump cannot read thin_pool's image: $(head -c 200 "$dir/o.err")"
        continue
    fi
    if msg=$(same_dumps "$dir/k" "$dir/o"); then
        result PASS pair "$name" "thin_pool == kernel (expanded dump$(held "$dir/k" && echo ', -m too'))"
    else
        result FAIL pair "$name" "$msg"
    fi
    norm_status "$dir/kernel/status.txt" >"$dir/k.status"
    norm_status "$dir/ours.out" >"$dir/o.status"
    if [ ! -s "$dir/k.status" ]; then
        result SKIP status "$name" "no status line in the history"
    elif cmp -s "$dir/k.status" "$dir/o.status"; then
        result PASS status "$name" "$(wc -l <"$dir/k.status") status lines equal"
    else
        result FAIL status "$name" "status lines differ (diff $dir/k.status $dir/o.status)"
    fi
    # ---- 3./4. the kernel continues thin_pool's image
    accept "$name/thin_pool" "$dir/ours.img"
done

# ---------------------------------------------------------------- restore and run images
[ -x "$BIN/thin_restore" ] || result SKIP accept "thin_restore images" "no $BIN/thin_restore"
if [ -x "$BIN/thin_restore" ] || [ "${KCHECK_CONTROL:-0}" = 1 ]; then
    while IFS='|' read -r key args; do
        d=$WORK/restore/$key
        rm -rf "$d"
        mkdir -p "$d"
        # shellcheck disable=SC2086
        if ! python3 "$GEN" $args -o "$d/in.xml" 2>"$d/gen.err"; then
            result FAIL accept "$key" "generator failed: $(head -c 200 "$d/gen.err")"
            continue
        fi
        if [ "${KCHECK_CONTROL:-0}" = 1 ]; then
            truncate -s "$RESTORE_META_SIZE" "$d/ref.img"
            if "$REF_1X/thin_restore" -q -i "$d/in.xml" -o "$d/ref.img" >"$d/ref.out" 2>&1; then
                accept "$key/1.1.0-restore" "$d/ref.img"
            else
                result FAIL accept "$key/1.1.0-restore" "thin_restore 1.1.0 failed: $(head -c 200 "$d/ref.out")"
            fi
        fi
        [ -x "$BIN/thin_restore" ] || continue
        truncate -s "$RESTORE_META_SIZE" "$d/ours.img"
        if ! "$BIN/thin_restore" -q -i "$d/in.xml" -o "$d/ours.img" >"$d/restore.out" 2>&1; then
            result FAIL accept "$key/thin_restore" "thin_restore failed: $(head -c 200 "$d/restore.out")"
            continue
        fi
        accept "$key/thin_restore" "$d/ours.img"
    done <<<"$SHAPES"
fi
if [ $have_pool = 1 ]; then
    d=$WORK/pool-run
    rm -rf "$d"
    mkdir -p "$d"
    truncate -s 16M "$d/ours.img"
    for keep in "" --keep-held; do
        subj=run-3000${keep:+-held}/thin_pool
        img=$d/ours${keep:+-held}.img
        rm -f "$img"
        truncate -s 16M "$img"
        # shellcheck disable=SC2086
        if "$BIN/thin_pool" "$img" format --data-block-size 128 --nr-data-blocks 8192 >"$d/out" 2>&1 &&
            "$BIN/thin_pool" "$img" run --ops 3000 --seed 5 $keep >>"$d/out" 2>&1; then
            accept "$subj" "$img"
        else
            result FAIL accept "$subj" "thin_pool format/run failed: $(tail -n 1 "$d/out")"
        fi
    done
fi

echo "kernel-check: $npass passed, $nfail failed, $nskip skipped (details: $WORK)"
[ "$nfail" -eq 0 ]
