/*
 * test_trim.c - the free data ranges thin_trim discards, and the check
 * before them, on the kernel-written fixture 02 (384 of 4096 data blocks
 * in use): the ranges, and refusals when a mapped block is free in the
 * data space map or lies past the data device.
 */
#include <errno.h>

#include "thinmeta/metadata.h"
#include "thinmeta/rmap.h"
#include "thinmeta/space_map.h"
#include "thinmeta/trim.h"
#include "unit_util.h"

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_error err;

/* The fixture in an in-memory device, or 0 (test skipped). */
static int load(void)
{
	const char *path = fixture("02-thins-snaps.meta.img");
	FILE *f;

	if (!path)
		return 0;
	ck_assert_int_eq(tm_dev_mem_create(2048, &dev), 0);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(tm_dev_mem_data(dev), 4096, 2048, f), 2048);
	fclose(f);
	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	tm_error_clear(&err);
	return 1;
}

static void unload(void)
{
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}

START_TEST(free_ranges)
{
	struct tm_superblock sb;
	struct tm_range *fr, all = { 0, 4096 };
	struct tm_rmap_run *runs;
	struct tm_view v;
	uint64_t nr, nruns, total = 0;

	if (!load())
		return;
	ck_assert_int_eq(tm_free_data_ranges(bm, &sb, &fr, &nr, &err), 0);
	ck_assert_uint_eq(sb.data_sm.nr_blocks, 4096);
	ck_assert_uint_gt(nr, 0);
	for (uint64_t i = 0; i < nr; i++) {
		ck_assert_uint_lt(fr[i].begin, fr[i].end);
		if (i)
			ck_assert_uint_gt(fr[i].begin, fr[i - 1].end);	/* maximal */
		total += fr[i].end - fr[i].begin;
	}
	ck_assert_uint_eq(fr[nr - 1].end, 4096);
	ck_assert_uint_eq(total, 4096 - 384);
	/* no mapped block is in a free range */
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	ck_assert_int_eq(tm_rmap(bm, &v, fr, nr, &runs, &nruns, &err), 0);
	ck_assert_uint_eq(nruns, 0);
	free(runs);
	ck_assert_int_eq(tm_rmap(bm, &v, &all, 1, &runs, &nruns, &err), 0);
	ck_assert_uint_gt(nruns, 0);
	free(runs);
	free(fr);
	unload();
}
END_TEST

START_TEST(mapped_but_free_is_refused)
{
	struct tm_superblock sb;
	struct tm_sm_disk sm;
	struct tm_range *fr;
	uint64_t nr;

	if (!load())
		return;
	ck_assert_int_eq(tm_read_superblock(bm, &sb, &err), 0);
	ck_assert_int_eq(tm_sm_disk_open(bm, TM_SM_DATA, &sb.data_sm, &sm, &err), 0);
	/* data block 368 is mapped by device 0 (thin block 0) */
	uint8_t *bmp = mem_block(dev, sm.index[0].blocknr);
	ck_assert_uint_ne(tm_bitmap_get(bmp, 368), 0);
	tm_bitmap_set(bmp, 368, 0);
	reseal(dev, sm.index[0].blocknr, TM_SALT_BITMAP);
	tm_sm_disk_close(&sm);
	ck_assert_int_eq(tm_free_data_ranges(bm, &sb, &fr, &nr, &err), -EUCLEAN);
	ck_assert_ptr_null(fr);
	ck_assert_ptr_nonnull(strstr(err.msg, "data block 368"));
	unload();
}
END_TEST

START_TEST(mapping_past_data_device_is_refused)
{
	struct tm_superblock sb;
	struct tm_range *fr;
	uint64_t nr;
	uint8_t *p;

	if (!load())
		return;
	/* shrink the data device to 300 blocks: block 368 is past it */
	p = mem_block(dev, 0);
	tm_sb_decode(p, &sb);
	sb.data_sm.nr_blocks = 300;
	tm_sm_root_encode(&sb.data_sm, p + TM_SB_OFF_DATA_SM);
	reseal(dev, 0, TM_SALT_SUPERBLOCK);
	ck_assert_int_eq(tm_free_data_ranges(bm, &sb, &fr, &nr, &err), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "past the end of the data device"));
	unload();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("trim");
	TCase *tc = tcase_create("trim");

	tcase_add_test(tc, free_ranges);
	tcase_add_test(tc, mapped_but_free_is_refused);
	tcase_add_test(tc, mapping_past_data_device_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
