/*
 * test_pool.c - every pool operation against an independent model of the
 * kernel's semantics (which blocks are mapped, their times, which data
 * block the allocator hands out), each followed by a commit and a full
 * recount of every reference count (recount.h).
 */
#include <errno.h>

#include "thinmeta/pool.h"
#include "thinmeta/recount.h"
#include "thinmeta/dump.h"
#include "thinmeta/metadata.h"
#include "unit_util.h"

#define MAXDEV 24
#define VSPAN 700

/* ------------------------------------------------------------------ */
/* The model */

struct mdev {
	int exists;
	uint32_t snap_time, creation_time;
	uint64_t trans;
	int64_t map[VSPAN];	/* data block, -1 unmapped */
	uint32_t time[VSPAN];
};

struct model {
	uint64_t nr_data;
	uint64_t cursor;
	uint32_t time;
	uint64_t tid;
	struct mdev dev[MAXDEV];
	int held;
	struct mdev held_dev[MAXDEV];
	uint8_t *ref_commit;	/* referenced at the last commit */
};

static struct model M;
static struct tm_dev *dev;
static struct tm_pool *pool;
static struct tm_error err;

static void model_init(uint64_t nr_data)
{
	free(M.ref_commit);
	memset(&M, 0, sizeof(M));
	M.nr_data = nr_data;
	M.ref_commit = calloc(nr_data + 1, 1);
}

static void model_refs(uint8_t *ref)
{
	memset(ref, 0, M.nr_data);
	for (int d = 0; d < MAXDEV; d++) {
		for (int v = 0; v < VSPAN; v++) {
			if (M.dev[d].exists && M.dev[d].map[v] >= 0)
				ref[M.dev[d].map[v]] = 1;
			if (M.held && M.held_dev[d].exists && M.held_dev[d].map[v] >= 0)
				ref[M.held_dev[d].map[v]] = 1;
		}
	}
}

static void model_commit(void)
{
	model_refs(M.ref_commit);
}

/* The kernel's allocator: from the cursor, free now and at the last commit. */
static int64_t model_alloc(void)
{
	uint8_t *now = calloc(M.nr_data + 1, 1);
	uint64_t used = 0;
	int64_t found = -1;

	model_refs(now);
	for (uint64_t b = 0; b < M.nr_data; b++)
		used += now[b];
	if (used == M.nr_data) {
		model_commit();		/* alloc_data_block() commits first */
		free(now);
		return -1;
	}
	for (int pass = 0; pass < 2 && found < 0; pass++) {
		uint64_t from = pass ? 0 : M.cursor;
		for (uint64_t b = from; b < M.nr_data; b++)
			if (!now[b] && !M.ref_commit[b]) {
				found = (int64_t)b;
				break;
			}
	}
	if (found >= 0)
		M.cursor = (uint64_t)found + 1;
	free(now);
	return found;
}

/* ------------------------------------------------------------------ */

static void check_recount(void)
{
	struct tm_bm *bm;
	struct tm_recount_result res;
	struct tm_error e;

	tm_error_clear(&e);
	ck_assert_int_eq(tm_bm_create(dev, 64, &bm), 0);
	int r = tm_recount(bm, &res, &e);
	if (r)
		ck_abort_msg("recount: %s", e.msg);
	tm_bm_destroy(bm);
}

static void commit_and_check(void)
{
	ck_assert_msg(!tm_pool_commit(pool, &err), "commit: %s", err.msg);
	model_commit();
	check_recount();
}

