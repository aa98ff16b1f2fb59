/*
 * test_ls.c - thin_ls's counts (tm_ls_count) on hand-made trees: exclusive
 * devices, leaves shared between devices, a root shared by two devices, an
 * internal node shared below two roots, data blocks shared between distinct
 * leaves, blocks past the data device; and the trees it refuses.
 */
#include <errno.h>

#include "thinmeta/ls.h"
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

/* A leaf of @n mappings: keys kbase.., data dbase.. (step 1). */
static uint64_t leaf(uint64_t kbase, uint32_t n, uint64_t dbase)
{
	uint64_t k[252], v[252], b = next_block++;

	for (uint32_t i = 0; i < n; i++) {
		k[i] = kbase + i;
		v[i] = tm_bt_pack(dbase + i, 0);
	}
	put_u64_node(dev, b, TM_NODE_LEAF, n, k, v);
	return b;
}

static uint64_t internal(uint32_t n, const uint64_t *keys, const uint64_t *kids)
{
	uint64_t b = next_block++;

	put_u64_node(dev, b, TM_NODE_INTERNAL, n, keys, kids);
	return b;
}

/* The first key of the node at @b (for its parent). */
static uint64_t first_key(uint64_t b)
{
	return tm_le64(mem_block(dev, b) + TM_NODE_HEADER_SIZE);
}

static uint64_t over(uint32_t n, const uint64_t *kids)
{
	uint64_t keys[252];

	for (uint32_t i = 0; i < n; i++)
		keys[i] = first_key(kids[i]);
	return internal(n, keys, kids);
}

static struct tm_device devs[8];
static struct tm_ls_counts out[8];

static void set_dev(int i, uint64_t id, uint64_t root)
{
	memset(&devs[i], 0, sizeof(devs[i]));
	devs[i].dev_id = id;
	devs[i].mapping_root = root;
}

static void expect(int i, uint64_t mapped, uint64_t shared, uint64_t highest)
{
	ck_assert_uint_eq(out[i].mapped, mapped);
	ck_assert_uint_eq(out[i].shared, shared);
	ck_assert_uint_eq(out[i].highest, highest);
}

START_TEST(exclusive_devices)
{
	/* 1.1.0's list_exclusive_mappings: 8192 blocks at 200, 4096 at 0 */
	uint64_t k1[41], k2[21];
	for (uint32_t i = 0; i < 41; i++)
		k1[i] = leaf(200 + 200 * i, i < 40 ? 200 : 192, 10000 + 200 * i);
	for (uint32_t i = 0; i < 21; i++)
		k2[i] = leaf(200 * i, i < 20 ? 200 : 96, 50000 + 200 * i);
	set_dev(0, 1, over(41, k1));
	set_dev(1, 2, over(21, k2));
	ck_assert_int_eq(tm_ls_count(bm, devs, 2, 100000, out, &err), 0);
	expect(0, 8192, 0, 8391);
	expect(1, 4096, 0, 4095);
}
END_TEST

START_TEST(shared_leaves_and_data)
{
	uint64_t s1 = leaf(0, 100, 1000), s2 = leaf(100, 100, 1100);
	uint64_t a = leaf(1000, 126, 5000);
	/* b: 250 own mappings, the first 10 to the data blocks of a's first 10 */
	uint64_t b = leaf(2000, 250, 6000);
	uint8_t *p = mem_block(dev, b);
	uint32_t max = tm_node_max_entries(8);
	for (uint32_t i = 0; i < 10; i++)
		tm_put_le64(p + TM_NODE_HEADER_SIZE + 8 * max + 8 * i, tm_bt_pack(5000 + i, 1));
	reseal(dev, b, TM_SALT_BTREE_NODE);

	uint64_t c1[3] = { s1, s2, a }, c2[3] = { s1, s2, b };
	set_dev(0, 1, over(3, c1));
	set_dev(1, 2, over(3, c2));
	ck_assert_int_eq(tm_ls_count(bm, devs, 2, 100000, out, &err), 0);
	expect(0, 326, 210, 1125);
	expect(1, 450, 210, 2249);

	/* data blocks past the data device are never counted as shared */
	ck_assert_int_eq(tm_ls_count(bm, devs, 2, 5005, out, &err), 0);
	expect(0, 326, 205, 1125);
	expect(1, 450, 205, 2249);
}
END_TEST

START_TEST(shared_root)
{
	/* a snapshot of a device not written since: one root, two devices */
	uint64_t kids[8];
	for (uint32_t i = 0; i < 8; i++)
		kids[i] = leaf(200 * i, 200, 200 * i);
	uint64_t root = over(8, kids);
	set_dev(0, 1, root);
	set_dev(1, 2, root);
	set_dev(2, 3, leaf(0, 5, 90000));	/* a lone root leaf */
	set_dev(3, 4, leaf(0, 0, 0));		/* an empty device */
	ck_assert_int_eq(tm_ls_count(bm, devs, 4, 100000, out, &err), 0);
	expect(0, 1600, 1600, 1599);
	expect(1, 1600, 1600, 1599);
	expect(2, 5, 0, 4);
	expect(3, 0, 0, 0);
}
END_TEST

