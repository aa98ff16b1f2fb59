/*
 * delta.c - two mapping trees compared (include/thinmeta/delta.h).
 *
 * In two phases, so that a cold device sees large reads in block order
 * (engine/bstream.h) rather than one small read per node:
 *
 * 1. The internal nodes, one height at a time from the taller root down.
 *    A height's list holds the nodes of both trees there (struct mt_ref,
 *    tagged LEFT or RIGHT, with the key range its parent gives).  A block
 *    that both trees list at one height is a subtree they share: the two
 *    entries become one, tagged BOTH, whose range is the two ranges'
 *    intersection (its keys must satisfy both parents).  With
 *    TM_DELTA_SKIP_SAME it is dropped unread; otherwise it is read once and
 *    its children are BOTH too.  A height's nodes are read in one stream
 *    (mt_read_nodes), checked, and give the next height's list.
 *
 * 2. The leaves, in order of their ranges' low bounds (the lowest key each
 *    may hold), in one stream.  Before a leaf is opened, every mapping
 *    below that bound in the two open leaves (one a side) is merged and
 *    reported.  A side's leaves have disjoint ascending ranges and each
 *    leaf's keys lie in its range (checked as it is read), so the side's
 *    previous leaf is used up by then; a BOTH leaf is reported as SAME at
 *    once.  The result is the merge of the two trees' mappings in key
 *    order - what walking the two trees side by side gives - with each
 *    shared subtree read at most once.
 *
 * Memory: one height's list (32 bytes a node, plus 8 for the stream's
 * list): for the leaf height, the leaves not shared (all of them, shared
 * once, when SAME is wanted); and one stream (bstream.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mtree.h"
#include "thinmeta/delta.h"

/* A listed node's tag: the tree it is in, or both. */
enum side { LEFT, RIGHT, BOTH };

struct dctx {
	struct tm_bm *bm;
	struct tm_error *e;
	unsigned flags;
	tm_delta_fn fn;
	void *ctx;
	struct tm_delta_stats st;
	int active;
	struct tm_delta_range cur;
	uint64_t root[2];
	struct tm_node leaf[2];		/* the open leaf of each side */
	uint32_t pos[2];		/* its next entry */
	uint8_t buf[2][TM_BLOCK_SIZE];	/* its bytes */
};

/* 1.1.0's DeltaRunBuilder: consecutive blocks of one kind merge. */
static int emit(struct dctx *d, enum tm_delta_kind kind, uint64_t key, uint64_t ldata,
		uint64_t rdata)
{
	int r;

	if (kind == TM_DELTA_SAME && (d->flags & TM_DELTA_SKIP_SAME))
		return 0;
	if (d->active && d->cur.kind == kind && key == d->cur.begin + d->cur.length) {
		d->cur.length++;
		return 0;
	}
	if (d->active && (r = d->fn(d->ctx, &d->cur)))
		return r;
	d->active = 1;
	d->cur.kind = kind;
	d->cur.begin = key;
	d->cur.length = 1;
	d->cur.left_data = kind == TM_DELTA_RIGHT_ONLY ? 0 : ldata;
	d->cur.right_data = kind == TM_DELTA_LEFT_ONLY ? 0 : rdata;
	return 0;
}

static int fail_ref(struct dctx *d, const struct mt_ref *p, int r)
{
	if (p->tag == BOTH)
		tm_error_context(d->e, "left and right trees (roots %" PRIu64 ", %" PRIu64 ")",
				 d->root[LEFT], d->root[RIGHT]);
	else
		tm_error_context(d->e, "%s tree (root %" PRIu64 ")",
				 p->tag == LEFT ? "left" : "right", d->root[p->tag]);
	return r;
}

static int add(struct dctx *d, struct mt_refs *l, const struct mt_ref *p)
{
	if (mt_refs_add(l, p))
		return tm_fail(d->e, -ENOMEM, TM_RULE_NOMEM, p->block, "out of memory");
	return 0;
}

static int cmp_block(const void *a, const void *b)
{
	const struct mt_ref *x = a, *y = b;

	if (x->block != y->block)
		return x->block < y->block ? -1 : 1;
	return (int)x->tag - (int)y->tag;
}

