/*
 * test_rmap.c - tm_rmap on hand-made trees: runs across leaf boundaries,
 * regions that cut runs, a leaf shared by two devices reported for the
 * first only (1.1.0's walk), the sort order, damage refused.
 */
#include <errno.h>

#include "thinmeta/rmap.h"
#include "unit_util.h"

#define NBLOCKS 1024

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_error err;
static uint64_t next_block;

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(NBLOCKS, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 64, &bm), 0);
	tm_error_clear(&err);
	next_block = 1;
}

static void teardown(void)
{
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}

static uint64_t leaf(uint64_t kbase, uint32_t n, uint64_t dbase)
{
	uint64_t k[252], v[252], b = next_block++;

	for (uint32_t i = 0; i < n; i++) {
		k[i] = kbase + i;
		v[i] = tm_bt_pack(dbase + i, 3);
	}
	put_u64_node(dev, b, TM_NODE_LEAF, n, k, v);
	return b;
}

static uint64_t node(uint32_t flags, uint32_t n, const uint64_t *keys, const uint64_t *vals)
{
	uint64_t b = next_block++;

	put_u64_node(dev, b, flags, n, keys, vals);
	return b;
}

static struct tm_rmap_run *runs;
static uint64_t nr;

static void expect_run(uint64_t i, uint64_t db, uint64_t de, uint32_t id, uint64_t tb)
{
	ck_assert_uint_lt(i, nr);
	ck_assert_uint_eq(runs[i].data_begin, db);
	ck_assert_uint_eq(runs[i].data_end, de);
	ck_assert_uint_eq(runs[i].dev_id, id);
	ck_assert_uint_eq(runs[i].thin_begin, tb);
}

/*
 * dev 1: leaves A (keys 0..99 -> data 500..599), B (100..199 -> 600..699);
 * dev 2: leaves C (0..99 -> 2000..2099) and B, shared;
 * dev 3: one leaf D (0..9 -> 505..514): data shared with A, not the leaf.
 */
static struct tm_view view;

static void build(void)
{
	uint64_t a = leaf(0, 100, 500), b = leaf(100, 100, 600), c = leaf(0, 100, 2000);
	uint64_t d = leaf(0, 10, 505);
	uint64_t k[2] = { 0, 100 }, r1[2] = { a, b }, r2[2] = { c, b };
	uint64_t ids[3] = { 1, 2, 3 }, roots[3];

	roots[0] = node(TM_NODE_INTERNAL, 2, k, r1);
	roots[1] = node(TM_NODE_INTERNAL, 2, k, r2);
	roots[2] = d;
	memset(&view, 0, sizeof(view));
	view.sb.mapping_root = node(TM_NODE_LEAF, 3, ids, roots);
}

START_TEST(whole_data_device)
{
	struct tm_range all = { 0, 1u << 20 };

	build();
	ck_assert_int_eq(tm_rmap(bm, &view, &all, 1, &runs, &nr, &err), 0);
	ck_assert_uint_eq(nr, 3);
	expect_run(0, 500, 700, 1, 0);		/* merged across A and B */
	expect_run(1, 505, 515, 3, 0);
	expect_run(2, 2000, 2100, 2, 0);	/* B not walked again for dev 2 */
	free(runs);
}
END_TEST

START_TEST(regions_cut_runs)
{
	struct tm_range r[3] = { { 650, 660 }, { 590, 610 }, { 510, 512 } };

	build();
	ck_assert_int_eq(tm_rmap(bm, &view, r, 3, &runs, &nr, &err), 0);
	ck_assert_uint_eq(nr, 4);
	expect_run(0, 510, 512, 1, 10);
	expect_run(1, 510, 512, 3, 5);		/* same data: sorted by device */
	expect_run(2, 590, 610, 1, 90);		/* adjacent regions: one run */
	expect_run(3, 650, 660, 1, 150);
	free(runs);

	struct tm_range none = { 100000, 100001 };
	ck_assert_int_eq(tm_rmap(bm, &view, &none, 1, &runs, &nr, &err), 0);
	ck_assert_uint_eq(nr, 0);
	free(runs);
}
END_TEST

START_TEST(damage_refused)
{
	struct tm_range all = { 0, 1u << 20 };

	build();
	/* dev 2's own leaf C is block 3 */
	mem_block(dev, 3)[64] ^= 0x10;
	ck_assert_int_eq(tm_rmap(bm, &view, &all, 1, &runs, &nr, &err), -EILSEQ);
	ck_assert_uint_eq(err.block, 3);
	ck_assert_ptr_nonnull(strstr(err.msg, "device 2"));
	ck_assert_ptr_null(runs);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rmap");
	TCase *tc = tcase_create("rmap");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, whole_data_device);
	tcase_add_test(tc, regions_cut_runs);
	tcase_add_test(tc, damage_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
