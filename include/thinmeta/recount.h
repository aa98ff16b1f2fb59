/*
 * recount.h - recompute every reference count of a pool's committed
 * metadata from its trees and compare them with its space maps.
 *
 * The walk starts at the live superblock (block 0) and at the held
 * metadata snapshot, if any, and counts what FORMAT.md §7.6-7.7 say:
 *   metadata  block 0; the metadata index block and each bitmap it names;
 *             the nodes of both overflow trees, of the data index tree
 *             and each data bitmap it names, of the details tree and of
 *             the mapping trees, once per parent pointer or root (a node
 *             reached again is counted, not descended); the snapshot's
 *             superblock copy;
 *   data      one per leaf entry of each distinct bottom-level leaf.
 * Both space maps must hold exactly these counts (a leak is a difference
 * too), bitmap values 3 exactly the blocks of the overflow tree, entries
 * past the end zero, and nr_allocated the number of non-zero counts.
 *
 * Memory: a u32 per metadata block and a u64 per data reference.
 * This is a test oracle, independent of the code that maintains counts.
 */
#ifndef THINMETA_RECOUNT_H
#define THINMETA_RECOUNT_H

#include <stdint.h>

#include "block.h"
#include "error.h"

struct tm_recount_result {
	uint64_t meta_blocks;		/* tracked by the metadata space map */
	uint64_t data_blocks;		/* tracked by the data space map */
	uint64_t meta_referenced;	/* blocks with a non-zero count */
	uint64_t data_referenced;
	uint64_t data_refs;		/* leaf entries counted */
	uint64_t mismatches;		/* metadata and data together */
};

/*
 * 0 when every count agrees; -EUCLEAN with @e naming the first difference
 * (and res->mismatches how many); other errors for unreadable metadata.
 */
int tm_recount(struct tm_bm *bm, struct tm_recount_result *res, struct tm_error *e);

#endif
