/*
 * test_builder.c - the metadata builder (thinmeta/builder.h) and its parts:
 * feed IR events into an in-memory device, read the result back with the
 * read engine, and recount every reference from scratch (FORMAT.md §7.6,
 * §7.7) to compare with both on-disk space maps.
 */
#include <errno.h>

#include "unit_util.h"
#include "build_internal.h"
#include "thinmeta/builder.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"

/* ------------------------------------------------------------------ */
/* A pool being built, and the model of what it should hold. */

#define MAX_DEVS 64

struct mapping {
	uint64_t origin, data;
	uint32_t time;
};

struct model_dev {
	uint64_t id;
	struct mapping *m;
	size_t n, cap;
};

struct pool {
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct tm_builder *b;
	struct tm_ir_sink sink;
	struct tm_error err;
	uint64_t nr_data_blocks;
	struct model_dev devs[MAX_DEVS];
	size_t nr_devs;
	/* defs of the model: names and their mappings */
	struct model_dev defs[MAX_DEVS];
	char def_names[MAX_DEVS][16];
	size_t nr_defs;
	struct model_dev *cur;
};

static void model_add(struct model_dev *d, uint64_t o, uint64_t data, uint32_t t)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 256;
		d->m = realloc(d->m, d->cap * sizeof(*d->m));
		ck_assert_ptr_nonnull(d->m);
	}
	d->m[d->n++] = (struct mapping){ o, data, t };
}

static void pool_create(struct pool *p, uint64_t nr_blocks, const struct tm_builder_opts *o)
{
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(tm_dev_mem_create(nr_blocks, &p->dev), 0);
	/* stale bytes in block 0: the builder must zero them first */
	memset(tm_dev_mem_data(p->dev), 0xa5, TM_BLOCK_SIZE);
	ck_assert_int_eq(tm_bm_create(p->dev, 0, &p->bm), 0);
	ck_assert_int_eq(tm_builder_create(p->bm, o, &p->b, &p->err), 0);
	ck_assert(tm_block_is_zero(tm_dev_mem_data(p->dev)));
	tm_builder_sink(p->b, &p->sink);
}

static void pool_destroy(struct pool *p)
{
	tm_builder_destroy(p->b);
	tm_bm_destroy(p->bm);
	tm_dev_close(p->dev);
	for (size_t i = 0; i < MAX_DEVS; i++) {
		free(p->devs[i].m);
		free(p->defs[i].m);
	}
}

static int sb_begin(struct pool *p, uint64_t nr_data_blocks)
{
	struct tm_ir_superblock sb = { 0 };

	sb.time = 7;
	sb.transaction = 42;
	sb.data_block_size = 128;
	sb.nr_data_blocks = nr_data_blocks;
	p->nr_data_blocks = nr_data_blocks;
	return p->sink.superblock_begin(p->sink.ctx, &sb);
}

static int dev_begin(struct pool *p, uint64_t id)
{
	struct tm_ir_device d = { id, 0, 3, 1, 2 };

	ck_assert_uint_lt(p->nr_devs, MAX_DEVS);
	p->cur = &p->devs[p->nr_devs++];
	p->cur->id = id;
	return p->sink.device_begin(p->sink.ctx, &d);
}

static int dev_end(struct pool *p)
{
	return p->sink.device_end(p->sink.ctx);
}

static int def_begin(struct pool *p, const char *name)
{
	ck_assert_uint_lt(p->nr_defs, MAX_DEVS);
	snprintf(p->def_names[p->nr_defs], 16, "%s", name);
	p->cur = &p->defs[p->nr_defs++];
	return p->sink.def_begin(p->sink.ctx, name);
}

static int def_end(struct pool *p)
{
	return p->sink.def_end(p->sink.ctx);
}

static int run(struct pool *p, uint64_t o, uint64_t d, uint64_t len, uint32_t t)
{
	struct tm_ir_run r = { o, d, len, t };
	int e = p->sink.run(p->sink.ctx, &r);

	if (!e)
		for (uint64_t i = 0; i < len; i++)
			model_add(p->cur, o + i, d + i, t);
	return e;
}

static int ref(struct pool *p, const char *name)
{
	int e = p->sink.ref(p->sink.ctx, name);

	if (!e)
		for (size_t i = 0; i < p->nr_defs; i++)
			if (!strcmp(p->def_names[i], name))
				for (size_t j = 0; j < p->defs[i].n; j++)
					model_add(p->cur, p->defs[i].m[j].origin,
						  p->defs[i].m[j].data, p->defs[i].m[j].time);
	return e;
}

static int sb_end(struct pool *p)
{
	return p->sink.superblock_end(p->sink.ctx);
}

static void finish_ok(struct pool *p)
{
	ck_assert_msg(sb_end(p) == 0, "superblock_end: %s", tm_builder_error(p->b)->msg);
	ck_assert_msg(tm_builder_finish(p->b, &p->err) == 0, "finish: %s", p->err.msg);
}

