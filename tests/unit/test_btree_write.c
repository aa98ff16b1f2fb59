/*
 * test_btree_write.c - btree insert/remove/delete inside a transaction:
 * thousands of random operations against a sorted-array model, the
 * kernel's split and merge shapes at their boundaries, and reference
 * counts when trees share nodes (copy-on-write, value inc/dec).
 */
#include <errno.h>

#include "thinmeta/btree_write.h"
#include "thinmeta/sm_write.h"
#include "thinmeta/transaction.h"
#include "unit_util.h"

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_tm *tm;
static struct tm_msm *msm;
static struct tm_error err;
static struct tm_btree_info info;

#define NBLOCKS 20000

/* value-type callbacks counting references to "values" 0..VMAX-1 */
#define VMAX 4096
static int64_t vrefs[VMAX];

static int v_inc(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	(void)ctx;
	(void)e;
	for (uint32_t i = 0; i < n; i++)
		vrefs[tm_le64(v + 8 * i) % VMAX]++;
	return 0;
}

static int v_dec(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	(void)ctx;
	(void)e;
	for (uint32_t i = 0; i < n; i++)
		vrefs[tm_le64(v + 8 * i) % VMAX]--;
	return 0;
}

static int v_equal(void *ctx, const uint8_t *a, const uint8_t *b)
{
	(void)ctx;
	return !memcmp(a, b, 8);
}

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(NBLOCKS, &dev), 0);
	ck_assert_int_eq(tm_bm_create(dev, 256, &bm), 0);
	ck_assert_int_eq(tm_tm_create(bm, 0, &tm), 0);
	tm_error_clear(&err);
	ck_assert_msg(!tm_msm_create(tm, NBLOCKS, 0, &msm, &err), "%s", err.msg);
	info = (struct tm_btree_info){ tm, 1, { 8, NULL, v_inc, v_dec, v_equal } };
	memset(vrefs, 0, sizeof(vrefs));
}

static void teardown(void)
{
	tm_msm_destroy(msm);
	tm_tm_destroy(tm);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
}

static uint32_t count(uint64_t b)
{
	uint32_t c;

	ck_assert_msg(!tm_msm_get_count(msm, b, &c, &err), "%s", err.msg);
	return c;
}

/* Commit the transaction under a throwaway superblock. */
static void commit(void)
{
	uint8_t sb[TM_BLOCK_SIZE];
	struct tm_sm_root r;

	ck_assert_int_eq(tm_msm_commit(msm, &err), 0);
	memset(sb, 0, sizeof(sb));
	tm_msm_root(msm, &r);
	tm_sm_root_encode(&r, sb + TM_SB_OFF_META_SM);
	tm_put_le64(sb + TM_SB_OFF_MAGIC, TM_SB_MAGIC);
	ck_assert_int_eq(tm_tm_commit(tm, sb, NULL, NULL, &err), 0);
}

/* ------------------------------------------------------------------ */
/* Walking a tree through the transaction manager */

struct shape {
	uint64_t keys[8192];
	uint64_t vals[8192];
	uint64_t n;
	int leaf_depth;
	uint64_t nodes;
	uint32_t leaf_sizes[256];
	unsigned nr_leaves;
	int underfull;		/* non-root nodes below max/3 */
	uint64_t root;
};

