/*
 * cursor.c - seek and step through a one-level btree holding one leaf
 * (cursor.h).
 */
#include <errno.h>
#include <string.h>

#include "thinmeta/cursor.h"

void tm_cursor_init(struct tm_cursor *c, struct tm_bm *bm, uint64_t root,
		    uint32_t value_size)
{
	memset(c, 0, sizeof(*c));
	c->bm = bm;
	c->root = root;
	c->value_size = value_size;
}

/* Read and check node @b into @buf; *@n describes it. */
static int load(struct tm_cursor *c, uint64_t b, void *buf, struct tm_node *n,
		struct tm_error *e)
{
	int r = tm_bm_read(c->bm, b, &tm_node_validator, buf, e);

	if (r)
		return r;
	tm_node_view(buf, b, n);
	uint32_t want = tm_node_is_leaf(n) ? c->value_size : 8;
	if (n->value_size != want)
		return tm_fail(e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
			       "block %llu: btree %s has value_size %u, expected %u",
			       (unsigned long long)b,
			       tm_node_is_leaf(n) ? "leaf" : "internal node",
			       n->value_size, want);
	if (!tm_node_is_leaf(n) && !n->nr_entries)
		return tm_fail(e, -EUCLEAN, TM_RULE_EMPTY_INTERNAL, b,
			       "block %llu: internal btree node with no entries",
			       (unsigned long long)b);
	return tm_node_check_keys(n, e);
}

static int too_deep(struct tm_cursor *c, uint64_t b, struct tm_error *e)
{
	c->positioned = 0;
	return tm_fail(e, -ELOOP, TM_RULE_DEPTH, b,
		       "block %llu: btree deeper than %d levels (a cycle?)",
		       (unsigned long long)b, TM_BTREE_MAX_DEPTH);
}

/* First index with key >= @key in @n (nr_entries if none). */
static uint32_t first_ge(const struct tm_node *n, uint64_t key)
{
	uint32_t lo = 0, hi = n->nr_entries;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (tm_node_key(n, mid) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Child to follow for @key: the last key <= @key, or 0. */
static uint32_t child_for(const struct tm_node *n, uint64_t key)
{
	uint32_t i = first_ge(n, key);

	if (i < n->nr_entries && tm_node_key(n, i) == key)
		return i;
	return i ? i - 1 : 0;
}

enum how { BY_KEY, LEFTMOST, RIGHTMOST };

/*
 * Descend from level @d (whose block is set) to a leaf, choosing children
 * by @how, and set the leaf's index by @how.  The leaf index may end up
 * == nr_entries (BY_KEY past the leaf's end) or the leaf may be empty.
 */
static int descend(struct tm_cursor *c, unsigned d, enum how how, uint64_t key,
		   struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node n;
	int r;

	for (;;) {
		if (d >= TM_BTREE_MAX_DEPTH)
			return too_deep(c, c->level[d - 1].block, e);
		uint64_t b = c->level[d].block;
		r = load(c, b, buf, &n, e);
		if (r) {
			c->positioned = 0;
			return r;
		}
		c->level[d].nr_entries = n.nr_entries;
		uint32_t i = how == LEFTMOST ? 0 :
			     how == RIGHTMOST ? (n.nr_entries ? n.nr_entries - 1 : 0) :
			     tm_node_is_leaf(&n) ? first_ge(&n, key) : child_for(&n, key);
		c->level[d].index = i;
		if (tm_node_is_leaf(&n)) {
			if (!n.nr_entries && d > 0) {
				c->positioned = 0;
				return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, b,
					       "block %llu: empty btree leaf below the root",
					       (unsigned long long)b);
			}
			memcpy(c->leaf_buf, buf, TM_BLOCK_SIZE);
			tm_node_view(c->leaf_buf, b, &c->leaf);
			c->depth = d + 1;
			return 0;
		}
		if (d + 1 >= TM_BTREE_MAX_DEPTH)
			return too_deep(c, b, e);
		c->level[d + 1].block = tm_node_value64(&n, i);
		d++;
	}
}

/*
 * From the leaf, go to the next (dir > 0) or previous leaf: climb to the
 * nearest level with a sibling that way, step, descend to its edge.
 * -ENODATA when there is none.
 */
static int step_leaf(struct tm_cursor *c, int dir, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node n;
	int d, r;

	for (d = (int)c->depth - 2; d >= 0; d--) {
		struct tm_cursor_level *l = &c->level[d];
		if (dir > 0 ? l->index + 1 < l->nr_entries : l->index > 0)
			break;
	}
	if (d < 0) {
		c->positioned = 0;
		return -ENODATA;
	}
	struct tm_cursor_level *l = &c->level[d];
	r = load(c, l->block, buf, &n, e);
	if (r) {
		c->positioned = 0;
		return r;
	}
	l->nr_entries = n.nr_entries;
	if (l->index >= n.nr_entries || (dir > 0 ? l->index + 1 >= n.nr_entries : l->index == 0)) {
		c->positioned = 0;	/* the node changed under us */
		return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, l->block,
			       "block %llu changed while being read",
			       (unsigned long long)l->block);
	}
	l->index = dir > 0 ? l->index + 1 : l->index - 1;
	c->level[d + 1].block = tm_node_value64(&n, l->index);
	return descend(c, (unsigned)d + 1, dir > 0 ? LEFTMOST : RIGHTMOST, 0, e);
}

