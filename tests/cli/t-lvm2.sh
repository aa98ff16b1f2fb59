#!/bin/bash
# t-lvm2.sh - every call lvm2 makes to the thin tools, with its exact
# arguments, on image files (docs/lvm.md says which lvm2 code makes each
# call and what it does with the result):
#
#   thin_check -q --clear-needs-check-flag META      (pool activation and
#       deactivation): clean metadata passes silently and stays untouched;
#       needs_check is cleared; small leaks are mended (as 1.x does under
#       that flag); damage fails with 1; exit 2 only for a real command-line
#       mistake (lvm2 reads 2 as "tool missing" and activates anyway); the
#       empty words of lvm2 2.03.16-21 and the options users add are taken;
#       a device larger than the superblock records, up to 16 GiB sparse.
#   thin_repair "" -i TMETA -o PMSPARE (2.03.16-21) and
#   thin_repair -i /dev/VG/LV -o /dev/VG/LV (2.03.22+, symlinks): the extra
#       empty argument, a read-only input (a read-only loop device), a stale
#       output.
#   thin_dump PMSPARE (after a repair): the first line is the <superblock>
#       with transaction="N", no prolog, under 4 KiB; lvm2 reads that line
#       and closes the pipe: thin_dump ends at once and says nothing.
#   thin_restore -i /proc/PID/fd/N -o META (lvconvert --type thin, 2.03.22+):
#       a deleted temporary file, lvm2's minimal XML (no flags, no
#       metadata_snap), one huge range.
#   lvconvert-repair-thin.sh: one zero byte at offset 40960 (block 10, here
#       the device details tree): check and dump fail, repair and
#       dump --repair succeed, the repaired copy checks clean and keeps
#       every mapping.
#   restore density: lvm2's test XML (prepare_thin_metadata,
#       fake_metadata_) in 2 MiB and 32 MiB must fit and fill the metadata
#       as much as its tests require (the figures are 1.1.0's packing).
#   -V: a bare X.Y.Z that lvm2's configure and test suite parse.
#
# Images are made with our own tools (bin/thin_pool, bin/thin_restore), so
# the cases run without the reference tools; where 1.1.0 is installed some
# cases also check it says the same (informative cross-checks).
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

MKDAMAGE=$REPO/tools/mkdamage.py
LVM_CHECK_OPTS=(-q --clear-needs-check-flag)   # lvm.conf thin_check_options default

# ---------------------------------------------------------------- images

# lvm_pool IMG SIZE: a pool as lvconvert-repair-thin.sh has it before the
# damage: 64 KiB chunks, 20 MiB of data (320 blocks), two thin LVs with a
# few chunks written; every step a separate activation (a new process), as
# lvm2 creates and uses a pool.  Transaction id 2.
lvm_pool() {
    local img=$1 size=${2:-4M}
    need_bin thin_pool
    rm -f "$img"
    truncate -s "$size" "$img"
    local step
    while read -r step; do
        # shellcheck disable=SC2086
        "$BIN/thin_pool" "$img" $step >"$T/pool.out" 2>&1 ||
            fail "thin_pool $step: $(head -c 300 "$T/pool.out")"
    done <<'EOF'
format --data-block-size 128 --nr-data-blocks 320
create_thin 1
set_transaction_id 0 1
create_thin 2
set_transaction_id 1 2
write 1 0 6
write 1 128 2
write 2 0 6
write 2 128 2
EOF
}

# restore_ours XML IMG SIZE: restore with the thin_restore under test.
restore_ours() {
    need_bin thin_restore
    rm -f "$2"
    truncate -s "$3" "$2"
    "$BIN/thin_restore" -q -i "$1" -o "$2" >"$T/restore.out" 2>&1 ||
        fail "thin_restore -i $1 -o $2 ($3): $(head -c 300 "$T/restore.out")"
}

