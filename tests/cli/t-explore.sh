#!/bin/bash
# t-explore.sh - thin_explore end to end: the real program in a tmux pane
# (send-keys, capture-pane) on the kernel fixtures.  Opening, following a
# device into its mappings, going to a block, hex, the held snapshot (-m
# and the m key), a damaged block (a copy with a byte flipped), -p with the
# node path 1.1.0's thin_check prints, resizing, help, quitting; and the
# command line: usage errors exit 2, bad input exits 1, the input is never
# written.
#
# Case functions are called through tcase, which shellcheck cannot see.
# shellcheck disable=SC2317
# shellcheck source-path=SCRIPTDIR source=../lib/testlib.sh
. "$(dirname "$0")/../lib/testlib.sh"

EXPLORE_WAIT=${EXPLORE_WAIT:-15}	# seconds to wait for a screen (sanitizer builds are slow)

# ---------------------------------------------------------------- tmux helpers

tm() {
    tmux -f /dev/null -S "$T/tmux.sock" "$@"
}

# explore COLSxROWS ARGS...: start thin_explore in a detached pane.
explore() {
    local size=$1
    shift
    need_cmd tmux
    need_bin thin_explore
    local cmd
    cmd=$(printf '%q ' ${EXPLORE_ENV:+env $EXPLORE_ENV} "$BIN/thin_explore" "$@")
    trap 'tm kill-server >/dev/null 2>&1' EXIT
    tm new-session -d -s x -x "${size%x*}" -y "${size#*x}" \
        "$cmd 2>$T/explore.err; echo \$? >$T/exit; sleep 600" ||
        fail "cannot start tmux"
    LAST_CMD="thin_explore $*"
    STDERR=$T/explore.err
}

screen() {
    tm capture-pane -p -t x >"$T/screen" 2>/dev/null
}

# wait_for ERE: poll the pane until a line matches; fail with the screen.
wait_for() {
    local i
    for ((i = 0; i < EXPLORE_WAIT * 10; i++)); do
        screen
        grep -Eq -e "$1" "$T/screen" && return 0
        [ -s "$T/exit" ] && break
        sleep 0.1
    done
    note "screen (waiting for /$1/):"
    sed 's/^/    | /' "$T/screen" >>"$T/.details"
    [ -s "$T/exit" ] && note "thin_explore exited with $(cat "$T/exit")"
    fail "the screen never showed /$1/"
}

# keys KEY...: send keys (tmux key names: Enter, Tab, BSpace, ...).
keys() {
    tm send-keys -t x "$@"
}

# type TEXT: send literal text.
type_text() {
    tm send-keys -t x -l "$1"
}

# no_screen ERE: the current screen has no such line.
no_screen() {
    screen
    if grep -Eq -e "$1" "$T/screen"; then
        sed 's/^/    | /' "$T/screen" >>"$T/.details"
        fail "the screen shows /$1/"
    fi
}

# stop_explore: end the pane (after quit), ready for another explore.
stop_explore() {
    tm kill-server >/dev/null 2>&1
    rm -f "$T/exit"
}

# quit: q, then the program must have exited 0.
quit() {
    local i
    keys q
    for ((i = 0; i < EXPLORE_WAIT * 10; i++)); do
        [ -s "$T/exit" ] && break
        sleep 0.1
    done
    [ -s "$T/exit" ] || fail "thin_explore did not quit on q"
    RC=$(cat "$T/exit")
    [ "$RC" = 0 ] || fail "thin_explore exited with $RC: $(head -c 400 "$T/explore.err")"
}

# ---------------------------------------------------------------- cases

case_open_and_follow() {
    kernel_image 02-thins-snaps
    remember_sum "$IMAGE"
    explore 80x24 "$IMAGE"
    wait_for 'superblock 0 .*\[live\]'
    wait_for 'data_mapping_root +138'
    wait_for '1/28 \|'
    # the devices, then device 0's mappings (thin_dump: 0..3 -> 368..371)
    keys d
    wait_for '^ +dev +mapped +trans'
    wait_for '^ +11 +336 '
    keys Enter
    wait_for 'device 0 mappings'
    wait_for '^  0\.\.3 +-> 368\.\.371 +2 +4$'
    # paging: a page down shows later runs, Home comes back
    keys Space
    no_screen '^  0\.\.3 '
    keys Home
    wait_for '^  0\.\.3 '
    # its leaf, then back
    keys Enter
    wait_for 'node 114 +leaf, device 0 mapping tree'
    wait_for 'path 112\[0\] > 114'
    keys h
    wait_for 'device 0 mappings'
    quit
    expect_unchanged "$IMAGE"
}

