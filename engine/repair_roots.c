/*
 * repair_roots.c - choose the roots of the details and mapping trees when
 * the superblock that named them is gone.
 *
 * Candidates are the intact nodes of each kind that no intact node points
 * to.  The kernel's copy-on-write leaves every committed generation of the
 * trees on the device until their blocks are reused, so there are usually
 * many, each self-consistent.  Each mapping tree candidate is summed up
 * from the scan (devices, mappings, the newest mapping time and how many
 * mappings have it, pointers to unusable nodes) and paired with the
 * details trees that list the same devices with the same total of
 * mapped_blocks.  The order (best first):
 *
 *   paired with a details tree, then not;
 *   fewer pointers to unusable nodes (old generations get overwritten);
 *   newer newest mapping time, then more mappings of that time (1.1.0);
 *   higher transaction id in the details tree;
 *   more mappings;
 *   not the metadata snapshot's tree (it is older than the live one);
 *   higher block number.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repair_int.h"
#include "thinmeta/btree.h"

struct summ {
	uint64_t nr_mappings;
	uint64_t highest;
	uint64_t nr_at_max;
	uint32_t max_time;
	uint32_t holes;
	uint8_t done, busy;
};

struct ctx {
	struct tm_bm *bm;
	struct scan *s;
	struct summ *sum;	/* per scan node */
};

static void merge(struct summ *a, const struct summ *c)
{
	a->nr_mappings += c->nr_mappings;
	a->holes += c->holes;
	if (c->highest > a->highest)
		a->highest = c->highest;
	if (c->max_time > a->max_time) {
		a->max_time = c->max_time;
		a->nr_at_max = c->nr_at_max;
	} else if (c->max_time == a->max_time) {
		a->nr_at_max += c->nr_at_max;
	}
}

/* Sum up a bottom-level subtree from the scan (memoised). */
static const struct summ *bottom_summ(struct ctx *x, uint64_t b, int depth)
{
	static const struct summ broken = { 0, 0, 0, 0, 1, 1, 0 };
	struct snode *n = scan_find(x->s, b);

	if (!n || depth > TM_BTREE_MAX_DEPTH ||
	    (n->kind != RK_BOTTOM && n->kind != RK_EMPTY8))
		return &broken;
	struct summ *m = &x->sum[n - x->s->nodes];
	if (m->done)
		return m;
	if (m->busy)
		return &broken;
	m->busy = 1;
	if (n->leaf) {
		m->nr_mappings = n->nr_entries;
		m->highest = n->max_data;
		m->max_time = n->max_time;
		m->nr_at_max = n->nr_at_max;
	} else {
		for (uint32_t i = 0; i < n->nr_entries; i++)
			merge(m, bottom_summ(x, x->s->children.v[n->child_off + i], depth + 1));
	}
	m->done = 1;
	return m;
}

struct cand {
	uint64_t block;
	struct summ sm;
	struct u64vec devs;	/* dev ids, ascending */
	uint64_t sum_mapped;	/* details: total mapped_blocks */
	uint64_t max_tid;
	uint32_t age;
	int64_t pair;		/* mapping candidate: index of its details tree */
};

/* Walk a top-level tree from the scan: devices and their trees' sums. */
static int top_summ(struct ctx *x, uint64_t b, int depth, struct cand *c)
{
	struct snode *n = scan_find(x->s, b);

	if (!n || depth > TM_BTREE_MAX_DEPTH || (n->kind != RK_TOP && n->kind != RK_EMPTY8)) {
		c->sm.holes++;
		return 0;
	}
	if (n->leaf) {
		if (n->kind == RK_EMPTY8)
			return 0;
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			if (u64vec_push(&c->devs, 0))
				return -ENOMEM;
			merge(&c->sm, bottom_summ(x, x->s->children.v[n->child_off + i], 0));
		}
		/* the keys are not in the scan: read them */
		uint8_t buf[TM_BLOCK_SIZE];
		struct tm_error tmp;
		struct tm_node v;
		if (tm_bm_read(x->bm, b, &tm_node_validator, buf, &tmp)) {
			c->sm.holes++;
			c->devs.n -= n->nr_entries;
			return 0;
		}
		tm_node_view(buf, b, &v);
		for (uint32_t i = 0; i < v.nr_entries && i < n->nr_entries; i++)
			c->devs.v[c->devs.n - n->nr_entries + i] = tm_node_key(&v, i);
		return 0;
	}
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		int r = top_summ(x, x->s->children.v[n->child_off + i], depth + 1, c);
		if (r)
			return r;
	}
	return 0;
}

