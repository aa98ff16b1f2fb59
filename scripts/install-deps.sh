#!/bin/sh
# Install thinmeta's build and test dependencies on Debian 12 (run as root).
#
#   scripts/install-deps.sh            build + test dependencies and the reference tools
#   scripts/install-deps.sh --no-oracle    without the reference tools
#   scripts/install-deps.sh --kernel       also qemu-system-x86, for `make
#                                          kernel-check` (kernel/README.md; not CI)
#
# The reference tools are test oracles only; the product never calls them:
#   - thin-provisioning-tools 0.9.0 from Debian 12 (/usr/sbin/thin_*)
#   - thin-provisioning-tools 1.1.x from Debian 13, unpacked into a private
#     prefix (/opt/tpt-rust) without touching dpkg's state: see
#     scripts/get-tpt-1x.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
oracle=1
kernel=0
for arg in "$@"; do
    case $arg in
    --no-oracle) oracle=0 ;;
    --kernel) kernel=1 ;;
    *) echo "usage: $0 [--no-oracle] [--kernel]" >&2; exit 2 ;;
    esac
done

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

pkgs="build-essential make pkg-config libexpat1-dev libxml2-dev libxml2-utils \
libncurses-dev check python3 xz-utils tmux time clang libclang-rt-14-dev \
debian-archive-keyring ca-certificates"
# make check: the fuzz smoke test (clang, libclang-rt-14-dev: libFuzzer) and
# the valgrind subset (docs/fuzzing.md)
pkgs="$pkgs valgrind"
[ $oracle -eq 1 ] && pkgs="$pkgs thin-provisioning-tools"
[ $kernel -eq 1 ] && pkgs="$pkgs qemu-system-x86"

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $pkgs

if [ $oracle -eq 1 ]; then
    $SUDO sh "$here/get-tpt-1x.sh" /opt/tpt-rust
fi
