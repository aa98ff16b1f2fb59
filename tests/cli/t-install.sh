#!/bin/bash
# t-install.sh - `make install` / `make uninstall` (install.mk) into scratch
# directories, the installed tools run from there, and libthinmeta as a
# library: the shared object's soname and exported symbols, and the example
# program docs/example/list-devices.c built against the INSTALLED library
# through pkg-config (shared and static) and run on kernel-written fixtures.
#
# The build directory is the one the suite tests: THINMETA_BUILD (set by
# `make check-cli`), else derived from BIN (BIN/.. when it holds
# libthinmeta.a, or build/obj for the default bin/).
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

find_build() {
    if [ -n "${THINMETA_BUILD:-}" ]; then
        BUILD_DIR=$THINMETA_BUILD
    elif [ -f "$BIN/../libthinmeta.a" ]; then
        BUILD_DIR=$(cd "$BIN/.." && pwd)
    elif [ "$(cd "$BIN" 2>/dev/null && pwd)" = "$REPO/bin" ]; then
        BUILD_DIR=$REPO/build/obj
    else
        skip "cannot tell the build directory of BIN=$BIN (set THINMETA_BUILD)"
    fi
}

# make_in TARGET VAR=VALUE...: run make on the repository for BUILD_DIR/BIN.
make_in() {
    local san=()
    need_cmd make
    find_build
    [ "${THINMETA_SANITIZE:-}" = 1 ] && san=(SANITIZE=1)
    (
        unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
        make -s --no-print-directory -C "$REPO" BUILD="$BUILD_DIR" BIN="$BIN" "${san[@]}" "$@"
    ) >"$T/make.out" 2>&1 || {
        note "$(tail -n 20 "$T/make.out")"
        fail "make $* failed"
    }
}

tools_list() {
    (
        unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
        make -s --no-print-directory -C "$REPO" print-tools
    )
}

# The library's version from the header, as the Makefile reads it.
lib_version() {
    local h=$REPO/include/thinmeta/thinmeta.h
    printf '%s.%s.%s\n' "$(sed -n 's/^#define THINMETA_VERSION_MAJOR *//p' "$h")" \
        "$(sed -n 's/^#define THINMETA_VERSION_MINOR *//p' "$h")" \
        "$(sed -n 's/^#define THINMETA_VERSION_PATCH *//p' "$h")"
}

# Extra flags for programs linked against a sanitized libthinmeta.so.
san_flags() {
    if readelf -d "$1" 2>/dev/null | grep -q 'NEEDED.*libasan'; then
        echo "-fsanitize=address,undefined"
    fi
}

# ---------------------------------------------------------------- install

t_destdir() {
    local root=$T/root t v left
    make_in install DESTDIR="$root" PREFIX=/usr
    v=$(lib_version)
    # every tool, executable, and each one answers --version
    for t in $(tools_list); do
        [ -x "$root/usr/sbin/$t" ] || fail "$t not installed in /usr/sbin"
        run_ok "$root/usr/sbin/$t" --version
        expect_stdout_match '[0-9]+\.[0-9]+\.[0-9]+'
        [ -L "$root/usr/share/bash-completion/completions/$t" ] ||
            fail "no bash completion link for $t"
        if [ -f "$REPO/man/$t.8" ]; then
            cmp -s "$REPO/man/$t.8" "$root/usr/share/man/man8/$t.8" ||
                fail "man page of $t not installed"
        fi
    done
    [ -f "$root/usr/lib/libthinmeta.so.$v" ] || fail "libthinmeta.so.$v missing"
    [ "$(readlink "$root/usr/lib/libthinmeta.so.${v%%.*}")" = "libthinmeta.so.$v" ] ||
        fail "libthinmeta.so.${v%%.*} is not a link to libthinmeta.so.$v"
    [ "$(readlink "$root/usr/lib/libthinmeta.so")" = "libthinmeta.so.${v%%.*}" ] ||
        fail "libthinmeta.so is not a link to the soname"
    [ -f "$root/usr/lib/libthinmeta.a" ] || fail "libthinmeta.a missing"
    [ -f "$root/usr/include/thinmeta/thinmeta.h" ] || fail "thinmeta.h missing"
    # the stable API only: the engine's headers (repair.h, ...) are internal
    left=$(cd "$root/usr/include/thinmeta" && find . ! -name . | sort | tr '\n' ' ')
    [ "$left" = "./thinmeta.h " ] || fail "headers beyond thinmeta.h installed: $left"
    [ -f "$root/usr/lib/pkgconfig/thinmeta.pc" ] || fail "thinmeta.pc missing"
    grep -qx 'prefix=/usr' "$root/usr/lib/pkgconfig/thinmeta.pc" ||
        fail "thinmeta.pc does not name PREFIX"
    grep -qx "Version: $v" "$root/usr/lib/pkgconfig/thinmeta.pc" ||
        fail "thinmeta.pc does not carry version $v"
    [ -f "$root/usr/share/bash-completion/completions/thinmeta" ] ||
        fail "bash completion missing"
    # nothing outside PREFIX
    [ "$(ls "$root")" = usr ] || fail "install wrote outside PREFIX: $(ls "$root")"
}
tcase destdir-layout t_destdir