static int cmp_lo(const void *a, const void *b)
{
	const struct mt_ref *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->tag != y->tag)
		return (int)x->tag - (int)y->tag;
	return x->block < y->block ? -1 : x->block > y->block;
}

/*
 * The blocks listed by both trees at one height are one BOTH entry each
 * (dropped with TM_DELTA_SKIP_SAME).  Leaves @l sorted by block.
 */
static void pair_shared(struct dctx *d, struct mt_refs *l)
{
	size_t out = 0;

	qsort(l->v, l->n, sizeof(*l->v), cmp_block);
	for (size_t i = 0; i < l->n; i++) {
		struct mt_ref p = l->v[i];
		if (i + 1 < l->n && p.tag == LEFT && l->v[i + 1].tag == RIGHT &&
		    l->v[i + 1].block == p.block) {
			const struct mt_ref *q = &l->v[++i];
			d->st.subtrees_shared++;
			if (d->flags & TM_DELTA_SKIP_SAME)
				continue;
			p.tag = BOTH;
			p.lo = p.lo > q->lo ? p.lo : q->lo;
			p.hi = p.hi < q->hi ? p.hi : q->hi;
			p.is_root = p.is_root && q->is_root;
		}
		l->v[out++] = p;
	}
	l->n = out;
}

/* Reading one height's internal nodes: their children go to @next. */
struct expand {
	struct dctx *d;
	struct mt_refs *next;
};

static int expand_node(void *ctx, const struct mt_ref *p, const struct tm_node *n)
{
	struct expand *x = ctx;
	int r;

	x->d->st.nodes_read++;
	for (uint32_t j = 0; j < n->nr_entries; j++) {
		struct mt_ref c = {
			.block = tm_node_value64(n, j),
			.lo = tm_node_key(n, j),
			.hi = j + 1 < n->nr_entries ? tm_node_key(n, j + 1) : p->hi,
			.tag = p->tag,
		};
		if ((r = add(x->d, x->next, &c)))
			return r;
	}
	return 0;
}

static int leaf_left(const struct dctx *d, int side)
{
	return d->pos[side] < d->leaf[side].nr_entries;
}

static uint64_t cur_key(const struct dctx *d, int side)
{
	return tm_node_key(&d->leaf[side], d->pos[side]);
}

static uint64_t cur_data(const struct dctx *d, int side)
{
	return tm_bt_block(tm_node_value64(&d->leaf[side], d->pos[side]));
}

/* Merge and report the open leaves' mappings below @limit (all if @all). */
static int flush(struct dctx *d, uint64_t limit, int all)
{
	int r;

	for (;;) {
		int lb = leaf_left(d, LEFT), rb = leaf_left(d, RIGHT);
		uint64_t lk = lb ? cur_key(d, LEFT) : 0, rk = rb ? cur_key(d, RIGHT) : 0;
		if (lb && (!rb || lk < rk)) {
			if (!all && lk >= limit)
				return 0;
			r = emit(d, TM_DELTA_LEFT_ONLY, lk, cur_data(d, LEFT), 0);
			d->pos[LEFT]++;
		} else if (rb && (!lb || rk < lk)) {
			if (!all && rk >= limit)
				return 0;
			r = emit(d, TM_DELTA_RIGHT_ONLY, rk, 0, cur_data(d, RIGHT));
			d->pos[RIGHT]++;
		} else if (lb) {
			if (!all && lk >= limit)
				return 0;
			uint64_t ld = cur_data(d, LEFT), rd = cur_data(d, RIGHT);
			r = emit(d, ld == rd ? TM_DELTA_SAME : TM_DELTA_DIFFERENT, lk, ld, rd);
			d->pos[LEFT]++;
			d->pos[RIGHT]++;
		} else {
			return 0;
		}
		if (r)
			return r;
	}
}

/*
 * The next leaf in order of low bounds: report what lies below its bound,
 * then open it (a BOTH leaf is reported at once).
 */
