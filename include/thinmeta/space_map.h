/*
 * space_map.h - reading the on-disk space maps (reference counts).
 *
 * Both space maps store two bits per block in bitmap blocks, an index of
 * those bitmaps (metadata: one index block; data: an index btree) and an
 * overflow btree for counts of 3 and more.  tm_sm_disk_open() loads the
 * index; counts are then read bitmap by bitmap.
 */
#ifndef THINMETA_SPACE_MAP_H
#define THINMETA_SPACE_MAP_H

#include <stdint.h>

#include "block.h"
#include "format.h"
#include "superblock.h"

struct tm_index_entry {
	uint64_t blocknr;
	uint32_t nr_free;
	uint32_t none_free_before;
};

void tm_index_entry_decode(const void *p, struct tm_index_entry *ie);
void tm_index_entry_encode(const struct tm_index_entry *ie, void *p);

/* The 2-bit value of entry @i of a bitmap block. */
static inline unsigned tm_bitmap_get(const void *bitmap_block, uint32_t i)
{
	const uint8_t *w = (const uint8_t *)bitmap_block + 16 + 8 * (i / 32);
	uint64_t word = tm_le64(w);
	unsigned bit = 2 * (i % 32);
	return (unsigned)(((word >> bit) & 1) << 1 | ((word >> (bit + 1)) & 1));
}

static inline void tm_bitmap_set(void *bitmap_block, uint32_t i, unsigned v)
{
	uint8_t *w = (uint8_t *)bitmap_block + 16 + 8 * (i / 32);
	uint64_t word = tm_le64(w);
	unsigned bit = 2 * (i % 32);
	word &= ~(3ull << bit);
	word |= (uint64_t)((v >> 1) & 1) << bit | (uint64_t)(v & 1) << (bit + 1);
	tm_put_le64(w, word);
}

enum tm_sm_kind { TM_SM_METADATA, TM_SM_DATA };

struct tm_sm_disk {
	enum tm_sm_kind kind;
	struct tm_sm_root root;
	uint64_t nr_bitmaps;
	struct tm_index_entry *index;	/* nr_bitmaps entries */
	uint64_t index_block;		/* metadata: the index block */
};

/* Load the index of a space map.  Rules broken give -EUCLEAN etc. */
int tm_sm_disk_open(struct tm_bm *bm, enum tm_sm_kind kind,
		    const struct tm_sm_root *root, struct tm_sm_disk *sm,
		    struct tm_error *e);
void tm_sm_disk_close(struct tm_sm_disk *sm);

/* The reference count of block @b. */
int tm_sm_disk_get(struct tm_bm *bm, struct tm_sm_disk *sm, uint64_t b,
		   uint32_t *count, struct tm_error *e);

#endif
