/*
 * btree.c - reading one-level persistent-data btrees: node views, lookup,
 * an ordered walk that checks what it walks, and the leaf list of a tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "u64set.h"

void tm_node_view(const void *buf, uint64_t block, struct tm_node *n)
{
	const uint8_t *p = buf;

	n->block = block;
	n->base = p;
	n->flags = tm_le32(p + TM_NODE_OFF_FLAGS);
	n->nr_entries = tm_le32(p + TM_NODE_OFF_NR_ENTRIES);
	n->max_entries = tm_le32(p + TM_NODE_OFF_MAX_ENTRIES);
	n->value_size = tm_le32(p + TM_NODE_OFF_VALUE_SIZE);
}

int tm_node_check_keys(const struct tm_node *n, struct tm_error *e)
{
	const uint8_t *keys = n->base + TM_NODE_HEADER_SIZE;
	uint64_t b = n->nr_entries ? tm_le64(keys) : 0;

	for (uint32_t i = 1; i < n->nr_entries; i++) {
		uint64_t a = b;
		b = tm_le64(keys + 8u * i);
		if (a >= b)
			return tm_fail(e, -EUCLEAN, TM_RULE_KEY_ORDER, n->block,
				       "block %llu: btree keys out of order (entry %u key %llu, entry %u key %llu)",
				       (unsigned long long)n->block, i - 1,
				       (unsigned long long)a, i, (unsigned long long)b);
	}
	return 0;
}

static int check_value_size(const struct tm_node *n, uint32_t want, struct tm_error *e)
{
	if (n->value_size != want)
		return tm_fail(e, -EUCLEAN, TM_RULE_VALUE_SIZE, n->block,
			       "block %llu: btree %s has value_size %u, expected %u",
			       (unsigned long long)n->block,
			       tm_node_is_leaf(n) ? "leaf" : "internal node",
			       n->value_size, want);
	return 0;
}

/* Largest i with key[i] <= key, or -1. */
static int64_t lower_bound(const struct tm_node *n, uint64_t key)
{
	int64_t lo = -1, hi = n->nr_entries;

	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (tm_node_key(n, (uint32_t)mid) <= key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int tm_btree_lookup(struct tm_bm *bm, uint64_t root, uint32_t value_size,
		    uint64_t key, void *value, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node n;
	uint64_t b = root;
	int r;

	for (int depth = 0; depth < TM_BTREE_MAX_DEPTH; depth++) {
		r = tm_bm_read(bm, b, &tm_node_validator, buf, e);
		if (r)
			return r;
		tm_node_view(buf, b, &n);
		r = check_value_size(&n, tm_node_is_leaf(&n) ? value_size : 8, e);
		if (r)
			return r;
		int64_t i = lower_bound(&n, key);
		if (i < 0)
			return -ENODATA;
		if (tm_node_is_leaf(&n)) {
			if (tm_node_key(&n, (uint32_t)i) != key)
				return -ENODATA;
			memcpy(value, tm_node_value(&n, (uint32_t)i), value_size);
			return 0;
		}
		b = tm_node_value64(&n, (uint32_t)i);
	}
	return tm_fail(e, -ELOOP, TM_RULE_DEPTH, root,
		       "btree at block %llu is deeper than %d levels",
		       (unsigned long long)root, TM_BTREE_MAX_DEPTH);
}

/* ------------------------------------------------------------------ */
/* Walks */

struct walk {
	struct tm_bm *bm;
	uint32_t value_size;
	tm_leaf_fn fn;
	void *ctx;
	struct tm_error *e;
	int leaf_depth;		/* -1 until the first leaf */
	int no_leaf_read;	/* leaves(): list leaves without reading them */
	uint64_t *leaves;
	uint64_t nr_leaves, cap_leaves;
	struct u64set seen;
	uint8_t bufs[TM_BTREE_MAX_DEPTH][TM_BLOCK_SIZE];
};

/* Keys of @n lie in [lo, hi) (hi_open: no upper bound). */
static int check_range(const struct tm_node *n, uint64_t lo, uint64_t hi,
		       int hi_open, struct tm_error *e)
{
	if (!n->nr_entries)
		return 0;
	uint64_t first = tm_node_key(n, 0), last = tm_node_key(n, n->nr_entries - 1);
	if (first < lo || (!hi_open && last >= hi))
		return tm_fail(e, -EUCLEAN, TM_RULE_KEY_RANGE, n->block,
			       "block %llu: btree keys %llu..%llu lie outside the parent's range %llu..%s",
			       (unsigned long long)n->block, (unsigned long long)first,
			       (unsigned long long)last, (unsigned long long)lo,
			       hi_open ? "end" : "");
	return 0;
}

static int push_leaf(struct walk *w, uint64_t b)
{
	if (w->nr_leaves == w->cap_leaves) {
		uint64_t ncap = w->cap_leaves ? w->cap_leaves * 2 : 64;
		uint64_t *nl = realloc(w->leaves, ncap * sizeof(uint64_t));
		if (!nl)
			return tm_fail(w->e, -ENOMEM, TM_RULE_NOMEM, b, "out of memory");
		w->leaves = nl;
		w->cap_leaves = ncap;
	}
	w->leaves[w->nr_leaves++] = b;
	return 0;
}

static int walk_node(struct walk *w, uint64_t b, uint64_t lo, uint64_t hi,
		     int hi_open, int depth)
{
	struct tm_node n;
	int r;

	if (depth >= TM_BTREE_MAX_DEPTH)
		return tm_fail(w->e, -ELOOP, TM_RULE_DEPTH, b,
			       "block %llu: btree deeper than %d levels",
			       (unsigned long long)b, TM_BTREE_MAX_DEPTH);
	/*
	 * Leaves too are seen once per tree: a tree that names one leaf twice
	 * (or several times from a full node) is damaged, and listing it again
	 * and again would make a small image cost unbounded memory.
	 */
	r = u64set_add(&w->seen, b);
	if (r < 0)
		return tm_fail(w->e, r, TM_RULE_NOMEM, b, "out of memory");
	if (r == 0)
		return tm_fail(w->e, -ELOOP, TM_RULE_CYCLE, b,
			       "block %llu is reached twice within one btree",
			       (unsigned long long)b);
	if (w->no_leaf_read && w->leaf_depth >= 0 && depth == w->leaf_depth)
		return push_leaf(w, b);

	r = tm_bm_read(w->bm, b, &tm_node_validator, w->bufs[depth], w->e);
	if (r)
		return r;
	tm_node_view(w->bufs[depth], b, &n);
	if ((r = tm_node_check_keys(&n, w->e)) || (r = check_range(&n, lo, hi, hi_open, w->e)))
		return r;

	if (tm_node_is_leaf(&n)) {
		if (w->leaf_depth < 0)
			w->leaf_depth = depth;
		else if (w->leaf_depth != depth)
			return tm_fail(w->e, -EUCLEAN, TM_RULE_DEPTH, b,
				       "block %llu: leaf at depth %d, other leaves at depth %d",
				       (unsigned long long)b, depth, w->leaf_depth);
		if ((r = check_value_size(&n, w->value_size, w->e)))
			return r;
		if (w->no_leaf_read)
			return push_leaf(w, b);
		return w->fn(w->ctx, &n);
	}

	if (w->leaf_depth >= 0 && depth >= w->leaf_depth)
		return tm_fail(w->e, -EUCLEAN, TM_RULE_DEPTH, b,
			       "block %llu: internal node at depth %d, leaves are at depth %d",
			       (unsigned long long)b, depth, w->leaf_depth);
	if ((r = check_value_size(&n, 8, w->e)))
		return r;
	if (!n.nr_entries)
		return tm_fail(w->e, -EUCLEAN, TM_RULE_EMPTY_INTERNAL, b,
			       "block %llu: internal btree node with no entries",
			       (unsigned long long)b);
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t child = tm_node_value64(&n, i);
		uint64_t clo = tm_node_key(&n, i);
		int last = i + 1 == n.nr_entries;
		uint64_t chi = last ? hi : tm_node_key(&n, i + 1);
		/* a child's buffer is bufs[depth+1]: n stays valid */
		r = walk_node(w, child, clo, chi, last ? hi_open : 0, depth + 1);
		if (r) {
			return r;
		}
	}
	return 0;
}

int tm_btree_walk(struct tm_bm *bm, uint64_t root, uint32_t value_size,
		  tm_leaf_fn fn, void *ctx, struct tm_error *e)
{
	struct walk *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	w->bm = bm;
	w->value_size = value_size;
	w->fn = fn;
	w->ctx = ctx;
	w->e = e;
	w->leaf_depth = -1;
	u64set_init(&w->seen);
	r = walk_node(w, root, 0, 0, 1, 0);
	u64set_free(&w->seen);
	free(w);
	return r;
}

/* Depth of the tree: levels of internal nodes along the first path. */
static int first_path_depth(struct walk *w, uint64_t root, int *depth)
{
	struct tm_node n;
	uint64_t b = root;
	int r;

	for (int d = 0; d < TM_BTREE_MAX_DEPTH; d++) {
		r = tm_bm_read(w->bm, b, &tm_node_validator, w->bufs[0], w->e);
		if (r)
			return r;
		tm_node_view(w->bufs[0], b, &n);
		if (tm_node_is_leaf(&n)) {
			*depth = d;
			return 0;
		}
		if (!n.nr_entries)
			return tm_fail(w->e, -EUCLEAN, TM_RULE_EMPTY_INTERNAL, b,
				       "block %llu: internal btree node with no entries",
				       (unsigned long long)b);
		b = tm_node_value64(&n, 0);
	}
	return tm_fail(w->e, -ELOOP, TM_RULE_DEPTH, root,
		       "btree at block %llu is deeper than %d levels",
		       (unsigned long long)root, TM_BTREE_MAX_DEPTH);
}

int tm_btree_leaves(struct tm_bm *bm, uint64_t root, uint64_t **leaves,
		    uint64_t *nr, struct tm_error *e)
{
	struct walk *w = calloc(1, sizeof(*w));
	int r, depth = 0;

	*leaves = NULL;
	*nr = 0;
	if (!w)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	w->bm = bm;
	w->value_size = 8;
	w->e = e;
	w->no_leaf_read = 1;
	u64set_init(&w->seen);
	r = first_path_depth(w, root, &depth);
	if (!r) {
		w->leaf_depth = depth;
		r = walk_node(w, root, 0, 0, 1, 0);
	}
	u64set_free(&w->seen);
	if (r) {
		free(w->leaves);
	} else {
		*leaves = w->leaves;
		*nr = w->nr_leaves;
	}
	free(w);
	return r;
}
