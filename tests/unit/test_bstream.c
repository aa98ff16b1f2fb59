/*
 * test_bstream.c - engine/bstream.c, the bulk reader behind the checker's
 * level walk and the dump / ls / rmap leaf passes: every position gets its
 * own block's bytes and checksum register whatever the list's order
 * (duplicates, reversed, random, skipped positions, one window or many, with
 * and without the reader thread); blocks past the end and unreadable blocks
 * fail alone; reads are few and large; bs_validate() says what tm_bm_read()
 * says.  Each of those also with several reader threads (a device that
 * serves reads in parallel, dev->parallel_reads: a memory device and a
 * file): the consumer sees the same blocks in the same order, the same
 * errors, and the device the same requests.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "bstream.h"
#include "thinmeta/crc32c.h"
#include "unit_util.h"

#define NBLOCKS 3000u

static struct tm_dev *mem;

/* Reader threads asked of the device, per loop test iteration (_i). */
static const unsigned par[] = { 0, 2, 3, 7 };
#define NPAR ((int)(sizeof(par) / sizeof(par[0])))

static uint64_t rnd_state = 42;

static uint64_t rnd(void)
{
	rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
	return rnd_state >> 33;
}

static void setup(void)
{
	ck_assert_int_eq(tm_dev_mem_create(NBLOCKS, &mem), 0);
	for (uint64_t b = 0; b < NBLOCKS; b++) {
		uint8_t *p = mem_block(mem, b);
		for (unsigned i = 0; i < TM_BLOCK_SIZE; i += 8)
			tm_put_le64(p + i, rnd());
		tm_block_seal(p, b, TM_SALT_BTREE_NODE);
	}
}

static void teardown(void)
{
	tm_dev_close(mem);
}

/* Read @list through a stream: position i (every @step-th) must hold its
 * block.  Returns the number of device reads it took. */
static uint64_t expect_list(struct tm_dev *dev, const uint64_t *list, size_t n, size_t step)
{
	struct bstream *s;
	struct bs_block blk;
	uint64_t reads = dev->reads;

	ck_assert_int_eq(bs_open(dev, list, n, &s), 0);
	for (size_t i = 0; i < n; i += step) {
		bs_get(s, i, &blk);
		ck_assert_msg(blk.data != NULL, "position %zu (block %llu): error %d", i,
			      (unsigned long long)list[i], blk.err);
		ck_assert_int_eq(blk.err, 0);
		ck_assert_mem_eq(blk.data, mem_block(mem, list[i]), TM_BLOCK_SIZE);
		ck_assert_uint_eq(blk.crc, tm_block_crc(mem_block(mem, list[i])));
	}
	bs_close(s);
	return dev->reads - reads;
}

START_TEST(any_order)
{
	static uint64_t list[4 * NBLOCKS];
	size_t n;

	mem->parallel_reads = par[_i];

	/* ascending, all of it: 12 windows, one request each */
	for (n = 0; n < NBLOCKS; n++)
		list[n] = n;
	ck_assert_uint_eq(expect_list(mem, list, n, 1), (NBLOCKS + 255) / 256);

	/* descending: each window is read in block order, still one request */
	for (n = 0; n < NBLOCKS; n++)
		list[n] = NBLOCKS - 1 - n;
	ck_assert_uint_eq(expect_list(mem, list, n, 1), (NBLOCKS + 255) / 256);

	/* random, with duplicates, some positions skipped */
	for (n = 0; n < 2 * NBLOCKS; n++)
		list[n] = rnd() % NBLOCKS;
	expect_list(mem, list, n, 1);
	expect_list(mem, list, n, 7);
	expect_list(mem, list, n, 300);	/* whole windows skipped */

	/* every block three times in a row */
	for (n = 0; n < 3 * 500; n++)
		list[n] = 1000 + n / 3;
	expect_list(mem, list, n, 1);

	/* short lists: no reader thread */
	list[0] = 5;
	list[1] = 2;
	list[2] = 5;
	list[3] = 2999;
	expect_list(mem, list, 4, 1);
	expect_list(mem, list, 1, 1);
	expect_list(mem, list, 0, 1);
}
END_TEST

START_TEST(gaps_read_through)
{
	static uint64_t list[512];

	mem->parallel_reads = par[_i];
	/* every other block: read through the gaps, 1 MiB per request */
	for (size_t i = 0; i < 512; i++)
		list[i] = 2 * i;
	ck_assert_uint_le(expect_list(mem, list, 512, 1), 6);
	/* far apart: one request per block */
	for (size_t i = 0; i < 100; i++)
		list[i] = 29 * i;
	ck_assert_uint_eq(expect_list(mem, list, 100, 1), 100);
}
END_TEST

