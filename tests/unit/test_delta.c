/*
 * test_delta.c - tm_delta against a brute-force diff of the two trees'
 * mappings, on hand-made trees: a snapshot that shares leaves (and internal
 * nodes) with its origin, rewritten and split leaves, a tree that grew a
 * level, empty trees, identical roots; and what it costs (shared subtrees
 * unread with TM_DELTA_SKIP_SAME, read once without) and what it refuses.
 */
#include <errno.h>

#include "thinmeta/delta.h"
#include "unit_util.h"

#define NBLOCKS 4096

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

/* ---------------------------------------------------------------- trees */

struct map {
	uint64_t *k, *d;
	uint32_t n;
};

static uint64_t put_leaf(const uint64_t *k, const uint64_t *d, uint32_t n)
{
	uint64_t v[256], b = next_block++;

	ck_assert_uint_le(n, 252);
	ck_assert_uint_lt(b, NBLOCKS);
	for (uint32_t i = 0; i < n; i++)
		v[i] = tm_bt_pack(d[i], (uint32_t)i);
	put_u64_node(dev, b, TM_NODE_LEAF, n, k, v);
	return b;
}

static uint64_t put_internal(const uint64_t *keys, const uint64_t *kids, uint32_t n)
{
	uint64_t b = next_block++;

	ck_assert_uint_lt(b, NBLOCKS);
	put_u64_node(dev, b, TM_NODE_INTERNAL, n, keys, kids);
	return b;
}

/* A leaf description: its block and first key (the parent's key for it). */
struct lref {
	uint64_t block, first;
};

/* A two-level tree over @leaves (one leaf: the leaf is the root). */
static uint64_t two_level(const struct lref *leaves, uint32_t n)
{
	uint64_t keys[256], kids[256];

	if (n == 1)
		return leaves[0].block;
	for (uint32_t i = 0; i < n; i++) {
		keys[i] = leaves[i].first;
		kids[i] = leaves[i].block;
	}
	return put_internal(keys, kids, n);
}

/* Every mapping of the tree at @root, by an independent walk. */
struct flat {
	uint64_t k[80000], d[80000];
	uint32_t n;
};

static int flat_leaf(void *ctx, const struct tm_node *leaf)
{
	struct flat *f = ctx;

	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		f->k[f->n] = tm_node_key(leaf, i);
		f->d[f->n] = tm_bt_block(tm_node_value64(leaf, i));
		f->n++;
	}
	return 0;
}

static void flatten(uint64_t root, struct flat *f)
{
	f->n = 0;
	ck_assert_int_eq(tm_btree_walk(bm, root, 8, flat_leaf, f, &err), 0);
}

/* ---------------------------------------------------------------- ranges */

struct rlist {
	struct tm_delta_range r[40000];
	uint32_t n;
};

static int collect(void *ctx, const struct tm_delta_range *r)
{
	struct rlist *l = ctx;

	ck_assert_uint_lt(l->n, 40000);
	l->r[l->n++] = *r;
	return 0;
}

static void add(struct rlist *l, enum tm_delta_kind kind, uint64_t k, uint64_t ld,
		uint64_t rd, int skip_same)
{
	struct tm_delta_range *c = l->n ? &l->r[l->n - 1] : NULL;

	if (skip_same && kind == TM_DELTA_SAME)
		return;
	if (c && c->kind == kind && c->begin + c->length == k) {
		c->length++;
		return;
	}
	c = &l->r[l->n++];
	c->kind = kind;
	c->begin = k;
	c->length = 1;
	c->left_data = kind == TM_DELTA_RIGHT_ONLY ? 0 : ld;
	c->right_data = kind == TM_DELTA_LEFT_ONLY ? 0 : rd;
}

/* The expected ranges: classify every key, merge consecutive keys of a kind. */
static void brute(const struct flat *a, const struct flat *b, int skip_same, struct rlist *out)
{
	uint32_t i = 0, j = 0;

	out->n = 0;
	while (i < a->n || j < b->n) {
		if (j >= b->n || (i < a->n && a->k[i] < b->k[j])) {
			add(out, TM_DELTA_LEFT_ONLY, a->k[i], a->d[i], 0, skip_same);
			i++;
		} else if (i >= a->n || b->k[j] < a->k[i]) {
			add(out, TM_DELTA_RIGHT_ONLY, b->k[j], 0, b->d[j], skip_same);
			j++;
		} else {
			add(out, a->d[i] == b->d[j] ? TM_DELTA_SAME : TM_DELTA_DIFFERENT,
			    a->k[i], a->d[i], b->d[j], skip_same);
			i++;
			j++;
		}
	}
}

