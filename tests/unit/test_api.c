/*
 * test_api.c - libthinmeta's stable API (thinmeta/thinmeta.h) on the
 * kernel-written fixtures: the superblock, the device list, runs (checked
 * against a brute-force reading of the leaves), the held snapshot, deltas
 * (checked against a per-block classification of both devices' runs),
 * callbacks that stop, errors for bad arguments, missing things and damage.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "unit_util.h"
#include "thinmeta/thinmeta.h"

#define MAXB 4096	/* virtual blocks the fixtures use stay below this */

static struct thinmeta_error err;

static struct thinmeta *open_fixture(const char *name, unsigned flags)
{
	const char *path = fixture(name);
	struct thinmeta *md = NULL;

	if (!path) {
		fprintf(stderr, "%s: THINMETA_FIXTURES not set, skipped\n", name);
		return NULL;
	}
	ck_assert_int_eq(thinmeta_open(path, flags, &md, &err), 0);
	ck_assert_int_eq(err.code, 0);
	ck_assert_ptr_nonnull(md);
	return md;
}

/* ------------------------------------------------------------------ */
/* runs, collected */

struct runs {
	struct thinmeta_run r[8192];
	size_t n;
	int stop_at;	/* return 7 from this run on (0 = never) */
};

static int collect(void *ctx, const struct thinmeta_run *run)
{
	struct runs *rs = ctx;

	ck_assert_uint_lt(rs->n, 8192);
	rs->r[rs->n++] = *run;
	if (rs->stop_at && (int)rs->n >= rs->stop_at)
		return 7;
	return 0;
}

/* data block + 1 of each virtual block (0 = unmapped), from runs */
static void expand(const struct runs *rs, uint64_t *map)
{
	memset(map, 0, MAXB * sizeof(*map));
	for (size_t i = 0; i < rs->n; i++)
		for (uint64_t k = 0; k < rs->r[i].length; k++) {
			ck_assert_uint_lt(rs->r[i].thin_begin + k, MAXB);
			map[rs->r[i].thin_begin + k] = rs->r[i].data_begin + k + 1;
		}
}

START_TEST(version_matches_header)
{
	char want[32];

	snprintf(want, sizeof(want), "%d.%d.%d", THINMETA_VERSION_MAJOR, THINMETA_VERSION_MINOR,
		 THINMETA_VERSION_PATCH);
	ck_assert_str_eq(thinmeta_version(), want);
}
END_TEST

START_TEST(info_and_devices)
{
	struct thinmeta *md = open_fixture("02-thins-snaps.meta.img", 0);
	struct thinmeta_info info;
	const struct thinmeta_device *devs;
	size_t nr;
	static const uint64_t ids[] = { 0, 1, 2, 10, 11 };
	static const uint64_t mapped[] = { 320, 16, 24, 320, 336 };

	if (!md)
		return;
	ck_assert_int_eq(thinmeta_get_info(md, &info), 0);
	ck_assert_uint_eq(info.transaction_id, 5);
	ck_assert_uint_eq(info.time, 2);
	ck_assert_uint_eq(info.data_block_size, 128);
	ck_assert_uint_eq(info.nr_data_blocks, 4096);
	ck_assert_uint_eq(info.nr_metadata_blocks, 2048);
	ck_assert_uint_eq(info.free_metadata_blocks, 2029);	/* thin_check's METADATA_FREE_BLOCKS */
	ck_assert_uint_eq(info.held_root, 0);
	ck_assert_int_eq(info.is_snapshot, 0);
	ck_assert_uint_eq(info.flags, 0);
	ck_assert_uint_eq(info.version, 2);

	ck_assert_int_eq(thinmeta_devices(md, &devs, &nr, &err), 0);
	ck_assert_uint_eq(nr, 5);
	for (size_t i = 0; i < nr; i++) {
		ck_assert_uint_eq(devs[i].dev_id, ids[i]);
		ck_assert_uint_eq(devs[i].mapped_blocks, mapped[i]);
		ck_assert_uint_ne(devs[i].mapping_root, 0);
		for (int k = 0; k < 4; k++)
			ck_assert_uint_eq(devs[i].reserved[k], 0);
	}
	/* the same array again, and one device by id */
	const struct thinmeta_device *again;
	ck_assert_int_eq(thinmeta_devices(md, &again, &nr, &err), 0);
	ck_assert_ptr_eq(again, devs);
	struct thinmeta_device d;
	ck_assert_int_eq(thinmeta_find_device(md, 10, &d, &err), 0);
	ck_assert_uint_eq(d.mapped_blocks, 320);
	ck_assert_int_eq(thinmeta_find_device(md, 3, &d, &err), -ENODATA);
	ck_assert_int_eq(err.code, -ENODATA);
	ck_assert_ptr_nonnull(strstr(err.message, "no thin device 3"));
	thinmeta_close(md);
}
END_TEST

