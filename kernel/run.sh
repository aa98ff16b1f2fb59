#!/bin/bash
# kernel/run.sh - run one thin_pool history in the real Linux kernel.
#
# Usage: kernel/run.sh [options] HISTORY OUTDIR
#   HISTORY       a thin_pool script (see kernel/README.md); the guest's
#                 kernel/guest/history.sh turns each line into dmsetup
#                 messages and I/O on the thin devices
#   OUTDIR        gets meta.img (the metadata disk after a clean shutdown),
#                 console.log, status.txt (the @@STATUS lines), commands.txt
#                 (every dm command and I/O the guest ran), run.txt
# Options:
#   --meta-in FILE      start from a copy of FILE: the kernel opens the pool on it
#                       (the history then has no `format` line)
#   --geometry S N      data block size (sectors) and number of data blocks of the
#                       --meta-in pool (default: read with $BIN/thin_dump)
#   --meta-size SIZE    size of the fresh metadata disk (truncate(1) syntax);
#                       default: the history's "#@ meta-size SIZE" line, else 8M
#   --timeout SEC       wall-clock limit for the guest (default 300)
# Env: KCHECK_CACHE (default <repo>/build/kernel-cache), BIN (default <repo>/bin)
# Exit status: 0 when the guest ran the whole history and shut down cleanly,
# 1 otherwise (the end of the console is printed), 2 for misuse.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${KCHECK_CACHE:-$REPO/build/kernel-cache}
BIN=${BIN:-$REPO/bin}

