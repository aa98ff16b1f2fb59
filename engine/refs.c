/*
 * refs.c - find every reference to a metadata block or a data block
 * (refs.h), walking the live metadata and the held snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "thinmeta/fields.h"
#include "thinmeta/metadata.h"
#include "thinmeta/refs.h"
#include "thinmeta/space_map.h"
#include "u64set.h"

uint32_t tm_tree_value_size(enum tm_tree t)
{
	switch (t) {
	case TM_TREE_TOP:
	case TM_TREE_BOTTOM: return TM_VSIZE_U64;
	case TM_TREE_DETAILS: return TM_VSIZE_DETAILS;
	case TM_TREE_DATA_INDEX: return TM_VSIZE_INDEX;
	case TM_TREE_META_RC:
	case TM_TREE_DATA_RC: return TM_VSIZE_REFCOUNT;
	default: return 0;
	}
}

struct dev_root {
	uint64_t dev, root;
};

struct rw {
	struct tm_bm *bm;
	uint64_t target;
	tm_ref_fn fn;
	void *ctx;
	struct tm_refs_stats *st;
	int stop;		/* fn's non-zero value, or a negative errno */
	int snapshot;
	int quiet;		/* walking for device roots only */
	struct u64set seen;	/* metadata search: nodes read */
	struct u64set nomatch;	/* data search: subtrees without the block */
	struct u64set devseen;	/* data search: nodes of the current device */
	int leaf_depth;		/* metadata search in a device tree; -1 unknown */
	struct dev_root *roots;	/* top-level leaf values, walked afterwards */
	size_t nr_roots, cap_roots;
	uint64_t path[TM_BTREE_MAX_DEPTH];
	uint32_t pidx[TM_BTREE_MAX_DEPTH];
	uint8_t bufs[TM_BTREE_MAX_DEPTH][TM_BLOCK_SIZE];
};

static void note_bad(struct rw *w, const struct tm_error *e)
{
	if (!w->st->unreadable++)
		w->st->first_error = *e;
}

static void report(struct rw *w, enum tm_ref_kind kind, enum tm_tree tree,
		   uint64_t holder, uint32_t slot, uint64_t key, uint64_t dev,
		   uint32_t time, unsigned depth)
{
	struct tm_ref r = {
		.kind = kind, .tree = tree, .snapshot = w->snapshot, .holder = holder,
		.slot = slot, .key = key, .dev_id = dev, .time = time,
		.path = w->path, .path_index = w->pidx, .path_len = depth,
	};

	if (w->stop || w->quiet)
		return;
	if (depth)
		w->pidx[depth - 1] = slot;
	w->stop = w->fn(w->ctx, &r);
}

