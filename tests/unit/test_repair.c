/*
 * test_repair.c - the salvager (thinmeta/repair.h): pools written by the
 * builder onto an in-memory device, damaged block by block, salvaged, and
 * what comes out compared with what went in.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit_util.h"
#include "thinmeta/builder.h"
#include "thinmeta/dump.h"
#include "thinmeta/metadata.h"
#include "thinmeta/repair.h"

#define NR_BLOCKS 1024
#define MAX_DEVS 8

struct mapping {
	uint64_t dev, key, data;
	uint32_t time;
};

/* What a pool holds, as a sorted list of mappings. */
struct model {
	struct mapping *m;
	size_t n, cap;
};

static void model_add(struct model *md, uint64_t dev, uint64_t key, uint64_t data, uint32_t t)
{
	if (md->n == md->cap) {
		md->cap = md->cap ? 2 * md->cap : 1024;
		md->m = realloc(md->m, md->cap * sizeof(*md->m));
		ck_assert_ptr_nonnull(md->m);
	}
	md->m[md->n++] = (struct mapping){ dev, key, data, t };
}

static int cmp_mapping(const void *a, const void *b)
{
	const struct mapping *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->key < y->key ? -1 : (x->key > y->key);
}

static int has(const struct model *md, const struct mapping *m)
{
	const struct mapping *f = bsearch(m, md->m, md->n, sizeof(*m), cmp_mapping);

	return f && f->data == m->data && f->time == m->time;
}

/* ------------------------------------------------------------------ */
/* A sink that collects mappings (expanded emission: no defs). */

struct collect {
	struct model md;
	uint64_t dev;
	uint64_t nr_devs;
	uint64_t mapped[MAX_DEVS * 4];
	struct tm_ir_device devs[MAX_DEVS * 4];
	struct tm_ir_superblock sb;
};

static int c_sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	((struct collect *)ctx)->sb = *sb;
	return 0;
}

static int c_nop(void *ctx)
{
	(void)ctx;
	return 0;
}

static int c_def_begin(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	ck_abort_msg("a def in an expanded emission");
	return -EINVAL;
}

static int c_dev_begin(void *ctx, const struct tm_ir_device *d)
{
	struct collect *c = ctx;

	ck_assert_uint_lt(c->nr_devs, MAX_DEVS * 4);
	c->dev = d->dev_id;
	c->devs[c->nr_devs++] = *d;
	return 0;
}

static int c_ref(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	ck_abort_msg("a ref in an expanded emission");
	return -EINVAL;
}

static int c_run(void *ctx, const struct tm_ir_run *r)
{
	struct collect *c = ctx;

	for (uint64_t i = 0; i < r->length; i++)
		model_add(&c->md, c->dev, r->origin_begin + i, r->data_begin + i, r->time);
	return 0;
}

static void collect_sink(struct collect *c, struct tm_ir_sink *s)
{
	memset(c, 0, sizeof(*c));
	s->ctx = c;
	s->superblock_begin = c_sb_begin;
	s->superblock_end = c_nop;
	s->def_begin = c_def_begin;
	s->def_end = c_nop;
	s->device_begin = c_dev_begin;
	s->device_end = c_nop;
	s->ref = c_ref;
	s->run = c_run;
}

/* ------------------------------------------------------------------ */
/* Pools */

struct pool {
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct model md;
};

/*
 * Devices 0..n-1 with counts[i] mappings (keys 2j: no runs merge, so one
 * mapping per line); device i's data blocks from 10000*i; every third
 * mapping written at time 1.  Device @share_with (if >= 0) also refs a def
 * of 600 mappings that device 0 refs as well (shared leaves).
 */
