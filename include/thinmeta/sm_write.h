/*
 * sm_write.h - the writable space maps: reference counts of metadata blocks
 * (the metadata space map) and of data blocks (the data space map), kept
 * on disk exactly as Linux 6.1 keeps them (FORMAT.md §7).
 *
 * Both store 2 bits per block in bitmap blocks, counts of 3 and more in an
 * overflow btree (value: u32 count), and an index of the bitmaps: one
 * index block (255 entries) for the metadata space map, an index btree for
 * the data space map.  Each keeps two views: the current one and the one
 * at the last commit.  A new block must be free in both, so a block freed
 * in this transaction is not reused before the next commit.  The search
 * starts at a cursor (the block after the last one handed out) and wraps
 * to 0 only when nothing is free up to the end; commits leave the cursor
 * alone (Linux >= 5.13), opening a space map sets it to 0.
 *
 * The metadata space map allocates its own blocks: changing a bitmap or
 * its overflow tree may need new blocks, whose counting is deferred
 * (queued) until the outer operation finishes, as the kernel does.  While
 * a space map is being created (or extended) it runs in "bootstrap" mode:
 * blocks are handed out linearly and every count change is queued.
 *
 * Counts of free blocks are the kernel's: blocks on the device in the last
 * commit, minus those allocated then, minus those handed out since; blocks
 * freed in this transaction are not counted free before the commit.
 */
#ifndef THINMETA_SM_WRITE_H
#define THINMETA_SM_WRITE_H

#include <stdint.h>

#include "error.h"
#include "superblock.h"
#include "transaction.h"

/* ---------------------------------------------------------------- metadata */

struct tm_msm;

/*
 * Create a metadata space map of @nr_blocks (clamped to 4161600) on a
 * device whose blocks 0..@superblock are taken: allocates the index block,
 * the overflow tree and the bitmaps from @superblock+1 on, counts them and
 * @superblock, and commits the space map (not the transaction).  @tm must
 * use the returned map (tm_tm_set_sm is done here).
 */
int tm_msm_create(struct tm_tm *tm, uint64_t nr_blocks, uint64_t superblock,
		  struct tm_msm **out, struct tm_error *e);
/* Open the metadata space map at @root. */
int tm_msm_open(struct tm_tm *tm, const struct tm_sm_root *root,
		struct tm_msm **out, struct tm_error *e);
void tm_msm_destroy(struct tm_msm *sm);

int tm_msm_new_block(struct tm_msm *sm, uint64_t *b, struct tm_error *e);
int tm_msm_inc(struct tm_msm *sm, uint64_t b, uint64_t end, struct tm_error *e);
int tm_msm_dec(struct tm_msm *sm, uint64_t b, uint64_t end, struct tm_error *e);
int tm_msm_get_count(struct tm_msm *sm, uint64_t b, uint32_t *count,
		     struct tm_error *e);
int tm_msm_count_is_more_than_one(struct tm_msm *sm, uint64_t b, int *result,
				  struct tm_error *e);
uint64_t tm_msm_nr_blocks(const struct tm_msm *sm);
uint64_t tm_msm_nr_free(const struct tm_msm *sm);
/* Write the index (shadowing its block) and make this the committed view. */
int tm_msm_commit(struct tm_msm *sm, struct tm_error *e);
/* Grow by @extra blocks (bootstrap mode, kernel's sm_metadata_extend). */
int tm_msm_extend(struct tm_msm *sm, uint64_t extra, struct tm_error *e);
void tm_msm_root(const struct tm_msm *sm, struct tm_sm_root *root);

/* ---------------------------------------------------------------- data */

struct tm_dsm;

/* A new, empty data space map (index tree and overflow tree), committed. */
int tm_dsm_create(struct tm_tm *tm, uint64_t nr_blocks, struct tm_dsm **out,
		  struct tm_error *e);
int tm_dsm_open(struct tm_tm *tm, const struct tm_sm_root *root,
		struct tm_dsm **out, struct tm_error *e);
void tm_dsm_destroy(struct tm_dsm *sm);

int tm_dsm_new_block(struct tm_dsm *sm, uint64_t *b, struct tm_error *e);
int tm_dsm_inc(struct tm_dsm *sm, uint64_t b, uint64_t end, struct tm_error *e);
int tm_dsm_dec(struct tm_dsm *sm, uint64_t b, uint64_t end, struct tm_error *e);
int tm_dsm_get_count(struct tm_dsm *sm, uint64_t b, uint32_t *count,
		     struct tm_error *e);
/* Blocks in the last commit (the kernel's dm_sm_get_nr_blocks). */
uint64_t tm_dsm_nr_blocks(const struct tm_dsm *sm);
/* Blocks being tracked now (after an uncommitted extend). */
uint64_t tm_dsm_nr_blocks_now(const struct tm_dsm *sm);
uint64_t tm_dsm_nr_free(const struct tm_dsm *sm);
int tm_dsm_commit(struct tm_dsm *sm, struct tm_error *e);
int tm_dsm_extend(struct tm_dsm *sm, uint64_t extra, struct tm_error *e);
void tm_dsm_root(const struct tm_dsm *sm, struct tm_sm_root *root);
/* Where the next search for a free block starts. */
uint64_t tm_dsm_cursor(const struct tm_dsm *sm);

#endif