# lvm2's test/lib/aux.sh prepare_thin_metadata DEVICES [TID] (lvm2
# v2_03_39; written again here): every device maps data blocks 0..36, no
# version or flags attributes.
prepare_thin_metadata() {
    local devices=$1 tid=${2:-0} i
    echo '<superblock uuid="" time="1" transaction="'"$tid"'" data_block_size="128" nr_data_blocks="3200">'
    for ((i = 1; i <= devices; i++)); do
        echo ' <device dev_id="'"$i"'" mapped_blocks="37" transaction="'"$i"'" creation_time="0" snap_time="1">'
        echo '  <range_mapping origin_begin="0" data_begin="0" length="37" time="0"/>'
        echo ' </device>'
    done
    echo "</superblock>"
}

# lvm2's test/shell/lvextend-thin-metadata-dmeventd.sh fake_metadata_
# LAST TID (v2_03_39, whose ranges have length 30 = mapped_blocks; older
# versions wrote length 29, which 1.x's thin_check rejects as well).
fake_metadata() {
    local i
    echo '<superblock uuid="" time="0" transaction="'"$2"'" data_block_size="128" nr_data_blocks="3200">'
    echo ' <device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">'
    echo ' </device>'
    echo ' <device dev_id="2" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">'
    echo ' </device>'
    for ((i = 10; i <= $1; i++)); do
        echo ' <device dev_id="'"$i"'" mapped_blocks="30" transaction="0" creation_time="0" snap_time="0">'
        echo '  <range_mapping origin_begin="0" data_begin="0" length="30" time="0"/>'
        echo ' </device>'
    done
    echo "</superblock>"
}

# lvm2's lvconvert --type thin XML (lib/metadata/thin_manip.c, 2.03.22+),
# byte for byte: CHUNK_SECTORS DATA_BLOCKS.
lvm_thick_to_thin_xml() {
    printf '<superblock uuid="" time="0" transaction="1" version="2" data_block_size="%s" nr_data_blocks="%s">\n <device dev_id="1" mapped_blocks="%s" transaction="0" creation_time="0" snap_time="0">\n  <range_mapping origin_begin="0" data_begin="0" length="%s" time="0"/>\n </device>\n</superblock>' \
        "$1" "$2" "$2" "$2"
}

# mapping_lines IMG: every device's mappings in canonical form, with the
# device id in front of each (device details are left out).
mapping_lines() {
    "$BIN/thin_dump" --expand-shared "$1" |
        awk '/<device /{ match($0, /dev_id="[0-9]+"/); d = substr($0, RSTART, RLENGTH) }
             /_mapping /{ sub(/^ */, ""); print d, $0 }'
}

# ---------------------------------------------------------------- thin_check as lvm2 runs it

t_check_clean() {   # fixture
    need_bin thin_check
    kernel_image "$1"
    cp "$IMAGE" "$T/meta.img"
    remember_sum "$T/meta.img"
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"
    expect_stdout_empty
    expect_stderr_empty
    expect_unchanged "$T/meta.img"
}
tcase check-clean-kernel-02 t_check_clean 02-thins-snaps
tcase check-clean-kernel-05-held-snapshot t_check_clean 05-msnap-held-powercut

t_check_clean_lvm_pool() {
    need_bin thin_check
    lvm_pool "$T/meta.img"
    remember_sum "$T/meta.img"
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"
    expect_stdout_empty
    expect_stderr_empty
    expect_unchanged "$T/meta.img"
}
tcase check-clean-lvm-pool t_check_clean_lvm_pool

t_check_needs_check() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    python3 "$MKDAMAGE" needs-check "$IMAGE" "$T/meta.img" >/dev/null || fail "recipe failed"
    [ "$(sb_field "$T/meta.img" flags)" = 1 ] || fail "needs_check not set by the recipe"
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"
    expect_stdout_empty
    expect_stderr_empty
    [ "$(sb_field "$T/meta.img" flags)" = 0 ] || fail "needs_check was not cleared"
    run_ok "$BIN/thin_check" "$T/meta.img"
    # only the superblock changed
    cmp -s -i 4096 "$IMAGE" "$T/meta.img" || fail "blocks other than the superblock changed"
}
tcase check-clears-needs-check t_check_needs_check

