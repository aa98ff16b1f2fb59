#!/bin/bash
# t-completion.sh - contrib/bash-completion/thinmeta: it loads in a plain
# bash (no bash-completion package), registers every tool of the Makefile's
# TOOLS, its table holds exactly the options each tool's --help lists, and
# a few completions come out right (options, option values, files,
# thin_ls fields, thin_pool commands, --opt=value).
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source=../lib/help-options.sh
. "$TESTLIB_DIR/help-options.sh"

COMPLETION=$REPO/contrib/bash-completion/thinmeta

list_tools() {
    (
        unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
        make -s --no-print-directory -C "$REPO" print-tools
    )
}

# complete WORD...: the replies for the command line WORD... (the last
# word is the one being completed), one per line, in a fresh bash that has
# only sourced the completion file.
complete_line() {
    bash --norc --noprofile -c '
        . "$1" || exit 3
        shift
        COMP_WORDS=("$@")
        COMP_CWORD=$(( $# - 1 ))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        spec=$(complete -p "$1" 2>/dev/null) || exit 4
        fn=${spec#*-F }
        fn=${fn%% *}
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"
    ' bash "$COMPLETION" "$@"
}

# expect_replies "WORDS" REPLY...: exactly these replies, in any order.
expect_replies() {
    local words=$1 arr
    shift
    read -ra arr <<<"$words"
    [[ $words == *" " ]] && arr+=("")    # completing a new, empty word
    (cd "$T" && complete_line "${arr[@]}") >"$T/got.unsorted" 2>"$T/err" ||
        fail "completion of '$words' failed (status $?): $(head -c 200 "$T/err")"
    sed '/^$/d' "$T/got.unsorted" | sort >"$T/got"
    printf '%s\n' "$@" | sed '/^$/d' | sort >"$T/want"
    expect_same "$T/want" "$T/got" "completions of '$words'"
}

t_loads_and_registers() {
    local t
    bash --norc --noprofile -c '. "$1" && complete -p' bash "$COMPLETION" >"$T/specs" 2>"$T/err" ||
        fail "sourcing it fails: $(head -c 300 "$T/err")"
    [ ! -s "$T/err" ] || fail "sourcing it prints: $(head -c 300 "$T/err")"
    for t in $(list_tools); do
        grep -q " $t\$" "$T/specs" || fail "no completion registered for $t"
    done
}
tcase loads-and-registers-every-tool t_loads_and_registers

# The table of a tool against its --help (as t-manpages.sh reads it).
t_table_matches_help() {   # TOOL
    local t=$1 s
    need_bin "$t"
    run_ok "$BIN/$t" --help
    help_options "$STDOUT" >"$T/help"
    for s in ${HELP_HIDDEN[$t]:-}; do
        run_ok "$BIN/$t" "$s" --help
        echo "$s" >>"$T/help"
    done
    sort -u -o "$T/help" "$T/help"
    bash --norc --noprofile -c '. "$1"; printf "%s\n" ${_thinmeta_opts[$2]}' \
        bash "$COMPLETION" "$t" | sed 's/:.*//' | sort -u >"$T/table"
    [ -s "$T/table" ] || fail "$t is not in the completion table"
    expect_same "$T/help" "$T/table" "options of $t: --help vs the completion table"
}
for _t in $(list_tools); do
    tcase "table-$_t" t_table_matches_help "$_t"
done

t_options() {
    expect_replies "thin_dump --me" --metadata-snap
    expect_replies "thin_check --cl" --clear-needs-check-flag
    expect_replies "thin_delta --sn" --snap1 --snap2
    expect_replies "thin_restore --in" --input
}
tcase option-names t_options

t_values() {
    expect_replies "thin_dump -f " xml human_readable
    expect_replies "thin_dump --format h" human_readable
    expect_replies "thin_dump --format=h" --format=human_readable
    expect_replies "thin_metadata_size -u " b s k K m M g G
    expect_replies "thin_ls -o DEV,SH" DEV,SHARED_BLOCKS DEV,SHARED_SECTORS DEV,SHARED_BYTES DEV,SHARED
    expect_replies "thin_check --override-mapping-root " ""
}
tcase option-values t_values

t_files() {
    touch "$T/pool-a.meta" "$T/pool-b.meta" "$T/other"
    expect_replies "thin_check pool-" pool-a.meta pool-b.meta
    expect_replies "thin_restore -i pool-a" pool-a.meta
    expect_replies "thin_dump -o oth" other
    expect_replies "thin_trim --metadata-dev=pool-b" --metadata-dev=pool-b.meta
    # no positional arguments
    expect_replies "thin_restore pool-" ""
}
tcase file-arguments t_files

t_thin_pool() {
    touch "$T/meta.img"
    expect_replies "thin_pool me" meta.img
    expect_replies "thin_pool meta.img create_" create_thin create_snap
    expect_replies "thin_pool meta.img --scr" --script
}
tcase thin-pool-commands t_thin_pool

t_thin_backup() {
    expect_replies "thin_backup " full incremental
    expect_replies "thin_backup inc" incremental
    expect_replies "thin_backup full --dev" --dev-id
    touch "$T/meta.img"
    expect_replies "thin_backup full --metadata me" meta.img
}
tcase thin-backup-commands t_thin_backup

t_unknown_tool() {
    # a thin_* tool the table does not know: options from its --help
    mkdir "$T/bin"
    printf '#!/bin/sh\necho "  -x, --xylophone   Play"\n' >"$T/bin/thin_new"
    chmod +x "$T/bin/thin_new"
    run bash --norc --noprofile -c '. "$1"; COMP_WORDS=(thin_new --xy); COMP_CWORD=1
        _thinmeta "$2" --xy thin_new; printf "%s\n" "${COMPREPLY[@]}"' bash "$COMPLETION" "$T/bin/thin_new"
    [ "$(cat "$STDOUT")" = --xylophone ] || fail "fallback to --help: got '$(cat "$STDOUT")'"
}
tcase unknown-tool-uses-help t_unknown_tool

finish
