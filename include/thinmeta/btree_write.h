/*
 * btree_write.h - changing persistent-data btrees inside a transaction,
 * with the kernel's algorithms (Linux 6.1 dm-btree.c, dm-btree-remove.c),
 * so that a history of operations leaves the trees the kernel would leave.
 *
 * A tree is described by a tm_btree_info: the transaction manager, the
 * number of levels (1, or 2 for the thin mapping tree: the top level maps
 * device ids to the roots of per-device trees) and the value type of the
 * bottom level.  Inner levels hold u64 roots of the next level's trees.
 *
 * Values are handled through the value type's callbacks, as in the kernel:
 *   inc   a node that was shared is copied: every value in the copy gains
 *         a reference (data blocks, subtree roots);
 *   dec   a value leaves the tree (overwritten by a different value, or
 *         removed, or its leaf deleted);
 *   equal two values are the same for overwrite purposes (no dec).
 * NULL callbacks do nothing.
 *
 * Every change shadows the path from the root (copy-on-write): the root
 * may move, so each call returns the new root.
 *
 * Insert: a full root is split beneath itself; a full node first moves
 * entries into an unshared left or right sibling with at least 8 free
 * entries, otherwise it splits one into two (a sibling shared, the first or
 * last child, or a parent with at most 2 children) or two into three.
 * Remove: on the way down, a child with few entries is merged with or
 * rebalanced against its siblings (thresholds max/3), an internal node
 * with a single child is collapsed.
 */
#ifndef THINMETA_BTREE_WRITE_H
#define THINMETA_BTREE_WRITE_H

#include <stdint.h>

#include "error.h"
#include "transaction.h"

struct tm_btree_vtype {
	uint32_t size;
	void *ctx;
	int (*inc)(void *ctx, const uint8_t *values, uint32_t n, struct tm_error *e);
	int (*dec)(void *ctx, const uint8_t *values, uint32_t n, struct tm_error *e);
	int (*equal)(void *ctx, const uint8_t *a, const uint8_t *b);
};

struct tm_btree_info {
	struct tm_tm *tm;
	unsigned levels;		/* 1 or 2 */
	struct tm_btree_vtype vt;	/* the bottom level's values */
};

#define TM_BTREE_MAX_LEVELS 2

/* A new empty tree (one leaf) of @info's bottom level. */
int tm_btree_empty(struct tm_btree_info *info, uint64_t *root, struct tm_error *e);

/* -ENODATA if @keys is absent.  @value gets vt.size bytes. */
int tm_btree_wlookup(struct tm_btree_info *info, uint64_t root,
		     const uint64_t *keys, void *value, struct tm_error *e);

/*
 * The first key >= keys[last] in the bottom tree reached by the other keys
 * (the kernel's dm_btree_lookup_next): -ENODATA if none.
 */
int tm_btree_lookup_next(struct tm_btree_info *info, uint64_t root,
			 const uint64_t *keys, uint64_t *rkey, void *value,
			 struct tm_error *e);

/*
 * Insert or overwrite; *@inserted (may be NULL) says whether the key is
 * new.  An overwrite decs the old value unless vt.equal says it is equal.
 */
int tm_btree_insert(struct tm_btree_info *info, uint64_t root,
		    const uint64_t *keys, const void *value, uint64_t *new_root,
		    int *inserted, struct tm_error *e);

/* Remove; the value is dec'd.  -ENODATA if absent (the tree unchanged). */
int tm_btree_remove(struct tm_btree_info *info, uint64_t root,
		    const uint64_t *keys, uint64_t *new_root, struct tm_error *e);

/*
 * Remove the entries of the bottom tree from keys[last] while they are
 * below @end_key, one at a time (the kernel's dm_btree_remove_leaves):
 * stops at the first gap.  *@nr_removed: how many.
 */
int tm_btree_remove_leaves(struct tm_btree_info *info, uint64_t root,
			   uint64_t *keys, uint64_t end_key, uint64_t *new_root,
			   uint64_t *nr_removed, struct tm_error *e);

/*
 * Drop one reference to the tree at @root: a node whose count was 1 is
 * freed and its children (and values) lose a reference in turn; a shared
 * node just loses one reference.
 */
int tm_btree_del(struct tm_btree_info *info, uint64_t root, struct tm_error *e);

/*
 * Shadow the path to the leaf holding @key of a one-level tree, without
 * rebalancing, and hand the leaf over for an in-place change of its value
 * (the kernel's btree_get_overwrite_leaf).  The caller changes @leaf_buf
 * and writes it with tm_btree_put_leaf().  -ENODATA if @key is absent.
 */
int tm_btree_get_overwrite_leaf(struct tm_btree_info *info, uint64_t root,
				uint64_t key, uint32_t *index, uint64_t *new_root,
				uint64_t *leaf, void *leaf_buf, struct tm_error *e);
int tm_btree_put_leaf(struct tm_btree_info *info, uint64_t leaf,
		      const void *leaf_buf, struct tm_error *e);

/* Node accessors on a 4096-byte buffer (header fields, keys, values). */
uint32_t tm_bn_nr(const uint8_t *n);
uint32_t tm_bn_max(const uint8_t *n);
uint32_t tm_bn_vsize(const uint8_t *n);
int tm_bn_is_leaf(const uint8_t *n);
uint64_t tm_bn_key(const uint8_t *n, uint32_t i);
uint8_t *tm_bn_value(uint8_t *n, uint32_t i);
/* Largest i with key[i] <= key, or -1. */
int tm_bn_lower_bound(const uint8_t *n, uint64_t key);

#endif
