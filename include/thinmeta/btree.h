/*
 * btree.h - reading the persistent-data btrees.
 *
 * A node is one 4096-byte block: a 32-byte header, max_entries u64 keys,
 * then max_entries values of value_size bytes.  tm_node_view() decodes a
 * validated block into a view whose accessors are bounds-safe.
 *
 * tm_btree_walk() visits a one-level tree depth first, in key order, and
 * checks on the way what a reader must not trust: value sizes, key order
 * within a node and against the parent's range, uniform leaf depth, a node
 * reached twice (a cycle), pointers past the device's end.
 */
#ifndef THINMETA_BTREE_H
#define THINMETA_BTREE_H

#include <stdint.h>

#include "block.h"
#include "format.h"

struct tm_node {
	uint64_t block;
	uint32_t flags;
	uint32_t nr_entries;
	uint32_t max_entries;
	uint32_t value_size;
	const uint8_t *base;	/* the block's bytes */
};

/* Decode a block already validated with tm_node_validator. */
void tm_node_view(const void *buf, uint64_t block, struct tm_node *n);

static inline int tm_node_is_leaf(const struct tm_node *n)
{
	return (n->flags & TM_NODE_LEAF) != 0;
}

static inline uint64_t tm_node_key(const struct tm_node *n, uint32_t i)
{
	return tm_le64(n->base + TM_NODE_HEADER_SIZE + 8u * i);
}

static inline const uint8_t *tm_node_value(const struct tm_node *n, uint32_t i)
{
	return n->base + TM_NODE_HEADER_SIZE + 8u * n->max_entries +
	       (size_t)n->value_size * i;
}

static inline uint64_t tm_node_value64(const struct tm_node *n, uint32_t i)
{
	return tm_le64(tm_node_value(n, i));
}

/* Keys strictly ascending within the node: 0 or -EUCLEAN. */
int tm_node_check_keys(const struct tm_node *n, struct tm_error *e);

/*
 * Look @key up in the one-level tree at @root whose leaves hold values of
 * @value_size bytes; copy the value to @value.  -ENODATA if absent.
 */
int tm_btree_lookup(struct tm_bm *bm, uint64_t root, uint32_t value_size,
		    uint64_t key, void *value, struct tm_error *e);

/* Called for every leaf, in key order.  Non-zero stops the walk. */
typedef int (*tm_leaf_fn)(void *ctx, const struct tm_node *leaf);

#define TM_BTREE_MAX_DEPTH 16

/*
 * Walk the one-level tree at @root, calling @fn for each leaf.  Leaves must
 * hold @value_size values.  Returns 0, @fn's non-zero value, or a negative
 * errno with @e saying which block broke which rule.
 */
int tm_btree_walk(struct tm_bm *bm, uint64_t root, uint32_t value_size,
		  tm_leaf_fn fn, void *ctx, struct tm_error *e);

/*
 * The leaves of the tree at @root, in key order, reading only internal
 * nodes (the leaves themselves are not read or validated).  *@leaves is a
 * malloc'd array of *@nr block numbers.  *@depth: levels above the leaves.
 */
int tm_btree_leaves(struct tm_bm *bm, uint64_t root, uint64_t **leaves,
		    uint64_t *nr, struct tm_error *e);

#endif
