/*
 * io_file.c - a metadata device that is a regular file or a block device.
 *
 * Block devices are read with O_DIRECT, so that a pool's metadata is read
 * from the device and not from a page cache the kernel's own writes may
 * have bypassed; where O_DIRECT is refused we fall back to buffered I/O.
 * Direct I/O needs aligned buffers: unaligned callers go through a bounce
 * buffer.  An O_DIRECT device says it serves several reads at once
 * (parallel_reads: the disk's queue; bstream then keeps that many requests
 * in flight); a regular file does not: buffered reads in parallel did not
 * help there, readahead hints do (file_hint).  Read-only unless
 * TM_DEV_WRITE.  A regular file tells where its
 * holes are (data_extent); a block device cannot.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinmeta/format.h"
#include "thinmeta/io.h"

#define BOUNCE_BLOCKS 64u
#define PARALLEL_READS 3u	/* requests in flight on O_DIRECT (bstream) */

struct file_dev {
	struct tm_dev dev;
	int fd;
	int direct;
	void *bounce;		/* BOUNCE_BLOCKS blocks, page aligned */
};

int tm_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0) {	/* past end of file: reads as zeroes */
			memset(p, 0, len);
			return 0;
		}
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int tm_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = pwrite(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int needs_bounce(const struct file_dev *f, const void *buf)
{
	return f->direct && ((uintptr_t)buf & (TM_BLOCK_SIZE - 1));
}

static int file_read(struct tm_dev *dev, uint64_t block, unsigned count, void *buf)
{
	struct file_dev *f = (struct file_dev *)dev;

	__atomic_fetch_add(&dev->reads, 1, __ATOMIC_RELAXED);	/* parallel_reads */
	if (block > dev->nr_blocks || count > dev->nr_blocks - block)
		return -ERANGE;
	if (!needs_bounce(f, buf))
		return tm_pread_full(f->fd, buf, (size_t)count * TM_BLOCK_SIZE,
				     block * TM_BLOCK_SIZE);
	while (count) {
		unsigned n = count < BOUNCE_BLOCKS ? count : BOUNCE_BLOCKS;
		int r = tm_pread_full(f->fd, f->bounce, (size_t)n * TM_BLOCK_SIZE,
				      block * TM_BLOCK_SIZE);
		if (r)
			return r;
		memcpy(buf, f->bounce, (size_t)n * TM_BLOCK_SIZE);
		buf = (uint8_t *)buf + (size_t)n * TM_BLOCK_SIZE;
		block += n;
		count -= n;
	}
	return 0;
}

static int file_write(struct tm_dev *dev, uint64_t block, unsigned count, const void *buf)
{
	struct file_dev *f = (struct file_dev *)dev;

	dev->writes++;
	if (!dev->writable)
		return -EBADF;
	if (block > dev->nr_blocks || count > dev->nr_blocks - block)
		return -ERANGE;
	if (!needs_bounce(f, buf))
		return tm_pwrite_full(f->fd, buf, (size_t)count * TM_BLOCK_SIZE,
				      block * TM_BLOCK_SIZE);
	while (count) {
		unsigned n = count < BOUNCE_BLOCKS ? count : BOUNCE_BLOCKS;
		memcpy(f->bounce, buf, (size_t)n * TM_BLOCK_SIZE);
		int r = tm_pwrite_full(f->fd, f->bounce, (size_t)n * TM_BLOCK_SIZE,
				       block * TM_BLOCK_SIZE);
		if (r)
			return r;
		buf = (const uint8_t *)buf + (size_t)n * TM_BLOCK_SIZE;
		block += n;
		count -= n;
	}
	return 0;
}

static int file_flush(struct tm_dev *dev)
{
	struct file_dev *f = (struct file_dev *)dev;

	if (!dev->writable)
		return 0;
	if (fdatasync(f->fd) < 0 && errno != EINVAL)
		return -errno;
	return 0;
}

static void file_close(struct tm_dev *dev)
{
	struct file_dev *f = (struct file_dev *)dev;

	close(f->fd);
	free(f->bounce);
	free(f);
}

/*
 * SEEK_DATA / SEEK_HOLE, in whole blocks: a block is skipped only when all
 * of it is a hole.  Where the file system cannot tell (an error other than
 * ENXIO, "no data past here"), everything may hold data.
 */
static int file_data_extent(struct tm_dev *dev, uint64_t block, uint64_t *start,
			    uint64_t *end)
{
	struct file_dev *f = (struct file_dev *)dev;
	uint64_t s, e;
	off_t d, h;

	*start = block;
	*end = dev->nr_blocks;
	if (dev->is_blockdev || block >= dev->nr_blocks)
		return 0;
	d = lseek(f->fd, (off_t)(block * TM_BLOCK_SIZE), SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO)
			*start = dev->nr_blocks;
		return 0;
	}
	s = (uint64_t)d / TM_BLOCK_SIZE;
	if (s < block)		/* never, but never go backwards */
		s = block;
	if (s >= dev->nr_blocks) {	/* data only in a partial last block */
		*start = dev->nr_blocks;
		return 0;
	}
	*start = s;
	h = lseek(f->fd, d, SEEK_HOLE);
	if (h < 0)
		return 0;
	e = ((uint64_t)h + TM_BLOCK_SIZE - 1) / TM_BLOCK_SIZE;
	if (e > s && e < dev->nr_blocks)
		*end = e;
	return 0;
}