static int open_leaf(void *ctx, const struct mt_ref *p, const struct tm_node *n)
{
	struct dctx *d = ctx;
	int r;

	if ((r = flush(d, p->lo, 0)))
		return r;
	d->st.nodes_read++;
	/* cannot happen to leaves that passed their checks */
	if ((p->tag != RIGHT && leaf_left(d, LEFT)) || (p->tag != LEFT && leaf_left(d, RIGHT)))
		return tm_fail(d->e, -EINVAL, TM_RULE_KEY_RANGE, p->block,
			       "leaf overlaps the previous leaf's keys");
	if (p->tag == BOTH) {
		for (uint32_t j = 0; j < n->nr_entries; j++) {
			uint64_t v = tm_bt_block(tm_node_value64(n, j));
			if ((r = emit(d, TM_DELTA_SAME, tm_node_key(n, j), v, v)))
				return r;
		}
		return 0;
	}
	/* copied: the stream's bytes go when a later window is read */
	memcpy(d->buf[p->tag], n->base, TM_BLOCK_SIZE);
	d->leaf[p->tag] = *n;
	d->leaf[p->tag].base = d->buf[p->tag];
	d->pos[p->tag] = 0;
	return 0;
}

/* Read the nodes @l at @height, calling @fn for each; errors say which tree. */
static int read_height(struct dctx *d, const struct mt_refs *l, int height, mt_ref_fn fn,
		       void *ctx)
{
	size_t bad;
	int r = mt_read_nodes(d->bm, l, height, fn, ctx, &bad, d->e);

	if (r < 0 && bad < l->n)
		fail_ref(d, &l->v[bad], r);
	return r;
}

static int compare(struct dctx *d, int hl, int hr)
{
	struct mt_refs cur = { 0 }, next = { 0 };
	struct mt_ref pl = { d->root[LEFT], 0, MT_OPEN, LEFT, 1 };
	struct mt_ref pr = { d->root[RIGHT], 0, MT_OPEN, RIGHT, 1 };
	int r = 0;

	for (int h = hl > hr ? hl : hr; h >= 0; h--) {
		if ((h == hl && (r = add(d, &cur, &pl))) || (h == hr && (r = add(d, &cur, &pr))))
			break;
		pair_shared(d, &cur);
		if (h == 0) {
			/* the leaves in order of their low bounds, then the rest */
			qsort(cur.v, cur.n, sizeof(*cur.v), cmp_lo);
			if (!(r = read_height(d, &cur, 0, open_leaf, d)))
				r = flush(d, 0, 1);
			break;
		}
		struct expand x = { d, &next };
		next.n = 0;
		if ((r = read_height(d, &cur, h, expand_node, &x)))
			break;
		struct mt_refs t = cur;
		cur = next;
		next = t;
	}
	if (!r && d->active)
		r = d->fn(d->ctx, &d->cur);
	free(cur.v);
	free(next.v);
	return r;
}

int tm_delta(struct tm_bm *bm, uint64_t left_root, uint64_t right_root, unsigned flags,
	     tm_delta_fn fn, void *ctx, struct tm_delta_stats *stats, struct tm_error *e)
{
	struct dctx *d = calloc(1, sizeof(*d));
	int r, hl, hr;

	if (!d)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	d->bm = bm;
	d->e = e;
	d->flags = flags;
	d->fn = fn;
	d->ctx = ctx;
	d->root[LEFT] = left_root;
	d->root[RIGHT] = right_root;
	if (left_root == right_root && (flags & TM_DELTA_SKIP_SAME)) {
		d->st.subtrees_shared++;	/* one tree: nothing to read */
		r = 0;
	} else if ((r = mt_height(bm, left_root, &hl, e))) {
		tm_error_context(e, "left tree (root %" PRIu64 ")", left_root);
	} else if (left_root == right_root) {
		r = compare(d, hl, hl);
	} else if ((r = mt_height(bm, right_root, &hr, e))) {
		tm_error_context(e, "right tree (root %" PRIu64 ")", right_root);
	} else {
		r = compare(d, hl, hr);
	}
	if (stats)
		*stats = d->st;
	free(d);
	return r;
}