static struct flat fa, fb;
static struct rlist got, want;

static void same_ranges(const struct rlist *x, const struct rlist *y)
{
	ck_assert_uint_eq(x->n, y->n);
	for (uint32_t i = 0; i < x->n; i++) {
		ck_assert_int_eq(x->r[i].kind, y->r[i].kind);
		ck_assert_uint_eq(x->r[i].begin, y->r[i].begin);
		ck_assert_uint_eq(x->r[i].length, y->r[i].length);
		ck_assert_uint_eq(x->r[i].left_data, y->r[i].left_data);
		ck_assert_uint_eq(x->r[i].right_data, y->r[i].right_data);
	}
}

/* Diff @l and @r both ways, with and without SKIP_SAME; the stats of each. */
static void check_delta(uint64_t l, uint64_t r, struct tm_delta_stats *full,
			struct tm_delta_stats *skip)
{
	flatten(l, &fa);
	flatten(r, &fb);
	for (int s = 0; s < 2; s++) {
		got.n = 0;
		ck_assert_int_eq(tm_delta(bm, l, r, s ? TM_DELTA_SKIP_SAME : 0, collect, &got,
					  s ? skip : full, &err), 0);
		brute(&fa, &fb, s, &want);
		same_ranges(&got, &want);
	}
}

/* ---------------------------------------------------------------- shapes */

static uint32_t rnd_state;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

/*
 * An origin of @nl leaves (84..200 mappings each, keys with gaps, data
 * runs) and a snapshot of it: each leaf kept (shared) with probability
 * @keep/100, else rewritten (some data changed, some keys dropped, some
 * added) or split in two.  Returns the roots; *@unshared counts the nodes
 * not common to both trees.
 */
static void cow_pair(uint32_t nl, uint32_t keep, int splits, uint64_t *lroot, uint64_t *rroot,
		     uint32_t *unshared)
{
	static uint64_t k[260], d[260], k2[520], d2[520];
	struct lref ol[256], sl[256];
	uint32_t ns = 0, key = rnd(50), data = 1000 + rnd(50);

	*unshared = 0;
	for (uint32_t i = 0; i < nl; i++) {
		uint32_t n = 84 + rnd(117);
		for (uint32_t j = 0; j < n; j++) {
			k[j] = key;
			d[j] = data++;
			key += 1 + (rnd(4) == 0 ? rnd(20) : 0);
			if (rnd(8) == 0)
				data += rnd(30);
		}
		key += rnd(3);
		ol[i].block = put_leaf(k, d, n);
		ol[i].first = k[0];
		if (rnd(100) < keep || ns >= 250) {
			sl[ns++] = ol[i];
			continue;
		}
		/* rewrite: change data, drop and add keys, within the leaf's range */
		uint32_t m = 0, dropped = 0;
		for (uint32_t j = 0; j < n; j++) {
			if (rnd(10) == 0 && n - dropped > 90) {
				dropped++;
				continue;
			}
			k2[m] = k[j];
			d2[m] = rnd(4) == 0 ? 500000 + rnd(100000) : d[j];
			m++;
			if (j + 1 < n && k[j + 1] > k[j] + 1 && rnd(6) == 0 && m < 250) {
				k2[m] = k[j] + 1;
				d2[m] = 700000 + rnd(1000);
				m++;
			}
		}
		if (splits && m >= 168 && rnd(2) == 0) {
			uint32_t h = m / 2;
			sl[ns].block = put_leaf(k2, d2, h);
			sl[ns++].first = k2[0];
			sl[ns].block = put_leaf(k2 + h, d2 + h, m - h);
			sl[ns++].first = k2[h];
			*unshared += 3;
		} else {
			sl[ns].block = put_leaf(k2, d2, m > 252 ? 252 : m);
			sl[ns++].first = k2[0];
			*unshared += 2;
		}
	}
	*lroot = two_level(ol, nl);
	*rroot = two_level(sl, ns);
	if (*lroot != *rroot)
		*unshared += 2;
}

