# shellcheck shell=bash
# read-tools.sh - the read-only tools, and how to run each on a metadata
# image, for the reliability tests (t-hostile.sh, t-readonly.sh).  Sourced
# after testlib.sh.
#
# One line per invocation: LABEL|TOOL|ARGS|NEEDS
#   ARGS   @IMG@ is the image, @DEV1@ and @DEV2@ two device ids of it;
#          @OUTMETA@ a fresh 8 MiB output file (made anew before each run),
#          @OUTFILE@ an output path that does not exist, @DATA@ a sparse
#          256 MiB data device (all three in $T, never next to the image)
#   NEEDS  a comma list, or "-": "snap": only when the image holds a metadata
#          snapshot; "tty": an interactive tool, run under script(1) with
#          the key "q" as its input
# The tools that write somewhere else (thin_repair, thin_trim, thin_backup)
# are listed for what they do to their input metadata: read it only.
# A line whose TOOL is not built in $BIN is skipped, so a tool is covered as
# soon as it lands: add its lines here.
READ_TOOLS='dump|thin_dump|@IMG@|-
dump-human|thin_dump|-f human_readable @IMG@|-
dump-skip|thin_dump|--skip-mappings @IMG@|-
dump-dev|thin_dump|--dev-id @DEV1@ @IMG@|-
dump-m|thin_dump|-m @IMG@|snap
check|thin_check|@IMG@|-
check-sb|thin_check|--super-block-only @IMG@|-
check-skip|thin_check|--skip-mappings @IMG@|-
check-m|thin_check|-m @IMG@|snap
ls|thin_ls|@IMG@|-
ls-m|thin_ls|-m @IMG@|snap
delta|thin_delta|--thin1 @DEV1@ --thin2 @DEV2@ @IMG@|-
delta-m|thin_delta|-m --thin1 @DEV1@ --thin2 @DEV2@ @IMG@|snap
rmap|thin_rmap|--region 0..4096 @IMG@|-
explore|thin_explore|@IMG@|tty
explore-m|thin_explore|-m @IMG@|snap,tty
repair-in|thin_repair|-i @IMG@ -o @OUTMETA@|-
trim-meta|thin_trim|--metadata-dev @IMG@ --data-dev @DATA@|-
backup-m|thin_backup|full --metadata @IMG@ --data @DATA@ --dev-id @DEV1@ -m -o @OUTFILE@|snap'

# read_tool_lines IMG DEV1 DEV2: "LABEL|TOOL|ARG ARG ...|NEEDS" for each
# invocation that applies (tool built; snapshot held if needed), arguments
# substituted.  READ_TOOLS_HAS_SNAP=0/1 says whether IMG holds a snapshot
# (default: read from its superblock).
read_tool_lines() {
    local img=$1 dev1=$2 dev2=$3 label tool args needs has_snap=${READ_TOOLS_HAS_SNAP:-}
    if [ -z "$has_snap" ]; then
        has_snap=0
        [ "$(sb_field "$img" metadata_snap)" != 0 ] && has_snap=1
    fi
    read_tool_outputs
    while IFS='|' read -r label tool args needs; do
        [ -x "$BIN/$tool" ] || continue
        case ,$needs, in *,snap,*) [ "$has_snap" = 0 ] && continue ;; esac
        case ,$needs, in *,tty,*) command -v script >/dev/null 2>&1 || continue ;; esac
        args=${args//@IMG@/$img}
        args=${args//@DEV1@/$dev1}
        args=${args//@DEV2@/$dev2}
        args=${args//@OUTMETA@/$T/rt-out.meta}
        args=${args//@OUTFILE@/$T/rt-out.file}
        args=${args//@DATA@/$T/rt-data}
        printf '%s|%s|%s|%s\n' "$label" "$tool" "$args" "$needs"
    done <<<"$READ_TOOLS"
}

# read_tool_outputs: (re)make the outputs and the data device of the table.
read_tool_outputs() {
    rm -f "$T/rt-out.meta" "$T/rt-out.file" "$T/rt-out.file.thin_backup"
    truncate -s 8M "$T/rt-out.meta"
    [ -e "$T/rt-data" ] || truncate -s 256M "$T/rt-data"
}

# is_sanitized TOOL: the binary was built with AddressSanitizer (which
# reserves terabytes of address space: no ulimit -v then).
is_sanitized() {
    grep -q __asan_init "$BIN/$1" 2>/dev/null
}

# run_bounded MEM_KB CMD...: run under `ulimit -v` (unless sanitized, or
# MEM_KB is "unlimited") and the harness's timeout; sanitizer reports get
# exit code 86.
run_bounded() {
    local mem=$1
    shift
    if [ "$mem" = unlimited ] || is_sanitized "$(basename "$1")"; then
        ASAN_OPTIONS=exitcode=86 UBSAN_OPTIONS=exitcode=86:halt_on_error=1 run "$@"
    else
        # shellcheck disable=SC2016
        run bash -c 'ulimit -v "$0" && exec "$@"' "$mem" "$@"
    fi
}

# run_read_tool MEM_KB TOOL ARGS NEEDS: one line of read_tool_lines, run
# with run_bounded (a "tty" tool under script(1), "q" typed).
run_read_tool() {
    local mem=$1 tool=$2 args=$3 needs=$4
    read_tool_outputs
    case ,$needs, in
        *,tty,*)
            is_sanitized "$tool" && mem=unlimited
            # script -e passes the tool's exit status on
            # shellcheck disable=SC2016
            run_bounded "$mem" bash -c 'printf q | TERM=xterm script -qec "$0" /dev/null' \
                "$BIN/$tool $args"
            ;;
        *)
            # shellcheck disable=SC2086
            run_bounded "$mem" "$BIN/$tool" $args
            ;;
    esac
}