t_check_mends_leaks() {   # RECIPE...
    local r src
    need_bin thin_check
    kernel_image 02-thins-snaps
    src=$IMAGE
    for r in "$@"; do
        python3 "$MKDAMAGE" "$r" "$src" "$T/meta.img.$r" >/dev/null || fail "recipe $r failed"
        src=$T/meta.img.$r
    done
    cp "$src" "$T/meta.img"
    run_fail "$BIN/thin_check" -q "$T/meta.img"          # a leak is a problem ...
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"   # ... lvm2's call mends it
    expect_stdout_empty
    expect_stderr_empty
    run_ok "$BIN/thin_check" "$T/meta.img"
    [ "$(sb_field "$T/meta.img" flags)" = 0 ] || fail "needs_check still set"
    if [ -x "$REF_1X/thin_check" ]; then
        "$REF_1X/thin_check" -q "$T/meta.img" || fail "1.1.0's thin_check rejects the mended metadata"
    fi
}
tcase check-mends-data-leak t_check_mends_leaks leak-data
tcase check-mends-metadata-leak t_check_mends_leaks leak-meta
tcase check-mends-leaks-and-clears-needs-check t_check_mends_leaks leak-data leak-meta needs-check

t_check_damage_fails() {   # RECIPE
    need_bin thin_check
    kernel_image 02-thins-snaps
    python3 "$MKDAMAGE" "$1" "$IMAGE" "$T/meta.img" >/dev/null || fail "recipe $1 failed"
    remember_sum "$T/meta.img"
    run_fail "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"
    [ "$RC" -eq 1 ] || fail "exit $RC, expected 1"
    expect_stdout_empty
    expect_stderr_empty   # -q
    expect_unchanged "$T/meta.img"
}
tcase check-fails-on-bad-leaf t_check_damage_fails csum-bottom-leaf
tcase check-fails-on-undercount t_check_damage_fails under-data
tcase check-fails-on-bad-superblock t_check_damage_fails csum-sb
tcase check-fails-on-leak-and-damage t_check_damage_fails csum-details

# lvm2 2.03.16-21 passes empty option words on; users add options.
t_check_option_words() {
    need_bin thin_check
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/meta.img"
    run_ok "$BIN/thin_check" "" -q "" --clear-needs-check-flag "" "$T/meta.img"
    expect_stderr_empty
    run_ok "$BIN/thin_check" -q --clear-needs-check-flag --ignore-non-fatal-errors "$T/meta.img"
    run_ok "$BIN/thin_check" -q --clear-needs-check-flag --skip-mappings "$T/meta.img"
    run_ok "$BIN/thin_check" -q --clear-needs-check-flag --super-block-only "$T/meta.img"
    run_ok "$BIN/thin_check" -q --clear-needs-check-flag --auto-repair "$T/meta.img"
    run_ok "$BIN/thin_check" -q --auto-repair "$T/meta.img"
    run_ok "$BIN/thin_check" -q --ignore-non-fatal-errors "$T/meta.img"
    run_ok "$BIN/thin_check" -q --skip-mappings "$T/meta.img"
    run_ok "$BIN/thin_check" -q --super-block-only "$T/meta.img"
    expect_unchanged_as "$IMAGE" "$T/meta.img"
}
expect_unchanged_as() {
    cmp -s "$1" "$2" || fail "$2 changed"
}
tcase check-lvm-option-words t_check_option_words