START_TEST(shared_internal_below_roots)
{
	/*
	 * The middle node M (84 leaves) is shared by two roots; its leaves are
	 * each referenced once, and their data once, so only the rule "a shared
	 * node makes its subtree shared" makes them shared.  Device 2 also has
	 * a middle node of its own.
	 */
	uint64_t kids[84], own[84];
	for (uint32_t i = 0; i < 84; i++)
		kids[i] = leaf(100 * i, 84, 100 * i);
	uint64_t m = over(84, kids);
	for (uint32_t i = 0; i < 84; i++)
		own[i] = leaf(10000 + 100 * i, 90, 20000 + 100 * i);
	uint64_t m2 = over(84, own);
	uint64_t r1k[1] = { m }, r2k[2] = { m, m2 };
	set_dev(0, 1, over(1, r1k));
	set_dev(1, 2, over(2, r2k));
	ck_assert_int_eq(tm_ls_count(bm, devs, 2, 100000, out, &err), 0);
	expect(0, 84 * 84, 84 * 84, 8300 + 83);
	expect(1, 84 * 84 + 84 * 90, 84 * 84, 10000 + 8300 + 89);
}
END_TEST

START_TEST(refused)
{
	uint64_t kids[3] = { leaf(0, 100, 0), leaf(100, 83, 100), leaf(200, 100, 200) };
	uint64_t root = over(3, kids);

	/* 83 entries in a non-root leaf: under 1.1.0's 84 */
	set_dev(0, 7, root);
	ck_assert_int_eq(tm_ls_count(bm, devs, 1, 1000, out, &err), -EUCLEAN);
	ck_assert_uint_eq(err.block, kids[1]);
	ck_assert_ptr_nonnull(strstr(err.msg, "device 7"));

	/* a bad checksum */
	kids[1] = leaf(100, 100, 100);
	root = over(3, kids);
	mem_block(dev, kids[2])[4000] ^= 1;	/* unused bytes: only the checksum breaks */
	tm_bm_invalidate(bm);
	set_dev(0, 7, root);
	ck_assert_int_eq(tm_ls_count(bm, devs, 1, 1000, out, &err), -EILSEQ);
	ck_assert_uint_eq(err.block, kids[2]);
	reseal(dev, kids[2], TM_SALT_BTREE_NODE);
	tm_bm_invalidate(bm);
	ck_assert_msg(tm_ls_count(bm, devs, 1, 1000, out, &err) == 0, "%s", err.msg);
	expect(0, 300, 0, 299);

	/* keys outside their parent's range */
	uint64_t bad[2] = { leaf(0, 100, 0), leaf(50, 100, 500) };
	set_dev(0, 7, over(2, bad));
	uint8_t *p = mem_block(dev, devs[0].mapping_root);
	tm_put_le64(p + TM_NODE_HEADER_SIZE + 8, 150);	/* second child "from 150" */
	reseal(dev, devs[0].mapping_root, TM_SALT_BTREE_NODE);
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_ls_count(bm, devs, 1, 1000, out, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_KEY_RANGE);

	/* a pointer past the device */
	uint64_t far[2] = { leaf(0, 100, 0), NBLOCKS + 10 };
	uint64_t fk[2] = { 0, 100 };
	set_dev(0, 7, internal(2, fk, far));
	ck_assert_int_eq(tm_ls_count(bm, devs, 1, 1000, out, &err), -ERANGE);

	/* leaves at two heights */
	uint64_t mk[84];
	for (uint32_t i = 0; i < 84; i++)
		mk[i] = leaf(100 * i, 84, 0);
	uint64_t mid = over(84, mk);
	uint64_t mixed[2] = { mid, leaf(9000, 100, 0) };
	set_dev(0, 7, over(2, mixed));
	ck_assert_int_eq(tm_ls_count(bm, devs, 1, 1000, out, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_DEPTH);
}
END_TEST

START_TEST(kernel_fixture)
{
	/* 02: the counts 1.1.0's thin_ls prints (fixtures/kernel/02-thins-snaps.txt) */
	const char *path = fixture("02-thins-snaps.meta.img");
	static const uint64_t want[5][4] = {
		{ 0, 320, 316, 630 }, { 1, 16, 0, 15 }, { 2, 24, 0, 135 },
		{ 10, 320, 316, 630 }, { 11, 336, 320, 655 },
	};
	struct tm_dev *fd;
	struct tm_bm *fbm;
	struct tm_view v;
	struct tm_device *kd;
	struct tm_ls_counts kc[5];
	uint64_t nr;

	if (!path)
		return;
	ck_assert_int_eq(tm_dev_open_file(path, 0, &fd), 0);
	ck_assert_int_eq(tm_bm_create(fd, 0, &fbm), 0);
	ck_assert_int_eq(tm_view_live(fbm, &v, &err), 0);
	ck_assert_int_eq(tm_read_devices(fbm, &v, 0, &kd, &nr, &err), 0);
	ck_assert_uint_eq(nr, 5);
	ck_assert_int_eq(tm_ls_count(fbm, kd, nr, v.sb.data_sm.nr_blocks, kc, &err), 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_uint_eq(kd[i].dev_id, want[i][0]);
		ck_assert_uint_eq(kc[i].mapped, want[i][1]);
		ck_assert_uint_eq(kc[i].shared, want[i][2]);
		ck_assert_uint_eq(kc[i].highest, want[i][3]);
	}
	free(kd);
	tm_bm_destroy(fbm);
	tm_dev_close(fd);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ls");
	TCase *tc = tcase_create("ls");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, exclusive_devices);
	tcase_add_test(tc, shared_leaves_and_data);
	tcase_add_test(tc, shared_root);
	tcase_add_test(tc, shared_internal_below_roots);
	tcase_add_test(tc, refused);
	tcase_add_test(tc, kernel_fixture);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