START_TEST(random_snapshots)
{
	for (int iter = 0; iter < 60; iter++) {
		struct tm_delta_stats full, skip;
		uint64_t l, r;
		uint32_t unshared, nl = 1 + (uint32_t)iter % 12 * 4;
		int splits = iter % 3 == 2;

		rnd_state = 77u + (uint32_t)iter;
		next_block = 1;
		tm_bm_invalidate(bm);
		cow_pair(nl, (uint32_t)(iter * 37) % 101, splits, &l, &r, &unshared);
		check_delta(l, r, &full, &skip);
		check_delta(r, l, &full, &skip);
		if (!splits) {
			/* only the nodes that differ are read */
			ck_assert_uint_le(skip.nodes_read, unshared);
			/* every distinct node at most once: shared ones not twice */
			ck_assert_uint_le(full.nodes_read, next_block - 1);
		}
	}
}
END_TEST

/* A leaf of @n mappings k = base + i, data = dbase + i. */
static struct lref seq_leaf(uint64_t base, uint32_t n, uint64_t dbase)
{
	uint64_t k[256], d[256];

	for (uint32_t i = 0; i < n; i++) {
		k[i] = base + i;
		d[i] = dbase + i;
	}
	struct lref lr = { put_leaf(k, d, n), base };
	return lr;
}

START_TEST(snapshot_shares_all_but_one_leaf)
{
	struct lref ol[200], sl[200];
	struct tm_delta_stats full, skip;

	for (uint32_t i = 0; i < 200; i++)
		sl[i] = ol[i] = seq_leaf(1000 * i, 100, 100000 + 100 * i);
	sl[123] = seq_leaf(123000, 100, 900000);	/* copied on write */
	uint64_t l = two_level(ol, 200), r = two_level(sl, 200);

	check_delta(l, r, &full, &skip);
	/* two roots and the two versions of leaf 123 */
	ck_assert_uint_eq(skip.nodes_read, 4);
	ck_assert_uint_eq(skip.subtrees_shared, 199);
	/* SAME listed from one copy of each shared leaf */
	ck_assert_uint_eq(full.nodes_read, 4 + 199);
	got.n = 0;
	ck_assert_int_eq(tm_delta(bm, l, r, TM_DELTA_SKIP_SAME, collect, &got, NULL, &err), 0);
	ck_assert_uint_eq(got.n, 1);
	ck_assert_int_eq(got.r[0].kind, TM_DELTA_DIFFERENT);
	ck_assert_uint_eq(got.r[0].begin, 123000);
	ck_assert_uint_eq(got.r[0].length, 100);
	ck_assert_uint_eq(got.r[0].left_data, 100000 + 12300);
	ck_assert_uint_eq(got.r[0].right_data, 900000);
}
END_TEST

START_TEST(tree_grew_a_level)
{
	struct lref lv[100];
	uint64_t keys[1], kids[1], mk[100], mb[100];
	struct tm_delta_stats full, skip;

	for (uint32_t i = 0; i < 100; i++) {
		lv[i] = seq_leaf(500 * i, 90, 10 * i);
		mk[i] = lv[i].first;
		mb[i] = lv[i].block;
	}
	uint64_t l = two_level(lv, 100);
	/* the same leaves under a middle node under a new root */
	uint64_t mid = put_internal(mk, mb, 100);
	keys[0] = 0;
	kids[0] = mid;
	uint64_t r = put_internal(keys, kids, 1);
	check_delta(l, r, &full, &skip);
	check_delta(r, l, &full, &skip);
	ck_assert_uint_le(skip.nodes_read, 3);
	/* and a tree sharing its middle node */
	kids[0] = mid;
	keys[0] = 0;
	uint64_t r2 = put_internal(keys, kids, 1);
	check_delta(r, r2, &full, &skip);
	ck_assert_uint_eq(skip.nodes_read, 2);
	ck_assert_uint_eq(skip.subtrees_shared, 1);
}
END_TEST

/*
 * Three levels and more leaves than one read batch (256): an origin of 700
 * leaves under 4 middle nodes, and a snapshot with a third of its leaves
 * rewritten, regrouped under 5 middle nodes whose keys for some shared
 * leaves are below the leaves' first keys (so the two parents give a shared
 * leaf different ranges).  One middle node is shared whole.
 */
