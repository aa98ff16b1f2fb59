/*
 * test_builder.c - the metadata builder (thinmeta/builder.h) and its parts:
 * feed IR events into an in-memory device, read the result back with the
 * read engine, and recount every reference from scratch (FORMAT.md §7.6,
 * §7.7) to compare with both on-disk space maps.  Also thin_restore's XML
 * reader on the builder: several threads against one parser, the
 * canonical-line path against expat.
 */
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unit_util.h"
#include "build_internal.h"
#include "thinmeta/builder.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"
#include "xml_read.h"

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
		/* (no ck_assert in the loop: each one is a write to Check's log) */
		if ((seed >> 20) % 5 < 3 || !ref[b]) {
			if (tm_rcmap_inc(&m, b))
				ck_abort_msg("step %d: inc failed", step);
			alloc += ref[b]++ == 0;
		} else {
			uint32_t now;
			if (tm_rcmap_dec(&m, b, &now) || now != --ref[b])
				ck_abort_msg("step %d: dec failed or gave %u", step, now);
			alloc -= ref[b] == 0;
		}
		if (step % 1000 == 0)
			for (uint64_t i = 0; i < 600; i++)
				if (tm_rcmap_get(&m, i * 97 % n) != ref[i * 97 % n])
					ck_abort_msg("step %d: block %llu counted %u, not %u", step,
						     (unsigned long long)(i * 97 % n),
						     tm_rcmap_get(&m, i * 97 % n), ref[i * 97 % n]);
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

/* A run's blocks counted at once, as one by one. */
START_TEST(rcmap_inc_range_counts_like_inc)
{
	const uint64_t n = 2 * TM_ENTRIES_PER_BITMAP + 1000;
	struct tm_rcmap a, c;
	uint64_t seed = 7, bad;

	ck_assert_int_eq(tm_rcmap_init(&a, n), 0);
	ck_assert_int_eq(tm_rcmap_init(&c, n), 0);
	for (int step = 0; step < 3000; step++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		/* mostly around the first chunk boundary, so counts pass 3 */
		uint64_t b = step % 7 ? TM_ENTRIES_PER_BITMAP - 300 + (seed >> 33) % 600
				      : (seed >> 33) % n;
		uint64_t len = 1 + (seed >> 13) % (step % 50 ? 70 : 2 * TM_ENTRIES_PER_BITMAP);
		if (len > n - b)
			len = n - b;
		if (tm_rcmap_inc_range(&a, b, len, &bad))
			ck_abort_msg("step %d: inc_range(%llu, %llu) failed", step,
				     (unsigned long long)b, (unsigned long long)len);
		for (uint64_t i = 0; i < len; i++)
			if (tm_rcmap_inc(&c, b + i))
				ck_abort_msg("step %d: inc failed", step);
	}
	ck_assert_uint_eq(a.nr_allocated, c.nr_allocated);
	for (uint64_t b = 0; b < n; b++)
		if (tm_rcmap_get(&a, b) != tm_rcmap_get(&c, b))
			ck_abort_msg("block %llu: %u, not %u", (unsigned long long)b,
				     tm_rcmap_get(&a, b), tm_rcmap_get(&c, b));
	ck_assert_uint_eq(a.nr_overflow, c.nr_overflow);
	ck_assert_uint_gt(a.nr_overflow, 100);
	/* a count through every form: bitmap, overflow byte, table, and back */
	for (uint32_t k = tm_rcmap_get(&a, 5); k < 600; k++)
		if (tm_rcmap_inc(&a, 5) || tm_rcmap_get(&a, 5) != k + 1)
			ck_abort_msg("count %u: inc gives %u", k, tm_rcmap_get(&a, 5));
	uint64_t *keys;
	uint32_t *vals;
	size_t no;
	ck_assert_int_eq(tm_rcmap_overflow(&a, &keys, &vals, &no), 0);
	ck_assert_uint_eq(no, a.nr_overflow);
	for (size_t i = 0; i < no; i++)
		if ((i && keys[i] <= keys[i - 1]) || vals[i] != tm_rcmap_get(&a, keys[i]) || vals[i] < 3)
			ck_abort_msg("overflow entry %zu: block %llu count %u", i,
				     (unsigned long long)keys[i], vals[i]);
	ck_assert_uint_eq(keys[0], 5);
	ck_assert_uint_eq(vals[0], 600);
	free(keys);
	free(vals);
	for (uint32_t k = 600; k > 0; k--) {
		uint32_t now;
		if (tm_rcmap_dec(&a, 5, &now) || now != k - 1 || tm_rcmap_get(&a, 5) != k - 1)
			ck_abort_msg("count %u: dec gives %u", k, now);
	}
	ck_assert_int_eq(tm_rcmap_inc_range(&a, n - 5, 10, &bad), -ERANGE);
	ck_assert_uint_eq(bad, n);
	ck_assert_int_eq(tm_rcmap_inc_range(&a, n, 1, &bad), -ERANGE);
	ck_assert_uint_eq(bad, n);
	tm_rcmap_free(&a);
	tm_rcmap_free(&c);
}
END_TEST

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

