/*
 * rmap.c - reverse mapping of data-block regions to thin blocks, with the
 * walk order, run building and sort order of 1.1.0's thin_rmap
 * (include/thinmeta/rmap.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mtree.h"
#include "thinmeta/rmap.h"

struct rctx {
	struct tm_error *e;
	struct tm_range *regions;	/* sorted, disjoint */
	size_t nr_regions, hint;
	uint32_t dev_id;
	int have_cur;
	struct tm_rmap_run cur;
	struct tm_rmap_run *runs;
	uint64_t nr, cap;
	/* top level: (dev_id, root) pairs */
	uint64_t *ids, *roots;
	uint64_t nr_devs, cap_devs;
};

static int cmp_range(const void *a, const void *b)
{
	const struct tm_range *x = a, *y = b;
	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int in_regions(struct rctx *c, uint64_t b)
{
	size_t lo = 0, hi = c->nr_regions;
	const struct tm_range *h = &c->regions[c->hint];

	if (h->begin <= b && b < h->end)
		return 1;	/* mostly the region of the mapping before */

	while (lo < hi) {	/* first region with end > b */
		size_t mid = lo + (hi - lo) / 2;
		if (c->regions[mid].end <= b)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->nr_regions && c->regions[lo].begin <= b) {
		c->hint = lo;
		return 1;
	}
	return 0;
}

static int push_cur(struct rctx *c)
{
	if (c->nr == c->cap) {
		uint64_t ncap = c->cap ? c->cap * 2 : 256;
		struct tm_rmap_run *nr = realloc(c->runs, ncap * sizeof(*nr));
		if (!nr)
			return tm_fail(c->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		c->runs = nr;
		c->cap = ncap;
	}
	c->runs[c->nr++] = c->cur;
	return 0;
}

static int rmap_leaf(struct rctx *c, const struct tm_node *leaf)
{
	int r;

	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		uint64_t k = tm_node_key(leaf, i);
		uint64_t d = tm_bt_block(tm_node_value64(leaf, i));
		if (!in_regions(c, d))
			continue;
		struct tm_rmap_run *cur = &c->cur;
		if (c->have_cur && cur->dev_id == c->dev_id && d == cur->data_end &&
		    k == cur->thin_begin + (cur->data_end - cur->data_begin)) {
			cur->data_end++;
			continue;
		}
		if (c->have_cur && (r = push_cur(c)))
			return r;
		c->have_cur = 1;
		cur->dev_id = c->dev_id;
		cur->data_begin = d;
		cur->data_end = d + 1;
		cur->thin_begin = k;
	}
	return 0;
}

/* mt_read_nodes()'s call: a leaf of device c->ids[tag]. */
static int listed_leaf(void *ctx, const struct mt_ref *l, const struct tm_node *n)
{
	struct rctx *c = ctx;

	c->dev_id = (uint32_t)c->ids[l->tag];
	return rmap_leaf(c, n);
}

static int top_leaf(void *ctx, const struct tm_node *leaf)
{
	struct rctx *c = ctx;

	if (c->nr_devs + leaf->nr_entries > c->cap_devs) {
		uint64_t ncap = (c->cap_devs ? c->cap_devs * 2 : 64) + leaf->nr_entries;
		uint64_t *ni = realloc(c->ids, ncap * sizeof(*ni));
		if (!ni)
			return tm_fail(c->e, -ENOMEM, TM_RULE_NOMEM, leaf->block, "out of memory");
		c->ids = ni;
		uint64_t *nr = realloc(c->roots, ncap * sizeof(*nr));
		if (!nr)
			return tm_fail(c->e, -ENOMEM, TM_RULE_NOMEM, leaf->block, "out of memory");
		c->roots = nr;
		c->cap_devs = ncap;
	}
	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		c->ids[c->nr_devs] = tm_node_key(leaf, i);
		c->roots[c->nr_devs++] = tm_node_value64(leaf, i);
	}
	return 0;
}

static int cmp_run(const void *a, const void *b)
{
	const struct tm_rmap_run *x = a, *y = b;

	if (x->data_begin != y->data_begin)
		return x->data_begin < y->data_begin ? -1 : 1;
	if (x->data_end != y->data_end)
		return x->data_end < y->data_end ? -1 : 1;
	if (x->dev_id != y->dev_id)
		return x->dev_id < y->dev_id ? -1 : 1;
	if (x->thin_begin != y->thin_begin)
		return x->thin_begin < y->thin_begin ? -1 : 1;
	return 0;
}

