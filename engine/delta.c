/*
 * delta.c - walk two mapping trees together and report how they differ
 * (include/thinmeta/delta.h).
 *
 * Each side is a stream of mappings in key order, held as the rest of the
 * leaf being read plus a stack of subtrees not yet opened (the top is next
 * in key order; each knows its height and the key range its parent gives).
 * When neither side has a leaf open and both stacks start with the same
 * block, that subtree is common to both trees: its mappings are SAME and it
 * is not descended (or read once, to list them).  Otherwise one top is
 * opened (open_next); a leaf being read is merged with the other side's
 * open leaf, and mappings below the other side's next subtree are
 * one-sided without opening it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mtree.h"
#include "thinmeta/delta.h"

struct pending {
	uint64_t block;
	uint64_t lo, hi;	/* keys lie in [lo, hi); hi MT_OPEN = unbounded */
	int height;
	int is_root;
};

struct side {
	const char *name;	/* "left", "right" */
	uint64_t root;
	struct pending *stack;
	size_t n, cap;
	int have_leaf;
	uint32_t pos;
	struct tm_node leaf;
	uint8_t buf[TM_BLOCK_SIZE];
};

struct dctx {
	struct tm_bm *bm;
	struct tm_error *e;
	unsigned flags;
	tm_delta_fn fn;
	void *ctx;
	struct tm_delta_stats st;
	int active;
	struct tm_delta_range cur;
	struct side s[2];
	uint8_t bufs[TM_BTREE_MAX_DEPTH][TM_BLOCK_SIZE];
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

static int push(struct dctx *d, struct side *s, const struct pending *p)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct pending *ns = realloc(s->stack, ncap * sizeof(*ns));
		if (!ns)
			return tm_fail(d->e, -ENOMEM, TM_RULE_NOMEM, p->block, "out of memory");
		s->stack = ns;
		s->cap = ncap;
	}
	s->stack[s->n++] = *p;
	return 0;
}

static int fail_side(struct dctx *d, struct side *s, int r)
{
	tm_error_context(d->e, "%s tree (root %" PRIu64 ")", s->name, s->root);
	return r;
}

/* Open the subtree on top of @s's stack: push its children, or load its leaf. */
static int expand(struct dctx *d, struct side *s)
{
	struct pending p = s->stack[--s->n];
	struct tm_node n;
	int r;

	r = mt_read_node(d->bm, p.block, p.height, p.is_root, p.lo, p.hi, s->buf, &n, d->e);
	if (r)
		return fail_side(d, s, r);
	d->st.nodes_read++;
	if (p.height == 0) {
		s->leaf = n;
		s->leaf.base = s->buf;
		s->pos = 0;
		s->have_leaf = 1;
		return 0;
	}
	for (uint32_t i = n.nr_entries; i-- > 0;) {
		struct pending c = {
			.block = tm_node_value64(&n, i),
			.lo = tm_node_key(&n, i),
			.hi = i + 1 < n.nr_entries ? tm_node_key(&n, i + 1) : p.hi,
			.height = p.height - 1,
			.is_root = 0,
		};
		if ((r = push(d, s, &c)))
			return r;
	}
	return 0;
}

/* List the mappings of a subtree both trees share, as SAME. */
static int same_subtree(struct dctx *d, uint64_t b, int height, int is_root, uint64_t lo,
			uint64_t hi)
{
	struct tm_node n;
	int r;

	r = mt_read_node(d->bm, b, height, is_root, lo, hi, d->bufs[height], &n, d->e);
	if (r)
		return fail_side(d, &d->s[0], r);
	d->st.nodes_read++;
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t k = tm_node_key(&n, i);
		if (height == 0) {
			uint64_t v = tm_bt_block(tm_node_value64(&n, i));
			if ((r = emit(d, TM_DELTA_SAME, k, v, v)))
				return r;
			continue;
		}
		r = same_subtree(d, tm_node_value64(&n, i), height - 1, 0, k,
				 i + 1 < n.nr_entries ? tm_node_key(&n, i + 1) : hi);
		if (r)
			return r;
	}
	return 0;
}

static int leaf_left(const struct side *s)
{
	return s->have_leaf && s->pos < s->leaf.nr_entries;
}

static uint64_t cur_key(const struct side *s)
{
	return tm_node_key(&s->leaf, s->pos);
}

static uint64_t cur_data(const struct side *s)
{
	return tm_bt_block(tm_node_value64(&s->leaf, s->pos));
}

/* Merge the two open leaves until one of them is used up. */
static int merge_leaves(struct dctx *d)
{
	struct side *l = &d->s[0], *rt = &d->s[1];
	int r;

	while (leaf_left(l) && leaf_left(rt)) {
		uint64_t lk = cur_key(l), rk = cur_key(rt);
		if (lk < rk) {
			r = emit(d, TM_DELTA_LEFT_ONLY, lk, cur_data(l), 0);
			l->pos++;
		} else if (rk < lk) {
			r = emit(d, TM_DELTA_RIGHT_ONLY, rk, 0, cur_data(rt));
			rt->pos++;
		} else {
			uint64_t ld = cur_data(l), rd = cur_data(rt);
			r = emit(d, ld == rd ? TM_DELTA_SAME : TM_DELTA_DIFFERENT, lk, ld, rd);
			l->pos++;
			rt->pos++;
		}
		if (r)
			return r;
	}
	return 0;
}

