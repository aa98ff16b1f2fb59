/*
 * repair_walk.c - walk one tree of a damaged pool keeping every usable
 * node.  Where a node cannot be used, a hole records the block and the key
 * range it covered; the walk goes on with its siblings.  Leaves of
 * devices' trees are listed (with the holes in their place); top-level and
 * details entries are collected.
 *
 * A node is usable when it reads, has the btree salt and its own location,
 * obeys the header rules, holds keys in ascending order inside the range
 * its parent gives it, has the value size its tree needs, sits at the
 * depth of the tree's other leaves (or above them, if internal), is not
 * reached twice within one tree, and (internal) has entries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repair_int.h"
#include "thinmeta/btree.h"

int walker_init(struct walker *w, struct tm_bm *bm, struct tm_error *e)
{
	memset(w, 0, offsetof(struct walker, bufs));
	w->bm = bm;
	w->cur_dev = UINT64_MAX;
	w->nr_blocks = tm_bm_nr_blocks(bm);
	w->e = e;
	u64map_init(&w->leaf_idx);
	u64set_init(&w->seen);
	return 0;
}

void walker_free(struct walker *w)
{
	for (size_t i = 0; i < w->nr_lists; i++)
		u64vec_free(&w->lists[i]);
	free(w->lists);
	free(w->holes);
	free(w->top);
	free(w->det);
	free(w->leaves);
	u64map_free(&w->leaf_idx);
	u64set_free(&w->seen);
}

static int nomem(struct walker *w)
{
	return tm_fail(w->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
}

#define GROW(w, arr, nr, cap)                                                  \
	do {                                                                   \
		if ((nr) == (cap)) {                                           \
			size_t ncap_ = (cap) ? (cap) * 2 : 16;                 \
			void *p_ = realloc((arr), ncap_ * sizeof(*(arr)));     \
			if (!p_)                                               \
				return nomem(w);                               \
			(arr) = p_;                                            \
			(cap) = ncap_;                                         \
		}                                                              \
	} while (0)

int walker_new_list(struct walker *w, size_t *idx)
{
	GROW(w, w->lists, w->nr_lists, w->cap_lists);
	memset(&w->lists[w->nr_lists], 0, sizeof(w->lists[0]));
	*idx = w->nr_lists++;
	return 0;
}

static int add_hole(struct walker *w, uint64_t b, uint64_t lo, uint64_t hi, int depth,
		    enum tm_rule why)
{
	struct hole *h;

	/*
	 * The same unusable node for the next keys of the same list (a node
	 * named in slot after slot): one hole, not one per slot, so that
	 * memory and the report stay bounded by the metadata's size.
	 */
	if (w->nr_holes && w->tree == TREE_BOTTOM) {
		const struct u64vec *l = &w->lists[w->list];
		h = &w->holes[w->nr_holes - 1];
		if (l->n && l->v[l->n - 1] == (HOLE_BIT | (uint64_t)(w->nr_holes - 1)) &&
		    h->block == b && h->why == (uint8_t)why && h->depth == depth &&
		    h->dev == w->cur_dev && h->hi != UINT64_MAX && h->hi + 1 == lo) {
			h->hi = hi;
			return 0;
		}
	}
	GROW(w, w->holes, w->nr_holes, w->cap_holes);
	h = &w->holes[w->nr_holes];
	memset(h, 0, sizeof(*h));
	h->block = b;
	h->lo = lo;
	h->hi = hi;
	h->depth = depth;
	h->leaf_depth = -1;
	h->tree = (uint8_t)w->tree;
	h->why = (uint8_t)why;
	h->sub = SIZE_MAX;
	h->dev = w->cur_dev;
	if (w->tree == TREE_BOTTOM &&
	    u64vec_push(&w->lists[w->list], HOLE_BIT | (uint64_t)w->nr_holes))
		return nomem(w);
	w->nr_holes++;
	return 0;
}

static int leaf_bottom(struct walker *w, const struct tm_node *n)
{
	uint64_t idx;

	if (u64map_get(&w->leaf_idx, n->block, &idx)) {
		struct leaf_info *li;
		GROW(w, w->leaves, w->nr_leaves, w->cap_leaves);
		li = &w->leaves[w->nr_leaves];
		memset(li, 0, sizeof(*li));
		li->nr_entries = n->nr_entries;
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			uint64_t v = tm_node_value64(n, i);
			if (tm_bt_block(v) > li->max_data)
				li->max_data = tm_bt_block(v);
			if (tm_bt_time(v) > li->max_time)
				li->max_time = tm_bt_time(v);
		}
		if (u64map_put(&w->leaf_idx, n->block, w->nr_leaves))
			return nomem(w);
		w->nr_leaves++;
	}
	if (u64vec_push(&w->lists[w->list], n->block))
		return nomem(w);
	return 0;
}

