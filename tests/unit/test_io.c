/* test_io.c - the in-memory, file and fault-injecting devices. */
#include <errno.h>
#include <fcntl.h>
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

int main(void)
{
	Suite *s = suite_create("io");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, mem_read_write);
	tcase_add_test(tc, fault_nth);
	tcase_add_test(tc, file_readonly);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
