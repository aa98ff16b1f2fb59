/* test_io.c - the in-memory, file and fault-injecting devices. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit_util.h"

START_TEST(mem_read_write)
{
	struct tm_dev *dev;
	uint8_t a[2 * TM_BLOCK_SIZE], b[2 * TM_BLOCK_SIZE];

	ck_assert_int_eq(tm_dev_mem_create(4, &dev), 0);
	ck_assert_uint_eq(dev->nr_blocks, 4);
	memset(a, 0xab, sizeof(a));
	ck_assert_int_eq(tm_dev_write(dev, 2, 2, a), 0);
	ck_assert_int_eq(tm_dev_read(dev, 2, 2, b), 0);
	ck_assert_mem_eq(a, b, sizeof(a));
	ck_assert_int_eq(tm_dev_read(dev, 3, 2, b), -ERANGE);
	ck_assert_int_eq(tm_dev_write(dev, 4, 1, a), -ERANGE);
	ck_assert_int_eq(tm_dev_read(dev, UINT64_MAX, 1, b), -ERANGE);
	tm_dev_close(dev);
}
END_TEST

START_TEST(fault_nth)
{
	struct tm_dev *mem, *dev;
	uint8_t buf[TM_BLOCK_SIZE] = { 0 };

	ck_assert_int_eq(tm_dev_mem_create(4, &mem), 0);
	ck_assert_int_eq(tm_dev_fault_wrap(mem, 3, 3, &dev), 0);
	ck_assert_int_eq(tm_dev_read(dev, 0, 1, buf), 0);
	ck_assert_int_eq(tm_dev_write(dev, 1, 1, buf), 0);
	ck_assert_int_eq(tm_dev_read(dev, 0, 1, buf), -EIO);	/* third */
	ck_assert_int_eq(tm_dev_read(dev, 0, 1, buf), -EIO);	/* and after */
	ck_assert_int_eq(tm_dev_flush(dev), -EIO);
	ck_assert_uint_eq(tm_dev_fault_count(dev), 5);
	tm_dev_close(dev);

	/* writes only */
	ck_assert_int_eq(tm_dev_mem_create(4, &mem), 0);
	ck_assert_int_eq(tm_dev_fault_wrap(mem, 1, 2, &dev), 0);
	ck_assert_int_eq(tm_dev_read(dev, 0, 1, buf), 0);
	ck_assert_int_eq(tm_dev_write(dev, 0, 1, buf), -EIO);
	ck_assert_int_eq(tm_dev_read(dev, 1, 1, buf), 0);
	tm_dev_close(dev);
}
END_TEST

START_TEST(file_readonly)
{
	char path[] = "/tmp/thinmeta-io-XXXXXX";
	int fd = mkstemp(path);
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_dev *dev;

	ck_assert_int_ge(fd, 0);
	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(write(fd, buf, sizeof(buf)), (int)sizeof(buf));
	ck_assert_int_eq(write(fd, buf, 100), 100);	/* a partial block */
	close(fd);

	ck_assert_int_eq(tm_dev_open_file(path, 0, &dev), 0);
	ck_assert_uint_eq(dev->nr_blocks, 1);
	ck_assert_uint_eq(dev->size_bytes, TM_BLOCK_SIZE + 100);
	ck_assert_int_eq(dev->writable, 0);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(tm_dev_read(dev, 0, 1, buf), 0);
	ck_assert_uint_eq(buf[4095], 0x5a);
	ck_assert_int_eq(tm_dev_read(dev, 1, 1, buf), -ERANGE);
	ck_assert_int_eq(tm_dev_write(dev, 0, 1, buf), -EBADF);
	tm_dev_close(dev);

	ck_assert_int_eq(tm_dev_open_file(path, TM_DEV_WRITE, &dev), 0);
	memset(buf, 0x11, sizeof(buf));
	ck_assert_int_eq(tm_dev_write(dev, 0, 1, buf), 0);
	ck_assert_int_eq(tm_dev_flush(dev), 0);
	tm_dev_close(dev);
	ck_assert_int_eq(tm_dev_open_file("/nonexistent/thinmeta", 0, &dev), -ENOENT);
	ck_assert_int_eq(tm_dev_open_file("/tmp", 0, &dev), -ENOTBLK);
	unlink(path);
}
END_TEST

