/*
 * check.h - verify a pool's metadata: everything the format promises
 * (docs/thin_check.md), reported as findings from the problem table
 * (problem.h) through a callback.  The checker never prints.
 *
 * What is checked, in order:
 *   1. the live superblock (and the held snapshot's copy): checksum,
 *      self-location, magic, version, features, sizes, roots in range;
 *   2. the device details and top-level mapping trees of both; their key
 *      sets must agree;
 *   3. every bottom-level mapping tree, level by level across all devices
 *      (each level read in block order): node checksums, self-location,
 *      headers, value sizes, key order, key ranges against the parents,
 *      uniform depth, cycles, pointers in range; mappings below
 *      nr_data_blocks and not later than the pool's time; mapped_blocks;
 *   4. the space maps: the index (block or tree), the bitmaps and the
 *      overflow ref-count trees, against reference counts computed from
 *      every reference found above (each block counted once per reference
 *      and descended into once; each data block once per entry of each
 *      distinct bottom-level leaf).  A count on disk above the computed one
 *      is a leak (non-fatal); below it is fatal.
 *
 * With repair set, and no fatal problem found, leaks are fixed in place
 * (bitmaps, overflow entries, index free counts, the roots' nr_allocated),
 * and then needs_check is cleared; the superblock is written last.  Blocks
 * that need no change are never written.
 */
#ifndef THINMETA_CHECK_H
#define THINMETA_CHECK_H

#include <stdint.h>

#include "block.h"
#include "problem.h"
#include "superblock.h"

enum tm_check_phase {
	TM_PHASE_SUPERBLOCK,	/* superblock read: result's sb fields valid */
	TM_PHASE_START,		/* "Checking thin metadata" */
	TM_PHASE_DETAILS,	/* "device details tree" */
	TM_PHASE_MAPPINGS,	/* "mapping tree" */
	TM_PHASE_DATA_SM,	/* "data space map" */
	TM_PHASE_META_SM,	/* "metadata space map" */
	TM_PHASE_REPAIR,
	TM_PHASE_DONE,
};

struct tm_check_opts {
	int sb_only;		/* the superblock only */
	int skip_mappings;	/* superblock, details and top-level trees */
	int metadata_snap;	/* the held snapshot's trees only (no space maps) */
	int repair;		/* fix leaks (if no fatal problem), clear needs_check */
	int clear_needs_check;	/* clear needs_check if nothing fatal (and nothing
				 * non-fatal left, unless ignore_non_fatal) */
	int ignore_non_fatal;	/* non-fatal problems do not block clearing */
	int override_mapping_root, override_details_root;
	uint64_t mapping_root, details_root;
	int detect_changes;	/* re-read the superblock at the end */
};

struct tm_check_callbacks {
	void *ctx;
	/* A finding.  The struct and what it points to live for the call only. */
	void (*problem)(void *ctx, const struct tm_problem *p);
	/* A phase starts. */
	void (*phase)(void *ctx, enum tm_check_phase phase);
	/* Work done out of an estimated total (metadata blocks). */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	/* A repair action, in words ("rewrote data space map bitmap at block 12"). */
	void (*repaired)(void *ctx, const char *what);
};

struct tm_check_result {
	int have_sb;			/* the live superblock could be read */
	struct tm_superblock sb;	/* the live superblock */
	uint64_t transaction_id;	/* TRANSACTION_ID= */
	uint64_t metadata_free;		/* METADATA_FREE_BLOCKS= */
	uint64_t nr_problems[TM_SEV__COUNT];	/* findings by severity */
	uint64_t nr_by_code[TM_PR__COUNT];
	uint64_t nr_fixable;		/* non-fatal findings that repair fixes */
	uint64_t nr_devices, nr_snap_devices;
	uint64_t nr_nodes, nr_mappings;	/* nodes read, leaf entries seen */
	uint64_t data_leaked, meta_leaked;	/* blocks */
	int changed;			/* the metadata changed under us */
	int repaired;			/* something was written */
	int needs_check_cleared;
	int complete;			/* every phase asked for ran */
};

/*
 * Check the metadata behind @bm.  Returns 0 when the check ran (findings
 * go to @cb and are counted in @res), or a negative errno when it could not
 * (-ENOMEM, or a failed write while repairing, with @e filled in).
 */
int tm_check(struct tm_bm *bm, const struct tm_check_opts *opts,
	     const struct tm_check_callbacks *cb, struct tm_check_result *res,
	     struct tm_error *e);

#endif