t_installed_tools_work() {
    local root=$T/root
    make_in install DESTDIR="$root" PREFIX=/usr
    kernel_image 02-thins-snaps
    run_ok "$root/usr/sbin/thin_dump" "$IMAGE"
    expect_stderr_empty
    expect_same "$FIXTURES/kernel/02-thins-snaps.dump.xml" "$STDOUT" "installed thin_dump"
    run_ok "$root/usr/sbin/thin_check" -q "$IMAGE"
    expect_stdout_empty
    run_ok "$root/usr/sbin/thin_dump" --version
    expect_stdout_match '^[0-9]+\.[0-9]+\.[0-9]+$'
}
tcase installed-tools-run t_installed_tools_work

t_uninstall() {
    local root=$T/root left
    make_in install DESTDIR="$root" PREFIX=/opt/tm
    make_in uninstall DESTDIR="$root" PREFIX=/opt/tm
    left=$(find "$root" ! -type d | head -n 5)
    [ -z "$left" ] || fail "uninstall left files behind: $left"
}
tcase uninstall-removes-everything t_uninstall

# ---------------------------------------------------------------- the library

t_soname_and_symbols() {
    local root=$T/root v so syms hdr
    need_cmd readelf nm
    make_in install DESTDIR="$root" PREFIX=/usr
    v=$(lib_version)
    so=$root/usr/lib/libthinmeta.so.$v
    readelf -d "$so" | grep -q "SONAME.*\[libthinmeta\.so\.${v%%.*}\]" ||
        fail "soname is not libthinmeta.so.${v%%.*}: $(readelf -d "$so" | grep SONAME)"
    # defined dynamic symbols: the API functions only, all versioned
    syms=$(nm -D --defined-only "$so" | awk '$2 != "A" { print $3 }' | sort)
    echo "$syms" >"$T/exported"
    grep -v '^thinmeta_[a-z_]*@@THINMETA_1\.0$' "$T/exported" >"$T/stray" &&
        fail "symbols beyond the API exported: $(head -n 5 "$T/stray" | tr '\n' ' ')"
    # every function the header declares is there, and nothing else
    hdr=$REPO/include/thinmeta/thinmeta.h
    sed -n 's/^THINMETA_API [^(]*[ *]\(thinmeta_[a-z_]*\)(.*/\1/p' "$hdr" | sort >"$T/declared"
    [ -s "$T/declared" ] || fail "no THINMETA_API declarations found in thinmeta.h"
    sed 's/@@.*//' "$T/exported" >"$T/exported-names"
    expect_same "$T/declared" "$T/exported-names" "exported symbols vs thinmeta.h"
}
tcase shared-library-soname-and-exports t_soname_and_symbols

# build_example ROOT PREFIX [--static]: compile the example against the
# installed library (pkg-config; a sysroot when ROOT is a DESTDIR).
build_example() {
    local root=$1 prefix=$2 how=${3:-shared} pcdir flags so static=
    need_cmd pkg-config cc
    pcdir=$root$prefix/lib/pkgconfig
    [ "$how" = static ] && static=--static
    so=$root$prefix/lib/libthinmeta.so
    # $static is empty or one word
    # shellcheck disable=SC2086
    if [ "$root" = "" ]; then
        flags=$(PKG_CONFIG_PATH=$pcdir pkg-config $static --cflags --libs thinmeta) ||
            fail "pkg-config does not find thinmeta in $pcdir"
    else
        flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$root \
            pkg-config $static --cflags --libs thinmeta) || fail "pkg-config does not find thinmeta"
    fi
    note "pkg-config: $flags"
    if [ "$how" = static ]; then
        # the static library, found through the same -L
        flags=${flags/-lthinmeta/-l:libthinmeta.a}
    fi
    # shellcheck disable=SC2086,SC2046
    cc -std=c11 -Wall -Wextra -Werror $(san_flags "$so") -o "$T/list-devices" \
        "$REPO/docs/example/list-devices.c" $flags 2>"$T/cc.err" ||
        fail "the example does not build against the installed library: $(head -c 600 "$T/cc.err")"
    EXAMPLE_LIBDIR=$root$prefix/lib
}