/* ------------------------------------------------------------------ */
/* Reading back: recount every reference and compare with the space maps. */

enum kind { K_TOP, K_BOTTOM, K_DETAILS, K_DATA_INDEX, K_OVF };

struct recount {
	struct tm_bm *bm;
	uint32_t *meta;
	uint64_t nmeta;
	uint32_t *data;
	uint64_t ndata;
};

static uint32_t leaf_vsize(enum kind k)
{
	switch (k) {
	case K_DETAILS: return TM_VSIZE_DETAILS;
	case K_DATA_INDEX: return TM_VSIZE_INDEX;
	case K_OVF: return TM_VSIZE_REFCOUNT;
	default: return TM_VSIZE_U64;
	}
}

/* One reference to node @b; its children are visited on the first only. */
static void walk(struct recount *c, uint64_t b, enum kind k)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_error e;
	struct tm_node n;

	ck_assert_uint_lt(b, c->nmeta);
	if (c->meta[b]++)
		return;
	ck_assert_msg(tm_bm_read(c->bm, b, &tm_node_validator, buf, &e) == 0,
		      "block %llu: %s", (unsigned long long)b, e.msg);
	tm_node_view(buf, b, &n);
	ck_assert_int_eq(tm_node_check_keys(&n, &e), 0);
	if (!tm_node_is_leaf(&n)) {
		ck_assert_uint_eq(n.value_size, 8);
		ck_assert_uint_gt(n.nr_entries, 0);
		for (uint32_t i = 0; i < n.nr_entries; i++)
			walk(c, tm_node_value64(&n, i), k);
		return;
	}
	ck_assert_uint_eq(n.value_size, leaf_vsize(k));
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		if (k == K_TOP) {
			walk(c, tm_node_value64(&n, i), K_BOTTOM);
		} else if (k == K_BOTTOM) {
			uint64_t d = tm_bt_block(tm_node_value64(&n, i));
			ck_assert_uint_lt(d, c->ndata);
			c->data[d]++;
		} else if (k == K_DATA_INDEX) {
			struct tm_index_entry ie;
			tm_index_entry_decode(tm_node_value(&n, i), &ie);
			ck_assert_uint_eq(tm_node_key(&n, i), tm_node_key(&n, 0) + i);
			ck_assert_uint_lt(ie.blocknr, c->nmeta);
			c->meta[ie.blocknr]++;
		}
	}
}

static void compare_sm(struct tm_bm *bm, const struct tm_sm_root *root, enum tm_sm_kind kind,
		       const uint32_t *expect, uint64_t n)
{
	struct tm_sm_disk sm;
	struct tm_error e;
	uint64_t allocated = 0;

	ck_assert_uint_eq(root->nr_blocks, n);
	ck_assert_msg(tm_sm_disk_open(bm, kind, root, &sm, &e) == 0, "%s", e.msg);
	for (uint64_t b = 0; b < n; b++) {
		uint32_t got;
		ck_assert_msg(tm_sm_disk_get(bm, &sm, b, &got, &e) == 0, "%s", e.msg);
		ck_assert_msg(got == expect[b], "%s block %llu: space map says %u, recount %u",
			      kind == TM_SM_DATA ? "data" : "metadata",
			      (unsigned long long)b, got, expect[b]);
		allocated += got != 0;
	}
	ck_assert_uint_eq(root->nr_allocated, allocated);
	/* index hints: nr_free is the whole bitmap's, none_free_before a lower bound */
	for (uint64_t i = 0; i < sm.nr_bitmaps; i++) {
		uint64_t used = 0, first = UINT64_MAX;
		for (uint64_t b = i * TM_ENTRIES_PER_BITMAP;
		     b < n && b < (i + 1) * TM_ENTRIES_PER_BITMAP; b++) {
			used += expect[b] != 0;
			if (!expect[b] && first == UINT64_MAX)
				first = b - i * TM_ENTRIES_PER_BITMAP;
		}
		ck_assert_uint_eq(sm.index[i].nr_free, TM_ENTRIES_PER_BITMAP - used);
		if (first != UINT64_MAX)
			ck_assert_uint_eq(sm.index[i].none_free_before, first);
	}
	tm_sm_disk_close(&sm);
}