# Exit 2 means "command-line mistake" and nothing else, whatever the input.
t_check_never_2() {
    local what rc
    need_bin thin_check
    kernel_image 02-thins-snaps
    mkdir "$T/dir"
    : >"$T/empty"
    head -c 100 /dev/urandom >"$T/tiny"
    head -c 2097152 /dev/urandom >"$T/garbage"
    truncate -s 2M "$T/zero2m"
    truncate -s 16G "$T/zero16g"
    printf '<superblock uuid="" time="0" transaction="0" data_block_size="128" nr_data_blocks="1">%4096s</superblock>\n' "" >"$T/xml"
    mkfifo "$T/fifo"
    python3 "$MKDAMAGE" csum-sb "$IMAGE" "$T/badsb" >/dev/null
    python3 "$MKDAMAGE" csum-bottom-leaf "$IMAGE" "$T/badleaf" >/dev/null
    python3 "$MKDAMAGE" cycle "$IMAGE" "$T/cycle" >/dev/null
    for what in missing dir empty tiny garbage zero2m zero16g xml fifo badsb badleaf cycle; do
        run "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/$what"
        rc=$RC
        [ "$rc" -eq 1 ] || fail "thin_check ${LVM_CHECK_OPTS[*]} on $what: exit $rc, expected 1"
        run "$BIN/thin_check" "$T/$what"
        [ "$RC" -eq 1 ] || fail "thin_check on $what: exit $RC, expected 1"
        expect_stderr_nonempty
    done
    # and 2 for real mistakes
    run_usage "$BIN/thin_check" -q --clear-needs-check-flag --no-such-option "$IMAGE"
    run_usage "$BIN/thin_check" -q --clear-needs-check-flag
    run_usage "$BIN/thin_check" -q --clear-needs-check-flag -m "$IMAGE"
}
tcase check-exit-2-only-for-misuse t_check_never_2

# A metadata device larger than its superblock records (an inactive _tmeta
# grown 2 MiB -> 4 MiB -> 260 MiB -> 3.25 GiB, checked before the kernel
# resizes its space map), up to 16 GiB.
t_check_grown() {
    local size blocks
    need_bin thin_check
    prepare_thin_metadata 100 1 >"$T/p.xml"
    restore_ours "$T/p.xml" "$T/meta.img" 2M
    cp "$T/meta.img" "$T/orig.img"
    blocks=$(stat -c %b "$T/meta.img")
    for size in 4M 260M 3328M 16G; do
        truncate -s "$size" "$T/meta.img"
        run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"
        expect_stderr_empty
        run_ok "$BIN/thin_check" "$T/meta.img"
        cmp -s -n 2097152 "$T/orig.img" "$T/meta.img" || fail "the metadata changed at $size"
        [ "$(stat -c %b "$T/meta.img")" = "$blocks" ] || fail "blocks were written past the metadata at $size"
    done
}
tcase check-device-larger-than-superblock t_check_grown

# Metadata restored onto 16 GiB (uncropped) and 15.81 GiB (cropped) LVs.
t_check_16g() {   # SECTORS
    need_bin thin_check
    prepare_thin_metadata 100 1 >"$T/p.xml"
    restore_ours "$T/p.xml" "$T/meta.img" $(($1 * 512))
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"
    expect_stderr_empty
    run_ok "$BIN/thin_check" "$T/meta.img"
    expect_stdout_match '^TRANSACTION_ID=1$'
    run_ok "$BIN/thin_dump" "$T/meta.img"
    if [ -x "$REF_1X/thin_check" ]; then
        "$REF_1X/thin_check" -q "$T/meta.img" || fail "1.1.0's thin_check rejects our restore onto $1 sectors"
    fi
}
tcase check-16g-uncropped t_check_16g 33554432
tcase check-16g-cropped t_check_16g 33161216

# ---------------------------------------------------------------- the lvconvert-repair-thin.sh case

damaged_lvm_pool() {
    lvm_pool "$T/orig.img"
    cp "$T/orig.img" "$T/repair.img"
    # "Make some 'repairable' damage??"
    dd if=/dev/zero of="$T/repair.img" bs=1 seek=40960 count=1 conv=notrunc 2>/dev/null ||
        fail "dd failed"
    cmp -s "$T/orig.img" "$T/repair.img" && fail "the byte at 40960 was zero already (block 10 unused?)"
    return 0
}

t_repair_case_check_dump() {
    need_bin thin_check
    need_bin thin_dump
    damaged_lvm_pool
    remember_sum "$T/repair.img"
    # not thin_check
    run_fail "$BIN/thin_check" "$T/repair.img"
    [ "$RC" -eq 1 ] || fail "thin_check exit $RC, expected 1"
    expect_stderr_match 'block 10: bad checksum'
    expect_stdout_match '^TRANSACTION_ID=2$'
    # not thin_dump
    run_fail "$BIN/thin_dump" "$T/repair.img"
    expect_stderr_match 'block 10'
    expect_unchanged "$T/repair.img"
    if [ -x "$REF_1X/thin_check" ]; then
        "$REF_1X/thin_check" -q "$T/repair.img" && fail "1.1.0's thin_check passes the damaged image (block 10 unused?)"
        "$REF_1X/thin_dump" "$T/repair.img" >/dev/null 2>&1 && fail "1.1.0's thin_dump dumps the damaged image"
    fi
    return 0
}
tcase lvconvert-repair-thin-check-and-dump-fail t_repair_case_check_dump

