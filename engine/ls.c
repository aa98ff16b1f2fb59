/*
 * ls.c - per-device mapping counts (mapped, shared, highest block) with the
 * sharing rules of thin-provisioning-tools 1.1.0 (include/thinmeta/ls.h).
 *
 * Phases, as 1.1.0's src/thin/ls.rs runs them:
 *   1. from every device root, read the internal nodes once each, counting
 *      the references to every node (saturating at 2) and listing leaves;
 *   2. read every leaf once, in block order: count references to data
 *      blocks; a leaf referenced twice is all shared;
 *   3. read the exclusive leaves again: a mapping is shared when its data
 *      block has two references;
 *   4. sum each device's tree bottom up (shared internal nodes make their
 *      whole subtree shared), checking entry counts and key ranges.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bstream.h"
#include "count2.h"
#include "mtree.h"
#include "thinmeta/ls.h"
#include "u64map.h"

struct lsum {
	uint64_t key_low, key_high;
	uint64_t mapped, shared;
	uint32_t nr_entries;
};

enum { ST_NEW, ST_BUSY, ST_DONE };

struct lnode {
	uint64_t block;
	uint64_t child_off;	/* internal: first child in ckeys/cblocks */
	uint32_t nr_children;
	int8_t height;		/* 0 = leaf */
	uint8_t state;
	struct lsum s;
};

struct lctx {
	struct tm_bm *bm;
	struct tm_error *e;
	uint64_t nr_meta;
	uint8_t *refs;		/* references per metadata block, 0..2 */
	struct count2 data;
	struct lnode *nodes;
	size_t nr_nodes, cap_nodes;
	struct u64map map;	/* block -> node index */
	uint64_t *ckeys, *cblocks;
	uint64_t nr_c, cap_c;
	uint32_t *leaves;	/* node indexes of leaves */
	size_t nr_leaves, cap_leaves;
	uint8_t bufs[TM_BTREE_MAX_DEPTH][TM_BLOCK_SIZE];
};

static int64_t node_of(const struct lctx *c, uint64_t b)
{
	const uint64_t *v = u64map_find(&c->map, b);

	return v ? (int64_t)*v : -1;
}

static int nomem(struct lctx *c)
{
	return tm_fail(c->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
}

/* Add a node record; its index, or a negative errno. */
static int64_t add_node(struct lctx *c, uint64_t b, int height)
{
	if (c->nr_nodes == c->cap_nodes) {
		size_t ncap = c->cap_nodes ? c->cap_nodes * 2 : 256;
		struct lnode *nn = realloc(c->nodes, ncap * sizeof(*nn));
		if (!nn)
			return nomem(c);
		c->nodes = nn;
		c->cap_nodes = ncap;
	}
	if (c->nr_nodes >= UINT32_MAX || u64map_put(&c->map, b, c->nr_nodes))
		return nomem(c);
	struct lnode *n = &c->nodes[c->nr_nodes];
	memset(n, 0, sizeof(*n));
	n->block = b;
	n->height = (int8_t)height;
	if (height == 0) {
		if (c->nr_leaves == c->cap_leaves) {
			size_t ncap = c->cap_leaves ? c->cap_leaves * 2 : 256;
			uint32_t *nl = realloc(c->leaves, ncap * sizeof(*nl));
			if (!nl)
				return nomem(c);
			c->leaves = nl;
			c->cap_leaves = ncap;
		}
		c->leaves[c->nr_leaves++] = (uint32_t)c->nr_nodes;
	}
	return (int64_t)c->nr_nodes++;
}

/* One more reference to block @b; the count before it, or -ERANGE. */
static int add_ref(struct lctx *c, uint64_t b, uint64_t from)
{
	if (b >= c->nr_meta)
		return tm_fail(c->e, -ERANGE, TM_RULE_OUT_OF_RANGE, b,
			       "block %" PRIu64 ": pointer to block %" PRIu64
			       ", past the end of the metadata device (%" PRIu64 " blocks)",
			       from, b, c->nr_meta);
	int old = c->refs[b];
	if (old < 2)
		c->refs[b]++;
	return old;
}

/* Phase 1: record the subtree at @b (seen for the first time). */
static int collect(struct lctx *c, uint64_t b, int height)
{
	struct tm_node n;
	int64_t idx;
	int r;

	idx = add_node(c, b, height);
	if (idx < 0)
		return (int)idx;
	if (height == 0)
		return 0;
	/* underfull nodes are judged in phase 4, as 1.1.0 does */
	r = mt_read_node(c->bm, b, height, 1, 0, MT_OPEN, c->bufs[height], &n, c->e);
	if (r)
		return r;
	if (height >= 2)	/* children read next, one by one */
		mt_hint_children(c->bm, &n);
	if (c->nr_c + n.nr_entries > c->cap_c) {
		uint64_t ncap = (c->cap_c ? c->cap_c * 2 : 1024) + n.nr_entries;
		uint64_t *nk = realloc(c->ckeys, ncap * sizeof(*nk));
		if (!nk)
			return nomem(c);
		c->ckeys = nk;
		uint64_t *nb = realloc(c->cblocks, ncap * sizeof(*nb));
		if (!nb)
			return nomem(c);
		c->cblocks = nb;
		c->cap_c = ncap;
	}
	uint64_t off = c->nr_c;
	c->nodes[idx].child_off = off;
	c->nodes[idx].nr_children = n.nr_entries;
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		c->ckeys[off + i] = tm_node_key(&n, i);
		c->cblocks[off + i] = tm_node_value64(&n, i);
	}
	c->nr_c += n.nr_entries;
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		uint64_t child = c->cblocks[off + i];
		int old = add_ref(c, child, b);
		if (old < 0)
			return old;
		if (old == 0) {
			if ((r = collect(c, child, height - 1)))
				return r;
			continue;
		}
		int64_t ci = node_of(c, child);
		if (ci < 0 || c->nodes[ci].height != height - 1)
			return tm_fail(c->e, -EUCLEAN, TM_RULE_DEPTH, child,
				       "block %" PRIu64 " is reached at two different heights of the mapping trees",
				       child);
	}
	return 0;
}

