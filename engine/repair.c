/*
 * repair.c - the salvager: which roots, which holes, which orphans fill
 * them, which devices survive, and the superblock values to write.  See
 * include/thinmeta/repair.h for the rules; repair_int.h for the parts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repair_int.h"
#include "thinmeta/btree.h"

#define ADOPT_ROUNDS 16

struct salv {
	struct tm_salvage *s;
	struct tm_bm *bm;
	struct tm_error *e;
	struct tm_repair_report *rep;
	struct walker *w;
	struct scan scan;
	int scanned;

	struct tm_superblock live;
	int live_ok;
	struct tm_superblock snap;	/* the metadata snapshot's superblock copy */
	int snap_ok;
	uint64_t snap_block;
	int snap_held;			/* named by the intact live superblock */

	uint64_t mapping_root, details_root;
	uint32_t pool_time;		/* mapping times must not be later */
	int pool_time_known;

	struct top_entry *snap_top;	/* the snapshot's devices and roots */
	size_t nr_snap_top;
	struct det_entry *snap_det;
	size_t nr_snap_det;

	struct u64map root_list;	/* bottom root -> list index */
	struct u64vec assigned;		/* dev ids whose root was matched (step 4) */
};

static int nomem(struct salv *x)
{
	return tm_fail(x->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
}

const char *tm_repair_src_name(enum tm_repair_src src)
{
	switch (src) {
	case TM_SRC_SUPERBLOCK:
		return "superblock";
	case TM_SRC_OPTION:
		return "option";
	case TM_SRC_SNAPSHOT_COPY:
		return "metadata snapshot's superblock copy";
	case TM_SRC_GUESS:
		return "guessed";
	default:
		return "unknown";
	}
}

/* ------------------------------------------------------------------ */
/* Superblocks */

static int read_sb(struct tm_bm *bm, uint64_t b, struct tm_superblock *sb, int copy,
		   struct tm_error *e)
{
	int r = tm_sb_read(bm, b, sb, e);

	return r ? r : tm_sb_check_fields(sb, tm_bm_nr_blocks(bm), copy, e);
}

static int dbs_valid(uint32_t v)
{
	return v >= TM_DATA_BLOCK_SIZE_MIN && v <= TM_DATA_BLOCK_SIZE_MAX &&
	       v % TM_DATA_BLOCK_SIZE_MIN == 0;
}

static void read_live(struct salv *x)
{
	struct tm_error err;

	tm_error_clear(&err);
	if (read_sb(x->bm, 0, &x->live, 0, &err) == 0 && dbs_valid(x->live.data_block_size)) {
		x->live_ok = 1;
		x->rep->sb_intact = 1;
		return;
	}
	if (!err.err)
		tm_fail(&err, -EUCLEAN, TM_RULE_BAD_VALUE, 0,
			"superblock has data block size %u sectors",
			x->live.data_block_size);
	x->rep->sb_rule = err.rule;
	snprintf(x->rep->sb_msg, sizeof(x->rep->sb_msg), "%s", err.msg);

	/* what a damaged one still says, as hints for the message */
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_superblock raw;
	if (tm_dev_read(tm_bm_dev(x->bm), 0, 1, buf) == 0) {
		tm_sb_decode(buf, &raw);
		if (raw.magic == TM_SB_MAGIC && dbs_valid(raw.data_block_size)) {
			x->rep->sb_legible = 1;
			x->rep->sb_hint_data_block_size = raw.data_block_size;
			x->rep->sb_hint_transaction_id = raw.trans_id;
			x->rep->sb_hint_nr_data_blocks = raw.data_sm.nr_blocks;
		}
	}
}

/* The newest intact superblock copy the scan found (a metadata snapshot's). */
static void find_snap_copy(struct salv *x)
{
	for (size_t i = 0; i < x->scan.sb_copies.n; i++) {
		struct tm_superblock sb;
		struct tm_error tmp;
		uint64_t b = x->scan.sb_copies.v[i];
		if (read_sb(x->bm, b, &sb, 1, &tmp) || !dbs_valid(sb.data_block_size))
			continue;
		if (!x->snap_ok || sb.trans_id > x->snap.trans_id ||
		    (sb.trans_id == x->snap.trans_id && sb.time > x->snap.time)) {
			x->snap = sb;
			x->snap_ok = 1;
			x->snap_block = b;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The metadata snapshot's devices (only as evidence; never its mappings) */

struct kv {
	struct salv *x;
	int details;
};

static int snap_leaf(void *ctx, const struct tm_node *n)
{
	struct kv *k = ctx;
	struct salv *x = k->x;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		if (k->details) {
			struct det_entry *d = realloc(x->snap_det, (x->nr_snap_det + 1) * sizeof(*d));
			if (!d)
				return -ENOMEM;
			x->snap_det = d;
			d[x->nr_snap_det].dev_id = tm_node_key(n, i);
			tm_details_decode(tm_node_value(n, i), &d[x->nr_snap_det].d);
			x->nr_snap_det++;
		} else {
			struct top_entry *t = realloc(x->snap_top, (x->nr_snap_top + 1) * sizeof(*t));
			if (!t)
				return -ENOMEM;
			x->snap_top = t;
			t[x->nr_snap_top].dev_id = tm_node_key(n, i);
			t[x->nr_snap_top].root = tm_node_value64(n, i);
			x->nr_snap_top++;
		}
	}
	return 0;
}

static void read_snap_devices(struct salv *x)
{
	struct tm_error tmp;
	struct kv k = { x, 0 };

	if (!x->snap_held)
		return;
	if (tm_btree_walk(x->bm, x->snap.mapping_root, TM_VSIZE_U64, snap_leaf, &k, &tmp)) {
		free(x->snap_top);
		x->snap_top = NULL;
		x->nr_snap_top = 0;
	}
	k.details = 1;
	if (tm_btree_walk(x->bm, x->snap.details_root, TM_VSIZE_DETAILS, snap_leaf, &k, &tmp)) {
		free(x->snap_det);
		x->snap_det = NULL;
		x->nr_snap_det = 0;
	}
}

/* ------------------------------------------------------------------ */
/* Scanning and counts, when something is damaged */

static int need_scan(struct salv *x)
{
	int r;

	if (x->scanned)
		return 0;
	if ((r = scan_run(x->bm, &x->scan, x->e)))
		return r;
	scan_classify(&x->scan);
	x->scanned = 1;
	x->rep->scanned = 1;
	x->rep->nr_io_errors = x->scan.nr_io_errors;
	x->rep->nr_nodes_found = x->scan.nr_nodes;
	if (!x->live_ok)
		return 0;

	/* the metadata space map can vouch for orphans only with an intact superblock */
	uint64_t refs[8];
	uint8_t kinds[8];
	size_t n = 0;
	refs[n] = x->live.mapping_root;
	kinds[n++] = RK_TOP;
	refs[n] = x->live.details_root;
	kinds[n++] = RK_DETAILS;
	refs[n] = x->live.meta_sm.ref_count_root;
	kinds[n++] = RK_OTHER;
	refs[n] = x->live.data_sm.bitmap_root;
	kinds[n++] = RK_OTHER;
	refs[n] = x->live.data_sm.ref_count_root;
	kinds[n++] = RK_OTHER;
	if (x->snap_held) {
		refs[n] = x->snap.mapping_root;
		kinds[n++] = RK_TOP;
		refs[n] = x->snap.details_root;
		kinds[n++] = RK_DETAILS;
	}
	struct tm_error err;
	tm_error_clear(&err);
	r = scan_load_counts(x->bm, &x->scan, &x->live.meta_sm, refs, kinds, n, &err);
	if (r == -ENOMEM)
		return nomem(x);
	if (r)
		snprintf(x->rep->sm_msg, sizeof(x->rep->sm_msg), "%s", err.msg);
	else
		x->rep->sm_usable = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Filling holes */

static int kind_fits(enum tree t, const struct snode *n)
{
	switch (t) {
	case TREE_BOTTOM:
		return n->kind == RK_BOTTOM;
	case TREE_TOP:
		return n->kind == RK_TOP;
	default:
		return n->kind == RK_DETAILS;
	}
}

static uint32_t subtree_max_time(const struct scan *s, const struct snode *n, int depth)
{
	uint32_t t = 0;

	if (n->leaf || depth > TM_BTREE_MAX_DEPTH)
		return n->max_time;
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		const struct snode *c = scan_find(s, s->children.v[n->child_off + i]);
		if (c) {
			uint32_t ct = subtree_max_time(s, c, depth + 1);
			if (ct > t)
				t = ct;
		}
	}
	return t;
}

static int hole_height(const struct hole *h)
{
	return h->leaf_depth >= 0 ? h->leaf_depth - h->depth : -1;
}

static int fits(const struct salv *x, const struct hole *h, const struct snode *n)
{
	int hh = hole_height(h);

	if (!kind_fits((enum tree)h->tree, n) || !n->nr_entries || n->block == h->block)
		return 0;
	if (n->key_lo < h->lo || n->key_hi > h->hi)
		return 0;
	if (hh > 0 && n->height != hh - 1)
		return 0;
	if (hh == 0)
		return 0;
	if (h->tree == TREE_BOTTOM && x->pool_time_known &&
	    subtree_max_time(&x->scan, n, 0) > x->pool_time)
		return 0;
	return 1;
}

struct fit {
	size_t hole;
	struct snode *n;
};

static int cmp_fit(const void *a, const void *b)
{
	const struct fit *p = a, *q = b;

	if (p->hole != q->hole)
		return p->hole < q->hole ? -1 : 1;
	return p->n->key_lo < q->n->key_lo ? -1 : (p->n->key_lo > q->n->key_lo);
}

static int adopt_tree(struct salv *x, enum tree t)
{
	struct walker *w = x->w;
	struct u64vec cands = { 0 };
	struct fit *fitv = NULL;
	size_t nfit = 0, capfit = 0;
	int r = 0;

	for (int round = 0; round < ADOPT_ROUNDS; round++) {
		size_t first = SIZE_MAX;
		for (size_t i = 0; i < w->nr_holes; i++)
			if (w->holes[i].tree == t && !w->holes[i].tried) {
				if (first == SIZE_MAX)
					first = i;
				w->holes[i].tried = 1;
			}
		if (first == SIZE_MAX)
			break;
		size_t end = w->nr_holes;

		/* orphans the space map vouches for */
		cands.n = 0;
		for (size_t i = 0; i < x->scan.nr_nodes; i++)
			if (snode_missing(&x->scan.nodes[i]) && kind_fits(t, &x->scan.nodes[i]) &&
			    u64vec_push(&cands, i)) {
				r = nomem(x);
				goto out;
			}
		nfit = 0;
		for (size_t c = 0; c < cands.n; c++) {
			struct snode *n = &x->scan.nodes[cands.v[c]];
			size_t nf = 0, distinct = 0;
			uint64_t last_block = UINT64_MAX;
			for (size_t i = first; i < end; i++) {
				struct hole *h = &w->holes[i];
				if (h->tree != t || !fits(x, h, n))
					continue;
				nf++;
				if (h->block != last_block)
					distinct++;
				last_block = h->block;
			}
			if (!nf)
				continue;
			/* lost parents elsewhere (the snapshot's, ...) may claim it too */
			size_t others = scan_claimants(&x->scan, n, t == TREE_BOTTOM ? RK_BOTTOM :
							 t == TREE_TOP ? RK_TOP : RK_DETAILS);
			if (distinct > snode_missing(n) || others > snode_missing(n)) {
				x->rep->nr_unclaimed++;	/* more owners than references */
				continue;
			}
			for (size_t i = first; i < end; i++) {
				struct hole *h = &w->holes[i];
				if (h->tree != t || !fits(x, h, n))
					continue;
				if (nfit == capfit) {
					capfit = capfit ? capfit * 2 : 64;
					struct fit *nv = realloc(fitv, capfit * sizeof(*nv));
					if (!nv) {
						r = nomem(x);
						goto out;
					}
					fitv = nv;
				}
				fitv[nfit].hole = i;
				fitv[nfit].n = n;
				nfit++;
			}
			n->claims += (uint32_t)distinct;
		}
		if (nfit)
			qsort(fitv, nfit, sizeof(*fitv), cmp_fit);

		for (size_t a = 0; a < nfit;) {
			size_t b = a;
			while (b < nfit && fitv[b].hole == fitv[a].hole)
				b++;
			size_t hi = fitv[a].hole;
			/* one height, no overlap: else nobody gets this hole */
			int ok = 1;
			for (size_t k = a; k < b; k++) {
				if (fitv[k].n->height != fitv[a].n->height)
					ok = 0;
				if (k + 1 < b && fitv[k].n->key_hi >= fitv[k + 1].n->key_lo)
					ok = 0;
			}
			if (!ok) {
				x->rep->nr_unclaimed += b - a;
				a = b;
				continue;
			}
			size_t sub = SIZE_MAX;
			if (t == TREE_BOTTOM && (r = walker_new_list(w, &sub)))
				goto out;
			for (size_t k = a; k < b; k++) {
				struct hole h = w->holes[hi];	/* the array may move */
				w->cur_dev = h.dev;
				uint64_t lo = k == a ? h.lo : fitv[k].n->key_lo;
				uint64_t up = k + 1 < b ? fitv[k + 1].n->key_lo - 1 : h.hi;
				r = walker_walk(w, t, fitv[k].n->block, lo, up, h.depth + 1,
						h.leaf_depth, sub);
				if (r)
					goto out;
				x->rep->nr_adopted++;
			}
			w->holes[hi].filled = 1;
			w->holes[hi].sub = sub;
			w->holes[hi].nr_adopted = b - a;
			a = b;
		}
	}
out:
	u64vec_free(&cands);
	free(fitv);
	return r;
}

/* ------------------------------------------------------------------ */
/* Devices */

static int cmp_top(const void *a, const void *b)
{
	const struct top_entry *p = a, *q = b;

	return p->dev_id < q->dev_id ? -1 : (p->dev_id > q->dev_id);
}

static int cmp_det(const void *a, const void *b)
{
	const struct det_entry *p = a, *q = b;

	return p->dev_id < q->dev_id ? -1 : (p->dev_id > q->dev_id);
}

static const struct top_entry *find_top(const struct top_entry *t, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid].dev_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && t[lo].dev_id == id ? &t[lo] : NULL;
}

static const struct det_entry *find_det(const struct det_entry *d, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d[mid].dev_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && d[lo].dev_id == id ? &d[lo] : NULL;
}

/* The bottom list of @root, walked once for all devices sharing it. */
static int list_of_root(struct salv *x, uint64_t root, size_t *list)
{
	uint64_t v;
	int r;

	if (u64map_get(&x->root_list, root, &v) == 0) {
		*list = (size_t)v;
		return 0;
	}
	if ((r = walker_new_list(x->w, list)))
		return r;
	if ((r = walker_walk(x->w, TREE_BOTTOM, root, 0, UINT64_MAX, 0, -1, *list)))
		return r;
	if (u64map_put(&x->root_list, root, *list))
		return nomem(x);
	return 0;
}

static void sort_unique(struct salv *x)
{
	struct walker *w = x->w;
	size_t k = 0;

	if (w->nr_top)
		qsort(w->top, w->nr_top, sizeof(*w->top), cmp_top);
	for (size_t i = 0; i < w->nr_top; i++)
		if (!k || w->top[k - 1].dev_id != w->top[i].dev_id)
			w->top[k++] = w->top[i];
	w->nr_top = k;
	k = 0;
	if (w->nr_det)
		qsort(w->det, w->nr_det, sizeof(*w->det), cmp_det);
	for (size_t i = 0; i < w->nr_det; i++)
		if (!k || w->det[k - 1].dev_id != w->det[i].dev_id)
			w->det[k++] = w->det[i];
	w->nr_det = k;
}

/* The number of mappings a bottom list holds; *@complete if it has no open hole. */
static uint64_t list_mappings(struct walker *w, size_t list, int *complete, int depth)
{
	const struct u64vec *l = &w->lists[list];
	uint64_t n = 0;

	for (size_t i = 0; i < l->n; i++) {
		uint64_t x = l->v[i], idx;
		if (x & HOLE_BIT) {
			const struct hole *h = &w->holes[x & ~HOLE_BIT];
			if (h->filled && h->sub != SIZE_MAX && depth < ADOPT_ROUNDS + 2)
				n += list_mappings(w, h->sub, complete, depth + 1);
			else
				*complete = 0;
			continue;
		}
		if (u64map_get(&w->leaf_idx, x, &idx) == 0)
			n += w->leaves[idx].nr_entries;
	}
	return n;
}

struct rootc {
	struct snode *n;
	size_t list;
	uint64_t mappings;
	int complete;
	uint32_t left;		/* references not yet given to a device */
	uint32_t given;		/* devices it was given to */
};

static int in_lost_range(struct walker *w, uint64_t id)
{
	for (size_t i = 0; i < w->nr_holes; i++) {
		const struct hole *h = &w->holes[i];
		if (h->tree == TREE_TOP && !h->filled && id >= h->lo && id <= h->hi)
			return 1;
	}
	return 0;
}

static int give_root(struct salv *x, uint64_t dev_id, struct rootc *rc)
{
	struct walker *w = x->w;

	if (w->nr_top == w->cap_top) {
		size_t ncap = w->cap_top ? w->cap_top * 2 : 16;
		struct top_entry *t = realloc(w->top, ncap * sizeof(*t));
		if (!t)
			return nomem(x);
		w->top = t;
		w->cap_top = ncap;
	}
	w->top[w->nr_top].dev_id = dev_id;
	w->top[w->nr_top].root = rc->n->block;
	w->nr_top++;
	if (u64map_put(&x->root_list, rc->n->block, rc->list) ||
	    u64vec_push(&x->assigned, dev_id))
		return nomem(x);
	if (rc->left)
		rc->left--;
	rc->given++;
	rc->n->claims++;
	return 0;
}

/*
 * Step 4: a lost top-level leaf.  The orphaned device trees the space map
 * vouches for are matched to the devices of the lost key ranges, by the
 * metadata snapshot's top level or by their number of mappings; devices
 * that cannot be told apart are left out.
 */
static int assign_roots(struct salv *x)
{
	struct walker *w = x->w;
	struct rootc *rc = NULL;
	size_t nrc = 0;
	int any = 0, r = 0;

	for (size_t i = 0; i < w->nr_holes; i++)
		if (w->holes[i].tree == TREE_TOP && !w->holes[i].filled)
			any = 1;
	if (!any || !x->scanned || !x->scan.have_counts)
		return 0;
	sort_unique(x);

	rc = calloc(x->scan.nr_nodes ? x->scan.nr_nodes : 1, sizeof(*rc));
	if (!rc)
		return nomem(x);
	for (size_t i = 0; i < x->scan.nr_nodes; i++) {
		struct snode *n = &x->scan.nodes[i];
		if (!snode_missing(n) || (n->kind != RK_BOTTOM && n->kind != RK_EMPTY8))
			continue;
		if (x->pool_time_known && subtree_max_time(&x->scan, n, 0) > x->pool_time)
			continue;
		/* it may be the child of a lost node inside a device's tree instead */
		if (scan_claimants(&x->scan, n, RK_BOTTOM))
			continue;
		rc[nrc].n = n;
		rc[nrc].left = snode_missing(n);
		rc[nrc].complete = 1;
		if ((r = walker_new_list(w, &rc[nrc].list)) ||
		    (r = walker_walk(w, TREE_BOTTOM, n->block, 0, UINT64_MAX, 0, -1, rc[nrc].list)))
			goto out;
		nrc++;
	}
	for (size_t i = 0; i < nrc; i++)
		rc[i].mappings = list_mappings(w, rc[i].list, &rc[i].complete, 0);

	/* the devices whose tree is lost */
	struct u64vec lost = { 0 };
	for (size_t i = 0; i < w->nr_det; i++)
		if (!find_top(w->top, w->nr_top, w->det[i].dev_id) &&
		    in_lost_range(w, w->det[i].dev_id) && u64vec_push(&lost, i)) {
			u64vec_free(&lost);
			r = nomem(x);
			goto out;
		}

	/* by the metadata snapshot: it names the same tree for the device */
	for (size_t k = 0; k < lost.n; k++) {
		const struct det_entry *d = &w->det[lost.v[k]];
		const struct top_entry *st = find_top(x->snap_top, x->nr_snap_top, d->dev_id);
		if (!st)
			continue;
		for (size_t i = 0; i < nrc; i++)
			if (rc[i].n->block == st->root && rc[i].left) {
				if ((r = give_root(x, d->dev_id, &rc[i])))
					goto out_lost;
				lost.v[k] = SIZE_MAX;
				break;
			}
	}
	/* by the number of mappings */
	for (size_t k = 0; k < lost.n; k++) {
		if (lost.v[k] == SIZE_MAX)
			continue;
		uint64_t want = w->det[lost.v[k]].d.mapped_blocks;
		size_t ndev = 0, nroot = 0, which = SIZE_MAX;
		uint32_t refs = 0;
		for (size_t j = 0; j < lost.n; j++)
			if (lost.v[j] != SIZE_MAX && w->det[lost.v[j]].d.mapped_blocks == want)
				ndev++;
		for (size_t i = 0; i < nrc; i++)
			if (rc[i].left && rc[i].complete && rc[i].mappings == want) {
				nroot++;
				which = i;
				refs += rc[i].left;
			}
		int ok = nroot == 1 && refs >= ndev;		/* one tree, shared by all */
		int empties = want == 0 && nroot >= ndev;	/* empty trees: any will do */
		if (!ok && !empties)
			continue;
		for (size_t j = 0; j < lost.n; j++) {
			if (lost.v[j] == SIZE_MAX || w->det[lost.v[j]].d.mapped_blocks != want)
				continue;
			if (empties && !ok) {
				for (which = 0; which < nrc; which++)
					if (rc[which].left && rc[which].complete &&
					    rc[which].mappings == 0)
						break;
			}
			if ((r = give_root(x, w->det[lost.v[j]].dev_id, &rc[which])))
				goto out_lost;
			lost.v[j] = SIZE_MAX;
		}
	}
	for (size_t i = 0; i < nrc; i++)
		if (!rc[i].given)
			x->rep->nr_orphan_trees++;
out_lost:
	u64vec_free(&lost);
out:
	free(rc);
	return r;
}

static int add_loss(struct sdev *d, uint64_t lo, uint64_t hi, uint64_t block, enum tm_rule why)
{
	if (d->nr_losses == d->cap_losses) {
		size_t ncap = d->cap_losses ? d->cap_losses * 2 : 4;
		struct tm_repair_loss *l = realloc(d->losses, ncap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		d->losses = l;
		d->cap_losses = ncap;
	}
	d->losses[d->nr_losses++] = (struct tm_repair_loss){ lo, hi, block, why };
	return 0;
}

struct flat {
	uint64_t *v;
	size_t n, cap;
};

static int flatten(struct walker *w, size_t list, struct flat *f, struct sdev *d, int depth)
{
	const struct u64vec *l = &w->lists[list];

	for (size_t i = 0; i < l->n; i++) {
		uint64_t e = l->v[i];
		if (e & HOLE_BIT) {
			const struct hole *h = &w->holes[e & ~HOLE_BIT];
			if (h->filled && h->sub != SIZE_MAX && depth < ADOPT_ROUNDS + 2) {
				if (flatten(w, h->sub, f, d, depth + 1))
					return -ENOMEM;
			} else if (add_loss(d, h->lo, h->hi, h->block, (enum tm_rule)h->why)) {
				return -ENOMEM;
			}
			continue;
		}
		if (f->n == f->cap) {
			size_t ncap = f->cap ? f->cap * 2 : 16;
			uint64_t *nv = realloc(f->v, ncap * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			f->v = nv;
			f->cap = ncap;
		}
		f->v[f->n++] = e;
	}
	return 0;
}

static int build_devices(struct salv *x)
{
	struct walker *w = x->w;
	struct tm_salvage *s = x->s;
	size_t cap;

	sort_unique(x);
	cap = w->nr_top + w->nr_det;
	s->devs = calloc(cap ? cap : 1, sizeof(*s->devs));
	if (!s->devs)
		return nomem(x);
	size_t i = 0, j = 0;
	while (i < w->nr_top || j < w->nr_det) {
		struct sdev *d = &s->devs[s->nr_devs++];
		d->list = SIZE_MAX;
		if (j >= w->nr_det || (i < w->nr_top && w->top[i].dev_id < w->det[j].dev_id)) {
			d->dev_id = w->top[i].dev_id;
			d->root = w->top[i++].root;
		} else if (i >= w->nr_top || w->det[j].dev_id < w->top[i].dev_id) {
			d->dev_id = w->det[j].dev_id;
			d->d = w->det[j++].d;
			d->have_details = 1;
			d->left_out = 1;	/* no tree for it */
		} else {
			d->dev_id = w->top[i].dev_id;
			d->root = w->top[i++].root;
			d->d = w->det[j++].d;
			d->have_details = 1;
		}
		for (size_t k = 0; k < x->assigned.n; k++)
			if (x->assigned.v[k] == d->dev_id)
				d->root_assigned = 1;
		if (!d->left_out) {
			uint64_t v;
			if (u64map_get(&x->root_list, d->root, &v))
				return tm_fail(x->e, -EINVAL, TM_RULE_ARG, d->root,
					       "device %" PRIu64 ": its tree was not walked", d->dev_id);
			d->list = (size_t)v;
		}
	}
	for (size_t k = 0; k < s->nr_devs; k++) {
		struct sdev *d = &s->devs[k];
		struct flat f = { 0 };
		if (d->left_out)
			continue;
		if (flatten(w, d->list, &f, d, 0)) {
			free(f.v);
			return nomem(x);
		}
		d->leaves = f.v;
		d->nr_leaves = f.n;
		for (size_t q = 0; q < f.n; q++) {
			uint64_t idx;
			if (u64map_get(&w->leaf_idx, f.v[q], &idx) == 0)
				d->recovered += w->leaves[idx].nr_entries;
		}
	}
	return 0;
}

/* Mappings of @d at or past @nr data blocks (rare: read the leaves again). */
static int count_beyond(struct salv *x, struct sdev *d, uint64_t nr)
{
	uint8_t buf[TM_BLOCK_SIZE];

	for (size_t q = 0; q < d->nr_leaves; q++) {
		uint64_t idx;
		struct tm_error tmp;
		struct tm_node n;
		if (u64map_get(&x->w->leaf_idx, d->leaves[q], &idx) ||
		    x->w->leaves[idx].max_data < nr)
			continue;
		if (tm_bm_read(x->bm, d->leaves[q], &tm_node_validator, buf, &tmp))
			continue;
		tm_node_view(buf, d->leaves[q], &n);
		for (uint32_t i = 0; i < n.nr_entries; i++)
			if (tm_bt_block(tm_node_value64(&n, i)) >= nr)
				d->dropped++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Superblock values */

static int set_values(struct salv *x)
{
	struct tm_salvage *s = x->s;
	struct tm_repair_report *rep = x->rep;
	const struct tm_repair_opts *o = &s->opts;
	struct walker *w = x->w;
	uint64_t highest = 0, max_tid = 0;
	uint32_t age = 0;
	int any_mapping = 0;

	for (size_t k = 0; k < s->nr_devs; k++) {
		struct sdev *d = &s->devs[k];
		if (d->left_out)
			continue;
		for (size_t q = 0; q < d->nr_leaves; q++) {
			uint64_t idx;
			if (u64map_get(&w->leaf_idx, d->leaves[q], &idx))
				continue;
			if (w->leaves[idx].nr_entries) {
				any_mapping = 1;
				if (w->leaves[idx].max_data > highest)
					highest = w->leaves[idx].max_data;
			}
			if (w->leaves[idx].max_time > age)
				age = w->leaves[idx].max_time;
		}
		if (d->have_details) {
			if (d->d.transaction_id > max_tid)
				max_tid = d->d.transaction_id;
			if (d->d.creation_time > age)
				age = d->d.creation_time;
			if (d->d.snapshotted_time > age)
				age = d->d.snapshotted_time;
		}
	}

	memset(&s->sb, 0, sizeof(s->sb));
	s->sb.version = 2;
	if (x->live_ok) {
		s->sb = x->live;
		rep->data_block_size = (struct tm_repair_value){ x->live.data_block_size, TM_SRC_SUPERBLOCK };
		rep->transaction_id = (struct tm_repair_value){ x->live.trans_id, TM_SRC_SUPERBLOCK };
		rep->nr_data_blocks = (struct tm_repair_value){ x->live.data_sm.nr_blocks, TM_SRC_SUPERBLOCK };
		rep->time = (struct tm_repair_value){ x->live.time, TM_SRC_SUPERBLOCK };
	} else {
		/* what can be known without it */
		uint64_t tid = any_mapping || s->nr_devs ? max_tid + 1 : 0;
		enum tm_repair_src tsrc = TM_SRC_GUESS;
		uint32_t t = age;
		enum tm_repair_src timesrc = TM_SRC_GUESS;
		if (x->snap_ok) {
			memcpy(s->sb.uuid, x->snap.uuid, sizeof(s->sb.uuid));
			rep->data_block_size = (struct tm_repair_value){ x->snap.data_block_size,
									 TM_SRC_SNAPSHOT_COPY };
			if (x->snap.trans_id >= tid) {
				tid = x->snap.trans_id;
				tsrc = TM_SRC_SNAPSHOT_COPY;
			}
			if (x->snap.time >= t) {
				t = x->snap.time;
				timesrc = TM_SRC_SNAPSHOT_COPY;
			}
		} else {
			rep->data_block_size = (struct tm_repair_value){ 0, TM_SRC_NONE };
		}
		rep->transaction_id = (struct tm_repair_value){ tid, tsrc };
		rep->nr_data_blocks = (struct tm_repair_value){ any_mapping ? highest + 1 : 0,
								TM_SRC_GUESS };
		rep->time = (struct tm_repair_value){ t, timesrc };
	}
	if (o->set_data_block_size)
		rep->data_block_size = (struct tm_repair_value){ o->data_block_size, TM_SRC_OPTION };
	/* 1.1.0's rule: the larger of the option and what the metadata says */
	if (o->set_transaction_id && o->transaction_id >= rep->transaction_id.value)
		rep->transaction_id = (struct tm_repair_value){ o->transaction_id, TM_SRC_OPTION };
	if (o->set_nr_data_blocks && o->nr_data_blocks >= rep->nr_data_blocks.value)
		rep->nr_data_blocks = (struct tm_repair_value){ o->nr_data_blocks, TM_SRC_OPTION };

	/* mappings past the data device are dropped */
	s->nr_data_blocks = rep->nr_data_blocks.value;
	for (size_t k = 0; k < s->nr_devs; k++) {
		struct sdev *d = &s->devs[k];
		if (d->left_out)
			continue;
		count_beyond(x, d, s->nr_data_blocks);
		d->recovered -= d->dropped;
	}

	/*
	 * Devices with made-up details: every mapping they have must look
	 * shared (snapshot time after its time), and the pool's time must not
	 * be before that, so that new writes are not.
	 */
	uint32_t t = (uint32_t)rep->time.value;
	int rebuilt = 0;
	for (size_t k = 0; k < s->nr_devs; k++)
		if (!s->devs[k].left_out && !s->devs[k].have_details)
			rebuilt = 1;
	if (rebuilt) {
		uint64_t nt = (uint64_t)(age > t ? age : t) + 1;
		if (nt > TM_TIME_MASK)
			nt = TM_TIME_MASK;
		t = (uint32_t)nt;
		rep->time.value = t;
		rep->time.src = TM_SRC_GUESS;
	}
	for (size_t k = 0; k < s->nr_devs; k++) {
		struct sdev *d = &s->devs[k];
		if (d->left_out || d->have_details)
			continue;
		const struct det_entry *sd = find_det(x->snap_det, x->nr_snap_det, d->dev_id);
		d->details_rebuilt = 1;
		d->d.mapped_blocks = d->recovered;
		d->d.transaction_id = sd ? sd->d.transaction_id
					 : (rep->transaction_id.value ? rep->transaction_id.value - 1 : 0);
		d->d.creation_time = sd ? sd->d.creation_time : t;
		d->d.snapshotted_time = t;
	}

	s->sb.time = (uint32_t)rep->time.value;
	s->sb.trans_id = rep->transaction_id.value;
	s->sb.data_block_size = (uint32_t)rep->data_block_size.value;
	s->sb.data_sm.nr_blocks = rep->nr_data_blocks.value;
	s->sb.held_root = 0;
	if (!x->live_ok)
		s->sb.flags = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The report */

static const char *tree_name(enum tree t)
{
	switch (t) {
	case TREE_DETAILS:
		return "device details tree";
	case TREE_TOP:
		return "mapping tree (top level)";
	default:
		return "mapping tree";
	}
}

static int fill_report(struct salv *x)
{
	struct tm_salvage *s = x->s;
	struct tm_repair_report *rep = x->rep;
	struct walker *w = x->w;

	rep->devs = calloc(s->nr_devs ? s->nr_devs : 1, sizeof(*rep->devs));
	rep->bad = calloc(w->nr_holes ? w->nr_holes : 1, sizeof(*rep->bad));
	if (!rep->devs || !rep->bad)
		return nomem(x);
	for (size_t k = 0; k < s->nr_devs; k++) {
		struct sdev *d = &s->devs[k];
		struct tm_repair_dev *rd = &rep->devs[k];
		rd->dev_id = d->dev_id;
		rd->have_details = d->have_details;
		rd->details_rebuilt = d->details_rebuilt;
		rd->root_assigned = d->root_assigned;
		rd->mapped_blocks = d->have_details ? d->d.mapped_blocks : 0;
		rd->recovered = d->recovered;
		rd->dropped = d->dropped;
		rd->losses = d->losses;
		rd->nr_losses = d->nr_losses;
		if (d->left_out)
			rd->state = TM_DEV_LEFT_OUT;
		else if (d->nr_losses || d->dropped || d->details_rebuilt ||
			 (d->have_details && d->recovered != d->d.mapped_blocks))
			rd->state = TM_DEV_DAMAGED;
		else
			rd->state = TM_DEV_INTACT;
		if (!d->left_out)
			rep->total_recovered += d->recovered;
		if (d->have_details)
			rep->total_expected += d->d.mapped_blocks;
	}
	rep->nr_devs = s->nr_devs;

	/* each unusable node once, where it was first met */
	for (size_t i = 0; i < w->nr_holes; i++) {
		const struct hole *h = &w->holes[i];
		int dup = 0;
		for (size_t k = 0; k < rep->nr_bad && !dup; k++)
			dup = rep->bad[k].block == h->block;
		if (dup)
			continue;
		struct tm_repair_bad *b = &rep->bad[rep->nr_bad++];
		b->block = h->block;
		b->why = (enum tm_rule)h->why;
		if (h->tree != TREE_BOTTOM) {
			snprintf(b->where, sizeof(b->where), "%s", tree_name((enum tree)h->tree));
			continue;
		}
		if (h->dev == UINT64_MAX)
			snprintf(b->where, sizeof(b->where), "an orphaned device tree");
		else
			snprintf(b->where, sizeof(b->where), "device %" PRIu64 " mapping tree",
				 h->dev);
	}
	return 0;
}

/* ------------------------------------------------------------------ */

static void salv_free(struct salv *x)
{
	if (x->scanned)
		scan_free(&x->scan);
	free(x->snap_top);
	free(x->snap_det);
	u64map_free(&x->root_list);
	u64vec_free(&x->assigned);
	if (x->w) {
		walker_free(x->w);
		free(x->w);
	}
}

static int open_holes(const struct walker *w)
{
	for (size_t i = 0; i < w->nr_holes; i++)
		if (!w->holes[i].tried)
			return 1;
	return 0;
}

static int run(struct salv *x)
{
	struct tm_repair_report *rep = x->rep;
	struct walker *w = x->w;
	int r;

	read_live(x);
	if (x->live_ok) {
		x->mapping_root = x->live.mapping_root;
		x->details_root = x->live.details_root;
		x->pool_time = x->live.time;
		x->pool_time_known = 1;
		if (x->live.held_root) {
			struct tm_error tmp;
			if (read_sb(x->bm, x->live.held_root, &x->snap, 1, &tmp) == 0) {
				x->snap_ok = x->snap_held = 1;
				x->snap_block = x->live.held_root;
				rep->snap_block = x->snap_block;
			}
		}
	}
	if (!x->live_ok || x->s->opts.force_scan)
		if ((r = need_scan(x)))
			return r;
	if (!x->live_ok) {
		struct root_choice c;
		find_snap_copy(x);
		r = roots_choose(x->bm, &x->scan, x->snap_ok ? x->snap.mapping_root : 0, &c, x->e);
		if (r)
			return r;
		rep->roots_searched = 1;
		rep->nr_root_candidates = c.nr_candidates;
		rep->nr_pairs = c.nr_pairs;
		if (!c.mapping_root)
			return tm_fail(x->e, -ENODATA, TM_RULE_NONE, TM_NO_BLOCK,
				       "the superblock is unusable and the scan of %" PRIu64
				       " blocks found no mapping tree to start from",
				       x->scan.nr_blocks);
		x->mapping_root = c.mapping_root;
		x->details_root = c.details_root;
		rep->details_missing = !c.details_root;
	}
	rep->mapping_root = x->mapping_root;
	rep->details_root = x->details_root;

	/* the device details tree and the top level */
	if (x->details_root &&
	    (r = walker_walk(w, TREE_DETAILS, x->details_root, 0, UINT64_MAX, 0, -1, 0)))
		return r;
	if ((r = walker_walk(w, TREE_TOP, x->mapping_root, 0, UINT64_MAX, 0, -1, 0)))
		return r;
	if (open_holes(w)) {
		if ((r = need_scan(x)))
			return r;
		if (x->scan.have_counts &&
		    ((r = adopt_tree(x, TREE_DETAILS)) || (r = adopt_tree(x, TREE_TOP))))
			return r;
	}
	read_snap_devices(x);

	/* each device's tree */
	sort_unique(x);
	for (size_t i = 0; i < w->nr_top; i++) {
		size_t l;
		w->cur_dev = w->top[i].dev_id;
		if ((r = list_of_root(x, w->top[i].root, &l)))
			return r;
	}
	w->cur_dev = UINT64_MAX;
	if (open_holes(w)) {
		if ((r = need_scan(x)))
			return r;
		if (x->scan.have_counts && (r = adopt_tree(x, TREE_BOTTOM)))
			return r;
	}
	if ((r = assign_roots(x)))
		return r;
	if (open_holes(w) && x->scan.have_counts && (r = adopt_tree(x, TREE_BOTTOM)))
		return r;

	if ((r = build_devices(x)) || (r = set_values(x)) || (r = fill_report(x)))
		return r;

	if (rep->data_block_size.src == TM_SRC_NONE)
		return tm_fail(x->e, -EINVAL, TM_RULE_ARG, 0,
			       "the superblock is unusable (%s) and no copy of it was found: "
			       "the data block size must be given", rep->sb_msg);

	size_t written = 0;
	for (size_t k = 0; k < x->s->nr_devs; k++)
		if (!x->s->devs[k].left_out)
			written++;
	/* no device left: fine only if an intact tree says there were none */
	int det_lost = !x->details_root, top_lost = 0;
	for (size_t i = 0; i < w->nr_holes; i++) {
		if (w->holes[i].tree == TREE_DETAILS && !w->holes[i].filled)
			det_lost = 1;
		if (w->holes[i].tree == TREE_TOP && !w->holes[i].filled)
			top_lost = 1;
	}
	if (!written && (x->s->nr_devs > 0 || (det_lost && top_lost)))
		return tm_fail(x->e, -ENODATA, TM_RULE_NONE, TM_NO_BLOCK,
			       "no device could be salvaged");
	return 0;
}

int tm_salvage(struct tm_bm *bm, const struct tm_repair_opts *opts,
	       struct tm_salvage **out, struct tm_error *e)
{
	struct tm_salvage *s = calloc(1, sizeof(*s));
	struct salv x;
	int r;

	*out = NULL;
	memset(&x, 0, sizeof(x));
	if (!s)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	s->bm = bm;
	if (opts)
		s->opts = *opts;
	s->rep.nr_blocks = tm_bm_nr_blocks(bm);
	if (s->rep.nr_blocks > TM_MAX_METADATA_BLOCKS)	/* what a scan reads */
		s->rep.nr_blocks = TM_MAX_METADATA_BLOCKS;
	s->rep.data_block_size.src = TM_SRC_NONE;
	x.s = s;
	x.bm = bm;
	x.e = e;
	x.rep = &s->rep;
	u64map_init(&x.root_list);
	x.w = malloc(sizeof(*x.w));
	if (!x.w) {
		free(s);
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	}
	walker_init(x.w, bm, e);

	r = run(&x);
	salv_free(&x);
	if (r && r != -ENODATA && r != -EINVAL) {
		tm_salvage_free(s);
		return r;
	}
	*out = s;
	return r;
}

const struct tm_repair_report *tm_salvage_report(const struct tm_salvage *s)
{
	return &s->rep;
}

int tm_salvage_emit(struct tm_salvage *s, const struct tm_salvage_emit_opts *opts,
		    const struct tm_ir_sink *sink, struct tm_error *e)
{
	struct tm_salvage_emit_opts none = { 0 };

	return salvage_emit(s, opts ? opts : &none, sink, e);
}

void tm_salvage_free(struct tm_salvage *s)
{
	if (!s)
		return;
	for (size_t k = 0; k < s->nr_devs; k++) {
		free(s->devs[k].leaves);
		free(s->devs[k].losses);
	}
	free(s->devs);
	free(s->rep.devs);
	free(s->rep.bad);
	free(s);
}
