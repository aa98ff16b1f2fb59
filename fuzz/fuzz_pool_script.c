/*
 * fuzz_pool_script.c - libFuzzer target: a thin_pool script (the input,
 * line by line) through thin_pool's own command interpreter
 * (pool/script.c: the line parser, each command's arguments, the engine's
 * pool operations) on an in-memory metadata device of FZ_POOL_BLOCKS
 * blocks, without a data file.
 *
 * Invariants (each broken one aborts, see fuzz.h):
 *   - a line refused as misuse (CMD_USAGE) writes nothing;
 *   - every commit (the superblock changed) leaves metadata that our
 *     checker passes with nothing fatal and nothing non-fatal, whose held
 *     snapshot (if any) it passes too (but for the data block leaked
 *     when the pool runs out of metadata space, as the kernel leaks it),
 *     and that tm_dump reads; when the
 *     pool holds nothing uncommitted, the dump lists the pool's devices
 *     with their mapped_blocks and transaction ids;
 *   - the end of the script commits as thin_pool does, and is checked.
 * The interpreter's messages (stdout and stderr, through stdio) go to
 * /dev/null; the sanitizers and libFuzzer write to file descriptor 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pool_tool.h"
#include "script.h"
#include "thinmeta/block.h"
#include "thinmeta/check.h"
#include "thinmeta/dump.h"
#include "thinmeta/format.h"
#include "thinmeta/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_POOL_BLOCKS 256u	/* 1 MiB of metadata: every allocation is bounded */
#define MAX_LINE 1024u

static FILE *null_out;

struct sb_copy {
	uint8_t b[TM_BLOCK_SIZE];
};

static const char *first_problem(const struct tm_check_result *res)
{
	for (int k = 0; k < TM_PR__COUNT; k++)
		if (res->nr_by_code[k] && tm_problem_info(k)->severity >= TM_SEV_NONFATAL)
			return tm_problem_info(k)->name;
	return "?";
}

/* Nothing fatal or non-fatal in the committed metadata; the dump reads it. */
static void verify_commit(struct pctx *c, uint64_t lineno)
{
	struct tm_bm *bm;
	struct tm_error e;
	int r;

	if (tm_bm_create(c->dev, 64, &bm))
		abort();
	for (int snap = 0; snap < 2; snap++) {
		struct tm_check_opts o = { 0 };
		struct tm_check_result res;
		struct tm_check_callbacks cb = { 0 };

		o.metadata_snap = snap;
		memset(&res, 0, sizeof(res));
		tm_error_clear(&e);
		r = tm_check(bm, &o, &cb, &res, &e);
		if (r)
			fz_bug("line %" PRIu64 ": tm_check%s after a commit failed: %s", lineno,
			       snap ? " -m" : "", e.msg);
		if (snap && !res.nr_problems[TM_SEV_FATAL] && !res.have_sb)
			fz_bug("line %" PRIu64 ": tm_check -m did not read the superblock", lineno);
		if (snap && res.nr_by_code[TM_PR_SNAP_NONE])
			continue;	/* no snapshot held */
		/*
		 * Running out of metadata space leaks the data block just
		 * allocated, as in the kernel (alloc_data_block() commits the
		 * allocation, then finds no metadata left and fails the bio).
		 */
		uint64_t nonfatal = res.nr_problems[TM_SEV_NONFATAL];
		if (c->pool && tm_pool_is_read_only(c->pool))
			nonfatal -= res.nr_by_code[TM_PR_DATA_LEAK];
		if (res.nr_problems[TM_SEV_FATAL] || nonfatal || !res.complete)
			fz_bug("line %" PRIu64 ": after a commit tm_check%s finds %" PRIu64
			       " fatal, %" PRIu64 " non-fatal problems (first code: %s)",
			       lineno, snap ? " -m" : "", res.nr_problems[TM_SEV_FATAL],
			       res.nr_problems[TM_SEV_NONFATAL], first_problem(&res));
	}

	struct tm_dump_opts o = { 0 };
	struct fz_record rec;
	struct tm_ir_sink null, sink;
	fz_null_sink(&null);
	fz_record_init(&rec, &null, 1);
	fz_record_sink(&rec, &sink);
	tm_error_clear(&e);
	r = tm_dump(bm, &o, &sink, &e);
	if (r || !rec.done)
		fz_bug("line %" PRIu64 ": tm_dump after a commit failed: %s", lineno, e.msg);

	/* nothing uncommitted: the pool's devices are the dump's */
	if (c->pool && !tm_pool_changed(c->pool) && !tm_pool_failed(c->pool) && !rec.overflow) {
		struct tm_pool_device_info *devs;
		uint64_t nr;
		tm_error_clear(&e);
		if (!tm_pool_devices(c->pool, &devs, &nr, &e)) {
			if (nr != rec.nr_devs)
				fz_bug("line %" PRIu64 ": the pool has %" PRIu64 " devices, the dump %zu",
				       lineno, nr, rec.nr_devs);
			for (uint64_t i = 0; i < nr; i++) {
				const struct tm_ir_device *d = &rec.devs[i].d;
				if (d->dev_id != devs[i].id || d->mapped_blocks != devs[i].mapped_blocks ||
				    d->transaction != devs[i].transaction_id)
					fz_bug("line %" PRIu64 ": device %" PRIu64 " differs between the pool"
					       " (mapped_blocks %" PRIu64 ", transaction %" PRIu64 ") and the dump"
					       " (device %" PRIu64 ", %" PRIu64 ", %" PRIu64 ")", lineno, devs[i].id,
					       devs[i].mapped_blocks, devs[i].transaction_id, d->dev_id,
					       d->mapped_blocks, d->transaction);
			}
			free(devs);
		}
	}
	fz_record_free(&rec);
	tm_bm_destroy(bm);
}

