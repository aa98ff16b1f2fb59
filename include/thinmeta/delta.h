/*
 * delta.h - the differences between two bottom-level mapping trees (two
 * thin devices, a device and its snapshot, the live tree and the held
 * metadata snapshot's), as thin_delta of thin-provisioning-tools 1.1.0
 * reports them, and as an incremental backup needs them.
 *
 * Every virtual block mapped in either tree falls in one of four kinds:
 * mapped on the left only, on the right only, mapped on both sides to the
 * same data block, or to different data blocks (times are ignored).
 * Ranges are reported in ascending virtual block order, each a maximal run
 * of consecutive virtual blocks of one kind (1.1.0's rule: consecutive
 * blocks of one kind merge even when their data blocks are not
 * consecutive; left_data/right_data are those of the range's first block).
 *
 * Cost: the trees are read a height at a time, each height's nodes in one
 * batch in block order (large requests, several in flight on a device
 * that serves them), then the leaves likewise.  A node that both trees
 * hold at the same height (same block number) is a shared subtree: with
 * TM_DELTA_SKIP_SAME it is never read, otherwise it is read once (not
 * twice) to list its mappings as SAME.  A snapshot that shares most of its
 * tree with its origin thus costs the nodes that differ.  Memory: 32 bytes
 * a leaf read, besides one read stream (engine/bstream.h).
 *
 * Every node read is checked as 1.1.0's walker checks it (checksum,
 * location, 8-byte values, max_entries divisible by 3, a non-root node at
 * least a third full, keys ascending and within the parent's range - a
 * shared node's within both parents' - leaves at one height); shared
 * subtrees skipped unread are not checked.
 */
#ifndef THINMETA_DELTA_H
#define THINMETA_DELTA_H

#include <stdint.h>

#include "block.h"

enum tm_delta_kind {
	TM_DELTA_LEFT_ONLY,
	TM_DELTA_RIGHT_ONLY,
	TM_DELTA_DIFFERENT,
	TM_DELTA_SAME,
};

struct tm_delta_range {
	enum tm_delta_kind kind;
	uint64_t begin;		/* first virtual block */
	uint64_t length;	/* number of virtual blocks */
	uint64_t left_data;	/* data block of @begin on the left (not RIGHT_ONLY) */
	uint64_t right_data;	/* data block of @begin on the right (not LEFT_ONLY) */
};

/* Called for each range in order; non-zero stops tm_delta with that value. */
typedef int (*tm_delta_fn)(void *ctx, const struct tm_delta_range *r);

/* Flags. */
#define TM_DELTA_SKIP_SAME 1u	/* no SAME ranges; shared subtrees stay unread */

struct tm_delta_stats {
	uint64_t nodes_read;		/* distinct reads of tree nodes */
	uint64_t subtrees_shared;	/* subtrees found in both trees */
};

/*
 * Compare the trees rooted at @left_root and @right_root.  Returns 0, the
 * callback's non-zero value, or a negative errno with @e saying which block
 * of which side broke which rule.  @stats may be NULL.
 */
int tm_delta(struct tm_bm *bm, uint64_t left_root, uint64_t right_root, unsigned flags,
	     tm_delta_fn fn, void *ctx, struct tm_delta_stats *stats, struct tm_error *e);

#endif
