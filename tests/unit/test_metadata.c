/*
 * test_metadata.c - views, devices, space maps and the dump walker on the
 * kernel-written fixtures (loaded into an in-memory device, so the tests
 * can damage them).
 */
#include <errno.h>

#include "unit_util.h"
#include "thinmeta/dump.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"

static struct tm_dev *dev;
static struct tm_bm *bm;
static struct tm_error err;

/* Load a fixture into memory; 0 if fixtures are not available. */
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
	bm = NULL;
	dev = NULL;
}

START_TEST(live_and_snapshot_views)
{
	struct tm_view v;

	if (!load("03-msnap-held.meta.img"))
		return;
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	ck_assert_int_eq(v.is_snapshot, 0);
	ck_assert_uint_eq(v.sb.trans_id, 2);
	ck_assert_uint_eq(v.sb.time, 2);
	ck_assert_uint_ne(v.sb.held_root, 0);
	uint64_t held = v.sb.held_root;

	ck_assert_int_eq(tm_view_snapshot(bm, 0, &v, &err), 0);
	ck_assert(v.is_snapshot);
	ck_assert_uint_eq(v.sb_block, held);
	ck_assert_uint_eq(v.sb.trans_id, 1);
	ck_assert_uint_eq(v.sb.data_sm.nr_blocks, 0);	/* zeroed by the kernel */
	ck_assert_int_eq(tm_view_snapshot(bm, held, &v, &err), 0);
	ck_assert_int_eq(tm_view_snapshot(bm, held + 1, &v, &err), -EINVAL);
	ck_assert_int_eq(err.rule, TM_RULE_SNAP_MISMATCH);
	unload();

	if (!load("01-fresh.meta.img"))
		return;
	ck_assert_int_eq(tm_view_snapshot(bm, 0, &v, &err), -ENODATA);
	ck_assert_int_eq(err.rule, TM_RULE_NO_SNAP);
	unload();
}
END_TEST

START_TEST(devices)
{
	struct tm_view v;
	struct tm_device *devs;
	uint64_t nr;
	static const uint64_t ids[] = { 0, 1, 2, 10, 11 };
	static const uint64_t mapped[] = { 320, 16, 24, 320, 336 };

	if (!load("02-thins-snaps.meta.img"))
		return;
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	ck_assert_int_eq(tm_read_devices(bm, &v, 0, &devs, &nr, &err), 0);
	ck_assert_uint_eq(nr, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_uint_eq(devs[i].dev_id, ids[i]);
		ck_assert_uint_eq(devs[i].details.mapped_blocks, mapped[i]);
		ck_assert_uint_ne(devs[i].mapping_root, 0);
	}
	ck_assert_uint_eq(devs[3].details.creation_time, 1);
	ck_assert_uint_eq(devs[3].details.snapshotted_time, 2);
	free(devs);
	unload();
}
END_TEST

START_TEST(space_map_counts)
{
	struct tm_view v;
	struct tm_sm_disk sm;
	uint64_t nonzero = 0;
	uint32_t c;

	if (!load("02-thins-snaps.meta.img"))
		return;
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	ck_assert_int_eq(tm_sm_disk_open(bm, TM_SM_METADATA, &v.sb.meta_sm, &sm, &err), 0);
	ck_assert_uint_eq(sm.root.nr_blocks, 2048);
	for (uint64_t b = 0; b < sm.root.nr_blocks; b++) {
		ck_assert_int_eq(tm_sm_disk_get(bm, &sm, b, &c, &err), 0);
		nonzero += c != 0;
	}
	ck_assert_uint_eq(nonzero, sm.root.nr_allocated);
	ck_assert_uint_eq(sm.root.nr_blocks - nonzero, 2029);	/* 1.1.0's METADATA_FREE_BLOCKS */
	ck_assert_int_eq(tm_sm_disk_get(bm, &sm, 0, &c, &err), 0);
	ck_assert_uint_eq(c, 1);	/* the superblock */
	ck_assert_int_eq(tm_sm_disk_get(bm, &sm, 2048, &c, &err), -ERANGE);
	tm_sm_disk_close(&sm);

	nonzero = 0;
	ck_assert_int_eq(tm_sm_disk_open(bm, TM_SM_DATA, &v.sb.data_sm, &sm, &err), 0);
	ck_assert_uint_eq(sm.root.nr_blocks, 4096);
	for (uint64_t b = 0; b < sm.root.nr_blocks; b++) {
		ck_assert_int_eq(tm_sm_disk_get(bm, &sm, b, &c, &err), 0);
		nonzero += c != 0;
	}
	ck_assert_uint_eq(nonzero, sm.root.nr_allocated);
	tm_sm_disk_close(&sm);
	unload();
}
END_TEST

/* A sink that counts what it is told. */
struct tally {
	uint64_t devices, defs, refs, runs, mappings, max_mapped_dev;
	uint64_t dev_mappings, dev_mapped_blocks, mismatched;
};

