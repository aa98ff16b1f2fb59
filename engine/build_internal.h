/*
 * build_internal.h - the pieces of the metadata builder (engine/builder.c),
 * internal to the engine: compact in-core reference counts, the output
 * writer (allocation from an in-core metadata space map, batched writes),
 * bottom-up btree building with thin-provisioning-tools 1.1.0's packing,
 * and the writers of fresh space maps.
 *
 *   sm_build.c     tm_rcmap, struct bld_out, bld_write_data_sm/meta_sm
 *   btree_build.c  struct bld_nb (the node builder), bld_build_btree
 */
#ifndef THINMETA_BUILD_INTERNAL_H
#define THINMETA_BUILD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "thinmeta/block.h"
#include "thinmeta/error.h"
#include "thinmeta/superblock.h"
#include "u64map.h"

/* ------------------------------------------------------------------ */
/*
 * tm_rcmap: reference counts of nr_blocks blocks in 2 bits each, as the
 * on-disk bitmaps hold them (0, 1, 2, 3 = "see the overflow"), in chunks
 * of TM_ENTRIES_PER_BITMAP entries allocated when first touched.  A count
 * of 3 or more is a byte of the chunk's overflow bytes (allocated when the
 * chunk first has one), up to 254; 255 means "in the table", a hash of the
 * few counts that large.  Memory: 4 KiB per touched chunk, 16 KiB more per
 * chunk with a count >= 3, about 32 bytes per count >= 255 - at most about 1.25
 * bytes per block whatever the counts.  A chunk is laid out exactly like a
 * bitmap block (16-byte header left zero), so it is written out with one
 * copy.
 */

struct tm_rcmap {
	uint64_t nr_blocks;
	uint64_t nr_chunks;
	uint8_t **chunks;	/* nr_chunks pointers, NULL = all zero */
	uint8_t **big;		/* per chunk: counts >= 3 (NULL = none) */
	struct u64map huge;	/* counts >= 255 */
	uint64_t nr_allocated;	/* entries with a count > 0 */
	uint64_t nr_overflow;	/* entries with a count >= 3 */
};

int tm_rcmap_init(struct tm_rcmap *m, uint64_t nr_blocks);
void tm_rcmap_free(struct tm_rcmap *m);
uint32_t tm_rcmap_get(const struct tm_rcmap *m, uint64_t b);
/* 0, -ENOMEM, -EOVERFLOW (count would pass UINT32_MAX), -ERANGE. */
int tm_rcmap_inc(struct tm_rcmap *m, uint64_t b);
/*
 * tm_rcmap_inc() of blocks @b .. @b + @n - 1, in one pass per chunk; on
 * failure *@failed is the block that could not be counted (those before it
 * were).
 */
int tm_rcmap_inc_range(struct tm_rcmap *m, uint64_t b, uint64_t n, uint64_t *failed);
/* 0 with *@now the new count; -EINVAL if the count is already 0. */
int tm_rcmap_dec(struct tm_rcmap *m, uint64_t b, uint32_t *now);
/* The chunk of bitmap @i (NULL: all zero). */
static inline const uint8_t *tm_rcmap_chunk(const struct tm_rcmap *m, uint64_t i)
{
	return m->chunks[i];
}
/*
 * The blocks counted >= 3 and their counts, in ascending block order;
 * *@keys and *@vals are malloc'd (NULL when *@n is 0).
 */
int tm_rcmap_overflow(const struct tm_rcmap *m, uint64_t **keys,
		      uint32_t **vals, size_t *n);

/* ------------------------------------------------------------------ */
/*
 * The output writer: the metadata device, an in-core metadata space map
 * that hands out blocks next-fit from block 0 (a freed block is reused
 * only after the cursor wraps, as 1.1.0 does), and a batch of contiguous
 * blocks written in one request.  Every block written is sealed
 * (blocknr, checksum) here.
 */
#define BLD_BATCH_BLOCKS 256u

struct bld_out {
	struct tm_bm *bm;
	struct tm_rcmap meta;		/* nr_blocks = min(device, max) */
	uint64_t cursor;
	uint8_t *batch;			/* BLD_BATCH_BLOCKS blocks */
	uint64_t batch_start;
	unsigned batch_n;
	struct tm_error *e;		/* where failures are recorded */
};

