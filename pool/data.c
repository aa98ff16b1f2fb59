/*
 * data.c - thin_pool's data device: a file (or block device) holding the
 * pool's data blocks, so that a pool lives wholly in two files.
 *
 * The engine decides what a write does to the metadata (tm_pool_write:
 * the block was mapped, newly provisioned, or copied on write, and which
 * data block it maps to now); this file moves the bytes as dm-thin does:
 *   - mapped and not shared: the written bytes go into the block in place;
 *   - newly provisioned: the block is zeroed, then written (a whole-block
 *     write needs no zeroing);
 *   - copy-on-write: the old block's bytes are copied into the new block,
 *     then the written bytes go over them (a whole-block write needs no
 *     copy).
 * The data file is flushed before every commit (the kernel's pre-commit
 * callback), so that no committed mapping points at data that is not on
 * the disk.  Unmapped blocks read as zeroes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "pool_tool.h"
#include "thinmeta/io.h"
#include "thinmeta/format.h"
#include "tool.h"

#define CHUNK (1u << 20)	/* bytes moved at a time */

struct pdata {
	int fd;
	uint64_t size;		/* bytes */
	uint64_t block_bytes;
	uint64_t nr_blocks;	/* the pool's, checked against the size */
	size_t chunk_len;
	uint8_t *chunk;
	int dirty;		/* written since the last flush */
	int failed;		/* an I/O error: nothing more is committed */
};

/* ------------------------------------------------------------------ */

/* The size of a regular file or block device, or a negative errno. */
static int dev_size(int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		return 0;
	}
	if (ioctl(fd, BLKGETSIZE64, size) < 0)
		return -errno;
	return 0;
}

static int too_small(const char *path, uint64_t size, uint64_t nr_blocks, uint64_t bb)
{
	msg("data file '%s' holds %llu bytes: %llu data blocks of %llu bytes need %llu "
	    "(grow it first, e.g. truncate -s %llu)",
	    path, (unsigned long long)size, (unsigned long long)nr_blocks,
	    (unsigned long long)bb, (unsigned long long)(nr_blocks * bb),
	    (unsigned long long)(nr_blocks * bb));
	return -1;
}

