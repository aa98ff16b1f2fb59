/*
 * repair.h - salvage what a damaged pool's metadata still holds, and say
 * what was lost: thin_repair's and thin_dump --repair's engine.
 *
 * tm_salvage() reads the metadata (never writes it) and produces a
 * salvage: the superblock values, the devices and, for each, the intact
 * mapping leaves in key order.  tm_salvage_emit() feeds it to an IR sink
 * (ir.h): the XML writer, or the metadata builder (builder.h) which writes
 * fresh metadata with space maps computed from what was salvaged.
 *
 * How (docs/thin_repair.md has the long version):
 *
 *  1. The superblock at block 0 names the roots when it is intact.
 *     Otherwise every metadata block is scanned, btree nodes are told apart
 *     by their checksum salt, value size and what they point to, and the
 *     roots are chosen among the nodes nothing else points to: pairs of a
 *     mapping tree and a details tree holding the same devices and the same
 *     number of mappings, intact trees before damaged ones, the most recent
 *     mapping times first (1.1.0's order), then the highest transaction.
 *  2. The details tree, the top level of the mapping tree and each
 *     device's tree are walked from their roots.  A node that cannot be
 *     used (unreadable, bad checksum, wrong location, broken header, keys
 *     out of order or outside the parent's range, wrong depth, a cycle)
 *     leaves a hole: its key range and its block are recorded, the rest of
 *     the tree is kept.
 *  3. Holes are filled from orphans, but only when the metadata space map
 *     vouches for them: a node is a child of a damaged node exactly when
 *     its reference count is higher than the number of intact, allocated
 *     nodes (and superblocks) that point to it.  Such a node is brought
 *     back under the hole it fits (same tree kind, key range inside the
 *     hole's, the right height, mapping times not after the pool's time),
 *     unless more lost nodes (anywhere: the metadata snapshot's too) could
 *     be its parent than it has references missing: then it is ambiguous
 *     and not used.  Stale copies of nodes, which the kernel's copy-on-write
 *     leaves all over the device, have a reference count of 0 and are never
 *     used.
 *     The held metadata snapshot's trees count as parents like any other,
 *     so leaves it shares with a damaged live node are found the same way.
 *  4. A lost top-level leaf loses which device owns which mapping tree.
 *     The orphaned trees are matched to the devices the details tree lists
 *     in the leaf's key range: by the metadata snapshot when it names the
 *     same tree for the device, else by the number of mappings.  Devices
 *     that cannot be told apart this way are left out (and listed in the
 *     report) rather than guessed.
 *  5. A lost details leaf: the devices the mapping tree still has get new
 *     details: mapped_blocks counted, creation time from the metadata
 *     snapshot if it knows the device, and a snapshot time after every
 *     mapping time, so the kernel treats all their mappings as shared
 *     (copy on write: safe whatever was shared before).
 *
 * Mappings to data blocks at or past nr_data_blocks are dropped (and
 * counted).  Nothing is taken from the metadata snapshot's mapping trees
 * that the live trees do not still point to: an older leaf may map data
 * blocks that have since been reused.
 *
 * Superblock values.  With an intact superblock: its values, with the
 * overrides applied as 1.1.0 applies them (transaction id and
 * nr_data_blocks: the larger; data block size: replaced).  Without one:
 * the data block size comes from the override, else from a superblock
 * copy the metadata snapshot left (checksum intact); the transaction id
 * and nr_data_blocks are guessed when not given (the highest device
 * transaction + 1, or the snapshot copy's if higher; the highest mapped
 * data block + 1, which the pool grows to its data device's size on
 * activation) and the report says so.
 *
 * Memory: a few words per metadata block scanned (only when something is
 * damaged), a word per leaf per device; nothing per mapping.
 */
#ifndef THINMETA_REPAIR_H
#define THINMETA_REPAIR_H

#include <stddef.h>
#include <stdint.h>

#include "block.h"
#include "error.h"
#include "ir.h"

struct tm_repair_opts {
	int set_transaction_id;
	uint64_t transaction_id;	/* the larger of this and the disk's */
	int set_nr_data_blocks;
	uint64_t nr_data_blocks;	/* the larger of this and the disk's */
	int set_data_block_size;
	uint32_t data_block_size;	/* replaces the disk's */
	int force_scan;			/* scan every block even if intact */
};

/* Where a superblock value came from. */
enum tm_repair_src {
	TM_SRC_SUPERBLOCK = 0,	/* the intact superblock */
	TM_SRC_OPTION,		/* the caller's override */
	TM_SRC_SNAPSHOT_COPY,	/* the metadata snapshot's superblock copy */
	TM_SRC_GUESS,		/* derived from the trees (see above) */
	TM_SRC_NONE,		/* unknown: the caller must give it */
};

struct tm_repair_value {
	uint64_t value;
	enum tm_repair_src src;
};