/* The whole pool: superblock, counts, and every device's mappings. */
static void verify(struct pool *p)
{
	struct recount c = { 0 };
	struct tm_view v;
	struct tm_device *devs;
	uint64_t nr;
	uint8_t buf[TM_BLOCK_SIZE];

	tm_bm_invalidate(p->bm);
	ck_assert_msg(tm_view_live(p->bm, &v, &p->err) == 0, "%s", p->err.msg);
	ck_assert_uint_eq(v.sb.version, 2);
	ck_assert_uint_eq(v.sb.flags, 0);
	ck_assert_uint_eq(v.sb.held_root, 0);
	ck_assert_uint_eq(v.sb.metadata_nr_blocks, v.sb.meta_sm.nr_blocks);
	ck_assert_msg(tm_sb_check_fields(&v.sb, tm_bm_nr_blocks(p->bm), 0, &p->err) == 0, "%s",
		      p->err.msg);

	c.bm = p->bm;
	c.nmeta = v.sb.meta_sm.nr_blocks;
	c.ndata = v.sb.data_sm.nr_blocks;
	c.meta = calloc(c.nmeta, sizeof(*c.meta));
	c.data = calloc(c.ndata ? c.ndata : 1, sizeof(*c.data));
	ck_assert(c.meta && c.data);
	c.meta[0]++;
	/* the metadata space map: index block, bitmaps, overflow tree */
	c.meta[v.sb.meta_sm.bitmap_root]++;
	ck_assert_int_eq(tm_bm_read(p->bm, v.sb.meta_sm.bitmap_root, &tm_index_validator, buf,
				    &p->err), 0);
	for (uint64_t i = 0; i * TM_ENTRIES_PER_BITMAP < c.nmeta; i++) {
		struct tm_index_entry ie;
		tm_index_entry_decode(buf + 16 + 16 * i, &ie);
		ck_assert_uint_lt(ie.blocknr, c.nmeta);
		c.meta[ie.blocknr]++;
	}
	walk(&c, v.sb.meta_sm.ref_count_root, K_OVF);
	walk(&c, v.sb.data_sm.bitmap_root, K_DATA_INDEX);
	walk(&c, v.sb.data_sm.ref_count_root, K_OVF);
	walk(&c, v.sb.details_root, K_DETAILS);
	walk(&c, v.sb.mapping_root, K_TOP);
	compare_sm(p->bm, &v.sb.meta_sm, TM_SM_METADATA, c.meta, c.nmeta);
	compare_sm(p->bm, &v.sb.data_sm, TM_SM_DATA, c.data, c.ndata);
	free(c.meta);
	free(c.data);

	/* content: each device's mappings, in order, as the model says */
	ck_assert_int_eq(tm_read_devices(p->bm, &v, 0, &devs, &nr, &p->err), 0);
	ck_assert_uint_eq(nr, p->nr_devs);
	for (uint64_t i = 0; i < nr; i++) {
		struct model_dev *m = NULL;
		uint64_t *leaves, nl, k = 0;
		for (size_t j = 0; j < p->nr_devs; j++)
			if (p->devs[j].id == devs[i].dev_id)
				m = &p->devs[j];
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(tm_btree_leaves(p->bm, devs[i].mapping_root, &leaves, &nl,
						 &p->err), 0);
		for (uint64_t l = 0; l < nl; l++) {
			struct tm_node n;
			ck_assert_int_eq(tm_bm_read(p->bm, leaves[l], &tm_node_validator, buf,
						    &p->err), 0);
			tm_node_view(buf, leaves[l], &n);
			for (uint32_t j = 0; j < n.nr_entries; j++, k++) {
				uint64_t val = tm_node_value64(&n, j);
				ck_assert_uint_lt(k, m->n);
				ck_assert_uint_eq(tm_node_key(&n, j), m->m[k].origin);
				ck_assert_uint_eq(tm_bt_block(val), m->m[k].data);
				ck_assert_uint_eq(tm_bt_time(val), m->m[k].time);
			}
		}
		ck_assert_uint_eq(k, m->n);
		free(leaves);
	}
	free(devs);
}

/* The entries per leaf of device @id's tree. */
static size_t leaf_sizes(struct pool *p, uint64_t id, uint32_t *sizes, size_t max,
			 uint64_t **blocks)
{
	struct tm_view v;
	struct tm_device *devs;
	uint64_t nr, nl = 0, *leaves = NULL;
	uint8_t buf[TM_BLOCK_SIZE];

	ck_assert_int_eq(tm_view_live(p->bm, &v, &p->err), 0);
	ck_assert_int_eq(tm_read_devices(p->bm, &v, 0, &devs, &nr, &p->err), 0);
	for (uint64_t i = 0; i < nr; i++)
		if (devs[i].dev_id == id)
			ck_assert_int_eq(tm_btree_leaves(p->bm, devs[i].mapping_root, &leaves,
							 &nl, &p->err), 0);
	free(devs);
	ck_assert_ptr_nonnull(leaves);
	ck_assert_uint_le(nl, max);
	for (uint64_t l = 0; l < nl; l++) {
		struct tm_node n;
		ck_assert_int_eq(tm_bm_read(p->bm, leaves[l], &tm_node_validator, buf, &p->err), 0);
		tm_node_view(buf, leaves[l], &n);
		sizes[l] = n.nr_entries;
	}
	if (blocks)
		*blocks = leaves;
	else
		free(leaves);
	return nl;
}

