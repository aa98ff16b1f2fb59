/*
 * dump.h - walk a pool's metadata and say what it holds through an IR sink
 * (include/thinmeta/ir.h), as thin-provisioning-tools 1.1.0 says it.
 *
 * Sharing: each device's bottom-level tree is a list of leaves; lists are
 * split into maximal runs of leaves that every device follows the same way
 * (the 1.1.0 "gatherer").  A run reached from more than one place becomes a
 * def named after its first leaf's block number, and a ref in each device.
 * Mapping runs are merged across leaf boundaries and cut at refs and at the
 * end of a def or device.  With expand_shared there are no defs: every
 * device's mappings are given in full, runs merged across all its leaves,
 * which is the canonical form of a pool's content.
 */
#ifndef THINMETA_DUMP_H
#define THINMETA_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "block.h"
#include "ir.h"

struct tm_dump_opts {
	int metadata_snap;		/* dump the held metadata snapshot */
	uint64_t snap_block;		/* the block expected for it, 0 = any */
	int skip_mappings;		/* devices only, from the details tree */
	int expand_shared;		/* no defs/refs */
	const uint64_t *dev_ids;	/* only these devices (NULL = all) */
	size_t nr_dev_ids;
	/* Overrides of the superblock's values (ignored for a snapshot). */
	int set_transaction_id;
	uint64_t transaction_id;	/* the larger of this and the disk's */
	int set_nr_data_blocks;
	uint64_t nr_data_blocks;	/* the larger of this and the disk's */
	int set_data_block_size;
	uint32_t data_block_size;	/* replaces the disk's */
};

int tm_dump(struct tm_bm *bm, const struct tm_dump_opts *opts,
	    const struct tm_ir_sink *sink, struct tm_error *e);

/*
 * The gatherer, exposed for its unit tests.  @lists[i] has @lens[i] leaf
 * blocks; every block is < @nr_blocks.  On return *@runs holds the atomic
 * runs, concatenated, in ascending order of their first block; *@run_len
 * and *@run_shared describe each of the *@nr_runs runs.  All malloc'd.
 */
int tm_gather_runs(const uint64_t *const *lists, const uint64_t *lens,
		   size_t nr_lists, uint64_t nr_blocks, uint64_t **runs,
		   uint64_t **run_len, uint8_t **run_shared, uint64_t *nr_runs);

#endif
