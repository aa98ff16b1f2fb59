# cli-cases.sh - command-line cases every read tool shares, for the test
# files of thin_delta, thin_ls and thin_rmap (sourced after testlib.sh).
# Each takes the tool's name first; a file defines good_image (which sets
# IMAGE) before it uses cli_usage with IMG.
#
# shellcheck shell=bash

# Its --help is 1.1.0's, byte for byte.
cli_help_as_1x() {   # TOOL
    need_ref 1x
    need_bin "$1"
    "$REF_1X/$1" --help >"$T/expected"
    run_ok "$BIN/$1" --help
    expect_same "$T/expected" "$STDOUT" "help text"
}

# -V / --version: the bare version on one line, nothing on stderr.
cli_version() {   # TOOL FLAG
    need_bin "$1"
    run_ok "$BIN/$1" "$2"
    expect_stderr_empty
    [ "$(wc -l <"$STDOUT")" -eq 1 ] || fail "version output should be one line"
    expect_stdout_match '^[0-9]+\.[0-9]+\.[0-9]+$'
}

# A command-line mistake: exit 2, stderr says PATTERN, nothing on stdout.
# IMG among ARGS stands for a good image.
cli_usage() {   # TOOL PATTERN ARGS...
    local tool=$1 pat=$2 a args=()
    shift 2
    need_bin "$tool"
    for a in "$@"; do
        if [ "$a" = IMG ]; then
            good_image
            args+=("$IMAGE")
        else
            args+=("$a")
        fi
    done
    run_usage "$BIN/$tool" "${args[@]}"
    expect_stderr_match "$pat"
    expect_stdout_empty
}
