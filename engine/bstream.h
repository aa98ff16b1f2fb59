/*
 * bstream.h - reading a list of blocks known in advance, fast.  Internal to
 * the engine (the checker's level walk, thin_dump's and thin_ls's leaves,
 * thin_rmap).
 *
 * The consumer names the blocks it will want, in the order it will want
 * them (a tree level, a device's leaves in key order), and then takes them
 * one by one in that order.  The stream reads ahead of it in windows of
 * BS_WINDOW list positions: a window's blocks are sorted and read in block
 * order, in requests of up to 1 MiB that also read through small gaps
 * between wanted blocks, so a cold device sees few, large, sequential reads
 * whatever order the consumer needs.  With more than one window's worth, a
 * reader thread fills the next windows while the consumer works on the
 * current one, and computes each block's checksum register
 * (tm_block_crc) there, so that validation does not repeat it.  On a
 * device that serves several reads at once (dev->parallel_reads > 1: an
 * O_DIRECT block device) up to 3 reader threads each take every third
 * window, so that that many requests are in flight; the consumer still
 * gets the blocks in list order.  With one reader (every other device) the
 * device's calls come in a fixed order, as fault injection needs.  Nothing is
 * validated here: the consumer validates each block where it uses it.
 *
 * Memory: 3 windows (5 with 3 readers) of up to 2 MiB (1 MiB of wanted
 * blocks and as much again for gaps read through), touched only as far as
 * they are used;
 * nothing grows with the list but the list itself (the caller's).
 *
 * While a stream is open its device must not be read or written by anyone
 * else (the reader threads use it), and @blocks must not change.
 */
#ifndef THINMETA_BSTREAM_H
#define THINMETA_BSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "thinmeta/block.h"
#include "thinmeta/io.h"

#define BS_WINDOW 256u		/* list positions per window */

struct bstream;

struct bs_block {
	const uint8_t *data;	/* the block's 4096 bytes; NULL if unreadable */
	uint32_t crc;		/* tm_block_crc(data) */
	int err;		/* data == NULL: -ERANGE past the device's end, or
				 * the read's negative errno */
};

/* 0 or -ENOMEM. */
int bs_open(struct tm_dev *dev, const uint64_t *blocks, size_t n, struct bstream **out);

/*
 * Block @i of the list.  Calls must come with @i ascending (positions may
 * be skipped, never revisited once a later window was asked for).  The
 * bytes stay valid until a call for a position in a later window, or
 * bs_close().
 */
void bs_get(struct bstream *s, size_t i, struct bs_block *out);

/* Stops the reader and frees everything; NULL is fine. */
void bs_close(struct bstream *s);

/*
 * What tm_bm_read() would say of block @b had it read it: 0 if @blk holds
 * a valid block of @v's type, else the same errors (past the end, read
 * failed, then the validator's).
 */
int bs_validate(const struct bs_block *blk, struct tm_dev *dev, uint64_t b,
		const struct tm_validator *v, struct tm_error *e);

#endif