static int push_root(struct rw *w, uint64_t dev, uint64_t root)
{
	if (w->nr_roots == w->cap_roots) {
		size_t ncap = w->cap_roots ? w->cap_roots * 2 : 64;
		struct dev_root *n = realloc(w->roots, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->roots = n;
		w->cap_roots = ncap;
	}
	w->roots[w->nr_roots++] = (struct dev_root){ dev, root };
	return 0;
}

static int read_node(struct rw *w, uint64_t b, unsigned d, struct tm_node *n)
{
	struct tm_error e;
	int r;

	tm_error_clear(&e);
	r = tm_bm_read(w->bm, b, &tm_node_validator, w->bufs[d], &e);
	if (r) {
		note_bad(w, &e);
		return r;
	}
	w->st->nodes_read++;
	tm_node_view(w->bufs[d], b, n);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Metadata search */

static void meta_node(struct rw *w, enum tm_tree tree, uint64_t b, unsigned d,
		      uint64_t dev)
{
	struct tm_node n;
	int r;

	if (w->stop || d >= TM_BTREE_MAX_DEPTH)
		return;
	if (tree == TM_TREE_BOTTOM && w->leaf_depth >= 0 && (int)d >= w->leaf_depth)
		return;		/* mapping leaves hold data blocks only */
	r = u64set_add(&w->seen, b);
	if (r <= 0) {
		if (r < 0)
			w->stop = r;
		return;
	}
	if (read_node(w, b, d, &n))
		return;
	w->path[d] = b;
	if (!tm_node_is_leaf(&n)) {
		for (uint32_t i = 0; i < n.nr_entries && !w->stop; i++) {
			uint64_t child = tm_node_value64(&n, i);
			w->pidx[d] = i;
			if (child == w->target)
				report(w, TM_REFBY_CHILD, tree, b, i, tm_node_key(&n, i), dev, 0,
				       d + 1);
			meta_node(w, tree, child, d + 1, dev);
			w->path[d] = b;
		}
		return;
	}
	if (tree == TM_TREE_BOTTOM)
		w->leaf_depth = (int)d;
	for (uint32_t i = 0; i < n.nr_entries && !w->stop; i++) {
		uint64_t key = tm_node_key(&n, i);
		if (tree == TM_TREE_TOP && n.value_size == 8) {
			uint64_t root = tm_node_value64(&n, i);
			if (root == w->target)
				report(w, TM_REFBY_DEVICE_ROOT, tree, b, i, key, key, 0, d + 1);
			if (push_root(w, key, root))
				w->stop = -ENOMEM;
		} else if (tree == TM_TREE_DATA_INDEX && n.value_size == TM_VSIZE_INDEX) {
			if (tm_le64(tm_node_value(&n, i)) == w->target)
				report(w, TM_REFBY_INDEX_TREE, tree, b, i, key, UINT64_MAX, 0,
				       d + 1);
		}
	}
}

static void meta_tree(struct rw *w, enum tm_tree tree, uint64_t root, uint64_t dev)
{
	w->leaf_depth = -1;
	meta_node(w, tree, root, 0, dev);
}

/* Superblock fields that point at the target, from the field table. */
static void sb_fields(struct rw *w, const uint8_t *buf, uint64_t sb_block)
{
	const struct tm_struct *s = &tm_struct_superblock;

	for (unsigned i = 0; i < s->nr_fields && !w->stop; i++) {
		const struct tm_field *f = &s->fields[i];
		if (f->type == TM_FT_STRUCT) {
			for (unsigned j = 0; j < f->sub->nr_fields; j++) {
				const struct tm_field *g = &f->sub->fields[j];
				if (g->ref != TM_REF_NONE &&
				    tm_field_get(g, buf + f->offset) == w->target)
					report(w, TM_REFBY_SUPERBLOCK, TM_TREE_NONE, sb_block,
					       f->offset + g->offset, 0, UINT64_MAX, 0, 0);
			}
		} else if (f->ref != TM_REF_NONE && f->ref != TM_REF_SELF &&
			   tm_field_get(f, buf) == w->target) {
			report(w, TM_REFBY_SUPERBLOCK, TM_TREE_NONE, sb_block, f->offset, 0,
			       UINT64_MAX, 0, 0);
		}
	}
}

/* Read a superblock (live or copy); damage noted, the bytes used anyway. */
static int read_sb(struct rw *w, uint64_t b, uint8_t *buf, struct tm_superblock *sb)
{
	struct tm_error e;

	tm_error_clear(&e);
	if (tm_bm_read(w->bm, b, &tm_sb_validator, buf, &e)) {
		note_bad(w, &e);
		if (tm_bm_read(w->bm, b, NULL, buf, &e))
			return -1;
	}
	tm_sb_decode(buf, sb);
	return 0;
}

static void meta_view(struct rw *w, uint64_t sb_block, int snapshot)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_superblock sb;

	w->snapshot = snapshot;
	if (read_sb(w, sb_block, buf, &sb))
		return;
	sb_fields(w, buf, sb_block);
	if (!snapshot) {
		/* metadata space map: the index block's entries */
		struct tm_error e;
		uint64_t nr_bitmaps = (sb.meta_sm.nr_blocks + TM_ENTRIES_PER_BITMAP - 1) /
				      TM_ENTRIES_PER_BITMAP;
		if (nr_bitmaps > TM_META_INDEX_ENTRIES)
			nr_bitmaps = TM_META_INDEX_ENTRIES;
		tm_error_clear(&e);
		if (tm_bm_read(w->bm, sb.meta_sm.bitmap_root, &tm_index_validator, buf, &e)) {
			note_bad(w, &e);
		} else {
			for (uint32_t i = 0; i < nr_bitmaps && !w->stop; i++)
				if (tm_le64(buf + 16 + TM_INDEX_ENTRY_SIZE * i) == w->target)
					report(w, TM_REFBY_INDEX_BLOCK, TM_TREE_NONE,
					       sb.meta_sm.bitmap_root, i, i, UINT64_MAX, 0, 0);
		}
		meta_tree(w, TM_TREE_META_RC, sb.meta_sm.ref_count_root, UINT64_MAX);
		meta_tree(w, TM_TREE_DATA_INDEX, sb.data_sm.bitmap_root, UINT64_MAX);
		meta_tree(w, TM_TREE_DATA_RC, sb.data_sm.ref_count_root, UINT64_MAX);
	}
	meta_tree(w, TM_TREE_DETAILS, sb.details_root, UINT64_MAX);
	w->nr_roots = 0;
	meta_tree(w, TM_TREE_TOP, sb.mapping_root, UINT64_MAX);
	for (size_t i = 0; i < w->nr_roots && !w->stop; i++)
		meta_tree(w, TM_TREE_BOTTOM, w->roots[i].root, w->roots[i].dev);
}

static struct rw *rw_new(struct tm_bm *bm, uint64_t target, tm_ref_fn fn, void *ctx,
			 struct tm_refs_stats *st)
{
	struct rw *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->bm = bm;
	w->target = target;
	w->fn = fn;
	w->ctx = ctx;
	w->st = st;
	memset(st, 0, sizeof(*st));
	tm_error_clear(&st->first_error);
	u64set_init(&w->seen);
	u64set_init(&w->nomatch);
	u64set_init(&w->devseen);
	return w;
}

static int rw_free(struct rw *w)
{
	int r = w->stop;

	u64set_free(&w->seen);
	u64set_free(&w->nomatch);
	u64set_free(&w->devseen);
	free(w->roots);
	free(w);
	return r;
}

/* The held snapshot's block, read from the live superblock (0 if none). */
static uint64_t held_root(struct rw *w)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_superblock sb;
	struct tm_error e;

	if (tm_bm_read(w->bm, 0, NULL, buf, &e))
		return 0;
	tm_sb_decode(buf, &sb);
	return sb.held_root < tm_bm_nr_blocks(w->bm) ? sb.held_root : 0;
}