static uint32_t meta_count(struct pool *p, uint64_t b)
{
	struct tm_view v;
	struct tm_sm_disk sm;
	uint32_t c;

	ck_assert_int_eq(tm_view_live(p->bm, &v, &p->err), 0);
	ck_assert_int_eq(tm_sm_disk_open(p->bm, TM_SM_METADATA, &v.sb.meta_sm, &sm, &p->err), 0);
	ck_assert_int_eq(tm_sm_disk_get(p->bm, &sm, b, &c, &p->err), 0);
	tm_sm_disk_close(&sm);
	return c;
}

/* ------------------------------------------------------------------ */
/* tm_rcmap */

START_TEST(rcmap_counts)
{
	const uint64_t n = 3 * TM_ENTRIES_PER_BITMAP + 77;
	struct tm_rcmap m;
	uint32_t *ref = calloc(n, sizeof(*ref));
	uint64_t alloc = 0, seed = 12345;

	ck_assert_int_eq(tm_rcmap_init(&m, n), 0);
	for (int step = 0; step < 400000; step++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		/* few distinct blocks, so counts climb past 3 and fall back */
		uint64_t b = (seed >> 33) % 600 * 97 % n;
		if ((seed >> 20) % 5 < 3 || !ref[b]) {
			ck_assert_int_eq(tm_rcmap_inc(&m, b), 0);
			alloc += ref[b]++ == 0;
		} else {
			uint32_t now;
			ck_assert_int_eq(tm_rcmap_dec(&m, b, &now), 0);
			ck_assert_uint_eq(now, --ref[b]);
			alloc -= ref[b] == 0;
		}
		if (step % 1000 == 0)
			for (uint64_t i = 0; i < 600; i++)
				ck_assert_uint_eq(tm_rcmap_get(&m, i * 97 % n), ref[i * 97 % n]);
	}
	ck_assert_uint_eq(m.nr_allocated, alloc);
	uint64_t *keys;
	uint32_t *vals;
	size_t no, expect = 0;
	ck_assert_int_eq(tm_rcmap_overflow(&m, &keys, &vals, &no), 0);
	for (uint64_t b = 0; b < n; b++)
		expect += ref[b] >= 3;
	ck_assert_uint_eq(no, expect);
	for (size_t i = 0; i < no; i++) {
		ck_assert(i == 0 || keys[i] > keys[i - 1]);
		ck_assert_uint_eq(vals[i], ref[keys[i]]);
	}
	uint32_t now;
	ck_assert_int_eq(tm_rcmap_dec(&m, n - 1, &now), -EINVAL);
	ck_assert_int_eq(tm_rcmap_inc(&m, n), -ERANGE);
	free(keys);
	free(vals);
	free(ref);
	tm_rcmap_free(&m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Pools */

START_TEST(empty_pools)
{
	struct pool p;

	/* no data blocks, no devices */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 0), 0);
	finish_ok(&p);
	verify(&p);
	pool_destroy(&p);

	/* devices without mappings: each its own empty leaf */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 5000), 0);
	for (uint64_t id = 0; id < 3; id++) {
		ck_assert_int_eq(dev_begin(&p, id * 10), 0);
		ck_assert_int_eq(dev_end(&p), 0);
	}
	finish_ok(&p);
	verify(&p);
	uint32_t sz[4];
	ck_assert_uint_eq(leaf_sizes(&p, 10, sz, 4, NULL), 1);
	ck_assert_uint_eq(sz[0], 0);
	pool_destroy(&p);
}
END_TEST

/* 1.1.0's packing of a stream of n values (src/pdata/btree_builder.rs). */
static size_t expected_packing(uint64_t n, uint32_t *sizes)
{
	uint64_t queued = 0;
	size_t k = 0;

	for (uint64_t i = 0; i < n; i++) {
		if (queued == 504) {
			sizes[k++] = 252;
			queued -= 252;
		}
		queued++;
	}
	if (queued == 0 && k == 0)
		sizes[k++] = 0;
	else if (queued <= 252 && queued)
		sizes[k++] = (uint32_t)queued;
	else if (queued) {
		sizes[k++] = (uint32_t)(queued / 2);
		sizes[k++] = (uint32_t)(queued - queued / 2);
	}
	return k;
}