need_repair() {
    need_bin thin_repair
}

t_repair_case_repair() {
    need_repair
    damaged_lvm_pool
    remember_sum "$T/repair.img"
    rm -f "$T/fixed.img"
    truncate -s 2M "$T/fixed.img"   # lvcreate -L2 -n fixed
    run_ok "$BIN/thin_repair" -i "$T/repair.img" -o "$T/fixed.img"
    expect_unchanged "$T/repair.img"
    run_ok "$BIN/thin_check" "$T/fixed.img"
    expect_stdout_match '^TRANSACTION_ID=2$'
    # everything intact is kept: every mapping of both thin LVs
    mapping_lines "$T/orig.img" >"$T/want"
    mapping_lines "$T/fixed.img" >"$T/got"
    [ -s "$T/want" ] || fail "no mappings in the original"
    expect_same "$T/want" "$T/got" "mappings after repair"
    # thin_dump --repair
    run_ok "$BIN/thin_dump" --repair "$T/repair.img"
    head -n 1 "$STDOUT" | grep -q '^<superblock .*transaction="2"' ||
        fail "thin_dump --repair's first line: $(head -n 1 "$STDOUT")"
    expect_unchanged "$T/repair.img"
    # its XML restores to the same pool
    cp "$STDOUT" "$T/repaired.xml"
    restore_ours "$T/repaired.xml" "$T/re.img" 2M
    mapping_lines "$T/re.img" >"$T/got2"
    expect_same "$T/want" "$T/got2" "mappings of thin_dump --repair"
}
tcase lvconvert-repair-thin-repair-succeeds t_repair_case_repair

# lvconvert --repair, 2.03.16-21: thin_repair "" -i /dev/mapper/VG-POOL_tmeta
# -o /dev/mapper/VG-lvol0_pmspare with _tmeta a read-only component and the
# spare holding stale data; then thin_dump SPARE | first line.
t_lvconvert_repair_old() {
    local loop tid
    need_repair
    need_cmd losetup
    [ "$(id -u)" -eq 0 ] || skip "needs root for a read-only loop device"
    damaged_lvm_pool
    remember_sum "$T/repair.img"
    loop=$(losetup -r -f --show "$T/repair.img" 2>/dev/null) || skip "no loop device available"
    trap 'losetup -d "$loop" 2>/dev/null' EXIT
    [ "$(blockdev --getro "$loop")" = 1 ] || fail "$loop is not read-only"
    head -c 4194304 /dev/urandom >"$T/pmspare"    # not zeroed: stale data
    run_ok "$BIN/thin_repair" "" -i "$loop" -o "$T/pmspare"
    losetup -d "$loop"
    trap - EXIT
    expect_unchanged "$T/repair.img"
    # lvm2 reads the first line of a plain thin_dump, stdin /dev/null
    "$BIN/thin_dump" "$T/pmspare" </dev/null 2>"$T/dump.err" | head -n 1 >"$T/first"
    [ ! -s "$T/dump.err" ] || fail "thin_dump wrote to stderr: $(head -c 200 "$T/dump.err")"
    tid=$(sed -n 's/.*transaction="\([0-9]*\)".*/\1/p' "$T/first")
    [ "$tid" = 2 ] || fail "the repaired transaction id is '$tid', lvm2 expects 2 (or 3): $(cat "$T/first")"
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/pmspare"
}
tcase lvconvert-repair-2.03.16-empty-arg-readonly t_lvconvert_repair_old