START_TEST(past_the_end)
{
	static uint64_t list[600];
	static struct tm_error e1[600];
	static int r1[600];
	struct bstream *s;
	struct bs_block blk;
	struct tm_error e2;
	struct tm_bm *bm;
	uint8_t buf[TM_BLOCK_SIZE];

	for (size_t i = 0; i < 600; i++)
		list[i] = i % 5 == 0 ? NBLOCKS + i : (i % 2 ? NBLOCKS - 1 - i : i);
	list[599] = UINT64_MAX;
	mem->parallel_reads = par[_i];
	ck_assert_int_eq(bs_open(mem, list, 600, &s), 0);
	for (size_t i = 0; i < 600; i++) {
		bs_get(s, i, &blk);
		if (list[i] >= NBLOCKS) {
			ck_assert_ptr_null(blk.data);
			ck_assert_int_eq(blk.err, -ERANGE);
		} else {
			ck_assert_ptr_nonnull(blk.data);
			ck_assert_mem_eq(blk.data, mem_block(mem, list[i]), TM_BLOCK_SIZE);
		}
		tm_error_clear(&e1[i]);
		r1[i] = bs_validate(&blk, mem, list[i], &tm_node_validator, &e1[i]);
	}
	bs_close(s);
	/* validation says what tm_bm_read says (once the stream is closed:
	 * nothing else may read its device meanwhile) */
	ck_assert_int_eq(tm_bm_create(mem, 16, &bm), 0);
	for (size_t i = 0; i < 600; i++) {
		tm_error_clear(&e2);
		ck_assert_int_eq(r1[i], tm_bm_read(bm, list[i], &tm_node_validator, buf, &e2));
		ck_assert_str_eq(e1[i].msg, e2.msg);
	}
	tm_bm_destroy(bm);
}
END_TEST

START_TEST(damage_said_as_tm_bm_read_says)
{
	uint64_t list[3] = { 7, 8, 9 };
	const struct tm_validator *v[2] = { &tm_sb_validator, &tm_bitmap_validator };
	struct tm_error e1[3][2], e2;
	int r1[3][2];
	struct bstream *s;
	struct bs_block blk;
	struct tm_bm *bm;
	uint8_t buf[TM_BLOCK_SIZE];

	/* bitmaps: no header rules beyond checksum and place */
	for (uint64_t b = 7; b <= 9; b++)
		tm_block_seal(mem_block(mem, b), b, TM_SALT_BITMAP);
	mem_block(mem, 8)[100] ^= 1;			/* bad checksum */
	tm_block_seal(mem_block(mem, 9), 10, TM_SALT_BITMAP);	/* wrong place */
	ck_assert_int_eq(bs_open(mem, list, 3, &s), 0);
	for (size_t i = 0; i < 3; i++) {
		bs_get(s, i, &blk);
		for (int k = 0; k < 2; k++) {
			tm_error_clear(&e1[i][k]);
			r1[i][k] = bs_validate(&blk, mem, list[i], v[k], &e1[i][k]);
		}
	}
	bs_close(s);
	ck_assert_int_eq(tm_bm_create(mem, 16, &bm), 0);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_ne(r1[i][0], 0);		/* a bitmap is no superblock */
		ck_assert_int_eq(r1[i][1] != 0, i > 0);
		for (int k = 0; k < 2; k++) {
			tm_bm_forget(bm, list[i]);
			tm_error_clear(&e2);
			ck_assert_int_eq(r1[i][k], tm_bm_read(bm, list[i], v[k], buf, &e2));
			ck_assert_str_eq(e1[i][k].msg, e2.msg);
		}
	}
	tm_bm_destroy(bm);
}
END_TEST

/* A device with one bad block: any read that covers it fails. */
struct bad_dev {
	struct tm_dev dev;
	uint64_t bad;
};

static int bad_read(struct tm_dev *dev, uint64_t b, unsigned n, void *buf)
{
	struct bad_dev *d = (struct bad_dev *)dev;

	__atomic_fetch_add(&dev->reads, 1, __ATOMIC_RELAXED);
	if (b <= d->bad && d->bad < b + n)
		return -EIO;
	return tm_dev_read(mem, b, n, buf);
}

static int bad_write(struct tm_dev *dev, uint64_t b, unsigned n, const void *buf)
{
	(void)dev;
	(void)b;
	(void)n;
	(void)buf;
	return -EBADF;
}

static int bad_flush(struct tm_dev *dev)
{
	(void)dev;
	return 0;
}

static void bad_close(struct tm_dev *dev)
{
	(void)dev;
}

static const struct tm_dev_ops bad_ops = {
	.read = bad_read, .write = bad_write, .flush = bad_flush, .close = bad_close,
};

START_TEST(one_bad_block)
{
	static uint64_t list[NBLOCKS];
	struct bad_dev d = { .dev = { .ops = &bad_ops, .nr_blocks = NBLOCKS }, .bad = 1234 };
	struct bstream *s;
	struct bs_block blk;

	d.dev.parallel_reads = par[_i];
	for (size_t i = 0; i < NBLOCKS; i++)
		list[i] = i;
	ck_assert_int_eq(bs_open(&d.dev, list, NBLOCKS, &s), 0);
	for (size_t i = 0; i < NBLOCKS; i++) {
		bs_get(s, i, &blk);
		if (i == d.bad) {
			ck_assert_ptr_null(blk.data);
			ck_assert_int_eq(blk.err, -EIO);
		} else {
			ck_assert_ptr_nonnull(blk.data);
			ck_assert_mem_eq(blk.data, mem_block(mem, i), TM_BLOCK_SIZE);
		}
	}
	bs_close(s);
}
END_TEST

