/*
 * test_faults.c - every I/O failure point of the four writers (issue 9).
 *
 * Each writer runs on a fault-injecting device (io.h, tm_dev_fault_wrap)
 * that fails the Nth read, write (flushes count as writes) or either, and
 * every later one, for every N of a run: N = 1 .. the number of such calls
 * a fault-free run makes.  What must hold at every point:
 *
 *   restore  (the builder, thin_restore's back end; the output held an
 *            older pool): an error with a message; the output is either
 *            byte-identical to before or holds no valid superblock, or -
 *            only when the very last flush, after the superblock, failed -
 *            exactly the metadata asked for.
 *   repair   (tm_salvage + tm_salvage_emit into the builder: thin_repair):
 *            faults on the output as for restore; faults on the input
 *            (reads): an error, with the output as for restore, or a
 *            salvage whose output passes the check and maps nothing the
 *            fault-free repair does not map the same way.
 *   check    (tm_check with repair set: thin_check --auto-repair, on a pool
 *            with leaks in two data bitmaps and the metadata space map):
 *            the mappings are untouched; no fatal problem appears; the
 *            device is byte-identical to before, or fully repaired, or holds
 *            only leaks that a second, fault-free run repairs.
 *   pool     (tm_pool: thin_pool; two transactions, each committed: a
 *            snapshot, copy-on-write writes, discards, a delete, a
 *            metadata snapshot reserved and released, a transaction id):
 *            an error with a message; the device holds exactly one
 *            committed state (its dump, live and held snapshot, equals the
 *            state before, after commit 1 or after commit 2), whose
 *            reference counts check clean (needs_check may be set).
 *
 * The tools' own device code (file open, O_DIRECT, rename) has no
 * injection point: these sweeps exercise the engine entry points the tools
 * call, on the same paths.  The number of failure points tried is printed.
 */
#include <errno.h>
#include <stdarg.h>

#include "unit_util.h"
#include "thinmeta/builder.h"
#include "thinmeta/check.h"
#include "thinmeta/dump.h"
#include "thinmeta/pool.h"
#include "thinmeta/repair.h"
#include "thinmeta/space_map.h"

#define NB 512			/* blocks of every metadata device here */

/* ------------------------------------------------------------------ */
/* Devices */

static struct tm_dev *mem_copy(const uint8_t *bytes)
{
	struct tm_dev *d;

	ck_assert_int_eq(tm_dev_mem_create(NB, &d), 0);
	memcpy(tm_dev_mem_data(d), bytes, (size_t)NB * TM_BLOCK_SIZE);
	return d;
}

static uint8_t *snapshot_bytes(struct tm_dev *mem)
{
	uint8_t *b = malloc((size_t)NB * TM_BLOCK_SIZE);

	ck_assert_ptr_nonnull(b);
	memcpy(b, tm_dev_mem_data(mem), (size_t)NB * TM_BLOCK_SIZE);
	return b;
}

static int same_bytes(struct tm_dev *mem, const uint8_t *bytes)
{
	return !memcmp(tm_dev_mem_data(mem), bytes, (size_t)NB * TM_BLOCK_SIZE);
}

static int sb_valid(struct tm_dev *mem)
{
	struct tm_error e;

	return tm_block_validate(&tm_sb_validator, mem_block(mem, 0), 0, &e) == 0;
}

/* ------------------------------------------------------------------ */
/* A pool's content as text: the canonical dump (shared leaves expanded),
 * live and held snapshot, without the superblock's flags (needs_check). */

struct text {
	char *s;
	size_t len, cap;
};

static int tput(struct text *t, const char *fmt, ...)
{
	va_list ap;
	char line[256];

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (t->len + (size_t)n + 1 > t->cap) {
		t->cap = (t->len + (size_t)n + 1) * 2;
		t->s = realloc(t->s, t->cap);
		ck_assert_ptr_nonnull(t->s);
	}
	memcpy(t->s + t->len, line, (size_t)n + 1);
	t->len += (size_t)n;
	return 0;
}

