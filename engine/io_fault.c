/*
 * io_fault.c - a device wrapper that fails the Nth I/O and every later one,
 * as a real device that has gone away would.  Used to test that every
 * failure point ends cleanly (tests/, make check).
 */
#include <errno.h>
#include <stdlib.h>

#include "thinmeta/io.h"

struct fault_dev {
	struct tm_dev dev;
	struct tm_dev *inner;
	uint64_t fail_nth;	/* 1-based; 0 = never */
	uint64_t seen;
	unsigned which;		/* 1 reads, 2 writes, 3 both */
};

static int tripped(struct fault_dev *f, unsigned kind)
{
	if (!(f->which & kind))
		return 0;
	f->seen++;
	return f->fail_nth && f->seen >= f->fail_nth;
}

static int fault_read(struct tm_dev *dev, uint64_t block, unsigned count, void *buf)
{
	struct fault_dev *f = (struct fault_dev *)dev;

	dev->reads++;
	if (tripped(f, 1))
		return -EIO;
	return tm_dev_read(f->inner, block, count, buf);
}

static int fault_write(struct tm_dev *dev, uint64_t block, unsigned count, const void *buf)
{
	struct fault_dev *f = (struct fault_dev *)dev;

	dev->writes++;
	if (tripped(f, 2))
		return -EIO;
	return tm_dev_write(f->inner, block, count, buf);
}

static int fault_flush(struct tm_dev *dev)
{
	struct fault_dev *f = (struct fault_dev *)dev;

	if (tripped(f, 2))
		return -EIO;
	return tm_dev_flush(f->inner);
}

static void fault_close(struct tm_dev *dev)
{
	struct fault_dev *f = (struct fault_dev *)dev;

	tm_dev_close(f->inner);
	free(f);
}

/* Where the inner device has holes: not an I/O call, never fails here. */
static int fault_data_extent(struct tm_dev *dev, uint64_t block, uint64_t *start,
			     uint64_t *end)
{
	return tm_dev_data_extent(((struct fault_dev *)dev)->inner, block, start, end);
}

static const struct tm_dev_ops fault_ops = {
	.read = fault_read,
	.write = fault_write,
	.flush = fault_flush,
	.close = fault_close,
	.data_extent = fault_data_extent,
};

int tm_dev_fault_wrap(struct tm_dev *inner, uint64_t fail_nth, unsigned which,
		      struct tm_dev **out)
{
	struct fault_dev *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->inner = inner;
	f->fail_nth = fail_nth;
	f->which = which ? which : 3;
	f->dev = *inner;
	f->dev.ops = &fault_ops;
	f->dev.reads = f->dev.writes = 0;
	*out = &f->dev;
	return 0;
}

uint64_t tm_dev_fault_count(struct tm_dev *dev)
{
	return dev->ops == &fault_ops ? ((struct fault_dev *)dev)->seen : 0;
}