START_TEST(close_early)
{
	static uint64_t list[NBLOCKS];
	struct bstream *s;
	struct bs_block blk;

	mem->parallel_reads = par[_i];
	for (size_t i = 0; i < NBLOCKS; i++)
		list[i] = rnd() % NBLOCKS;
	/* the readers are stopped wherever they are */
	for (size_t stop = 0; stop < NBLOCKS; stop += 700) {
		ck_assert_int_eq(bs_open(mem, list, NBLOCKS, &s), 0);
		for (size_t i = 0; i < stop; i += 3)
			bs_get(s, i, &blk);
		bs_close(s);
	}
	bs_close(NULL);
}
END_TEST

/*
 * A regular file read by one reader and by several: the same blocks in
 * the same order to the consumer (expect_list), the same requests (their
 * number; each window is read the same way whoever reads it), and a block
 * past the end fails alone.
 */
START_TEST(file_device)
{
	static uint64_t list[3 * NBLOCKS];
	char path[] = "/tmp/test_bstream.XXXXXX";
	int fd = mkstemp(path);
	struct tm_dev *f;
	struct bstream *s;
	struct bs_block blk;
	uint64_t one, many;
	size_t n = 0;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, mem_block(mem, 0), (size_t)NBLOCKS * TM_BLOCK_SIZE),
			 (ssize_t)NBLOCKS * TM_BLOCK_SIZE);
	close(fd);
	ck_assert_int_eq(tm_dev_open_file(path, 0, &f), 0);
	unlink(path);
	for (; n < NBLOCKS; n++)
		list[n] = rnd() % NBLOCKS;
	for (; n < 2 * NBLOCKS; n++)
		list[n] = n - NBLOCKS;
	for (; n < 3 * NBLOCKS; n++)
		list[n] = (n * 37) % NBLOCKS;
	f->parallel_reads = 0;
	one = expect_list(f, list, n, 1);
	f->parallel_reads = par[_i];
	many = expect_list(f, list, n, 1);
	ck_assert_uint_eq(one, many);
	expect_list(f, list, n, 5);

	list[1000] = NBLOCKS;		/* one block past the end */
	ck_assert_int_eq(bs_open(f, list, n, &s), 0);
	for (size_t i = 0; i < n; i++) {
		bs_get(s, i, &blk);
		if (i == 1000) {
			ck_assert_ptr_null(blk.data);
			ck_assert_int_eq(blk.err, -ERANGE);
			continue;
		}
		ck_assert_ptr_nonnull(blk.data);
		ck_assert_mem_eq(blk.data, mem_block(mem, list[i]), TM_BLOCK_SIZE);
		ck_assert_uint_eq(blk.crc, tm_block_crc(blk.data));
	}
	bs_close(s);
	tm_dev_close(f);
}
END_TEST

/* The stream's checksums come three at a time: the same as one at a time. */
START_TEST(crc_three_at_a_time)
{
	uint8_t *a = mem_block(mem, 1), *b = mem_block(mem, 2), *c = mem_block(mem, 3);
	uint32_t out[3];

	for (size_t len = 0; len <= 4092; len += len < 40 ? 1 : 1013) {
		tm_crc32c_x3(0xffffffffu, a + 1, b + 2, c + 3, len, out);
		ck_assert_uint_eq(out[0], tm_crc32c(0xffffffffu, a + 1, len));
		ck_assert_uint_eq(out[1], tm_crc32c(0xffffffffu, b + 2, len));
		ck_assert_uint_eq(out[2], tm_crc32c(0xffffffffu, c + 3, len));
	}
	tm_crc32c_x3(0xffffffffu, a + 4, b + 4, c + 4, TM_BLOCK_SIZE - 4, out);
	ck_assert_uint_eq(out[1], tm_block_crc(b));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bstream");
	TCase *tc = tcase_create("bstream");
	tcase_set_timeout(tc, 120);	/* several reader threads, sanitizers, a loaded machine */

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, any_order, 0, NPAR);
	tcase_add_loop_test(tc, gaps_read_through, 0, NPAR);
	tcase_add_loop_test(tc, past_the_end, 0, NPAR);
	tcase_add_test(tc, damage_said_as_tm_bm_read_says);
	tcase_add_loop_test(tc, one_bad_block, 0, NPAR);
	tcase_add_loop_test(tc, close_early, 0, NPAR);
	tcase_add_loop_test(tc, file_device, 0, NPAR);
	tcase_add_test(tc, crc_three_at_a_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
