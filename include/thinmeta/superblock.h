/*
 * superblock.h - the thin superblock (block 0) and its held copy.
 */
#ifndef THINMETA_SUPERBLOCK_H
#define THINMETA_SUPERBLOCK_H

#include <stdint.h>

#include "error.h"

struct tm_sm_root {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t bitmap_root;	/* metadata: index block; data: index btree */
	uint64_t ref_count_root;
};

struct tm_superblock {
	uint32_t csum;
	uint32_t flags;
	uint64_t blocknr;
	uint8_t uuid[16];
	uint64_t magic;
	uint32_t version;
	uint32_t time;
	uint64_t trans_id;
	uint64_t held_root;		/* metadata snapshot location, 0 = none */
	struct tm_sm_root data_sm;
	struct tm_sm_root meta_sm;
	uint64_t mapping_root;
	uint64_t details_root;
	uint32_t data_block_size;	/* sectors */
	uint32_t metadata_block_size;	/* sectors, 8 */
	uint64_t metadata_nr_blocks;
	uint32_t compat_flags;
	uint32_t compat_ro_flags;
	uint32_t incompat_flags;
};

/* Decode the bytes of a superblock block (no validation). */
void tm_sb_decode(const void *buf, struct tm_superblock *sb);
/* Encode into a zeroed 4096-byte buffer (checksum not set: seal it). */
void tm_sb_encode(const struct tm_superblock *sb, void *buf);
void tm_sm_root_decode(const void *p, struct tm_sm_root *r);
void tm_sm_root_encode(const struct tm_sm_root *r, void *p);

/*
 * Field rules beyond the validator's (magic, version, block size, features):
 * 0 or -EUCLEAN.  @nr_meta_blocks is the device's size in blocks, used to
 * check that roots lie inside it (0 skips that).
 */
int tm_sb_check_fields(const struct tm_superblock *sb, uint64_t nr_meta_blocks,
		       int is_snapshot_copy, struct tm_error *e);

#endif
