/*
 * mtree.c - checked reads and walks of bottom-level mapping trees, with
 * the rules of the 1.1.0 walkers (see mtree.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "bstream.h"
#include "mtree.h"

int mt_read_node(struct tm_bm *bm, uint64_t b, int height, int is_root,
		 uint64_t lo, uint64_t hi, void *buf, struct tm_node *n,
		 struct tm_error *e)
{
	int r = tm_bm_read(bm, b, &tm_node_validator, buf, e);

	if (r)
		return r;
	return mt_check_node(buf, b, height, is_root, lo, hi, n, e);
}

void mt_hint_children(struct tm_bm *bm, const struct tm_node *n)
{
	struct tm_dev *dev = tm_bm_dev(bm);
	uint64_t start = 0, last = 0;
	int have = 0;

	if (!dev->ops->hint)
		return;
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t b = tm_node_value64(n, i);
		if (b >= dev->nr_blocks)
			continue;
		if (have && b >= start && b <= last + 8 && b - start < 256) {
			if (b > last)
				last = b;
			continue;
		}
		if (have)
			tm_dev_hint(dev, start, (unsigned)(last - start + 1));
		start = last = b;
		have = 1;
	}
	if (have)
		tm_dev_hint(dev, start, (unsigned)(last - start + 1));
}

int mt_check_node(const void *buf, uint64_t b, int height, int is_root, uint64_t lo,
		  uint64_t hi, struct tm_node *n, struct tm_error *e)
{
	int r;

	tm_node_view(buf, b, n);
	if (n->value_size != TM_VSIZE_U64)
		return tm_fail(e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
			       "block %" PRIu64 ": mapping tree %s has value_size %u, expected 8",
			       b, tm_node_is_leaf(n) ? "leaf" : "internal node", n->value_size);
	if (n->max_entries % 3)
		return tm_fail(e, -EUCLEAN, TM_RULE_MAX_ENTRIES, b,
			       "block %" PRIu64 ": btree node max_entries %u is not a multiple of 3",
			       b, n->max_entries);
	if (!is_root && n->nr_entries < n->max_entries / 3)
		return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, b,
			       "block %" PRIu64 ": btree node has %u entries, fewer than the minimum %u (max_entries / 3) of a non-root node",
			       b, n->nr_entries, n->max_entries / 3);
	if (height == 0 && !tm_node_is_leaf(n))
		return tm_fail(e, -EUCLEAN, TM_RULE_DEPTH, b,
			       "block %" PRIu64 ": internal node where the tree's other leaves put a leaf",
			       b);
	if (height > 0 && tm_node_is_leaf(n))
		return tm_fail(e, -EUCLEAN, TM_RULE_DEPTH, b,
			       "block %" PRIu64 ": leaf at a height where the tree's first path has internal nodes",
			       b);
	if (!tm_node_is_leaf(n) && n->nr_entries == 0)
		return tm_fail(e, -EUCLEAN, TM_RULE_EMPTY_INTERNAL, b,
			       "block %" PRIu64 ": internal btree node with no entries", b);
	if ((r = tm_node_check_keys(n, e)))
		return r;
	if (n->nr_entries) {
		uint64_t first = tm_node_key(n, 0), last = tm_node_key(n, n->nr_entries - 1);
		if (first < lo || (hi != MT_OPEN && last >= hi))
			return tm_fail(e, -EUCLEAN, TM_RULE_KEY_RANGE, b,
				       "block %" PRIu64 ": btree keys %" PRIu64 "..%" PRIu64
				       " lie outside the range %" PRIu64 "..%s given by the parent node",
				       b, first, last, lo, hi == MT_OPEN ? "end" : "its next key");
	}
	return 0;
}

int mt_height(struct tm_bm *bm, uint64_t root, int *height, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node n;
	uint64_t b = root;
	int r;

	for (int d = 0; d < TM_BTREE_MAX_DEPTH; d++) {
		r = mt_read_node(bm, b, -1, d == 0, 0, MT_OPEN, buf, &n, e);
		if (r)
			return r;
		if (tm_node_is_leaf(&n)) {
			*height = d;
			return 0;
		}
		b = tm_node_value64(&n, 0);
	}
	return tm_fail(e, -ELOOP, TM_RULE_DEPTH, root,
		       "btree at block %" PRIu64 " is deeper than %d levels", root,
		       TM_BTREE_MAX_DEPTH);
}

/* ------------------------------------------------------------------ */
/* Listing the leaves */