/* ------------------------------------------------------------------ */
/*
 * The XML reader on several threads (restore/xml_par.c): whatever the
 * cutting, the builder must get the same events, and a bad document the
 * same error, as from one expat parser (xml_read).
 */

struct text {
	char *s;
	size_t len, cap;
};

static void tprintf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tprintf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		/* no ck_assert here: each one is a write to Check's log */
		if (n < 0)
			abort();
		if (t->len + (size_t)n < t->cap)
			break;
		t->cap = t->cap ? 2 * t->cap + (size_t)n : 4096 + (size_t)n;
		if (!(t->s = realloc(t->s, t->cap)))
			abort();
	}
	t->len += (size_t)n;
}

static void text_reset(struct text *t)
{
	t->len = 0;
	tprintf(t, "%s", "");	/* allocated and terminated */
}

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
	return rnd_state >> 33;
}

/* A pool in thin_dump's layout: defs, devices with refs, runs of all sizes. */
static void gen_doc(struct text *t, unsigned seed, int ndefs, int ndevs, int nruns)
{
	rnd_state = seed;
	tprintf(t, "<superblock uuid=\"\" time=\"3\" transaction=\"9\" flags=\"0\" version=\"2\" "
		"data_block_size=\"128\" nr_data_blocks=\"1000000\">\n");
	for (int d = 0; d < ndefs; d++) {
		uint64_t o = 0;
		tprintf(t, "  <def name=\"d%d\">\n", d);
		for (int i = 0; i < nruns / 2; i++, o++) {
			uint64_t len = 1 + rnd() % 9;
			o += rnd() % 3;
			if (len == 1)
				tprintf(t, "    <single_mapping origin_block=\"%llu\" data_block=\"%llu\" "
					"time=\"%u\"/>\n", (unsigned long long)o,
					(unsigned long long)(rnd() % 900000), (unsigned)(rnd() % 4));
			else
				tprintf(t, "    <range_mapping origin_begin=\"%llu\" data_begin=\"%llu\" "
					"length=\"%llu\" time=\"%u\"/>\n", (unsigned long long)o,
					(unsigned long long)(rnd() % 900000), (unsigned long long)len,
					(unsigned)(rnd() % 4));
			o += len - 1;
		}
		tprintf(t, "  </def>\n");
	}
	for (int v = 0; v < ndevs; v++) {
		uint64_t o = 5000000;
		tprintf(t, "  <device dev_id=\"%d\" mapped_blocks=\"%d\" transaction=\"%d\" "
			"creation_time=\"%d\" snap_time=\"%d\">\n", v * 3, v, v % 5, v % 2, v % 3);
		if (v % 4 == 3) {	/* an empty device */
			tprintf(t, "  </device>\n");
			continue;
		}
		if (ndefs && v % 2)
			tprintf(t, "    <ref name=\"d%d\"/>\n", v % ndefs);
		for (int i = 0; i < nruns; i++, o++) {
			uint64_t len = 1 + rnd() % (i % 50 ? 6 : 3000);
			o += rnd() % 4;
			if (len == 1)
				tprintf(t, "    <single_mapping origin_block=\"%llu\" data_block=\"%llu\" "
					"time=\"%u\"/>\n", (unsigned long long)o,
					(unsigned long long)(rnd() % 990000), (unsigned)(rnd() % 4));
			else
				tprintf(t, "    <range_mapping origin_begin=\"%llu\" data_begin=\"%llu\" "
					"length=\"%llu\" time=\"%u\"/>\n", (unsigned long long)o,
					(unsigned long long)(rnd() % 990000), (unsigned long long)len,
					(unsigned)(rnd() % 4));
			o += len - 1;
		}
		tprintf(t, "  </device>\n");
	}
	tprintf(t, "</superblock>\n");
}