START_TEST(many_leaves_three_levels)
{
	static struct lref ol[700], sl[700];
	uint64_t keys[256], kids[256], mids[8], mkeys[8];
	struct tm_delta_stats full, skip;

	rnd_state = 4242;
	for (uint32_t i = 0; i < 700; i++) {
		sl[i] = ol[i] = seq_leaf(200 * i + 50, 90 + rnd(20), 7000 + 150 * i);
		if (i >= 175 && rnd(3) == 0)	/* the first middle node stays shared */
			sl[i] = seq_leaf(200 * i + 40 + rnd(20), 90 + rnd(20), 300000 + 150 * i);
	}
	/* origin: 4 middle nodes of 175 leaves */
	for (uint32_t m = 0; m < 4; m++) {
		for (uint32_t i = 0; i < 175; i++) {
			keys[i] = ol[175 * m + i].first;
			kids[i] = ol[175 * m + i].block;
		}
		mids[m] = put_internal(keys, kids, 175);
		mkeys[m] = keys[0];
	}
	uint64_t l = put_internal(mkeys, mids, 4);
	/* snapshot: the origin's first middle node, then 5 of 105 leaves */
	uint32_t nm = 1;
	for (uint32_t m = 0; m < 5; m++) {
		for (uint32_t i = 0; i < 105; i++) {
			const struct lref *x = &sl[175 + 105 * m + i];
			keys[i] = x->first - (x->block == ol[175 + 105 * m + i].block && i % 4 == 1);
			kids[i] = x->block;
		}
		mkeys[nm] = keys[0];
		mids[nm++] = put_internal(keys, kids, 105);
	}
	uint64_t r = put_internal(mkeys, mids, nm);
	check_delta(l, r, &full, &skip);
	ck_assert_uint_ge(skip.subtrees_shared, 1);
	check_delta(r, l, &full, &skip);
}
END_TEST

START_TEST(same_root_and_empty_trees)
{
	struct tm_delta_stats full, skip;
	struct lref a = seq_leaf(10, 120, 50);
	struct lref e1 = { put_leaf(NULL, NULL, 0), 0 }, e2 = { put_leaf(NULL, NULL, 0), 0 };

	check_delta(a.block, a.block, &full, &skip);
	ck_assert_uint_eq(skip.nodes_read, 0);
	ck_assert_uint_eq(full.nodes_read, 1);
	got.n = 0;
	ck_assert_int_eq(tm_delta(bm, a.block, a.block, 0, collect, &got, NULL, &err), 0);
	ck_assert_uint_eq(got.n, 1);
	ck_assert_int_eq(got.r[0].kind, TM_DELTA_SAME);
	ck_assert_uint_eq(got.r[0].begin, 10);
	ck_assert_uint_eq(got.r[0].length, 120);

	check_delta(e1.block, e2.block, &full, &skip);
	got.n = 0;
	ck_assert_int_eq(tm_delta(bm, e1.block, e2.block, 0, collect, &got, NULL, &err), 0);
	ck_assert_uint_eq(got.n, 0);
	check_delta(e1.block, a.block, &full, &skip);
	check_delta(a.block, e2.block, &full, &skip);
}
END_TEST

START_TEST(kinds_merge_as_1_1_0)
{
	/* same-kind neighbours merge even when their data is not consecutive */
	uint64_t k[100], dl[100], dr[100];

	for (uint32_t i = 0; i < 100; i++) {
		k[i] = i;
		dl[i] = 1000 + 7 * i;		/* not consecutive */
		dr[i] = i < 50 ? dl[i] : 5000 + 3 * i;
	}
	uint64_t l = put_leaf(k, dl, 100), r = put_leaf(k, dr, 100);
	got.n = 0;
	ck_assert_int_eq(tm_delta(bm, l, r, 0, collect, &got, NULL, &err), 0);
	ck_assert_uint_eq(got.n, 2);
	ck_assert_int_eq(got.r[0].kind, TM_DELTA_SAME);
	ck_assert_uint_eq(got.r[0].length, 50);
	ck_assert_int_eq(got.r[1].kind, TM_DELTA_DIFFERENT);
	ck_assert_uint_eq(got.r[1].begin, 50);
	ck_assert_uint_eq(got.r[1].length, 50);
	ck_assert_uint_eq(got.r[1].left_data, 1350);
	ck_assert_uint_eq(got.r[1].right_data, 5150);
}
END_TEST

static int stop_at_two(void *ctx, const struct tm_delta_range *r)
{
	int *n = ctx;

	(void)r;
	return ++*n == 2 ? 42 : 0;
}

