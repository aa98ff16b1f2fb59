/*
 * pool_tool.h - what thin_pool's command interpreter and its random
 * workload (run.c) share.
 */
#ifndef THINMETA_POOL_TOOL_H
#define THINMETA_POOL_TOOL_H

#include <stdint.h>
#include <stdio.h>

#include "thinmeta/error.h"
#include "thinmeta/io.h"
#include "thinmeta/pool.h"

struct pdata;

struct pctx {
	const char *path;
	const char *data_path;		/* --data: the pool's data device (a file) */
	struct pdata *data;		/* open once the pool is */
	struct tm_dev *dev;
	struct tm_pool *pool;
	int lock_fd;			/* flock()ed while we write */
	FILE *log;			/* --log: one line per commit */
	uint64_t commits;		/* completed commits, for the log */
};

/* The pool, opened on first use.  0, or prints why not and returns -1. */
int pctx_pool(struct pctx *c);

/* Report an engine error: "thin_pool: WHERE message". */
void report(const char *where, const struct tm_error *e);

struct run_opts {
	uint64_t ops;
	uint64_t seed;
	uint64_t seconds;		/* 0: no limit */
	int keep_held;
};

/* ------------------------------------------------------------ data (data.c) */

/* What a write puts in each block: see docs/thin_pool.md, "Data". */
struct wspec {
	const char *tag;		/* the stamp's tag (never NULL) */
	uint64_t offset, length;	/* the bytes of each block written */
};

/*
 * Check, before formatting, that the data file holds @nr_blocks blocks of
 * @block_sectors sectors.  0, or prints why not and returns -1.
 */
int pdata_check_format(struct pctx *c, uint32_t block_sectors, uint64_t nr_blocks);
/* Open the data file for the open pool (a no-op without --data). */
int pdata_attach(struct pctx *c);
/* resize_data: the data file must hold @nr_blocks blocks.  0 or -1 (printed). */
int pdata_check_size(struct pctx *c, uint64_t nr_blocks);
/*
 * Write virtual block @vb of @id: the metadata (tm_pool_write) and, with a
 * data file, the bytes.  Returns tm_pool_write's result, or a negative
 * errno for a data-file error (@e says which block); after a data-file
 * error nothing more is committed.
 */
int pool_write_block(struct pctx *c, uint64_t id, uint64_t vb, const struct wspec *w,
		     struct tm_error *e);
/* A data-file error happened: the transaction must not be committed. */
int pdata_failed(const struct pctx *c);
/* Read virtual blocks [@begin, @begin + @count) of @id to @out: raw, or hex. */
int pdata_read(struct pctx *c, uint64_t id, uint64_t begin, uint64_t count, FILE *out,
	       int raw, struct tm_error *e);
/* Flush and close the data file.  0 or a negative errno (printed). */
int pdata_close(struct pctx *c);

/* The `run` workload: 0, or 1 after printing an error. */
int run_workload(struct pctx *c, const struct run_opts *o);

#endif