static int t_sb(void *ctx, const struct tm_ir_superblock *sb)
{
	return tput(ctx, "sb time %u trans %llu dbs %u ndb %llu msnap %llu\n", sb->time,
		    (unsigned long long)sb->transaction, sb->data_block_size,
		    (unsigned long long)sb->nr_data_blocks, (unsigned long long)sb->metadata_snap);
}
static int t_sb_end(void *ctx) { return tput(ctx, "end\n"); }
static int t_def(void *ctx, const char *name) { return tput(ctx, "def %s\n", name); }
static int t_def_end(void *ctx) { return tput(ctx, "def end\n"); }
static int t_ref(void *ctx, const char *name) { return tput(ctx, "ref %s\n", name); }
static int t_dev_end(void *ctx) { return tput(ctx, "dev end\n"); }
static int t_dev(void *ctx, const struct tm_ir_device *d)
{
	return tput(ctx, "dev %llu mapped %llu trans %llu ct %u st %u\n",
		    (unsigned long long)d->dev_id, (unsigned long long)d->mapped_blocks,
		    (unsigned long long)d->transaction, d->creation_time, d->snap_time);
}
static int t_run(void *ctx, const struct tm_ir_run *r)
{
	return tput(ctx, "run %llu %llu %llu %u\n", (unsigned long long)r->origin_begin,
		    (unsigned long long)r->data_begin, (unsigned long long)r->length, r->time);
}

static void text_sink(struct text *t, struct tm_ir_sink *s)
{
	memset(t, 0, sizeof(*t));
	s->ctx = t;
	s->superblock_begin = t_sb;
	s->superblock_end = t_sb_end;
	s->def_begin = t_def;
	s->def_end = t_def_end;
	s->device_begin = t_dev;
	s->device_end = t_dev_end;
	s->ref = t_ref;
	s->run = t_run;
}