static int cmp_leaf_block(const void *a, const void *b, void *arg)
{
	const struct lnode *nodes = arg;
	uint64_t x = nodes[*(const uint32_t *)a].block, y = nodes[*(const uint32_t *)b].block;
	return x < y ? -1 : x > y;
}

/* Leaf @blk (block @b) of a stream, checked as mt_read_node() checks it. */
static int stream_leaf(struct lctx *c, const struct bs_block *blk, uint64_t b,
		       struct tm_node *n)
{
	int r = bs_validate(blk, tm_bm_dev(c->bm), b, &tm_node_validator, c->e);

	return r ? r : mt_check_node(blk->data, b, 0, 1, 0, MT_OPEN, n, c->e);
}

/* Phases 2 and 3: the leaves, each pass in block order (engine/bstream.h). */
static int read_leaves(struct lctx *c)
{
	uint64_t *blocks = malloc((c->nr_leaves ? c->nr_leaves : 1) * sizeof(*blocks));
	struct bstream *s = NULL;
	struct bs_block blk;
	struct tm_node n;
	size_t m = 0;
	int r;

	if (!blocks)
		return nomem(c);
	if (c->nr_leaves)
		qsort_r(c->leaves, c->nr_leaves, sizeof(*c->leaves), cmp_leaf_block, c->nodes);
	for (size_t i = 0; i < c->nr_leaves; i++)
		blocks[i] = c->nodes[c->leaves[i]].block;
	if ((r = bs_open(tm_bm_dev(c->bm), blocks, c->nr_leaves, &s))) {
		r = nomem(c);
		goto out;
	}
	for (size_t i = 0; i < c->nr_leaves; i++) {
		struct lnode *ln = &c->nodes[c->leaves[i]];
		bs_get(s, i, &blk);
		if ((r = stream_leaf(c, &blk, ln->block, &n)))
			goto out;
		for (uint32_t k = 0; k < n.nr_entries; k++)
			if (count2_inc(&c->data, tm_bt_block(tm_node_value64(&n, k)))) {
				r = nomem(c);
				goto out;
			}
		ln->s.mapped = n.nr_entries;
		ln->s.nr_entries = n.nr_entries;
		if (n.nr_entries) {
			ln->s.key_low = tm_node_key(&n, 0);
			ln->s.key_high = tm_node_key(&n, n.nr_entries - 1);
		}
		if (c->refs[ln->block] > 1) {
			ln->s.shared = n.nr_entries;
			ln->state = ST_DONE;
		} else {
			blocks[m++] = ln->block;	/* for the second pass */
		}
	}
	bs_close(s);
	s = NULL;

	/* the leaves referenced once, again: which of their blocks are shared */
	if ((r = bs_open(tm_bm_dev(c->bm), blocks, m, &s))) {
		r = nomem(c);
		goto out;
	}
	for (size_t i = 0, j = 0; i < c->nr_leaves; i++) {
		struct lnode *ln = &c->nodes[c->leaves[i]];
		if (ln->state == ST_DONE)
			continue;
		bs_get(s, j++, &blk);
		if ((r = stream_leaf(c, &blk, ln->block, &n)))
			goto out;
		uint64_t shared = 0;
		for (uint32_t k = 0; k < n.nr_entries; k++)
			if (count2_get(&c->data, tm_bt_block(tm_node_value64(&n, k))) > 1)
				shared++;
		ln->s.shared = shared;
		ln->state = ST_DONE;
	}
	r = 0;
out:
	bs_close(s);
	free(blocks);
	return r;
}

static int underfull(struct lctx *c, uint64_t b, uint64_t nr)
{
	return tm_fail(c->e, -EUCLEAN, TM_RULE_NR_ENTRIES, b,
		       "block %" PRIu64 ": btree node has %" PRIu64
		       " entries, fewer than the minimum %u of a non-root node",
		       b, nr, TM_LS_MIN_ENTRIES);
}

/* Phase 4: the summary of the subtree at node @idx, keys in [lo, hi). */
static int summarize(struct lctx *c, uint32_t idx, uint64_t lo, uint64_t hi, int is_root,
		     struct lsum *out)
{
	struct lnode *n = &c->nodes[idx];
	int r;

