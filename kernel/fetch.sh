#!/bin/bash
# kernel/fetch.sh - get the guest's software for `make kernel-check`.
#
# Downloads (never installs) Debian 12 packages with `apt-get download` and
# unpacks them with `dpkg -x` into $KCHECK_CACHE/root:
#   the kernel that linux-image-amd64 depends on (vmlinuz + modules),
#   busybox-static (the guest's shell and tools), dmsetup and the shared
#   libraries it needs.
# The host only needs qemu-system-x86_64 (scripts/install-deps.sh --kernel).
#
# Env: KCHECK_CACHE  cache directory (default: <repo>/build/kernel-cache)
#      KCHECK_KPKG   kernel package to use instead of the one linux-image-amd64
#                    depends on (e.g. linux-image-6.1.0-56-amd64)
# Idempotent: what is in the cache already is neither downloaded nor unpacked again.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${KCHECK_CACHE:-$REPO/build/kernel-cache}
mkdir -p "$CACHE/debs" "$CACHE/root"

say() { echo "[fetch] $*"; }

kpkg=${KCHECK_KPKG:-}
if [ -z "$kpkg" ] && [ -s "$CACHE/kernel-package" ]; then
    kpkg=$(cat "$CACHE/kernel-package")
fi
if [ -z "$kpkg" ]; then
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
fi
if [ -z "$kpkg" ]; then
    echo "kernel/fetch.sh: cannot tell which kernel package linux-image-amd64 depends on (run apt-get update?)" >&2
    exit 1
fi
echo "$kpkg" >"$CACHE/kernel-package"

# dmsetup's run-time libraries on Debian 12 (checked again by build-initramfs.sh)
pkgs="$kpkg busybox-static dmsetup libdevmapper1.02.1 libc6 libselinux1 libpcre2-8-0 libudev1 libcap2 libgcc-s1"

: >"$CACHE/versions.new"
for p in $pkgs; do
    deb=$(find "$CACHE/debs" -maxdepth 1 -name "${p}_*.deb" | sort | tail -n 1)
    if [ -z "$deb" ]; then
        say "apt-get download $p"
        (cd "$CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$p") >/dev/null ||
            { echo "kernel/fetch.sh: apt-get download $p failed" >&2; exit 1; }
        deb=$(find "$CACHE/debs" -maxdepth 1 -name "${p}_*.deb" | sort | tail -n 1)
        [ -n "$deb" ] || { echo "kernel/fetch.sh: no .deb for $p after download" >&2; exit 1; }
    fi
    printf '%s %s\n' "$p" "$(dpkg-deb -f "$deb" Version)" >>"$CACHE/versions.new"
    mark="$CACHE/root/.unpacked-$(basename "$deb")"
    if [ ! -e "$mark" ]; then
        say "unpack $(basename "$deb")"
        dpkg -x "$deb" "$CACHE/root"
        : >"$mark"
    fi
done
mv "$CACHE/versions.new" "$CACHE/versions.txt"
say "cache $CACHE: $(tr '\n' ';' <"$CACHE/versions.txt" | sed 's/;$//; s/;/; /g')"