START_TEST(leaf_packing)
{
	static const uint64_t ns[] = { 1, 125, 126, 252, 253, 504, 505, 756, 757, 1200,
				       5000, 64000 };
	struct pool p;
	uint32_t got[400], want[400];

	pool_create(&p, 2048, NULL);
	ck_assert_int_eq(sb_begin(&p, 200000), 0);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		ck_assert_int_eq(dev_begin(&p, i), 0);
		/* runs of 3 with holes, times varying */
		for (uint64_t k = 0; k < ns[i]; k += 3) {
			uint64_t len = ns[i] - k < 3 ? ns[i] - k : 3;
			ck_assert_int_eq(run(&p, 2 * k, (k * 7 + i) % 199000, len,
					     (uint32_t)(k % 5)), 0);
		}
		ck_assert_int_eq(dev_end(&p), 0);
	}
	finish_ok(&p);
	verify(&p);
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		size_t n = leaf_sizes(&p, i, got, 400, NULL);
		size_t w = expected_packing(ns[i], want);
		ck_assert_uint_eq(n, w);
		for (size_t l = 0; l < n; l++)
			ck_assert_msg(got[l] == want[l], "%llu mappings: leaf %zu has %u, expected %u",
				      (unsigned long long)ns[i], l, got[l], want[l]);
	}
	pool_destroy(&p);
}
END_TEST

START_TEST(defs_become_shared_leaves)
{
	struct pool p;
	uint32_t sz[16];
	uint64_t *l1, *l2, *l3, *l4, *l5;
	size_t n1, n2, n3;

	pool_create(&p, 512, NULL);
	ck_assert_int_eq(sb_begin(&p, 10000), 0);
	/* A: 400 mappings = two leaves of 200 */
	ck_assert_int_eq(def_begin(&p, "A"), 0);
	ck_assert_int_eq(run(&p, 100, 1000, 400, 1), 0);
	ck_assert_int_eq(def_end(&p), 0);
	/* B: one mapping; C: none; D: referenced by nobody */
	ck_assert_int_eq(def_begin(&p, "B"), 0);
	ck_assert_int_eq(run(&p, 5000, 3, 1, 0), 0);
	ck_assert_int_eq(def_end(&p), 0);
	ck_assert_int_eq(def_begin(&p, "C"), 0);
	ck_assert_int_eq(def_end(&p), 0);
	ck_assert_int_eq(def_begin(&p, "D"), 0);
	ck_assert_int_eq(run(&p, 0, 9000, 300, 0), 0);
	ck_assert_int_eq(def_end(&p), 0);

	ck_assert_int_eq(dev_begin(&p, 1), 0);	/* just A */
	ck_assert_int_eq(ref(&p, "A"), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 2), 0);	/* A, then B, then 300 own */
	ck_assert_int_eq(ref(&p, "A"), 0);
	ck_assert_int_eq(ref(&p, "B"), 0);
	ck_assert_int_eq(run(&p, 6000, 2000, 300, 2), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 3), 0);	/* 10 own, then A: A's first leaf copied */
	ck_assert_int_eq(run(&p, 0, 50, 10, 2), 0);
	ck_assert_int_eq(ref(&p, "A"), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 4), 0);	/* B alone: B's leaf is the root */
	ck_assert_int_eq(ref(&p, "B"), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 5), 0);
	ck_assert_int_eq(ref(&p, "B"), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 6), 0);	/* C alone, twice: a shared empty root */
	ck_assert_int_eq(ref(&p, "C"), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 7), 0);
	ck_assert_int_eq(ref(&p, "C"), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 8), 0);	/* B, then mappings: B copied */
	ck_assert_int_eq(ref(&p, "B"), 0);
	ck_assert_int_eq(run(&p, 5001, 4, 2, 0), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	finish_ok(&p);
	verify(&p);

	n1 = leaf_sizes(&p, 1, sz, 16, &l1);
	ck_assert_uint_eq(n1, 2);
	ck_assert_uint_eq(sz[0], 200);
	ck_assert_uint_eq(sz[1], 200);
	/* A's two leaves, then B's one mapping copied with the 300 own: 150 + 151 */
	n2 = leaf_sizes(&p, 2, sz, 16, &l2);
	ck_assert_uint_eq(n2, 4);
	ck_assert_uint_eq(sz[2], 150);
	ck_assert_uint_eq(sz[3], 151);
	n3 = leaf_sizes(&p, 3, sz, 16, &l3);
	ck_assert_uint_eq(n3, 2);
	ck_assert_uint_eq(sz[0], 210);	/* 10 own + A's first leaf, copied */
	ck_assert_uint_eq(sz[1], 200);
	/* A's leaves: both in devices 1 and 2, the second also in device 3 */
	ck_assert_uint_eq(l1[0], l2[0]);
	ck_assert_uint_eq(l1[1], l2[1]);
	ck_assert_uint_eq(l1[1], l3[1]);
	ck_assert_uint_ne(l1[0], l3[0]);
	ck_assert_uint_eq(meta_count(&p, l1[0]), 2);
	ck_assert_uint_eq(meta_count(&p, l1[1]), 3);
	/* B's leaf is the root of 4 and 5 */
	leaf_sizes(&p, 4, sz, 16, &l4);
	leaf_sizes(&p, 5, sz, 16, &l5);
	ck_assert_uint_eq(l4[0], l5[0]);
	ck_assert_uint_eq(meta_count(&p, l4[0]), 2);
	free(l4);
	free(l5);
	leaf_sizes(&p, 6, sz, 16, &l4);
	leaf_sizes(&p, 7, sz, 16, &l5);
	ck_assert_uint_eq(l4[0], l5[0]);
	ck_assert_uint_eq(sz[0], 0);
	ck_assert_uint_eq(meta_count(&p, l4[0]), 2);
	free(l1);
	free(l2);
	free(l3);
	free(l4);
	free(l5);
	pool_destroy(&p);
}
END_TEST

