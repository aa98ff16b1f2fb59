#!/bin/sh
# Install thinmeta's build and test dependencies on Debian 12 (run as root).
#
#   scripts/install-deps.sh            build + test dependencies and the reference tools
#   scripts/install-deps.sh --no-oracle    without the reference tools
#
# The reference tools are test oracles only; the product never calls them:
#   - thin-provisioning-tools 0.9.0 from Debian 12 (/usr/sbin/thin_*)
#   - thin-provisioning-tools 1.1.x from Debian 13, unpacked into a private
#     prefix (/opt/tpt-rust) without touching dpkg's state: see
#     scripts/get-tpt-1x.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
oracle=1
[ "${1:-}" = "--no-oracle" ] && oracle=0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

pkgs="build-essential make pkg-config libexpat1-dev libxml2-dev libxml2-utils \
libncurses-dev check python3 xz-utils tmux clang libclang-rt-14-dev \
debian-archive-keyring ca-certificates"
[ $oracle -eq 1 ] && pkgs="$pkgs thin-provisioning-tools"

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $pkgs

if [ $oracle -eq 1 ]; then
    $SUDO sh "$here/get-tpt-1x.sh" /opt/tpt-rust
fi
