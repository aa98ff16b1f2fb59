/*
 * ir.h - the intermediate representation between metadata walkers and
 * sinks: what a dump says, in the order it says it.
 *
 *   superblock_begin (def_begin mapping* def_end)* (device_begin
 *       (mapping | ref)* device_end)* superblock_end
 *
 * A def is a named run of mappings that several devices share; a ref in a
 * device splices a def in.  thin_dump's XML and human-readable writers are
 * sinks; thin_restore's builder is a sink fed by the XML reader.
 * A sink callback returns 0 or a negative errno, which stops the producer.
 */
#ifndef THINMETA_IR_H
#define THINMETA_IR_H

#include <stdint.h>

struct tm_ir_superblock {
	uint8_t uuid[16];
	uint32_t time;
	uint64_t transaction;
	uint32_t flags;
	uint32_t version;
	uint32_t data_block_size;
	uint64_t nr_data_blocks;
	uint64_t metadata_snap;		/* 0 = none */
};

struct tm_ir_device {
	uint64_t dev_id;
	uint64_t mapped_blocks;
	uint64_t transaction;
	uint32_t creation_time;
	uint32_t snap_time;
};

struct tm_ir_run {
	uint64_t origin_begin;
	uint64_t data_begin;
	uint64_t length;
	uint32_t time;
};

struct tm_ir_sink {
	void *ctx;
	int (*superblock_begin)(void *ctx, const struct tm_ir_superblock *sb);
	int (*superblock_end)(void *ctx);
	int (*def_begin)(void *ctx, const char *name);
	int (*def_end)(void *ctx);
	int (*device_begin)(void *ctx, const struct tm_ir_device *dev);
	int (*device_end)(void *ctx);
	int (*ref)(void *ctx, const char *name);
	int (*run)(void *ctx, const struct tm_ir_run *run);
};

/*
 * Mappings gathered into runs for a sink: a mapping whose key and data
 * block follow the open run's, with its time, extends it; any other sends
 * the open run (sink->run) and opens a new one.  Producers (the dump
 * walker, the salvager's emitter) add mappings in key order, flush at the
 * end of a device or def and before a ref, and clear @active to start a
 * new group.
 */
struct tm_ir_runs {
	const struct tm_ir_sink *sink;
	int active;		/* @run holds an open run */
	struct tm_ir_run run;
};

static inline int tm_ir_runs_flush(struct tm_ir_runs *b)
{
	int r = 0;

	if (b->active)
		r = b->sink->run(b->sink->ctx, &b->run);
	b->active = 0;
	return r;
}

/* 0, or what the sink returned for the run this mapping closed. */
static inline int tm_ir_runs_add(struct tm_ir_runs *b, uint64_t key, uint64_t block,
				 uint32_t time)
{
	struct tm_ir_run *run = &b->run;
	int r;

	if (b->active && key == run->origin_begin + run->length &&
	    block == run->data_begin + run->length && time == run->time) {
		run->length++;
		return 0;
	}
	if ((r = tm_ir_runs_flush(b)))
		return r;
	b->active = 1;
	run->origin_begin = key;
	run->data_begin = block;
	run->length = 1;
	run->time = time;
	return 0;
}

#endif