static void walk(struct shape *s, uint64_t b, int depth, uint64_t lo, uint64_t hi, int hi_open)
{
	uint8_t n[TM_BLOCK_SIZE];

	ck_assert_int_lt(depth, 16);
	ck_assert_msg(!tm_tm_read(tm, b, &tm_node_validator, n, &err), "%s", err.msg);
	s->nodes++;
	uint32_t nr = tm_bn_nr(n);
	if (b != s->root && nr < tm_bn_max(n) / 3)
		s->underfull++;
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t k = tm_bn_key(n, i);
		ck_assert_msg(k >= lo && (hi_open || k < hi), "key %llu outside its range",
			      (unsigned long long)k);
		if (i)
			ck_assert_uint_gt(k, tm_bn_key(n, i - 1));
	}
	if (tm_bn_is_leaf(n)) {
		if (s->leaf_depth < 0)
			s->leaf_depth = depth;
		ck_assert_int_eq(depth, s->leaf_depth);
		if (s->nr_leaves < 256)
			s->leaf_sizes[s->nr_leaves] = nr;
		s->nr_leaves++;
		for (uint32_t i = 0; i < nr; i++) {
			ck_assert_uint_lt(s->n, 8192);
			s->keys[s->n] = tm_bn_key(n, i);
			s->vals[s->n] = tm_le64(tm_bn_value(n, i));
			s->n++;
		}
		return;
	}
	ck_assert_uint_gt(nr, 0);
	for (uint32_t i = 0; i < nr; i++) {
		int last = i + 1 == nr;
		walk(s, tm_le64(tm_bn_value(n, i)), depth + 1, tm_bn_key(n, i),
		     last ? hi : tm_bn_key(n, i + 1), last ? hi_open : 0);
	}
}

static struct shape *shape_of(uint64_t root)
{
	static struct shape s;

	memset(&s, 0, sizeof(s));
	s.leaf_depth = -1;
	s.root = root;
	walk(&s, root, 0, 0, 0, 1);
	return &s;
}

static uint64_t insert(uint64_t root, uint64_t key, uint64_t val, int *inserted)
{
	uint8_t v[8];
	uint64_t nr;

	tm_put_le64(v, val);
	ck_assert_msg(!tm_btree_insert(&info, root, &key, v, &nr, inserted, &err),
		      "insert %llu: %s", (unsigned long long)key, err.msg);
	return nr;
}

static uint64_t removek(uint64_t root, uint64_t key)
{
	uint64_t nr;

	ck_assert_msg(!tm_btree_remove(&info, root, &key, &nr, &err),
		      "remove %llu: %s", (unsigned long long)key, err.msg);
	return nr;
}

/* ------------------------------------------------------------------ */

/* Thousands of random inserts, overwrites and removes vs a model. */
START_TEST(test_random_vs_model)
{
	static int64_t model[3000];
	uint64_t root, seed = 42 + (uint64_t)_i;
	int inserted;

	for (int i = 0; i < 3000; i++)
		model[i] = -1;
	ck_assert_int_eq(tm_btree_empty(&info, &root, &err), 0);
	for (int op = 0; op < 12000; op++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t k = (seed >> 33) % 3000;
		/* phases: grow, churn, shrink */
		int ins = op < 4000 ? (seed >> 20) % 10 < 8 :
			  op < 8000 ? (seed >> 20) % 2 : (seed >> 20) % 10 < 2;
		if (ins) {
			uint64_t val = (seed >> 40) % VMAX;
			root = insert(root, k, val, &inserted);
			ck_assert_int_eq(inserted, model[k] < 0);
			if (model[k] >= 0)
				vrefs[model[k]]--;	/* the overwritten value was dec'd */
			model[k] = (int64_t)val;
		} else if (model[k] >= 0) {
			root = removek(root, k);
			vrefs[model[k]]--;
			model[k] = -1;
		} else {
			uint64_t nr;
			{ int rr = tm_btree_remove(&info, root, &k, &nr, &err); ck_assert_msg(rr == -ENODATA, "remove absent %llu: %d %s", (unsigned long long)k, rr, err.msg); }
		}
		if (op % 1000 == 999) {
			struct shape *s = shape_of(root);
			uint64_t j = 0;
			for (uint64_t key = 0; key < 3000; key++) {
				if (model[key] < 0)
					continue;
				ck_assert_uint_lt(j, s->n);
				ck_assert_uint_eq(s->keys[j], key);
				ck_assert_uint_eq(s->vals[j], (uint64_t)model[key]);
				j++;
			}
			ck_assert_uint_eq(j, s->n);
			ck_assert_int_eq(s->underfull, 0);
			commit();
		}
	}
	/* nothing shared: the tree's values were never inc'd, only dec'd */
	for (int i = 0; i < VMAX; i++)
		ck_assert_int_le(vrefs[i], 0);
	/* lookups */
	for (uint64_t key = 0; key < 3000; key++) {
		uint8_t v[8];
		int r = tm_btree_wlookup(&info, root, &key, v, &err);
		ck_assert_int_eq(r, model[key] < 0 ? -ENODATA : 0);
	}
}
END_TEST