int tm_find_meta_refs(struct tm_bm *bm, uint64_t target, tm_ref_fn fn, void *ctx,
		      struct tm_refs_stats *st)
{
	struct rw *w = rw_new(bm, target, fn, ctx, st);

	if (!w)
		return -ENOMEM;
	meta_view(w, 0, 0);
	uint64_t held = held_root(w);
	if (held && !w->stop)
		meta_view(w, held, 1);
	return rw_free(w);
}

/* ------------------------------------------------------------------ */
/* Data search */

/* Mappings of the target below @b; *@complete = 0 if part was skipped. */
static uint64_t data_node(struct rw *w, uint64_t b, unsigned d, uint64_t dev,
			  int *complete)
{
	struct tm_node n;
	uint64_t found = 0;
	int sub_complete = 1, r;

	if (w->stop)
		return 0;
	if (d >= TM_BTREE_MAX_DEPTH) {
		*complete = 0;
		return 0;
	}
	if (u64set_has(&w->nomatch, b))
		return 0;
	r = u64set_add(&w->devseen, b);
	if (r <= 0) {
		if (r < 0)
			w->stop = r;
		*complete = 0;
		return 0;
	}
	if (read_node(w, b, d, &n)) {
		*complete = 0;
		return 0;
	}
	w->path[d] = b;
	if (tm_node_is_leaf(&n)) {
		if (n.value_size != 8) {
			*complete = 0;
			return 0;
		}
		for (uint32_t i = 0; i < n.nr_entries && !w->stop; i++) {
			uint64_t v = tm_node_value64(&n, i);
			if (tm_bt_block(v) == w->target) {
				report(w, TM_REFBY_MAPPING, TM_TREE_BOTTOM, b, i,
				       tm_node_key(&n, i), dev, tm_bt_time(v), d + 1);
				found++;
			}
		}
	} else {
		for (uint32_t i = 0; i < n.nr_entries && !w->stop; i++) {
			w->pidx[d] = i;
			found += data_node(w, tm_node_value64(&n, i), d + 1, dev, &sub_complete);
			w->path[d] = b;
		}
	}
	if (!sub_complete)
		*complete = 0;
	else if (!found && !w->stop && u64set_add(&w->nomatch, b) < 0)
		w->stop = -ENOMEM;
	return found;
}

static void data_view(struct rw *w, uint64_t sb_block, int snapshot)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_superblock sb;

	w->snapshot = snapshot;
	if (read_sb(w, sb_block, buf, &sb))
		return;
	/* the device roots, from the top level (pointers are not reported) */
	u64set_clear(&w->seen);
	w->nr_roots = 0;
	w->quiet = 1;
	meta_tree(w, TM_TREE_TOP, sb.mapping_root, UINT64_MAX);
	w->quiet = 0;
	for (size_t i = 0; i < w->nr_roots && !w->stop; i++) {
		int complete = 1;
		u64set_clear(&w->devseen);
		data_node(w, w->roots[i].root, 0, w->roots[i].dev, &complete);
	}
}

int tm_find_data_refs(struct tm_bm *bm, uint64_t data_block, tm_ref_fn fn, void *ctx,
		      struct tm_refs_stats *st)
{
	struct rw *w = rw_new(bm, data_block, fn, ctx, st);

	if (!w)
		return -ENOMEM;
	data_view(w, 0, 0);
	uint64_t held = held_root(w);
	if (held && !w->stop)
		data_view(w, held, 1);
	return rw_free(w);
}