static int t_sb(void *c, const struct tm_ir_superblock *sb) { (void)c; (void)sb; return 0; }
static int t_nop(void *c) { (void)c; return 0; }
static int t_def(void *c, const char *n) { (void)n; ((struct tally *)c)->defs++; return 0; }
static int t_ref(void *c, const char *n) { (void)n; ((struct tally *)c)->refs++; return 0; }
static int t_dev(void *c, const struct tm_ir_device *d)
{
	struct tally *t = c;
	t->devices++;
	t->dev_mappings = 0;
	t->dev_mapped_blocks = d->mapped_blocks;
	return 0;
}
static int t_dev_end(void *c)
{
	struct tally *t = c;
	if (t->dev_mappings != t->dev_mapped_blocks)
		t->mismatched++;
	return 0;
}
static int t_run(void *c, const struct tm_ir_run *r)
{
	struct tally *t = c;
	t->runs++;
	t->mappings += r->length;
	t->dev_mappings += r->length;
	return 0;
}

static const struct tm_ir_sink tally_sink_proto = {
	NULL, t_sb, t_nop, t_def, t_nop, t_dev, t_dev_end, t_ref, t_run,
};

START_TEST(dump_expanded_and_shared)
{
	struct tm_dump_opts o = { 0 };
	struct tm_ir_sink sink = tally_sink_proto;
	struct tally t = { 0 };

	if (!load("02-thins-snaps.meta.img"))
		return;
	sink.ctx = &t;
	o.expand_shared = 1;
	ck_assert_int_eq(tm_dump(bm, &o, &sink, &err), 0);
	ck_assert_uint_eq(t.devices, 5);
	ck_assert_uint_eq(t.defs, 0);
	ck_assert_uint_eq(t.mappings, 320 + 16 + 24 + 320 + 336);
	ck_assert_uint_eq(t.mismatched, 0);	/* mapped_blocks == mappings */

	memset(&t, 0, sizeof(t));
	o.expand_shared = 0;
	ck_assert_int_eq(tm_dump(bm, &o, &sink, &err), 0);
	ck_assert_uint_eq(t.defs, 1);		/* leaf 95, shared by 0 and 10 */
	ck_assert_uint_eq(t.refs, 2);

	/* one device alone never has a def */
	uint64_t id = 10;
	memset(&t, 0, sizeof(t));
	o.dev_ids = &id;
	o.nr_dev_ids = 1;
	ck_assert_int_eq(tm_dump(bm, &o, &sink, &err), 0);
	ck_assert_uint_eq(t.devices, 1);
	ck_assert_uint_eq(t.defs, 0);
	ck_assert_uint_eq(t.mappings, 320);
	unload();
}
END_TEST

START_TEST(dump_stops_at_damage)
{
	struct tm_dump_opts o = { .expand_shared = 1 };
	struct tm_ir_sink sink = tally_sink_proto;
	struct tally t = { 0 };
	struct tm_view v;
	struct tm_device *devs;
	uint64_t nr, *leaves, nl;

	if (!load("02-thins-snaps.meta.img"))
		return;
	sink.ctx = &t;
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	ck_assert_int_eq(tm_read_devices(bm, &v, 0, &devs, &nr, &err), 0);
	ck_assert_int_eq(tm_btree_leaves(bm, devs[0].mapping_root, &leaves, &nl, &err), 0);
	ck_assert_uint_ge(nl, 2);
	uint64_t victim = leaves[0];
	free(leaves);
	free(devs);

	mem_block(dev, victim)[2000] ^= 1;
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_dump(bm, &o, &sink, &err), -EILSEQ);
	ck_assert_int_eq(err.rule, TM_RULE_CHECKSUM);
	ck_assert_uint_eq(err.block, victim);
	ck_assert_ptr_nonnull(strstr(err.msg, "device 0"));

	/* a zeroed superblock */
	memset(mem_block(dev, 0), 0, TM_BLOCK_SIZE);
	tm_bm_invalidate(bm);
	ck_assert_int_eq(tm_dump(bm, &o, &sink, &err), -EILSEQ);
	ck_assert_int_eq(err.rule, TM_RULE_ZEROED);
	ck_assert_uint_eq(err.block, 0);
	unload();
}
END_TEST

START_TEST(devices_trees_disagree)
{
	struct tm_view v;
	struct tm_device *devs;
	uint64_t nr;

	if (!load("02-thins-snaps.meta.img"))
		return;
	ck_assert_int_eq(tm_view_live(bm, &v, &err), 0);
	/* point the details root at the top-level mapping tree's root: its
	 * value size (8) is not the details tree's (24) */
	v.sb.details_root = v.sb.mapping_root;
	ck_assert_int_eq(tm_read_devices(bm, &v, 0, &devs, &nr, &err), -EUCLEAN);
	ck_assert_int_eq(err.rule, TM_RULE_VALUE_SIZE);
	unload();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metadata");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, live_and_snapshot_views);
	tcase_add_test(tc, devices);
	tcase_add_test(tc, space_map_counts);
	tcase_add_test(tc, dump_expanded_and_shared);
	tcase_add_test(tc, dump_stops_at_damage);
	tcase_add_test(tc, devices_trees_disagree);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