/* The kernel's shapes at the split boundaries. */
START_TEST(test_split_shapes)
{
	uint64_t root, k;
	struct shape *s;

	ck_assert_int_eq(tm_btree_empty(&info, &root, &err), 0);
	for (k = 0; k < 252; k++)
		root = insert(root, k, k, NULL);
	s = shape_of(root);
	ck_assert_uint_eq(s->nodes, 1);
	root = insert(root, k++, 0, NULL);	/* 253: split beneath the root */
	s = shape_of(root);
	ck_assert_uint_eq(s->nr_leaves, 2);
	ck_assert_uint_eq(s->leaf_sizes[0], 126);
	ck_assert_uint_eq(s->leaf_sizes[1], 127);
	for (; k < 378; k++)
		root = insert(root, k, 0, NULL);
	s = shape_of(root);
	ck_assert_uint_eq(s->leaf_sizes[1], 252);
	root = insert(root, k++, 0, NULL);	/* full last leaf: moves into its left sibling */
	s = shape_of(root);
	ck_assert_uint_eq(s->nr_leaves, 2);
	ck_assert_uint_eq(s->leaf_sizes[0], 189);
	ck_assert_uint_eq(s->leaf_sizes[1], 190);
	/* ascending: about 96% residency */
	for (; k < 5000; k++)
		root = insert(root, k, 0, NULL);
	s = shape_of(root);
	ck_assert_uint_le(s->nr_leaves, 5000 / 240 + 1);
	ck_assert_int_eq(s->underfull, 0);
}
END_TEST

/* A full middle leaf with full neighbours: two into three. */
START_TEST(test_two_into_three)
{
	uint64_t root;
	struct shape *s;

	ck_assert_int_eq(tm_btree_empty(&info, &root, &err), 0);
	/* keys spaced by 10, then fill every leaf up */
	for (uint64_t k = 0; k < 1000; k++)
		root = insert(root, k * 10, 0, NULL);
	s = shape_of(root);
	unsigned before = s->nr_leaves;
	for (uint64_t k = 0; k < 1000; k++)
		for (uint64_t j = 1; j < 10; j += 4)
			root = insert(root, k * 10 + j, 0, NULL);
	s = shape_of(root);
	ck_assert_uint_gt(s->nr_leaves, before);
	ck_assert_int_eq(s->underfull, 0);
	ck_assert_uint_eq(s->n, 4000);
}
END_TEST

/* Removal: rebalance two leaves evenly, merge under 2*(max/3+1), collapse. */
START_TEST(test_merge_shapes)
{
	uint64_t root, k;
	struct shape *s;

	ck_assert_int_eq(tm_btree_empty(&info, &root, &err), 0);
	for (k = 0; k < 253; k++)
		root = insert(root, k, k, NULL);
	root = removek(root, 0);		/* rebalanced: 126 + 126 */
	s = shape_of(root);
	ck_assert_uint_eq(s->nr_leaves, 2);
	ck_assert_uint_eq(s->leaf_sizes[0], 125);
	ck_assert_uint_eq(s->leaf_sizes[1], 127);
	for (k = 1; k < 84; k++)
		root = removek(root, k);	/* 169 left */
	s = shape_of(root);
	ck_assert_uint_eq(s->nr_leaves, 2);
	root = removek(root, 84);		/* 169 < 170: merged, then one out */
	s = shape_of(root);
	ck_assert_uint_eq(s->nr_leaves, 1);
	ck_assert_uint_eq(s->nodes, 2);		/* the root still has one child */
	root = removek(root, 85);		/* the root takes its child's place */
	s = shape_of(root);
	ck_assert_uint_eq(s->nodes, 1);
	ck_assert_uint_eq(s->n, 253 - 86);
}
END_TEST

