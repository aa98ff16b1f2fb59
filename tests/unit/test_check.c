/*
 * test_check.c - the checker (thinmeta/check.h) and its problem table
 * (thinmeta/problem.h): the table's integrity and one-line format, the
 * compact counters, clean kernel-written metadata, leaks repaired and
 * under-counts refused, needs_check, metadata that changes during the
 * check, a torn superblock read, every failing read, and random damage
 * (nothing may crash or hang).
 */
#include <errno.h>
#include <stdarg.h>

#include "unit_util.h"
#include "check_int.h"
#include "thinmeta/check.h"
#include "thinmeta/problem.h"
#include "thinmeta/space_map.h"

/* ------------------------------------------------------------------ */
/* Findings, recorded */

struct rec {
	uint64_t by_code[TM_PR__COUNT];
	char last[TM_PR__COUNT][1024];
	int phases[16];
};

static void rec_problem(void *ctx, const struct tm_problem *p)
{
	struct rec *r = ctx;
	char line[1000];

	r->by_code[p->code]++;
	tm_problem_format(p, line, sizeof(line));
	snprintf(r->last[p->code], sizeof(r->last[p->code]), "%s", line);
	/* every placeholder of the template is known */
	ck_assert_msg(!strchr(line, '{'), "unexpanded placeholder: %s", line);
}

static void rec_phase(void *ctx, enum tm_check_phase ph)
{
	struct rec *r = ctx;

	r->phases[ph]++;
}

static int run_check(struct tm_dev *dev, const struct tm_check_opts *o,
		     struct tm_check_result *res, struct rec *r)
{
	struct tm_check_callbacks cb = { .ctx = r, .problem = rec_problem, .phase = rec_phase };
	struct tm_error e;
	struct tm_bm *bm;
	int ret;

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	ret = tm_check(bm, o, &cb, res, &e);
	tm_bm_destroy(bm);
	return ret;
}

static uint64_t serious(const struct tm_check_result *res)
{
	return res->nr_problems[TM_SEV_FATAL] + res->nr_problems[TM_SEV_NONFATAL];
}

/* A kernel fixture in memory, or NULL (the test is then skipped). */
static struct tm_dev *load(const char *name)
{
	const char *path = fixture(name);
	struct tm_dev *dev;
	FILE *f;
	long size;

	if (!path)
		return NULL;
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	ck_assert_int_eq(tm_dev_mem_create((uint64_t)size / TM_BLOCK_SIZE, &dev), 0);
	ck_assert_int_eq(fread(tm_dev_mem_data(dev), 1, (size_t)size, f), (size_t)size);
	fclose(f);
	return dev;
}

static struct tm_superblock sb_of(struct tm_dev *dev)
{
	struct tm_superblock sb;

	tm_sb_decode(mem_block(dev, 0), &sb);
	return sb;
}

/* The block of data space map bitmap 0 and of the metadata one. */
static uint64_t bitmap0(struct tm_dev *dev, enum tm_sm_kind kind)
{
	struct tm_superblock sb = sb_of(dev);
	struct tm_sm_disk sm;
	struct tm_error e;
	struct tm_bm *bm;

	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	ck_assert_int_eq(tm_sm_disk_open(bm, kind, kind == TM_SM_DATA ? &sb.data_sm : &sb.meta_sm,
					 &sm, &e), 0);
	uint64_t b = sm.index[0].blocknr;
	tm_sm_disk_close(&sm);
	tm_bm_destroy(bm);
	return b;
}

static unsigned entry_get(struct tm_dev *dev, uint64_t bitmap, uint32_t i)
{
	return tm_bitmap_get(mem_block(dev, bitmap), i);
}

static void entry_set(struct tm_dev *dev, uint64_t bitmap, uint32_t i, unsigned v)
{
	tm_bitmap_set(mem_block(dev, bitmap), i, v);
	reseal(dev, bitmap, TM_SALT_BITMAP);
}

static const char *const kernel_fixtures[] = {
	"01-fresh.meta.img", "02-thins-snaps.meta.img", "03-msnap-held.meta.img",
	"04-msnap-released.meta.img", "05-msnap-held-powercut.meta.img",
};