/* Walk a details tree: its devices, total mapped_blocks, newest tid/time. */
static int details_summ(struct ctx *x, uint64_t b, int depth, struct cand *c)
{
	struct snode *n = scan_find(x->s, b);

	if (!n || depth > TM_BTREE_MAX_DEPTH || n->kind != RK_DETAILS) {
		c->sm.holes++;
		return 0;
	}
	if (n->leaf) {
		uint8_t buf[TM_BLOCK_SIZE];
		struct tm_error tmp;
		struct tm_node v;
		if (tm_bm_read(x->bm, b, &tm_node_validator, buf, &tmp)) {
			c->sm.holes++;
			return 0;
		}
		tm_node_view(buf, b, &v);
		for (uint32_t i = 0; i < v.nr_entries; i++) {
			struct tm_device_details d;
			tm_details_decode(tm_node_value(&v, i), &d);
			if (u64vec_push(&c->devs, tm_node_key(&v, i)))
				return -ENOMEM;
			c->sum_mapped += d.mapped_blocks;
			if (d.transaction_id > c->max_tid)
				c->max_tid = d.transaction_id;
			if (d.creation_time > c->age)
				c->age = d.creation_time;
			if (d.snapshotted_time > c->age)
				c->age = d.snapshotted_time;
		}
		return 0;
	}
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		int r = details_summ(x, x->s->children.v[n->child_off + i], depth + 1, c);
		if (r)
			return r;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int same_devs(const struct cand *a, const struct cand *b)
{
	return a->devs.n == b->devs.n &&
	       (!a->devs.n || !memcmp(a->devs.v, b->devs.v, a->devs.n * sizeof(uint64_t)));
}

/* Negative if @a ranks before @b. */
static int rank(const struct cand *a, const struct cand *b, const struct cand *det,
		uint64_t avoid)
{
	int ap = a->pair >= 0, bp = b->pair >= 0;

	if (ap != bp)
		return bp - ap;
	if (a->sm.holes != b->sm.holes)
		return a->sm.holes < b->sm.holes ? -1 : 1;
	if (a->sm.max_time != b->sm.max_time)
		return a->sm.max_time > b->sm.max_time ? -1 : 1;
	if (a->sm.nr_at_max != b->sm.nr_at_max)
		return a->sm.nr_at_max > b->sm.nr_at_max ? -1 : 1;
	if (ap) {
		uint64_t at = det[a->pair].max_tid, bt = det[b->pair].max_tid;
		if (at != bt)
			return at > bt ? -1 : 1;
	}
	if (a->sm.nr_mappings != b->sm.nr_mappings)
		return a->sm.nr_mappings > b->sm.nr_mappings ? -1 : 1;
	if ((a->block == avoid) != (b->block == avoid))
		return a->block == avoid ? 1 : -1;
	return a->block > b->block ? -1 : (a->block < b->block);
}

static void free_cands(struct cand *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		u64vec_free(&c[i].devs);
	free(c);
}

int roots_choose(struct tm_bm *bm, struct scan *s, uint64_t avoid_top,
		 struct root_choice *out, struct tm_error *e)
{
	struct ctx x = { bm, s, NULL };
	uint8_t *referenced = NULL;
	struct cand *top = NULL, *det = NULL;
	size_t nt = 0, nd = 0;
	int r = 0;

	memset(out, 0, sizeof(*out));
	x.sum = calloc(s->nr_nodes ? s->nr_nodes : 1, sizeof(*x.sum));
	referenced = calloc(s->nr_nodes ? s->nr_nodes : 1, 1);
	top = calloc(s->nr_nodes ? s->nr_nodes : 1, sizeof(*top));
	det = calloc(s->nr_nodes ? s->nr_nodes : 1, sizeof(*det));
	if (!x.sum || !referenced || !top || !det) {
		r = -ENOMEM;
		goto out;
	}

	/* nodes that an intact node of a tree of theirs points to */
	for (size_t i = 0; i < s->nr_nodes; i++) {
		struct snode *n = &s->nodes[i];
		if (n->kind != RK_TOP && n->kind != RK_DETAILS && n->kind != RK_BOTTOM)
			continue;
		for (uint32_t k = 0; k < snode_nr_children(n); k++) {
			struct snode *c = scan_find(s, s->children.v[n->child_off + k]);
			if (c)
				referenced[c - s->nodes] = 1;
		}
	}
	for (size_t i = 0; i < s->nr_nodes; i++) {
		struct snode *n = &s->nodes[i];
		if (referenced[i])
			continue;
		if (n->kind == RK_TOP || n->kind == RK_EMPTY8) {
			struct cand *c = &top[nt++];
			c->block = n->block;
			c->pair = -1;
			if ((r = top_summ(&x, n->block, 0, c)))
				goto out;
			if (c->devs.n)
				qsort(c->devs.v, c->devs.n, sizeof(uint64_t), cmp_u64);
		} else if (n->kind == RK_DETAILS) {
			struct cand *c = &det[nd++];
			c->block = n->block;
			c->pair = -1;
			if ((r = details_summ(&x, n->block, 0, c)))
				goto out;
			if (c->devs.n)
				qsort(c->devs.v, c->devs.n, sizeof(uint64_t), cmp_u64);
		}
	}

	/* pair each mapping tree with the best matching details tree */
	for (size_t i = 0; i < nt; i++) {
		for (size_t j = 0; j < nd; j++) {
			if (det[j].sm.holes || det[j].sum_mapped != top[i].sm.nr_mappings ||
			    !same_devs(&top[i], &det[j]))
				continue;
			if (top[i].pair < 0 || det[j].max_tid > det[top[i].pair].max_tid ||
			    (det[j].max_tid == det[top[i].pair].max_tid &&
			     det[j].block > det[top[i].pair].block))
				top[i].pair = (int64_t)j;
		}
		if (top[i].pair >= 0)
			out->nr_pairs++;
	}
	/* an empty leaf pairs only with an empty details tree */
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < nt; i++) {
		int is_empty = !top[i].devs.n && !top[i].sm.holes;
		if (is_empty && top[i].pair < 0)
			continue;	/* an empty device's tree, most likely */
		if (best == SIZE_MAX || rank(&top[i], &top[best], det, avoid_top) < 0)
			best = i;
	}
	out->nr_candidates = nt;
	if (best != SIZE_MAX) {
		out->mapping_root = top[best].block;
		out->highest_data = top[best].sm.highest;
		out->age = top[best].sm.max_time;
		if (top[best].pair >= 0) {
			struct cand *d = &det[top[best].pair];
			out->details_root = d->block;
			out->max_tid = d->max_tid;
			if (d->age > out->age)
				out->age = d->age;
		}
	}
out:
	if (r == -ENOMEM)
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	free(x.sum);
	free(referenced);
	if (top)
		free_cands(top, nt);
	if (det)
		free_cands(det, nd);
	return r;
}