START_TEST(callback_stops)
{
	uint64_t k[3] = { 1, 3, 5 }, d[3] = { 1, 2, 3 };
	uint64_t l = put_leaf(k, d, 3), r = put_leaf(NULL, NULL, 0);
	int n = 0;

	/* three separate left_only ranges; the second callback stops it */
	ck_assert_int_eq(tm_delta(bm, l, r, 0, stop_at_two, &n, NULL, &err), 42);
	ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(damage_is_refused)
{
	struct lref ol[3], sl[3];

	for (uint32_t i = 0; i < 3; i++)
		sl[i] = ol[i] = seq_leaf(1000 * i, 100, 100 * i);
	sl[1] = seq_leaf(1000, 100, 50000);
	uint64_t l = two_level(ol, 3), r = two_level(sl, 3);

	/* a bad checksum in a leaf that differs */
	mem_block(dev, sl[1].block)[100] ^= 1;
	tm_bm_invalidate(bm);
	got.n = 0;
	ck_assert_int_eq(tm_delta(bm, l, r, 0, collect, &got, NULL, &err), -EILSEQ);
	ck_assert_ptr_nonnull(strstr(err.msg, "right tree"));
	ck_assert_uint_eq(err.block, sl[1].block);
	reseal(dev, sl[1].block, TM_SALT_BTREE_NODE);

	/* an underfull non-root leaf (1.1.0 refuses it too) */
	struct lref small = seq_leaf(1000, 20, 77);
	sl[1] = small;
	r = two_level(sl, 3);
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_delta(bm, l, r, 0, collect, &got, NULL, &err), -EUCLEAN);
	ck_assert_uint_eq(err.block, small.block);

	/* keys outside the range the parent gives */
	sl[1] = seq_leaf(5000, 100, 77);
	r = two_level(sl, 3);
	uint8_t *p = mem_block(dev, r);
	tm_put_le64(p + TM_NODE_HEADER_SIZE + 8, 1000);	/* parent says 1000.. */
	reseal(dev, r, TM_SALT_BTREE_NODE);
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_delta(bm, l, r, 0, collect, &got, NULL, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_KEY_RANGE);

	/* a leaf both trees share, outside the range the right parent gives */
	sl[1] = ol[1];
	r = two_level(sl, 3);
	p = mem_block(dev, r);
	tm_put_le64(p + TM_NODE_HEADER_SIZE + 16, 2050);	/* leaf 2 holds 2000.. */
	reseal(dev, r, TM_SALT_BTREE_NODE);
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_delta(bm, l, r, 0, collect, &got, NULL, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_KEY_RANGE);
	ck_assert_uint_eq(err.block, ol[2].block);
	ck_assert_ptr_nonnull(strstr(err.msg, "left and right trees"));
	/* unread when SAME is not wanted, so not refused */
	ck_assert_int_eq(tm_delta(bm, l, r, TM_DELTA_SKIP_SAME, collect, &got, NULL, &err), 0);

	/* a root past the device's end */
	ck_assert_int_eq(tm_delta(bm, l, NBLOCKS + 5, 0, collect, &got, NULL, &err), -ERANGE);
	/* a root that is not a btree node */
	ck_assert_int_eq(tm_delta(bm, l, NBLOCKS - 1, 0, collect, &got, NULL, &err), -EILSEQ);
}
END_TEST

START_TEST(kernel_fixture_snapshot)
{
	/* 05: devices 0 and 10 of the held snapshot share their root */
	const char *path = fixture("05-msnap-held-powercut.meta.img");
	struct tm_dev *fd;
	struct tm_bm *fbm;
	struct tm_delta_stats st;

	if (!path)
		return;
	ck_assert_int_eq(tm_dev_open_file(path, 0, &fd), 0);
	ck_assert_int_eq(tm_bm_create(fd, 0, &fbm), 0);
	got.n = 0;
	ck_assert_int_eq(tm_delta(fbm, 52, 52, TM_DELTA_SKIP_SAME, collect, &got, &st, &err), 0);
	ck_assert_uint_eq(got.n, 0);
	ck_assert_uint_eq(st.nodes_read, 0);
	tm_bm_destroy(fbm);
	tm_dev_close(fd);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("delta");
	TCase *tc = tcase_create("delta");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, random_snapshots);
	tcase_add_test(tc, snapshot_shares_all_but_one_leaf);
	tcase_add_test(tc, tree_grew_a_level);
	tcase_add_test(tc, many_leaves_three_levels);
	tcase_add_test(tc, same_root_and_empty_trees);
	tcase_add_test(tc, kinds_merge_as_1_1_0);
	tcase_add_test(tc, callback_stops);
	tcase_add_test(tc, damage_is_refused);
	tcase_add_test(tc, kernel_fixture_snapshot);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
