/*
 * pool.h - a thin pool's metadata driven the way Linux 6.1 drives it
 * (drivers/md/dm-thin-metadata.c and dm-thin.c): the pool messages,
 * provisioning and discarding virtual blocks, resizing, commits, status.
 *
 * One struct tm_pool is one open pool, like the kernel's pool object
 * between activation and removal: the data allocator's cursor and the
 * uncommitted transaction live in it.  Changes go into the current
 * transaction; tm_pool_commit() makes them durable (FORMAT.md §8.3).  The
 * kernel commits after every successful message; tools do the same.
 *
 * Refusals - a message the kernel would refuse - are decided before
 * anything changes, and leave the pool (and the device) exactly as they
 * were:
 *   -EEXIST   create_thin / create_snap of an existing device id
 *   -ENODATA  a device (or snapshot origin) that does not exist
 *   -EINVAL   an id above 2^24-1, set_transaction_id with the wrong old id,
 *             release_metadata_snap with none held, shrinking the data
 *             device
 *   -EBUSY    reserve_metadata_snap while one is held
 *   -ENOSPC   out of data space (nothing free now and at the last commit)
 *   -EROFS    the pool is read-only (needs_check set, out of metadata
 *             space, or an earlier failure)
 * Any other error (I/O, damaged metadata, running out of metadata blocks
 * part way) fails the pool, as the kernel's abort_transaction() does: the
 * uncommitted transaction is abandoned, needs_check is set in the last
 * committed superblock (if that write still works), and every later call
 * returns -EROFS.  The device holds the last commit.
 */
#ifndef THINMETA_POOL_H
#define THINMETA_POOL_H

#include <stdint.h>

#include "error.h"
#include "io.h"

struct tm_pool;

#define TM_POOL_MAX_DEV_ID	((1ull << 24) - 1)
#define TM_POOL_MAX_DATA_BLOCKS	(1ull << 40)
#define TM_POOL_MAX_TIME	((1u << 24) - 1)	/* mappings keep 24 bits */

/*
 * Format the zeroed metadata device @dev (opened writable) as the kernel
 * does when it creates a pool on it; the metadata size is the device's,
 * clamped to 4161600 blocks.  With @nr_data_blocks > 0 the data device is
 * then resized to it and committed (the kernel's first activation).
 * -EEXIST if block 0 is not all zeroes.  The pool stays open.
 */
int tm_pool_format(struct tm_dev *dev, uint32_t data_block_size,
		   uint64_t nr_data_blocks, struct tm_pool **out, struct tm_error *e);

/* Open the metadata on @dev (writable).  The data allocator starts at 0. */
int tm_pool_open(struct tm_dev *dev, struct tm_pool **out, struct tm_error *e);

/* Close without committing (the caller commits first if it wants to). */
void tm_pool_close(struct tm_pool *p);

/* Commit the current transaction; nothing is written if nothing changed. */
int tm_pool_commit(struct tm_pool *p, struct tm_error *e);

/* ---------------------------------------------------------------- messages */
int tm_pool_create_thin(struct tm_pool *p, uint64_t id, struct tm_error *e);
int tm_pool_create_snap(struct tm_pool *p, uint64_t id, uint64_t origin,
			struct tm_error *e);
int tm_pool_delete(struct tm_pool *p, uint64_t id, struct tm_error *e);
int tm_pool_set_transaction_id(struct tm_pool *p, uint64_t old_id, uint64_t new_id,
			       struct tm_error *e);
/* Commits first, then copies the superblock (FORMAT.md §9). */
int tm_pool_reserve_metadata_snap(struct tm_pool *p, struct tm_error *e);
int tm_pool_release_metadata_snap(struct tm_pool *p, struct tm_error *e);

/* ---------------------------------------------------------------- I/O */
enum tm_provision {
	TM_PROV_MAPPED,		/* mapped and not shared: nothing changes */
	TM_PROV_NEW,		/* was unmapped: a data block was allocated */
	TM_PROV_COW,		/* shared with a snapshot: copied to a new block */
};

/*
 * What a write to virtual block @vblock of device @id does to the
 * metadata.  *@data_block: the block it maps to afterwards.
 */
int tm_pool_write(struct tm_pool *p, uint64_t id, uint64_t vblock,
		  enum tm_provision *what, uint64_t *data_block, struct tm_error *e);

/* Discard virtual blocks [@begin, @end) of @id; *@unmapped: how many went. */
int tm_pool_discard(struct tm_pool *p, uint64_t id, uint64_t begin, uint64_t end,
		    uint64_t *unmapped, struct tm_error *e);

