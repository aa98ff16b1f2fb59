#!/bin/sh
# kernel/guest/history.sh HISTORY - run a thin_pool history against the real
# dm-thin target (busybox sh, in the guest).
#
# The history language is bin/thin_pool's script language, one command per
# line, '#' starts a comment:
#   format --data-block-size SECTORS --nr-data-blocks N
#                         dmsetup create pool over the zeroed metadata disk
#                         (the kernel formats it) and N blocks of the data disk
#   create_thin ID | create_snap ID ORIGIN | delete ID | set_transaction_id OLD NEW
#   reserve_metadata_snap | release_metadata_snap
#                         dmsetup message pool 0 ... (an active origin is suspended
#                         around create_snap; an active thin is removed before delete)
#   write ID BEGIN [COUNT]    dd COUNT blocks of fresh data at virtual block BEGIN of
#                         /dev/mapper/thinID, one block per O_DIRECT write, in order
#   discard ID BEGIN [COUNT]  blkdiscard of those whole blocks
#   resize_data N         reload the pool with N data blocks, suspend, resume
#   commit                suspend + resume the pool: waits for the pool's work
#                         and commits the metadata
#   status                prints "@@STATUS <line>: <dmsetup status pool>"
# Thin devices are activated on first use, with a virtual size of THIN_SECTORS.
#
# Settings (from /etc/run.env): OPEN_BLOCK_SIZE and OPEN_NR_BLOCKS: the metadata
# disk already holds a pool (kernel/run.sh --meta-in): create the pool over it
# before the first line (the kernel opens it), and refuse `format`.
# Exit status 0 when every line ran; otherwise "@@K ERROR line N: ..." and 1.
HISTORY=$1
META=/dev/vda
DATA=/dev/vdb
THIN_SECTORS=${THIN_SECTORS:-2147483648}     # 1 TiB of virtual space per thin
BS=                                          # data block size in sectors
lineno=0
nwrite=0

die() {
    if [ "$lineno" -eq 0 ]; then echo "@@K ERROR opening the pool: $*"; else echo "@@K ERROR line $lineno: $*"; fi
    exit 1
}
run() { echo "+ $*"; "$@" </dev/null || die "failed: $*"; }
num() {         # NAME VALUE: VALUE must be a decimal number
    case $2 in '' | *[!0-9]*) die "$1 must be a number, not '$2'" ;; esac
}

pool_table() {  # NR_BLOCKS
    echo "0 $(($1 * BS)) thin-pool $META $DATA $BS 0 0"
}
pool_create() { # BLOCK_SIZE NR_BLOCKS
    BS=$1
    disk=$(blockdev --getsz $DATA)
    [ "$disk" -ge $(($2 * BS)) ] || die "data disk has $disk sectors, the pool needs $(($2 * BS))"
    run dmsetup create pool --table "$(pool_table "$2")"
}
active() { dmsetup info "thin$1" >/dev/null 2>&1; }
activate() {
    [ -n "$BS" ] || die "no pool yet (format first)"
    active "$1" || run dmsetup create "thin$1" --table "0 $THIN_SECTORS thin /dev/mapper/pool $1"
}
msg() { run dmsetup message pool 0 "$@"; }

if [ -n "${OPEN_BLOCK_SIZE:-}" ]; then
    echo "@@K opening the pool on the given metadata ($OPEN_NR_BLOCKS blocks of $OPEN_BLOCK_SIZE sectors)"
    pool_create "$OPEN_BLOCK_SIZE" "$OPEN_NR_BLOCKS"
fi

echo "@@K history start"
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    set -f
    # shellcheck disable=SC2086
    set -- $line
    set +f
    [ $# -gt 0 ] || continue
    cmd=$1
    shift
    echo "@@K line $lineno: $cmd $*"
    case $cmd in
    format)
        [ -z "$BS" ] || die "the pool exists already"
        [ $# -eq 4 ] && [ "$1" = --data-block-size ] && [ "$3" = --nr-data-blocks ] ||
            die "usage: format --data-block-size SECTORS --nr-data-blocks N"
        num SECTORS "$2"; num N "$4"
        pool_create "$2" "$4"
        ;;
    create_thin | delete | set_transaction_id | create_snap | reserve_metadata_snap | release_metadata_snap)
        [ -n "$BS" ] || die "no pool yet (format first)"
        case $cmd in
        create_thin) [ $# -eq 1 ] || die "usage: create_thin ID"; msg create_thin "$1" ;;
        delete)
            [ $# -eq 1 ] || die "usage: delete ID"
            if active "$1"; then run dmsetup remove "thin$1"; fi
            msg delete "$1"
            ;;
        set_transaction_id) [ $# -eq 2 ] || die "usage: set_transaction_id OLD NEW"; msg set_transaction_id "$1" "$2" ;;
        create_snap)
            [ $# -eq 2 ] || die "usage: create_snap ID ORIGIN"
            if active "$2"; then
                run dmsetup suspend "thin$2"
                msg create_snap "$1" "$2"
                run dmsetup resume "thin$2"
            else
                msg create_snap "$1" "$2"
            fi
            ;;
        *) [ $# -eq 0 ] || die "usage: $cmd"; msg "$cmd" ;;
        esac
        ;;
    write | discard)
        [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $cmd ID BEGIN [COUNT]"
        num ID "$1"; num BEGIN "$2"; count=${3:-1}; num COUNT "$count"
        activate "$1"
        bytes=$((BS * 512))
        if [ "$cmd" = write ]; then
            nwrite=$((nwrite + 1))
            echo "+ write thin$1 blocks $2+$count"
            # distinct data: the write's number, device and block on every line
            yes "write $nwrite thin $1 from $2 line $lineno" |
                dd of="/dev/mapper/thin$1" bs=$bytes seek="$2" count="$count" \
                    iflag=fullblock oflag=direct conv=notrunc 2>/tmp/dd.err ||
                die "write to thin$1 failed: $(cat /tmp/dd.err)"
        else
            run blkdiscard -o $(($2 * bytes)) -l $((count * bytes)) "/dev/mapper/thin$1"
        fi
        ;;
    resize_data)
        [ $# -eq 1 ] || die "usage: resize_data N"
        [ -n "$BS" ] || die "no pool yet (format first)"
        num N "$1"
        disk=$(blockdev --getsz $DATA)
        [ "$disk" -ge $(($1 * BS)) ] || die "data disk has $disk sectors, resize_data needs $(($1 * BS))"
        run dmsetup reload pool --table "$(pool_table "$1")"
        run dmsetup suspend pool
        run dmsetup resume pool
        ;;
    commit)
        [ $# -eq 0 ] || die "usage: commit"
        [ -n "$BS" ] || die "no pool yet (format first)"
        run dmsetup suspend pool
        run dmsetup resume pool
        ;;
    status)
        [ $# -eq 0 ] || die "usage: status"
        [ -n "$BS" ] || die "no pool yet (format first)"
        s=$(dmsetup status pool) || die "dmsetup status pool failed"
        echo "@@STATUS $lineno: $s"
        ;;
    *) die "unknown command '$cmd'" ;;
    esac
done <"$HISTORY"
echo "@@K history end ($lineno lines)"
exit 0