/* Every mapping the pool has equals the model's. */
static void compare_maps(void)
{
	for (uint64_t d = 0; d < MAXDEV; d++) {
		if (!M.dev[d].exists)
			continue;
		for (uint64_t v = 0; v < VSPAN; v++) {
			uint64_t b;
			uint32_t t;
			int r = tm_pool_lookup(pool, d, v, &b, &t, &err);
			if (M.dev[d].map[v] < 0) {
				ck_assert_msg(r == -ENODATA, "dev %llu block %llu should be unmapped (r=%d)",
					      (unsigned long long)d, (unsigned long long)v, r);
			} else {
				ck_assert_msg(!r, "dev %llu block %llu should be mapped",
					      (unsigned long long)d, (unsigned long long)v);
				ck_assert_uint_eq(b, (uint64_t)M.dev[d].map[v]);
				ck_assert_uint_eq(t, M.dev[d].time[v]);
			}
		}
	}
	struct tm_pool_device_info *devs;
	uint64_t n, k = 0;
	ck_assert_int_eq(tm_pool_devices(pool, &devs, &n, &err), 0);
	for (uint64_t d = 0; d < MAXDEV; d++) {
		if (!M.dev[d].exists)
			continue;
		ck_assert_uint_lt(k, n);
		ck_assert_uint_eq(devs[k].id, d);
		uint64_t mapped = 0;
		for (int v = 0; v < VSPAN; v++)
			mapped += M.dev[d].map[v] >= 0;
		ck_assert_uint_eq(devs[k].mapped_blocks, mapped);
		ck_assert_uint_eq(devs[k].snapshotted_time, M.dev[d].snap_time);
		ck_assert_uint_eq(devs[k].creation_time, M.dev[d].creation_time);
		ck_assert_uint_eq(devs[k].transaction_id, M.dev[d].trans);
		k++;
	}
	ck_assert_uint_eq(k, n);
	free(devs);
	ck_assert_uint_eq(tm_pool_time(pool), M.time);
	ck_assert_uint_eq(tm_pool_transaction_id(pool), M.tid);
}

static void fresh(uint64_t meta_blocks, uint64_t nr_data)
{
	ck_assert_int_eq(tm_dev_mem_create(meta_blocks, &dev), 0);
	tm_error_clear(&err);
	ck_assert_msg(!tm_pool_format(dev, 128, nr_data, &pool, &err), "format: %s", err.msg);
	model_init(nr_data);
}

static void teardown(void)
{
	tm_pool_close(pool);
	pool = NULL;
	tm_dev_close(dev);
	dev = NULL;
}

/* ------------------------------------------------------------------ */
/* Model operations, each checked against the pool */

static void op_create_thin(uint64_t id)
{
	int r = tm_pool_create_thin(pool, id, &err);
	if (M.dev[id].exists) {
		ck_assert_int_eq(r, -EEXIST);
		return;
	}
	ck_assert_msg(!r, "create_thin %llu: %s", (unsigned long long)id, err.msg);
	struct mdev *d = &M.dev[id];
	memset(d, 0, sizeof(*d));
	d->exists = 1;
	d->snap_time = d->creation_time = M.time;
	d->trans = M.tid;
	for (int v = 0; v < VSPAN; v++)
		d->map[v] = -1;
}

static void op_create_snap(uint64_t id, uint64_t origin)
{
	int r = tm_pool_create_snap(pool, id, origin, &err);
	if (M.dev[id].exists) {
		ck_assert_int_eq(r, -EEXIST);
		return;
	}
	if (!M.dev[origin].exists) {
		ck_assert_int_eq(r, -ENODATA);
		return;
	}
	ck_assert_msg(!r, "create_snap: %s", err.msg);
	M.time++;
	M.dev[id] = M.dev[origin];
	M.dev[id].creation_time = M.dev[id].snap_time = M.time;
	M.dev[id].trans = M.tid;
	M.dev[origin].snap_time = M.time;
}

static void op_delete(uint64_t id)
{
	int r = tm_pool_delete(pool, id, &err);
	if (!M.dev[id].exists) {
		ck_assert_int_eq(r, -ENODATA);
		return;
	}
	ck_assert_msg(!r, "delete: %s", err.msg);
	M.dev[id].exists = 0;
}

