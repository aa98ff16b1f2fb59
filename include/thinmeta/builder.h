/*
 * builder.h - write brand-new pool metadata onto a device from IR events
 * (include/thinmeta/ir.h): thin_restore's back end, and thin_repair's.
 *
 * The builder is an IR sink.  It lays the metadata out the way
 * thin-provisioning-tools 1.1.0's thin_restore does: each device's mapping
 * tree is built bottom-up from full leaves (never by repeated inserts),
 * each <def> becomes a run of leaves that every <ref> to it splices into a
 * device's tree (the leaves are shared, their reference counts raised),
 * then the device-details tree, the top-level mapping tree, the data space
 * map (bitmaps, index btree, overflow ref-count tree) and the metadata
 * space map (index block, bitmaps, overflow tree; its own blocks counted
 * in it).  Block 0 is zeroed when the builder is created and the
 * superblock is written only by tm_builder_finish(), after everything else
 * is on the device and flushed: a build that fails anywhere leaves no
 * valid superblock behind.
 *
 * Usage:
 *     tm_builder_create(bm, &opts, &b, &e);      zeroes block 0
 *     tm_builder_sink(b, &sink);
 *     ... a producer feeds sink ...              see the grammar in ir.h
 *     tm_builder_finish(b, &e);                  writes the superblock
 *     tm_builder_destroy(b);
 *
 * What the builder checks of its input (each a -EINVAL with the
 * builder's error saying what): the event grammar (one superblock; defs
 * and devices inside it, not nested; runs inside a def or device; refs
 * only inside a device, to a def defined before); data_block_size within
 * 128..2097152 sectors and a multiple of 128; every device id once; a def
 * name once; runs of length >= 1 whose virtual blocks ascend strictly
 * within a def or device (refs included) and whose data blocks lie below
 * the superblock's nr_data_blocks; times within 24 bits.  Running out of
 * metadata space is -ENOSPC (TM_RULE_TOO_SMALL).
 *
 * Memory: the data space map's counts in 2 bits per data block, allocated
 * per 16320-block bitmap when touched, plus a byte per block of each
 * bitmap holding a count of 3 or more (a table entry per count >= 255);
 * 32 bytes per leaf of the tree being built and of every def, a def's
 * name; a few words per device.  Nothing grows with the number of
 * mappings beyond that.
 */
#ifndef THINMETA_BUILDER_H
#define THINMETA_BUILDER_H

#include <stdint.h>

#include "block.h"
#include "error.h"
#include "ir.h"

struct tm_builder_opts {
	int set_transaction_id;
	uint64_t transaction_id;	/* the larger of this and the IR's */
	int set_nr_data_blocks;
	uint64_t nr_data_blocks;	/* the larger of this and the IR's */
	int set_data_block_size;
	uint32_t data_block_size;	/* replaces the IR's (unchecked) */
	/*
	 * Store each device's mapped_blocks as the number of mappings it
	 * got, not the IR's value (1.1.0 stores the IR's value as given).
	 */
	int recount_mapped_blocks;
};

struct tm_builder;

/*
 * Start building on the device of @bm (opened for writing): zeroes block 0
 * and flushes.  The metadata space is the whole device, up to the format's
 * maximum of 4161600 blocks.  @opts may be NULL.
 */
int tm_builder_create(struct tm_bm *bm, const struct tm_builder_opts *opts,
		      struct tm_builder **out, struct tm_error *e);

/* The IR sink that feeds @b.  A callback's failure is in tm_builder_error(). */
void tm_builder_sink(struct tm_builder *b, struct tm_ir_sink *sink);

/* Why the last sink callback failed (err 0 if none did). */
const struct tm_error *tm_builder_error(const struct tm_builder *b);

/*
 * After superblock_end: write the superblock and flush.  -EINVAL if the IR
 * was incomplete; a failed callback's error (tm_builder_error) if one failed.
 */
int tm_builder_finish(struct tm_builder *b, struct tm_error *e);

void tm_builder_destroy(struct tm_builder *b);

struct tm_builder_stats {
	uint64_t nr_devices;
	uint64_t nr_defs;
	uint64_t nr_mappings;		/* mappings given in runs */
	uint64_t metadata_blocks;	/* metadata blocks in use */
	uint64_t metadata_nr_blocks;	/* size of the metadata space map */
};

void tm_builder_stats(const struct tm_builder *b, struct tm_builder_stats *s);

#endif