/* @t in a file (@fd: reuse that one, else a new one), positioned at 0. */
static int text_fd_in(const struct text *t, int fd)
{
	if (fd < 0)
		fd = memfd_create("xml", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) || pwrite(fd, t->s, t->len, 0) != (ssize_t)t->len ||
	    lseek(fd, 0, SEEK_SET))
		ck_abort_msg("cannot write the XML to a memfd");
	return fd;
}

static int text_fd(const struct text *t)
{
	return text_fd_in(t, -1);
}

#define XML_DEV_BLOCKS 1024u

struct xml_result {
	int r;
	struct xml_error xerr;
	struct tm_error berr;		/* the builder's */
	int finish;			/* tm_builder_finish() */
	uint8_t *image;			/* the device's bytes */
	struct xml_read_stats stats;
};

/* Restore @t on a fresh in-memory device: threads 0 = xml_read(). */
static void xml_restore(const struct text *t, unsigned threads, uint64_t piece, int expat_only,
			struct xml_result *res)
{
	struct xml_read_opts o = { NULL, NULL, threads, piece, &res->stats, expat_only };
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct tm_builder *b;
	struct tm_ir_sink sink;
	struct tm_error e;
	int fd = text_fd(t);

	memset(res, 0, sizeof(*res));
	ck_assert_int_eq(tm_dev_mem_create(XML_DEV_BLOCKS, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	ck_assert_int_eq(tm_builder_create(bm, NULL, &b, &e), 0);
	tm_builder_sink(b, &sink);
	res->r = threads ? xml_read_parallel(fd, &sink, &o, &res->xerr)
			 : xml_read(fd, &sink, &o, &res->xerr);
	res->berr = *tm_builder_error(b);
	if (!res->r)
		res->finish = tm_builder_finish(b, &e);
	res->image = malloc((size_t)XML_DEV_BLOCKS * TM_BLOCK_SIZE);
	ck_assert_ptr_nonnull(res->image);
	memcpy(res->image, tm_dev_mem_data(dev), (size_t)XML_DEV_BLOCKS * TM_BLOCK_SIZE);
	tm_builder_destroy(b);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	close(fd);
}

static const struct { unsigned threads; uint64_t piece; int expat_only; } par_cfgs[] = {
	{ 2, 1, 0 }, { 2, 333, 0 }, { 2, 8192, 0 }, { 3, 100, 0 }, { 4, 2000, 0 },
	{ 2, 333, 1 }, { 2, 1, 1 },
};

START_TEST(xml_parallel_same_bytes)
{
	static const int shapes[][4] = {	/* seed, defs, devices, runs */
		{ 1, 0, 1, 2000 }, { 2, 0, 40, 30 }, { 3, 3, 8, 400 }, { 4, 6, 3, 900 },
		{ 5, 0, 0, 0 }, { 6, 2, 0, 50 }, { 7, 0, 5, 0 }, { 8, 1, 12, 200 },
	};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		struct text t = { 0 };
		struct xml_result seq, par;

		gen_doc(&t, (unsigned)shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3]);
		xml_restore(&t, 0, 0, 0, &seq);
		ck_assert_msg(seq.r == 0 && seq.finish == 0, "shape %zu: %s / %s", s, seq.xerr.msg,
			      seq.berr.msg);
		for (size_t c = 0; c < sizeof(par_cfgs) / sizeof(par_cfgs[0]); c++) {
			xml_restore(&t, par_cfgs[c].threads, par_cfgs[c].piece,
				    par_cfgs[c].expat_only, &par);
			ck_assert_msg(par.r == 0 && par.finish == 0, "shape %zu cfg %zu: %s", s, c,
				      par.xerr.msg);
			ck_assert_msg(!par.stats.reread, "shape %zu cfg %zu fell back to xml_read", s, c);
			ck_assert_msg(par.stats.pieces > 1 || t.len < 200,
				      "shape %zu cfg %zu: %llu pieces", s, c,
				      (unsigned long long)par.stats.pieces);
			ck_assert_msg(par_cfgs[c].expat_only ? par.stats.fast_bytes == 0
							     : par.stats.fast_bytes > 0 || t.len < 200,
				      "shape %zu cfg %zu: %llu canonical bytes", s, c,
				      (unsigned long long)par.stats.fast_bytes);
			ck_assert_msg(!memcmp(seq.image, par.image,
					      (size_t)XML_DEV_BLOCKS * TM_BLOCK_SIZE),
				      "shape %zu cfg %zu: other bytes than xml_read", s, c);
			free(par.image);
		}
		free(seq.image);
		free(t.s);
	}
}
END_TEST