START_TEST(runs_are_maximal_and_complete)
{
	struct thinmeta *md = open_fixture("02-thins-snaps.meta.img", 0);
	const struct thinmeta_device *devs;
	size_t nr;
	static struct runs rs;

	if (!md)
		return;
	ck_assert_int_eq(thinmeta_devices(md, &devs, &nr, &err), 0);
	for (size_t i = 0; i < nr; i++) {
		uint64_t total = 0;
		rs.n = 0;
		rs.stop_at = 0;
		ck_assert_int_eq(thinmeta_device_runs(md, devs[i].dev_id, collect, &rs, &err), 0);
		for (size_t k = 0; k < rs.n; k++) {
			const struct thinmeta_run *a = &rs.r[k];
			ck_assert_uint_gt(a->length, 0);
			ck_assert_uint_lt(a->data_begin + a->length - 1, 4096);
			ck_assert_uint_le(a->time, 2);
			total += a->length;
			if (k) {
				const struct thinmeta_run *p = &rs.r[k - 1];
				/* ascending, disjoint, and not mergeable with the previous run */
				ck_assert_uint_ge(a->thin_begin, p->thin_begin + p->length);
				ck_assert(!(a->thin_begin == p->thin_begin + p->length &&
					    a->data_begin == p->data_begin + p->length &&
					    a->time == p->time));
			}
		}
		ck_assert_uint_eq(total, devs[i].mapped_blocks);
		/* the same tree by its root */
		static struct runs by_root;
		by_root.n = 0;
		by_root.stop_at = 0;
		ck_assert_int_eq(thinmeta_tree_runs(md, devs[i].mapping_root, collect, &by_root, &err), 0);
		ck_assert_uint_eq(by_root.n, rs.n);
		ck_assert(memcmp(by_root.r, rs.r, rs.n * sizeof(rs.r[0])) == 0);
	}
	/* device 1: 16 blocks in one run (thin_dump says so) */
	rs.n = 0;
	ck_assert_int_eq(thinmeta_device_runs(md, 1, collect, &rs, &err), 0);
	ck_assert_uint_eq(rs.n, 1);
	ck_assert_uint_eq(rs.r[0].thin_begin, 0);
	ck_assert_uint_eq(rs.r[0].length, 16);
	thinmeta_close(md);
}
END_TEST

START_TEST(callback_stops)
{
	struct thinmeta *md = open_fixture("02-thins-snaps.meta.img", 0);
	static struct runs rs;

	if (!md)
		return;
	rs.n = 0;
	rs.stop_at = 3;
	ck_assert_int_eq(thinmeta_device_runs(md, 0, collect, &rs, &err), 7);
	ck_assert_uint_eq(rs.n, 3);
	ck_assert_int_eq(err.code, 0);
	thinmeta_close(md);
}
END_TEST