static void op_write(uint64_t id, uint64_t v)
{
	enum tm_provision what;
	uint64_t b;
	int r = tm_pool_write(pool, id, v, &what, &b, &err);
	struct mdev *d = &M.dev[id];

	if (!d->exists) {
		ck_assert_int_eq(r, -ENODATA);
		return;
	}
	if (d->map[v] >= 0 && !(d->snap_time > d->time[v])) {
		ck_assert_int_eq(r, 0);
		ck_assert_int_eq(what, TM_PROV_MAPPED);
		ck_assert_uint_eq(b, (uint64_t)d->map[v]);
		return;
	}
	int64_t want = model_alloc();
	if (want < 0) {
		ck_assert_msg(r == -ENOSPC, "write should run out of space (r=%d)", r);
		return;
	}
	ck_assert_msg(!r, "write %llu %llu: %s", (unsigned long long)id,
		      (unsigned long long)v, err.msg);
	ck_assert_int_eq(what, d->map[v] >= 0 ? TM_PROV_COW : TM_PROV_NEW);
	ck_assert_uint_eq(b, (uint64_t)want);
	d->map[v] = want;
	d->time[v] = M.time;
}

static void op_discard(uint64_t id, uint64_t begin, uint64_t end)
{
	uint64_t n;
	int r = tm_pool_discard(pool, id, begin, end, &n, &err);
	struct mdev *d = &M.dev[id];
	uint64_t want = 0;

	if (!d->exists) {
		ck_assert_int_eq(r, -ENODATA);
		return;
	}
	ck_assert_msg(!r, "discard: %s", err.msg);
	for (uint64_t v = begin; v < end && v < VSPAN; v++)
		if (d->map[v] >= 0) {
			d->map[v] = -1;
			want++;
		}
	ck_assert_uint_eq(n, want);
}

static void op_reserve(void)
{
	int r = tm_pool_reserve_metadata_snap(pool, &err);
	if (M.held) {
		ck_assert_int_eq(r, -EBUSY);
		return;
	}
	ck_assert_msg(!r, "reserve: %s", err.msg);
	model_commit();		/* reserve commits first */
	M.held = 1;
	memcpy(M.held_dev, M.dev, sizeof(M.dev));
}

static void op_release(void)
{
	int r = tm_pool_release_metadata_snap(pool, &err);
	if (!M.held) {
		ck_assert_int_eq(r, -EINVAL);
		return;
	}
	ck_assert_msg(!r, "release: %s", err.msg);
	M.held = 0;
}

/* ------------------------------------------------------------------ */

START_TEST(test_format_fresh)
{
	fresh(2048, 4096);
	check_recount();
	struct tm_pool_status st;
	ck_assert_int_eq(tm_pool_status(pool, &st, &err), 0);
	/* the kernel's line for this pool: 0 213/2048 0/4096 - ... 512 */
	ck_assert_uint_eq(st.meta_used, 213);
	ck_assert_uint_eq(st.meta_total, 2048);
	ck_assert_uint_eq(st.data_used, 0);
	ck_assert_uint_eq(st.data_total, 4096);
	ck_assert_uint_eq(st.meta_low_water, 512);
	ck_assert_uint_eq(st.held_root, 0);
	/* the kernel's layout: mapping root 6, details root 7, index 11 */
	const uint8_t *sb = tm_pool_last_superblock(pool);
	ck_assert_uint_eq(tm_le64(sb + TM_SB_OFF_MAPPING_ROOT), 6);
	ck_assert_uint_eq(tm_le64(sb + TM_SB_OFF_DETAILS_ROOT), 7);
	ck_assert_uint_eq(tm_le64(sb + TM_SB_OFF_META_SM + 16), 11);
	teardown();
}
END_TEST

START_TEST(test_format_refuses_nonzero)
{
	fresh(256, 100);
	tm_pool_close(pool);
	pool = NULL;
	struct tm_pool *p2;
	ck_assert_int_eq(tm_pool_format(dev, 128, 100, &p2, &err), -EEXIST);
	ck_assert_int_eq(tm_pool_format(dev, 100, 100, &p2, &err), -EINVAL);
	teardown();
}
END_TEST

