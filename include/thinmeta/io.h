/*
 * io.h - the metadata device, behind a table of functions.
 *
 * Implementations: a file or block device (pread/pwrite, O_DIRECT on block
 * devices with a fallback), an in-memory device for tests, and a
 * fault-injecting wrapper that fails the Nth read or write.  Addresses are
 * 4096-byte metadata blocks.  Each call returns 0 or a negative errno.
 *
 * data_extent is optional (NULL, as for block devices, memory and fault
 * devices over them: every block may hold data): a regular file answers
 * from its holes (lseek SEEK_DATA / SEEK_HOLE), so that a scan of a large
 * sparse file reads only what was ever written.
 */
#ifndef THINMETA_IO_H
#define THINMETA_IO_H

#include <stddef.h>
#include <stdint.h>

struct tm_dev;

struct tm_dev_ops {
	int (*read)(struct tm_dev *dev, uint64_t block, unsigned count, void *buf);
	int (*write)(struct tm_dev *dev, uint64_t block, unsigned count, const void *buf);
	int (*flush)(struct tm_dev *dev);
	void (*close)(struct tm_dev *dev);
	/*
	 * The first run of blocks at or after @block that may hold data:
	 * [*start, *end), block <= *start <= *end <= nr_blocks; every block
	 * in [block, *start) reads as zeroes; *start == nr_blocks: none.  Not
	 * counted as an I/O call.  Use tm_dev_data_extent().
	 */
	int (*data_extent)(struct tm_dev *dev, uint64_t block, uint64_t *start,
			   uint64_t *end);
	/*
	 * Optional: blocks [block, block + count) will be read soon; start
	 * reading them in the background (a regular file: the page cache's
	 * readahead).  Only a hint: reads nothing into the caller's memory,
	 * never fails, not counted as an I/O call.  Use tm_dev_hint().
	 */
	void (*hint)(struct tm_dev *dev, uint64_t block, unsigned count);
};

struct tm_dev {
	const struct tm_dev_ops *ops;
	uint64_t nr_blocks;	/* whole 4 KiB blocks on the device */
	uint64_t size_bytes;	/* exact byte size */
	int writable;
	int is_blockdev;
	uint64_t reads, writes;	/* counters of calls, for tests and stats */
	/*
	 * How many reads the device serves well at once (a block device read
	 * with O_DIRECT: the disk's queue).  0 or 1: one at a time, and a bulk
	 * reader then issues its calls in a fixed order (as a fault device's
	 * counting needs).  More: its read op may be called from that many
	 * threads at once (aligned buffers), in an order that is not fixed.
	 */
	unsigned parallel_reads;
};

/* Open flags. */
#define TM_DEV_WRITE	1u	/* open read-write (default read-only) */
#define TM_DEV_EXCL	2u	/* O_EXCL on a block device: refuse one in use */
#define TM_DEV_NODIRECT	4u	/* never use O_DIRECT */

int tm_dev_open_file(const char *path, unsigned flags, struct tm_dev **out);
int tm_dev_mem_create(uint64_t nr_blocks, struct tm_dev **out);
/* Direct access to an in-memory device's bytes (tests). */
uint8_t *tm_dev_mem_data(struct tm_dev *dev);

/*
 * Wrap @inner so that the @fail_nth-th I/O call (1-based, reads and writes
 * counted together; 0 = never) and every later one fail with -EIO.  The
 * wrapper takes ownership of @inner.  @which: 1 reads, 2 writes, 3 both.
 */
int tm_dev_fault_wrap(struct tm_dev *inner, uint64_t fail_nth, unsigned which,
		      struct tm_dev **out);
/* How many I/O calls a fault device has seen (to size a sweep). */
uint64_t tm_dev_fault_count(struct tm_dev *dev);

static inline int tm_dev_read(struct tm_dev *d, uint64_t b, unsigned n, void *buf)
{
	return d->ops->read(d, b, n, buf);
}

static inline int tm_dev_write(struct tm_dev *d, uint64_t b, unsigned n, const void *buf)
{
	return d->ops->write(d, b, n, buf);
}

static inline int tm_dev_flush(struct tm_dev *d)
{
	return d->ops->flush(d);
}

/* ops->data_extent, or "everything from @b may hold data" without it. */
static inline int tm_dev_data_extent(struct tm_dev *d, uint64_t b, uint64_t *start,
				     uint64_t *end)
{
	if (b >= d->nr_blocks) {
		*start = *end = d->nr_blocks;
		return 0;
	}
	if (!d->ops->data_extent) {
		*start = b;
		*end = d->nr_blocks;
		return 0;
	}
	return d->ops->data_extent(d, b, start, end);
}

/*
 * Whole-buffer pread/pwrite on a file descriptor, retried on EINTR and short
 * transfers: what the file device reads and writes with, and the tools'
 * data files (thin_pool --data, thin_backup).  What lies past the end of
 * the file reads as zeroes (a sparse file).  0 or a negative errno; a write
 * that moves nothing is -EIO.
 */
int tm_pread_full(int fd, void *buf, size_t len, uint64_t off);
int tm_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* ops->hint, clipped to the device; nothing without it. */
static inline void tm_dev_hint(struct tm_dev *d, uint64_t b, unsigned n)
{
	if (!d->ops->hint || b >= d->nr_blocks || !n)
		return;
	if (n > d->nr_blocks - b)
		n = (unsigned)(d->nr_blocks - b);
	d->ops->hint(d, b, n);
}

static inline void tm_dev_close(struct tm_dev *d)
{
	if (d)
		d->ops->close(d);
}

#endif