/* Shared trees: copy-on-write increments children, del decrements. */
START_TEST(test_sharing_counts)
{
	uint64_t a, b, k;
	struct shape *s;

	ck_assert_int_eq(tm_btree_empty(&info, &a, &err), 0);
	for (k = 0; k < 2000; k++)
		a = insert(a, k, k % VMAX, NULL);
	commit();
	s = shape_of(a);
	uint64_t nodes_a = s->nodes;

	/* a snapshot: one more reference to the root */
	ck_assert_int_eq(tm_tm_inc(tm, a, &err), 0);
	b = insert(a, 5, 777, NULL);		/* copies the path to key 5 */
	ck_assert_uint_ne(b, a);
	ck_assert_uint_eq(count(a), 1);
	ck_assert_uint_eq(count(b), 1);
	/* the copied leaf's values each gained a reference */
	ck_assert_int_eq(vrefs[6], 1);
	ck_assert_int_eq(vrefs[5], 0);		/* inc'd by the copy, dec'd by the overwrite */
	ck_assert_int_eq(vrefs[777], 0);	/* an inserted value is not inc'd */
	/* a's children under the copied root are now shared by both roots */
	uint8_t n[TM_BLOCK_SIZE];
	ck_assert_int_eq(tm_tm_read(tm, a, &tm_node_validator, n, &err), 0);
	for (uint32_t i = 0; i < tm_bn_nr(n); i++) {
		uint64_t child = tm_le64(tm_bn_value(n, i));
		ck_assert_uint_eq(count(child), i == 0 ? 1 : 2);
	}
	/* a is unchanged */
	uint8_t v[8];
	k = 5;
	ck_assert_int_eq(tm_btree_wlookup(&info, a, &k, v, &err), 0);
	ck_assert_uint_eq(tm_le64(v), 5);
	ck_assert_int_eq(tm_btree_wlookup(&info, b, &k, v, &err), 0);
	ck_assert_uint_eq(tm_le64(v), 777);

	/* dropping b frees only what b alone had */
	ck_assert_int_eq(tm_btree_del(&info, b, &err), 0);
	ck_assert_uint_eq(count(b), 0);
	ck_assert_int_eq(tm_tm_read(tm, a, &tm_node_validator, n, &err), 0);
	for (uint32_t i = 0; i < tm_bn_nr(n); i++)
		ck_assert_uint_eq(count(tm_le64(tm_bn_value(n, i))), 1);
	s = shape_of(a);
	ck_assert_uint_eq(s->nodes, nodes_a);
	for (int i = 0; i < VMAX; i++)
		ck_assert_int_eq(vrefs[i], i == 777 ? -1 : 0);
	/* and dropping a frees everything, each value once */
	ck_assert_int_eq(tm_btree_del(&info, a, &err), 0);
	ck_assert_uint_eq(count(a), 0);
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(vrefs[i], i == 777 ? -2 : -1);
}
END_TEST

