/*
 * test_sm_write.c - the writable metadata and data space maps against a
 * model: counts (bitmap values 1, 2 and the overflow tree beyond), the
 * allocator (cursor, wrap, nothing freed in this transaction reused), the
 * kernel's free counts, extending; after each commit the on-disk space map
 * is read back with the read engine and compared entry by entry.
 */
#include <errno.h>

#include "thinmeta/btree_write.h"
#include "thinmeta/sm_write.h"
#include "thinmeta/space_map.h"
#include "thinmeta/transaction.h"
#include "unit_util.h"

#define NBLOCKS 40000		/* three metadata bitmaps */

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_tm *tm;
static struct tm_msm *msm;
static struct tm_dsm *dsm;
static struct tm_error err;

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(NBLOCKS, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 512, &bm), 0);
	ck_assert_int_eq(tm_tm_create(bm, 64, &tm), 0);	/* a small cache: write-backs */
	tm_error_clear(&err);
	ck_assert_msg(!tm_msm_create(tm, NBLOCKS, 0, &msm, &err), "%s", err.msg);
	dsm = NULL;
}

static void teardown(void)
{
	tm_dsm_destroy(dsm);
	tm_msm_destroy(msm);
	tm_tm_destroy(tm);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}

static void commit(void)
{
	uint8_t sb[TM_BLOCK_SIZE];
	struct tm_sm_root r;

	memset(sb, 0, sizeof(sb));
	if (dsm) {
		ck_assert_int_eq(tm_dsm_commit(dsm, &err), 0);
		tm_dsm_root(dsm, &r);
		tm_sm_root_encode(&r, sb + TM_SB_OFF_DATA_SM);
	}
	ck_assert_msg(!tm_msm_commit(msm, &err), "%s", err.msg);
	tm_msm_root(msm, &r);
	tm_sm_root_encode(&r, sb + TM_SB_OFF_META_SM);
	ck_assert_int_eq(tm_tm_commit(tm, sb, NULL, NULL, &err), 0);
}

/* The blocks the metadata space map uses for itself, counted 1 each. */
static void own_blocks(const struct tm_sm_root *root, uint32_t *expect)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t stack[64];
	int sp = 0;

	expect[root->bitmap_root]++;
	ck_assert_int_eq(tm_bm_read(bm, root->bitmap_root, &tm_index_validator, buf, &err), 0);
	for (uint64_t i = 0; i < (root->nr_blocks + 16319) / 16320; i++)
		expect[tm_le64(buf + 16 + 16 * i)]++;
	stack[sp++] = root->ref_count_root;
	while (sp) {
		uint64_t b = stack[--sp];
		struct tm_node n;
		expect[b]++;
		ck_assert_int_eq(tm_bm_read(bm, b, &tm_node_validator, buf, &err), 0);
		tm_node_view(buf, b, &n);
		if (!tm_node_is_leaf(&n))
			for (uint32_t i = 0; i < n.nr_entries; i++)
				stack[sp++] = tm_node_value64(&n, i);
	}
}

/* Read the committed space map back and compare every entry. */
static void compare_disk(enum tm_sm_kind kind, const struct tm_sm_root *root,
			 const uint32_t *expect)
{
	struct tm_sm_disk sm;
	uint64_t nonzero = 0;

	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t have = UINT64_MAX;

	ck_assert_msg(!tm_sm_disk_open(bm, kind, root, &sm, &err), "%s", err.msg);
	for (uint64_t b = 0; b < root->nr_blocks; b++) {
		uint32_t c;
		if (b / 16320 != have) {
			have = b / 16320;
			ck_assert_int_eq(tm_bm_read(bm, sm.index[have].blocknr,
						    &tm_bitmap_validator, buf, &err), 0);
		}
		c = tm_bitmap_get(buf, (uint32_t)(b % 16320));
		if (c == 3)
			ck_assert_msg(!tm_sm_disk_get(bm, &sm, b, &c, &err), "%s", err.msg);
		ck_assert_msg(c == expect[b], "%s block %llu: on disk %u, expected %u",
			      kind == TM_SM_DATA ? "data" : "metadata",
			      (unsigned long long)b, c, expect[b]);
		nonzero += c != 0;
	}
	ck_assert_uint_eq(nonzero, root->nr_allocated);
	tm_sm_disk_close(&sm);
}

/* ------------------------------------------------------------------ */