/*
 * tm_dev_data_extent: a sparse file with data in blocks 0, 300-301 and
 * 5000 (of 8192) and a partial block after them.  Walking the extents
 * covers every block holding data; every block skipped reads as zeroes;
 * where the file system keeps holes, most of the file is skipped.  Memory
 * devices say everything may hold data; a fault wrapper passes the inner
 * device's answer through without counting an I/O.
 */
START_TEST(data_extent)
{
	static const uint64_t data[] = { 0, 300, 301, 5000 };
	char path[] = "/tmp/thinmeta-io-XXXXXX";
	uint8_t buf[TM_BLOCK_SIZE], zero[TM_BLOCK_SIZE] = { 0 };
	uint64_t s, e, covered = 0, next = 0;
	struct tm_dev *dev, *mem, *fd_dev;
	struct stat st;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 8192 * (off_t)TM_BLOCK_SIZE + 100), 0);
	memset(buf, 0x5a, sizeof(buf));
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), (off_t)(data[i] * TM_BLOCK_SIZE)),
				 (int)sizeof(buf));
	ck_assert_int_eq(pwrite(fd, buf, 50, 8192 * (off_t)TM_BLOCK_SIZE + 10), 50);
	ck_assert_int_eq(fstat(fd, &st), 0);
	close(fd);

	ck_assert_int_eq(tm_dev_open_file(path, 0, &dev), 0);
	ck_assert_uint_eq(dev->nr_blocks, 8192);
	while (next < dev->nr_blocks) {
		ck_assert_int_eq(tm_dev_data_extent(dev, next, &s, &e), 0);
		ck_assert_uint_ge(s, next);
		ck_assert_uint_le(s, e);
		ck_assert_uint_le(e, dev->nr_blocks);
		for (uint64_t b = next; b < s; b++) {
			for (size_t i = 0; i < 4; i++)
				ck_assert_uint_ne(b, data[i]);
			ck_assert_int_eq(tm_dev_read(dev, b, 1, buf), 0);
			ck_assert_mem_eq(buf, zero, sizeof(buf));
		}
		if (s == e) {
			ck_assert_uint_eq(s, dev->nr_blocks);	/* no more data */
			break;
		}
		covered += e - s;
		next = e;
	}
	if (st.st_blocks * 512 < 1024 * (off_t)TM_BLOCK_SIZE)	/* it has holes */
		ck_assert_uint_lt(covered, 1000);
	/* at and past the end: nothing */
	ck_assert_int_eq(tm_dev_data_extent(dev, 8192, &s, &e), 0);
	ck_assert_uint_eq(s, 8192);
	ck_assert_uint_eq(e, 8192);
	ck_assert_int_eq(tm_dev_data_extent(dev, UINT64_MAX, &s, &e), 0);
	ck_assert_uint_eq(s, 8192);

	/* through a fault wrapper: the same answer, no I/O counted */
	ck_assert_int_eq(tm_dev_fault_wrap(dev, 1, 3, &fd_dev), 0);
	for (size_t i = 0; i < 4; i++) {
		uint64_t s2, e2;
		ck_assert_int_eq(tm_dev_data_extent(fd_dev, data[i] + 1, &s, &e), 0);
		ck_assert_int_eq(tm_dev_open_file(path, 0, &mem), 0);
		ck_assert_int_eq(tm_dev_data_extent(mem, data[i] + 1, &s2, &e2), 0);
		tm_dev_close(mem);
		ck_assert_uint_eq(s, s2);
		ck_assert_uint_eq(e, e2);
	}
	ck_assert_uint_eq(tm_dev_fault_count(fd_dev), 0);
	tm_dev_close(fd_dev);
	unlink(path);

	/* memory: everything from the block asked */
	ck_assert_int_eq(tm_dev_mem_create(16, &mem), 0);
	ck_assert_int_eq(tm_dev_data_extent(mem, 3, &s, &e), 0);
	ck_assert_uint_eq(s, 3);
	ck_assert_uint_eq(e, 16);
	ck_assert_int_eq(tm_dev_data_extent(mem, 16, &s, &e), 0);
	ck_assert_uint_eq(s, 16);
	ck_assert_uint_eq(e, 16);
	tm_dev_close(mem);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, mem_read_write);
	tcase_add_test(tc, fault_nth);
	tcase_add_test(tc, file_readonly);
	tcase_add_test(tc, data_extent);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
