/*
 * fuzz_dev.c - the image container of the fuzz targets (see fuzz.h): a
 * sparse, read-only metadata device described by the fuzz input.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "thinmeta/block.h"
#include "thinmeta/format.h"

void fz_bug(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz invariant broken: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---------------------------------------------------------------- parsing */

static const uint32_t salts[4] = {
	TM_SALT_SUPERBLOCK, TM_SALT_BTREE_NODE, TM_SALT_BITMAP, TM_SALT_INDEX,
};

static void seal(uint8_t *blk, uint64_t b, unsigned mode)
{
	if (mode >= 1 && mode <= 4)
		tm_block_seal(blk, b, salts[mode - 1]);
	else if (mode >= 5 && mode <= 8)
		tm_put_le32(blk, tm_block_crc(blk) ^ salts[mode - 5]);
}

struct rec {
	uint64_t block;
	size_t order;		/* position in the input: later wins */
	const uint8_t *data;
	uint16_t len;
	uint8_t seal;
};

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->block != y->block)
		return x->block < y->block ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

int fz_image_parse(const uint8_t *in, size_t len, struct fz_image *img)
{
	struct rec *recs;
	size_t n = 0, pos = FZ_HEADER_SIZE;
	struct fz_rec_header h;
	uint64_t top = 0;

	memset(img, 0, sizeof(*img));
	if (len < FZ_HEADER_SIZE)
		return -1;
	img->nr_blocks = tm_le32(in);
	img->flags = in[4];
	img->cache = in[5];
	img->param = tm_le64(in + 8);

	recs = malloc(FZ_MAX_RECORDS * sizeof(*recs));
	if (!recs)
		return -1;
	while (n < FZ_MAX_RECORDS && fz_next_record(in, len, &pos, &h)) {
		struct rec *r = &recs[n];
		r->block = h.block;
		r->seal = h.seal;
		r->len = h.len;
		r->data = in + pos;
		r->order = n;
		pos += r->len;
		if (r->block + 1 > top)
			top = r->block + 1;
		n++;
	}
	if (!img->nr_blocks)
		img->nr_blocks = top;
	qsort(recs, n, sizeof(*recs), cmp_rec);

	img->blocks = malloc((n ? n : 1) * sizeof(*img->blocks));
	img->data = malloc((n ? n : 1) * (size_t)TM_BLOCK_SIZE);
	if (!img->blocks || !img->data) {
		free(recs);
		fz_image_free(img);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rec *r = &recs[i];
		if (r->block >= img->nr_blocks)
			continue;
		if (i + 1 < n && recs[i + 1].block == r->block)
			continue;	/* a later record replaces this one */
		uint8_t *blk = img->data + img->nr * (size_t)TM_BLOCK_SIZE;
		memset(blk, 0, TM_BLOCK_SIZE);
		memcpy(blk, r->data, r->len);
		seal(blk, r->block, r->seal);
		img->blocks[img->nr++] = r->block;
	}
	free(recs);
	return 0;
}

void fz_image_free(struct fz_image *img)
{
	free(img->blocks);
	free(img->data);
	img->blocks = NULL;
	img->data = NULL;
	img->nr = 0;
}

/* ---------------------------------------------------------------- device */

struct fz_dev {
	struct tm_dev dev;
	const struct fz_image *img;
};

static const uint8_t *find_block(const struct fz_image *img, uint64_t b)
{
	size_t lo = 0, hi = img->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (img->blocks[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < img->nr && img->blocks[lo] == b)
		return img->data + lo * (size_t)TM_BLOCK_SIZE;
	return NULL;
}

static int fz_read(struct tm_dev *dev, uint64_t block, unsigned count, void *buf)
{
	struct fz_dev *f = (struct fz_dev *)dev;
	uint8_t *out = buf;

	dev->reads++;
	if (block > dev->nr_blocks || count > dev->nr_blocks - block)
		return -ERANGE;
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *src = find_block(f->img, block + i);
		if (src)
			memcpy(out + (size_t)i * TM_BLOCK_SIZE, src, TM_BLOCK_SIZE);
		else
			memset(out + (size_t)i * TM_BLOCK_SIZE, 0, TM_BLOCK_SIZE);
	}
	return 0;
}

static int fz_write(struct tm_dev *dev, uint64_t block, unsigned count, const void *buf)
{
	(void)block;
	(void)count;
	(void)buf;
	dev->writes++;
	fz_bug("a read-only path wrote to the metadata device");
}

static int fz_flush(struct tm_dev *dev)
{
	(void)dev;
	return 0;
}

static void fz_close(struct tm_dev *dev)
{
	free(dev);
}

static const struct tm_dev_ops fz_ops = {
	.read = fz_read,
	.write = fz_write,
	.flush = fz_flush,
	.close = fz_close,
};

int fz_dev_open(const struct fz_image *img, struct tm_dev **out)
{
	struct fz_dev *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->dev.ops = &fz_ops;
	f->dev.nr_blocks = img->nr_blocks;
	f->dev.size_bytes = img->nr_blocks * TM_BLOCK_SIZE;
	f->dev.writable = 0;
	f->img = img;
	*out = &f->dev;
	return 0;
}