# 2.03.22+: thin_repair -i /dev/VG/POOL_tmeta -o /dev/VG/lvol0_pmspare, udev
# symlinks; the input opened read-only (checked with strace on a file).
t_lvconvert_repair_new() {
    local bad
    need_repair
    damaged_lvm_pool
    mkdir -p "$T/dev/vg" "$T/mapper"
    mv "$T/repair.img" "$T/mapper/vg-pool_tmeta"
    head -c 2097152 /dev/urandom >"$T/mapper/vg-lvol0_pmspare"
    ln -s ../../mapper/vg-pool_tmeta "$T/dev/vg/pool_tmeta"
    ln -s ../../mapper/vg-lvol0_pmspare "$T/dev/vg/lvol0_pmspare"
    remember_sum "$T/mapper/vg-pool_tmeta"
    if command -v strace >/dev/null 2>&1; then
        ASAN_OPTIONS=detect_leaks=0 run_ok strace -f -qq -o "$T/trace" -e trace=%file \
            "$BIN/thin_repair" -i "$T/dev/vg/pool_tmeta" -o "$T/dev/vg/lvol0_pmspare"
        grep -q 'pool_tmeta' "$T/trace" || fail "strace saw no access to the input"
        bad=$(grep -E 'pool_tmeta' "$T/trace" | grep -E 'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC' || true)
        [ -z "$bad" ] || fail "thin_repair opened its input for writing: $bad"
    else
        run_ok "$BIN/thin_repair" -i "$T/dev/vg/pool_tmeta" -o "$T/dev/vg/lvol0_pmspare"
    fi
    expect_unchanged "$T/mapper/vg-pool_tmeta"
    [ -L "$T/dev/vg/lvol0_pmspare" ] || fail "the output symlink was replaced"
    run_ok "$BIN/thin_dump" "$T/dev/vg/lvol0_pmspare"
    head -n 1 "$STDOUT" | grep -q 'transaction="2"' || fail "first line: $(head -n 1 "$STDOUT")"
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/dev/vg/lvol0_pmspare"
}
tcase lvconvert-repair-2.03.22-symlinks t_lvconvert_repair_new

# ---------------------------------------------------------------- thin_dump as lvm2 reads it

t_dump_first_line() {   # fixture
    local first tid
    need_bin thin_dump
    kernel_image "$1"
    "$BIN/thin_dump" "$IMAGE" </dev/null 2>"$T/err" | head -n 1 >"$T/first"
    first=$(cat "$T/first")
    [[ $first == '<superblock '* ]] || fail "the first line is not the <superblock> element: ${first:0:100}"
    [ "${#first}" -lt 4096 ] || fail "the first line is ${#first} bytes; lvm2 reads 4 KiB"
    tid=$(sed -n 's/.*transaction="\([0-9]*\)".*/\1/p' "$T/first")
    [ "$tid" = "$(sb_field "$IMAGE" transaction)" ] || fail "transaction=\"$tid\" on the first line"
    [ ! -s "$T/err" ] || fail "stderr: $(head -c 200 "$T/err")"
}
tcase dump-first-line-kernel-02 t_dump_first_line 02-thins-snaps
tcase dump-first-line-kernel-03 t_dump_first_line 03-msnap-held

# lvm2 closes the pipe after the first line: no hang, nothing on stderr,
# with SIGPIPE as inherited (default) and ignored.
t_dump_closed_pipe() {   # default|ignored
    local start end pst
    need_bin thin_dump
    gen_xml "$T/big.xml" --devices 4 --mappings-per-device 60000 --seed 7
    restore_ours "$T/big.xml" "$T/meta.img" 64M
    start=$(date +%s)
    if [ "$1" = ignored ]; then
        (
            trap '' PIPE
            timeout -k 5 30 "$BIN/thin_dump" "$T/meta.img" 2>"$T/err" </dev/null | head -c 100 >"$T/head"
            echo "${PIPESTATUS[0]}" >"$T/rc"
        )
    else
        timeout -k 5 30 "$BIN/thin_dump" "$T/meta.img" 2>"$T/err" </dev/null | head -c 100 >"$T/head"
        echo "${PIPESTATUS[0]}" >"$T/rc"
    fi
    end=$(date +%s)
    pst=$(cat "$T/rc")
    if [ "$pst" -eq 124 ] || [ "$pst" -eq 137 ]; then
        fail "thin_dump did not end after the pipe closed"
    fi
    [ $((end - start)) -lt 20 ] || fail "thin_dump took $((end - start)) s to notice the closed pipe"
    [ ! -s "$T/err" ] || fail "thin_dump wrote to stderr on a closed pipe: $(head -c 200 "$T/err")"
    [ "$(wc -c <"$T/head")" -eq 100 ] || fail "head got $(wc -c <"$T/head") bytes"
    [ "$(stat -c %s "$T/big.xml")" -gt 1048576 ] || fail "the dump is too small to fill the pipe"
}
tcase dump-closed-pipe t_dump_closed_pipe default
tcase dump-closed-pipe-sigpipe-ignored t_dump_closed_pipe ignored