/* @t with line @n (1-based) replaced by @line (NULL: deleted). */
static void replace_line(struct text *out, const struct text *t, unsigned n, const char *line)
{
	const char *p = t->s, *end = t->s + t->len;

	text_reset(out);
	for (unsigned i = 1; p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (i != n)
			tprintf(out, "%.*s", (int)l, p);
		else if (line)
			tprintf(out, "%s\n", line);
		p += l;
	}
}

START_TEST(xml_parallel_errors_in_later_pieces)
{
	static const struct { unsigned line; const char *text; } bad[] = {
		{ 1500, "    <foo/>" },						/* reader */
		{ 1501, "    <range_mapping origin_begin=\"1\" data_begin=\"1\" length=\"1\" time=\"16777216\"/>" },
		{ 1502, "    <range_mapping origin_begin=\"0\" data_begin=\"1\" length=\"1\" time=\"0\"/>" },	/* builder */
		{ 1503, "    <single_mapping origin_block=\"99999999\" data_block=\"5\" time=\"0\">" },	/* unclosed */
		{ 1504, "  </device>" },						/* a seam that does not hold */
		{ 1505, "    <!-- <device" },
		{ 1506, "text" },
		{ 2800, "  <device dev_id=\"0\" mapped_blocks=\"0\" transaction=\"0\" creation_time=\"0\" snap_time=\"0\">" },
		{ 0, NULL },	/* the last line, </superblock>, deleted */
	};
	struct text t = { 0 }, b = { 0 };
	struct xml_result seq, par;

	gen_doc(&t, 11, 2, 8, 400);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned nlines = 0;
		for (size_t j = 0; j < t.len; j++)
			nlines += t.s[j] == '\n';
		replace_line(&b, &t, bad[i].line ? bad[i].line : nlines, bad[i].text);
		xml_restore(&b, 0, 0, 0, &seq);
		ck_assert_msg(seq.r != 0, "case %zu: accepted", i);
		ck_assert_msg(seq.xerr.line >= 1400, "case %zu: error on line %lu", i, seq.xerr.line);
		for (size_t c = 0; c < sizeof(par_cfgs) / sizeof(par_cfgs[0]); c++) {
			xml_restore(&b, par_cfgs[c].threads, par_cfgs[c].piece,
				    par_cfgs[c].expat_only, &par);
			ck_assert_msg(par.r != 0, "case %zu cfg %zu: accepted", i, c);
			ck_assert_msg(par.stats.pieces > 1, "case %zu cfg %zu: one piece", i, c);
			ck_assert_msg(par.xerr.line == seq.xerr.line &&
				      par.xerr.column == seq.xerr.column &&
				      par.xerr.sink_err == seq.xerr.sink_err &&
				      !strcmp(par.xerr.msg, seq.xerr.msg) &&
				      !strcmp(par.berr.msg, seq.berr.msg),
				      "case %zu cfg %zu: %lu:%lu '%s' '%s' instead of %lu:%lu '%s' '%s'",
				      i, c, par.xerr.line, par.xerr.column, par.xerr.msg, par.berr.msg,
				      seq.xerr.line, seq.xerr.column, seq.xerr.msg, seq.berr.msg);
			ck_assert(tm_block_is_zero(par.image));
			free(par.image);
		}
		free(seq.image);
	}
	free(t.s);
	free(b.s);
}
END_TEST

