/*
 * transaction.h - copy-on-write transactions over the metadata device.
 *
 * The transaction manager sits between the block manager and everything
 * that writes metadata (btrees, space maps, the pool).  It keeps the rules
 * that make a commit crash-safe (docs/design/write-path.md):
 *
 *  - A block may be written only if it was allocated or shadowed in the
 *    current transaction (tm_tm_write() refuses any other block).  Blocks
 *    are allocated from the metadata space map, which hands out only
 *    blocks free in the last committed state, so nothing reachable from
 *    the last committed superblock, or from a held metadata snapshot
 *    (whose blocks keep non-zero counts), is ever overwritten.
 *  - Shadowing (tm_tm_shadow) is the kernel's: a block allocated or
 *    shadowed in this transaction whose count is 1 is written in place;
 *    otherwise a new block is allocated, the original loses one reference
 *    and its contents are copied.  *inc_children says the original was
 *    shared (count > 1): the caller must then add a reference to every
 *    child the copy points at.
 *  - Commit: every dirty block is written, the device flushed, then the
 *    superblock (block 0) is written and the device flushed again.
 *
 * Written blocks are kept in a write-back cache and sealed (block number,
 * checksum) when they go to the device; a cache that fills up writes its
 * blocks out early, which is safe because none of them belongs to the
 * committed state.  Reads see the cache first, then the block manager
 * (which validates every block it reads).
 *
 * Buffers are the caller's: reads copy a block into a 4096-byte buffer, a
 * change is published by tm_tm_write().  Between a shadow and the write of
 * the copy, nobody else may read that block (the kernel's write lock).
 *
 * Every function returns 0 or a negative errno and fills @e.
 */
#ifndef THINMETA_TRANSACTION_H
#define THINMETA_TRANSACTION_H

#include <stddef.h>
#include <stdint.h>

#include "block.h"
#include "error.h"

struct tm_tm;
struct tm_msm;		/* the metadata space map, sm_write.h */

/* @dirty_blocks: write-back cache size in blocks (0: a default). */
int tm_tm_create(struct tm_bm *bm, size_t dirty_blocks, struct tm_tm **out);
/* Frees the manager and its cache; nothing is written. */
void tm_tm_destroy(struct tm_tm *tm);
/* The metadata space map that allocates and counts blocks. */
void tm_tm_set_sm(struct tm_tm *tm, struct tm_msm *sm);
struct tm_msm *tm_tm_sm(struct tm_tm *tm);
struct tm_bm *tm_tm_bm(struct tm_tm *tm);

/* Read block @b (validated with @v unless it is one of ours) into @buf. */
int tm_tm_read(struct tm_tm *tm, uint64_t b, const struct tm_validator *v,
	       void *buf, struct tm_error *e);

/* Allocate a block for this transaction; @buf is zeroed. */
int tm_tm_new_block(struct tm_tm *tm, uint64_t *b, void *buf, struct tm_error *e);

/*
 * Make @orig writable: *@b is the block to write (@orig itself, or its new
 * copy) and @buf holds its current contents.
 */
int tm_tm_shadow(struct tm_tm *tm, uint64_t orig, const struct tm_validator *v,
		 uint64_t *b, void *buf, int *inc_children, struct tm_error *e);

/* Publish @buf as the contents of @b (a block of this transaction). */
int tm_tm_write(struct tm_tm *tm, uint64_t b, const struct tm_validator *v,
		const void *buf, struct tm_error *e);

/* Was @b allocated or shadowed in this transaction? */
int tm_tm_is_shadow(struct tm_tm *tm, uint64_t b);

/* Reference counts, through the metadata space map. */
int tm_tm_inc(struct tm_tm *tm, uint64_t b, struct tm_error *e);
int tm_tm_dec(struct tm_tm *tm, uint64_t b, struct tm_error *e);
int tm_tm_inc_range(struct tm_tm *tm, uint64_t b, uint64_t end, struct tm_error *e);
int tm_tm_dec_range(struct tm_tm *tm, uint64_t b, uint64_t end, struct tm_error *e);
int tm_tm_ref(struct tm_tm *tm, uint64_t b, uint32_t *count, struct tm_error *e);
int tm_tm_is_shared(struct tm_tm *tm, uint64_t b, int *shared, struct tm_error *e);

/* Inc (or dec) the blocks named by @n little-endian u64 values, in runs. */
int tm_tm_inc_values(struct tm_tm *tm, const uint8_t *values, uint32_t n,
		     struct tm_error *e);
int tm_tm_dec_values(struct tm_tm *tm, const uint8_t *values, uint32_t n,
		     struct tm_error *e);

/*
 * Write every dirty block, flush, write @sb (sealed as block 0 with the
 * superblock validator), flush; the next transaction starts with no
 * shadows.  The caller commits its space maps first.  @before_sb (may be
 * NULL) is called after the first flush with the sealed superblock.
 */
int tm_tm_commit(struct tm_tm *tm, void *sb,
		 void (*before_sb)(void *ctx, const void *sb), void *ctx,
		 struct tm_error *e);

/* Write the dirty blocks out now (no flush, no superblock). */
int tm_tm_writeback(struct tm_tm *tm, struct tm_error *e);

/* Counters for tests and statistics. */
struct tm_tm_stats {
	uint64_t shadows;	/* copies made */
	uint64_t new_blocks;
	uint64_t writes;	/* blocks written to the device */
	uint64_t commits;
};
void tm_tm_stats(const struct tm_tm *tm, struct tm_tm_stats *s);

#endif