START_TEST(test_metadata_counts)
{
	static uint32_t model[NBLOCKS], expect[NBLOCKS];
	static uint64_t mine[NBLOCKS];
	uint64_t nmine = 0, seed = 7 + (uint64_t)_i;

	model[0] = 1;		/* the superblock */
	for (int op = 0; op < 6000; op++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned x = (unsigned)(seed >> 33);
		if (x % 10 < 3 || nmine < 10) {
			uint64_t b;
			ck_assert_msg(!tm_msm_new_block(msm, &b, &err), "%s", err.msg);
			ck_assert_uint_eq(model[b], 0);
			model[b] = 1;
			mine[nmine++] = b;
		} else if (x % 10 < 8) {
			uint64_t b = mine[(x >> 4) % nmine];
			ck_assert_int_eq(tm_msm_inc(msm, b, b + 1, &err), 0);
			model[b]++;
		} else {
			uint64_t i = (x >> 4) % nmine, b = mine[i];
			ck_assert_int_eq(tm_msm_dec(msm, b, b + 1, &err), 0);
			if (!--model[b])
				mine[i] = mine[--nmine];
		}
		if (op % 500 == 499) {
			for (uint64_t i = 0; i < nmine; i++) {
				uint32_t c;
				ck_assert_int_eq(tm_msm_get_count(msm, mine[i], &c, &err), 0);
				ck_assert_uint_eq(c, model[mine[i]]);
			}
			commit();
			struct tm_sm_root root;
			tm_msm_root(msm, &root);
			memcpy(expect, model, sizeof(expect));
			own_blocks(&root, expect);
			compare_disk(TM_SM_METADATA, &root, expect);
			ck_assert_uint_eq(tm_msm_nr_free(msm), NBLOCKS - root.nr_allocated);
		}
	}
}
END_TEST

/* Counts far above 2, in ranges: the overflow tree grows past one leaf. */
START_TEST(test_metadata_overflow)
{
	static uint32_t expect[NBLOCKS];
	uint64_t first, b;

	ck_assert_int_eq(tm_msm_new_block(msm, &first, &err), 0);
	for (int i = 1; i < 800; i++)
		ck_assert_int_eq(tm_msm_new_block(msm, &b, &err), 0);
	ck_assert_uint_eq(b, first + 799);
	for (int k = 0; k < 5; k++)
		ck_assert_msg(!tm_msm_inc(msm, first, first + 800, &err), "%s", err.msg);
	commit();
	struct tm_sm_root root;
	tm_msm_root(msm, &root);
	memset(expect, 0, sizeof(expect));
	expect[0] = 1;
	for (uint64_t i = first; i < first + 800; i++)
		expect[i] = 6;
	own_blocks(&root, expect);
	compare_disk(TM_SM_METADATA, &root, expect);
	/* back down through 3 to 2 and 1 */
	for (int k = 0; k < 5; k++)
		ck_assert_int_eq(tm_msm_dec(msm, first, first + 800, &err), 0);
	commit();
	tm_msm_root(msm, &root);
	memset(expect, 0, sizeof(expect));
	expect[0] = 1;
	for (uint64_t i = first; i < first + 800; i++)
		expect[i] = 1;
	own_blocks(&root, expect);
	compare_disk(TM_SM_METADATA, &root, expect);
}
END_TEST

/* Nothing freed in this transaction comes back before the commit. */
START_TEST(test_metadata_no_reuse)
{
	uint64_t a, b, c;

	ck_assert_int_eq(tm_msm_new_block(msm, &a, &err), 0);
	commit();
	ck_assert_int_eq(tm_msm_dec(msm, a, a + 1, &err), 0);
	/* use up the device but for a little room for the commit itself */
	while (tm_msm_nr_free(msm) > 40) {
		ck_assert_int_eq(tm_msm_new_block(msm, &b, &err), 0);
		ck_assert_uint_ne(b, a);
	}
	commit();
	/* now a comes back (after what was free at the end) */
	while (tm_msm_new_block(msm, &c, &err) == 0 && c != a)
		;
	ck_assert_uint_eq(c, a);
}
END_TEST