/* An IR sink that writes what it is told as text. */
static int tx_sb(void *c, const struct tm_ir_superblock *sb)
{
	tprintf(c, "sb %llu;", (unsigned long long)sb->nr_data_blocks);
	return 0;
}

static int tx_sb_end(void *c)
{
	tprintf(c, "/sb;");
	return 0;
}

static int tx_def(void *c, const char *name)
{
	tprintf(c, "def '%s';", name);
	return 0;
}

static int tx_def_end(void *c)
{
	tprintf(c, "/def;");
	return 0;
}

static int tx_dev(void *c, const struct tm_ir_device *d)
{
	tprintf(c, "dev %llu %llu %llu %u %u;", (unsigned long long)d->dev_id,
		(unsigned long long)d->mapped_blocks, (unsigned long long)d->transaction,
		d->creation_time, d->snap_time);
	return 0;
}

static int tx_dev_end(void *c)
{
	tprintf(c, "/dev;");
	return 0;
}

static int tx_ref(void *c, const char *name)
{
	tprintf(c, "ref '%s';", name);
	return 0;
}

static int tx_run(void *c, const struct tm_ir_run *m)
{
	tprintf(c, "run %llu %llu %llu %u;", (unsigned long long)m->origin_begin,
		(unsigned long long)m->data_begin, (unsigned long long)m->length, m->time);
	return 0;
}

static void text_sink(struct text *t, struct tm_ir_sink *s)
{
	*s = (struct tm_ir_sink){ t, tx_sb, tx_sb_end, tx_def, tx_def_end, tx_dev, tx_dev_end,
				  tx_ref, tx_run };
}

/* @s[0, len) with control bytes as \xNN, for messages (static buffer). */
static const char *esc(const char *s, size_t len)
{
	static char out[1024];
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
	return out;
}

/*
 * Every line the canonical-line path takes, it takes as expat reads it:
 * thin_dump's lines, mutated byte by byte, in their contexts.
 */
