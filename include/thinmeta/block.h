/*
 * block.h - checksummed metadata blocks: validators and the block manager.
 *
 * A validator knows one block type: its checksum salt and the header rules
 * a block must obey before anything else looks at it.  The block manager
 * reads blocks through a small cache and validates each one where it is
 * read; a block that fails is never handed out.
 *
 * tm_bm_read() copies the block into the caller's 4096-byte buffer, so a
 * caller may hold as many blocks as it has buffers, with no lifetimes to
 * manage.  Writes (tm_bm_write) seal the block (blocknr, then checksum),
 * write it through and update the cache.
 */
#ifndef THINMETA_BLOCK_H
#define THINMETA_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "io.h"

struct tm_validator {
	const char *name;	/* "superblock", "btree node", ... */
	uint32_t salt;
	/* Header rules beyond checksum and blocknr; NULL if none. */
	int (*check_header)(const void *buf, uint64_t block, struct tm_error *e);
};

extern const struct tm_validator tm_sb_validator;
extern const struct tm_validator tm_node_validator;
extern const struct tm_validator tm_bitmap_validator;
extern const struct tm_validator tm_index_validator;

/* The CRC register over bytes 4..4095, before the salt. */
uint32_t tm_block_crc(const void *buf);
/* Store @block at offset 8 and the checksum (with @salt) at offset 0. */
void tm_block_seal(void *buf, uint64_t block, uint32_t salt);
/*
 * Validate @buf as a block of @v's type at location @block: checksum,
 * self-location, then the type's header rules.  0 or -EILSEQ / -ENOTBLK /
 * -EUCLEAN with @e filled in.
 */
int tm_block_validate(const struct tm_validator *v, const void *buf,
		      uint64_t block, struct tm_error *e);
/* The same, with @crc = tm_block_crc(@buf) computed already. */
int tm_block_validate_crc(const struct tm_validator *v, const void *buf,
			  uint64_t block, uint32_t crc, struct tm_error *e);

/* Which block type an intact block is, by its checksum salt; NULL if none. */
const struct tm_validator *tm_block_identify(const void *buf);

int tm_block_is_zero(const void *buf);

struct tm_bm;

/* @cache_blocks: number of 4 KiB blocks kept; 0 picks a default. */
int tm_bm_create(struct tm_dev *dev, size_t cache_blocks, struct tm_bm **out);
/* Frees the manager; the device stays open (the caller owns it). */
void tm_bm_destroy(struct tm_bm *bm);
struct tm_dev *tm_bm_dev(struct tm_bm *bm);
uint64_t tm_bm_nr_blocks(const struct tm_bm *bm);

/*
 * Read block @b, validated with @v (NULL: no validation), into @buf.
 * -ERANGE if @b is past the device's end.
 */
int tm_bm_read(struct tm_bm *bm, uint64_t b, const struct tm_validator *v,
	       void *buf, struct tm_error *e);

/* Seal @buf with @v's salt (NULL: write as is), write it, update the cache. */
int tm_bm_write(struct tm_bm *bm, uint64_t b, const struct tm_validator *v,
		void *buf, struct tm_error *e);
int tm_bm_flush(struct tm_bm *bm, struct tm_error *e);
/* Forget every cached block (the device may have changed under us). */
void tm_bm_invalidate(struct tm_bm *bm);
/* Forget one cached block. */
void tm_bm_forget(struct tm_bm *bm, uint64_t b);

/*
 * Hint that blocks @blocks[0..n) will be read soon: the manager may read
 * them in block order in large requests.  Purely an optimisation.
 */
void tm_bm_prefetch(struct tm_bm *bm, const uint64_t *blocks, size_t n);

#endif
