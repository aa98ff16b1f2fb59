#!/bin/bash
# t-manpages.sh - a man page for every tool, and each page accurate to its
# tool: every option the tool's --help lists is documented in the page's
# option entries (.TP headers), and every option documented there is one
# the --help lists; the page has the usual sections and renders without
# warnings; its EXIT STATUS lists 0, 1 and 2, and the tool does exit 0 for
# --help and 2 for an unknown option.  Every option the tool's source
# accepts is in the page too (hidden ones included: help-options.sh's
# PAGE_ONLY), and every tool's -V/--version prints the bare version line
# as 1.1.0's tools do.
#
# Table-driven: the tools are the Makefile's TOOLS (`make print-tools`), so
# a tool that lands without a page fails here; a page without a tool too.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=../lib/help-options.sh
. "$TESTLIB_DIR/help-options.sh"

MAN=$REPO/man

list_tools() {
    (
        unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
        make -s --no-print-directory -C "$REPO" print-tools
    )
}

# Options named by a page's option entries: the line after each .TP.
page_options() {   # PAGE
    awk 'tp { print; tp = 0 } /^\.TP/ { tp = 1 }' "$1" |
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(..//g' >"$T/tags"
    {
        grep -oE -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' "$T/tags" | sed 's/^[^-]*//'
        grep -oE -- '(^|[^A-Za-z0-9-])-[A-Za-z0-9?]([^A-Za-z0-9-]|$)' "$T/tags" |
            sed -E 's/^[^-]*(-[A-Za-z0-9?]).*/\1/'
    } | sort -u
}

t_every_tool_has_a_page() {
    local t missing=
    for t in $(list_tools); do
        [ -f "$MAN/$t.8" ] || missing="$missing $t"
    done
    [ -z "$missing" ] || fail "tools without a man page (man/TOOL.8):$missing"
}
tcase every-tool-has-a-page t_every_tool_has_a_page

t_every_page_has_a_tool() {
    local p t stale=
    list_tools >"$T/tools"
    for p in "$MAN"/*.8; do
        t=$(basename "$p" .8)
        grep -qx "$t" "$T/tools" || stale="$stale $t"
    done
    [ -z "$stale" ] || fail "man pages for tools that are not built:$stale"
}
tcase every-page-has-a-tool t_every_page_has_a_tool

t_page() {   # TOOL
    local t=$1 page=$MAN/$1.8 up s
    need_bin "$t"
    [ -f "$page" ] || fail "man/$t.8 is missing"
    up=$(printf '%s' "$t" | tr '[:lower:]' '[:upper:]')
    grep -q "^\.TH $up 8 " "$page" || fail "no .TH $up 8 line"
    for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" "SEE ALSO"; do
        grep -q "^\.SH \"\?$s\"\?\$" "$page" || fail "no $s section"
    done
    sed -n '/^\.SH NAME/{n;p;}' "$page" | grep -q "^$t \\\\- " ||
        fail "the NAME line does not start with '$t \\-'"

    # options: --help and the page agree
    run_ok "$BIN/$t" --help
    cp "$STDOUT" "$T/help"
    help_options "$T/help" >"$T/help-opts"
    for s in ${HELP_HIDDEN[$t]:-} ${PAGE_ONLY[$t]:-}; do
        # accepted, though --help does not list it: parsed before --help
        run_ok "$BIN/$t" "$s" --help
        echo "${s%%=*}" >>"$T/help-opts"
    done
    sort -u -o "$T/help-opts" "$T/help-opts"
    page_options "$page" >"$T/page-opts"
    [ -s "$T/help-opts" ] || fail "no options found in --help"
    comm -23 "$T/help-opts" "$T/page-opts" >"$T/undocumented"
    comm -13 "$T/help-opts" "$T/page-opts" >"$T/unknown"
    [ -s "$T/undocumented" ] &&
        fail "options in --help but not in man/$t.8: $(tr '\n' ' ' <"$T/undocumented")"
    [ -s "$T/unknown" ] &&
        fail "options in man/$t.8 that --help does not list: $(tr '\n' ' ' <"$T/unknown")"

    # exit status: documented, and what the tool does
    sed -n '/^\.SH "\?EXIT STATUS/,/^\.SH/p' "$page" >"$T/exit"
    for s in 0 1 2; do
        grep -A1 '^\.TP' "$T/exit" | grep -qx "\.B $s" || fail "EXIT STATUS does not list $s"
    done
    run_usage "$BIN/$t" --no-such-option-at-all
    expect_stderr_nonempty

    # renders cleanly
    if command -v groff >/dev/null 2>&1; then
        LC_ALL=C groff -man -ww -z "$page" 2>"$T/groff" || fail "groff fails on man/$t.8"
        [ ! -s "$T/groff" ] || fail "groff warns about man/$t.8: $(head -n 3 "$T/groff")"
    fi
}
for _t in $(list_tools); do
    tcase "page-$_t" t_page "$_t"
done

# Every option the tool's source accepts (its getopt tables and the words
# it compares arguments with) has an entry in its page, whether or not
# --help lists it.
source_options() {   # TOOL
    local main f
    for main in "$REPO"/*/"$1".c; do break; done
    [ -f "$main" ] || return 1
    for f in "$(dirname "$main")"/*.c; do
        awk '/struct option/ { on = 1 } on { print } on && /^};/ { on = 0 }' "$f" |
            grep -oE '\{ *"[a-z][a-z0-9-]*"' | sed -E 's/.*"(.*)"/--\1/'
        grep -oE 'strcmp\([^,()]*, *"--?[A-Za-z0-9?][a-z0-9-]*"\)' "$f" |
            sed -E 's/.*"(.*)"\)/\1/'
        grep -oE 'getopt_long\([^,]*,[^,]*, *"[^"]*"' "$f" | sed -E 's/.*"(.*)"/\1/' |
            tr -d ':' | grep -oE '[A-Za-z0-9?]' | sed 's/^/-/'
    done | sort -u
}

t_accepted() {   # TOOL
    local t=$1 page=$MAN/$1.8
    [ -f "$page" ] || fail "man/$t.8 is missing"
    source_options "$t" >"$T/accepted" || fail "no source file */$t.c"
    [ -s "$T/accepted" ] || fail "no options found in the source of $t"
    page_options "$page" >"$T/page-opts"
    comm -23 "$T/accepted" "$T/page-opts" >"$T/undocumented"
    [ -s "$T/undocumented" ] &&
        fail "options $t accepts that man/$t.8 does not document: $(tr '\n' ' ' <"$T/undocumented")"
    return 0
}
for _t in $(list_tools); do
    tcase "accepted-options-$_t" t_accepted "$_t"
done

# -V and --version print the bare version line, as 1.1.0's tools do
# ("1.1.0\n": lvm2's configure and test suite parse it).
t_version() {   # TOOL
    local t=$1 v o
    need_bin "$t"
    v=$(sed -n 's/^#define THINMETA_VERSION "\(.*\)"/\1/p' "$REPO/common/tool.h")
    [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "THINMETA_VERSION is '$v', not X.Y.Z"
    for o in -V --version; do
        run_ok "$BIN/$t" "$o"
        expect_stderr_empty
        printf '%s\n' "$v" >"$T/want"
        expect_same "$T/want" "$STDOUT" "$t $o"
    done
    if [ -x "$REF_1X/thin_check" ]; then
        "$REF_1X/thin_check" -V >"$T/ref" 2>&1 || fail "1.1.0's thin_check -V fails"
        if ! grep -qxE '[0-9]+\.[0-9]+\.[0-9]+' "$T/ref" || [ "$(wc -l <"$T/ref")" -ne 1 ]; then
            fail "1.1.0's -V is not one bare X.Y.Z line: $(head -c 100 "$T/ref")"
        fi
    fi
}
for _t in $(list_tools); do
    tcase "version-$_t" t_version "$_t"
done

t_library_page() {
    local page=$MAN/libthinmeta.3 f
    [ -f "$page" ] || fail "man/libthinmeta.3 is missing"
    # every API function is in the SYNOPSIS, and every one named there exists
    sed -n 's/^THINMETA_API [^(]*[ *]\(thinmeta_[a-z_]*\)(.*/\1/p' \
        "$REPO/include/thinmeta/thinmeta.h" | sort -u >"$T/api"
    [ -s "$T/api" ] || fail "no THINMETA_API functions found in thinmeta.h"
    sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$page" | grep -oE 'thinmeta_[a-z_]+\(' |
        tr -d '(' | sort -u >"$T/synopsis"
    expect_same "$T/api" "$T/synopsis" "functions in libthinmeta.3's SYNOPSIS vs thinmeta.h"
    if command -v groff >/dev/null 2>&1; then
        LC_ALL=C groff -man -ww -z "$page" 2>"$T/groff" || fail "groff fails"
        [ ! -s "$T/groff" ] || fail "groff warns: $(head -n 3 "$T/groff")"
    fi
    f=$(grep -c '^\.SH' "$page")
    [ "$f" -ge 5 ] || fail "libthinmeta.3 has only $f sections"
}
tcase library-page t_library_page

finish