/* ------------------------------------------------------------------ */

START_TEST(table_sane)
{
	for (int c = 0; c < TM_PR__COUNT; c++) {
		const struct tm_problem_info *pi = tm_problem_info(c);
		ck_assert_ptr_nonnull(pi);
		ck_assert_int_gt(strlen(pi->name), 3);
		for (const char *s = pi->name; *s; s++)
			ck_assert_msg((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_',
				      "bad name %s", pi->name);
		for (int d = 0; d < c; d++)
			ck_assert_str_ne(pi->name, tm_problem_info(d)->name);
		ck_assert_int_lt(pi->severity, TM_SEV__COUNT);
		if (pi->fixable)
			ck_assert_int_eq(pi->severity, TM_SEV_NONFATAL);

		struct tm_problem p;
		char line[1024];
		tm_problem_init(&p, c);
		tm_problem_message(&p, line, sizeof(line));
		ck_assert_msg(!strchr(line, '{'), "%s: %s", pi->name, line);
	}
	ck_assert_ptr_null(tm_problem_info(TM_PR__COUNT));
}
END_TEST

START_TEST(format_where_and_cost)
{
	static const uint64_t path[] = { 0, 23, 7, 2 };
	struct tm_problem p;
	char line[1024];

	tm_problem_init(&p, TM_PR_BLOCK_CHECKSUM);
	p.kind = TM_KIND_NODE;
	p.tree = TM_TREE_BOTTOM;
	p.block = 2;
	p.dev_id = 3;
	p.text = "btree node";
	p.has_keys = 1;
	p.key_lo = 540;
	p.key_hi = 1150;
	p.path = path;
	p.path_len = 4;
	tm_problem_format(&p, line, sizeof(line));
	ck_assert_str_eq(line, "mapping tree of device 3, block 2: bad checksum in btree node; "
			       "at risk: device 3 virtual blocks [540..1150) (node path BgEXQRA1)");

	/* 1.1.0 prints AgEX for the path [0, 23] */
	tm_problem_init(&p, TM_PR_BLOCK_ZERO);
	p.kind = TM_KIND_NODE;
	p.tree = TM_TREE_TOP;
	p.block = 23;
	p.text = "btree node";
	p.path = path;
	p.path_len = 2;
	tm_problem_format(&p, line, sizeof(line));
	ck_assert_str_eq(line, "mapping tree (top level), block 23: bad checksum in btree node: "
			       "the block is all zeroes (node path AgEX)");

	tm_problem_init(&p, TM_PR_DATA_LEAK);
	p.block = 382;
	p.nr_blocks = 3;
	p.expected = 1;
	p.actual = 2;
	tm_problem_format(&p, line, sizeof(line));
	ck_assert_str_eq(line, "data blocks 382..384: reference count 2 in the space map, "
			       "1 references found (leaked)");

	/* truncation is safe and reports the length needed */
	size_t need = tm_problem_format(&p, line, 10);
	ck_assert_int_eq(strlen(line), 9);
	ck_assert_int_gt(need, 40);
}
END_TEST

START_TEST(counters)
{
	struct ck_counts c;
	uint32_t old;

	ck_assert_int_eq(ck_counts_init(&c, 100000), 0);
	ck_assert_ptr_null(ck_counts_page(&c, 0));
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(ck_counts_inc(&c, 17000, &old), 0);
		ck_assert_uint_eq(old, (unsigned)i);
	}
	ck_assert_uint_eq(ck_counts_get(&c, 17000), 1000);
	ck_assert_uint_eq(ck_counts_get(&c, 17001), 0);
	ck_assert_ptr_null(ck_counts_page(&c, 0));
	ck_assert_ptr_nonnull(ck_counts_page(&c, 1));
	/* a page is laid out as a space-map bitmap: min(count, 3) in 2 bits */
	{
		uint8_t bm[TM_BLOCK_SIZE] = { 0 };
		const uint64_t *pg = ck_counts_page(&c, 1);
		for (uint32_t w = 0; w < TM_BITMAP_WORDS; w++)
			tm_put_le64(bm + 16 + 8 * w, pg[w]);
		ck_assert_uint_eq(tm_bitmap_get(bm, 17000 - 16320), 3);
		ck_assert_uint_eq(tm_bitmap_get(bm, 17001 - 16320), 0);
		ck_assert_int_eq(ck_counts_inc(&c, 17001, NULL), 0);
		ck_assert_int_eq(ck_counts_inc(&c, 17002, NULL), 0);
		ck_assert_int_eq(ck_counts_inc(&c, 17002, NULL), 0);
		for (uint32_t w = 0; w < TM_BITMAP_WORDS; w++)
			tm_put_le64(bm + 16 + 8 * w, pg[w]);
		ck_assert_uint_eq(tm_bitmap_get(bm, 17001 - 16320), 1);
		ck_assert_uint_eq(tm_bitmap_get(bm, 17002 - 16320), 2);
		ck_assert_uint_eq(ck_counts_get(&c, 17002), 2);
	}
	ck_assert_int_eq(ck_counts_inc(&c, 99999, NULL), 0);
	ck_assert_int_eq(ck_counts_inc(&c, 100000, NULL), -ERANGE);
	/* many overflowed blocks: the hash grows */
	for (uint64_t b = 0; b < 5000; b++)
		for (int i = 0; i < 256; i++)
			ck_assert_int_eq(ck_counts_inc(&c, b * 7, NULL), 0);
	for (uint64_t b = 0; b < 5000; b++)
		ck_assert_uint_eq(ck_counts_get(&c, b * 7), b * 7 == 17000 ? 1256 : 256);
	ck_counts_free(&c);

	/* a data device of 2^40 blocks costs nothing until it is used */
	ck_assert_int_eq(ck_counts_init(&c, 1ull << 40), 0);
	ck_assert_int_eq(ck_counts_inc(&c, (1ull << 40) - 1, NULL), 0);
	ck_assert_uint_eq(ck_counts_get(&c, (1ull << 40) - 1), 1);
	ck_counts_free(&c);
}
END_TEST

