#!/bin/bash
# t-trim.sh - thin_trim on regular files: after the check, exactly the data
# blocks the pool does not use are punched out (they read back as zeroes,
# the file keeps its size), every block in use, including those only the
# held metadata snapshot still maps, keeps its bytes; the metadata is never
# written; nothing is discarded when the check fails.  Also its command
# line and 1.1.0's messages.
#
# Where we deliberately differ from 1.1.0: a regular-file data device gets
# its free ranges punched out (1.1.0 tries BLKDISCARD and fails with
# "Inappropriate ioctl for device"); exit status 1 for every run-time failure
# (1.1.0: 64, or 65 when the check fails); the check is a structural walk,
# not 1.1.0's full thin_check, and prints no progress titles on stderr; XML
# metadata is refused by name.  Block devices (BLKDISCARD) are not tested
# here: that needs a loop device.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

TOOL=thin_trim

# fill_data FILE NR_BLOCKS BLOCK_BYTES: a data file whose every block starts
# with its number and a marker, so that a punched block shows.
fill_data() {
    need_cmd python3
    python3 - "$@" <<'EOF' || fail "cannot write the data file"
import sys
path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'wb') as f:
    f.truncate(n * bs)
    for i in range(n):
        f.seek(i * bs)
        f.write(b'BLOCK%08d' % i)
EOF
}

# kept_blocks FILE NR_BLOCKS BLOCK_BYTES: the blocks still marked, one per line.
kept_blocks() {
    python3 - "$@" <<'EOF'
import sys
path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'rb') as f:
    for i in range(n):
        f.seek(i * bs)
        head = f.read(13)
        if head == b'BLOCK%08d' % i:
            print(i)
        elif head != bytes(len(head)):
            print('garbage in block %d' % i)
EOF
}

# used_blocks IMAGE NR: the data blocks any thin device maps, from thin_rmap.
used_blocks() {
    "$BIN/thin_rmap" --region "0..$2" "$1" |
        awk '{ split($2, r, "\\.\\."); for (b = r[1]; b < r[2]; b++) print b }' | sort -un
}

t_help() {
    need_bin "$TOOL"
    run_ok "$BIN/$TOOL" "$1"
    expect_stdout_match '^Usage: thin_trim \[OPTIONS\] --metadata-dev <FILE> --data-dev <FILE>$'
    expect_stderr_empty
}
tcase help-long t_help --help
tcase help-short t_help -h

t_help_as_1x() {
    need_ref 1x
    need_bin "$TOOL"
    "$REF_1X/$TOOL" --help >"$T/expected"
    run_ok "$BIN/$TOOL" --help
    expect_same "$T/expected" "$STDOUT" "help text"
}
tcase help-same-as-1.1.0 t_help_as_1x

t_version() {
    need_bin "$TOOL"
    run_ok "$BIN/$TOOL" "$1"
    expect_stderr_empty
    expect_stdout_match '^[0-9]+\.[0-9]+\.[0-9]+$'
}
tcase version-long t_version --version
tcase version-short t_version -V

t_usage() {   # PATTERN ARGS...
    local pat=$1
    shift
    need_bin "$TOOL"
    kernel_image 02-thins-snaps
    fill_data "$T/data" 16 65536
    remember_sum "$T/data"
    run_usage "$BIN/$TOOL" "${@//IMG/$IMAGE}"
    expect_stderr_match "$pat"
    expect_stdout_empty
    expect_unchanged "$T/data"
}
tcase no-args t_usage 'required'
tcase no-data-dev t_usage 'data-dev' --metadata-dev IMG
tcase no-metadata-dev t_usage 'metadata-dev' --data-dev data
tcase bad-option t_usage 'hedgehogs' --metadata-dev IMG --data-dev data --hedgehogs-only
tcase extra-argument t_usage 'unexpected' --metadata-dev IMG --data-dev data extra
tcase metadata-twice t_usage 'multiple' --metadata-dev IMG --metadata-dev IMG --data-dev data