# ---------------------------------------------------------------- thin_restore as lvconvert --type thin runs it

t_restore_proc_fd() {   # CHUNK_SECTORS DATA_BLOCKS META_SIZE
    local pid
    need_bin thin_restore
    lvm_thick_to_thin_xml "$1" "$2" >"$T/md.xml"
    rm -f "$T/meta.img"
    truncate -s "$3" "$T/meta.img"   # lvm2 zeroes the new metadata LV
    exec 3<"$T/md.xml"
    rm "$T/md.xml"                    # tmpfile(): deleted, reached through procfs
    pid=$BASHPID
    run_ok "$BIN/thin_restore" -i "/proc/$pid/fd/3" -o "$T/meta.img"
    exec 3<&-
    expect_stdout_empty
    expect_stderr_empty
    run_ok "$BIN/thin_check" "$T/meta.img"
    expect_stdout_match '^TRANSACTION_ID=1$'
    run_ok "$BIN/thin_dump" "$T/meta.img"
    grep -q "^<superblock uuid=\"\" time=\"0\" transaction=\"1\" version=\"2\" data_block_size=\"$1\" nr_data_blocks=\"$2\">" "$STDOUT" ||
        fail "superblock line: $(head -n 1 "$STDOUT")"
    grep -q "<device dev_id=\"1\" mapped_blocks=\"$2\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">" "$STDOUT" ||
        fail "device line missing"
    grep -q "<range_mapping origin_begin=\"0\" data_begin=\"0\" length=\"$2\" time=\"0\"/>" "$STDOUT" ||
        fail "the range is not one mapping run of $2 blocks"
    [ "$(grep -c 'mapping' "$STDOUT")" -eq 1 ] || fail "more than one mapping run"
}
# 1 GiB LV with 64 KiB chunks; 2 TiB (lvconvert-thin-from-thick.sh's zero LV)
# with 512 KiB chunks, 4 Mi blocks
tcase restore-lvm-thick-to-thin-1g t_restore_proc_fd 128 16384 4M
tcase restore-lvm-thick-to-thin-2t t_restore_proc_fd 1024 4194304 128M

# ---------------------------------------------------------------- restore density

# used metadata as the kernel reports it to lvm2 (lvs metadata_percent):
# the space map's allocated blocks plus the kernel's reserve,
# min(4096, total / 10), as used.  Prints "used total percent*100".
kernel_usage() {   # IMG
    local total free reserve used
    total=$(sb_field "$1" meta_sm_nr_blocks)
    free=$((total - $(sb_field "$1" meta_sm_nr_allocated)))
    reserve=$((total / 10))
    [ "$reserve" -gt 4096 ] && reserve=4096
    free=$((free > reserve ? free - reserve : 0))
    used=$((total - free))
    echo "$used $total $((used * 10000 / total))"
}