/*
 * Readahead of blocks soon read, on a regular file (buffered): the kernel
 * starts reading them into the page cache while we work, so that a cold
 * file sees many requests in flight instead of one synchronous read at a
 * time.  Nothing on O_DIRECT (the page cache is not used).
 */
static void file_hint(struct tm_dev *dev, uint64_t block, unsigned count)
{
	struct file_dev *f = (struct file_dev *)dev;

	if (f->direct)
		return;
	(void)posix_fadvise(f->fd, (off_t)(block * TM_BLOCK_SIZE),
			    (off_t)count * TM_BLOCK_SIZE, POSIX_FADV_WILLNEED);
}

static const struct tm_dev_ops file_ops = {
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.close = file_close,
	.data_extent = file_data_extent,
	.hint = file_hint,
};

int tm_dev_open_file(const char *path, unsigned flags, struct tm_dev **out)
{
	struct file_dev *f;
	struct stat st;
	int oflags = (flags & TM_DEV_WRITE) ? O_RDWR : O_RDONLY;
	int fd, r;

	*out = NULL;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -ENOTBLK;
	oflags |= O_CLOEXEC;
	if (S_ISBLK(st.st_mode) && (flags & TM_DEV_EXCL))
		oflags |= O_EXCL;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	if (posix_memalign(&f->bounce, TM_BLOCK_SIZE, BOUNCE_BLOCKS * TM_BLOCK_SIZE)) {
		free(f);
		return -ENOMEM;
	}

	fd = -1;
	if (S_ISBLK(st.st_mode) && !(flags & TM_DEV_NODIRECT)) {
		fd = open(path, oflags | O_DIRECT);
		if (fd >= 0)
			f->direct = 1;
		else if (errno != EINVAL)
			goto fail_errno;
	}
	if (fd < 0)
		fd = open(path, oflags);
	if (fd < 0)
		goto fail_errno;
	f->fd = fd;

	if (S_ISBLK(st.st_mode)) {
		uint64_t bytes = 0;
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
			r = -errno;
			close(fd);
			goto fail;
		}
		f->dev.size_bytes = bytes;
		f->dev.is_blockdev = 1;
		if (f->direct)		/* the disk's queue, not one read at a time */
			f->dev.parallel_reads = PARALLEL_READS;
	} else {
		f->dev.size_bytes = (uint64_t)st.st_size;
	}
	f->dev.nr_blocks = f->dev.size_bytes / TM_BLOCK_SIZE;
	f->dev.writable = (flags & TM_DEV_WRITE) != 0;
	f->dev.ops = &file_ops;
	*out = &f->dev;
	return 0;

fail_errno:
	r = -errno;
fail:
	free(f->bounce);
	free(f);
	return r;
}
