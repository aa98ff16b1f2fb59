/*
 * test_tm.c - the transaction manager: shadowing and reference counts, the
 * rule that only blocks of the current transaction are written, the
 * write-back cache, and commit order (superblock last).
 */
#include <errno.h>

#include "thinmeta/sm_write.h"
#include "thinmeta/transaction.h"
#include "unit_util.h"

#define NBLOCKS 2048

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_tm *tm;
static struct tm_msm *msm;
static struct tm_error err;

static void open_env(struct tm_dev *d, size_t cache)
{
	ck_assert_int_eq(tm_bm_create(d, 64, &bm), 0);
	ck_assert_int_eq(tm_tm_create(bm, cache, &tm), 0);
	tm_error_clear(&err);
	ck_assert_msg(!tm_msm_create(tm, NBLOCKS, 0, &msm, &err), "%s", err.msg);
}

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(NBLOCKS, &dev), 0);
	open_env(dev, 0);
}

static void close_env(void)
{
	tm_msm_destroy(msm);
	tm_tm_destroy(tm);
	tm_bm_destroy(bm);
}

static void teardown(void)
{
	close_env();
	tm_dev_close(dev);
}

static int commit(uint32_t tag)
{
	uint8_t sb[TM_BLOCK_SIZE];
	struct tm_sm_root r;
	int rc = tm_msm_commit(msm, &err);

	if (rc)
		return rc;
	memset(sb, 0, sizeof(sb));
	tm_msm_root(msm, &r);
	tm_sm_root_encode(&r, sb + TM_SB_OFF_META_SM);
	tm_put_le64(sb + TM_SB_OFF_MAGIC, TM_SB_MAGIC);
	tm_put_le32(sb + TM_SB_OFF_TIME, tag);
	return tm_tm_commit(tm, sb, NULL, NULL, &err);
}

static uint32_t count(uint64_t b)
{
	uint32_t c;

	ck_assert_int_eq(tm_msm_get_count(msm, b, &c, &err), 0);
	return c;
}

/* A node-like block: a leaf with one key, so the node validator takes it. */
static void fill(uint8_t *buf, uint64_t key)
{
	tm_put_le32(buf + TM_NODE_OFF_FLAGS, TM_NODE_LEAF);
	tm_put_le32(buf + TM_NODE_OFF_NR_ENTRIES, 1);
	tm_put_le32(buf + TM_NODE_OFF_MAX_ENTRIES, 252);
	tm_put_le32(buf + TM_NODE_OFF_VALUE_SIZE, 8);
	tm_put_le64(buf + TM_NODE_HEADER_SIZE, key);
}

static uint64_t key_of(const uint8_t *buf)
{
	return tm_le64(buf + TM_NODE_HEADER_SIZE);
}

START_TEST(test_shadow_rules)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t a, s;
	int inc;

	ck_assert_int_eq(tm_tm_new_block(tm, &a, buf, &err), 0);
	ck_assert(tm_block_is_zero(buf));
	fill(buf, 111);
	ck_assert_int_eq(tm_tm_write(tm, a, &tm_node_validator, buf, &err), 0);
	ck_assert_uint_eq(count(a), 1);

	/* allocated in this transaction, count 1: written in place */
	ck_assert_int_eq(tm_tm_shadow(tm, a, &tm_node_validator, &s, buf, &inc, &err), 0);
	ck_assert_uint_eq(s, a);
	ck_assert_int_eq(inc, 0);
	ck_assert_uint_eq(key_of(buf), 111);
	ck_assert_int_eq(commit(1), 0);

	/* committed: a copy, the original loses its reference */
	ck_assert(!tm_tm_is_shadow(tm, a));
	ck_assert_int_eq(tm_tm_shadow(tm, a, &tm_node_validator, &s, buf, &inc, &err), 0);
	ck_assert_uint_ne(s, a);
	ck_assert_int_eq(inc, 0);
	ck_assert_uint_eq(key_of(buf), 111);
	ck_assert_uint_eq(count(a), 0);
	ck_assert_uint_eq(count(s), 1);
	fill(buf, 222);
	ck_assert_int_eq(tm_tm_write(tm, s, &tm_node_validator, buf, &err), 0);
	/* the committed block is untouched on the device */
	ck_assert_int_eq(tm_bm_read(bm, a, &tm_node_validator, buf, &err), 0);
	ck_assert_uint_eq(key_of(buf), 111);
	ck_assert_int_eq(commit(2), 0);

	/* shared (count 2): a copy, and the caller must inc the children */
	ck_assert_int_eq(tm_tm_inc(tm, s, &err), 0);
	uint64_t s2;
	ck_assert_int_eq(tm_tm_shadow(tm, s, &tm_node_validator, &s2, buf, &inc, &err), 0);
	ck_assert_uint_ne(s2, s);
	ck_assert_int_eq(inc, 1);
	ck_assert_uint_eq(count(s), 1);
	ck_assert_uint_eq(count(s2), 1);
	/* shared even when shadowed in this transaction */
	ck_assert_int_eq(tm_tm_write(tm, s2, &tm_node_validator, buf, &err), 0);
	ck_assert_int_eq(tm_tm_inc(tm, s2, &err), 0);
	uint64_t s3;
	ck_assert_int_eq(tm_tm_shadow(tm, s2, &tm_node_validator, &s3, buf, &inc, &err), 0);
	ck_assert_uint_ne(s3, s2);
	ck_assert_int_eq(inc, 1);
}
END_TEST

