/*
 * node_path.h - the node paths thin-provisioning-tools 1.1.0 prints after a
 * btree error (thin_check: "... checksum error AgGN, effecting keys [..]"),
 * which its thin_explore takes with -p.
 *
 * A path is the list of block numbers from the superblock (0) down to the
 * node concerned.  1.1.0 encodes it as (src/pdata/btree_error.rs):
 *   byte 0: (n << 1) | 1 for the n blocks of the path, or ((n - 1) << 1)
 *           when the path starts with block 0, which is then left out;
 *   then the remaining blocks packed by its pack VM (src/pack/vm.rs):
 *           instructions of a 4-bit tag and a 4-bit nibble (set base,
 *           add or subtract a delta, repeat, literal bytes) that emit
 *           little-endian u64s;
 *   the whole in standard base64 with padding.
 */
#ifndef THINMETA_NODE_PATH_H
#define THINMETA_NODE_PATH_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TM_NODE_PATH_MAX 127	/* the count byte holds 7 bits */

/*
 * Decode @text into @path (room for @max blocks), *@len blocks.  Leading
 * and trailing white space is ignored; padding is optional.  -EINVAL
 * (TM_RULE_ARG) with a message saying what is wrong.
 */
int tm_node_path_decode(const char *text, uint64_t *path, unsigned max,
			unsigned *len, struct tm_error *e);

/*
 * Encode @len blocks as 1.1.0 does, NUL-terminated into @out (@outsz
 * bytes; 4 * ceil((2 + 9 * len) / 3) + 1 always suffice).  -EINVAL if
 * @len > TM_NODE_PATH_MAX, -ENOSPC if @out is too small.
 */
int tm_node_path_encode(const uint64_t *path, unsigned len, char *out, size_t outsz);

#endif
