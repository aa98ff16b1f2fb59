/*
 * ls.h - per-device mapping counts for thin_ls: how many mappings each
 * device has, how many of them are shared, and its highest mapped block,
 * exactly as thin-provisioning-tools 1.1.0 counts them.
 *
 * Sharing (1.1.0's definition, src/thin/ls.rs):
 *   - A node of a bottom-level mapping tree is *shared* when more than one
 *     reference leads to it: two device roots, two parent nodes, or a root
 *     and a parent (each node's references are counted once, however many
 *     devices reach the node).  Every mapping below a shared node is shared.
 *   - Otherwise a mapping is shared when its data block appears in more
 *     than one leaf (counting each distinct leaf once), or twice in one.
 *   - Data blocks at or past @nr_data_blocks are never counted as shared.
 * exclusive = mapped - shared.
 *
 * Rules a tree must obey, or tm_ls_count fails (1.1.0's thin_ls fails the
 * whole listing too): every node passes its validator, holds 8-byte
 * values, has max_entries divisible by 3; a non-root node has at least 84
 * entries; keys ascend and lie in the range the parent gives; all leaves
 * of a tree are at one height; no pointer lies past the device's end.
 */
#ifndef THINMETA_LS_H
#define THINMETA_LS_H

#include <stdint.h>

#include "block.h"
#include "metadata.h"

struct tm_ls_counts {
	uint64_t mapped;	/* mappings in the device's tree */
	uint64_t shared;	/* of which shared */
	uint64_t highest;	/* highest mapped virtual block; 0 if none */
};

/* 1.1.0's minimum number of entries of a non-root node (thin_ls). */
#define TM_LS_MIN_ENTRIES 84u

/*
 * Count the mappings of the @nr_devs devices @devs (as tm_read_devices
 * returns them, mapping roots included) into @out[0..nr_devs).  Data blocks
 * are counted up to @nr_data_blocks (1.1.0 takes the live superblock's value
 * also when the devices come from the held metadata snapshot).  Each
 * distinct node is read once, exclusive leaves twice.
 */
int tm_ls_count(struct tm_bm *bm, const struct tm_device *devs, uint64_t nr_devs,
		uint64_t nr_data_blocks, struct tm_ls_counts *out, struct tm_error *e);

#endif
