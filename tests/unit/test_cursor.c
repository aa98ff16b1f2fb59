/*
 * test_cursor.c - seeking and stepping through btrees, and what a cursor
 * does on damage: an error naming the block, never a wrong entry or a loop.
 */
#include <errno.h>

#include "unit_util.h"
#include "thinmeta/cursor.h"

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_error err;

#define NKEYS 1000u
#define PER_LEAF 40u		/* 25 leaves */
#define FANOUT 5u		/* 5 internal nodes, one root: 3 levels */

static uint64_t key_of(uint64_t i) { return 3 * i + 1; }

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(256, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 16, &bm), 0);
	tm_error_clear(&err);
}

static void teardown(void)
{
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}

/* Leaves at 100.., internal nodes at 200.., root at 10. */
static uint64_t build(void)
{
	uint64_t keys[PER_LEAF], vals[PER_LEAF];
	uint64_t nleaves = NKEYS / PER_LEAF;

	for (uint64_t l = 0; l < nleaves; l++) {
		for (uint64_t i = 0; i < PER_LEAF; i++) {
			keys[i] = key_of(l * PER_LEAF + i);
			vals[i] = keys[i] * 10;
		}
		put_u64_node(dev, 100 + l, TM_NODE_LEAF, PER_LEAF, keys, vals);
	}
	uint64_t rk[FANOUT], rv[FANOUT];
	for (uint64_t n = 0; n < nleaves / FANOUT; n++) {
		for (uint64_t i = 0; i < FANOUT; i++) {
			keys[i] = key_of((n * FANOUT + i) * PER_LEAF);
			vals[i] = 100 + n * FANOUT + i;
		}
		put_u64_node(dev, 200 + n, TM_NODE_INTERNAL, FANOUT, keys, vals);
		rk[n] = keys[0];
		rv[n] = 200 + n;
	}
	put_u64_node(dev, 10, TM_NODE_INTERNAL, (uint32_t)(nleaves / FANOUT), rk, rv);
	return 10;
}

START_TEST(seek_every_key)
{
	struct tm_cursor c;

	tm_cursor_init(&c, bm, build(), 8);
	for (uint64_t k = 0; k <= key_of(NKEYS - 1) + 2; k++) {
		int r = tm_cursor_seek(&c, k, &err);
		uint64_t want = (k + 1) / 3;	/* index of the first key >= k */
		if (want >= NKEYS) {
			ck_assert_int_eq(r, -ENODATA);
			continue;
		}
		ck_assert_int_eq(r, 0);
		ck_assert_uint_eq(tm_cursor_key(&c), key_of(want));
		ck_assert_uint_eq(tm_cursor_value64(&c), key_of(want) * 10);
		ck_assert_uint_eq(tm_cursor_leaf(&c), 100 + want / PER_LEAF);
		ck_assert_uint_eq(tm_cursor_index(&c), want % PER_LEAF);
		ck_assert_uint_eq(c.depth, 3);
	}
}
END_TEST

START_TEST(walk_both_ways)
{
	struct tm_cursor c;
	uint64_t n = 0;
	int r;

	tm_cursor_init(&c, bm, build(), 8);
	for (r = tm_cursor_first(&c, &err); !r; r = tm_cursor_next(&c, &err))
		ck_assert_uint_eq(tm_cursor_key(&c), key_of(n++));
	ck_assert_int_eq(r, -ENODATA);
	ck_assert_uint_eq(n, NKEYS);
	ck_assert_int_eq(tm_cursor_next(&c, &err), -ENODATA);

	for (r = tm_cursor_last(&c, &err); !r; r = tm_cursor_prev(&c, &err))
		ck_assert_uint_eq(tm_cursor_key(&c), key_of(--n));
	ck_assert_int_eq(r, -ENODATA);
	ck_assert_uint_eq(n, 0);

	/* leaf by leaf */
	ck_assert_int_eq(tm_cursor_seek(&c, key_of(5), &err), 0);
	for (n = 1; !(r = tm_cursor_next_leaf(&c, &err)); n++)
		ck_assert_uint_eq(tm_cursor_key(&c), key_of(n * PER_LEAF));
	ck_assert_int_eq(r, -ENODATA);
	ck_assert_uint_eq(n, NKEYS / PER_LEAF);
	/* at most a handful of blocks are read per step: the cache is 16 */
	uint64_t before = dev->reads;
	ck_assert_int_eq(tm_cursor_seek(&c, key_of(500), &err), 0);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(tm_cursor_next(&c, &err), 0);
	ck_assert_uint_le(dev->reads - before, 3 + 200 / PER_LEAF + 2);
}
END_TEST

