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

/* In a rewritten leaf list: the entry stands for a whole shared run, a
 * <ref> to the <def> named after the run's first block (the other bits). */
#define TM_GATHER_REF ((uint64_t)1 << 63)

/* The runs of tm_gather_runs, with where each starts and its first block. */
struct tm_gathered {
	uint64_t *runs;		/* every run's leaves, concatenated */
	uint64_t *run_len, *run_start, *heads;
	uint8_t *run_shared;
	uint64_t nr_runs;
};

/*
 * Group the leaf lists into runs (tm_gather_runs) and rewrite each list in
 * place: a shared run becomes one entry, its first block | TM_GATHER_REF,
 * and @lens[i] shrinks to match.  What a dump emits as <def>s is then the
 * shared runs of @g, in order.  0, -ENOMEM, or the gatherer's error; free
 * @g with tm_gathered_free() either way.
 */
int tm_gather_defs(uint64_t *const *lists, uint64_t *lens, size_t nr_lists,
		   uint64_t nr_blocks, struct tm_gathered *g);
void tm_gathered_free(struct tm_gathered *g);

#endif
