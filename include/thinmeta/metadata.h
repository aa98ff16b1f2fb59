/*
 * metadata.h - a pool's metadata opened for reading: the live superblock or
 * the held metadata snapshot, the devices, and their mapping trees.
 *
 * A view names one set of roots: the live superblock's, or those of the
 * superblock copy that reserve_metadata_snap left at held_root.  The copy's
 * space-map roots are zero by design, so a snapshot view has no space maps.
 */
#ifndef THINMETA_METADATA_H
#define THINMETA_METADATA_H

#include <stdint.h>

#include "block.h"
#include "superblock.h"

struct tm_device_details {
	uint64_t mapped_blocks;
	uint64_t transaction_id;
	uint32_t creation_time;
	uint32_t snapshotted_time;
};

void tm_details_decode(const void *p, struct tm_device_details *d);
void tm_details_encode(const struct tm_device_details *d, void *p);

struct tm_device {
	uint64_t dev_id;
	struct tm_device_details details;
	uint64_t mapping_root;	/* root of the device's bottom-level tree */
};

struct tm_view {
	struct tm_superblock sb;	/* the superblock whose roots we use */
	uint64_t sb_block;		/* 0, or held_root for a snapshot */
	int is_snapshot;
};

/*
 * Read and validate the live superblock (block 0).  A checksum mismatch is
 * re-read once before it is called damage (the pool may be writing it).
 */
int tm_read_superblock(struct tm_bm *bm, struct tm_superblock *sb,
		       struct tm_error *e);

/*
 * Read and decode the superblock or superblock copy at block @b, reading it
 * a second time if its checksum fails (a pool may be rewriting it).  Only
 * the block's own rules (checksum, self-location, magic) are applied: the
 * caller checks the fields it relies on (tm_sb_check_fields).
 */
int tm_sb_read(struct tm_bm *bm, uint64_t b, struct tm_superblock *sb,
	       struct tm_error *e);

/* The live view. */
int tm_view_live(struct tm_bm *bm, struct tm_view *v, struct tm_error *e);

/*
 * The held metadata snapshot's view.  @expect: the block the caller expects
 * it at, or 0 for whatever the superblock names.  -ENODATA (TM_RULE_NO_SNAP)
 * when none is held; -EINVAL (TM_RULE_SNAP_MISMATCH) when @expect differs.
 */
int tm_view_snapshot(struct tm_bm *bm, uint64_t expect, struct tm_view *v,
		     struct tm_error *e);

/*
 * The devices of a view, in ascending id: the details tree joined with the
 * top level of the mapping tree.  A device present in one tree but not the
 * other is -EUCLEAN (TM_RULE_DEVICES).  With @details_only the mapping tree
 * is not read (mapping_root is then 0).  *@devs is malloc'd.
 */
int tm_read_devices(struct tm_bm *bm, const struct tm_view *v, int details_only,
		    struct tm_device **devs, uint64_t *nr, struct tm_error *e);

/* The number of data blocks of a view: its data space map's nr_blocks. */
static inline uint64_t tm_view_nr_data_blocks(const struct tm_view *v)
{
	return v->sb.data_sm.nr_blocks;
}

#endif