static void insertion_sort(struct tm_rmap_run *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct tm_rmap_run x = v[i];
		size_t j = i;
		while (j && cmp_run(&v[j - 1], &x) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

/*
 * Sort by cmp_run: in place, most significant byte of data_begin first
 * (American flag sort: each byte value's bucket is filled by cycling
 * entries into place), small buckets and equal data_begins by comparison.
 * Linear in the runs for each byte of data_begin.
 */
static void sort_runs(struct tm_rmap_run *v, size_t n, int shift);

static void radix_pass(struct tm_rmap_run *v, size_t n, int shift)
{
	size_t count[256] = { 0 }, next[256], end[256];

	for (size_t i = 0; i < n; i++)
		count[(v[i].data_begin >> shift) & 255]++;
	for (size_t d = 0, pos = 0; d < 256; d++) {
		next[d] = pos;
		pos += count[d];
		end[d] = pos;
	}
	for (size_t d = 0; d < 256; d++) {
		while (next[d] < end[d]) {
			struct tm_rmap_run x = v[next[d]];
			size_t xd = (x.data_begin >> shift) & 255;
			while (xd != d) {	/* put x where it belongs, take what was there */
				struct tm_rmap_run y = v[next[xd]];
				v[next[xd]++] = x;
				x = y;
				xd = (x.data_begin >> shift) & 255;
			}
			v[next[d]++] = x;
		}
	}
	for (size_t d = 0, pos = 0; d < 256; pos += count[d], d++)
		if (count[d] > 1)
			sort_runs(v + pos, count[d], shift - 8);
}

static void sort_runs(struct tm_rmap_run *v, size_t n, int shift)
{
	if (n <= 32)
		insertion_sort(v, n);
	else if (shift < 0)	/* one data_begin: the other fields decide */
		qsort(v, n, sizeof(*v), cmp_run);
	else
		radix_pass(v, n, shift);
}

int tm_rmap(struct tm_bm *bm, const struct tm_view *v, const struct tm_range *regions,
	    size_t nr_regions, struct tm_rmap_run **runs, uint64_t *nr_runs,
	    struct tm_error *e)
{
	struct rctx c = { .e = e };
	struct mt_refs leaves = { 0 };
	uint8_t *seen = NULL;
	uint64_t i = 0;
	int r;

	*runs = NULL;
	*nr_runs = 0;
	c.regions = malloc((nr_regions ? nr_regions : 1) * sizeof(*c.regions));
	if (!c.regions) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	if (nr_regions) {
		memcpy(c.regions, regions, nr_regions * sizeof(*regions));
		qsort(c.regions, nr_regions, sizeof(*c.regions), cmp_range);
	}
	for (size_t k = 0; k < nr_regions; k++) {	/* merge overlaps */
		if (c.nr_regions && c.regions[k].begin <= c.regions[c.nr_regions - 1].end) {
			if (c.regions[k].end > c.regions[c.nr_regions - 1].end)
				c.regions[c.nr_regions - 1].end = c.regions[k].end;
		} else {
			c.regions[c.nr_regions++] = c.regions[k];
		}
	}

	r = tm_btree_walk(bm, v->sb.mapping_root, TM_VSIZE_U64, top_leaf, &c, e);
	if (r) {
		tm_error_context(e, "mapping tree (top level)");
		goto out;
	}
	/* the leaves of each device not walked for an earlier one, in order */
	seen = calloc(tm_bm_nr_blocks(bm) / 8 + 1, 1);
	if (!seen) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	for (i = 0; i < c.nr_devs; i++) {
		int height;
		uint64_t root = c.roots[i];
		if (root < tm_bm_nr_blocks(bm) && (seen[root / 8] & (1u << (root % 8))))
			continue;	/* walked for an earlier device */
		if ((r = mt_height(bm, root, &height, e)) ||
		    (r = mt_list_leaves(bm, root, height, 1, seen, (uint32_t)i, &leaves, e))) {
			tm_error_context(e, "device %" PRIu64 " mapping tree", c.ids[i]);
			goto out;
		}
	}
	/* then read them in bulk, in block order (engine/bstream.h) */
	size_t bad;
	if ((r = mt_read_nodes(bm, &leaves, 0, listed_leaf, &c, &bad, e))) {
		if (bad < leaves.n)
			tm_error_context(e, "device %" PRIu64 " mapping tree",
					 c.ids[leaves.v[bad].tag]);
		goto out;
	}
	if (c.have_cur && (r = push_cur(&c)))
		goto out;
	if (c.nr) {
		uint64_t top = 0;
		int shift = 0;
		for (uint64_t k = 0; k < c.nr; k++)
			top |= c.runs[k].data_begin;
		while (shift < 56 && (top >> shift) > 255)
			shift += 8;
		sort_runs(c.runs, c.nr, shift);
	}
	*runs = c.runs;
	*nr_runs = c.nr;
	c.runs = NULL;
	r = 0;
out:
	free(leaves.v);
	free(seen);
	free(c.regions);
	free(c.runs);
	free(c.ids);
	free(c.roots);
	return r;
}