usage() { echo "usage: kernel/run.sh [--meta-in FILE [--geometry S N]] [--meta-size SIZE] [--timeout SEC] HISTORY OUTDIR" >&2; exit 2; }
meta_in='' geo_bs='' geo_nr='' meta_size='' timeout=300
while [ $# -gt 0 ]; do
    case $1 in
    --meta-in) [ $# -ge 2 ] || usage; meta_in=$2; shift 2 ;;
    --geometry) [ $# -ge 3 ] || usage; geo_bs=$2; geo_nr=$3; shift 3 ;;
    --meta-size) [ $# -ge 2 ] || usage; meta_size=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage; timeout=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "kernel/run.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || usage
history=$1 out=$2
[ -f "$history" ] || { echo "kernel/run.sh: no history file $history" >&2; exit 2; }
[ -z "$meta_in" ] || [ -f "$meta_in" ] || { echo "kernel/run.sh: no metadata file $meta_in" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null ||
    { echo "kernel/run.sh: qemu-system-x86_64 is missing (scripts/install-deps.sh --kernel)" >&2; exit 1; }

# ---- what the history needs: block size, the most data blocks it ever has
read -r h_bs h_nr h_meta < <(awk '
    { sub(/#@ *meta-size/, "METASIZE") }
    $1 == "METASIZE" { meta = $2 }
    { sub(/#.*/, "") }
    $1 == "format" { for (i = 2; i < NF; i++) {
                        if ($i == "--data-block-size") bs = $(i + 1)
                        if ($i == "--nr-data-blocks") nr = $(i + 1) } }
    $1 == "resize_data" && $2 + 0 > nr + 0 { nr = $2 }
    END { print (bs ? bs : "-"), (nr ? nr : "-"), (meta ? meta : "-") }' "$history")
if [ -n "$meta_in" ]; then
    if [ -z "$geo_bs" ]; then
        sb=$("$BIN/thin_dump" --skip-mappings "$meta_in" 2>&1 | head -n 1) ||
            { echo "kernel/run.sh: $BIN/thin_dump cannot read $meta_in: $sb" >&2; exit 1; }
        geo_bs=$(sed -n 's/.* data_block_size="\([0-9]*\)".*/\1/p' <<<"$sb")
        geo_nr=$(sed -n 's/.* nr_data_blocks="\([0-9]*\)".*/\1/p' <<<"$sb")
        [ -n "$geo_bs" ] && [ -n "$geo_nr" ] ||
            { echo "kernel/run.sh: no pool geometry in thin_dump's superblock line: $sb" >&2; exit 1; }
    fi
    [ "$h_bs" = - ] || { echo "kernel/run.sh: $history formats a pool, but --meta-in gives one" >&2; exit 2; }
    bs=$geo_bs nr=$geo_nr
    [ "$h_nr" = - ] || [ "$h_nr" -le "$nr" ] || nr=$h_nr
else
    [ "$h_bs" != - ] && [ "$h_nr" != - ] ||
        { echo "kernel/run.sh: $history has no 'format --data-block-size S --nr-data-blocks N' line" >&2; exit 2; }
    bs=$h_bs nr=$h_nr
fi
[ -n "$meta_size" ] || { [ "$h_meta" = - ] && meta_size=8M || meta_size=$h_meta; }

[ -s "$CACHE/base.cpio" ] || "$HERE/build-initramfs.sh" >/dev/null
"$HERE/build-initramfs.sh" >/dev/null     # rebuilds only when a guest script changed
BB=$CACHE/root/bin/busybox

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/{meta.img,data.img,console.log,status.txt,commands.txt,run.txt}
if [ -n "$meta_in" ]; then
    cp --sparse=always "$meta_in" "$out/meta.img"
else
    truncate -s "$meta_size" "$out/meta.img"
fi
truncate -s $((nr * bs * 512)) "$out/data.img"

# ---- per-run archive: the history and its settings, after the base archive
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/r/etc"
cp "$history" "$tmp/r/history.thinpool"
if [ -n "$meta_in" ]; then
    printf 'OPEN_BLOCK_SIZE=%s\nOPEN_NR_BLOCKS=%s\n' "$geo_bs" "$geo_nr" >"$tmp/r/etc/run.env"
else
    : >"$tmp/r/etc/run.env"
fi
(cd "$tmp/r" && find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null) >"$tmp/run.cpio"
cat "$CACHE/base.cpio" "$tmp/run.cpio" >"$tmp/initrd"

start=$(date +%s.%N)
set +e
timeout -k 10 "$timeout" qemu-system-x86_64 \
    -nodefaults -no-reboot -nic none -display none -serial stdio \
    -accel tcg -cpu max -m 512 -smp 1 \
    -kernel "$CACHE/vmlinuz" -initrd "$tmp/initrd" \
    -append "console=ttyS0 panic=-1 loglevel=4" \
    -drive "file=$out/meta.img,format=raw,if=virtio,cache=writeback" \
    -drive "file=$out/data.img,format=raw,if=virtio,cache=writeback" \
    </dev/null >"$out/console.log" 2>&1
qrc=$?
set -e
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
rm -f "$out/data.img"

tr -d '\r' <"$out/console.log" >"$tmp/console"
grep '^@@STATUS ' "$tmp/console" | sed 's/^@@STATUS //' >"$out/status.txt" || true
grep -E '^(\+ |@@K line )' "$tmp/console" >"$out/commands.txt" || true
grc=$(sed -n 's/^@@K done rc=\([0-9]*\).*/\1/p' "$tmp/console" | tail -n 1)
{
    echo "history: $(basename "$history")${meta_in:+ (on $(basename "$meta_in"))}"
    echo "kernel: $(cat "$CACHE/kernel-release") (Debian $(awk '$1 ~ /^linux-image-[0-9]/ { print $2 }' "$CACHE/versions.txt"))"
    echo "dmsetup: $(awk '$1 == "dmsetup" { print $2 }' "$CACHE/versions.txt")"
    echo "metadata disk: $(stat -c %s "$out/meta.img") bytes; data disk: $nr blocks of $bs sectors"
    echo "qemu exit: $qrc; guest rc: ${grc:-none}; wall: ${secs}s"
} >"$out/run.txt"

if [ "$qrc" != 0 ] || [ "${grc:-x}" != 0 ]; then
    echo "kernel/run.sh: the guest did not run $(basename "$history") to the end (qemu exit $qrc, guest rc ${grc:-none}); $out/console.log ends:" >&2
    grep -E '^@@K ERROR|^@@DMESG|^\+ ' "$tmp/console" | tail -n 25 | sed 's/^/    /' >&2
    exit 1
fi
exit 0
