#!/bin/sh
# Unpack thin-provisioning-tools 1.1.x (Debian 13 "trixie" build) into a
# private prefix, to serve as a test oracle. Nothing is installed into the
# system: a private apt configuration (lists and cache under a scratch dir)
# downloads the signed package and dpkg -x unpacks it.
#
# Usage: get-tpt-1x.sh [PREFIX]      default /opt/tpt-rust
# Result: PREFIX/usr/sbin/pdata_tools and its thin_* links.
set -eu
PREFIX=${1:-/opt/tpt-rust}
SUITE=${TPT_SUITE:-trixie}
SCRATCH=${TPT_SCRATCH:-/tmp/thinmeta-tpt-apt}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

works() { "$PREFIX/usr/sbin/pdata_tools" thin_check --version >/dev/null 2>&1; }
if works; then
    echo "reference 1.x already in $PREFIX: $("$PREFIX/usr/sbin/thin_check" --version)"
    exit 0
fi

# The Debian mirror this machine already uses (deb822 or one-line sources).
mirror=${TPT_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
             awk '$1=="URIs:" && $2 ~ /\/debian\/?$/ { print $2; exit }')
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }' \
             /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "get-tpt-1x: no Debian mirror in the apt configuration (set TPT_MIRROR)" >&2; exit 1; }

mkdir -p "$SCRATCH/lists/partial" "$SCRATCH/cache/archives/partial" "$SCRATCH/dl"
echo "deb [signed-by=$KEYRING] $mirror $SUITE main" > "$SCRATCH/sources.list"
set -- -o "Dir::Etc::SourceList=$SCRATCH/sources.list" -o Dir::Etc::SourceParts=/dev/null \
       -o "Dir::State::Lists=$SCRATCH/lists" -o "Dir::Cache=$SCRATCH/cache" \
       -o APT::Sandbox::User=root
apt-get "$@" -q update
ver=$(apt-cache "$@" show thin-provisioning-tools | sed -n 's/^Version: //p' | sort -V | tail -n 1)
case "$ver" in 1.*) ;; *) echo "get-tpt-1x: unexpected version '$ver' in $SUITE" >&2; exit 1 ;; esac
rm -f "$SCRATCH"/dl/*.deb
(cd "$SCRATCH/dl" && apt-get "$@" -q download "thin-provisioning-tools=$ver")
mkdir -p "$PREFIX"
dpkg -x "$SCRATCH"/dl/thin-provisioning-tools_*.deb "$PREFIX"
works || { echo "get-tpt-1x: pdata_tools does not run here" >&2; exit 1; }
echo "reference 1.x unpacked into $PREFIX: $("$PREFIX/usr/sbin/thin_check" --version)"