START_TEST(test_write_refused_outside_transaction)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t a;

	ck_assert_int_eq(tm_tm_new_block(tm, &a, buf, &err), 0);
	fill(buf, 1);
	ck_assert_int_eq(tm_tm_write(tm, a, &tm_node_validator, buf, &err), 0);
	ck_assert_int_eq(commit(1), 0);
	/* a is committed: writing it would break the last commit */
	ck_assert_int_eq(tm_tm_write(tm, a, &tm_node_validator, buf, &err), -EINVAL);
	ck_assert_int_eq(tm_tm_write(tm, 0, &tm_sb_validator, buf, &err), -EINVAL);
	ck_assert_int_eq(tm_tm_write(tm, NBLOCKS - 1, &tm_node_validator, buf, &err), -EINVAL);
}
END_TEST

START_TEST(test_writeback_cache)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t b[300];

	close_env();
	open_env(dev, 8);		/* 8 dirty blocks at most */
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(tm_tm_new_block(tm, &b[i], buf, &err), 0);
		fill(buf, 1000 + (uint64_t)i);
		ck_assert_int_eq(tm_tm_write(tm, b[i], &tm_node_validator, buf, &err), 0);
	}
	/* rewrite some after they were written out */
	for (int i = 0; i < 300; i += 7) {
		ck_assert_int_eq(tm_tm_read(tm, b[i], &tm_node_validator, buf, &err), 0);
		ck_assert_uint_eq(key_of(buf), 1000 + (uint64_t)i);
		fill(buf, 5000 + (uint64_t)i);
		ck_assert_int_eq(tm_tm_write(tm, b[i], &tm_node_validator, buf, &err), 0);
	}
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(tm_tm_read(tm, b[i], &tm_node_validator, buf, &err), 0);
		ck_assert_uint_eq(key_of(buf), (i % 7 ? 1000 : 5000) + (uint64_t)i);
	}
	ck_assert_int_eq(commit(1), 0);
	/* on the device, sealed and valid */
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(tm_block_validate(&tm_node_validator, mem_block(dev, b[i]),
						   b[i], &err), 0);
		ck_assert_uint_eq(key_of(mem_block(dev, b[i])), (i % 7 ? 1000 : 5000) + (uint64_t)i);
	}
}
END_TEST

/* Fail each write point of a commit: block 0 is never the new superblock
 * unless everything it names is on the device. */
START_TEST(test_commit_order)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_dev *fdev;

	for (uint64_t nth = 1; nth < 200; nth++) {
		struct tm_dev *mem;
		ck_assert_int_eq(tm_dev_mem_create(NBLOCKS, &mem), 0);
		close_env();
		open_env(mem, 0);
		ck_assert_int_eq(commit(1), 0);
		close_env();
		uint8_t old_sb[TM_BLOCK_SIZE];
		memcpy(old_sb, mem_block(mem, 0), TM_BLOCK_SIZE);

		ck_assert_int_eq(tm_dev_fault_wrap(mem, nth, 2, &fdev), 0);
		ck_assert_int_eq(tm_bm_create(fdev, 64, &bm), 0);
		ck_assert_int_eq(tm_tm_create(bm, 0, &tm), 0);
		struct tm_sm_root root;
		tm_sm_root_decode(old_sb + TM_SB_OFF_META_SM, &root);
		ck_assert_int_eq(tm_msm_open(tm, &root, &msm, &err), 0);
		int r = 0;
		uint64_t b;
		for (int i = 0; i < 50 && !r; i++) {
			r = tm_tm_new_block(tm, &b, buf, &err);
			fill(buf, (uint64_t)i);
			if (!r)
				r = tm_tm_write(tm, b, &tm_node_validator, buf, &err);
		}
		if (!r)
			r = commit(2);
		if (!r) {
			ck_assert_uint_eq(tm_le32(mem_block(mem, 0) + TM_SB_OFF_TIME), 2);
			tm_dev_close(fdev);
			ck_assert_uint_gt(nth, 3);
			return;
		}
		if (memcmp(old_sb, mem_block(mem, 0), TM_BLOCK_SIZE)) {
			/* only the flush after block 0 failed: all it names is there */
			ck_assert_uint_eq(tm_le32(mem_block(mem, 0) + TM_SB_OFF_TIME), 2);
			ck_assert_int_eq(tm_block_validate(&tm_node_validator, mem_block(mem, b),
							   b, &err), 0);
		}
		tm_dev_close(fdev);
	}
	ck_abort_msg("the commit never succeeded");
}
END_TEST

START_TEST(test_damaged_block_refused)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t a;
	int inc;

	ck_assert_int_eq(tm_tm_new_block(tm, &a, buf, &err), 0);
	fill(buf, 9);
	ck_assert_int_eq(tm_tm_write(tm, a, &tm_node_validator, buf, &err), 0);
	ck_assert_int_eq(commit(1), 0);
	mem_block(dev, a)[100] ^= 1;
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_tm_shadow(tm, a, &tm_node_validator, &a, buf, &inc, &err), -EILSEQ);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tm");
	TCase *tc = tcase_create("tm");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_shadow_rules);
	tcase_add_test(tc, test_write_refused_outside_transaction);
	tcase_add_test(tc, test_writeback_cache);
	tcase_add_test(tc, test_commit_order);
	tcase_add_test(tc, test_damaged_block_refused);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