t_bad_metadata() {   # PATTERN SETUP
    need_bin "$TOOL"
    local pat=$1
    case $2 in
        missing) IMAGE=$T/no-such-file ;;
        dir) IMAGE=$T ;;
        tiny) head -c 1024 /dev/zero >"$T/tiny"; IMAGE=$T/tiny ;;
        zero) truncate -s 16M "$T/zero"; IMAGE=$T/zero ;;
        xml)
            gen_xml "$T/in.xml" --devices 1 --mappings-per-device 5000
            IMAGE=$T/in.xml ;;
        leaf)
            need_cmd python3
            kernel_image 02-thins-snaps
            cp "$IMAGE" "$T/img"
            IMAGE=$T/img
            python3 "$POKE" flip "$IMAGE" 95 200 >/dev/null ;;
    esac
    fill_data "$T/data" 4096 65536
    run_fail "$BIN/$TOOL" --metadata-dev "$IMAGE" --data-dev "$T/data"
    expect_stderr_match -i "$pat"
    expect_stdout_empty
    # nothing discarded
    [ "$(kept_blocks "$T/data" 4096 65536 | wc -l)" -eq 4096 ] ||
        fail "data blocks were discarded although the check failed"
}
tcase missing-metadata t_bad_metadata "Couldn't find input file" missing
tcase metadata-is-directory t_bad_metadata 'Not a block device or regular file' dir
tcase tiny-metadata t_bad_metadata 'too small' tiny
tcase zeroed-metadata t_bad_metadata 'metadata contains errors' zero
tcase xml-metadata t_bad_metadata 'XML' xml
tcase damaged-leaf t_bad_metadata 'block 95.*metadata contains errors|metadata contains errors' leaf

t_bad_data() {   # PATTERN SETUP
    need_bin "$TOOL"
    local pat=$1 data=$T/data
    kernel_image 02-thins-snaps
    case $2 in
        missing) data=$T/no-such-file ;;
        dir) data=$T ;;
        small) truncate -s 100M "$data" ;;
    esac
    remember_sum "$IMAGE"
    run_fail "$BIN/$TOOL" --metadata-dev "$IMAGE" --data-dev "$data"
    expect_stderr_match "$pat"
    expect_unchanged "$IMAGE"
}
tcase missing-data t_bad_data "Couldn't find input file '.*no-such-file'" missing
tcase data-is-directory t_bad_data 'Not a block device or regular file' dir
tcase data-too-small t_bad_data '^thin_trim: unexpected data device size, wanted 268435456 bytes$' small

t_trim_kernel() {   # FIXTURE TRANSACTION FREE_META
    local kept used
    need_bin "$TOOL"
    need_bin thin_rmap
    kernel_image "$1"
    cp "$IMAGE" "$T/meta"
    remember_sum "$T/meta"
    fill_data "$T/data" 4096 65536
    run_ok "$BIN/$TOOL" --metadata-dev "$T/meta" --data-dev "$T/data"
    printf 'TRANSACTION_ID=%s\nMETADATA_FREE_BLOCKS=%s\n' "$2" "$3" >"$T/expected"
    expect_same "$T/expected" "$STDOUT" "stdout (1.1.0's check lines)"
    expect_stderr_empty
    expect_unchanged "$T/meta"
    [ "$(stat -c %s "$T/data")" -eq 268435456 ] || fail "the data file changed size"
    kept_blocks "$T/data" 4096 65536 >"$T/kept"
    ! grep -q garbage "$T/kept" || fail "$(grep -m1 garbage "$T/kept")"
    used_blocks "$T/meta" 4096 >"$T/used"
    kept=$(wc -l <"$T/kept")
    used=$(wc -l <"$T/used")
    # every mapped block is kept
    [ -z "$(comm -13 "$T/kept" "$T/used")" ] ||
        fail "mapped data blocks were discarded: $(comm -13 "$T/kept" "$T/used" | head -5 | tr '\n' ' ')"
    [ "$kept" -eq "$4" ] || fail "kept $kept blocks, the pool uses $4 (live mappings: $used)"
}
# fixture | 1.1.0 thin_check's TRANSACTION_ID and METADATA_FREE_BLOCKS | blocks in use
tcase kernel.02-thins-snaps t_trim_kernel 02-thins-snaps 5 2029 384
# 03 holds a metadata snapshot: the blocks only it maps must stay
tcase kernel.03-msnap-held t_trim_kernel 03-msnap-held 2 2025 386
tcase kernel.04-msnap-released t_trim_kernel 04-msnap-released 2 2031 385
tcase kernel.05-msnap-held-powercut t_trim_kernel 05-msnap-held-powercut 0 2027 352
tcase kernel.01-fresh t_trim_kernel 01-fresh 0 2039 0