/*
 * @s has an open leaf, @o has none: emit @s's mappings that lie below
 * everything @o still holds; *@need_open says @o's next subtree must be
 * opened to go on.
 */
static int one_sided(struct dctx *d, struct side *s, struct side *o, int *need_open)
{
	enum tm_delta_kind kind = s == &d->s[0] ? TM_DELTA_LEFT_ONLY : TM_DELTA_RIGHT_ONLY;
	uint64_t limit = o->n ? o->stack[o->n - 1].lo : UINT64_MAX;
	int r;

	*need_open = 0;
	while (leaf_left(s)) {
		uint64_t k = cur_key(s), v = cur_data(s);
		if (o->n && k >= limit) {
			*need_open = 1;
			return 0;
		}
		r = emit(d, kind, k, kind == TM_DELTA_LEFT_ONLY ? v : 0,
			 kind == TM_DELTA_RIGHT_ONLY ? v : 0);
		if (r)
			return r;
		s->pos++;
	}
	return 0;
}

/*
 * Neither side has a leaf open and their next subtrees @a, @b differ: open
 * the taller one; of two equally tall, the one whose keys come first, both
 * when that cannot be told.  A subtree left closed may still turn out to be
 * shared with the other side's next one.
 */
static int open_next(struct dctx *d, const struct pending *a, const struct pending *b)
{
	struct side *l = &d->s[0], *rt = &d->s[1];
	int r;

	if (a->height != b->height)
		return expand(d, a->height > b->height ? l : rt);
	if ((a->hi != MT_OPEN && a->hi <= b->lo) || a->lo < b->lo)
		return expand(d, l);
	if ((b->hi != MT_OPEN && b->hi <= a->lo) || b->lo < a->lo)
		return expand(d, rt);
	if ((r = expand(d, l)))
		return r;
	return expand(d, rt);
}

static int run(struct dctx *d)
{
	struct side *l = &d->s[0], *rt = &d->s[1];
	int r, need;

	for (;;) {
		int lb = leaf_left(l), rb = leaf_left(rt);
		if (lb && rb) {
			if ((r = merge_leaves(d)))
				return r;
			continue;
		}
		if (lb || rb) {
			struct side *s = lb ? l : rt, *o = lb ? rt : l;
			if ((r = one_sided(d, s, o, &need)))
				return r;
			if (need && (r = expand(d, o)))
				return r;
			continue;
		}
		l->have_leaf = rt->have_leaf = 0;
		if (!l->n && !rt->n)
			return 0;
		if (!l->n || !rt->n) {
			if ((r = expand(d, l->n ? l : rt)))
				return r;
			continue;
		}
		struct pending a = l->stack[l->n - 1], b = rt->stack[rt->n - 1];
		if (a.block == b.block) {
			l->n--;
			rt->n--;
			d->st.subtrees_shared++;
			if (!(d->flags & TM_DELTA_SKIP_SAME) &&
			    (r = same_subtree(d, a.block, a.height, a.is_root && b.is_root,
					      a.lo, a.hi)))
				return r;
			continue;
		}
		if ((r = open_next(d, &a, &b)))
			return r;
	}
}

int tm_delta(struct tm_bm *bm, uint64_t left_root, uint64_t right_root, unsigned flags,
	     tm_delta_fn fn, void *ctx, struct tm_delta_stats *stats, struct tm_error *e)
{
	struct dctx *d = calloc(1, sizeof(*d));
	int r = 0, hl, hr;

	if (!d)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	d->bm = bm;
	d->e = e;
	d->flags = flags;
	d->fn = fn;
	d->ctx = ctx;
	d->s[0].name = "left";
	d->s[0].root = left_root;
	d->s[1].name = "right";
	d->s[1].root = right_root;
	if (left_root == right_root) {
		/* one tree: all SAME, nothing to read unless SAME is wanted */
		d->st.subtrees_shared++;
		if (!(flags & TM_DELTA_SKIP_SAME)) {
			if ((r = mt_height(bm, left_root, &hl, e))) {
				r = fail_side(d, &d->s[0], r);
				goto out;
			}
			r = same_subtree(d, left_root, hl, 1, 0, MT_OPEN);
			if (!r && d->active)
				r = fn(ctx, &d->cur);
		}
		goto out;
	}
	if ((r = mt_height(bm, left_root, &hl, e))) {
		r = fail_side(d, &d->s[0], r);
		goto out;
	}
	if ((r = mt_height(bm, right_root, &hr, e))) {
		r = fail_side(d, &d->s[1], r);
		goto out;
	}
	struct pending pl = { left_root, 0, MT_OPEN, hl, 1 };
	struct pending pr = { right_root, 0, MT_OPEN, hr, 1 };
	if ((r = push(d, &d->s[0], &pl)) || (r = push(d, &d->s[1], &pr)))
		goto out;
	r = run(d);
	if (!r && d->active)
		r = fn(ctx, &d->cur);
out:
	if (stats)
		*stats = d->st;
	free(d->s[0].stack);
	free(d->s[1].stack);
	free(d);
	return r;
}