# restore_density GEN ARGS SIZE MIN_PERCENT*100 [MAX_FREE_BLOCKS]
t_density() {
    local gen=$1 args=$2 size=$3 min=$4 maxfree=${5:-} used total pct free
    need_bin thin_restore
    # shellcheck disable=SC2086
    $gen $args >"$T/x.xml"
    restore_ours "$T/x.xml" "$T/meta.img" "$size"
    run_ok "$BIN/thin_check" "${LVM_CHECK_OPTS[@]}" "$T/meta.img"
    read -r used total pct <<<"$(kernel_usage "$T/meta.img")"
    note "$gen $args in $size: $used of $total blocks used as the kernel counts ($pct/10000)"
    [ "$pct" -ge "$min" ] || fail "metadata use $pct/10000 below lvm2's $min/10000"
    free=$(($(sb_field "$T/meta.img" meta_sm_nr_blocks) - $(sb_field "$T/meta.img" meta_sm_nr_allocated)))
    if [ -n "$maxfree" ] && [ "$free" -gt "$maxfree" ]; then
        fail "$free blocks left free, 1.1.0 leaves $maxfree: packing is looser"
    fi
    if [ -x "$REF_1X/thin_restore" ]; then
        rm -f "$T/ref.img"
        truncate -s "$size" "$T/ref.img"
        "$REF_1X/thin_restore" -q -i "$T/x.xml" -o "$T/ref.img" || fail "1.1.0 cannot restore it"
        local rfree
        rfree=$(($(sb_field "$T/ref.img" meta_sm_nr_blocks) - $(sb_field "$T/ref.img" meta_sm_nr_allocated)))
        [ "$free" -ge "$rfree" ] || fail "we leave $free blocks free, 1.1.0 $rfree: we pack looser"
    fi
}
# thin-flags.sh: 490 (or 445) devices must fit in 2 MiB and leave it almost full
tcase density-thin-flags-490-in-2m t_density prepare_thin_metadata "490 1" 2M 9800 7
tcase density-thin-flags-445-in-2m t_density prepare_thin_metadata "445 1" 2M 9000 52
# lvextend-thin-full.sh: 400 devices in 2 MiB
tcase density-lvextend-thin-full-400-in-2m t_density prepare_thin_metadata "400 0" 2M 8500 97
# lvextend-thin-metadata-dmeventd.sh: >= 75 % in 2 MiB, > 88 % in 32 MiB
tcase density-dmeventd-400-in-2m t_density fake_metadata "400 2" 2M 7500 104
tcase density-dmeventd-7200-in-32m t_density fake_metadata "7200 2" 32M 8900 903
tcase density-dmeventd-7400-in-32m t_density fake_metadata "7400 2" 32M 8900 701

t_restore_too_small() {
    need_bin thin_restore
    prepare_thin_metadata 520 1 >"$T/x.xml"
    rm -f "$T/meta.img"
    truncate -s 2M "$T/meta.img"
    run_fail "$BIN/thin_restore" -i "$T/x.xml" -o "$T/meta.img"
    [ "$RC" -eq 1 ] || fail "exit $RC"
    expect_stderr_nonempty
}
tcase density-overfull-2m-fails-cleanly t_restore_too_small

# ---------------------------------------------------------------- -V as lvm2 parses it

t_version() {   # TOOL
    local out major minor v
    need_bin "$1"
    run_ok "$BIN/$1" -V
    [ "$(wc -l <"$STDOUT")" -eq 1 ] || fail "-V prints more than one line"
    out=$(cat "$STDOUT")
    # configure: everything up to the last space dropped, split on '.'
    v=${out##* }
    IFS=. read -r major minor _ <<<"$v"
    [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || fail "configure reads 'Bad version' from '$out'"
    [ $((major * 1000 + minor)) -ge 3 ] || fail "configure wants >= 0.3, got $v"
    # dev_manager.c _check_tool_version: sscanf("%u.%u.%u") from the start
    [[ $out =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "the line must start with X.Y.Z: '$out'"
    # test/lib/aux.sh have_tool_at_least TOOL 0 3 1
    v=$(echo "$out" | cut -d- -f1)
    v=${v##* }
    IFS=.- read -r major minor _ <<<"$v"
    [ $((major * 1000 + minor)) -ge 3 ] || fail "have_tool_at_least 0 3 1 fails for '$out'"
    # thin_restore_needs_more_volumes: "old, more compact restorer"
    case $out in 0.[0-6]* | 0.7.0* | 0.8.5-2.el7) fail "'$out' reads as an old thin_restore" ;; esac
}
tcase version-thin_check t_version thin_check
tcase version-thin_dump t_version thin_dump
tcase version-thin_restore t_version thin_restore
tcase version-thin_repair t_version thin_repair

finish