static int leaf_top(struct walker *w, const struct tm_node *n)
{
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		GROW(w, w->top, w->nr_top, w->cap_top);
		w->top[w->nr_top].dev_id = tm_node_key(n, i);
		w->top[w->nr_top].root = tm_node_value64(n, i);
		w->nr_top++;
	}
	return 0;
}

static int leaf_details(struct walker *w, const struct tm_node *n)
{
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		GROW(w, w->det, w->nr_det, w->cap_det);
		w->det[w->nr_det].dev_id = tm_node_key(n, i);
		tm_details_decode(tm_node_value(n, i), &w->det[w->nr_det].d);
		w->nr_det++;
	}
	return 0;
}

static int visit(struct walker *w, uint64_t b, uint64_t lo, uint64_t hi, int depth)
{
	struct tm_error tmp;
	struct tm_node n;
	int r;

	if (depth > TM_BTREE_MAX_DEPTH)
		return add_hole(w, b, lo, hi, depth, TM_RULE_DEPTH);
	if (b == 0 || b >= w->nr_blocks)
		return add_hole(w, b, lo, hi, depth, TM_RULE_OUT_OF_RANGE);
	r = u64set_add(&w->seen, b);
	if (r < 0)
		return nomem(w);
	if (r == 0)
		return add_hole(w, b, lo, hi, depth, TM_RULE_CYCLE);

	uint8_t *buf = w->bufs[depth];
	r = tm_bm_read(w->bm, b, &tm_node_validator, buf, &tmp);
	if (r)
		return add_hole(w, b, lo, hi, depth,
				tmp.rule != TM_RULE_NONE ? tmp.rule : TM_RULE_IO);
	tm_node_view(buf, b, &n);
	if (tm_node_check_keys(&n, &tmp))
		return add_hole(w, b, lo, hi, depth, TM_RULE_KEY_ORDER);
	if (n.nr_entries && (tm_node_key(&n, 0) < lo || tm_node_key(&n, n.nr_entries - 1) > hi))
		return add_hole(w, b, lo, hi, depth, TM_RULE_KEY_RANGE);

	if (tm_node_is_leaf(&n)) {
		uint32_t want = w->tree == TREE_DETAILS ? TM_VSIZE_DETAILS : TM_VSIZE_U64;
		if (w->leaf_depth < 0)
			w->leaf_depth = depth;
		else if (depth != w->leaf_depth)
			return add_hole(w, b, lo, hi, depth, TM_RULE_DEPTH);
		if (n.value_size != want)
			return add_hole(w, b, lo, hi, depth, TM_RULE_VALUE_SIZE);
		switch (w->tree) {
		case TREE_BOTTOM:
			return leaf_bottom(w, &n);
		case TREE_TOP:
			return leaf_top(w, &n);
		default:
			return leaf_details(w, &n);
		}
	}

	if (w->leaf_depth >= 0 && depth >= w->leaf_depth)
		return add_hole(w, b, lo, hi, depth, TM_RULE_DEPTH);
	if (n.value_size != TM_VSIZE_U64)
		return add_hole(w, b, lo, hi, depth, TM_RULE_VALUE_SIZE);
	if (!n.nr_entries)
		return add_hole(w, b, lo, hi, depth, TM_RULE_EMPTY_INTERNAL);

	uint64_t kids[256];
	uint32_t nk = 0;
	for (uint32_t i = 0; i < n.nr_entries && nk < 256; i++) {
		uint64_t c = tm_node_value64(&n, i);
		if (c && c < w->nr_blocks)
			kids[nk++] = c;
	}
	tm_bm_prefetch(w->bm, kids, nk);

	/* buf stays ours during the recursion: children use bufs[depth + 1...] */
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t clo = tm_node_key(&n, i);
		uint64_t chi = i + 1 < n.nr_entries ? tm_node_key(&n, i + 1) - 1 : hi;
		if ((r = visit(w, tm_node_value64(&n, i), clo, chi, depth + 1)))
			return r;
	}
	return 0;
}

int walker_walk(struct walker *w, enum tree tree, uint64_t root, uint64_t lo,
		uint64_t hi, int depth, int leaf_depth, size_t list)
{
	int r;

	w->tree = tree;
	w->list = list;
	w->leaf_depth = leaf_depth;
	w->first_hole = w->nr_holes;
	u64set_clear(&w->seen);
	r = visit(w, root, lo, hi, depth);
	for (size_t i = w->first_hole; i < w->nr_holes; i++)
		w->holes[i].leaf_depth = w->leaf_depth;
	return r;
}
