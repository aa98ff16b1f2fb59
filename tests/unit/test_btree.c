/* test_btree.c - lookup, ordered walks and what they refuse. */
#include <errno.h>

#include "unit_util.h"

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_error err;

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(64, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 8, &bm), 0);
	tm_error_clear(&err);
}

static void teardown(void)
{
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}

/*
 * A two-level tree: root 10 (internal) -> leaves 11, 12, 13 with keys
 * 0..99 step 1 split at 40 and 70; value = key * 10.
 */
static void build_tree(void)
{
	uint64_t keys[100], vals[100];
	uint64_t rk[3] = { 0, 40, 70 }, rv[3] = { 11, 12, 13 };

	for (int i = 0; i < 100; i++) {
		keys[i] = (uint64_t)i;
		vals[i] = (uint64_t)i * 10;
	}
	put_u64_node(dev, 11, TM_NODE_LEAF, 40, keys, vals);
	put_u64_node(dev, 12, TM_NODE_LEAF, 30, keys + 40, vals + 40);
	put_u64_node(dev, 13, TM_NODE_LEAF, 30, keys + 70, vals + 70);
	put_u64_node(dev, 10, TM_NODE_INTERNAL, 3, rk, rv);
}

struct collect {
	uint64_t n, last;
	int ordered;
};

static int collect(void *ctx, const struct tm_node *leaf)
{
	struct collect *c = ctx;

	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		uint64_t k = tm_node_key(leaf, i);
		if (c->n && k <= c->last)
			c->ordered = 0;
		ck_assert_uint_eq(tm_node_value64(leaf, i), k * 10);
		c->last = k;
		c->n++;
	}
	return 0;
}

START_TEST(lookup_and_walk)
{
	uint8_t v[8];
	struct collect c = { 0, 0, 1 };

	build_tree();
	for (uint64_t k = 0; k < 100; k++) {
		ck_assert_int_eq(tm_btree_lookup(bm, 10, 8, k, v, &err), 0);
		ck_assert_uint_eq(tm_le64(v), k * 10);
	}
	ck_assert_int_eq(tm_btree_lookup(bm, 10, 8, 100, v, &err), -ENODATA);
	ck_assert_int_eq(tm_btree_walk(bm, 10, 8, collect, &c, &err), 0);
	ck_assert_uint_eq(c.n, 100);
	ck_assert(c.ordered);

	uint64_t *leaves, nr;
	ck_assert_int_eq(tm_btree_leaves(bm, 10, &leaves, &nr, &err), 0);
	ck_assert_uint_eq(nr, 3);
	ck_assert_uint_eq(leaves[0], 11);
	ck_assert_uint_eq(leaves[2], 13);
	free(leaves);
	/* a root that is a leaf is its own list */
	ck_assert_int_eq(tm_btree_leaves(bm, 12, &leaves, &nr, &err), 0);
	ck_assert_uint_eq(nr, 1);
	ck_assert_uint_eq(leaves[0], 12);
	free(leaves);
}
END_TEST