START_TEST(clean_kernel_fixtures)
{
	for (size_t i = 0; i < sizeof(kernel_fixtures) / sizeof(*kernel_fixtures); i++) {
		struct tm_dev *dev = load(kernel_fixtures[i]);
		struct tm_check_opts o = { .detect_changes = 1 };
		struct tm_check_result res;
		struct rec r;

		if (!dev)
			return;
		uint8_t *copy = malloc(dev->size_bytes);
		memcpy(copy, tm_dev_mem_data(dev), dev->size_bytes);
		ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
		ck_assert_msg(!serious(&res), "%s: %llu findings", kernel_fixtures[i],
			      (unsigned long long)serious(&res));
		ck_assert(res.have_sb && res.complete && !res.changed);
		ck_assert_int_eq(r.phases[TM_PHASE_META_SM], 1);
		/* with repair asked for: still nothing written */
		o.repair = o.clear_needs_check = 1;
		ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
		ck_assert(!res.repaired);
		ck_assert(!memcmp(copy, tm_dev_mem_data(dev), dev->size_bytes));
		if (sb_of(dev).held_root) {
			struct tm_check_opts m = { .metadata_snap = 1 };
			ck_assert_int_eq(run_check(dev, &m, &res, &r), 0);
			ck_assert(!serious(&res));
			ck_assert_int_eq(r.phases[TM_PHASE_DATA_SM], 0);
			ck_assert_uint_gt(res.nr_devices, 0);
		}
		free(copy);
		tm_dev_close(dev);
	}
}
END_TEST

START_TEST(fixture_02_counts)
{
	struct tm_dev *dev = load("02-thins-snaps.meta.img");
	struct tm_check_opts o = { 0 };
	struct tm_check_result res;
	struct rec r;

	if (!dev)
		return;
	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	/* FORMAT fixture notes: transaction 5, 2029 free metadata blocks */
	ck_assert_uint_eq(res.transaction_id, 5);
	ck_assert_uint_eq(res.metadata_free, 2029);
	ck_assert_uint_eq(res.nr_devices, 5);
	ck_assert_uint_gt(res.nr_mappings, 320);
	tm_dev_close(dev);
}
END_TEST

