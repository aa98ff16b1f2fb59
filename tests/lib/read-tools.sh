# shellcheck shell=bash
# read-tools.sh - the read-only tools, and how to run each on a metadata
# image, for the reliability tests (t-hostile.sh, t-readonly.sh).  Sourced
# after testlib.sh.
#
# One line per invocation: LABEL|TOOL|ARGS|NEEDS
#   ARGS   @IMG@ is the image, @DEV1@ and @DEV2@ two device ids of it
#   NEEDS  a comma list, or "-": "snap": only when the image holds a metadata
#          snapshot; "tty": an interactive tool, run under script(1) with
#          the key "q" as its input
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
explore-m|thin_explore|-m @IMG@|snap,tty'

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
    while IFS='|' read -r label tool args needs; do
        [ -x "$BIN/$tool" ] || continue
        case ,$needs, in *,snap,*) [ "$has_snap" = 0 ] && continue ;; esac
        case ,$needs, in *,tty,*) command -v script >/dev/null 2>&1 || continue ;; esac
        args=${args//@IMG@/$img}
        args=${args//@DEV1@/$dev1}
        args=${args//@DEV2@/$dev2}
        printf '%s|%s|%s|%s\n' "$label" "$tool" "$args" "$needs"
    done <<<"$READ_TOOLS"
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