/*
 * Settle on an entry after a step that may have left the leaf index past
 * the end (BY_KEY): only the root can be an empty leaf, so one more leaf
 * step at most.
 */
static int settle_forward(struct tm_cursor *c, struct tm_error *e)
{
	struct tm_cursor_level *leaf = &c->level[c->depth - 1];

	if (leaf->index >= leaf->nr_entries) {
		int r = step_leaf(c, 1, e);
		if (r)
			return r;
		leaf = &c->level[c->depth - 1];
		if (leaf->index >= leaf->nr_entries)
			return -ENODATA;
	}
	c->positioned = 1;
	return 0;
}

static int settle_backward(struct tm_cursor *c, struct tm_error *e)
{
	struct tm_cursor_level *leaf = &c->level[c->depth - 1];

	(void)e;
	if (!leaf->nr_entries) {
		c->positioned = 0;
		return -ENODATA;
	}
	c->positioned = 1;
	return 0;
}

/* Keys must keep moving the way the cursor moves, across leaves too. */
static int check_order(struct tm_cursor *c, uint64_t old, int dir, uint64_t from,
		       struct tm_error *e)
{
	uint64_t now = tm_cursor_key(c);

	if (dir > 0 ? now > old : now < old)
		return 0;
	c->positioned = 0;
	return tm_fail(e, -EUCLEAN, TM_RULE_KEY_ORDER, tm_cursor_leaf(c),
		       "block %llu: btree key %llu follows key %llu of block %llu out of order",
		       (unsigned long long)tm_cursor_leaf(c), (unsigned long long)now,
		       (unsigned long long)old, (unsigned long long)from);
}

int tm_cursor_seek(struct tm_cursor *c, uint64_t key, struct tm_error *e)
{
	int r;

	c->positioned = 0;
	c->level[0].block = c->root;
	r = descend(c, 0, BY_KEY, key, e);
	if (r)
		return r;
	return settle_forward(c, e);
}

int tm_cursor_first(struct tm_cursor *c, struct tm_error *e)
{
	int r;

	c->positioned = 0;
	c->level[0].block = c->root;
	r = descend(c, 0, LEFTMOST, 0, e);
	if (r)
		return r;
	return settle_forward(c, e);
}

int tm_cursor_last(struct tm_cursor *c, struct tm_error *e)
{
	int r;

	c->positioned = 0;
	c->level[0].block = c->root;
	r = descend(c, 0, RIGHTMOST, 0, e);
	if (r)
		return r;
	return settle_backward(c, e);
}

int tm_cursor_next(struct tm_cursor *c, struct tm_error *e)
{
	if (!c->positioned)
		return -ENODATA;
	uint64_t old = tm_cursor_key(c), from = tm_cursor_leaf(c);
	c->level[c->depth - 1].index++;
	int r = settle_forward(c, e);
	return r ? r : check_order(c, old, 1, from, e);
}

int tm_cursor_prev(struct tm_cursor *c, struct tm_error *e)
{
	if (!c->positioned)
		return -ENODATA;
	struct tm_cursor_level *leaf = &c->level[c->depth - 1];
	if (leaf->index > 0) {
		leaf->index--;
		return 0;
	}
	uint64_t old = tm_cursor_key(c), from = tm_cursor_leaf(c);
	int r = step_leaf(c, -1, e);
	if (!r)
		r = settle_backward(c, e);
	return r ? r : check_order(c, old, -1, from, e);
}

int tm_cursor_next_leaf(struct tm_cursor *c, struct tm_error *e)
{
	if (!c->positioned)
		return -ENODATA;
	uint64_t old = tm_cursor_key(c), from = tm_cursor_leaf(c);
	int r = step_leaf(c, 1, e);
	if (!r)
		r = settle_forward(c, e);
	return r ? r : check_order(c, old, 1, from, e);
}
