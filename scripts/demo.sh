#!/bin/sh
# make demo: dump a small pool's metadata that holds a metadata snapshot.
#
# The pool is fixtures/kernel/03-msnap-held: written by the Linux 6.1 kernel
# (thins, a snapshot, writes, reserve_metadata_snap, more writes after it).
set -eu
BIN=${BIN:-bin}
out=build/demo
mkdir -p "$out"
xz -dc fixtures/kernel/03-msnap-held.meta.img.xz > "$out/pool.meta"

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

echo "Pool metadata: $out/pool.meta (kernel-written, a metadata snapshot held)"
echo
show "$BIN/thin_dump" "$out/pool.meta"
show "$BIN/thin_dump" -m "$out/pool.meta"
show "$BIN/thin_dump" --skip-mappings -m "$out/pool.meta"
show "$BIN/thin_dump" -f human_readable --dev-id 1 "$out/pool.meta"
echo "Full dumps: $BIN/thin_dump $out/pool.meta [-m] [-o FILE]"