	if (n->state == ST_DONE) {
		if (!is_root && n->s.nr_entries < TM_LS_MIN_ENTRIES)
			return underfull(c, n->block, n->s.nr_entries);
		if (n->s.mapped && (n->s.key_low < lo || (hi != MT_OPEN && n->s.key_high >= hi)))
			return tm_fail(c->e, -EUCLEAN, TM_RULE_KEY_RANGE, n->block,
				       "block %" PRIu64 ": btree keys %" PRIu64 "..%" PRIu64
				       " lie outside the range %" PRIu64 "..%s given by the parent node",
				       n->block, n->s.key_low, n->s.key_high, lo,
				       hi == MT_OPEN ? "end" : "its next key");
		*out = n->s;
		return 0;
	}
	if (n->state == ST_BUSY || n->height == 0)
		return tm_fail(c->e, -ELOOP, TM_RULE_CYCLE, n->block,
			       "block %" PRIu64 " is reached again below itself", n->block);
	if (!is_root && n->nr_children < TM_LS_MIN_ENTRIES)
		return underfull(c, n->block, n->nr_children);
	n->state = ST_BUSY;

	uint64_t off = n->child_off, nr = n->nr_children, b = n->block;
	if (c->ckeys[off] < lo || (hi != MT_OPEN && c->ckeys[off + nr - 1] >= hi))
		return tm_fail(c->e, -EUCLEAN, TM_RULE_KEY_RANGE, b,
			       "block %" PRIu64 ": btree keys %" PRIu64 "..%" PRIu64
			       " lie outside the range %" PRIu64 "..%s given by the parent node",
			       b, c->ckeys[off], c->ckeys[off + nr - 1], lo,
			       hi == MT_OPEN ? "end" : "its next key");
	struct lsum sum = { 0 };
	for (uint64_t i = 0; i < nr; i++) {
		struct lsum cs;
		int64_t ci = node_of(c, c->cblocks[off + i]);
		if (ci < 0)
			return tm_fail(c->e, -EUCLEAN, TM_RULE_DEVICES, c->cblocks[off + i],
				       "block %" PRIu64 " was not collected", c->cblocks[off + i]);
		uint64_t chi = i + 1 < nr ? c->ckeys[off + i + 1] : hi;
		r = summarize(c, (uint32_t)ci, c->ckeys[off + i], chi, 0, &cs);
		if (r)
			return r;
		if (!sum.mapped) {
			sum.key_low = cs.key_low;
			sum.key_high = cs.key_high;
		} else if (cs.mapped) {
			sum.key_high = cs.key_high;
		}
		sum.mapped += cs.mapped;
		sum.shared += cs.shared;
		sum.nr_entries++;
	}
	if (c->refs[b] > 1)
		sum.shared = sum.mapped;
	n = &c->nodes[idx];
	n->s = sum;
	n->state = ST_DONE;
	*out = sum;
	return 0;
}

int tm_ls_count(struct tm_bm *bm, const struct tm_device *devs, uint64_t nr_devs,
		uint64_t nr_data_blocks, struct tm_ls_counts *out, struct tm_error *e)
{
	struct lctx *c = calloc(1, sizeof(*c));
	uint64_t i = 0;
	int r;

	if (!c)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	c->bm = bm;
	c->e = e;
	c->nr_meta = tm_bm_nr_blocks(bm);
	c->refs = calloc(c->nr_meta ? c->nr_meta : 1, 1);
	if (!c->refs || count2_init(&c->data, nr_data_blocks)) {
		r = nomem(c);
		goto out;
	}

	for (i = 0; i < nr_devs; i++) {
		uint64_t root = devs[i].mapping_root;
		int height;
		int old = add_ref(c, root, 0);
		if (old < 0) {
			r = old;
			goto dev_fail;
		}
		if (old)
			continue;
		if ((r = mt_height(bm, root, &height, e)) || (r = collect(c, root, height)))
			goto dev_fail;
	}
	if ((r = read_leaves(c))) {
		tm_error_context(e, "mapping tree leaf");
		goto out;
	}
	for (i = 0; i < nr_devs; i++) {
		struct lsum s;
		int64_t idx = node_of(c, devs[i].mapping_root);
		if (idx < 0) {
			r = tm_fail(e, -EUCLEAN, TM_RULE_DEVICES, devs[i].mapping_root,
				    "mapping tree root %" PRIu64 " was not collected",
				    devs[i].mapping_root);
			goto dev_fail;
		}
		if ((r = summarize(c, (uint32_t)idx, 0, MT_OPEN, 1, &s)))
			goto dev_fail;
		out[i].mapped = s.mapped;
		out[i].shared = s.shared;
		out[i].highest = s.key_high;
	}
	r = 0;
	goto out;
dev_fail:
	tm_error_context(e, "device %" PRIu64 " mapping tree", devs[i].dev_id);
out:
	count2_free(&c->data);
	free(c->refs);
	free(c->nodes);
	u64map_free(&c->map);
	free(c->ckeys);
	free(c->cblocks);
	free(c->leaves);
	free(c);
	return r;
}
