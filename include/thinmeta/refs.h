/*
 * refs.h - who references a block: every pointer to a metadata block, or
 * every mapping of a data block, in the live metadata and the held
 * metadata snapshot.
 *
 * Searches walk everything reachable from the superblock (and the held
 * snapshot's copy): superblock fields, the space maps' index block, index
 * tree and overflow trees, the details tree, the mapping tree's top level
 * and every device's tree.  They are best effort on damaged metadata: a
 * node that cannot be read is counted in the stats (the first such error
 * kept) and its subtree skipped.  Cost: a metadata search reads every
 * btree node once except the leaves of device trees; a data search reads
 * every device tree, each unshared subtree once.
 */
#ifndef THINMETA_REFS_H
#define THINMETA_REFS_H

#include <stdint.h>

#include "block.h"
#include "problem.h"

/*
 * Trees are named by enum tm_tree of problem.h (shared with the checker):
 * tm_tree_name() says which.
 */
uint32_t tm_tree_value_size(enum tm_tree t);

enum tm_ref_kind {
	TM_REFBY_SUPERBLOCK,	/* a superblock field; slot = byte offset */
	TM_REFBY_CHILD,		/* an internal node's value */
	TM_REFBY_DEVICE_ROOT,	/* a top-level leaf value; key = dev id */
	TM_REFBY_INDEX_BLOCK,	/* a metadata index block entry; slot = bitmap nr */
	TM_REFBY_INDEX_TREE,	/* a data index tree leaf entry; key = bitmap nr */
	TM_REFBY_MAPPING,	/* a device tree leaf entry; key = virtual block */
};

struct tm_ref {
	enum tm_ref_kind kind;
	enum tm_tree tree;	/* the tree the holder belongs to */
	int snapshot;		/* reached from the held snapshot's roots */
	uint64_t holder;	/* the block holding the pointer */
	uint32_t slot;		/* entry index in the holder (byte offset in a superblock) */
	uint64_t key;		/* the entry's key */
	uint64_t dev_id;	/* device trees: the device; else UINT64_MAX */
	uint32_t time;		/* mappings: the mapping's time */
	/* Blocks from the tree's root down to the holder (empty for superblock fields). */
	const uint64_t *path;
	const uint32_t *path_index;	/* entry followed at each (the last: slot) */
	unsigned path_len;
};

/* Called per reference found; non-zero stops the search and is returned. */
typedef int (*tm_ref_fn)(void *ctx, const struct tm_ref *r);

struct tm_refs_stats {
	uint64_t nodes_read;
	uint64_t unreadable;		/* nodes skipped as unreadable or invalid */
	struct tm_error first_error;	/* the first of those */
};

/*
 * Every pointer to metadata block @target.  Returns 0, @fn's non-zero
 * value, or a negative errno (-ENOMEM; a superblock that cannot be read
 * is reported in @st, not returned).
 */
int tm_find_meta_refs(struct tm_bm *bm, uint64_t target, tm_ref_fn fn, void *ctx,
		      struct tm_refs_stats *st);

/* Every mapping of data block @data_block, per device (shared leaves once per device). */
int tm_find_data_refs(struct tm_bm *bm, uint64_t data_block, tm_ref_fn fn, void *ctx,
		      struct tm_refs_stats *st);

#endif
