#!/bin/bash
# t-readonly.sh - read-only tools never open their input for writing
# (issue 9).  Every read-only invocation of tests/lib/read-tools.sh runs on
# the kernel fixture 03 (a held metadata snapshot, so -m runs too): thin_dump,
# thin_check (no repair option), thin_ls, thin_delta, thin_rmap,
# thin_explore, and the input metadata of thin_repair (-i), thin_trim
# (--metadata-dev) and thin_backup (--metadata):
#
#   file.LABEL      the input is chmod 0444 (not enforced for root, hence the
#                   rest): the tool succeeds; strace shows no open of the
#                   input with O_WRONLY, O_RDWR, O_CREAT or O_TRUNC and no
#                   other path call on it that changes it (truncate, unlink,
#                   rename, chmod, utimes ...); its sha256, mode and mtime
#                   are unchanged.
#   ro-mount.LABEL  the input's directory is bind-mounted read-only onto
#                   itself in a private mount namespace (unshare -m): the
#                   tool exits and prints exactly as on the writable file.
#   blockdev        the input as a read-only loop device (losetup -r): every
#                   tool prints exactly as on the file (this is also the
#                   O_DIRECT / O_EXCL path of block devices); the image is
#                   unchanged.  Skipped when no loop device can be set up.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/read-tools.sh
. "$TESTLIB_DIR/read-tools.sh"

FIXTURE=03-msnap-held
DEV1=0
DEV2=10
READ_TOOLS_HAS_SNAP=1   # 03 holds a metadata snapshot (checked by file.dump-m)

# the line of read_tool_lines for LABEL, with @IMG@ = IMG
tool_line() {   # LABEL IMG
    read_tool_lines "$2" "$DEV1" "$DEV2" | awk -F'|' -v l="$1" '$1 == l'
}

# stat_of FILE: mode and mtime (nanoseconds)
stat_of() {
    stat -c '%a %Y %y' "$1"
}

# reference run of LABEL on a writable copy: $T/ref.out, $T/ref.rc
reference_run() {   # LABEL
    local label tool args needs
    mkdir -p "$T/rw"
    cp "$IMAGE" "$T/rw/meta.img"
    IFS='|' read -r label tool args needs <<<"$(tool_line "$1" "$T/rw/meta.img")"
    run_read_tool unlimited "$tool" "$args" "$needs"
    cp "$STDOUT" "$T/ref.out"
    echo "$RC" >"$T/ref.rc"
}

t_file() {   # LABEL
    local label tool args needs img=$T/ro/meta.img before
    need_cmd strace
    kernel_image "$FIXTURE"
    mkdir -p "$T/ro"
    cp "$IMAGE" "$img"
    chmod 0444 "$img"
    remember_sum "$img"
    before=$(stat_of "$img")
    IFS='|' read -r label tool args needs <<<"$(tool_line "$1" "$img")"
    [ -n "$tool" ] || skip "$1 does not apply"
    case ,$needs, in
        *,tty,*)
            # shellcheck disable=SC2016
            ASAN_OPTIONS=detect_leaks=0 run bash -c 'printf q | TERM=xterm strace -f -qq -o "$0" -e trace=%file,ftruncate script -qec "$1" /dev/null' \
                "$T/trace" "$BIN/$tool $args"
            ;;
        *)
            # (LeakSanitizer cannot run under ptrace)
            # shellcheck disable=SC2086
            ASAN_OPTIONS=detect_leaks=0 run strace -f -qq -o "$T/trace" -e trace=%file,ftruncate "$BIN/$tool" $args
            ;;
    esac
    [ "$RC" -eq 0 ] || fail "$label failed on an intact read-only image (exit $RC)"
    grep -qF "\"$img\"" "$T/trace" || fail "strace saw no access to the input (trace broken?)"
    local bad
    bad=$(grep -F "\"$img\"" "$T/trace" |
        grep -E 'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|(^|[0-9] +)(truncate|creat|unlink|unlinkat|rename|renameat2?|chmod|fchmodat|chown|fchownat|lchown|utimensat|utimes|link|linkat|symlink|symlinkat|mknod|mknodat|setxattr|lsetxattr|removexattr)\(')
    [ -z "$bad" ] || fail "$label opened or changed its input for writing: $(head -n 2 <<<"$bad")"
    expect_unchanged "$img"
    [ "$(stat_of "$img")" = "$before" ] || fail "mode or mtime of the input changed"
}

t_ro_mount() {   # LABEL
    local label tool args needs dir=$T/ro img
    need_cmd unshare mount
    kernel_image "$FIXTURE"
    [ -n "$(tool_line "$1" "$IMAGE")" ] || skip "$1 does not apply"
    reference_run "$1"
    mkdir -p "$dir"
    img=$dir/meta.img
    cp "$IMAGE" "$img"
    remember_sum "$img"
    IFS='|' read -r label tool args needs <<<"$(tool_line "$1" "$img")"
    unshare -m true 2>/dev/null || skip "no private mount namespace (unshare -m)"
    local cmd="$BIN/$tool $args"
    case ,$needs, in *,tty,*) cmd="printf q | TERM=xterm script -qec '$cmd' /dev/null" ;; esac
    # shellcheck disable=SC2016
    run unshare -m bash -c 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" || exit 99
        touch "$0/probe" 2>/dev/null && exit 98
        eval "$1"' "$dir" "$cmd"
    [ "$RC" -ne 99 ] || skip "cannot bind-mount read-only here"
    [ "$RC" -ne 98 ] || fail "the bind mount is not read-only"
    [ "$RC" -eq "$(cat "$T/ref.rc")" ] || fail "$label: exit $RC on a read-only mount, $(cat "$T/ref.rc") on a writable file"
    case ,$needs, in
        *,tty,*) ;;   # the screen dump is timing-dependent
        *) expect_same "$T/ref.out" "$STDOUT" "$label output on a read-only mount" ;;
    esac
    expect_unchanged "$img"
}

t_blockdev() {
    local loop label tool args needs n=0
    need_cmd losetup
    kernel_image "$FIXTURE"
    cp "$IMAGE" "$T/meta.img"
    remember_sum "$T/meta.img"
    loop=$(losetup -r -f --show "$T/meta.img" 2>/dev/null) || skip "no loop device available"
    trap 'losetup -d "$loop" 2>/dev/null' EXIT
    [ "$(blockdev --getro "$loop" 2>/dev/null)" = 1 ] || fail "$loop is not read-only"
    while IFS='|' read -r label tool args needs; do
        case ,$needs, in *,tty,*) continue ;; esac
        # shellcheck disable=SC2086
        run "$BIN/$tool" $args
        [ "$RC" -eq 0 ] || fail "$label: exit $RC on the read-only loop device: $(head -n 1 "$STDERR")"
        cp "$STDOUT" "$T/dev.out"
        # shellcheck disable=SC2086
        run "$BIN/$tool" ${args//$loop/$T/meta.img}
        expect_same "$STDOUT" "$T/dev.out" "$label on $loop against the file"
        n=$((n + 1))
    done < <(read_tool_lines "$loop" "$DEV1" "$DEV2")
    [ "$n" -gt 0 ] || fail "no read tool ran"
    losetup -d "$loop"
    trap - EXIT
    expect_unchanged "$T/meta.img"
}

# one case per invocation: the table is read once, without an image
while IFS='|' read -r label _; do
    tcase "file.$label" t_file "$label"
    tcase "ro-mount.$label" t_ro_mount "$label"
done <<<"$READ_TOOLS"
tcase blockdev t_blockdev
finish
