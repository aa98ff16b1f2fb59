/*
 * test_refs.c - reference searches on the kernel fixtures: on a clean pool
 * the references found to every block are exactly its space map count
 * (metadata: pointers; data: entries of distinct leaves), and damage is
 * counted, not fatal.
 */
#include <errno.h>

#include "unit_util.h"
#include "thinmeta/metadata.h"
#include "thinmeta/refs.h"
#include "thinmeta/space_map.h"

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_error err;

static int load(const char *name)
{
	const char *path = fixture(name);
	FILE *f;

	if (!path) {
		fprintf(stderr, "%s: THINMETA_FIXTURES not set, skipped\n", name);
		return 0;
	}
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	ck_assert_int_eq(tm_dev_mem_create((uint64_t)size / TM_BLOCK_SIZE, &dev), 0);
	ck_assert_uint_eq(fread(tm_dev_mem_data(dev), 1, (size_t)size, f), (size_t)size);
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

struct tally {
	uint64_t n;
	uint64_t holders[64];
	uint32_t slots[64];
	int bad_path;
	struct tm_ref last;
};

static int count_ref(void *ctx, const struct tm_ref *r)
{
	struct tally *t = ctx;

	/* data: count each (leaf, entry) once, however many devices reach it */
	for (uint64_t i = 0; i < t->n && i < 64; i++)
		if (t->holders[i] == r->holder && t->slots[i] == r->slot)
			return 0;
	if (t->n < 64) {
		t->holders[t->n] = r->holder;
		t->slots[t->n] = r->slot;
	}
	t->n++;
	if (r->path_len && r->path[r->path_len - 1] != r->holder)
		t->bad_path = 1;
	t->last = *r;
	return 0;
}

static const char *const fixtures[] = {
	"01-fresh.meta.img", "02-thins-snaps.meta.img", "03-msnap-held.meta.img",
	"04-msnap-released.meta.img", "05-msnap-held-powercut.meta.img",
};

START_TEST(references_match_counts)
{
	for (unsigned f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++) {
		struct tm_view v;
		struct tm_sm_disk msm, dsm;
		struct tm_refs_stats st;
		uint64_t checked = 0;

		if (!load(fixtures[f]))
			return;
		ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
		ck_assert_int_eq(tm_sm_disk_open(bm, TM_SM_METADATA, &v.sb.meta_sm, &msm, &err), 0);
		ck_assert_int_eq(tm_sm_disk_open(bm, TM_SM_DATA, &v.sb.data_sm, &dsm, &err), 0);
		for (uint64_t b = 1; b < msm.root.nr_blocks; b++) {
			uint32_t c;
			struct tally t = { 0 };
			ck_assert_int_eq(tm_sm_disk_get(bm, &msm, b, &c, &err), 0);
			if (!c && b % 97)
				continue;	/* free blocks: a sample */
			ck_assert_int_eq(tm_find_meta_refs(bm, b, count_ref, &t, &st), 0);
			ck_assert_uint_eq(st.unreadable, 0);
			ck_assert_msg(t.n == c, "%s: metadata block %llu: %llu references, count %u",
				      fixtures[f], (unsigned long long)b, (unsigned long long)t.n, c);
			ck_assert(!t.bad_path);
			checked++;
		}
		ck_assert_uint_gt(checked, 5);
		for (uint64_t b = 0; b < dsm.root.nr_blocks; b++) {
			uint32_t c;
			struct tally t = { 0 };
			ck_assert_int_eq(tm_sm_disk_get(bm, &dsm, b, &c, &err), 0);
			if (!c && b % 97)
				continue;
			ck_assert_int_eq(tm_find_data_refs(bm, b, count_ref, &t, &st), 0);
			ck_assert_msg(t.n == c, "%s: data block %llu: %llu leaf entries, count %u",
				      fixtures[f], (unsigned long long)b, (unsigned long long)t.n, c);
			if (c)
				ck_assert_int_eq(t.last.kind, TM_REFBY_MAPPING);
		}
		tm_sm_disk_close(&msm);
		tm_sm_disk_close(&dsm);
		unload();
	}
}
END_TEST

START_TEST(where_references_are)
{
	struct tm_view v;
	struct tm_refs_stats st;
	struct tally t = { 0 };

	if (!load("03-msnap-held.meta.img"))
		return;
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	/* the held snapshot's copy: named by the live superblock only */
	ck_assert_int_eq(tm_find_meta_refs(bm, v.sb.held_root, count_ref, &t, &st), 0);
	ck_assert_uint_eq(t.n, 1);
	ck_assert_int_eq(t.last.kind, TM_REFBY_SUPERBLOCK);
	ck_assert_uint_eq(t.last.holder, 0);
	ck_assert_uint_eq(t.last.slot, 56);
	/* the metadata index block */
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(tm_find_meta_refs(bm, v.sb.meta_sm.bitmap_root, count_ref, &t, &st), 0);
	ck_assert_uint_eq(t.n, 1);
	ck_assert_uint_eq(t.last.slot, 192 + 16);
	/* a device's root, through the top level: its key is the device */
	struct tm_device *devs;
	uint64_t nr;
	ck_assert_int_eq(tm_read_devices(bm, &v, 0, &devs, &nr, &err), 0);
	ck_assert_uint_eq(devs[2].dev_id, 2);	/* created after the snapshot: live only */
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(tm_find_meta_refs(bm, devs[2].mapping_root, count_ref, &t, &st), 0);
	ck_assert_uint_eq(t.n, 1);
	ck_assert_int_eq(t.last.kind, TM_REFBY_DEVICE_ROOT);
	ck_assert_uint_eq(t.last.key, 2);
	ck_assert_int_eq(t.last.tree, TM_TREE_TOP);
	ck_assert(!t.last.snapshot);
	free(devs);
	unload();
}
END_TEST

static int stop_at_first(void *ctx, const struct tm_ref *r)
{
	(void)ctx;
	(void)r;
	return 42;
}

START_TEST(stops_and_survives_damage)
{
	struct tm_view v;
	struct tm_refs_stats st;
	struct tally t = { 0 };

	if (!load("02-thins-snaps.meta.img"))
		return;
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	/* stop early: the callback's value comes back */
	ck_assert_int_eq(tm_find_meta_refs(bm, v.sb.mapping_root, stop_at_first, NULL, &st), 42);
	/* damage the details root: searches go on, and say so */
	mem_block(dev, v.sb.details_root)[100] ^= 0xff;
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_find_meta_refs(bm, v.sb.mapping_root, count_ref, &t, &st), 0);
	ck_assert_uint_eq(t.n, 1);
	ck_assert_uint_eq(st.unreadable, 1);
	ck_assert_uint_eq(st.first_error.block, v.sb.details_root);
	/* damage the superblock too: still no failure */
	mem_block(dev, 0)[300] ^= 0xff;
	tm_bm_invalidate(bm);
	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(tm_find_data_refs(bm, 5, count_ref, &t, &st), 0);
	ck_assert_uint_ge(st.unreadable, 1);
	unload();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("refs");
	TCase *tc = tcase_create("refs");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, references_match_counts);
	tcase_add_test(tc, where_references_are);
	tcase_add_test(tc, stops_and_survives_damage);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