START_TEST(test_format_too_small)
{
	struct tm_pool *p2;
	ck_assert_int_eq(tm_dev_mem_create(5, &dev), 0);
	ck_assert_int_eq(tm_pool_format(dev, 128, 10, &p2, &err), -ENOSPC);
	tm_dev_close(dev);
	dev = NULL;
}
END_TEST

START_TEST(test_messages)
{
	fresh(2048, 1000);
	op_create_thin(1);
	commit_and_check();
	op_create_thin(1);			/* refused */
	ck_assert_int_eq(tm_pool_create_thin(pool, 1u << 24, &err), -EINVAL);
	op_create_snap(2, 7);			/* no origin */
	op_create_snap(2, 1);
	commit_and_check();
	ck_assert_uint_eq(tm_pool_time(pool), 1);
	op_delete(9);
	ck_assert_int_eq(tm_pool_set_transaction_id(pool, 3, 4, &err), -EINVAL);
	ck_assert_int_eq(tm_pool_set_transaction_id(pool, 0, 4, &err), 0);
	M.tid = 4;
	op_create_thin(3);
	commit_and_check();
	compare_maps();
	op_delete(2);
	commit_and_check();
	compare_maps();
	teardown();
}
END_TEST

START_TEST(test_refusals_leave_device_unchanged)
{
	fresh(1024, 500);
	op_create_thin(0);
	for (int v = 0; v < 50; v++)
		op_write(0, (uint64_t)v);
	commit_and_check();
	uint8_t *before = malloc(1024 * TM_BLOCK_SIZE);
	memcpy(before, tm_dev_mem_data(dev), 1024 * TM_BLOCK_SIZE);

	ck_assert_int_eq(tm_pool_create_thin(pool, 0, &err), -EEXIST);
	ck_assert_int_eq(tm_pool_create_snap(pool, 0, 0, &err), -EEXIST);
	ck_assert_int_eq(tm_pool_create_snap(pool, 5, 4, &err), -ENODATA);
	ck_assert_int_eq(tm_pool_delete(pool, 4, &err), -ENODATA);
	ck_assert_int_eq(tm_pool_set_transaction_id(pool, 9, 10, &err), -EINVAL);
	ck_assert_int_eq(tm_pool_release_metadata_snap(pool, &err), -EINVAL);
	ck_assert_int_eq(tm_pool_resize_data(pool, 10, &err), -EINVAL);
	enum tm_provision w;
	uint64_t b;
	ck_assert_int_eq(tm_pool_write(pool, 3, 0, &w, &b, &err), -ENODATA);
	ck_assert_int_eq(tm_pool_discard(pool, 3, 0, 10, &b, &err), -ENODATA);
	ck_assert(!tm_pool_changed(pool));
	ck_assert_int_eq(tm_pool_commit(pool, &err), 0);
	ck_assert_msg(!memcmp(before, tm_dev_mem_data(dev), 1024 * TM_BLOCK_SIZE),
		      "a refused message changed the device");

	/* a second reserve is refused and changes nothing either */
	op_reserve();
	ck_assert_int_eq(tm_pool_commit(pool, &err), 0);
	memcpy(before, tm_dev_mem_data(dev), 1024 * TM_BLOCK_SIZE);
	ck_assert_int_eq(tm_pool_reserve_metadata_snap(pool, &err), -EBUSY);
	ck_assert_int_eq(tm_pool_commit(pool, &err), 0);
	ck_assert(!memcmp(before, tm_dev_mem_data(dev), 1024 * TM_BLOCK_SIZE));
	free(before);
	teardown();
}
END_TEST