/* A key range lost, and why. */
struct tm_repair_loss {
	uint64_t begin, end;		/* virtual blocks, inclusive */
	uint64_t block;			/* the node that could not be used */
	enum tm_rule why;
};

enum tm_repair_dev_state {
	TM_DEV_INTACT = 0,	/* every mapping the details promise */
	TM_DEV_DAMAGED,		/* some mappings lost (see losses) */
	TM_DEV_LEFT_OUT,	/* not written: its tree could not be identified */
};

struct tm_repair_dev {
	uint64_t dev_id;
	enum tm_repair_dev_state state;
	int have_details;		/* the details tree had it */
	int details_rebuilt;		/* its details were made up */
	int root_assigned;		/* its tree was matched to it (step 4) */
	uint64_t mapped_blocks;		/* the details' value (have_details) */
	uint64_t recovered;		/* mappings salvaged */
	uint64_t dropped;		/* mappings past nr_data_blocks */
	struct tm_repair_loss *losses;
	size_t nr_losses;
};

/* A node that could not be used, where it was met. */
struct tm_repair_bad {
	uint64_t block;
	enum tm_rule why;
	char where[48];			/* "device 3 mapping tree", ... */
};

struct tm_repair_report {
	/* the superblock */
	int sb_intact;
	enum tm_rule sb_rule;		/* why not (sb_intact == 0) */
	char sb_msg[256];
	int sb_legible;			/* damaged, but magic and fields look sane */
	uint32_t sb_hint_data_block_size;	/* what a legible one says */
	uint64_t sb_hint_transaction_id;
	uint64_t sb_hint_nr_data_blocks;

	/* the roots */
	int roots_searched;		/* 1: chosen by the scan (step 1) */
	uint64_t mapping_root, details_root;
	uint64_t nr_root_candidates;	/* mapping trees found by the scan */
	uint64_t nr_pairs;		/* of which paired with a details tree */
	int details_missing;		/* no details tree: all rebuilt */
	uint64_t snap_block;		/* metadata snapshot used (0: none) */
	int scanned;			/* every block was read */
	uint64_t nr_blocks;		/* metadata device size (at most the
				 * format's 4161600 blocks: what a scan reads) */
	uint64_t nr_nodes_found;	/* intact btree nodes seen by the scan */
	uint64_t nr_io_errors;		/* blocks that could not be read */
	int sm_usable;			/* the metadata space map vouched */
	char sm_msg[256];		/* why not */

	/* the values written */
	struct tm_repair_value transaction_id, nr_data_blocks, data_block_size, time;

	/* what was done */
	uint64_t nr_adopted;		/* orphan subtrees brought back */
	uint64_t nr_unclaimed;		/* orphan subtrees with no owner found */
	uint64_t nr_orphan_trees;	/* orphan device trees (step 4) left */

	struct tm_repair_dev *devs;	/* ascending dev_id */
	size_t nr_devs;
	struct tm_repair_bad *bad;	/* in the order met */
	size_t nr_bad;

	uint64_t total_recovered;	/* mappings salvaged, all devices */
	uint64_t total_expected;	/* sum of the details' mapped_blocks */
};

struct tm_salvage;

/*
 * Salvage the metadata on @bm's device.  Returns 0 with *@out set, or:
 *   -ENODATA  nothing usable: no superblock and no roots found, or no
 *             device survives; *@out is still set so that the caller can
 *             print the report (what was tried)
 *   -EINVAL   a value the superblock held is needed (report field
 *             data_block_size.src == TM_SRC_NONE); *@out set likewise
 *   -ENOMEM, -EIO (the device failed everywhere)
 * @e says why in one sentence.  The device is only read.
 */
int tm_salvage(struct tm_bm *bm, const struct tm_repair_opts *opts,
	       struct tm_salvage **out, struct tm_error *e);

const struct tm_repair_report *tm_salvage_report(const struct tm_salvage *s);

struct tm_salvage_emit_opts {
	int expand_shared;		/* no defs/refs */
	int skip_mappings;		/* devices only */
	const uint64_t *dev_ids;	/* only these devices (NULL = all) */
	size_t nr_dev_ids;
	int keep_flags;			/* pass the superblock's flags on */
};

/*
 * Feed the salvaged metadata to @sink (ir.h's grammar), sharing leaves
 * between devices as thin_dump does (defs named after their first leaf's
 * block).  The leaves are read again and must still be intact.  The IR's
 * mapped_blocks is the number of mappings salvaged.
 */
int tm_salvage_emit(struct tm_salvage *s, const struct tm_salvage_emit_opts *opts,
		    const struct tm_ir_sink *sink, struct tm_error *e);

void tm_salvage_free(struct tm_salvage *s);

/* Short names, for reports: "option", "guessed", ... */
const char *tm_repair_src_name(enum tm_repair_src src);

#endif