static void pool_make(struct pool *p, const uint64_t *counts, size_t n, int share)
{
	struct tm_builder *b;
	struct tm_ir_sink s;
	struct tm_error e;
	struct tm_ir_superblock sb = { 0 };

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(tm_dev_mem_create(NR_BLOCKS, &p->dev), 0);
	ck_assert_int_eq(tm_bm_create(p->dev, 0, &p->bm), 0);
	ck_assert_int_eq(tm_builder_create(p->bm, NULL, &b, &e), 0);
	tm_builder_sink(b, &s);
	sb.time = 1;
	sb.transaction = 7;
	sb.data_block_size = 128;
	sb.nr_data_blocks = 100000;
	ck_assert_int_eq(s.superblock_begin(s.ctx, &sb), 0);
	if (share) {
		ck_assert_int_eq(s.def_begin(s.ctx, "d"), 0);
		for (uint64_t j = 0; j < 600; j++) {
			struct tm_ir_run r = { 2 * j, 90000 + j, 1, 0 };
			ck_assert_int_eq(s.run(s.ctx, &r), 0);
		}
		ck_assert_int_eq(s.def_end(s.ctx), 0);
	}
	for (size_t i = 0; i < n; i++) {
		struct tm_ir_device d = { i, counts[i] + (share && i < 2 ? 600 : 0), i, 0, 1 };
		uint64_t base = share && i < 2 ? 1200 : 0;
		ck_assert_int_eq(s.device_begin(s.ctx, &d), 0);
		if (share && i < 2) {
			ck_assert_int_eq(s.ref(s.ctx, "d"), 0);
			for (uint64_t j = 0; j < 600; j++)
				model_add(&p->md, i, 2 * j, 90000 + j, 0);
		}
		for (uint64_t j = 0; j < counts[i]; j++) {
			struct tm_ir_run r = { base + 2 * j, 10000 * i + j, 1, j % 3 == 0 };
			ck_assert_int_eq(s.run(s.ctx, &r), 0);
			model_add(&p->md, i, base + 2 * j, 10000 * i + j, j % 3 == 0);
		}
		ck_assert_int_eq(s.device_end(s.ctx), 0);
	}
	ck_assert_int_eq(s.superblock_end(s.ctx), 0);
	ck_assert_msg(tm_builder_finish(b, &e) == 0, "%s", e.msg);
	tm_builder_destroy(b);
	qsort(p->md.m, p->md.n, sizeof(*p->md.m), cmp_mapping);
	tm_bm_invalidate(p->bm);
}

static void pool_free(struct pool *p)
{
	tm_bm_destroy(p->bm);
	tm_dev_close(p->dev);
	free(p->md.m);
}

/* The root of device @id's mapping tree, and its leaves. */
static uint64_t dev_root(struct pool *p, uint64_t id)
{
	struct tm_view v;
	struct tm_device *devs;
	struct tm_error e;
	uint64_t n, root = 0;

	ck_assert_int_eq(tm_view_live(p->bm, &v, &e), 0);
	ck_assert_int_eq(tm_read_devices(p->bm, &v, 0, &devs, &n, &e), 0);
	for (uint64_t i = 0; i < n; i++)
		if (devs[i].dev_id == id)
			root = devs[i].mapping_root;
	free(devs);
	ck_assert_uint_ne(root, 0);
	return root;
}

static uint64_t dev_leaf(struct pool *p, uint64_t id, uint64_t k, uint32_t *nr_entries)
{
	uint64_t *leaves, n, b;
	struct tm_error e;
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node nd;

	ck_assert_int_eq(tm_btree_leaves(p->bm, dev_root(p, id), &leaves, &n, &e), 0);
	ck_assert_uint_lt(k, n);
	b = leaves[k];
	free(leaves);
	ck_assert_int_eq(tm_bm_read(p->bm, b, &tm_node_validator, buf, &e), 0);
	tm_node_view(buf, b, &nd);
	*nr_entries = nd.nr_entries;
	return b;
}

static struct tm_superblock live_sb(struct pool *p)
{
	struct tm_superblock sb;
	struct tm_error e;

	ck_assert_int_eq(tm_read_superblock(p->bm, &sb, &e), 0);
	return sb;
}

static void zero_block(struct pool *p, uint64_t b)
{
	memset(mem_block(p->dev, b), 0, TM_BLOCK_SIZE);
	tm_bm_invalidate(p->bm);
}

static void break_checksum(struct pool *p, uint64_t b)
{
	mem_block(p->dev, b)[0] ^= 0xff;
	tm_bm_invalidate(p->bm);
}

/* Salvage, emit expanded into @c; the salvage is returned for its report. */
static struct tm_salvage *salvage(struct pool *p, const struct tm_repair_opts *o,
				  struct collect *c, int expect)
{
	struct tm_salvage *s;
	struct tm_error e;
	struct tm_ir_sink sink;
	struct tm_salvage_emit_opts eo = { 0 };
	int r;