/* Space maps over several bitmaps, overflow trees in both. */
START_TEST(big_space_maps)
{
	struct pool p;
	const uint64_t nr_data = 2 * TM_ENTRIES_PER_BITMAP + 1000;

	pool_create(&p, TM_ENTRIES_PER_BITMAP + 500, NULL);
	ck_assert_int_eq(sb_begin(&p, nr_data), 0);
	/* a def used by five devices: its leaves are counted 5 */
	ck_assert_int_eq(def_begin(&p, "shared"), 0);
	ck_assert_int_eq(run(&p, 0, nr_data - 3000, 3000, 1), 0);
	ck_assert_int_eq(def_end(&p), 0);
	for (uint64_t id = 0; id < 5; id++) {
		ck_assert_int_eq(dev_begin(&p, id), 0);
		ck_assert_int_eq(ref(&p, "shared"), 0);
		ck_assert_int_eq(dev_end(&p), 0);
	}
	/* the 0.9.0 way: the same data blocks in four unshared trees */
	for (uint64_t id = 10; id < 14; id++) {
		ck_assert_int_eq(dev_begin(&p, id), 0);
		for (uint64_t k = 0; k < 30; k++)
			ck_assert_int_eq(run(&p, k * 1000, k * 1000 + id, 700, 0), 0);
		ck_assert_int_eq(dev_end(&p), 0);
	}
	finish_ok(&p);
	verify(&p);
	pool_destroy(&p);
}
END_TEST

