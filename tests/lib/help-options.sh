# shellcheck shell=bash
# (the arrays are read by the test files that source this)
# shellcheck disable=SC2034
# help-options.sh - the options a tool's --help names, one per line, sorted
# (t-manpages.sh and t-completion.sh compare them with the man page and the
# completion table):
#   - every --long word anywhere (option lines, usage lines, command lines);
#   - every short option -X at the start of an option line ("  -h, --help"),
#     in brackets ("[-m]", "[-o <FILE>]") or before a value ("-o <IMAGE>")
#     (not in prose: "as hexdump -C does");
#   - aliases ("[aliases: snap1]" -> --snap1).

# Options a tool accepts and documents in its man page but leaves out of
# --help on purpose: thin_ls's --help is 1.1.0's byte for byte
# (t-ls.sh), so our --json is not in it.  t-manpages.sh and t-completion.sh
# check that the tool accepts each of these.
declare -gA HELP_HIDDEN=(
    [thin_ls]='--json'
)

# Options a tool accepts and its man page documents, but that are neither in
# its --help nor in the completion table: 1.1.0 hides thin_check's
# --io-engine too; thin_repair's --force-scan is for tests.  An entry is the
# word t-manpages.sh passes before --help to see it accepted (a value
# attached with '='); the option is the part before the '='.
declare -gA PAGE_ONLY=(
    [thin_check]='--io-engine=sync'
    [thin_repair]='--force-scan'
)

help_options() {   # HELP_FILE
    {
        grep -oE -- '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' "$1" | sed 's/^[^-]*//'
        grep -E '^[[:space:]]+-[A-Za-z0-9?]([,[:space:]]|$)' "$1" |
            sed -E 's/^[[:space:]]+(-[A-Za-z0-9?]).*/\1/'
        grep -oE -- '\[-[A-Za-z0-9?][] ]|(^|[^A-Za-z0-9-])-[A-Za-z0-9?] <' "$1" |
            sed -E 's/^[^-]*(-[A-Za-z0-9?]).*/\1/'
        grep -oE '\[aliases?: [^]]*\]' "$1" | sed -E 's/\[aliases?: //; s/\]//' |
            tr ',' '\n' | sed -E 's/^ *//; s/^/--/'
    } | sort -u
}