t_quiet() {
    need_bin "$TOOL"
    kernel_image 02-thins-snaps
    fill_data "$T/data" 4096 65536
    run_ok "$BIN/$TOOL" -q --metadata-dev "$IMAGE" --data-dev "$T/data"
    expect_stdout_empty
    expect_stderr_empty
    run_fail "$BIN/$TOOL" --quiet --metadata-dev "$IMAGE" --data-dev "$T/no-such-file"
    expect_stdout_empty
    expect_stderr_empty
}
tcase quiet t_quiet

t_generated() {   # KEY GEN-ARGS...
    local key=$1 nr bs
    shift
    need_bin "$TOOL"
    need_bin thin_rmap
    cached_image "$key" 1x 16M "$@"
    nr=$(grep -o 'nr_data_blocks="[0-9]*"' "$XML" | cut -d'"' -f2)
    bs=$(($(grep -o 'data_block_size="[0-9]*"' "$XML" | cut -d'"' -f2) * 512))
    fill_data "$T/data" "$nr" "$bs"
    run_ok "$BIN/$TOOL" --metadata-dev "$IMAGE" --data-dev "$T/data"
    kept_blocks "$T/data" "$nr" "$bs" >"$T/kept"
    used_blocks "$IMAGE" "$nr" >"$T/used"
    expect_same "$T/used" "$T/kept" "blocks kept = blocks mapped"
}
# (small pools: big sparse files with many holes are slow to delete)
tcase generated.snaps t_generated snaps --devices 2 --snapshots 3 --mappings-per-device 600 --share-fraction 0.6 --seed 61
tcase generated.defs t_generated defs --dialect 1.x --devices 2 --snapshots 3 --mappings-per-device 600 --share-chunk 100 --seed 62
tcase generated.bigblock t_generated bigblock --devices 2 --mappings-per-device 200 --data-block-size 1024 --seed 63

# ------------------------------------------------------------ a block device

