/*
 * test_metadata_size.c - 1.1.0's metadata size estimate and data block
 * size rules (the figures are 1.1.0's thin_metadata_size output).
 */
#include "thinmeta/metadata_size.h"
#include "unit_util.h"

START_TEST(estimate)
{
	/* -s 2097152 -b 128 -m 1: 16384 data blocks -> 1064 sectors */
	ck_assert_uint_eq(tm_metadata_size_estimate(16384, 1), 1064ull * 512);
	/* -s 128 -b 128 -m 286: 1 + 1 + 286 blocks */
	ck_assert_uint_eq(tm_metadata_size_estimate(1, 286), 288ull * 4096);
	/* 126 mappings per leaf */
	ck_assert_uint_eq(tm_metadata_size_estimate(126, 0), 2ull * 4096);
	ck_assert_uint_eq(tm_metadata_size_estimate(127, 0), 3ull * 4096);
	/* capped at the largest metadata device: 33292800 sectors */
	ck_assert_uint_eq(tm_metadata_size_estimate(1ull << 40, 10), 33292800ull * 512);
	/* u64 arithmetic wraps as 1.1.0's does: -m 2^64-1 -> 1048 sectors */
	ck_assert_uint_eq(tm_metadata_size_estimate(16384, UINT64_MAX), 1048ull * 512);
}
END_TEST

START_TEST(block_sizes)
{
	ck_assert_ptr_null(tm_data_block_bytes_problem(65536));
	ck_assert_ptr_null(tm_data_block_bytes_problem(3 * 65536));
	ck_assert_ptr_null(tm_data_block_bytes_problem(1ull << 30));
	ck_assert_str_eq(tm_data_block_bytes_problem(0), "block size must be a multiple of 64 KiB");
	ck_assert_str_eq(tm_data_block_bytes_problem(32768), "block size must be a multiple of 64 KiB");
	ck_assert_str_eq(tm_data_block_bytes_problem(65537), "block size must be a multiple of 64 KiB");
	ck_assert_str_eq(tm_data_block_bytes_problem((1ull << 30) + 65536), "maximum block size is 1 GiB");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("metadata_size");
	TCase *tc = tcase_create("metadata_size");

	tcase_add_test(tc, estimate);
	tcase_add_test(tc, block_sizes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