START_TEST(snapshot_view)
{
	struct thinmeta *md = open_fixture("03-msnap-held.meta.img", THINMETA_OPEN_SNAPSHOT);
	struct thinmeta_info info;
	const struct thinmeta_device *devs;
	size_t nr;

	if (!md)
		return;
	ck_assert_int_eq(thinmeta_get_info(md, &info), 0);
	ck_assert_int_eq(info.is_snapshot, 1);
	ck_assert_uint_eq(info.held_root, 80);
	ck_assert_uint_eq(info.transaction_id, 1);	/* the snapshot's own */
	ck_assert_uint_eq(info.nr_data_blocks, 4096);	/* from the live superblock */
	ck_assert_int_eq(thinmeta_devices(md, &devs, &nr, &err), 0);
	ck_assert_uint_eq(nr, 3);
	ck_assert_uint_eq(devs[0].dev_id, 0);
	ck_assert_uint_eq(devs[1].dev_id, 1);
	ck_assert_uint_eq(devs[2].dev_id, 10);
	thinmeta_close(md);

	/* no snapshot held */
	const char *path = fixture("02-thins-snaps.meta.img");
	ck_assert_ptr_nonnull(path);
	md = (struct thinmeta *)1;
	ck_assert_int_eq(thinmeta_open(path, THINMETA_OPEN_SNAPSHOT, &md, &err), -ENODATA);
	ck_assert_ptr_null(md);
	ck_assert_ptr_nonnull(strstr(err.message, "no current metadata snapshot"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* delta */

struct deltas {
	struct thinmeta_delta d[8192];
	size_t n;
};

static int collect_delta(void *ctx, const struct thinmeta_delta *d)
{
	struct deltas *ds = ctx;

	ck_assert_uint_lt(ds->n, 8192);
	ds->d[ds->n++] = *d;
	return 0;
}

/* The kind of virtual block @b, from both sides' maps; -1 = neither. */
static int kind_of(const uint64_t *l, const uint64_t *r, uint64_t b)
{
	if (!l[b] && !r[b])
		return -1;
	if (!r[b])
		return THINMETA_DELTA_LEFT_ONLY;
	if (!l[b])
		return THINMETA_DELTA_RIGHT_ONLY;
	return l[b] == r[b] ? THINMETA_DELTA_SAME : THINMETA_DELTA_DIFFERENT;
}

static void check_delta(struct thinmeta *md, uint64_t left, uint64_t right)
{
	static struct runs lr, rr;
	static struct deltas ds, ds_skip, ds_roots;
	static uint64_t lmap[MAXB], rmap[MAXB];
	struct thinmeta_device ld, rd;

	lr.n = rr.n = 0;
	lr.stop_at = rr.stop_at = 0;
	ck_assert_int_eq(thinmeta_device_runs(md, left, collect, &lr, &err), 0);
	ck_assert_int_eq(thinmeta_device_runs(md, right, collect, &rr, &err), 0);
	expand(&lr, lmap);
	expand(&rr, rmap);

	ds.n = ds_skip.n = ds_roots.n = 0;
	ck_assert_int_eq(thinmeta_delta_devices(md, left, right, 0, collect_delta, &ds, &err), 0);
	ck_assert_int_eq(thinmeta_delta_devices(md, left, right, THINMETA_DELTA_SKIP_SAME,
						collect_delta, &ds_skip, &err), 0);
	ck_assert_int_eq(thinmeta_find_device(md, left, &ld, &err), 0);
	ck_assert_int_eq(thinmeta_find_device(md, right, &rd, &err), 0);
	ck_assert_int_eq(thinmeta_delta_roots(md, ld.mapping_root, rd.mapping_root, 0,
					      collect_delta, &ds_roots, &err), 0);
	ck_assert_uint_eq(ds_roots.n, ds.n);
	ck_assert(memcmp(ds_roots.d, ds.d, ds.n * sizeof(ds.d[0])) == 0);

	/* every block of every range has the range's kind; every mapped block is covered */
	uint64_t covered = 0, next = 0;
	size_t nskip = 0;
	for (size_t i = 0; i < ds.n; i++) {
		const struct thinmeta_delta *d = &ds.d[i];
		ck_assert_uint_ge(d->thin_begin, next);
		ck_assert_uint_gt(d->length, 0);
		for (uint64_t b = d->thin_begin; b < d->thin_begin + d->length; b++)
			ck_assert_int_eq(kind_of(lmap, rmap, b), d->kind);
		if (d->kind != THINMETA_DELTA_RIGHT_ONLY)
			ck_assert_uint_eq(d->left_data + 1, lmap[d->thin_begin]);
		else
			ck_assert_uint_eq(d->left_data, 0);
		if (d->kind != THINMETA_DELTA_LEFT_ONLY)
			ck_assert_uint_eq(d->right_data + 1, rmap[d->thin_begin]);
		else
			ck_assert_uint_eq(d->right_data, 0);
		covered += d->length;
		next = d->thin_begin + d->length;
		if (d->kind != THINMETA_DELTA_SAME) {
			ck_assert_uint_lt(nskip, ds_skip.n);
			ck_assert(memcmp(&ds_skip.d[nskip], d, sizeof(*d)) == 0);
			nskip++;
		}
	}
	ck_assert_uint_eq(nskip, ds_skip.n);
	uint64_t mapped = 0;
	for (uint64_t b = 0; b < MAXB; b++)
		mapped += kind_of(lmap, rmap, b) >= 0;
	ck_assert_uint_eq(covered, mapped);
}

START_TEST(delta_against_brute_force)
{
	struct thinmeta *md = open_fixture("02-thins-snaps.meta.img", 0);

	if (!md)
		return;
	check_delta(md, 0, 10);		/* snapshot and origin */
	check_delta(md, 10, 11);	/* snapshot of a snapshot */
	check_delta(md, 1, 2);		/* unrelated */
	check_delta(md, 2, 2);		/* itself: all SAME */
	ck_assert_int_eq(thinmeta_delta_devices(md, 0, 99, 0, collect_delta, NULL, &err), -ENODATA);
	ck_assert_int_eq(thinmeta_delta_devices(md, 0, 10, 0x80, collect_delta, NULL, &err), -EINVAL);
	thinmeta_close(md);
}
END_TEST

/* ------------------------------------------------------------------ */
/* errors */

START_TEST(bad_arguments)
{
	struct thinmeta *md = NULL;
	const struct thinmeta_device *devs;
	size_t nr;

	ck_assert_int_eq(thinmeta_open(NULL, 0, &md, &err), -EINVAL);
	ck_assert_int_eq(thinmeta_open("x", 0, NULL, &err), -EINVAL);
	ck_assert_int_eq(thinmeta_open("x", 0x100, &md, &err), -EINVAL);
	ck_assert_int_eq(thinmeta_open("/nonexistent/meta.img", 0, &md, NULL), -ENOENT);
	ck_assert_int_eq(thinmeta_open("/nonexistent/meta.img", 0, &md, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/meta.img"));
	ck_assert_ptr_null(md);
	ck_assert_int_eq(thinmeta_devices(NULL, &devs, &nr, &err), -EINVAL);
	ck_assert_int_eq(thinmeta_get_info(NULL, NULL), -EINVAL);
	thinmeta_close(NULL);

	md = open_fixture("02-thins-snaps.meta.img", 0);
	if (!md)
		return;
	ck_assert_int_eq(thinmeta_device_runs(md, 0, NULL, NULL, &err), -EINVAL);
	/* a root that is not a mapping tree: an error, not a crash */
	static struct runs rs;
	rs.n = 0;
	rs.stop_at = 0;
	ck_assert_int_lt(thinmeta_tree_runs(md, 0, collect, &rs, &err), 0);
	ck_assert_int_lt(thinmeta_tree_runs(md, 1u << 30, collect, &rs, &err), 0);
	thinmeta_close(md);
}
END_TEST

START_TEST(damaged_leaf)
{
	const char *path = fixture("02-thins-snaps.meta.img");
	char tmp[] = "/tmp/test_api.XXXXXX";
	struct thinmeta *md;
	static struct runs rs;
	static uint8_t buf[1 << 20];
	size_t n;

	if (!path)
		return;
	int fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	FILE *in = fopen(path, "rb"), *out = fdopen(fd, "wb");
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	/* block 114: the first leaf of device 0 (fixtures/kernel README) */
	ck_assert_int_eq(fseek(out, 114L * 4096 + 100, SEEK_SET), 0);
	fputc(0x5a, out);
	fclose(out);

	ck_assert_int_eq(thinmeta_open(tmp, 0, &md, &err), 0);
	rs.n = 0;
	rs.stop_at = 0;
	ck_assert_int_eq(thinmeta_device_runs(md, 0, collect, &rs, &err), -EILSEQ);
	ck_assert_int_eq(err.code, -EILSEQ);
	ck_assert_ptr_nonnull(strstr(err.message, "thin device 0 mapping tree"));
	ck_assert_ptr_nonnull(strstr(err.message, "block 114"));
	/* other devices are still readable */
	rs.n = 0;
	ck_assert_int_eq(thinmeta_device_runs(md, 1, collect, &rs, &err), 0);
	thinmeta_close(md);

	/* a zeroed superblock: open fails with a message */
	fd = open(tmp, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	memset(buf, 0, 4096);
	ck_assert_int_eq(pwrite(fd, buf, 4096, 0), 4096);
	close(fd);
	ck_assert_int_lt(thinmeta_open(tmp, 0, &md, &err), 0);
	ck_assert_ptr_null(md);
	ck_assert_uint_gt(strlen(err.message), 0);
	unlink(tmp);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");

	tcase_add_test(tc, version_matches_header);
	tcase_add_test(tc, info_and_devices);
	tcase_add_test(tc, runs_are_maximal_and_complete);
	tcase_add_test(tc, callback_stops);
	tcase_add_test(tc, snapshot_view);
	tcase_add_test(tc, delta_against_brute_force);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, damaged_leaf);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
