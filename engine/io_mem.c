/* io_mem.c - an in-memory metadata device, for unit tests and fuzzing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/format.h"
#include "thinmeta/io.h"

struct mem_dev {
	struct tm_dev dev;
	uint8_t *data;
};

static int mem_read(struct tm_dev *dev, uint64_t block, unsigned count, void *buf)
{
	struct mem_dev *m = (struct mem_dev *)dev;

	__atomic_fetch_add(&dev->reads, 1, __ATOMIC_RELAXED);	/* tests set parallel_reads */
	if (block > dev->nr_blocks || count > dev->nr_blocks - block)
		return -ERANGE;
	memcpy(buf, m->data + block * TM_BLOCK_SIZE, (size_t)count * TM_BLOCK_SIZE);
	return 0;
}

static int mem_write(struct tm_dev *dev, uint64_t block, unsigned count, const void *buf)
{
	struct mem_dev *m = (struct mem_dev *)dev;

	dev->writes++;
	if (block > dev->nr_blocks || count > dev->nr_blocks - block)
		return -ERANGE;
	memcpy(m->data + block * TM_BLOCK_SIZE, buf, (size_t)count * TM_BLOCK_SIZE);
	return 0;
}

static int mem_flush(struct tm_dev *dev)
{
	(void)dev;
	return 0;
}

static void mem_close(struct tm_dev *dev)
{
	struct mem_dev *m = (struct mem_dev *)dev;

	free(m->data);
	free(m);
}

static const struct tm_dev_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.flush = mem_flush,
	.close = mem_close,
};

int tm_dev_mem_create(uint64_t nr_blocks, struct tm_dev **out)
{
	struct mem_dev *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->data = calloc(nr_blocks ? nr_blocks : 1, TM_BLOCK_SIZE);
	if (!m->data) {
		free(m);
		return -ENOMEM;
	}
	m->dev.ops = &mem_ops;
	m->dev.nr_blocks = nr_blocks;
	m->dev.size_bytes = nr_blocks * TM_BLOCK_SIZE;
	m->dev.writable = 1;
	*out = &m->dev;
	return 0;
}

uint8_t *tm_dev_mem_data(struct tm_dev *dev)
{
	return dev->ops == &mem_ops ? ((struct mem_dev *)dev)->data : NULL;
}