START_TEST(wrong_value_size)
{
	struct collect c = { 0, 0, 1 };

	build_tree();
	ck_assert_int_eq(tm_btree_walk(bm, 10, 24, collect, &c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_VALUE_SIZE);
	ck_assert_uint_eq(err.block, 11);
}
END_TEST

START_TEST(keys_out_of_order)
{
	uint64_t k[3] = { 5, 3, 9 }, v[3] = { 50, 30, 90 };
	struct collect c = { 0, 0, 1 };

	put_u64_node(dev, 20, TM_NODE_LEAF, 3, k, v);
	ck_assert_int_eq(tm_btree_walk(bm, 20, 8, collect, &c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_KEY_ORDER);
	ck_assert_uint_eq(err.block, 20);
}
END_TEST

START_TEST(key_outside_parent_range)
{
	uint64_t k[2] = { 38, 45 }, v[2] = { 380, 450 };
	struct collect c = { 0, 0, 1 };

	build_tree();
	/* leaf 11 covers [0, 40): a key of 45 does not belong there */
	put_u64_node(dev, 11, TM_NODE_LEAF, 2, k, v);
	ck_assert_int_eq(tm_btree_walk(bm, 10, 8, collect, &c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_KEY_RANGE);
	ck_assert_uint_eq(err.block, 11);
}
END_TEST

START_TEST(cycle_is_refused)
{
	uint64_t k[2] = { 0, 50 }, v[2] = { 30, 30 };
	struct collect c = { 0, 0, 1 };
	uint64_t *leaves, nr;

	/* an internal node pointing at itself */
	uint64_t sk = 0, sv = 31;
	put_u64_node(dev, 31, TM_NODE_INTERNAL, 1, &sk, &sv);
	ck_assert_int_eq(tm_btree_walk(bm, 31, 8, collect, &c, &err), -ELOOP);
	ck_assert_int_eq(tm_btree_leaves(bm, 31, &leaves, &nr, &err), -ELOOP);
	/* two children that are the same (empty, so range-free) leaf */
	put_u64_node(dev, 30, TM_NODE_LEAF, 0, NULL, NULL);
	put_u64_node(dev, 33, TM_NODE_INTERNAL, 2, k, v);
	ck_assert_int_eq(tm_btree_walk(bm, 33, 8, collect, &c, &err), -ELOOP);
	ck_assert_int_eq(err.rule, TM_RULE_CYCLE);
	ck_assert_uint_eq(err.block, 30);
}
END_TEST

START_TEST(uneven_depth)
{
	uint64_t k[2] = { 0, 40 }, v[2] = { 11, 40 };
	uint64_t ik = 40, iv = 12;
	struct collect c = { 0, 0, 1 };
	uint64_t *leaves, nr;

	build_tree();
	put_u64_node(dev, 40, TM_NODE_INTERNAL, 1, &ik, &iv);	/* 40 -> leaf 12 */
	put_u64_node(dev, 41, TM_NODE_INTERNAL, 2, k, v);	/* leaf 11 at depth 1, 12 at 2 */
	ck_assert_int_eq(tm_btree_walk(bm, 41, 8, collect, &c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_DEPTH);
	/*
	 * The leaf list reads only nodes above the first path's leaf depth, as
	 * 1.1.0 does: the internal node 40 is listed as a leaf, and its reader
	 * (thin_dump) refuses it when it reads it as one.
	 */
	ck_assert_int_eq(tm_btree_leaves(bm, 41, &leaves, &nr, &err), 0);
	ck_assert_uint_eq(nr, 2);
	ck_assert_uint_eq(leaves[1], 40);
	free(leaves);
}
END_TEST

START_TEST(pointer_past_end)
{
	uint64_t k = 0, v = 1000;
	struct collect c = { 0, 0, 1 };

	put_u64_node(dev, 50, TM_NODE_INTERNAL, 1, &k, &v);
	ck_assert_int_eq(tm_btree_walk(bm, 50, 8, collect, &c, &err), -ERANGE);
	ck_assert_int_eq(err.rule, TM_RULE_OUT_OF_RANGE);
	ck_assert_uint_eq(err.block, 1000);
}
END_TEST

START_TEST(empty_internal)
{
	struct collect c = { 0, 0, 1 };

	put_u64_node(dev, 51, TM_NODE_INTERNAL, 0, NULL, NULL);
	ck_assert_int_eq(tm_btree_walk(bm, 51, 8, collect, &c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_EMPTY_INTERNAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, lookup_and_walk);
	tcase_add_test(tc, wrong_value_size);
	tcase_add_test(tc, keys_out_of_order);
	tcase_add_test(tc, key_outside_parent_range);
	tcase_add_test(tc, cycle_is_refused);
	tcase_add_test(tc, uneven_depth);
	tcase_add_test(tc, pointer_past_end);
	tcase_add_test(tc, empty_internal);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