/* A free data block counted 1: a leak; repair frees it; nothing else moves. */
START_TEST(leak_repaired)
{
	struct tm_dev *dev = load("02-thins-snaps.meta.img");
	struct tm_check_opts o = { 0 };
	struct tm_check_result res;
	struct rec r;
	uint32_t j;

	if (!dev)
		return;
	uint64_t bm = bitmap0(dev, TM_SM_DATA);
	for (j = 4000; entry_get(dev, bm, j); j--)
		;
	entry_set(dev, bm, j, 1);
	uint64_t mbm = bitmap0(dev, TM_SM_METADATA);
	uint32_t mj;
	for (mj = 2000; entry_get(dev, mbm, mj); mj--)
		;
	entry_set(dev, mbm, mj, 2);

	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	ck_assert_uint_eq(r.by_code[TM_PR_DATA_LEAK], 1);
	ck_assert_uint_eq(r.by_code[TM_PR_META_LEAK], 1);
	ck_assert_uint_eq(res.nr_problems[TM_SEV_FATAL], 0);
	ck_assert_uint_eq(res.nr_fixable, 2);
	ck_assert_uint_eq(res.data_leaked, 1);
	ck_assert(!res.repaired);

	o.repair = 1;
	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	ck_assert(res.repaired);
	ck_assert_uint_eq(entry_get(dev, bm, j), 0);
	ck_assert_uint_eq(entry_get(dev, mbm, mj), 0);

	o.repair = 0;
	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	ck_assert_uint_eq(serious(&res), 0);
	tm_dev_close(dev);
}
END_TEST

/* A block in use counted too low: fatal, and nothing is written. */
START_TEST(undercount_refused)
{
	struct tm_dev *dev = load("05-msnap-held-powercut.meta.img");
	struct tm_check_opts o = { .repair = 1, .clear_needs_check = 1 };
	struct tm_check_result res;
	struct rec r;
	uint32_t j;

	if (!dev)
		return;
	uint64_t bm = bitmap0(dev, TM_SM_DATA);
	for (j = 0; entry_get(dev, bm, j) != 1; j++)
		;
	entry_set(dev, bm, j, 0);
	/* and a leak, which must not be repaired either */
	uint64_t mbm = bitmap0(dev, TM_SM_METADATA);
	entry_set(dev, mbm, 2000, 1);
	uint8_t *copy = malloc(dev->size_bytes);
	memcpy(copy, tm_dev_mem_data(dev), dev->size_bytes);

	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	ck_assert_uint_eq(r.by_code[TM_PR_DATA_UNDERCOUNT], 1);
	ck_assert_uint_eq(r.by_code[TM_PR_META_LEAK], 1);
	ck_assert_msg(strstr(r.last[TM_PR_DATA_UNDERCOUNT], "reference count 0 in the space map, but 1 references found"),
		      "%s", r.last[TM_PR_DATA_UNDERCOUNT]);
	ck_assert(!res.repaired);
	ck_assert(!memcmp(copy, tm_dev_mem_data(dev), dev->size_bytes));
	free(copy);
	tm_dev_close(dev);
}
END_TEST