/* Open --data for reading and writing; 0, or prints and returns -1. */
static int open_data(struct pctx *c, int *fdp, uint64_t *size)
{
	struct stat st, mst;
	int fd;

	if (stat(c->data_path, &st) < 0) {
		msg("data file '%s': %s", c->data_path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		msg("data file '%s' is not a regular file or block device", c->data_path);
		return -1;
	}
	if (stat(c->path, &mst) == 0 && mst.st_dev == st.st_dev && mst.st_ino == st.st_ino) {
		msg("data file '%s' is the metadata file: the pool needs two", c->data_path);
		return -1;
	}
	/* the kernel holds its data device exclusively */
	fd = open(c->data_path, O_RDWR | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0));
	if (fd < 0) {
		msg("data file '%s': cannot open for writing: %s", c->data_path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || dev_size(fd, &st, size) < 0) {
		msg("data file '%s': cannot find its size: %s", c->data_path, strerror(errno));
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

int pdata_check_format(struct pctx *c, uint32_t block_sectors, uint64_t nr_blocks)
{
	uint64_t size, bb = (uint64_t)block_sectors * TM_SECTOR_SIZE;
	int fd, r = 0;

	if (!c->data_path)
		return 0;
	if (open_data(c, &fd, &size))
		return -1;
	if (nr_blocks > UINT64_MAX / bb || size < nr_blocks * bb)
		r = too_small(c->data_path, size, nr_blocks, bb);
	close(fd);
	return r;
}

/* The kernel's pre-commit callback: data before the mappings to it. */
static int flush_data(void *ctx, struct tm_error *e)
{
	struct pctx *c = ctx;
	struct pdata *d = c->data;

	if (d->failed)
		return tm_fail(e, -EIO, TM_RULE_IO, TM_NO_BLOCK,
			       "data file '%s': an earlier write failed: nothing more is committed",
			       c->data_path);
	if (!d->dirty)
		return 0;
	if (fdatasync(d->fd) < 0) {
		int err = errno;
		d->failed = 1;
		return tm_fail(e, -err, TM_RULE_IO, TM_NO_BLOCK, "data file '%s': flush failed: %s",
			       c->data_path, strerror(err));
	}
	d->dirty = 0;
	return 0;
}

int pdata_attach(struct pctx *c)
{
	struct pdata *d;
	uint64_t size;
	int fd;

	if (!c->data_path || c->data)
		return 0;
	if (open_data(c, &fd, &size))
		return -1;
	d = calloc(1, sizeof(*d));
	if (!d) {
		msg("out of memory");
		close(fd);
		return -1;
	}
	d->fd = fd;
	d->size = size;
	d->block_bytes = (uint64_t)tm_pool_data_block_size(c->pool) * TM_SECTOR_SIZE;
	d->chunk_len = d->block_bytes < CHUNK ? (size_t)d->block_bytes : CHUNK;
	d->chunk = malloc(d->chunk_len);
	c->data = d;
	if (!d->chunk) {
		msg("out of memory");
		return -1;
	}
	if (pdata_check_size(c, tm_pool_nr_data_blocks(c->pool)))
		return -1;
	tm_pool_set_pre_commit(c->pool, flush_data, c);
	return 0;
}

int pdata_check_size(struct pctx *c, uint64_t nr_blocks)
{
	struct pdata *d = c->data;

	if (!d)
		return 0;
	if (nr_blocks > UINT64_MAX / d->block_bytes || d->size < nr_blocks * d->block_bytes)
		return too_small(c->data_path, d->size, nr_blocks, d->block_bytes);
	return 0;
}

int pdata_failed(const struct pctx *c)
{
	return c->data && c->data->failed;
}

int pdata_close(struct pctx *c)
{
	struct pdata *d = c->data;
	int r = 0;

	if (!d)
		return 0;
	if (d->dirty && !d->failed && fdatasync(d->fd) < 0) {
		msg("data file '%s': flush failed: %s", c->data_path, strerror(errno));
		r = -EIO;
	}
	if (close(d->fd) < 0 && !r) {
		msg("data file '%s': %s", c->data_path, strerror(errno));
		r = -EIO;
	}
	free(d->chunk);
	free(d);
	c->data = NULL;
	return r;
}

/* ------------------------------------------------------------------ */
/* Writes */

/*
 * The stamp: the line "dev ID block VB tag TAG\n" repeated from the
 * block's first byte, the last copy cut at the block's end; @pos is the
 * position in the block of @buf's first byte.
 */
static void stamp(uint8_t *buf, size_t n, uint64_t pos, const char *line, size_t len)
{
	size_t i = (size_t)(pos % len);

	while (n) {
		size_t k = len - i < n ? len - i : n;
		memcpy(buf, line + i, k);
		buf += k;
		n -= k;
		i = 0;
	}
}

static int data_error(struct pctx *c, int err, const char *what, uint64_t block,
		      struct tm_error *e)
{
	c->data->failed = 1;
	return tm_fail(e, err, TM_RULE_IO, TM_NO_BLOCK, "data file '%s': cannot %s data block %llu: %s",
		       c->data_path, what, (unsigned long long)block, strerror(-err));
}

static int past_end(struct pctx *c, uint64_t block, struct tm_error *e)
{
	struct pdata *d = c->data;

	if (block < d->size / d->block_bytes)
		return 0;
	return tm_fail(e, -EINVAL, TM_RULE_OUT_OF_RANGE, TM_NO_BLOCK,
		       "data file '%s': data block %llu is past its end (%llu bytes)",
		       c->data_path, (unsigned long long)block, (unsigned long long)d->size);
}

static int put_block(struct pctx *c, uint64_t id, uint64_t vb, enum tm_provision what,
		     uint64_t old, uint64_t nb, const struct wspec *w, struct tm_error *e)
{
	struct pdata *d = c->data;
	uint64_t bb = d->block_bytes, w0 = w->offset, w1 = w->offset + w->length;
	char line[160];
	int r;

	snprintf(line, sizeof(line), "dev %llu block %llu tag %s\n", (unsigned long long)id,
		 (unsigned long long)vb, w->tag);
	if ((r = past_end(c, nb, e)) || (what == TM_PROV_COW && (r = past_end(c, old, e)))) {
		d->failed = 1;		/* the mapping is in the transaction */
		return r;
	}
	for (uint64_t pos = 0; pos < bb; pos += d->chunk_len) {
		uint64_t n = bb - pos < d->chunk_len ? bb - pos : d->chunk_len;
		uint64_t lo = pos > w0 ? pos : w0, hi = pos + n < w1 ? pos + n : w1;
		int inside = lo < hi;

		if (what == TM_PROV_MAPPED) {
			/* in place: only the written bytes */
			if (!inside)
				continue;
			stamp(d->chunk, (size_t)(hi - lo), lo, line, strlen(line));
			r = tm_pwrite_full(d->fd, d->chunk, (size_t)(hi - lo), nb * bb + lo);
			if (r)
				return data_error(c, r, "write", nb, e);
			continue;
		}
		if (!(inside && lo == pos && hi == pos + n)) {
			/* the bytes not written: the old block's, or zeroes */
			if (what == TM_PROV_COW) {
				r = tm_pread_full(d->fd, d->chunk, (size_t)n, old * bb + pos);
				if (r)
					return data_error(c, r, "read", old, e);
			} else {
				memset(d->chunk, 0, (size_t)n);
			}
		}
		if (inside)
			stamp(d->chunk + (lo - pos), (size_t)(hi - lo), lo, line, strlen(line));
		r = tm_pwrite_full(d->fd, d->chunk, (size_t)n, nb * bb + pos);
		if (r)
			return data_error(c, r, "write", nb, e);
	}
	d->dirty = 1;
	return 0;
}

int pool_write_block(struct pctx *c, uint64_t id, uint64_t vb, const struct wspec *w,
		     struct tm_error *e)
{
	enum tm_provision what;
	uint64_t old = 0, nb;
	uint32_t time;
	int r;

	if (!c->data)
		return tm_pool_write(c->pool, id, vb, &what, &nb, e);
	if (c->data->failed)
		return tm_fail(e, -EIO, TM_RULE_IO, TM_NO_BLOCK,
			       "data file '%s': an earlier write failed", c->data_path);
	/* the block a copy-on-write copies from */
	r = tm_pool_lookup(c->pool, id, vb, &old, &time, e);
	if (r && r != -ENODATA)
		return r;
	tm_error_clear(e);
	r = tm_pool_write(c->pool, id, vb, &what, &nb, e);
	if (r)
		return r;
	return put_block(c, id, vb, what, old, nb, w, e);
}

/* ------------------------------------------------------------------ */
/* Reads */

/* hexdump -C's canonical format, repeated lines shown as one '*'. */
struct hex {
	FILE *out;
	uint64_t addr;		/* of the next byte */
	uint8_t prev[16];
	int have_prev, starred;
};

static void hex_line(struct hex *h, const uint8_t *b)
{
	if (h->have_prev && !memcmp(b, h->prev, 16)) {
		if (!h->starred)
			fputs("*\n", h->out);
		h->starred = 1;
		h->addr += 16;
		return;
	}
	fprintf(h->out, "%08llx ", (unsigned long long)h->addr);
	for (int i = 0; i < 16; i++)
		fprintf(h->out, "%s%02x", i == 8 ? "  " : " ", b[i]);
	fputs("  |", h->out);
	for (int i = 0; i < 16; i++)
		fputc(b[i] >= 0x20 && b[i] < 0x7f ? b[i] : '.', h->out);
	fputs("|\n", h->out);
	memcpy(h->prev, b, 16);
	h->have_prev = 1;
	h->starred = 0;
	h->addr += 16;
}

/* -EPIPE (a reader that went away) carries no message: nothing to say. */
static int out_error(struct tm_error *e)
{
	int err = errno ? errno : EIO;

	if (err == EPIPE)
		return tm_fail(e, -EPIPE, TM_RULE_IO, TM_NO_BLOCK, "%s", "");
	return tm_fail(e, -err, TM_RULE_IO, TM_NO_BLOCK, "error writing the output: %s",
		       strerror(err));
}

int pdata_read(struct pctx *c, uint64_t id, uint64_t begin, uint64_t count, FILE *out,
	       int raw, struct tm_error *e)
{
	struct pdata *d = c->data;
	uint64_t bb = d->block_bytes;
	struct hex h = { out, begin * bb, { 0 }, 0, 0 };
	int r;

	for (uint64_t vb = begin; vb < begin + count; vb++) {
		uint64_t db;
		uint32_t time;
		int mapped;

		r = tm_pool_lookup(c->pool, id, vb, &db, &time, e);
		if (r && r != -ENODATA)
			return r;
		mapped = !r;
		tm_error_clear(e);
		if (mapped && (r = past_end(c, db, e)))
			return r;
		for (uint64_t pos = 0; pos < bb; pos += d->chunk_len) {
			size_t n = (size_t)(bb - pos < d->chunk_len ? bb - pos : d->chunk_len);
			if (!mapped)
				memset(d->chunk, 0, n);
			else if ((r = tm_pread_full(d->fd, d->chunk, n, db * bb + pos)))
				return tm_fail(e, r, TM_RULE_IO, TM_NO_BLOCK,
					       "data file '%s': cannot read data block %llu: %s",
					       c->data_path, (unsigned long long)db, strerror(-r));
			if (raw) {
				if (fwrite(d->chunk, 1, n, out) != n)
					return out_error(e);
				continue;
			}
			/* block sizes are multiples of 64 KiB: whole lines */
			for (size_t i = 0; i < n; i += 16)
				hex_line(&h, d->chunk + i);
		}
	}
	if (!raw)
		fprintf(out, "%08llx\n", (unsigned long long)h.addr);
	if (fflush(out) || ferror(out))
		return out_error(e);
	return 0;
}