START_TEST(empty_tree)
{
	struct tm_cursor c;

	put_u64_node(dev, 5, TM_NODE_LEAF, 0, NULL, NULL);
	tm_cursor_init(&c, bm, 5, 8);
	ck_assert_int_eq(tm_cursor_seek(&c, 0, &err), -ENODATA);
	ck_assert_int_eq(tm_cursor_first(&c, &err), -ENODATA);
	ck_assert_int_eq(tm_cursor_last(&c, &err), -ENODATA);
	ck_assert_int_eq(tm_cursor_next(&c, &err), -ENODATA);
	ck_assert_int_eq(tm_cursor_prev(&c, &err), -ENODATA);
}
END_TEST

START_TEST(damaged_leaf)
{
	struct tm_cursor c;
	int r;

	tm_cursor_init(&c, bm, build(), 8);
	mem_block(dev, 107)[100] ^= 0xff;	/* leaf 7: keys 280..319 by index */
	ck_assert_int_eq(tm_cursor_seek(&c, key_of(250), &err), 0);
	uint64_t n = 0;
	while (!(r = tm_cursor_next(&c, &err)))
		n++;
	ck_assert_int_eq(r, -EILSEQ);
	ck_assert_uint_eq(err.block, 107);
	ck_assert_int_eq(err.rule, TM_RULE_CHECKSUM);
	ck_assert_uint_eq(n, 7 * PER_LEAF - 250 - 1);
	ck_assert_int_eq(tm_cursor_next(&c, &err), -ENODATA);	/* unpositioned */
	/* past it, and backwards into it */
	ck_assert_int_eq(tm_cursor_seek(&c, key_of(8 * PER_LEAF), &err), 0);
	ck_assert_uint_eq(tm_cursor_key(&c), key_of(8 * PER_LEAF));
	ck_assert_int_eq(tm_cursor_prev(&c, &err), -EILSEQ);
	ck_assert_uint_eq(err.block, 107);
}
END_TEST

START_TEST(hostile_trees)
{
	struct tm_cursor c;
	uint64_t k[2] = { 0, 10 }, v[2];

	/* a node that is its own child */
	v[0] = 20;
	put_u64_node(dev, 20, TM_NODE_INTERNAL, 1, k, v);
	tm_cursor_init(&c, bm, 20, 8);
	ck_assert_int_eq(tm_cursor_first(&c, &err), -ELOOP);
	ck_assert_int_eq(tm_cursor_seek(&c, 5, &err), -ELOOP);
	ck_assert_int_eq(tm_cursor_last(&c, &err), -ELOOP);

	/* two children that are the same leaf: keys do not move on */
	uint64_t lk[2] = { 0, 1 }, lv[2] = { 7, 8 };
	put_u64_node(dev, 21, TM_NODE_LEAF, 2, lk, lv);
	v[0] = v[1] = 21;
	put_u64_node(dev, 22, TM_NODE_INTERNAL, 2, k, v);
	tm_cursor_init(&c, bm, 22, 8);
	ck_assert_int_eq(tm_cursor_first(&c, &err), 0);
	ck_assert_int_eq(tm_cursor_next(&c, &err), 0);
	ck_assert_int_eq(tm_cursor_next(&c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_KEY_ORDER);

	/* an empty leaf below the root */
	put_u64_node(dev, 23, TM_NODE_LEAF, 0, NULL, NULL);
	v[0] = 21;
	v[1] = 23;
	put_u64_node(dev, 24, TM_NODE_INTERNAL, 2, k, v);
	tm_cursor_init(&c, bm, 24, 8);
	ck_assert_int_eq(tm_cursor_seek(&c, 12, &err), -EUCLEAN);
	ck_assert_uint_eq(err.block, 23);

	/* the wrong value size, and a child past the end */
	tm_cursor_init(&c, bm, 21, 24);
	ck_assert_int_eq(tm_cursor_first(&c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_VALUE_SIZE);
	v[0] = 1000000;
	put_u64_node(dev, 25, TM_NODE_INTERNAL, 1, k, v);
	tm_cursor_init(&c, bm, 25, 8);
	ck_assert_int_eq(tm_cursor_first(&c, &err), -ERANGE);
	/* an internal node without entries */
	put_u64_node(dev, 26, TM_NODE_INTERNAL, 0, NULL, NULL);
	tm_cursor_init(&c, bm, 26, 8);
	ck_assert_int_eq(tm_cursor_first(&c, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_EMPTY_INTERNAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cursor");
	TCase *tc = tcase_create("cursor");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, seek_every_key);
	tcase_add_test(tc, walk_both_ways);
	tcase_add_test(tc, empty_tree);
	tcase_add_test(tc, damaged_leaf);
	tcase_add_test(tc, hostile_trees);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