case_goto_block_and_hex() {
    kernel_image 02-thins-snaps
    explore 80x24 "$IMAGE"
    wait_for 'superblock 0'
    keys g
    wait_for 'go to metadata block:'
    type_text 95
    keys Enter
    wait_for 'node 95 +leaf, device 0 mapping tree'
    wait_for 'refcount 2 \(shared\)'
    keys x
    wait_for 'hex 95 +btree node'
    wait_for 'checksum ok, blocknr 95'
    wait_for '^0000  '
    wait_for '@0x000 csum'
    keys Tab Tab
    wait_for '@0x008 blocknr: 95'
    # x again: back to the node
    keys x
    wait_for 'entries 194/252'
    # who references it: the two device trees sharing it
    keys r
    wait_for '2 references to metadata block 95; its space map count is 2'
    wait_for 'node 112 entry 1'
    wait_for 'node 121 entry 1'
    quit
}

case_vblock() {
    kernel_image 02-thins-snaps
    explore 80x24 "$IMAGE"
    wait_for 'superblock 0'
    keys v
    wait_for 'device and virtual block'
    type_text '0 300'
    keys Enter
    wait_for 'device 0 vblock 300 -> data block 202, time 0'
    wait_for '^  300 +-> 202 '
    quit
}

case_snapshot() {
    kernel_image 03-msnap-held
    # -m: the held snapshot's superblock copy at block 80
    explore 80x24 -m "$IMAGE"
    wait_for 'superblock 80 .*\[held snapshot @80\]'
    keys d
    wait_for '3/3 \||1/3 \|'
    wait_for '^ +0 +332 '
    # m: the same view in the live metadata
    keys m
    wait_for 'devices +of the live metadata'
    wait_for '^ +0 +348 '
    wait_for '\[live\]'
    # D: the snapshot beside the live metadata; device 0's differences
    keys D
    wait_for 'snapshot vs live'
    wait_for '^ +0 .* changed$'
    wait_for '^ +2 +- .* new$'
    keys Enter
    wait_for '1\.\.4 +1\.\.4 t0 +350\.\.353 t1'
    wait_for '768\.\.783 +- +354\.\.369 t1'
    quit
}

case_damaged_block() {
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/damaged" || fail "cannot copy the image"
    # the device details root, block 141: one byte flipped
    printf '\377' | dd of="$T/damaged" bs=1 seek=$((141 * 4096 + 100)) conv=notrunc status=none ||
        fail "cannot damage the copy"
    remember_sum "$T/damaged"
    explore 80x24 "$T/damaged"
    wait_for 'superblock 0'
    keys g
    type_text 141
    keys Enter
    wait_for 'hex 141 +btree node'
    wait_for 'DAMAGED: block 141: bad checksum in btree node'
    wait_for 'checksum 0x[0-9a-f]+ BAD \(want 0x[0-9a-f]+\)'
    # the devices view names the damage instead of failing
    keys d
    wait_for 'cannot list the devices: device details tree: block 141: bad checksum'
    quit
    expect_unchanged "$T/damaged"
}

case_node_path() {
    kernel_image 02-thins-snaps
    cp "$IMAGE" "$T/damaged" || fail "cannot copy the image"
    printf '\377' | dd of="$T/damaged" bs=1 seek=$((141 * 4096 + 100)) conv=notrunc status=none ||
        fail "cannot damage the copy"
    # AgGN: the path 1.1.0's thin_check printed for this very damage
    # ("device details tree: node error: checksum error AgGN, ...")
    if [ -x "$REF_1X/thin_check" ]; then
        run "$REF_1X/thin_check" "$T/damaged"
        grep -q 'checksum error AgGN' "$STDERR" "$STDOUT" ||
            fail "1.1.0's thin_check no longer prints AgGN for this damage"
    fi
    explore 80x24 -p AgGN "$T/damaged"
    wait_for 'hex 141 +btree node'
    wait_for 'block 141: bad checksum in btree node'
    # back: the superblock the path started from
    keys h
    wait_for 'superblock 0'
    quit
    # on intact metadata the same path is the details tree's root
    stop_explore
    explore 80x24 -p AgGN "$IMAGE"
    wait_for 'node 141 +leaf, device details tree'
    wait_for '^ +0  0 +320 '
    quit
}

