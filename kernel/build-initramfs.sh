#!/bin/bash
# kernel/build-initramfs.sh - the guest's base initramfs for `make kernel-check`.
#
# From what kernel/fetch.sh unpacked into $KCHECK_CACHE/root, builds
#   $KCHECK_CACHE/base.cpio   newc archive: busybox, dmsetup + the libraries the
#                             dynamic loader says it needs, the kernel modules for
#                             virtio disks and dm-thin (dependencies taken from each
#                             module's modinfo), kernel/guest/init and
#                             kernel/guest/history.sh
#   $KCHECK_CACHE/vmlinuz, $KCHECK_CACHE/kernel-release
# The history to run is not in it: kernel/run.sh appends a second archive per run.
# Rebuilt when a guest script is newer than the archive, or with --force.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${KCHECK_CACHE:-$REPO/build/kernel-cache}
R=$CACHE/root
OUT=$CACHE/base.cpio

if [ "${1:-}" != --force ] && [ -s "$OUT" ] && [ -s "$CACHE/vmlinuz" ] &&
    [ "$OUT" -nt "$HERE/guest/init" ] && [ "$OUT" -nt "$HERE/guest/history.sh" ] &&
    [ "$OUT" -nt "$HERE/build-initramfs.sh" ]; then
    exit 0
fi
[ -x "$R/bin/busybox" ] && [ -x "$R/sbin/dmsetup" ] || "$HERE/fetch.sh"

krel=$(find "$R/lib/modules" -mindepth 1 -maxdepth 1 -printf "%f\n" 2>/dev/null | sort | tail -n 1)
if [ -z "$krel" ] || [ ! -f "$R/boot/vmlinuz-$krel" ]; then
    echo "kernel/build-initramfs.sh: no kernel unpacked in $R (run kernel/fetch.sh)" >&2
    exit 1
fi
mods=$R/lib/modules/$krel/kernel

S=$CACHE/initramfs
rm -rf "$S"
mkdir -p "$S"/{bin,sbin,dev,proc,sys,tmp,run,etc,lib/modules,lib64}
cp "$R/bin/busybox" "$S/bin/busybox"
ln -s busybox "$S/bin/sh"

# dmsetup and every library the loader resolves for it
cp "$R/sbin/dmsetup" "$S/sbin/dmsetup"
ldso=$R/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
libpath=$R/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu
listing=$("$ldso" --library-path "$libpath" --list "$R/sbin/dmsetup")
if grep -q 'not found' <<<"$listing"; then
    echo "kernel/build-initramfs.sh: dmsetup needs libraries the cache lacks:" >&2
    echo "$listing" >&2
    exit 1
fi
mkdir -p "$S/lib/x86_64-linux-gnu"
for lib in $(awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$listing"); do
    cp -L "$lib" "$S/lib/x86_64-linux-gnu/"
done
cp -L "$ldso" "$S/lib/x86_64-linux-gnu/"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$S/lib64/ld-linux-x86-64.so.2"

# modules in load order: dependencies first (modinfo "depends="), each once
declare -A have=()
order=()
add_module() {
    local name=${1//-/_} f deps d
    [ -z "${have[$name]:-}" ] || return 0
    have[$name]=1
    f=$(find "$mods" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) -print -quit)
    [ -n "$f" ] || { echo "kernel/build-initramfs.sh: module $name not found under $mods" >&2; exit 1; }
    deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n 1)
    for d in ${deps//,/ }; do add_module "$d"; done
    cp "$f" "$S/lib/modules/$name.ko"
    order+=("$name")
}
# libcrc32c only has a soft dependency on the crc32c algorithm: load a provider first
for m in crc32c_generic virtio_pci virtio_blk dm_thin_pool; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$S/lib/modules/order"

cp "$HERE/guest/init" "$S/init"
chmod 755 "$S/init"
cp "$HERE/guest/history.sh" "$S/bin/history.sh"
echo "$krel" >"$S/etc/kernel-release"

(cd "$S" && find . | LC_ALL=C sort | "$S/bin/busybox" cpio -o -H newc 2>/dev/null) >"$OUT.new"
mv "$OUT.new" "$OUT"
cp "$R/boot/vmlinuz-$krel" "$CACHE/vmlinuz"
echo "$krel" >"$CACHE/kernel-release"
echo "[initramfs] kernel $krel, modules: ${order[*]} ($(du -k "$OUT" | cut -f1) KiB)"
