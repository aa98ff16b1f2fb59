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

struct pctx {
	const char *path;
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

/* The `run` workload: 0, or 1 after printing an error. */
int run_workload(struct pctx *c, const struct run_opts *o);

#endif
