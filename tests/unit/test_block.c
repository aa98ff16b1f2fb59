/* test_block.c - validators and the block manager. */
#include <errno.h>

#include "unit_util.h"

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_error err;
static uint8_t buf[TM_BLOCK_SIZE];

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(16, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 4, &bm), 0);
	tm_error_clear(&err);
}

static void teardown(void)
{
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}

START_TEST(seal_and_identify)
{
	const struct tm_validator *vs[] = { &tm_sb_validator, &tm_node_validator,
					     &tm_bitmap_validator, &tm_index_validator };
	for (unsigned i = 0; i < 4; i++) {
		uint8_t *p = mem_block(dev, 5);
		memset(p, 0, TM_BLOCK_SIZE);
		if (vs[i] == &tm_node_validator) {
			uint64_t k = 1, v = 2;
			put_u64_node(dev, 5, TM_NODE_LEAF, 1, &k, &v);
		} else {
			p[100] = (uint8_t)i;
			tm_block_seal(p, 5, vs[i]->salt);
		}
		ck_assert_ptr_eq(tm_block_identify(p), vs[i]);
		ck_assert_int_eq(tm_block_validate(vs[i], p, 5, &err), 0);
		/* the wrong type's salt fails */
		ck_assert_int_eq(tm_block_validate(vs[(i + 1) % 4], p, 5, &err), -EILSEQ);
		ck_assert_int_eq(err.rule, TM_RULE_CHECKSUM);
		/* at another location it is not itself */
		ck_assert_int_eq(tm_block_validate(vs[i], p, 6, &err), -ENOTBLK);
		ck_assert_int_eq(err.rule, TM_RULE_BLOCKNR);
		ck_assert_uint_eq(err.block, 6);
		/* one flipped bit anywhere past the checksum breaks it */
		p[4095] ^= 0x80;
		ck_assert_int_eq(tm_block_validate(vs[i], p, 5, &err), -EILSEQ);
		ck_assert_ptr_null(tm_block_identify(p));
	}
}
END_TEST

START_TEST(zeroed_block)
{
	ck_assert_int_eq(tm_bm_read(bm, 3, &tm_node_validator, buf, &err), -EILSEQ);
	ck_assert_int_eq(err.rule, TM_RULE_ZEROED);
	ck_assert_uint_eq(err.block, 3);
	ck_assert_ptr_nonnull(strstr(err.msg, "block 3"));
}
END_TEST

START_TEST(node_header_rules)
{
	uint64_t k[2] = { 1, 2 }, v[2] = { 3, 4 };
	uint8_t *p = mem_block(dev, 7);

	put_u64_node(dev, 7, TM_NODE_LEAF, 2, k, v);
	ck_assert_int_eq(tm_bm_read(bm, 7, &tm_node_validator, buf, &err), 0);

	tm_put_le32(p + TM_NODE_OFF_FLAGS, 3);
	reseal(dev, 7, TM_SALT_BTREE_NODE);
	tm_bm_forget(bm, 7);
	ck_assert_int_eq(tm_bm_read(bm, 7, &tm_node_validator, buf, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_NODE_FLAGS);

	tm_put_le32(p + TM_NODE_OFF_FLAGS, TM_NODE_LEAF);
	tm_put_le32(p + TM_NODE_OFF_NR_ENTRIES, 253);
	reseal(dev, 7, TM_SALT_BTREE_NODE);
	tm_bm_forget(bm, 7);
	ck_assert_int_eq(tm_bm_read(bm, 7, &tm_node_validator, buf, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_NR_ENTRIES);

	tm_put_le32(p + TM_NODE_OFF_NR_ENTRIES, 2);
	tm_put_le32(p + TM_NODE_OFF_MAX_ENTRIES, 0x7fffffff);
	reseal(dev, 7, TM_SALT_BTREE_NODE);
	tm_bm_forget(bm, 7);
	ck_assert_int_eq(tm_bm_read(bm, 7, &tm_node_validator, buf, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_MAX_ENTRIES);
}
END_TEST

START_TEST(cache_coherent)
{
	memset(buf, 0, sizeof(buf));
	buf[200] = 42;
	ck_assert_int_eq(tm_bm_write(bm, 9, &tm_bitmap_validator, buf, &err), 0);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(tm_bm_read(bm, 9, &tm_bitmap_validator, buf, &err), 0);
	ck_assert_uint_eq(buf[200], 42);
	ck_assert_uint_eq(tm_le64(buf + 8), 9);
	/* the device holds the sealed block too */
	ck_assert_int_eq(tm_block_validate(&tm_bitmap_validator, mem_block(dev, 9), 9, &err), 0);
	/* many blocks through a 4-slot cache */
	for (uint64_t b = 0; b < 16; b++) {
		memset(buf, 0, sizeof(buf));
		buf[300] = (uint8_t)b;
		ck_assert_int_eq(tm_bm_write(bm, b, &tm_index_validator, buf, &err), 0);
	}
	for (uint64_t b = 0; b < 16; b++) {
		ck_assert_int_eq(tm_bm_read(bm, b, &tm_index_validator, buf, &err), 0);
		ck_assert_uint_eq(buf[300], b);
	}
	ck_assert_int_eq(tm_bm_read(bm, 16, NULL, buf, &err), -ERANGE);
	ck_assert_int_eq(err.rule, TM_RULE_OUT_OF_RANGE);
}
END_TEST

START_TEST(io_error_reported)
{
	struct tm_dev *f;
	struct tm_bm *fbm;

	ck_assert_int_eq(tm_dev_fault_wrap(dev, 1, 1, &f), 0);
	ck_assert_int_eq(tm_bm_create(f, 0, &fbm), 0);
	ck_assert_int_eq(tm_bm_read(fbm, 2, NULL, buf, &err), -EIO);
	ck_assert_int_eq(err.rule, TM_RULE_IO);
	ck_assert_uint_eq(err.block, 2);
	tm_bm_destroy(fbm);
	tm_dev_close(f);	/* closes dev too */
	ck_assert_int_eq(tm_dev_mem_create(16, &dev), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("block");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, seal_and_identify);
	tcase_add_test(tc, zeroed_block);
	tcase_add_test(tc, node_header_rules);
	tcase_add_test(tc, cache_coherent);
	tcase_add_test(tc, io_error_reported);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
