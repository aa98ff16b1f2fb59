/*
 * test_pool_data.c - the pool's pre-commit callback (tm_pool_set_pre_commit),
 * with which thin_pool flushes its data file before every commit as dm-thin
 * flushes the data device: it runs before anything of the commit reaches
 * the device, for every commit that writes (the ones inside pool operations
 * too) and for no other; a failing callback fails the pool and leaves the
 * device at the last commit.
 */
#include <errno.h>

#include "thinmeta/pool.h"
#include "thinmeta/superblock.h"
#include "unit_util.h"

#define NR_META 1024

struct trace {
	struct tm_dev *dev;
	char seq[64];		/* P: pre-commit, 0/1: the commit hook's phases */
	size_t n;
	uint8_t sb_at_pre[TM_BLOCK_SIZE];	/* block 0 when the callback ran */
	int fail;		/* the callback's return */
};

static void add(struct trace *t, char c)
{
	if (t->n + 1 < sizeof(t->seq))
		t->seq[t->n++] = c;
	t->seq[t->n] = '\0';
}

static int pre(void *ctx, struct tm_error *e)
{
	struct trace *t = ctx;

	add(t, 'P');
	memcpy(t->sb_at_pre, tm_dev_mem_data(t->dev), TM_BLOCK_SIZE);
	if (t->fail)
		return tm_fail(e, t->fail, TM_RULE_IO, TM_NO_BLOCK, "data flush failed");
	return 0;
}

static void hook(void *ctx, int phase, const struct tm_superblock *sb)
{
	(void)sb;
	add(ctx, phase ? '1' : '0');
}

static struct tm_pool *fresh(struct trace *t)
{
	struct tm_pool *p;
	struct tm_error e;

	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(tm_dev_mem_create(NR_META, &t->dev), 0);
	ck_assert_int_eq(tm_pool_format(t->dev, 128, 1000, &p, &e), 0);
	tm_pool_set_pre_commit(p, pre, t);
	tm_pool_set_commit_hook(p, hook, t);
	return p;
}

static void write_blocks(struct tm_pool *p, uint64_t id, uint64_t begin, uint64_t n)
{
	struct tm_error e;

	for (uint64_t v = begin; v < begin + n; v++) {
		enum tm_provision w;
		uint64_t b;
		ck_assert_int_eq(tm_pool_write(p, id, v, &w, &b, &e), 0);
	}
}

START_TEST(test_runs_first_and_only_when_writing)
{
	struct trace t;
	struct tm_pool *p = fresh(&t);
	struct tm_error e;
	uint8_t sb[TM_BLOCK_SIZE];

	/* nothing changed: no commit, no callback */
	ck_assert_int_eq(tm_pool_commit(p, &e), 0);
	ck_assert_str_eq(t.seq, "");

	ck_assert_int_eq(tm_pool_create_thin(p, 1, &e), 0);
	ck_assert_int_eq(tm_pool_commit(p, &e), 0);
	ck_assert_str_eq(t.seq, "P01");

	memcpy(sb, tm_dev_mem_data(t.dev), TM_BLOCK_SIZE);
	write_blocks(p, 1, 0, 50);
	ck_assert_str_eq(t.seq, "P01");		/* writes alone commit nothing */
	ck_assert_int_eq(tm_pool_commit(p, &e), 0);
	ck_assert_str_eq(t.seq, "P01P01");
	/* the callback saw the device as the last commit left it */
	ck_assert(!memcmp(t.sb_at_pre, sb, TM_BLOCK_SIZE));
	ck_assert(memcmp(tm_dev_mem_data(t.dev), sb, TM_BLOCK_SIZE));

	/* reserve_metadata_snap commits the writes before it copies */
	write_blocks(p, 1, 100, 5);
	ck_assert_int_eq(tm_pool_reserve_metadata_snap(p, &e), 0);
	ck_assert_int_eq(strncmp(t.seq, "P01P01P01", 9), 0);
	tm_pool_close(p);
	tm_dev_close(t.dev);
}
END_TEST

/* Commits inside an operation run it too: a write that finds no free data
 * block commits (which may free some) before it gives up. */
START_TEST(test_internal_commit)
{
	struct trace t;
	struct tm_pool *p = fresh(&t);
	struct tm_error e;
	enum tm_provision w;
	uint64_t b;

	ck_assert_int_eq(tm_pool_create_thin(p, 1, &e), 0);
	ck_assert_int_eq(tm_pool_commit(p, &e), 0);
	write_blocks(p, 1, 0, 1000);
	size_t before = t.n;
	ck_assert_int_eq(tm_pool_write(p, 1, 5000, &w, &b, &e), -ENOSPC);
	ck_assert_uint_eq(t.n, before + 3);
	ck_assert_str_eq(t.seq + before, "P01");
	tm_pool_close(p);
	tm_dev_close(t.dev);
}
END_TEST

START_TEST(test_failure_fails_the_pool)
{
	struct trace t;
	struct tm_pool *p = fresh(&t);
	struct tm_error e;
	struct tm_superblock sb;
	uint64_t b;
	uint32_t time;

	ck_assert_int_eq(tm_pool_create_thin(p, 1, &e), 0);
	write_blocks(p, 1, 0, 10);
	ck_assert_int_eq(tm_pool_commit(p, &e), 0);
	uint8_t *last = malloc(NR_META * TM_BLOCK_SIZE);
	memcpy(last, tm_dev_mem_data(t.dev), NR_META * TM_BLOCK_SIZE);

	write_blocks(p, 1, 10, 10);
	t.fail = -EIO;
	tm_error_clear(&e);
	ck_assert_int_eq(tm_pool_commit(p, &e), -EIO);
	ck_assert_str_eq(e.msg, "data flush failed");
	ck_assert(tm_pool_failed(p));
	ck_assert_int_eq(tm_pool_create_thin(p, 2, &e), -EROFS);
	tm_pool_close(p);

	/* the device: the last commit, with needs_check set in block 0 */
	ck_assert(!memcmp(last + TM_BLOCK_SIZE, tm_dev_mem_data(t.dev) + TM_BLOCK_SIZE,
			  (NR_META - 1) * TM_BLOCK_SIZE));
	tm_sb_decode(tm_dev_mem_data(t.dev), &sb);
	ck_assert(sb.flags & TM_SB_FLAG_NEEDS_CHECK);
	ck_assert_int_eq(tm_pool_open(t.dev, &p, &e), 0);
	ck_assert_int_eq(tm_pool_lookup(p, 1, 9, &b, &time, &e), 0);
	ck_assert_int_eq(tm_pool_lookup(p, 1, 10, &b, &time, &e), -ENODATA);
	tm_pool_close(p);
	free(last);
	tm_dev_close(t.dev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool_data");
	TCase *tc = tcase_create("pre_commit");

	tcase_add_test(tc, test_runs_first_and_only_when_writing);
	tcase_add_test(tc, test_internal_commit);
	tcase_add_test(tc, test_failure_fails_the_pool);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