	tm_error_clear(&e);
	r = tm_salvage(p->bm, o, &s, &e);
	ck_assert_msg(r == expect, "tm_salvage: %d (%s), expected %d", r, e.msg, expect);
	if (r)
		return s;
	collect_sink(c, &sink);
	eo.expand_shared = 1;
	ck_assert_msg(tm_salvage_emit(s, &eo, &sink, &e) == 0, "emit: %s", e.msg);
	qsort(c->md.m, c->md.n, sizeof(*c->md.m), cmp_mapping);
	return s;
}

/* Every salvaged mapping is one the pool had. */
static void no_wrong(const struct pool *p, const struct collect *c)
{
	for (size_t i = 0; i < c->md.n; i++)
		ck_assert_msg(has(&p->md, &c->md.m[i]), "device %llu key %llu: not in the pool",
			      (unsigned long long)c->md.m[i].dev,
			      (unsigned long long)c->md.m[i].key);
}

static const struct tm_repair_dev *rep_dev(const struct tm_repair_report *r, uint64_t id)
{
	for (size_t i = 0; i < r->nr_devs; i++)
		if (r->devs[i].dev_id == id)
			return &r->devs[i];
	ck_abort_msg("device %llu not in the report", (unsigned long long)id);
	return NULL;
}

/* ------------------------------------------------------------------ */