START_TEST(test_write_semantics)
{
	fresh(2048, 1000);
	op_create_thin(0);
	for (int v = 0; v < 300; v++)		/* a two-level tree */
		op_write(0, (uint64_t)v);
	op_write(0, 5);				/* mapped, unshared: nothing */
	commit_and_check();
	compare_maps();
	op_create_snap(1, 0);
	op_write(0, 10);			/* shared: copy-on-write */
	op_write(0, 10);			/* now exclusive */
	op_write(1, 20);			/* cow in the snapshot */
	op_write(1, 400);			/* new in the snapshot */
	commit_and_check();
	compare_maps();
	op_delete(1);				/* the origin still thinks it shares */
	op_write(0, 30);			/* copied: time < snap_time */
	commit_and_check();
	compare_maps();
	teardown();
}
END_TEST

START_TEST(test_discard)
{
	fresh(2048, 2000);
	op_create_thin(0);
	for (int v = 0; v < 600; v++)
		op_write(0, (uint64_t)v);
	commit_and_check();
	op_create_snap(1, 0);
	op_discard(0, 100, 150);		/* shared: only 0's mappings go */
	commit_and_check();
	compare_maps();
	op_write(0, 0);
	op_discard(0, 0, 1);			/* exclusive: freed */
	op_discard(1, 200, 500);		/* across leaves */
	op_discard(1, 650, 700);		/* nothing mapped */
	commit_and_check();
	compare_maps();
	teardown();
}
END_TEST

START_TEST(test_allocation_cursor)
{
	fresh(1024, 64);
	op_create_thin(0);
	for (int v = 0; v < 40; v++)
		op_write(0, (uint64_t)v);
	op_discard(0, 10, 20);		/* freed in this transaction */
	for (int v = 100; v < 120; v++)	/* 40..59: the cursor goes on */
		op_write(0, (uint64_t)v);
	commit_and_check();
	for (int v = 200; v < 220; v++)	/* 60..63, then wraps to 10.. */
		op_write(0, (uint64_t)v);
	compare_maps();
	uint64_t b;
	uint32_t t;
	ck_assert_int_eq(tm_pool_lookup(pool, 0, 204, &b, &t, &err), 0);
	ck_assert_uint_eq(b, 10);
	commit_and_check();
	/* fill up: the pool runs out */
	for (int v = 300; v < 320; v++)
		op_write(0, (uint64_t)v);
	compare_maps();
	commit_and_check();
	teardown();

	/* blocks freed in this transaction are not reused before a commit */
	fresh(1024, 64);
	op_create_thin(0);
	for (int v = 0; v < 60; v++)
		op_write(0, (uint64_t)v);
	commit_and_check();
	op_discard(0, 0, 10);			/* 0..9 free now, not at the commit */
	for (int v = 100; v < 106; v++)		/* 60..63, then nothing */
		op_write(0, (uint64_t)v);
	enum tm_provision w;
	ck_assert_int_eq(tm_pool_write(pool, 0, 200, &w, &b, &err), -ENOSPC);
	compare_maps();
	commit_and_check();
	op_write(0, 200);			/* now 0 can go */
	ck_assert_int_eq(tm_pool_lookup(pool, 0, 200, &b, &t, &err), 0);
	ck_assert_uint_eq(b, 0);
	teardown();
}
END_TEST