int bld_out_init(struct bld_out *o, struct tm_bm *bm, struct tm_error *e);
void bld_out_free(struct bld_out *o);
/* A free block, its count set to 1.  -ENOSPC when the device is full. */
int bld_alloc(struct bld_out *o, uint64_t *b);
static inline uint64_t bld_nr_free(const struct bld_out *o)
{
	return o->meta.nr_blocks - o->meta.nr_allocated;
}
int bld_inc(struct bld_out *o, uint64_t b);
/* *@freed = 1 when the count dropped to 0. */
int bld_dec(struct bld_out *o, uint64_t b, int *freed);
/* Seal @buf with @v's salt at @b and queue it for writing. */
int bld_write(struct bld_out *o, uint64_t b, const struct tm_validator *v, void *buf);
/* Read back block @b (pending writes included), validated with @v. */
int bld_read(struct bld_out *o, uint64_t b, const struct tm_validator *v, void *buf);
/* Write out the batch and flush the device. */
int bld_flush(struct bld_out *o);

/* ------------------------------------------------------------------ */
/*
 * The node builder: 1.1.0's NodeBuilder (src/pdata/btree_builder.rs).
 * Values are queued; a full node is written whenever twice a node's worth
 * is queued, and the rest at the end as one node or two halves, so that
 * every node but a lone root is at least half full.  Pre-built (shared)
 * leaves can be pushed: used as they are, or - when that would leave an
 * under-filled node - read and copied.
 *
 * Reference counts: a node written gets count 1; a pushed shared node used
 * as it is gets +1; values of a leaf are counted through @rc when they are
 * pushed and when a node still referenced elsewhere is copied.
 */
struct bld_nsum {
	uint64_t block;
	uint64_t first_key;	/* 0 for an empty leaf */
	uint64_t last_key;
	uint32_t nr_entries;
};

struct bld_value_rc {
	int (*inc)(void *ctx, const uint8_t *value);
	int (*dec)(void *ctx, const uint8_t *value);
	void *ctx;
};

struct bld_nb {
	struct bld_out *out;
	uint32_t flags;			/* TM_NODE_LEAF or TM_NODE_INTERNAL */
	uint32_t value_size;
	uint32_t max;			/* entries per node */
	const struct bld_value_rc *rc;	/* NULL: values are not counted */
	uint64_t *qkeys;		/* the queue of values not yet written */
	uint8_t *qvals;
	size_t qhead, qlen, qcap;
	struct bld_nsum *nodes;		/* nodes built so far */
	size_t nn, ncap;
	int have_last;
	uint64_t last_key;
};

void bld_nb_init(struct bld_nb *nb, struct bld_out *out, uint32_t flags,
		 uint32_t value_size, const struct bld_value_rc *rc);
void bld_nb_free(struct bld_nb *nb);
/* Empty again for another tree of the same kind, keeping the queue's memory. */
void bld_nb_restart(struct bld_nb *nb);
/* Keys must ascend strictly: -EINVAL (TM_RULE_KEY_ORDER) otherwise. */
int bld_nb_push_value(struct bld_nb *nb, uint64_t key, const void *value);
/*
 * @n mapping values at once (a leaf builder of 8-byte values): keys @key..,
 * data blocks @data.. at @time; the same as @n bld_nb_push_value() calls
 * except that the values are not counted through nb->rc (the caller
 * counts the data blocks, tm_rcmap_inc_range()).
 */
int bld_nb_push_mappings(struct bld_nb *nb, uint64_t key, uint64_t data, uint64_t n,
			 uint32_t time);
int bld_nb_push_nodes(struct bld_nb *nb, const struct bld_nsum *nodes, size_t n);
/*
 * No more values: *@nodes (malloc'd, owned by the caller) and *@n, at
 * least one node (an empty leaf if nothing was pushed).
 */
int bld_nb_complete(struct bld_nb *nb, struct bld_nsum **nodes, size_t *n);
/* Internal levels above @leaves (consumed) up to one root. */
int bld_build_btree(struct bld_out *out, struct bld_nsum *leaves, size_t n,
		    uint64_t *root);
/* Read a leaf's keys and values (values of @value_size bytes). */
int bld_read_leaf(struct bld_out *o, uint64_t b, uint32_t value_size,
		  uint64_t *keys, uint8_t *values, uint32_t *nr);

/* ------------------------------------------------------------------ */
/* Fresh space maps. */

/* The data space map of @counts: bitmaps, overflow tree, index btree. */
int bld_write_data_sm(struct bld_out *o, const struct tm_rcmap *counts,
		      struct tm_sm_root *root);
/*
 * The metadata space map of @o itself: overflow tree, index block and
 * bitmaps, whose own blocks are counted in it.  Must be the last
 * allocation.
 */
int bld_write_meta_sm(struct bld_out *o, struct tm_sm_root *root);

#endif