START_TEST(needs_check)
{
	struct tm_dev *dev = load("03-msnap-held.meta.img");
	struct tm_check_result res;
	struct rec r;

	if (!dev)
		return;
	uint8_t *sb = mem_block(dev, 0);
	tm_put_le32(sb + TM_SB_OFF_FLAGS, TM_SB_FLAG_NEEDS_CHECK);
	reseal(dev, 0, TM_SALT_SUPERBLOCK);

	struct tm_check_opts plain = { 0 };
	ck_assert_int_eq(run_check(dev, &plain, &res, &r), 0);
	ck_assert_uint_eq(r.by_code[TM_PR_SB_NEEDS_CHECK], 1);
	ck_assert_uint_eq(serious(&res), 0);
	ck_assert_uint_eq(sb_of(dev).flags, TM_SB_FLAG_NEEDS_CHECK);

	struct tm_check_opts clear = { .sb_only = 1, .clear_needs_check = 1, .repair = 1 };
	ck_assert_int_eq(run_check(dev, &clear, &res, &r), 0);
	ck_assert(res.needs_check_cleared);
	ck_assert_uint_eq(sb_of(dev).flags, 0);
	ck_assert_int_eq(tm_block_validate(&tm_sb_validator, sb, 0, NULL), 0);

	/* the held snapshot is untouched by all this */
	ck_assert_int_eq(run_check(dev, &plain, &res, &r), 0);
	ck_assert_uint_eq(serious(&res), 0);
	ck_assert_uint_eq(r.by_code[TM_PR_SB_NEEDS_CHECK], 0);
	tm_dev_close(dev);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A device that changes block 0 after some reads, as a running pool
 * would; or that returns block 0 torn the first time. */

struct live_dev {
	struct tm_dev dev;
	struct tm_dev *inner;
	uint64_t reads, change_at;
	int torn_once;
};

static int live_read(struct tm_dev *d, uint64_t b, unsigned n, void *buf)
{
	struct live_dev *l = (struct live_dev *)d;
	int r;

	if (++l->reads == l->change_at) {
		uint8_t *sb = mem_block(l->inner, 0);
		tm_put_le64(sb + TM_SB_OFF_TRANS_ID, tm_le64(sb + TM_SB_OFF_TRANS_ID) + 1);
		reseal(l->inner, 0, TM_SALT_SUPERBLOCK);
	}
	r = tm_dev_read(l->inner, b, n, buf);
	if (!r && b == 0 && l->torn_once) {
		l->torn_once = 0;
		memset((uint8_t *)buf + 100, 0xee, 200);	/* half-written */
	}
	return r;
}

static int live_write(struct tm_dev *d, uint64_t b, unsigned n, const void *buf)
{
	return tm_dev_write(((struct live_dev *)d)->inner, b, n, buf);
}

static int live_flush(struct tm_dev *d)
{
	return tm_dev_flush(((struct live_dev *)d)->inner);
}

static void live_close(struct tm_dev *d)
{
	(void)d;
}

static const struct tm_dev_ops live_ops = { live_read, live_write, live_flush, live_close, NULL, NULL };

static void live_init(struct live_dev *l, struct tm_dev *inner)
{
	memset(l, 0, sizeof(*l));
	l->dev = *inner;
	l->dev.ops = &live_ops;
	l->inner = inner;
}

START_TEST(changed_during_check)
{
	struct tm_dev *dev = load("02-thins-snaps.meta.img");
	struct live_dev l;
	struct tm_check_result res;
	struct rec r;

	if (!dev)
		return;
	/* a leak too, to see that nothing is repaired on a moving target */
	entry_set(dev, bitmap0(dev, TM_SM_DATA), 4090, 1);
	live_init(&l, dev);
	l.change_at = 5;
	struct tm_check_opts o = { .detect_changes = 1, .repair = 1, .clear_needs_check = 1 };
	ck_assert_int_eq(run_check(&l.dev, &o, &res, &r), 0);
	ck_assert(res.changed);
	ck_assert_uint_eq(r.by_code[TM_PR_SB_CHANGED], 1);
	ck_assert(!res.repaired);
	ck_assert_uint_eq(entry_get(dev, bitmap0(dev, TM_SM_DATA), 4090), 1);

	/* unchanged: no such finding, and then the leak is repaired */
	live_init(&l, dev);
	ck_assert_int_eq(run_check(&l.dev, &o, &res, &r), 0);
	ck_assert(!res.changed && res.repaired);
	tm_dev_close(dev);
}
END_TEST

START_TEST(torn_superblock_read_again)
{
	struct tm_dev *dev = load("04-msnap-released.meta.img");
	struct live_dev l;
	struct tm_check_result res;
	struct rec r;

	if (!dev)
		return;
	live_init(&l, dev);
	l.torn_once = 1;
	struct tm_check_opts o = { .detect_changes = 1 };
	ck_assert_int_eq(run_check(&l.dev, &o, &res, &r), 0);
	ck_assert_uint_eq(serious(&res), 0);
	ck_assert(res.have_sb);
	tm_dev_close(dev);
}
END_TEST

/* Every read failing from the Nth on: a clean error, never "clean". */
START_TEST(failing_reads)
{
	struct tm_dev *dev = load("05-msnap-held-powercut.meta.img");
	struct tm_check_result res;
	struct rec r;
	uint64_t total;

	if (!dev)
		return;
	{
		struct tm_dev *f;
		ck_assert_int_eq(tm_dev_fault_wrap(dev, 0, 1, &f), 0);
		struct tm_check_opts o = { 0 };
		ck_assert_int_eq(run_check(f, &o, &res, &r), 0);
		total = tm_dev_fault_count(f);
		ck_assert_uint_eq(serious(&res), 0);
		/* the wrapper owns dev: take a fresh copy for each run */
		tm_dev_close(f);
	}
	for (uint64_t nth = 1; nth <= total; nth++) {
		struct tm_dev *d = load("05-msnap-held-powercut.meta.img"), *f;
		ck_assert_int_eq(tm_dev_fault_wrap(d, nth, 1, &f), 0);
		struct tm_check_opts o = { .detect_changes = 1 };
		int ret = run_check(f, &o, &res, &r);
		ck_assert_msg(ret == 0 || ret == -EIO, "read %llu: %d", (unsigned long long)nth, ret);
		ck_assert_msg(!res.have_sb || res.nr_problems[TM_SEV_FATAL] > 0,
			      "read %llu failed but the check found nothing", (unsigned long long)nth);
		tm_dev_close(f);
	}
}
END_TEST

/* Random damage: bytes flipped in blocks in use, checksums redone or not.
 * The check must end, with no crash (ASan/UBSan builds catch the rest). */
START_TEST(random_damage)
{
	static const uint32_t salts[] = { TM_SALT_BTREE_NODE, TM_SALT_BITMAP, TM_SALT_INDEX,
					  TM_SALT_SUPERBLOCK };
	struct tm_dev *orig = load("03-msnap-held.meta.img");
	uint64_t seed = 12345;

	if (!orig)
		return;
	uint64_t nr = orig->nr_blocks;
	uint64_t used[256];
	unsigned nused = 0;
	for (uint64_t b = 0; b < nr && nused < 256; b++)
		if (!tm_block_is_zero(mem_block(orig, b)))
			used[nused++] = b;
	for (int iter = 0; iter < 400; iter++) {
		struct tm_dev *dev;
		struct tm_check_result res;
		struct rec r;
		ck_assert_int_eq(tm_dev_mem_create(nr, &dev), 0);
		memcpy(tm_dev_mem_data(dev), tm_dev_mem_data(orig), nr * TM_BLOCK_SIZE);
		int flips = 1 + iter % 4;
		for (int k = 0; k < flips; k++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t b = used[(seed >> 33) % nused];
			unsigned off = (unsigned)((seed >> 13) % 512);	/* headers and first entries */
			uint8_t *p = mem_block(dev, b);
			p[off] ^= (uint8_t)(1u << ((seed >> 7) % 8));
			/* mostly a semantic change: checksum redone, salt kept */
			if ((seed >> 3) & 3) {
				const struct tm_validator *v = tm_block_identify(mem_block(orig, b));
				uint32_t salt = v ? v->salt : salts[(seed >> 40) % 4];
				tm_block_seal(p, tm_le64(p + 8), salt);
			}
		}
		struct tm_check_opts o = { .repair = iter % 3 == 0 };
		int ret = run_check(dev, &o, &res, &r);
		ck_assert_int_eq(ret, 0);
		if (iter % 5 == 0) {
			struct tm_check_opts m = { .metadata_snap = 1 };
			ck_assert_int_eq(run_check(dev, &m, &res, &r), 0);
		}
		tm_dev_close(dev);
	}
	tm_dev_close(orig);
}
END_TEST

/* Hostile sizes: a data space map of 2^39 blocks must not allocate 2^39
 * of anything. */
START_TEST(hostile_sizes)
{
	struct tm_dev *dev = load("02-thins-snaps.meta.img");
	struct tm_check_result res;
	struct rec r;

	if (!dev)
		return;
	uint8_t *sb = mem_block(dev, 0);
	tm_put_le64(sb + TM_SB_OFF_DATA_SM, 1ull << 39);
	reseal(dev, 0, TM_SALT_SUPERBLOCK);
	struct tm_check_opts o = { 0 };
	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	ck_assert_uint_gt(res.nr_problems[TM_SEV_FATAL], 0);
	ck_assert_uint_ge(r.by_code[TM_PR_SM_INDEX], 1);

	tm_put_le64(sb + TM_SB_OFF_DATA_SM, UINT64_MAX);
	tm_put_le64(sb + TM_SB_OFF_META_SM, UINT64_MAX);
	reseal(dev, 0, TM_SALT_SUPERBLOCK);
	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	ck_assert_uint_eq(r.by_code[TM_PR_SB_DATA_SM_SIZE], 1);
	ck_assert_uint_eq(r.by_code[TM_PR_SB_META_SM_SIZE], 1);
	tm_dev_close(dev);
}
END_TEST

/*
 * The hint nr_free of the last (here the only) metadata bitmap, on a
 * 2048-block device: the kernel counts all 16320 entries, the 14272 past
 * the end as free (sm_ll_extend starts a bitmap at 16320); the tools count
 * the 2048 in range.  Both pass; a hint that matches neither is a note
 * that compares it with the bitmap counted the same way and names the range.
 */
START_TEST(nr_free_hint_counted_alike)
{
	struct tm_dev *dev = load("02-thins-snaps.meta.img");
	struct tm_check_opts o = { 0 };
	struct tm_check_result res;
	struct rec r;

	if (!dev)
		return;
	uint64_t ib = sb_of(dev).meta_sm.bitmap_root;
	uint8_t *nf = mem_block(dev, ib) + 16 + 8;	/* entry 0's nr_free */
	ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
	ck_assert_uint_eq(r.by_code[TM_PR_SM_NR_FREE], 0);
	ck_assert_uint_eq(res.metadata_free, 2029);
	ck_assert_uint_eq(tm_le32(nf), 2029 + (16320 - 2048));	/* the kernel's way */

	static const struct {
		uint32_t nr_free;
		const char *note;	/* NULL: none */
	} cases[] = {
		{ 2029, NULL },		/* the tools' way */
		{ 16300, "metadata space map index entry 0: nr_free 16300, the bitmap has 16301 "
			 "free entries of its 16320, counting the 14272 past the end of the space "
			 "map (block 2048 on) as the kernel does" },
		{ 2028, "metadata space map index entry 0: nr_free 2028, the bitmap has 2029 "
			"free entries among its 2048 within the space map (blocks 0-2047)" },
		{ 1500, "nr_free 1500, the bitmap has 2029 free entries among its 2048" },
		{ 3000, "nr_free 3000, the bitmap has 16301 free entries of its 16320" },
		{ 9500, "nr_free 9500, the bitmap has 16301 free entries of its 16320" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		tm_put_le32(nf, cases[k].nr_free);
		reseal(dev, ib, TM_SALT_INDEX);
		ck_assert_int_eq(run_check(dev, &o, &res, &r), 0);
		ck_assert_uint_eq(serious(&res), 0);
		ck_assert_uint_eq(r.by_code[TM_PR_SM_NR_FREE], cases[k].note ? 1 : 0);
		if (cases[k].note)
			ck_assert_msg(strstr(r.last[TM_PR_SM_NR_FREE], cases[k].note),
				      "%s", r.last[TM_PR_SM_NR_FREE]);
	}
	tm_dev_close(dev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("check");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, table_sane);
	tcase_add_test(tc, format_where_and_cost);
	tcase_add_test(tc, counters);
	tcase_add_test(tc, clean_kernel_fixtures);
	tcase_add_test(tc, fixture_02_counts);
	tcase_add_test(tc, leak_repaired);
	tcase_add_test(tc, undercount_refused);
	tcase_add_test(tc, needs_check);
	tcase_add_test(tc, changed_during_check);
	tcase_add_test(tc, torn_superblock_read_again);
	tcase_add_test(tc, failing_reads);
	tcase_add_test(tc, random_damage);
	tcase_add_test(tc, hostile_sizes);
	tcase_add_test(tc, nr_free_hint_counted_alike);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