# expected_devices FIXTURE_XML: "device ID: N mapped blocks" lines from a golden dump.
expected_devices() {
    sed -n 's/.*<device dev_id="\([0-9]*\)" mapped_blocks="\([0-9]*\)".*/device \1: \2 mapped blocks/p' "$1"
}

t_example_destdir() {
    local root=$T/root
    make_in install DESTDIR="$root" PREFIX=/usr
    build_example "$root" /usr
    # linked against the installed shared library, not a copy
    kernel_image 02-thins-snaps
    LD_LIBRARY_PATH=$EXAMPLE_LIBDIR run_ok "$T/list-devices" "$IMAGE" 0 10
    expect_stderr_empty
    expect_stdout_match "^libthinmeta $(lib_version); transaction 5, 4096 data blocks of 128 sectors$"
    expected_devices "$FIXTURES/kernel/02-thins-snaps.dump.xml" >"$T/want"
    grep '^device' "$STDOUT" | sed 's/ mapped blocks.*/ mapped blocks/' >"$T/got"
    expect_same "$T/want" "$T/got" "devices and mapped blocks"
    # device 10 is a snapshot of 0: thin_delta finds the same differences
    grep -q '^delta 0 -> 10:$' "$STDOUT" || fail "no delta printed"
    if [ -x "$BIN/thin_delta" ]; then
        run_ok "$BIN/thin_delta" --snap1 0 --snap2 10 "$IMAGE"
        grep -o '<different begin="[0-9]*" length="[0-9]*"' "$STDOUT" |
            sed 's/<different begin="\([0-9]*\)" length="\([0-9]*\)"/\1 \2/' |
            while read -r b l; do echo "  $b..$((b + l - 1)) different"; done >"$T/want-delta"
        LD_LIBRARY_PATH=$EXAMPLE_LIBDIR run_ok "$T/list-devices" "$IMAGE" 0 10
        sed -n '/^delta/,$p' "$STDOUT" | tail -n +2 | grep different >"$T/got-delta" || true
        [ -s "$T/want-delta" ] || fail "thin_delta shows no differences to compare"
        expect_same "$T/want-delta" "$T/got-delta" "delta against thin_delta's"
    fi
    LD_LIBRARY_PATH=$EXAMPLE_LIBDIR ldd "$T/list-devices" >"$T/ldd" 2>&1
    grep -q "libthinmeta.so.$(lib_version | cut -d. -f1) => $EXAMPLE_LIBDIR/" "$T/ldd" ||
        fail "the example does not load the installed library: $(grep thinmeta "$T/ldd")"
}
tcase example-against-destdir t_example_destdir

t_example_snapshot() {
    local root=$T/root
    make_in install DESTDIR="$root" PREFIX=/usr
    build_example "$root" /usr
    kernel_image 03-msnap-held
    LD_LIBRARY_PATH=$EXAMPLE_LIBDIR run_ok "$T/list-devices" -m "$IMAGE"
    expect_stdout_match 'metadata snapshot$'
    expected_devices "$FIXTURES/kernel/03-msnap-held.dump-m.xml" >"$T/want"
    grep '^device' "$STDOUT" | sed 's/ mapped blocks.*/ mapped blocks/' >"$T/got"
    expect_same "$T/want" "$T/got" "snapshot devices"
    # no snapshot held: a clean error
    kernel_image 02-thins-snaps
    LD_LIBRARY_PATH=$EXAMPLE_LIBDIR run_fail "$T/list-devices" -m "$IMAGE"
    expect_stderr_match 'no current metadata snapshot'
}
tcase example-metadata-snapshot t_example_snapshot

t_example_prefix_static() {
    local prefix=$T/prefix
    make_in install PREFIX="$prefix"
    build_example "" "$prefix" static
    ! ldd "$T/list-devices" | grep -q libthinmeta || fail "the static build still needs libthinmeta.so"
    kernel_image 02-thins-snaps
    run_ok "$T/list-devices" "$IMAGE"
    expected_devices "$FIXTURES/kernel/02-thins-snaps.dump.xml" >"$T/want"
    grep '^device' "$STDOUT" | sed 's/ mapped blocks.*/ mapped blocks/' >"$T/got"
    expect_same "$T/want" "$T/got" "devices (static)"
}
tcase example-static-from-prefix t_example_prefix_static

t_example_damage() {
    local root=$T/root
    make_in install DESTDIR="$root" PREFIX=/usr
    build_example "$root" /usr
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/bad.img"
    # the first leaf of device 0's mapping tree: every mapping read walks it
    python3 "$POKE" flip "$T/bad.img" 114 100 || fail "cannot damage the image"
    LD_LIBRARY_PATH=$EXAMPLE_LIBDIR run_fail "$T/list-devices" "$T/bad.img"
    expect_stderr_match 'thin device 0 mapping tree: .*block 114'
}
tcase example-damaged-leaf t_example_damage

finish
