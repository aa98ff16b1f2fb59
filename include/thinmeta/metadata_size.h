/*
 * metadata_size.h - how big a pool's metadata device should be, by the
 * estimate of thin-provisioning-tools 1.1.0's thin_metadata_size: mapping
 * leaves half full (126 of 252 entries), one block per thin device for its
 * root, one superblock, at most the largest metadata device the format
 * allows.  Arithmetic wraps as 1.1.0's u64 arithmetic does.
 */
#ifndef THINMETA_METADATA_SIZE_H
#define THINMETA_METADATA_SIZE_H

#include <stdint.h>

/* Data block size limits in bytes (64 KiB multiples, at most 1 GiB). */
#define TM_DATA_BLOCK_SIZE_MIN_BYTES 65536ull
#define TM_DATA_BLOCK_SIZE_MAX_BYTES 1073741824ull

/*
 * NULL if @bytes is a valid data block size, else why not ("block size must
 * be a multiple of 64 KiB", "maximum block size is 1 GiB": 1.1.0's words).
 */
const char *tm_data_block_bytes_problem(uint64_t bytes);

/* The estimated metadata size in bytes. */
uint64_t tm_metadata_size_estimate(uint64_t nr_data_blocks, uint64_t max_thins);

#endif