START_TEST(test_metadata_extend)
{
	struct tm_dev *small;
	struct tm_msm *m2;
	struct tm_tm *t2;
	struct tm_bm *b2;
	static uint32_t expect[NBLOCKS];

	/* a space map of 1000 blocks on a device of 40000 */
	ck_assert_int_eq(tm_dev_mem_create(NBLOCKS, &small), 0);
	ck_assert_int_eq(tm_bm_create(small, 64, &b2), 0);
	ck_assert_int_eq(tm_tm_create(b2, 0, &t2), 0);
	ck_assert_int_eq(tm_msm_create(t2, 1000, 0, &m2, &err), 0);
	ck_assert_uint_eq(tm_msm_nr_blocks(m2), 1000);
	uint64_t b;
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(tm_msm_new_block(m2, &b, &err), 0);
	ck_assert_msg(!tm_msm_extend(m2, NBLOCKS - 1000, &err), "%s", err.msg);
	ck_assert_uint_eq(tm_msm_nr_blocks(m2), NBLOCKS);
	ck_assert_int_eq(tm_msm_commit(m2, &err), 0);
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(tm_msm_new_block(m2, &b, &err), 0);
	ck_assert_int_eq(tm_msm_commit(m2, &err), 0);
	uint8_t sb[TM_BLOCK_SIZE];
	struct tm_sm_root root;
	memset(sb, 0, sizeof(sb));
	tm_msm_root(m2, &root);
	tm_sm_root_encode(&root, sb + TM_SB_OFF_META_SM);
	ck_assert_int_eq(tm_tm_commit(t2, sb, NULL, NULL, &err), 0);
	/* every block is either ours (2500 + superblock) or the map's own */
	struct tm_sm_disk sm;
	ck_assert_int_eq(tm_sm_disk_open(b2, TM_SM_METADATA, &root, &sm, &err), 0);
	ck_assert_uint_eq(sm.nr_bitmaps, 3);
	uint64_t used = 0;
	for (uint64_t x = 0; x < NBLOCKS; x++) {
		uint32_t c;
		ck_assert_int_eq(tm_sm_disk_get(b2, &sm, x, &c, &err), 0);
		ck_assert_uint_le(c, 1);
		used += c;
	}
	ck_assert_uint_eq(used, root.nr_allocated);
	/* 2501 ours, index, 3 bitmaps, overflow root, the 5 format blocks */
	ck_assert_uint_ge(used, 2501 + 5);
	ck_assert_uint_le(used, 2501 + 12);
	tm_sm_disk_close(&sm);
	(void)expect;
	tm_msm_destroy(m2);
	tm_tm_destroy(t2);
	tm_bm_destroy(b2);
	tm_dev_close(small);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The data space map */

#define NDATA 50000		/* four bitmaps, the last partial */

START_TEST(test_data_allocator)
{
	uint64_t b;

	ck_assert_msg(!tm_dsm_create(tm, NDATA, &dsm, &err), "%s", err.msg);
	commit();
	ck_assert_uint_eq(tm_dsm_nr_blocks(dsm), NDATA);
	ck_assert_uint_eq(tm_dsm_nr_free(dsm), NDATA);
	for (uint64_t i = 0; i < 100; i++) {
		ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), 0);
		ck_assert_uint_eq(b, i);
	}
	ck_assert_uint_eq(tm_dsm_nr_free(dsm), NDATA - 100);
	ck_assert_int_eq(tm_dsm_dec(dsm, 10, 20, &err), 0);
	ck_assert_uint_eq(tm_dsm_nr_free(dsm), NDATA - 90);
	ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), 0);
	ck_assert_uint_eq(b, 100);		/* the cursor goes on */
	commit();
	ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), 0);
	ck_assert_uint_eq(b, 101);		/* commits leave the cursor */
	/* allocate to the end: then the search wraps to 10 */
	for (uint64_t i = 102; i < NDATA; i++) {
		ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), 0);
		ck_assert_uint_eq(b, i);
	}
	commit();
	ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), 0);
	ck_assert_uint_eq(b, 10);
	/* freed now, in use at the last commit: not handed out */
	ck_assert_int_eq(tm_dsm_dec(dsm, 30000, 30001, &err), 0);
	for (int i = 0; i < 9; i++)
		ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), 0);
	ck_assert_uint_eq(b, 19);
	ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), -ENOSPC);
	commit();
	ck_assert_int_eq(tm_dsm_new_block(dsm, &b, &err), 0);
	ck_assert_uint_eq(b, 30000);
}
END_TEST

START_TEST(test_data_counts)
{
	static uint32_t model[NDATA];
	uint64_t seed = 99 + (uint64_t)_i;

	ck_assert_msg(!tm_dsm_create(tm, 30000, &dsm, &err), "%s", err.msg);
	commit();
	memset(model, 0, sizeof(model));
	for (int op = 0; op < 3000; op++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned x = (unsigned)(seed >> 33);
		uint64_t b = (x >> 8) % 29000, len = 1 + (x >> 20) % 900;
		if (op == 1500) {
			/* grow while in use */
			ck_assert_int_eq(tm_dsm_extend(dsm, NDATA - 30000, &err), 0);
			commit();
		}
		if (x % 3) {
			ck_assert_msg(!tm_dsm_inc(dsm, b, b + len, &err), "%s", err.msg);
			for (uint64_t i = b; i < b + len; i++)
				model[i]++;
		} else {
			uint64_t e = b;
			while (e < b + len && model[e])
				e++;
			if (e == b)
				continue;
			ck_assert_msg(!tm_dsm_dec(dsm, b, e, &err), "%s", err.msg);
			for (uint64_t i = b; i < e; i++)
				model[i]--;
		}
		if (op % 300 == 299) {
			commit();
			struct tm_sm_root root;
			tm_dsm_root(dsm, &root);
			compare_disk(TM_SM_DATA, &root, model);
		}
	}
	/* a count of 0 cannot go down */
	uint64_t z = 0;
	while (model[z])
		z++;
	ck_assert_int_eq(tm_dsm_dec(dsm, z, z + 1, &err), -EUCLEAN);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sm_write");
	TCase *tc = tcase_create("sm_write");

	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_metadata_counts, 0, 2);
	tcase_add_test(tc, test_metadata_overflow);
	tcase_add_test(tc, test_metadata_no_reuse);
	tcase_add_test(tc, test_metadata_extend);
	tcase_add_test(tc, test_data_allocator);
	tcase_add_loop_test(tc, test_data_counts, 0, 2);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