/*
 * Verify if block 0 changed since @last (a commit), and remember it; past
 * MAX_VERIFY commits in one input only the last (@final) is verified: a
 * check costs milliseconds under the sanitizers, and the seeds commit
 * hundreds of times.
 */
#define MAX_VERIFY 8

static void after(struct pctx *c, struct sb_copy *last, uint64_t lineno, int *nr_verified,
		  int final)
{
	const uint8_t *now = tm_dev_mem_data(c->dev);

	if (!final && !memcmp(now, last->b, TM_BLOCK_SIZE))
		return;
	if (!final && *nr_verified >= MAX_VERIFY) {
		memcpy(last->b, now, TM_BLOCK_SIZE);
		return;
	}
	if (final && !memcmp(now, last->b, TM_BLOCK_SIZE) && *nr_verified < MAX_VERIFY)
		return;		/* verified already */
	memcpy(last->b, now, TM_BLOCK_SIZE);
	if (tm_block_is_zero(now))
		return;		/* nothing committed yet */
	++*nr_verified;
	verify_commit(c, lineno);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sb_copy last;
	static char line[MAX_LINE + 1];
	struct pctx c;
	char where[64];
	uint64_t lineno = 0;
	int nr_verified = 0;
	FILE *saved_out = stdout, *saved_err = stderr;

	if (!null_out && !(null_out = fopen("/dev/null", "w")))
		abort();
	memset(&c, 0, sizeof(c));
	c.path = "fuzz";
	c.lock_fd = -1;
	if (tm_dev_mem_create(FZ_POOL_BLOCKS, &c.dev))
		abort();
	memset(last.b, 0, sizeof(last.b));

	for (size_t pos = 0; pos < size;) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) + 1 : size;
		size_t n = end - pos < MAX_LINE ? end - pos : MAX_LINE;

		/* getline keeps the bytes; the parser sees them up to a NUL */
		memcpy(line, data + pos, n);
		line[n] = '\0';
		pos = end;
		lineno++;
		snprintf(where, sizeof(where), "fuzz:%" PRIu64 ": ", lineno);

		uint64_t writes = c.dev->writes;
		stdout = null_out;
		stderr = null_out;
		int r = script_line(&c, where, line);
		stdout = saved_out;
		stderr = saved_err;
		if (r == CMD_USAGE && c.dev->writes != writes)
			fz_bug("line %" PRIu64 ": refused as misuse, but wrote to the device", lineno);
		after(&c, &last, lineno, &nr_verified, 0);
		/* (thin_pool stops at the first failed line; going on tests more) */
	}

	/* the end of the script: commit what is pending, as thin_pool does */
	if (c.pool && !tm_pool_failed(c.pool) && tm_pool_changed(c.pool)) {
		struct tm_error e;
		tm_error_clear(&e);
		if (tm_pool_commit(c.pool, &e) && !e.msg[0])
			fz_bug("the final commit failed without a message");
	}
	after(&c, &last, lineno + 1, &nr_verified, 1);
	tm_pool_close(c.pool);
	tm_dev_close(c.dev);
	return 0;
}