/* Two levels: a top level of roots, each a tree of its own. */
START_TEST(test_two_levels)
{
	struct tm_btree_info two = { tm, 2, { 8, NULL, v_inc, v_dec, v_equal } };
	uint64_t root, keys[2], nr;
	uint8_t v[8];
	int ins;

	ck_assert_int_eq(tm_btree_empty(&two, &root, &err), 0);
	for (uint64_t d = 0; d < 5; d++)
		for (uint64_t k = 0; k < 600; k += 1 + d) {
			keys[0] = d;
			keys[1] = k;
			tm_put_le64(v, d * 1000 + k);
			ck_assert_int_eq(tm_btree_insert(&two, root, keys, v, &root, &ins, &err), 0);
			ck_assert_int_eq(ins, 1);
		}
	for (uint64_t d = 0; d < 5; d++)
		for (uint64_t k = 0; k < 600; k++) {
			keys[0] = d;
			keys[1] = k;
			int r = tm_btree_wlookup(&two, root, keys, v, &err);
			if (k % (1 + d)) {
				ck_assert_int_eq(r, -ENODATA);
				/* the next mapped key */
				uint64_t rk;
				r = tm_btree_lookup_next(&two, root, keys, &rk, v, &err);
				uint64_t want = (k / (1 + d) + 1) * (1 + d);
				if (want < 600) {
					ck_assert_int_eq(r, 0);
					ck_assert_uint_eq(rk, want);
				}
			} else {
				ck_assert_int_eq(r, 0);
				ck_assert_uint_eq(tm_le64(v), d * 1000 + k);
			}
		}
	keys[0] = 2;
	keys[1] = 3;
	ck_assert_int_eq(tm_btree_remove(&two, root, keys, &nr, &err), 0);
	root = nr;
	ck_assert_int_eq(tm_btree_wlookup(&two, root, keys, v, &err), -ENODATA);
	keys[0] = 9;
	ck_assert_int_eq(tm_btree_wlookup(&two, root, keys, v, &err), -ENODATA);
	ck_assert_int_eq(tm_btree_del(&two, root, &err), 0);
	ck_assert_uint_eq(count(root), 0);
}
END_TEST

/* remove_leaves stops at the first gap; repeated calls empty a range. */
START_TEST(test_remove_leaves)
{
	uint64_t root, key, nr, n;

	ck_assert_int_eq(tm_btree_empty(&info, &root, &err), 0);
	for (uint64_t k = 0; k < 1500; k++)
		if (k % 100 != 50)
			root = insert(root, k, k % VMAX, NULL);
	key = 10;
	ck_assert_int_eq(tm_btree_remove_leaves(&info, root, &key, 1000, &nr, &n, &err), 0);
	root = nr;
	ck_assert_uint_eq(n, 40);		/* 10..49, stops at the hole at 50 */
	ck_assert_uint_eq(key, 50);
	struct shape *s = shape_of(root);
	ck_assert_uint_eq(s->n, 1500 - 15 - 40);
	ck_assert_int_eq(s->underfull, 0);
}
END_TEST

/* get_overwrite_leaf: the path is shadowed, the value changed in place. */
START_TEST(test_overwrite_leaf)
{
	struct tm_btree_info rc = { tm, 1, { 4, NULL, NULL, NULL, NULL } };
	uint8_t v[4], leaf[TM_BLOCK_SIZE];
	uint64_t root, lb, k;
	uint32_t idx;

	ck_assert_int_eq(tm_btree_empty(&rc, &root, &err), 0);
	for (k = 0; k < 1000; k++) {
		tm_put_le32(v, (uint32_t)k);
		ck_assert_int_eq(tm_btree_insert(&rc, root, &k, v, &root, NULL, &err), 0);
	}
	commit();
	k = 777;
	ck_assert_int_eq(tm_btree_get_overwrite_leaf(&rc, root, k, &idx, &root, &lb, leaf, &err), 0);
	tm_put_le32(tm_bn_value(leaf, idx), 4242);
	ck_assert_int_eq(tm_btree_put_leaf(&rc, lb, leaf, &err), 0);
	ck_assert_int_eq(tm_btree_wlookup(&rc, root, &k, v, &err), 0);
	ck_assert_uint_eq(tm_le32(v), 4242);
	k = 5000;
	ck_assert_int_eq(tm_btree_get_overwrite_leaf(&rc, root, k, &idx, &root, &lb, leaf, &err),
			 -ENODATA);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("btree_write");
	TCase *tc = tcase_create("btree_write");

	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_random_vs_model, 0, 3);
	tcase_add_test(tc, test_split_shapes);
	tcase_add_test(tc, test_two_into_three);
	tcase_add_test(tc, test_merge_shapes);
	tcase_add_test(tc, test_sharing_counts);
	tcase_add_test(tc, test_two_levels);
	tcase_add_test(tc, test_remove_leaves);
	tcase_add_test(tc, test_overwrite_leaf);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
