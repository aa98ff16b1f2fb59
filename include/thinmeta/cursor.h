/*
 * cursor.h - a position in a one-level btree, moved entry by entry.
 *
 * The cursor keeps the path from the root to the current leaf (block and
 * entry index per level) and a copy of that leaf, so it can seek to a key
 * and page forwards or backwards through millions of entries while only
 * ever holding one leaf; internal nodes are re-read through the block
 * manager's cache when the cursor crosses into another leaf.
 *
 * Every node is validated where it is read (checksum, header, keys in
 * order, value size), and depth is bounded, so a damaged tree gives an
 * error naming the block, never a loop.  After an error the cursor is
 * unpositioned; seek again to go on.
 */
#ifndef THINMETA_CURSOR_H
#define THINMETA_CURSOR_H

#include <stdint.h>

#include "block.h"
#include "btree.h"

struct tm_cursor_level {
	uint64_t block;
	uint32_t index;		/* entry followed (internal) or current (leaf) */
	uint32_t nr_entries;
};

struct tm_cursor {
	struct tm_bm *bm;
	uint64_t root;
	uint32_t value_size;	/* of the leaves */
	int positioned;		/* at an entry */
	unsigned depth;		/* levels in use; level[depth-1] is the leaf */
	struct tm_cursor_level level[TM_BTREE_MAX_DEPTH];
	struct tm_node leaf;
	uint8_t leaf_buf[TM_BLOCK_SIZE];
};

/* Set up a cursor on the tree at @root with leaf values of @value_size. */
void tm_cursor_init(struct tm_cursor *c, struct tm_bm *bm, uint64_t root,
		    uint32_t value_size);

/*
 * Position at the first entry with key >= @key.  -ENODATA if there is
 * none (the cursor is then unpositioned), or an error.
 */
int tm_cursor_seek(struct tm_cursor *c, uint64_t key, struct tm_error *e);
/* The first / last entry of the tree; -ENODATA if it is empty. */
int tm_cursor_first(struct tm_cursor *c, struct tm_error *e);
int tm_cursor_last(struct tm_cursor *c, struct tm_error *e);
/* Move one entry on / back; -ENODATA past either end (cursor unpositioned). */
int tm_cursor_next(struct tm_cursor *c, struct tm_error *e);
int tm_cursor_prev(struct tm_cursor *c, struct tm_error *e);
/* Move to the first entry of the next non-empty leaf; -ENODATA at the end. */
int tm_cursor_next_leaf(struct tm_cursor *c, struct tm_error *e);

static inline uint64_t tm_cursor_key(const struct tm_cursor *c)
{
	return tm_node_key(&c->leaf, c->level[c->depth - 1].index);
}

static inline const uint8_t *tm_cursor_value(const struct tm_cursor *c)
{
	return tm_node_value(&c->leaf, c->level[c->depth - 1].index);
}

static inline uint64_t tm_cursor_value64(const struct tm_cursor *c)
{
	return tm_le64(tm_cursor_value(c));
}

/* The leaf holding the current entry, and the entry's index in it. */
static inline uint64_t tm_cursor_leaf(const struct tm_cursor *c)
{
	return c->level[c->depth - 1].block;
}

static inline uint32_t tm_cursor_index(const struct tm_cursor *c)
{
	return c->level[c->depth - 1].index;
}

#endif