START_TEST(test_metadata_snapshot)
{
	fresh(2048, 3000);
	op_create_thin(0);
	op_create_thin(1);
	for (int v = 0; v < 400; v++)
		op_write(0, (uint64_t)v);
	for (int v = 0; v < 50; v++)
		op_write(1, (uint64_t)v);
	op_reserve();
	check_recount();
	uint64_t held = tm_pool_held_root(pool);
	ck_assert_uint_ne(held, 0);
	/* changes under the snapshot: shared roots are copied */
	for (int v = 0; v < 100; v++)
		op_write(0, (uint64_t)v * 3);
	op_discard(0, 300, 400);
	op_delete(1);
	op_create_snap(2, 0);
	op_write(2, 7);
	commit_and_check();
	compare_maps();
	op_reserve();			/* refused */

	/* the held snapshot still shows the pool as it was */
	struct tm_bm *bm;
	struct tm_view v;
	struct tm_device *devs;
	uint64_t n;
	ck_assert_int_eq(tm_bm_create(dev, 64, &bm), 0);
	ck_assert_int_eq(tm_view_snapshot(bm, 0, &v, &err), 0);
	ck_assert_int_eq(tm_read_devices(bm, &v, 0, &devs, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(devs[0].details.mapped_blocks, 400);
	ck_assert_uint_eq(devs[1].details.mapped_blocks, 50);
	ck_assert_uint_eq(v.sb.data_sm.nr_blocks, 0);
	free(devs);
	tm_bm_destroy(bm);

	op_release();
	commit_and_check();
	op_release();			/* refused */
	compare_maps();
	teardown();
}
END_TEST

START_TEST(test_resize)
{
	fresh(4096, 100);
	op_create_thin(0);
	for (int v = 0; v < 100; v++)
		op_write(0, (uint64_t)v);
	op_write(0, 100);		/* full */
	commit_and_check();
	ck_assert_int_eq(tm_pool_resize_data(pool, 40000, &err), 0);	/* 3 bitmaps */
	free(M.ref_commit);
	M.ref_commit = calloc(40001, 1);
	M.nr_data = 40000;
	commit_and_check();
	for (int v = 100; v < 140; v++)
		op_write(0, (uint64_t)v);
	commit_and_check();
	compare_maps();
	ck_assert_int_eq(tm_pool_resize_data(pool, 39999, &err), -EINVAL);
	teardown();

	/* the metadata device grows: the space map follows */
	fresh(1000, 500);
	op_create_thin(0);
	for (int v = 0; v < 200; v++)
		op_write(0, (uint64_t)v);
	commit_and_check();
	tm_pool_close(pool);
	pool = NULL;
	struct tm_dev *big;
	ck_assert_int_eq(tm_dev_mem_create(20000, &big), 0);
	memcpy(tm_dev_mem_data(big), tm_dev_mem_data(dev), 1000 * TM_BLOCK_SIZE);
	tm_dev_close(dev);
	dev = big;
	ck_assert_int_eq(tm_pool_open(dev, &pool, &err), 0);
	M.cursor = 0;
	ck_assert_msg(!tm_pool_resize_metadata(pool, 20000, &err), "%s", err.msg);
	commit_and_check();
	ck_assert_uint_eq(tm_pool_nr_metadata_blocks(pool), 20000);
	for (int v = 200; v < 300; v++)
		op_write(0, (uint64_t)v);
	commit_and_check();
	compare_maps();
	teardown();
}
END_TEST

START_TEST(test_needs_check)
{
	fresh(1024, 100);
	op_create_thin(0);
	commit_and_check();
	ck_assert_int_eq(tm_pool_set_needs_check(pool, 1, &err), 0);
	ck_assert(tm_pool_is_read_only(pool));
	ck_assert_int_eq(tm_pool_create_thin(pool, 1, &err), -EROFS);
	struct tm_pool_status st;
	ck_assert_int_eq(tm_pool_status(pool, &st, &err), 0);
	ck_assert(st.needs_check && st.read_only);
	tm_pool_close(pool);
	ck_assert_int_eq(tm_pool_open(dev, &pool, &err), 0);
	ck_assert(tm_pool_is_read_only(pool));
	ck_assert_int_eq(tm_pool_set_needs_check(pool, 0, &err), 0);
	ck_assert(!tm_pool_is_read_only(pool));
	op_create_thin(1);
	commit_and_check();
	teardown();
}
END_TEST

/* Thousands of random operations; recount after every commit. */
START_TEST(test_random_history)
{
	uint64_t seed = 0x1234567u + (uint64_t)_i * 7919u;
	fresh(4096, 6000);
	for (int i = 0; i < 2500; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned x = (unsigned)(seed >> 33);
		uint64_t id = (x >> 8) % 8, id2 = (x >> 12) % 8;
		unsigned op = x % 100;
		uint64_t v = (x >> 16) % VSPAN;
		if (op < 55) {
			uint64_t n = 1 + (x >> 24) % 12;
			for (uint64_t k = v; k < v + n && k < VSPAN; k++)
				op_write(id, k);
		} else if (op < 65) {
			op_discard(id, v, v + 1 + (x >> 24) % 80);
		} else if (op < 72) {
			op_create_thin(id);
		} else if (op < 78) {
			op_create_snap(id, id2);
		} else if (op < 82) {
			op_delete(id);
		} else if (op < 86) {
			op_reserve();
		} else if (op < 89) {
			op_release();
		} else {
			commit_and_check();
			if (op > 96)
				compare_maps();
		}
	}
	commit_and_check();
	compare_maps();
	teardown();
}
END_TEST

/* A commit that fails part way leaves the previous commit intact. */
START_TEST(test_commit_fault)
{
	uint64_t nth;
	struct tm_dev *mem, *fdev;

	for (nth = 1;; nth += 3) {
		ck_assert_int_eq(tm_dev_mem_create(1024, &mem), 0);
		ck_assert_int_eq(tm_pool_format(mem, 128, 500, &pool, &err), 0);
		ck_assert_int_eq(tm_pool_create_thin(pool, 0, &err), 0);
		for (uint64_t v = 0; v < 300; v++) {
			enum tm_provision w;
			uint64_t b;
			ck_assert_int_eq(tm_pool_write(pool, 0, v, &w, &b, &err), 0);
		}
		ck_assert_int_eq(tm_pool_commit(pool, &err), 0);
		tm_pool_close(pool);
		uint8_t *before = malloc(1024 * TM_BLOCK_SIZE);
		memcpy(before, tm_dev_mem_data(mem), 1024 * TM_BLOCK_SIZE);

		ck_assert_int_eq(tm_dev_fault_wrap(mem, nth, 2, &fdev), 0);
		ck_assert_int_eq(tm_pool_open(fdev, &pool, &err), 0);
		int r = tm_pool_create_snap(pool, 1, 0, &err);
		for (uint64_t v = 0; !r && v < 200; v++) {
			enum tm_provision w;
			uint64_t b;
			r = tm_pool_write(pool, 0, v, &w, &b, &err);
		}
		if (!r)
			r = tm_pool_commit(pool, &err);
		tm_pool_close(pool);
		pool = NULL;
		if (!r) {
			tm_dev_close(fdev);
			free(before);
			break;		/* every write point has been tried */
		}
		/* block 0 is the old superblock; all it names is intact */
		ck_assert(!memcmp(before, tm_dev_mem_data(mem), TM_BLOCK_SIZE));
		struct tm_dev *check;
		ck_assert_int_eq(tm_dev_mem_create(1024, &check), 0);
		memcpy(tm_dev_mem_data(check), tm_dev_mem_data(mem), 1024 * TM_BLOCK_SIZE);
		dev = check;
		check_recount();
		tm_dev_close(check);
		tm_dev_close(fdev);
		free(before);
	}
	dev = NULL;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_format_fresh);
	tcase_add_test(tc, test_format_refuses_nonzero);
	tcase_add_test(tc, test_format_too_small);
	tcase_add_test(tc, test_messages);
	tcase_add_test(tc, test_refusals_leave_device_unchanged);
	tcase_add_test(tc, test_write_semantics);
	tcase_add_test(tc, test_discard);
	tcase_add_test(tc, test_allocation_cursor);
	tcase_add_test(tc, test_metadata_snapshot);
	tcase_add_test(tc, test_resize);
	tcase_add_test(tc, test_needs_check);
	tcase_add_loop_test(tc, test_random_history, 0, 4);
	tcase_add_test(tc, test_commit_fault);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