START_TEST(xml_lines_agree_with_expat)
{
	static const char sb[] = "<superblock uuid=\"\" time=\"1\" transaction=\"2\" "
				 "data_block_size=\"128\" nr_data_blocks=\"100\">\n";
	/* a context, the lines that open it, a line valid in it */
	static const struct { enum xml_ctx ctx; const char *open, *line; } base[] = {
		{ XML_CTX_DEV, "  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" "
		  "creation_time=\"0\" snap_time=\"0\">\n",
		  "    <range_mapping origin_begin=\"12\" data_begin=\"34\" length=\"56\" time=\"7\"/>" },
		{ XML_CTX_DEF, "  <def name=\"x\">\n",
		  "    <single_mapping origin_block=\"9\" data_block=\"8\" time=\"16777215\"/>" },
		{ XML_CTX_DEV, "  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" "
		  "creation_time=\"0\" snap_time=\"0\">\n", "    <ref name=\"a-b.c\"/>" },
		{ XML_CTX_SB, "",
		  "  <device dev_id=\"4294967295\" mapped_blocks=\"1\" transaction=\"2\" "
		  "creation_time=\"3\" snap_time=\"4\">" },
		{ XML_CTX_SB, "", "  <def name=\"n0\">" },
		{ XML_CTX_DEV, "  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" "
		  "creation_time=\"0\" snap_time=\"0\">\n", "  </device>" },
		{ XML_CTX_DEF, "  <def name=\"x\">\n", "  </def>" },
		{ XML_CTX_DEV, "  <device dev_id=\"1\" mapped_blocks=\"0\" transaction=\"0\" "
		  "creation_time=\"0\" snap_time=\"0\">\n",
		  "    <range_mapping origin_begin=\"9999999999999999999\" data_begin=\"0\" "
		  "length=\"1\" time=\"0\"/>" },
	};
	static const char alphabet[] = "0123456789 \t\r\n\"'<>/=&;#xX-abdefgilmnoprstuv_\x80\xc3\xa9";
	struct text line = { 0 }, doc = { 0 }, seq = { 0 }, fast = { 0 }, want = { 0 };
	unsigned taken = 0, declined = 0;
	int fd = -1;

	rnd_state = 42;
	for (int iter = 0; iter < 30000; iter++) {
		size_t k = (size_t)iter % (sizeof(base) / sizeof(base[0]));
		struct tm_ir_sink s;
		struct xml_error xerr;
		enum xml_ctx ctx = base[k].ctx;
		size_t len, used, at;
		int r, e;

		text_reset(&line);
		tprintf(&line, "%s", base[k].line);
		for (int m = iter < 8 ? 0 : 1 + (int)(rnd() % 3); m > 0; m--) {
			at = rnd() % (line.len + 1);
			char ch = alphabet[rnd() % (sizeof(alphabet) - 1)];
			switch (rnd() % 3) {
			case 0:	/* replace */
				if (at < line.len)
					line.s[at] = ch;
				break;
			case 1:	/* insert */
				tprintf(&line, " ");
				memmove(line.s + at + 1, line.s + at, line.len - at - 1);
				line.s[at] = ch;
				break;
			default:	/* delete */
				if (at < line.len) {
					memmove(line.s + at, line.s + at + 1, line.len - at - 1);
					line.len--;
				}
				break;
			}
		}
		tprintf(&line, "\n");
		len = line.len;

		/* the fast path on the line alone */
		text_reset(&fast);
		text_sink(&fast, &s);
		used = xml_lines(line.s, len, &ctx, &s, &e);
		if (e)
			ck_abort_msg("iteration %d: the sink failed", iter);
		if (used == 0) {
			declined++;
			continue;
		}
		/* whole lines: a mutation may have cut the line in two */
		if (used != len && line.s[used - 1] != '\n')
			ck_abort_msg("iteration %d: took %zu of %zu bytes", iter, used, len);
		len = used;
		taken++;

		/* expat on the line in a document */
		text_reset(&doc);
		tprintf(&doc, "%s%s%.*s%s</superblock>\n", sb, base[k].open, (int)len, line.s,
			ctx == XML_CTX_DEV ? "  </device>\n" : ctx == XML_CTX_DEF ? "  </def>\n" : "");
		text_reset(&seq);
		text_sink(&seq, &s);
		fd = text_fd_in(&doc, fd);
		r = xml_read(fd, &s, NULL, &xerr);
		if (r)
			ck_abort_msg("iteration %d: took '%s', expat says %s", iter,
				     esc(line.s, len), xerr.msg);
		/* expat's events: those of the context's lines around the line's */
		text_reset(&want);
		tprintf(&want, "sb 100;%s%s%s/sb;",
			base[k].ctx == XML_CTX_DEV ? "dev 1 0 0 0 0;" :
			base[k].ctx == XML_CTX_DEF ? "def 'x';" : "", fast.s,
			ctx == XML_CTX_DEV ? "/dev;" : ctx == XML_CTX_DEF ? "/def;" : "");
		if (strcmp(seq.s, want.s))
			ck_abort_msg("iteration %d: '%s' gave '%s', expat '%s'", iter,
				     esc(line.s, len), fast.s, seq.s);
	}
	/* the mutations do not all break the lines */
	ck_assert_uint_gt(taken, 1000);
	ck_assert_uint_gt(declined, 1000);
	close(fd);
	free(line.s);
	free(doc.s);
	free(seq.s);
	free(fast.s);
	free(want.s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("builder");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rcmap_counts);
	tcase_add_test(tc, rcmap_inc_range_counts_like_inc);
	tcase_add_test(tc, empty_pools);
	tcase_add_test(tc, leaf_packing);
	tcase_add_test(tc, defs_become_shared_leaves);
	tcase_add_test(tc, big_space_maps);
	tcase_add_test(tc, overrides);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, out_of_space);
	tcase_add_test(tc, write_failures_leave_no_superblock);
	tcase_add_test(tc, xml_parallel_same_bytes);
	tcase_add_test(tc, xml_parallel_errors_in_later_pieces);
	tcase_add_test(tc, xml_lines_agree_with_expat);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