case_resize() {
    kernel_image 02-thins-snaps
    explore 80x24 "$IMAGE"
    wait_for 'superblock 0'
    keys g
    type_text 114
    keys Enter
    wait_for 'node 114'
    wait_for '^ +16  32 '
    no_screen '^ +30  60 '
    # taller: more entries; wider: the title bar follows
    tm resize-window -t x -x 132 -y 40
    wait_for '^ +30  60 '
    screen
    [ "$(wc -l <"$T/screen")" -ge 40 ] || fail "the screen did not grow to 40 rows"
    grep -Eq '^ thin_explore: .{100,}\[live\] ?$' "$T/screen" ||
        { sed 's/^/    | /' "$T/screen" >>"$T/.details"; fail "the title bar does not span 132 columns"; }
    # too small: a message, not a mangled screen; and back
    tm resize-window -t x -x 60 -y 20
    wait_for 'needs 80x24; this terminal is 60x20'
    tm resize-window -t x -x 80 -y 24
    wait_for 'node 114'
    quit
}

case_help() {
    kernel_image 01-fresh
    explore 80x24 "$IMAGE"
    wait_for 'superblock 0'
    keys '?'
    wait_for '^Moving'
    wait_for 'h  Backspace  Left +back'
    keys G
    wait_for 'q  quit'
    keys '?'
    wait_for 'superblock 0'
    # no snapshot held: m says so
    keys m
    wait_for 'no metadata snapshot is held'
    quit
}

# colours where the terminal has them (tmux's own TERM), reverse video and
# bold without (vt100): the selection is visible either way.
case_colours() {
    kernel_image 02-thins-snaps
    explore 80x24 "$IMAGE"
    wait_for 'superblock 0'
    tm capture-pane -e -p -t x >"$T/colour"
    grep -q $'\e\[[0-9;]*3[0-7][;m]' "$T/colour" || fail "no colours on a colour terminal"
    quit
    stop_explore
    EXPLORE_ENV=TERM=vt100 explore 80x24 "$IMAGE"
    wait_for 'superblock 0'
    tm capture-pane -e -p -t x >"$T/mono"
    grep -q $'\e\[[0-9;]*3[0-7][;m]' "$T/mono" && fail "colours on a vt100"
    grep -q $'\e\[[0-9;]*7m' "$T/mono" || fail "no reverse video for the selection on a vt100"
    keys j
    wait_for '2/28 \|'
    quit
}

# ---------------------------------------------------------------- the command line

case_cli() {
    need_bin thin_explore
    kernel_image 01-fresh
    run_ok "$BIN/thin_explore" --help
    expect_stdout_match '^Usage: thin_explore'
    expect_stdout_match '--node-path'
    run_ok "$BIN/thin_explore" -V
    expect_stdout_match '^[0-9]+\.[0-9]+\.[0-9]+$'
    run_usage "$BIN/thin_explore"
    expect_stderr_match 'required arguments were not provided'
    run_usage "$BIN/thin_explore" --no-such-option "$IMAGE"
    run_usage "$BIN/thin_explore" "$IMAGE" "$IMAGE"
    run_usage "$BIN/thin_explore" -b x "$IMAGE"
    run_usage "$BIN/thin_explore" -p '!!not-base64' "$IMAGE"
    expect_stderr_match 'bad node path'
    # not a terminal: one clear line, exit 1
    run_fail "$BIN/thin_explore" "$IMAGE"
    expect_stderr_match 'must be a terminal'
    run_fail "$BIN/thin_explore" "$T/no-such-file"
    expect_stderr_match "Couldn't find input file"
    printf '<superblock uuid="">\n' >"$T/x.xml"
    truncate -s 8192 "$T/x.xml"
    run_fail "$BIN/thin_explore" "$T/x.xml"
    expect_stderr_match 'looks like XML'
}

case_block_past_end() {
    kernel_image 01-fresh
    explore 80x24 -b 99999 "$IMAGE"
    local i
    for ((i = 0; i < EXPLORE_WAIT * 10; i++)); do
        [ -s "$T/exit" ] && break
        sleep 0.1
    done
    [ "$(cat "$T/exit" 2>/dev/null)" = 1 ] || fail "-b past the end should exit 1, got '$(cat "$T/exit" 2>/dev/null)'"
    grep -q 'block 99999 is past the end of the metadata device' "$T/explore.err" ||
        fail "no message naming the block: $(head -c 300 "$T/explore.err")"
    # -b inside: opened as what it is
    stop_explore
    kernel_image 02-thins-snaps
    explore 80x24 -b 137 "$IMAGE"
    wait_for 'bitmap 137 +metadata space map bitmap 0'
    wait_for 'blocks 0\.\.2047: 2029 free'
    quit
}

tcase open-and-follow case_open_and_follow
tcase goto-block-and-hex case_goto_block_and_hex
tcase vblock case_vblock
tcase snapshot case_snapshot
tcase damaged-block case_damaged_block
tcase node-path case_node_path
tcase resize case_resize
tcase help case_help
tcase colours case_colours
tcase cli case_cli
tcase block-past-end case_block_past_end
finish