/* -ENODATA if unmapped (or no such device). */
int tm_pool_lookup(struct tm_pool *p, uint64_t id, uint64_t vblock,
		   uint64_t *data_block, uint32_t *time, struct tm_error *e);

/* ---------------------------------------------------------------- sizes */
int tm_pool_resize_data(struct tm_pool *p, uint64_t nr_blocks, struct tm_error *e);
/* Grow the metadata space map to @nr_blocks (clamped to 4161600). */
int tm_pool_resize_metadata(struct tm_pool *p, uint64_t nr_blocks, struct tm_error *e);
/*
 * The kernel's resume: if the device has grown past what the metadata
 * space map tracks, grow it to the device (clamped) and commit.  *@grown
 * says whether it did.  Nothing happens on a read-only pool.
 */
int tm_pool_grow_metadata_to_device(struct tm_pool *p, int *grown, struct tm_error *e);

/* needs_check: written to the superblock at once, as the kernel does. */
int tm_pool_set_needs_check(struct tm_pool *p, int set, struct tm_error *e);

/* ---------------------------------------------------------------- state */
struct tm_pool_status {
	uint64_t transaction_id;
	uint64_t meta_used;		/* the kernel's metadata reserve counted used */
	uint64_t meta_total;
	uint64_t data_used;
	uint64_t data_total;
	uint64_t held_root;		/* 0: none */
	int read_only;
	int needs_check;
	uint64_t meta_low_water;	/* min(1024, device blocks / 4) */
};

/* Commits first (as dmsetup status does), then reports. */
int tm_pool_status(struct tm_pool *p, struct tm_pool_status *st, struct tm_error *e);

struct tm_pool_device_info {
	uint64_t id;
	uint64_t mapped_blocks;
	uint64_t transaction_id;
	uint32_t creation_time;
	uint32_t snapshotted_time;
};

/* The devices, in id order (current state).  *@devs is malloc'd. */
int tm_pool_devices(struct tm_pool *p, struct tm_pool_device_info **devs,
		    uint64_t *nr, struct tm_error *e);

uint32_t tm_pool_time(const struct tm_pool *p);
uint64_t tm_pool_transaction_id(const struct tm_pool *p);
uint64_t tm_pool_held_root(const struct tm_pool *p);
uint32_t tm_pool_data_block_size(const struct tm_pool *p);
/* Data blocks now (after an uncommitted resize too). */
uint64_t tm_pool_nr_data_blocks(const struct tm_pool *p);
uint64_t tm_pool_nr_metadata_blocks(const struct tm_pool *p);
/* Free data blocks as the kernel counts them (not freed this transaction). */
uint64_t tm_pool_free_data_blocks(const struct tm_pool *p);
/* Free metadata blocks beyond the kernel's reserve. */
uint64_t tm_pool_free_metadata_blocks(const struct tm_pool *p);
int tm_pool_is_read_only(const struct tm_pool *p);
/* Did an operation break off part way (the transaction is abandoned)? */
int tm_pool_failed(const struct tm_pool *p);
/* Does the current transaction hold uncommitted changes? */
int tm_pool_changed(const struct tm_pool *p);
/* The data allocator's cursor (for tests). */
uint64_t tm_pool_data_cursor(const struct tm_pool *p);
/* The bytes of the last committed superblock (4096). */
const uint8_t *tm_pool_last_superblock(const struct tm_pool *p);

/*
 * Called by every commit: with phase 0 once everything else is on the
 * device and flushed, just before block 0 is written (@sb: the superblock
 * it is about to hold, its checksum included); with phase 1 once it is
 * written and flushed.  For logs that must say which states a crash can
 * leave.
 */
struct tm_superblock;
typedef void (*tm_pool_commit_hook)(void *ctx, int phase, const struct tm_superblock *sb);
void tm_pool_set_commit_hook(struct tm_pool *p, tm_pool_commit_hook fn, void *ctx);

/*
 * Called at the start of every commit that writes something, before any
 * metadata block: the kernel's pre-commit callback, with which dm-thin
 * flushes the data device so that no committed mapping points at data that
 * is not yet durable.  A non-zero return (a negative errno, @e filled)
 * stops the commit and fails the pool, as a failed commit does.
 */
typedef int (*tm_pool_pre_commit_fn)(void *ctx, struct tm_error *e);
void tm_pool_set_pre_commit(struct tm_pool *p, tm_pool_pre_commit_fn fn, void *ctx);

#endif