START_TEST(overrides)
{
	struct tm_builder_opts o = { 0 };
	struct pool p;
	struct tm_view v;

	o.set_transaction_id = 1;
	o.transaction_id = 10;		/* smaller than 42: ignored */
	o.set_nr_data_blocks = 1;
	o.nr_data_blocks = 50000;	/* larger: the data space map grows */
	o.set_data_block_size = 1;
	o.data_block_size = 256;
	o.recount_mapped_blocks = 1;
	pool_create(&p, 256, &o);
	ck_assert_int_eq(sb_begin(&p, 1000), 0);
	ck_assert_int_eq(dev_begin(&p, 3), 0);
	ck_assert_int_eq(run(&p, 0, 0, 10, 0), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	finish_ok(&p);
	p.nr_data_blocks = 50000;
	verify(&p);
	ck_assert_int_eq(tm_view_live(p.bm, &v, &p.err), 0);
	ck_assert_uint_eq(v.sb.trans_id, 42);
	ck_assert_uint_eq(v.sb.time, 7);
	ck_assert_uint_eq(v.sb.data_block_size, 256);
	ck_assert_uint_eq(v.sb.data_sm.nr_blocks, 50000);
	struct tm_device *devs;
	uint64_t nr;
	ck_assert_int_eq(tm_read_devices(p.bm, &v, 1, &devs, &nr, &p.err), 0);
	ck_assert_uint_eq(nr, 1);
	ck_assert_uint_eq(devs[0].details.mapped_blocks, 10);	/* recounted */
	ck_assert_uint_eq(devs[0].details.transaction_id, 3);
	ck_assert_uint_eq(devs[0].details.creation_time, 1);
	ck_assert_uint_eq(devs[0].details.snapshotted_time, 2);
	free(devs);
	pool_destroy(&p);

	/* a larger transaction id wins; mapped_blocks as given by default */
	o = (struct tm_builder_opts){ 0 };
	o.set_transaction_id = 1;
	o.transaction_id = 100;
	pool_create(&p, 256, &o);
	ck_assert_int_eq(sb_begin(&p, 1000), 0);
	ck_assert_int_eq(dev_begin(&p, 3), 0);
	ck_assert_int_eq(run(&p, 0, 0, 10, 0), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	finish_ok(&p);
	ck_assert_int_eq(tm_view_live(p.bm, &v, &p.err), 0);
	ck_assert_uint_eq(v.sb.trans_id, 100);
	ck_assert_uint_eq(v.sb.data_block_size, 128);
	ck_assert_int_eq(tm_read_devices(p.bm, &v, 1, &devs, &nr, &p.err), 0);
	ck_assert_uint_eq(devs[0].details.mapped_blocks, 0);
	free(devs);
	pool_destroy(&p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Refusals: each leaves block 0 zeroed and finish refuses. */

static void expect_refused(struct pool *p, int got, int err, enum tm_rule rule)
{
	ck_assert_int_eq(got, err);
	ck_assert_int_eq(tm_builder_error(p->b)->err, err);
	ck_assert_int_eq(tm_builder_error(p->b)->rule, rule);
	ck_assert(tm_builder_error(p->b)->msg[0]);
	/* every later event is refused too, and nothing becomes valid */
	ck_assert_int_ne(sb_end(p), 0);
	ck_assert_int_ne(tm_builder_finish(p->b, &p->err), 0);
	ck_assert(tm_block_is_zero(tm_dev_mem_data(p->dev)));
}

START_TEST(refusals)
{
	struct pool p;
	struct tm_ir_superblock sb = { 0 };

	/* mappings out of order */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	ck_assert_int_eq(run(&p, 10, 0, 5, 0), 0);
	expect_refused(&p, run(&p, 14, 20, 1, 0), -EINVAL, TM_RULE_KEY_ORDER);
	pool_destroy(&p);

	/* a ref overlapping the device's own mappings */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(def_begin(&p, "x"), 0);
	ck_assert_int_eq(run(&p, 10, 0, 5, 0), 0);
	ck_assert_int_eq(def_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	ck_assert_int_eq(run(&p, 10, 50, 1, 0), 0);
	expect_refused(&p, ref(&p, "x"), -EINVAL, TM_RULE_KEY_ORDER);
	pool_destroy(&p);

	/* own mappings after a ref must follow the def's last block */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(def_begin(&p, "x"), 0);
	ck_assert_int_eq(run(&p, 10, 0, 5, 0), 0);
	ck_assert_int_eq(def_end(&p), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	ck_assert_int_eq(ref(&p, "x"), 0);
	expect_refused(&p, run(&p, 12, 50, 1, 0), -EINVAL, TM_RULE_KEY_ORDER);
	pool_destroy(&p);

	/* a data block past nr_data_blocks */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	expect_refused(&p, run(&p, 0, 98, 3, 0), -EINVAL, TM_RULE_OUT_OF_RANGE);
	pool_destroy(&p);

	/* a time wider than 24 bits; a run of length 0 */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	expect_refused(&p, run(&p, 0, 0, 1, 1u << 24), -EINVAL, TM_RULE_BAD_VALUE);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	expect_refused(&p, run(&p, 0, 0, 0, 0), -EINVAL, TM_RULE_BAD_VALUE);
	pool_destroy(&p);

	/* unknown def; ref inside a def; nested def; duplicate def */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	expect_refused(&p, ref(&p, "nope"), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(def_begin(&p, "a"), 0);
	ck_assert_int_eq(def_end(&p), 0);
	ck_assert_int_eq(def_begin(&p, "b"), 0);
	expect_refused(&p, ref(&p, "a"), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(def_begin(&p, "a"), 0);
	expect_refused(&p, def_begin(&p, "b"), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(def_begin(&p, "a"), 0);
	ck_assert_int_eq(def_end(&p), 0);
	expect_refused(&p, def_begin(&p, "a"), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);

	/* duplicate device; device inside a device; mapping outside */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(dev_begin(&p, 4), 0);
	ck_assert_int_eq(dev_end(&p), 0);
	expect_refused(&p, dev_begin(&p, 4), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(dev_begin(&p, 4), 0);
	expect_refused(&p, dev_begin(&p, 5), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	p.cur = &p.devs[0];
	expect_refused(&p, run(&p, 0, 0, 1, 0), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);

	/* bad data block size; a second superblock; events before one */
	pool_create(&p, 64, NULL);
	sb.data_block_size = 100;
	sb.nr_data_blocks = 10;
	expect_refused(&p, p.sink.superblock_begin(p.sink.ctx, &sb), -EINVAL,
		       TM_RULE_BAD_VALUE);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	expect_refused(&p, sb_begin(&p, 100), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);
	pool_create(&p, 64, NULL);
	expect_refused(&p, dev_begin(&p, 0), -EINVAL, TM_RULE_ARG);
	pool_destroy(&p);

	/* incomplete: finish before superblock_end */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 100), 0);
	ck_assert_int_eq(tm_builder_finish(p.b, &p.err), -EINVAL);
	ck_assert(tm_block_is_zero(tm_dev_mem_data(p.dev)));
	pool_destroy(&p);
}
END_TEST

START_TEST(out_of_space)
{
	struct pool p;
	struct tm_ir_superblock sb = { 0 };

	/* too many mappings for 12 blocks */
	pool_create(&p, 12, NULL);
	ck_assert_int_eq(sb_begin(&p, 100000), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	int r = 0;
	for (uint64_t k = 0; k < 5000 && !r; k++)
		r = run(&p, 2 * k, k, 1, 0);
	if (!r)
		r = dev_end(&p);
	expect_refused(&p, r, -ENOSPC, TM_RULE_TOO_SMALL);
	pool_destroy(&p);

	/* a data space map needing more bitmaps than the device has blocks */
	pool_create(&p, 12, NULL);
	sb.data_block_size = 128;
	sb.nr_data_blocks = 100ull * TM_ENTRIES_PER_BITMAP;
	expect_refused(&p, p.sink.superblock_begin(p.sink.ctx, &sb), -ENOSPC,
		       TM_RULE_TOO_SMALL);
	pool_destroy(&p);

	/* one huge run: refused before it is expanded */
	pool_create(&p, 64, NULL);
	ck_assert_int_eq(sb_begin(&p, 50ull * TM_ENTRIES_PER_BITMAP), 0);
	ck_assert_int_eq(dev_begin(&p, 0), 0);
	expect_refused(&p, run(&p, 0, 0, 800000, 0), -ENOSPC, TM_RULE_TOO_SMALL);
	pool_destroy(&p);
}
END_TEST

/* Feed a fixed pool through @sink (stops at the first failure). */
static int feed(const struct tm_ir_sink *s)
{
	struct tm_ir_superblock sb = { 0 };
	struct tm_ir_device d = { 0, 0, 0, 0, 0 };
	struct tm_ir_run run1 = { 0, 0, 700, 0 };
	int r;

	sb.data_block_size = 128;
	sb.nr_data_blocks = 20000;
	if ((r = s->superblock_begin(s->ctx, &sb)) || (r = s->def_begin(s->ctx, "d")) ||
	    (r = s->run(s->ctx, &run1)) || (r = s->def_end(s->ctx)))
		return r;
	for (d.dev_id = 0; d.dev_id < 3; d.dev_id++) {
		struct tm_ir_run own = { 1000, 1000 + 600 * d.dev_id, 600, 1 };
		if ((r = s->device_begin(s->ctx, &d)) || (r = s->ref(s->ctx, "d")) ||
		    (r = s->run(s->ctx, &own)) || (r = s->device_end(s->ctx)))
			return r;
	}
	return s->superblock_end(s->ctx);
}

START_TEST(write_failures_leave_no_superblock)
{
	struct tm_dev *mem, *f;
	struct tm_bm *bm;
	struct tm_builder *b;
	struct tm_ir_sink sink;
	struct tm_error e;
	uint64_t total;
	uint8_t buf[TM_BLOCK_SIZE];

	/* how many I/O calls a good build makes */
	ck_assert_int_eq(tm_dev_mem_create(128, &mem), 0);
	ck_assert_int_eq(tm_dev_fault_wrap(mem, 0, 2, &f), 0);
	ck_assert_int_eq(tm_bm_create(f, 0, &bm), 0);
	ck_assert_int_eq(tm_builder_create(bm, NULL, &b, &e), 0);
	tm_builder_sink(b, &sink);
	ck_assert_int_eq(feed(&sink), 0);
	ck_assert_int_eq(tm_builder_finish(b, &e), 0);
	total = tm_dev_fault_count(f);
	tm_builder_destroy(b);
	tm_bm_destroy(bm);
	tm_dev_close(f);
	ck_assert_uint_gt(total, 3);

	for (uint64_t nth = 1; nth <= total; nth++) {
		ck_assert_int_eq(tm_dev_mem_create(128, &mem), 0);
		ck_assert_int_eq(tm_dev_fault_wrap(mem, nth, 2, &f), 0);
		ck_assert_int_eq(tm_bm_create(f, 0, &bm), 0);
		int r = tm_builder_create(bm, NULL, &b, &e);
		if (!r) {
			tm_builder_sink(b, &sink);
			r = feed(&sink);
			if (!r)
				r = tm_builder_finish(b, &e);
			else
				ck_assert_int_eq(tm_builder_error(b)->rule, TM_RULE_IO);
			tm_builder_destroy(b);
		}
		ck_assert_msg(r == -EIO, "write %llu failing: got %d",
			      (unsigned long long)nth, r);
		/*
		 * Block 0 holds no valid superblock (reads still work), unless
		 * only the very last flush, after the superblock, failed.
		 */
		ck_assert_int_eq(tm_dev_read(f, 0, 1, buf), 0);
		if (nth < total)
			ck_assert_int_ne(tm_block_validate(&tm_sb_validator, buf, 0, &e), 0);
		tm_bm_destroy(bm);
		tm_dev_close(f);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("builder");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rcmap_counts);
	tcase_add_test(tc, empty_pools);
	tcase_add_test(tc, leaf_packing);
	tcase_add_test(tc, defs_become_shared_leaves);
	tcase_add_test(tc, big_space_maps);
	tcase_add_test(tc, overrides);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, out_of_space);
	tcase_add_test(tc, write_failures_leave_no_superblock);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