START_TEST(intact_pool_salvages_whole)
{
	static const uint64_t counts[] = { 2000, 300, 0, 700 };
	struct pool p;
	struct collect c;

	pool_make(&p, counts, 4, 1);
	struct tm_salvage *s = salvage(&p, NULL, &c, 0);
	const struct tm_repair_report *r = tm_salvage_report(s);
	ck_assert_int_eq(r->sb_intact, 1);
	ck_assert_int_eq(r->scanned, 0);	/* nothing damaged: no scan */
	ck_assert_uint_eq(r->nr_bad, 0);
	ck_assert_uint_eq(r->nr_devs, 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(r->devs[i].state, TM_DEV_INTACT);
	ck_assert_uint_eq(c.md.n, p.md.n);
	no_wrong(&p, &c);
	ck_assert_uint_eq(c.sb.transaction, 7);
	ck_assert_uint_eq(c.sb.nr_data_blocks, 100000);
	ck_assert_uint_eq(c.devs[0].mapped_blocks, 2600);
	tm_salvage_free(s);
	free(c.md.m);

	/* the same with a full scan */
	struct tm_repair_opts o = { 0 };
	o.force_scan = 1;
	s = salvage(&p, &o, &c, 0);
	ck_assert_int_eq(tm_salvage_report(s)->scanned, 1);
	ck_assert_uint_eq(c.md.n, p.md.n);
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

/* Written by the builder, dumped by tm_dump: the same pool, sharing kept. */
START_TEST(salvage_into_builder)
{
	static const uint64_t counts[] = { 2000, 300, 5 };
	struct pool p, q;
	struct tm_salvage *s;
	struct tm_builder *b;
	struct tm_builder_opts bo = { 0 };
	struct tm_builder_stats st;
	struct tm_ir_sink sink;
	struct tm_error e;
	struct collect c;

	pool_make(&p, counts, 3, 1);
	ck_assert_int_eq(tm_salvage(p.bm, NULL, &s, &e), 0);
	memset(&q, 0, sizeof(q));
	ck_assert_int_eq(tm_dev_mem_create(NR_BLOCKS, &q.dev), 0);
	ck_assert_int_eq(tm_bm_create(q.dev, 0, &q.bm), 0);
	bo.recount_mapped_blocks = 1;
	ck_assert_int_eq(tm_builder_create(q.bm, &bo, &b, &e), 0);
	tm_builder_sink(b, &sink);
	ck_assert_int_eq(tm_salvage_emit(s, NULL, &sink, &e), 0);
	ck_assert_int_eq(tm_builder_finish(b, &e), 0);
	tm_builder_stats(b, &st);
	ck_assert_uint_eq(st.nr_defs, 1);	/* the shared leaves stay shared */
	tm_builder_destroy(b);
	tm_salvage_free(s);

	struct tm_dump_opts d = { 0 };
	d.expand_shared = 1;
	collect_sink(&c, &sink);
	tm_bm_invalidate(q.bm);
	ck_assert_int_eq(tm_dump(q.bm, &d, &sink, &e), 0);
	qsort(c.md.m, c.md.n, sizeof(*c.md.m), cmp_mapping);
	ck_assert_uint_eq(c.md.n, p.md.n);
	no_wrong(&p, &c);
	free(c.md.m);
	pool_free(&q);
	pool_free(&p);
}
END_TEST

START_TEST(damaged_leaf_loses_only_its_mappings)
{
	static const uint64_t counts[] = { 2000, 300 };
	struct pool p;
	struct collect c;
	uint32_t nr;

	pool_make(&p, counts, 2, 0);
	uint64_t leaf = dev_leaf(&p, 0, 2, &nr);
	if (_i)
		zero_block(&p, leaf);
	else
		break_checksum(&p, leaf);
	struct tm_salvage *s = salvage(&p, NULL, &c, 0);
	const struct tm_repair_report *r = tm_salvage_report(s);
	no_wrong(&p, &c);
	ck_assert_uint_eq(c.md.n, p.md.n - nr);
	const struct tm_repair_dev *d0 = rep_dev(r, 0);
	ck_assert_int_eq(d0->state, TM_DEV_DAMAGED);
	ck_assert_uint_eq(d0->recovered, 2000 - nr);
	ck_assert_uint_eq(d0->mapped_blocks, 2000);
	ck_assert_uint_eq(d0->nr_losses, 1);
	ck_assert_uint_eq(d0->losses[0].block, leaf);
	ck_assert_int_eq(d0->losses[0].why, _i ? TM_RULE_ZEROED : TM_RULE_CHECKSUM);
	ck_assert_int_eq(rep_dev(r, 1)->state, TM_DEV_INTACT);
	ck_assert_uint_eq(r->nr_bad, 1);
	ck_assert_uint_eq(r->bad[0].block, leaf);
	/* every lost key lies in the reported range */
	for (size_t i = 0, j = 0; i < p.md.n; i++) {
		if (j < c.md.n && !cmp_mapping(&p.md.m[i], &c.md.m[j])) {
			j++;
			continue;
		}
		ck_assert_uint_eq(p.md.m[i].dev, 0);
		ck_assert_uint_ge(p.md.m[i].key, d0->losses[0].begin);
		ck_assert_uint_le(p.md.m[i].key, d0->losses[0].end);
	}
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

START_TEST(damaged_internal_node_loses_nothing)
{
	static const uint64_t counts[] = { 2000, 300, 900 };
	struct pool p;
	struct collect c;

	pool_make(&p, counts, 3, 1);
	uint64_t root = dev_root(&p, 0);
	if (_i)
		zero_block(&p, root);
	else
		break_checksum(&p, root);
	struct tm_salvage *s = salvage(&p, NULL, &c, 0);
	const struct tm_repair_report *r = tm_salvage_report(s);
	ck_assert_int_eq(r->sm_usable, 1);
	ck_assert_uint_ge(r->nr_adopted, 2);
	ck_assert_uint_eq(r->nr_bad, 1);
	ck_assert_uint_eq(c.md.n, p.md.n);
	no_wrong(&p, &c);
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

/* A valid stale copy of a leaf, with other contents, in a free block: the
 * space map says nobody owns it, so it never comes back. */
START_TEST(stale_copies_are_not_adopted)
{
	static const uint64_t counts[] = { 2000 };
	struct pool p;
	struct collect c;
	uint32_t nr;
	struct tm_superblock sb;

	pool_make(&p, counts, 1, 0);
	uint64_t leaf = dev_leaf(&p, 0, 1, &nr);
	sb = live_sb(&p);
	uint64_t stale = sb.meta_sm.nr_blocks - 1;	/* unused: the end of the device */
	uint8_t *dst = mem_block(p.dev, stale);
	memcpy(dst, mem_block(p.dev, leaf), TM_BLOCK_SIZE);
	/* other data blocks: what an older version of the leaf might hold */
	uint32_t max = tm_le32(dst + TM_NODE_OFF_MAX_ENTRIES);
	for (uint32_t i = 0; i < nr; i++) {
		uint8_t *v = dst + TM_NODE_HEADER_SIZE + 8 * max + 8 * i;
		tm_put_le64(v, tm_bt_pack(50000 + i, 0));
	}
	reseal(p.dev, stale, TM_SALT_BTREE_NODE);
	break_checksum(&p, dev_root(&p, 0));
	struct tm_salvage *s = salvage(&p, NULL, &c, 0);
	ck_assert_uint_eq(c.md.n, p.md.n);
	no_wrong(&p, &c);
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

START_TEST(lost_top_level_leaf)
{
	/* distinct counts: every tree finds its device */
	static const uint64_t distinct[] = { 2000, 300, 0, 700 };
	/* devices 1 and 2 alike: both left out, the others matched */
	static const uint64_t alike[] = { 2000, 300, 300, 700 };
	struct pool p;
	struct collect c;

	pool_make(&p, _i ? alike : distinct, 4, 0);
	zero_block(&p, live_sb(&p).mapping_root);
	struct tm_salvage *s = salvage(&p, NULL, &c, 0);
	const struct tm_repair_report *r = tm_salvage_report(s);
	no_wrong(&p, &c);
	if (!_i) {
		ck_assert_uint_eq(c.md.n, p.md.n);
		for (uint64_t id = 0; id < 4; id++)
			ck_assert_int_eq(rep_dev(r, id)->root_assigned, 1);
	} else {
		ck_assert_int_eq(rep_dev(r, 1)->state, TM_DEV_LEFT_OUT);
		ck_assert_int_eq(rep_dev(r, 2)->state, TM_DEV_LEFT_OUT);
		ck_assert_int_eq(rep_dev(r, 0)->state, TM_DEV_INTACT);
		ck_assert_int_eq(rep_dev(r, 3)->state, TM_DEV_INTACT);
		ck_assert_uint_eq(c.md.n, 2700);
		ck_assert_uint_eq(r->nr_orphan_trees, 2);
		ck_assert_uint_eq(c.nr_devs, 2);
	}
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

START_TEST(lost_details_are_rebuilt_as_shared)
{
	static const uint64_t counts[] = { 2000, 300 };
	struct pool p;
	struct collect c;

	pool_make(&p, counts, 2, 0);
	zero_block(&p, live_sb(&p).details_root);
	struct tm_salvage *s = salvage(&p, NULL, &c, 0);
	const struct tm_repair_report *r = tm_salvage_report(s);
	ck_assert_uint_eq(c.md.n, p.md.n);
	no_wrong(&p, &c);
	ck_assert_int_eq(rep_dev(r, 0)->details_rebuilt, 1);
	/* every mapping's time (at most 1) before the snapshot time, pool time not before it */
	for (size_t i = 0; i < c.nr_devs; i++) {
		ck_assert_uint_gt(c.devs[i].snap_time, 1);
		ck_assert_uint_le(c.devs[i].snap_time, c.sb.time);
		ck_assert_uint_eq(c.devs[i].mapped_blocks, counts[c.devs[i].dev_id]);
	}
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

START_TEST(lost_superblock)
{
	static const uint64_t counts[] = { 2000, 300 };
	struct pool p;
	struct collect c;
	struct tm_repair_opts o = { 0 };

	pool_make(&p, counts, 2, 1);
	if (_i)
		zero_block(&p, 0);
	else
		break_checksum(&p, 0);
	struct tm_salvage *s = salvage(&p, NULL, &c, -EINVAL);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(tm_salvage_report(s)->data_block_size.src, TM_SRC_NONE);
	ck_assert_int_eq(tm_salvage_report(s)->sb_legible, !_i);
	tm_salvage_free(s);

	o.set_data_block_size = 1;
	o.data_block_size = 256;
	s = salvage(&p, &o, &c, 0);
	const struct tm_repair_report *r = tm_salvage_report(s);
	ck_assert_int_eq(r->roots_searched, 1);
	ck_assert_uint_eq(c.md.n, p.md.n);
	no_wrong(&p, &c);
	ck_assert_uint_eq(c.sb.data_block_size, 256);
	ck_assert_int_eq(r->nr_data_blocks.src, TM_SRC_GUESS);
	ck_assert_uint_eq(c.sb.nr_data_blocks, 90600);	/* highest mapped + 1 */
	ck_assert_int_eq(r->transaction_id.src, TM_SRC_GUESS);
	ck_assert_uint_eq(c.sb.transaction, 2);		/* highest device tid + 1 */
	tm_salvage_free(s);
	free(c.md.m);

	o.set_transaction_id = 1;
	o.transaction_id = 7;
	o.set_nr_data_blocks = 1;
	o.nr_data_blocks = 100000;
	s = salvage(&p, &o, &c, 0);
	ck_assert_uint_eq(c.sb.transaction, 7);
	ck_assert_uint_eq(c.sb.nr_data_blocks, 100000);
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

START_TEST(nothing_usable)
{
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct tm_salvage *s;
	struct tm_error e;

	ck_assert_int_eq(tm_dev_mem_create(64, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	ck_assert_int_eq(tm_salvage(bm, NULL, &s, &e), -ENODATA);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(tm_salvage_report(s)->scanned, 1);
	ck_assert_uint_eq(tm_salvage_report(s)->nr_nodes_found, 0);
	tm_salvage_free(s);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}
END_TEST

/* Hostile trees: a node pointing at itself, two devices at one broken
 * node, pointers past the end.  The salvage ends and what it gives the
 * builder is accepted. */
START_TEST(hostile_trees)
{
	static const uint64_t counts[] = { 2000, 300 };
	struct pool p;
	struct collect c;

	pool_make(&p, counts, 2, 0);
	uint64_t root = dev_root(&p, 0);
	uint8_t *b = mem_block(p.dev, root);
	uint32_t max = tm_le32(b + TM_NODE_OFF_MAX_ENTRIES);
	switch (_i) {
	case 0:	/* first child is the node itself */
		tm_put_le64(b + TM_NODE_HEADER_SIZE + 8 * max, root);
		break;
	case 1:	/* a child past the end of the device */
		tm_put_le64(b + TM_NODE_HEADER_SIZE + 8 * max + 8, 1ull << 40);
		break;
	default: {	/* device 1's root is device 0's (broken) root too */
		uint64_t top = live_sb(&p).mapping_root;
		uint8_t *t = mem_block(p.dev, top);
		uint32_t tmax = tm_le32(t + TM_NODE_OFF_MAX_ENTRIES);
		tm_put_le64(t + TM_NODE_HEADER_SIZE + 8 * tmax + 8, root);
		reseal(p.dev, top, TM_SALT_BTREE_NODE);
		tm_put_le64(b + TM_NODE_HEADER_SIZE + 8 * max, root);
		break;
	}
	}
	reseal(p.dev, root, TM_SALT_BTREE_NODE);
	tm_bm_invalidate(p.bm);
	struct tm_salvage *s = salvage(&p, NULL, &c, 0);
	if (_i < 2)
		no_wrong(&p, &c);	/* (2: device 1 really points at device 0's tree) */
	ck_assert_uint_ge(tm_salvage_report(s)->nr_bad, 1);
	tm_salvage_free(s);
	free(c.md.m);
	pool_free(&p);
}
END_TEST

/* Every read failing from the Nth on: a clean error or a salvage, never a crash. */
START_TEST(read_failures)
{
	static const uint64_t counts[] = { 2000, 300 };
	struct pool p;
	uint64_t total;

	pool_make(&p, counts, 2, 1);
	break_checksum(&p, dev_root(&p, 0));	/* make it scan */
	{
		struct tm_dev *mem, *fd;
		struct tm_bm *bm;
		struct tm_salvage *s;
		struct tm_error e;
		ck_assert_int_eq(tm_dev_mem_create(NR_BLOCKS, &mem), 0);
		memcpy(tm_dev_mem_data(mem), tm_dev_mem_data(p.dev), (size_t)NR_BLOCKS * TM_BLOCK_SIZE);
		ck_assert_int_eq(tm_dev_fault_wrap(mem, 0, 1, &fd), 0);
		ck_assert_int_eq(tm_bm_create(fd, 0, &bm), 0);
		ck_assert_int_eq(tm_salvage(bm, NULL, &s, &e), 0);
		tm_salvage_free(s);
		total = tm_dev_fault_count(fd);
		tm_bm_destroy(bm);
		tm_dev_close(fd);
	}
	for (uint64_t n = 1; n <= total; n++) {
		struct tm_dev *mem, *fd;
		struct tm_bm *bm;
		struct tm_salvage *s = NULL;
		struct tm_error e;
		struct collect c;
		struct tm_ir_sink sink;
		ck_assert_int_eq(tm_dev_mem_create(NR_BLOCKS, &mem), 0);
		memcpy(tm_dev_mem_data(mem), tm_dev_mem_data(p.dev), (size_t)NR_BLOCKS * TM_BLOCK_SIZE);
		ck_assert_int_eq(tm_dev_fault_wrap(mem, n, 1, &fd), 0);
		ck_assert_int_eq(tm_bm_create(fd, 0, &bm), 0);
		tm_error_clear(&e);
		int r = tm_salvage(bm, NULL, &s, &e);
		ck_assert_msg(r == 0 || r == -ENODATA || r == -EINVAL || r == -EIO,
			      "read %llu failing: %d %s", (unsigned long long)n, r, e.msg);
		if (!r) {
			struct tm_salvage_emit_opts eo = { 0 };
			eo.expand_shared = 1;
			collect_sink(&c, &sink);
			r = tm_salvage_emit(s, &eo, &sink, &e);
			ck_assert(r == 0 || r == -EIO);
			qsort(c.md.m, c.md.n, sizeof(*c.md.m), cmp_mapping);
			if (!r)
				no_wrong(&p, &c);
			free(c.md.m);
		}
		tm_salvage_free(s);
		tm_bm_destroy(bm);
		tm_dev_close(fd);
	}
	pool_free(&p);
}
END_TEST

/*
 * A sparse file and an in-memory device holding the same bytes salvage
 * alike (the scan skips the file's holes, tm_dev_data_extent, and must
 * see them as the zero blocks it would have read): the same report, the
 * same mappings.  The pool's nonzero blocks are written into a 16384-block
 * file, with a copy of a leaf far past the pool (an intact node the scan
 * must find), and the superblock broken so that everything is scanned.
 */
START_TEST(sparse_file_salvages_as_memory)
{
	static const uint64_t counts[] = { 2000, 300, 700 };
	const uint64_t big = 16384, stray = 12345;
	char path[] = "/tmp/thinmeta-sparse-XXXXXX";
	struct tm_salvage *sal[2];
	struct tm_dev *dev[2];
	struct tm_bm *bm[2];
	struct collect c[2];
	struct pool p;
	struct tm_repair_opts o = { 0 };
	struct stat st;
	uint64_t leaf;
	uint32_t nr;
	int fd;

	pool_make(&p, counts, 3, 1);
	leaf = dev_leaf(&p, 2, 0, &nr);
	break_checksum(&p, 0);
	ck_assert_int_eq(tm_dev_mem_create(big, &dev[0]), 0);
	memcpy(tm_dev_mem_data(dev[0]), tm_dev_mem_data(p.dev), (size_t)NR_BLOCKS * TM_BLOCK_SIZE);
	memcpy(mem_block(dev[0], stray), mem_block(p.dev, leaf), TM_BLOCK_SIZE);
	reseal(dev[0], stray, TM_SALT_BTREE_NODE);	/* an intact node there */
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(big * TM_BLOCK_SIZE)), 0);
	for (uint64_t b = 0; b < big; b++)
		if (!tm_block_is_zero(mem_block(dev[0], b)))
			ck_assert_int_eq(pwrite(fd, mem_block(dev[0], b), TM_BLOCK_SIZE,
						(off_t)(b * TM_BLOCK_SIZE)), TM_BLOCK_SIZE);
	ck_assert_int_eq(fstat(fd, &st), 0);
	close(fd);
	ck_assert_int_eq(tm_dev_open_file(path, 0, &dev[1]), 0);
	ck_assert_uint_eq(dev[1]->nr_blocks, big);

	o.set_data_block_size = 1;
	o.data_block_size = 128;
	for (int i = 0; i < 2; i++) {
		struct tm_error e;
		struct tm_ir_sink sink;
		struct tm_salvage_emit_opts eo = { 0 };

		ck_assert_int_eq(tm_bm_create(dev[i], 0, &bm[i]), 0);
		dev[i]->reads = 0;
		ck_assert_msg(tm_salvage(bm[i], &o, &sal[i], &e) == 0, "%s", e.msg);
		collect_sink(&c[i], &sink);
		eo.expand_shared = 1;
		ck_assert_int_eq(tm_salvage_emit(sal[i], &eo, &sink, &e), 0);
		qsort(c[i].md.m, c[i].md.n, sizeof(*c[i].md.m), cmp_mapping);
	}

	const struct tm_repair_report *a = tm_salvage_report(sal[0]);
	const struct tm_repair_report *b = tm_salvage_report(sal[1]);
	ck_assert_int_eq(a->scanned, 1);
	ck_assert_int_eq(b->scanned, 1);
	ck_assert_uint_eq(a->nr_blocks, big);
	ck_assert_uint_eq(b->nr_blocks, a->nr_blocks);
	ck_assert_uint_eq(b->nr_nodes_found, a->nr_nodes_found);
	ck_assert_uint_gt(a->nr_nodes_found, 3);
	ck_assert_uint_eq(b->nr_io_errors, a->nr_io_errors);
	ck_assert_int_eq(b->sm_usable, a->sm_usable);
	ck_assert_str_eq(b->sm_msg, a->sm_msg);
	ck_assert_uint_eq(b->nr_root_candidates, a->nr_root_candidates);
	ck_assert_uint_eq(b->mapping_root, a->mapping_root);
	ck_assert_uint_eq(b->details_root, a->details_root);
	ck_assert_uint_eq(b->nr_bad, a->nr_bad);
	ck_assert_uint_eq(b->nr_adopted, a->nr_adopted);
	ck_assert_uint_eq(b->total_recovered, a->total_recovered);
	ck_assert_uint_eq(b->nr_devs, a->nr_devs);
	for (size_t i = 0; i < a->nr_devs; i++) {
		ck_assert_uint_eq(b->devs[i].dev_id, a->devs[i].dev_id);
		ck_assert_int_eq(b->devs[i].state, a->devs[i].state);
	}
	ck_assert_uint_eq(c[1].nr_devs, c[0].nr_devs);
	ck_assert_mem_eq(c[1].devs, c[0].devs, c[0].nr_devs * sizeof(c[0].devs[0]));
	ck_assert_uint_eq(c[1].sb.transaction, c[0].sb.transaction);
	ck_assert_uint_eq(c[1].sb.time, c[0].sb.time);
	ck_assert_uint_eq(c[1].sb.nr_data_blocks, c[0].sb.nr_data_blocks);
	ck_assert_uint_eq(c[1].md.n, c[0].md.n);
	ck_assert_uint_eq(c[0].md.n, p.md.n);
	for (size_t i = 0; i < c[0].md.n; i++)
		ck_assert(cmp_mapping(&c[1].md.m[i], &c[0].md.m[i]) == 0 &&
			  c[1].md.m[i].data == c[0].md.m[i].data &&
			  c[1].md.m[i].time == c[0].md.m[i].time);
	no_wrong(&p, &c[1]);
	/* the memory device was read whole (16 MiB: at least 64 reads of
	 * 1 MiB); the file, where its file system keeps holes, only around
	 * its data (the pool's 1024 blocks and the stray leaf) */
	ck_assert_uint_ge(dev[0]->reads, big / 256);
	if (st.st_blocks * 512 < (off_t)(2 * NR_BLOCKS * TM_BLOCK_SIZE))
		ck_assert_uint_lt(dev[1]->reads, dev[0]->reads);
	for (int i = 0; i < 2; i++) {
		tm_salvage_free(sal[i]);
		free(c[i].md.m);
		tm_bm_destroy(bm[i]);
		tm_dev_close(dev[i]);
	}
	unlink(path);
	pool_free(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("repair");
	TCase *tc = tcase_create("salvage");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, intact_pool_salvages_whole);
	tcase_add_test(tc, salvage_into_builder);
	tcase_add_loop_test(tc, damaged_leaf_loses_only_its_mappings, 0, 2);
	tcase_add_loop_test(tc, damaged_internal_node_loses_nothing, 0, 2);
	tcase_add_test(tc, stale_copies_are_not_adopted);
	tcase_add_loop_test(tc, lost_top_level_leaf, 0, 2);
	tcase_add_test(tc, lost_details_are_rebuilt_as_shared);
	tcase_add_loop_test(tc, lost_superblock, 0, 2);
	tcase_add_test(tc, nothing_usable);
	tcase_add_loop_test(tc, hostile_trees, 0, 3);
	tcase_add_test(tc, read_failures);
	tcase_add_test(tc, sparse_file_salvages_as_memory);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