# fill_full FILE NR_BLOCKS BLOCK_BYTES: every byte of every block non-zero,
# block i being its number in 8 digits, repeated.
fill_full() {
    python3 - "$@" <<'EOF' || fail "cannot write the data file"
import sys
path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, 'wb') as f:
    for i in range(n):
        f.write((b'%08d' % i) * (bs // 8))
EOF
}

# classify FILE NR_BLOCKS BLOCK_BYTES: per block "I kept" (all its bytes as
# fill_full wrote them), "I hole" (zeroes, and no byte allocated: punched
# out), "I zeroed" (zeroes, allocated; and every zero block of a device)
# or "I garbage".
classify() {
    python3 - "$@" <<'EOF'
import os, stat, sys
path, n, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDONLY)
is_file = stat.S_ISREG(os.fstat(fd).st_mode)
def allocated(off):
    if not is_file:
        return True
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        return False
    return d < off + bs
for i in range(n):
    data = os.pread(fd, bs, i * bs)
    if data == (b'%08d' % i) * (bs // 8):
        what = 'kept'
    elif data == bytes(bs):
        what = 'zeroed' if allocated(i * bs) else 'hole'
    else:
        what = 'garbage'
    print(i, what)
EOF
}

# trim_on_loop TRIM META DATA_FILE OUT: fill DATA_FILE (4096 blocks of
# 64 KiB), run TRIM with a loop device on it as the data device, classify
# the blocks read through the device into OUT.dev and, once detached, those
# of the file into OUT; TRIM's stdout into OUT.stdout.  The loop device is
# detached whatever happens (trap).
trim_on_loop() {
    local trim=$1 meta=$2 data=$3 out=$4 loop
    rm -f "$data"
    fill_full "$data" 4096 65536
    loop=$(losetup -f --show "$data" 2>/dev/null) || skip "cannot set up a loop device"
    # shellcheck disable=SC2064
    trap "losetup -d '$loop' 2>/dev/null" EXIT
    [ "$(cat "/sys/block/${loop#/dev/}/queue/discard_max_bytes" 2>/dev/null || echo 0)" -gt 0 ] ||
        skip "$loop takes no discards (its backing file system cannot punch holes)"
    [ "$(blockdev --getsize64 "$loop")" -eq 268435456 ] || fail "$loop has the wrong size"
    run_ok "$trim" --metadata-dev "$meta" --data-dev "$loop"
    cp "$STDOUT" "$out.stdout"
    # through the block device (BLKDISCARD drops its cached pages)
    classify "$loop" 4096 65536 >"$out.dev" || fail "cannot read $loop"
    losetup -d "$loop" || fail "cannot detach $loop"
    trap - EXIT
    classify "$data" 4096 65536 >"$out"
}

# in_use_blocks IMAGE: the data blocks the live trees or the held metadata
# snapshot map ("B kept" lines), from thin_dump's XML.
in_use_blocks() {
    {
        "$BIN/thin_dump" --expand-shared "$1" || fail "thin_dump fails"
        if "$BIN/thin_dump" -m --expand-shared "$1" >"$T/snap.xml" 2>/dev/null; then
            cat "$T/snap.xml"
        fi
    } | python3 -c '
import re, sys
used = set()
for line in sys.stdin:
    m = re.search(r"<range_mapping [^>]*data_begin=\"(\d+)\" length=\"(\d+)\"", line)
    if m:
        b, n = int(m.group(1)), int(m.group(2))
        used.update(range(b, b + n))
    m = re.search(r"<single_mapping [^>]*data_block=\"(\d+)\"", line)
    if m:
        used.add(int(m.group(1)))
for b in sorted(used):
    print(b, "kept")
'
}

t_trim_blockdev() {   # FIXTURE
    need_bin "$TOOL"
    need_cmd losetup blockdev python3
    [ "$(id -u)" -eq 0 ] || skip "needs root for a loop device"
    [ -e /dev/loop-control ] || skip "no loop device support"
    kernel_image "$1"
    cp "$IMAGE" "$T/meta"
    remember_sum "$T/meta"
    trim_on_loop "$BIN/$TOOL" "$T/meta" "$T/data" "$T/ours"
    expect_unchanged "$T/meta"
    grep -q '^TRANSACTION_ID=' "$T/ours.stdout" || fail "no check lines on stdout"
    # exactly the blocks in use keep their bytes, every other one is a hole
    need_bin thin_dump
    in_use_blocks "$T/meta" >"$T/used"
    [ -s "$T/used" ] || fail "the fixture maps no data block"
    awk '$2 == "kept"' "$T/ours" >"$T/kept"
    expect_same "$T/used" "$T/kept" "blocks that keep their bytes = blocks in use"
    awk '$2 != "kept" && $2 != "hole"' "$T/ours" >"$T/odd"
    [ ! -s "$T/odd" ] || fail "free blocks not punched out: $(head -n 5 "$T/odd" | tr '\n' ' ')"
    # the device reads the same: the mapped blocks, zeroes elsewhere
    sed 's/ hole$/ zeroed/' "$T/ours" >"$T/ours.want-dev"
    expect_same "$T/ours.want-dev" "$T/ours.dev" "blocks read through the loop device"
    # 1.1.0's thin_trim on the same setup discards the same blocks
    if [ -x "$REF_1X/thin_trim" ]; then
        cp "$IMAGE" "$T/meta.ref"
        trim_on_loop "$REF_1X/thin_trim" "$T/meta.ref" "$T/data.ref" "$T/ref"
        expect_same "$T/ref" "$T/ours" "blocks after 1.1.0's thin_trim vs ours"
        expect_same "$T/ref.stdout" "$T/ours.stdout" "stdout of 1.1.0's thin_trim vs ours"
    fi
}
# 03 holds a metadata snapshot: the blocks only it maps must stay
tcase blockdev.03-msnap-held t_trim_blockdev 03-msnap-held
tcase blockdev.02-thins-snaps t_trim_blockdev 02-thins-snaps

finish