/* The content of the metadata in @bytes (a fresh copy is read), or NULL. */
static char *content(const uint8_t *bytes)
{
	struct tm_dev *d = mem_copy(bytes);
	struct tm_bm *bm;
	struct tm_dump_opts o = { 0 };
	struct tm_ir_sink s;
	struct tm_error e;
	struct text t;
	int r;

	ck_assert_int_eq(tm_bm_create(d, 0, &bm), 0);
	text_sink(&t, &s);
	o.expand_shared = 1;
	r = tm_dump(bm, &o, &s, &e);
	if (!r && tm_le64(bytes + TM_SB_OFF_HELD_ROOT)) {
		tput(&t, "held snapshot\n");
		o.metadata_snap = 1;
		r = tm_dump(bm, &o, &s, &e);
	}
	tm_bm_destroy(bm);
	tm_dev_close(d);
	if (r) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

static void show_problem(void *ctx, const struct tm_problem *p)
{
	(void)ctx;
	if (getenv("FAULTS_DEBUG"))
	{
		char line[512];
		tm_problem_format(p, line, sizeof(line));
		fprintf(stderr, "problem: %s\n", line);
	}
}

/* tm_check without repair on a copy of @bytes: fatal + non-fatal findings. */
static uint64_t findings(const uint8_t *bytes, uint64_t *fatal)
{
	struct tm_dev *d = mem_copy(bytes);
	struct tm_bm *bm;
	struct tm_check_opts o = { 0 };
	struct tm_check_callbacks cb = { 0 };
	struct tm_check_result res;
	struct tm_error e;

	cb.problem = show_problem;
	ck_assert_int_eq(tm_bm_create(d, 0, &bm), 0);
	memset(&res, 0, sizeof(res));
	ck_assert_int_eq(tm_check(bm, &o, &cb, &res, &e), 0);
	tm_bm_destroy(bm);
	tm_dev_close(d);
	if (fatal)
		*fatal = res.nr_problems[TM_SEV_FATAL];
	return res.nr_problems[TM_SEV_FATAL] + res.nr_problems[TM_SEV_NONFATAL];
}

static void report_points(const char *what, unsigned which, uint64_t points, const char *outcomes)
{
	static const char *const kind[] = { "", "reads", "writes", "reads+writes" };

	printf("faults: %-8s %-13s %4llu failure points tried (%s)\n", what, kind[which],
	       (unsigned long long)points, outcomes);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* The pool thin_restore is asked to write: four devices, two of them
 * sharing a def, mappings in all three data bitmaps. */

static int feed(const struct tm_ir_sink *s, int variant)
{
	struct tm_ir_superblock sb = { 0 };
	struct tm_ir_device d = { 0 };
	struct tm_ir_run shared = { 0, 100, 300, 1 };
	int r;

	sb.data_block_size = 128;
	sb.nr_data_blocks = 40000;
	sb.transaction = 7 + (uint64_t)variant;
	sb.time = 3;
	if ((r = s->superblock_begin(s->ctx, &sb)) || (r = s->def_begin(s->ctx, "d")) ||
	    (r = s->run(s->ctx, &shared)) || (r = s->def_end(s->ctx)))
		return r;
	for (d.dev_id = 0; d.dev_id < (variant ? 2u : 4u); d.dev_id++) {
		d.creation_time = (uint32_t)d.dev_id;
		if ((r = s->device_begin(s->ctx, &d)))
			return r;
		if (d.dev_id < 2 && (r = s->ref(s->ctx, "d")))
			return r;
		/* scattered runs: many leaves, data in every bitmap */
		for (uint64_t i = 0; i < 40; i++) {
			struct tm_ir_run run = { 1000 + i * 50, 1000 + d.dev_id * 9000 + i * 230,
						 1 + (i * 7 + d.dev_id) % 20, (uint32_t)(i % 4) };
			if ((r = s->run(s->ctx, &run)))
				return r;
		}
		if ((r = s->device_end(s->ctx)))
			return r;
	}
	return s->superblock_end(s->ctx);
}

/* Build @variant on @dev; 0 or the error, with a message in @msg. */
static int build(struct tm_dev *dev, int variant, char *msg, size_t msgsz)
{
	struct tm_bm *bm;
	struct tm_builder *b;
	struct tm_ir_sink sink;
	struct tm_builder_opts bo = { .recount_mapped_blocks = 1 };
	struct tm_error e;
	int r;

	tm_error_clear(&e);
	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	r = tm_builder_create(bm, &bo, &b, &e);
	if (!r) {
		tm_builder_sink(b, &sink);
		r = feed(&sink, variant);
		if (r)
			e = *tm_builder_error(b);
		else
			r = tm_builder_finish(b, &e);
		tm_builder_destroy(b);
	}
	tm_bm_destroy(bm);
	snprintf(msg, msgsz, "%s", e.msg);
	return r;
}

/*
 * After a failed write of new metadata onto @out (which held @before): the
 * output is as it was, or holds no valid superblock, or holds exactly
 * @want (a failed flush after the superblock).  Counts the outcome.
 */
static void judge_output(struct tm_dev *out, const uint8_t *before, const char *want,
			 uint64_t n, uint64_t counts[3])
{
	if (same_bytes(out, before)) {
		counts[0]++;
	} else if (!sb_valid(out)) {
		counts[1]++;
	} else {
		uint8_t *now = snapshot_bytes(out);
		char *c = content(now);
		ck_assert_msg(c && !strcmp(c, want),
			      "failure %llu left a valid superblock over other metadata",
			      (unsigned long long)n);
		ck_assert_uint_eq(findings(now, NULL), 0);
		free(c);
		free(now);
		counts[2]++;
	}
}

/* ------------------------------------------------------------------ */

START_TEST(restore_faults)
{
	unsigned which = (unsigned)_i;
	struct tm_dev *mem, *f;
	char msg[256], *want;
	uint8_t *before, *good;
	uint64_t total, counts[3] = { 0 };

	/* the output holds an older pool; a fault-free restore over it */
	ck_assert_int_eq(tm_dev_mem_create(NB, &mem), 0);
	ck_assert_int_eq(build(mem, 1, msg, sizeof(msg)), 0);
	before = snapshot_bytes(mem);
	ck_assert_int_eq(tm_dev_fault_wrap(mem, 0, which, &f), 0);
	ck_assert_int_eq(build(f, 0, msg, sizeof(msg)), 0);
	total = tm_dev_fault_count(f);
	good = snapshot_bytes(mem);
	tm_dev_close(f);
	want = content(good);
	ck_assert_ptr_nonnull(want);
	ck_assert_uint_eq(findings(good, NULL), 0);
	if (which != 1)
		ck_assert_uint_gt(total, 3);

	for (uint64_t n = 1; n <= total; n++) {
		mem = mem_copy(before);
		ck_assert_int_eq(tm_dev_fault_wrap(mem, n, which, &f), 0);
		int r = build(f, 0, msg, sizeof(msg));
		ck_assert_msg(r == -EIO, "failure %llu: got %d", (unsigned long long)n, r);
		ck_assert_msg(msg[0], "failure %llu: no message", (unsigned long long)n);
		judge_output(mem, before, want, n, counts);
		tm_dev_close(f);
	}
	char o[128];
	snprintf(o, sizeof(o), "%llu unchanged, %llu no superblock, %llu complete",
		 (unsigned long long)counts[0], (unsigned long long)counts[1],
		 (unsigned long long)counts[2]);
	report_points("restore", which, total, o);
	free(want);
	free(good);
	free(before);
}
END_TEST

/* ------------------------------------------------------------------ */
/* thin_repair: salvage @in, build onto @out, as repair/thin_repair.c does. */

static int repair(struct tm_dev *in, struct tm_dev *out, char *msg, size_t msgsz)
{
	struct tm_bm *ibm, *obm;
	struct tm_salvage *s = NULL;
	struct tm_builder *b;
	struct tm_ir_sink sink;
	struct tm_builder_opts bo = { .recount_mapped_blocks = 1 };
	struct tm_salvage_emit_opts eo = { 0 };
	struct tm_error e;
	int r;

	tm_error_clear(&e);
	ck_assert_int_eq(tm_bm_create(in, 0, &ibm), 0);
	ck_assert_int_eq(tm_bm_create(out, 0, &obm), 0);
	r = tm_salvage(ibm, NULL, &s, &e);
	if (!r) {
		r = tm_builder_create(obm, &bo, &b, &e);
		if (!r) {
			tm_builder_sink(b, &sink);
			r = tm_salvage_emit(s, &eo, &sink, &e);
			if (r && tm_builder_error(b)->err)
				e = *tm_builder_error(b);
			if (!r)
				r = tm_builder_finish(b, &e);
			tm_builder_destroy(b);
		}
	}
	tm_salvage_free(s);
	tm_bm_destroy(obm);
	tm_bm_destroy(ibm);
	snprintf(msg, msgsz, "%s", e.msg);
	return r;
}

/* Each "run" line of @got is one of @want's (same device, same values). */
static int runs_within(const char *got, const char *want)
{
	/* the mappings per device, expanded */
	struct m { uint64_t dev, v, d; uint32_t t; };
	struct m *a = NULL;
	size_t na = 0, cap = 0;
	uint64_t dev = 0;
	const char *p;

	for (p = want; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		unsigned long long x, y, z;
		unsigned t;
		if (sscanf(p, "dev %llu", &x) == 1)
			dev = x;
		if (!strncmp(p, "held", 4))
			break;
		if (sscanf(p, "run %llu %llu %llu %u", &x, &y, &z, &t) == 4)
			for (uint64_t i = 0; i < z; i++) {
				if (na == cap) {
					cap = cap ? cap * 2 : 1024;
					a = realloc(a, cap * sizeof(*a));
				}
				a[na++] = (struct m){ dev, x + i, y + i, t };
			}
	}
	for (p = got; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		unsigned long long x, y, z;
		unsigned t;
		if (sscanf(p, "dev %llu", &x) == 1)
			dev = x;
		if (sscanf(p, "run %llu %llu %llu %u", &x, &y, &z, &t) == 4)
			for (uint64_t i = 0; i < z; i++) {
				size_t k;
				for (k = 0; k < na; k++)
					if (a[k].dev == dev && a[k].v == x + i)
						break;
				if (k == na || a[k].d != y + i || a[k].t != t) {
					free(a);
					return 0;
				}
			}
	}
	free(a);
	return 1;
}

/* @which: which I/O of the output fails; 4: reads of the input fail. */
START_TEST(repair_faults)
{
	unsigned which = (unsigned)_i;
	struct tm_dev *in, *out, *f;
	char msg[256], *want;
	uint8_t *src, *before, *good;
	uint64_t total, counts[4] = { 0 };

	ck_assert_int_eq(tm_dev_mem_create(NB, &in), 0);
	ck_assert_int_eq(build(in, 0, msg, sizeof(msg)), 0);
	src = snapshot_bytes(in);
	tm_dev_close(in);
	ck_assert_int_eq(tm_dev_mem_create(NB, &out), 0);
	ck_assert_int_eq(build(out, 1, msg, sizeof(msg)), 0);
	before = snapshot_bytes(out);

	/* fault-free, counting */
	in = mem_copy(src);
	if (which == 4) {
		ck_assert_int_eq(tm_dev_fault_wrap(in, 0, 1, &f), 0);
		ck_assert_int_eq(repair(f, out, msg, sizeof(msg)), 0);
		total = tm_dev_fault_count(f);
		tm_dev_close(f);
		good = snapshot_bytes(out);
		tm_dev_close(out);
	} else {
		ck_assert_int_eq(tm_dev_fault_wrap(out, 0, which, &f), 0);
		ck_assert_int_eq(repair(in, f, msg, sizeof(msg)), 0);
		total = tm_dev_fault_count(f);
		good = snapshot_bytes(out);
		tm_dev_close(f);
		tm_dev_close(in);
	}
	want = content(good);
	ck_assert_ptr_nonnull(want);
	ck_assert_uint_eq(findings(good, NULL), 0);
	if (which != 1)
		ck_assert_uint_gt(total, 3);

	for (uint64_t n = 1; n <= total; n++) {
		int r;
		in = mem_copy(src);
		out = mem_copy(before);
		if (which == 4) {
			ck_assert_int_eq(tm_dev_fault_wrap(in, n, 1, &f), 0);
			r = repair(f, out, msg, sizeof(msg));
		} else {
			ck_assert_int_eq(tm_dev_fault_wrap(out, n, which, &f), 0);
			r = repair(in, f, msg, sizeof(msg));
		}
		if (which == 4 && r == 0) {
			/* salvaged around the unreadable blocks: nothing wrong */
			uint8_t *now = snapshot_bytes(out);
			char *c = content(now);
			ck_assert_msg(c && runs_within(c, want),
				      "read failure %llu: the repair maps something else",
				      (unsigned long long)n);
			ck_assert_uint_eq(findings(now, NULL), 0);
			counts[3]++;
			free(c);
			free(now);
		} else {
			ck_assert_msg(r < 0, "failure %llu: no error", (unsigned long long)n);
			ck_assert_msg(msg[0], "failure %llu: no message", (unsigned long long)n);
			judge_output(out, before, want, n, counts);
		}
		if (which == 4) {
			tm_dev_close(f);
			tm_dev_close(out);
		} else {
			tm_dev_close(f);
			tm_dev_close(in);
		}
	}
	char o[160];
	snprintf(o, sizeof(o), "%llu unchanged, %llu no superblock, %llu complete, "
		 "%llu salvaged around",
		 (unsigned long long)counts[0], (unsigned long long)counts[1],
		 (unsigned long long)counts[2], (unsigned long long)counts[3]);
	report_points(which == 4 ? "repair-in" : "repair", which == 4 ? 1 : which, total, o);
	free(want);
	free(good);
	free(before);
	free(src);
}
END_TEST

/* ------------------------------------------------------------------ */
/* thin_check --auto-repair */

static uint64_t sm_bitmap(struct tm_dev *dev, enum tm_sm_kind kind, unsigned i)
{
	struct tm_superblock sb;
	struct tm_sm_disk sm;
	struct tm_error e;
	struct tm_bm *bm;

	tm_sb_decode(mem_block(dev, 0), &sb);
	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	ck_assert_int_eq(tm_sm_disk_open(bm, kind, kind == TM_SM_DATA ? &sb.data_sm : &sb.meta_sm,
					 &sm, &e), 0);
	ck_assert_uint_gt(sm.nr_bitmaps, i);
	uint64_t b = sm.index[i].blocknr;
	tm_sm_disk_close(&sm);
	tm_bm_destroy(bm);
	return b;
}

/* Count a free entry near @from of bitmap @bmb as @v. */
static void leak(struct tm_dev *dev, uint64_t bmb, uint32_t from, unsigned v)
{
	uint32_t j;

	for (j = from; tm_bitmap_get(mem_block(dev, bmb), j); j--)
		;
	tm_bitmap_set(mem_block(dev, bmb), j, v);
	reseal(dev, bmb, TM_SALT_BITMAP);
}

static int auto_repair(struct tm_dev *dev, struct tm_check_result *res, char *msg, size_t msgsz)
{
	struct tm_bm *bm;
	struct tm_check_opts o = { 0 };
	struct tm_check_callbacks cb = { 0 };
	struct tm_error e;
	int r;

	o.repair = 1;
	o.detect_changes = 1;
	tm_error_clear(&e);
	memset(res, 0, sizeof(*res));
	ck_assert_int_eq(tm_bm_create(dev, 0, &bm), 0);
	r = tm_check(bm, &o, &cb, res, &e);
	tm_bm_destroy(bm);
	snprintf(msg, msgsz, "%s", e.msg);
	return r;
}

START_TEST(auto_repair_faults)
{
	unsigned which = (unsigned)_i;
	struct tm_dev *mem, *f;
	struct tm_check_result res;
	char msg[256], *want;
	uint8_t *before;
	uint64_t total, fatal, counts[4] = { 0 };

	ck_assert_int_eq(tm_dev_mem_create(NB, &mem), 0);
	ck_assert_int_eq(build(mem, 0, msg, sizeof(msg)), 0);
	leak(mem, sm_bitmap(mem, TM_SM_DATA, 0), 16000, 1);
	leak(mem, sm_bitmap(mem, TM_SM_DATA, 2), 7000, 2);
	leak(mem, sm_bitmap(mem, TM_SM_METADATA, 0), NB - 1, 1);
	before = snapshot_bytes(mem);
	want = content(before);
	ck_assert_ptr_nonnull(want);
	/* the three leaks (and index entries that disagree with their bitmaps) */
	ck_assert_uint_ge(findings(before, &fatal), 3);
	ck_assert_uint_eq(fatal, 0);

	ck_assert_int_eq(tm_dev_fault_wrap(mem, 0, which, &f), 0);
	ck_assert_int_eq(auto_repair(f, &res, msg, sizeof(msg)), 0);
	ck_assert(res.repaired);
	total = tm_dev_fault_count(f);
	tm_dev_close(f);
	ck_assert_uint_gt(total, 3);

	for (uint64_t n = 1; n <= total; n++) {
		mem = mem_copy(before);
		ck_assert_int_eq(tm_dev_fault_wrap(mem, n, which, &f), 0);
		int r = auto_repair(f, &res, msg, sizeof(msg));
		/* a failure: an error (-EIO, message), or findings (reads) */
		ck_assert_msg(r == 0 || r == -EIO, "failure %llu: %d", (unsigned long long)n, r);
		if (r)
			ck_assert_msg(msg[0], "failure %llu: no message", (unsigned long long)n);
		else
			ck_assert_msg(res.nr_problems[TM_SEV_FATAL] > 0 || !res.have_sb,
				      "failure %llu: the check saw nothing", (unsigned long long)n);
		uint8_t *now = snapshot_bytes(mem);
		tm_dev_close(f);
		char *c = content(now);
		ck_assert_msg(c && !strcmp(c, want), "failure %llu changed the mappings",
			      (unsigned long long)n);
		free(c);
		uint64_t left = findings(now, &fatal);
		ck_assert_msg(fatal == 0, "failure %llu left a fatal problem", (unsigned long long)n);
		if (!memcmp(now, before, (size_t)NB * TM_BLOCK_SIZE)) {
			counts[0]++;
		} else if (!left) {
			counts[1]++;
		} else {
			/* part of the leaks fixed: a second run fixes the rest */
			struct tm_dev *again = mem_copy(now);
			ck_assert_int_eq(auto_repair(again, &res, msg, sizeof(msg)), 0);
			uint8_t *fixed = snapshot_bytes(again);
			ck_assert_uint_eq(findings(fixed, NULL), 0);
			free(fixed);
			tm_dev_close(again);
			counts[2]++;
		}
		free(now);
	}
	char o[128];
	snprintf(o, sizeof(o), "%llu unchanged, %llu repaired, %llu leaks left",
		 (unsigned long long)counts[0], (unsigned long long)counts[1],
		 (unsigned long long)counts[2]);
	report_points("check", which, total, o);
	free(want);
	free(before);
}
END_TEST

/* ------------------------------------------------------------------ */
/* thin_pool */

static void pool_setup(struct tm_dev *mem)
{
	struct tm_pool *p;
	struct tm_error e;
	enum tm_provision w;
	uint64_t b;

	ck_assert_int_eq(tm_pool_format(mem, 128, 20000, &p, &e), 0);
	ck_assert_int_eq(tm_pool_create_thin(p, 0, &e), 0);
	for (uint64_t v = 0; v < 700; v++)
		ck_assert_int_eq(tm_pool_write(p, 0, v * 3, &w, &b, &e), 0);
	ck_assert_int_eq(tm_pool_create_snap(p, 1, 0, &e), 0);
	ck_assert_int_eq(tm_pool_create_thin(p, 2, &e), 0);
	for (uint64_t v = 0; v < 300; v++)
		ck_assert_int_eq(tm_pool_write(p, 2, v, &w, &b, &e), 0);
	ck_assert_int_eq(tm_pool_reserve_metadata_snap(p, &e), 0);
	ck_assert_int_eq(tm_pool_commit(p, &e), 0);
	tm_pool_close(p);
}

/*
 * The commits seen by the hook: with @mem set (a fault-free run), the
 * content of the device after each (the states a failure may leave).
 */
struct commits {
	int n;
	struct tm_dev *mem;
	char *state[16];
};

static void on_commit(void *ctx, int phase, const struct tm_superblock *sb)
{
	struct commits *c = ctx;

	(void)sb;
	if (phase != 1)
		return;
	ck_assert_int_lt(c->n, 15);
	c->n++;
	if (c->mem) {
		uint8_t *now = snapshot_bytes(c->mem);
		c->state[c->n] = content(now);
		ck_assert_ptr_nonnull(c->state[c->n]);
		ck_assert_uint_eq(findings(now, NULL), 0);
		free(now);
	}
}

/* The two transactions (and the commits the messages make). */
static int pool_work(struct tm_dev *dev, struct commits *cm, char *msg, size_t msgsz)
{
	struct tm_pool *p = NULL;
	struct tm_error e;
	enum tm_provision w;
	uint64_t b, n;
	int r;

	tm_error_clear(&e);
	r = tm_pool_open(dev, &p, &e);
	if (r)
		goto out;
	tm_pool_set_commit_hook(p, on_commit, cm);
	/* 1: copy-on-write under a new snapshot, discards, a delete */
	r = tm_pool_create_snap(p, 3, 0, &e);
	for (uint64_t v = 0; !r && v < 200; v++)
		r = tm_pool_write(p, 0, v * 5, &w, &b, &e);
	if (!r)
		r = tm_pool_discard(p, 1, 100, 900, &n, &e);
	if (!r)
		r = tm_pool_delete(p, 2, &e);
	if (!r)
		r = tm_pool_commit(p, &e);
	/* 2: the metadata snapshot released and taken again, more writes */
	if (!r)
		r = tm_pool_release_metadata_snap(p, &e);
	for (uint64_t v = 0; !r && v < 150; v++)
		r = tm_pool_write(p, 3, 2000 + v, &w, &b, &e);
	if (!r)
		r = tm_pool_set_transaction_id(p, tm_pool_transaction_id(p),
					       tm_pool_transaction_id(p) + 1, &e);
	if (!r)
		r = tm_pool_reserve_metadata_snap(p, &e);
	for (uint64_t v = 0; !r && v < 50; v++)
		r = tm_pool_write(p, 1, 5000 + v, &w, &b, &e);
	if (!r)
		r = tm_pool_commit(p, &e);
out:
	if (p)
		tm_pool_close(p);
	snprintf(msg, msgsz, "%s", e.msg);
	return r;
}

START_TEST(pool_faults)
{
	unsigned which = (unsigned)_i;
	struct tm_dev *mem, *f;
	struct commits ok = { 0 };
	char msg[256];
	uint8_t *before;
	uint64_t total, nr_landed = 0, failed_in[16] = { 0 };

	ck_assert_int_eq(tm_dev_mem_create(NB, &mem), 0);
	pool_setup(mem);
	before = snapshot_bytes(mem);
	ok.state[0] = content(before);
	ck_assert_ptr_nonnull(ok.state[0]);

	/* fault-free: every committed state */
	ok.mem = mem;
	ck_assert_int_eq(tm_dev_fault_wrap(mem, 0, which, &f), 0);
	ck_assert_int_eq(pool_work(f, &ok, msg, sizeof(msg)), 0);
	total = tm_dev_fault_count(f);
	tm_dev_close(f);
	ck_assert_int_ge(ok.n, 3);
	for (int i = 1; i <= ok.n; i++)
		ck_assert_str_ne(ok.state[i - 1], ok.state[i]);
	ck_assert_uint_gt(total, 10);

	for (uint64_t n = 1; n <= total; n++) {
		struct commits cm = { 0 };
		mem = mem_copy(before);
		ck_assert_int_eq(tm_dev_fault_wrap(mem, n, which, &f), 0);
		int r = pool_work(f, &cm, msg, sizeof(msg));
		uint8_t *now = snapshot_bytes(mem);
		tm_dev_close(f);
		ck_assert_msg(r < 0, "failure %llu: no error", (unsigned long long)n);
		ck_assert_msg(msg[0], "failure %llu: no message", (unsigned long long)n);
		ck_assert_int_lt(cm.n, ok.n);
		char *c = content(now);
		ck_assert_msg(c, "failure %llu: the device cannot be dumped", (unsigned long long)n);
		/* the last commit, or the one that failed after its superblock */
		int landed = !strcmp(c, ok.state[cm.n + 1]);
		ck_assert_msg(landed || !strcmp(c, ok.state[cm.n]),
			      "failure %llu: after %d commits the device holds another state",
			      (unsigned long long)n, cm.n);
		ck_assert_msg(findings(now, NULL) == 0, "failure %llu: the check finds problems",
			      (unsigned long long)n);
		if (landed)
			nr_landed++;
		else
			failed_in[cm.n]++;
		free(c);
		free(now);
	}
	char o[256];
	int len = snprintf(o, sizeof(o), "%d commits; failed in commit", ok.n);
	for (int i = 0; i < ok.n; i++)
		len += snprintf(o + len, sizeof(o) - (size_t)len, " %d: %llu,", i + 1,
				(unsigned long long)failed_in[i]);
	snprintf(o + len, sizeof(o) - (size_t)len, " after its superblock: %llu",
		 (unsigned long long)nr_landed);
	report_points("pool", which, total, o);
	for (int i = 0; i <= ok.n; i++)
		free(ok.state[i]);
	free(before);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("faults");

	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, restore_faults, 1, 4);
	tcase_add_loop_test(tc, repair_faults, 1, 5);
	tcase_add_loop_test(tc, auto_repair_faults, 1, 4);
	tcase_add_loop_test(tc, pool_faults, 1, 4);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
