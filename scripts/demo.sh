#!/bin/sh
# make demo: make a small pool's metadata with a held metadata snapshot,
# then check it and dump it and its snapshot; the same for a pool the
# Linux kernel wrote (fixtures/kernel/03-msnap-held).
set -eu
BIN=${BIN:-bin}
out=build/demo
mkdir -p "$out"

show() {
	echo "\$ $*"
	"$@" > "$out/last.out"
	if [ "$(wc -l < "$out/last.out")" -gt 14 ]; then
		head -n 12 "$out/last.out"
		echo "  ... ($(wc -l < "$out/last.out") lines in all)"
	else
		cat "$out/last.out"
		# XML ends without a newline, as 1.1.0's does
		[ -z "$(tail -c 1 "$out/last.out")" ] || echo
	fi
	echo
}

echo "== A pool made by thin_pool: two thins, a snapshot, a held metadata snapshot"
rm -f "$out/pool.meta"
truncate -s 8M "$out/pool.meta"
cat > "$out/history" <<'HIST'
format --data-block-size 128 --nr-data-blocks 4096
create_thin 0
create_thin 1
write 0 0 300
write 1 100 40
create_snap 10 0
write 10 0 16
set_transaction_id 0 1
reserve_metadata_snap
write 0 16 8
write 1 1000 4
create_thin 2
write 2 0 12
set_transaction_id 1 2
HIST
show cat "$out/history"
show "$BIN/thin_pool" "$out/pool.meta" --script "$out/history"
show "$BIN/thin_pool" "$out/pool.meta" status
show "$BIN/thin_check" "$out/pool.meta"
show "$BIN/thin_dump" "$out/pool.meta"
show "$BIN/thin_dump" -m "$out/pool.meta"

echo "== A pool the Linux 6.1 kernel wrote (a metadata snapshot held)"
xz -dc fixtures/kernel/03-msnap-held.meta.img.xz > "$out/kernel.meta"
show "$BIN/thin_check" "$out/kernel.meta"
show "$BIN/thin_dump" --skip-mappings -m "$out/kernel.meta"
show "$BIN/thin_dump" -f human_readable --dev-id 1 "$out/kernel.meta"
echo "Full dumps: $BIN/thin_dump $out/pool.meta [-m] [-o FILE]"