struct lwalk {
	struct tm_bm *bm;
	uint8_t *seen;
	uint64_t nr_blocks;
	uint32_t tag;
	struct mt_refs *out;
	struct tm_error *e;
	int top, top_is_root;
	uint8_t bufs[TM_BTREE_MAX_DEPTH][TM_BLOCK_SIZE];
};

/* Set @b's bit; 1 if it was clear.  Blocks past the end are never "seen":
 * reading them fails. */
static int see(struct lwalk *w, uint64_t b)
{
	if (b >= w->nr_blocks)
		return 1;
	uint8_t bit = (uint8_t)(1u << (b % 8));
	if (w->seen[b / 8] & bit)
		return 0;
	w->seen[b / 8] |= bit;
	return 1;
}

static int list_node(struct lwalk *w, uint64_t b, int height, uint64_t lo, uint64_t hi)
{
	struct tm_node n;
	int r;

	if (!see(w, b))
		return 0;	/* visited before: skipped with its subtree */
	if (height == 0) {
		struct mt_ref ref = {
			.block = b, .lo = lo, .hi = hi, .tag = w->tag,
			.is_root = w->top == 0 && w->top_is_root,
		};
		if (mt_refs_add(w->out, &ref))
			return tm_fail(w->e, -ENOMEM, TM_RULE_NOMEM, b, "out of memory");
		return 0;
	}
	r = mt_read_node(w->bm, b, height, height == w->top && w->top_is_root, lo, hi,
			 w->bufs[height], &n, w->e);
	if (r)
		return r;
	if (height >= 2)	/* children read next, one by one */
		mt_hint_children(w->bm, &n);
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t clo = tm_node_key(&n, i);
		uint64_t chi = i + 1 < n.nr_entries ? tm_node_key(&n, i + 1) : hi;
		r = list_node(w, tm_node_value64(&n, i), height - 1, clo, chi);
		if (r)
			return r;
	}
	return 0;
}

int mt_list_leaves(struct tm_bm *bm, uint64_t root, int height, int is_root,
		   uint8_t *seen, uint32_t tag, struct mt_refs *out, struct tm_error *e)
{
	struct lwalk *w;
	int r;

	if (height < 0 || height >= TM_BTREE_MAX_DEPTH)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, root, "bad tree height %d", height);
	w = malloc(sizeof(*w));
	if (!w)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	w->bm = bm;
	w->seen = seen;
	w->nr_blocks = tm_bm_nr_blocks(bm);
	w->tag = tag;
	w->out = out;
	w->e = e;
	w->top = height;
	w->top_is_root = is_root;
	r = list_node(w, root, height, 0, MT_OPEN);
	free(w);
	return r;
}

int mt_refs_add(struct mt_refs *l, const struct mt_ref *r)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		struct mt_ref *nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = *r;
	return 0;
}

int mt_read_nodes(struct tm_bm *bm, const struct mt_refs *l, int height, mt_ref_fn fn,
		  void *ctx, size_t *failed, struct tm_error *e)
{
	struct tm_dev *dev = tm_bm_dev(bm);
	uint64_t *blocks = malloc((l->n ? l->n : 1) * sizeof(*blocks));
	struct bstream *s = NULL;
	int r = 0;

	*failed = SIZE_MAX;
	if (!blocks)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	for (size_t i = 0; i < l->n; i++)
		blocks[i] = l->v[i].block;
	if (bs_open(dev, blocks, l->n, &s)) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct mt_ref *ref = &l->v[i];
		struct bs_block blk;
		struct tm_node n;
		bs_get(s, i, &blk);
		if ((r = bs_validate(&blk, dev, ref->block, &tm_node_validator, e)) ||
		    (r = mt_check_node(blk.data, ref->block, height, ref->is_root, ref->lo,
				       ref->hi, &n, e)) ||
		    (r = fn(ctx, ref, &n))) {
			*failed = i;
			break;
		}
	}
out:
	bs_close(s);
	free(blocks);
	return r;
}
