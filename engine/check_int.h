/*
 * check_int.h - the checker's internals, shared by engine/check*.c only.
 *
 *   check.c         the driver: superblocks, devices, phases, change detection
 *   check_counts.c  compact reference counters; batched block reads
 *   check_tree.c    the level-by-level btree walk and the summary pass
 *   check_sm.c      comparing the space maps, and repairing leaks
 */
#ifndef THINMETA_CHECK_INT_H
#define THINMETA_CHECK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "thinmeta/check.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"
#include "u64map.h"

/* ------------------------------------------------------------------ */
/* Reference counters, laid out as the space maps' bitmaps are: two bits
 * per block (min(count, 3)), a page of TM_BITMAP_WORDS words per 16320
 * blocks (one bitmap's worth, same bit order, so a page compares with a
 * bitmap word by word), pages allocated when first touched; exact counts
 * of 3 and more live in an overflow hash. */

#define TM_BITMAP_WORDS (TM_ENTRIES_PER_BITMAP / 32)

struct ck_counts {
	uint64_t nr;			/* blocks tracked */
	uint64_t nr_pages;
	uint64_t ***dirs;		/* dirs[p >> 10][p & 1023] -> page */
	uint64_t nr_dirs;
	struct u64map over;		/* exact counts of 3 or more */
	uint64_t last_base;		/* a one-page lookup cache: the first */
	uint64_t *last;			/* block of the last page used, its words */
};

int ck_counts_init(struct ck_counts *c, uint64_t nr);
void ck_counts_free(struct ck_counts *c);
/* Add one; *@old (may be NULL) gets the count before.  0 or -ENOMEM. */
int ck_counts_inc(struct ck_counts *c, uint64_t b, uint32_t *old);
uint32_t ck_counts_get(const struct ck_counts *c, uint64_t b);
/* The words of page @page (bitmap @page's blocks), or NULL when no block
 * in it is counted. */
const uint64_t *ck_counts_page(const struct ck_counts *c, uint64_t page);

/* A two-bit field as a value: the bitmap keeps the high bit first. */
static inline unsigned ck_field_value(uint64_t word, unsigned j)
{
	unsigned f = (unsigned)(word >> (2 * j)) & 3;

	return (f >> 1) | ((f & 1) << 1);
}

/*
 * ck_counts_inc(c, b, NULL) for the mapping loop: counts of 0 and 1 in the
 * page used last are raised inline (field 00b -> 10b -> 01b).
 */
static inline int ck_counts_add(struct ck_counts *c, uint64_t b)
{
	uint64_t j = b - c->last_base;

	if (c->last && j < TM_ENTRIES_PER_BITMAP) {
		uint64_t *w = &c->last[j / 32];
		unsigned sh = 2 * (unsigned)(j % 32);
		uint64_t f = (*w >> sh) & 3;
		if (f == 0) {
			*w |= 2ull << sh;
			return 0;
		}
		if (f == 2) {
			*w ^= 3ull << sh;
			return 0;
		}
	}
	return ck_counts_inc(c, b, NULL);
}

/* ------------------------------------------------------------------ */
/* The node table: every btree node reached, valid or not. */

#define CN_LEAF		0x01	/* a valid leaf */
#define CN_BAD		0x02	/* the node itself is unusable */
#define CN_SUM_DONE	0x04	/* summary computed */
#define CN_SUM_BUSY	0x08	/* on the summary DFS stack */
#define CN_UNDERFULL_SAID 0x10
#define CN_DEPTH_SAID	0x20
#define CN_RANGE_SAID	0x40
#define CN_SNAP		0x80	/* first reached through the held snapshot */

struct cnode {
	uint64_t block;
	uint64_t sub_min, sub_max;	/* keys of the leaves below (valid ones) */
	uint64_t sub_count;		/* leaf entries below */
	uint64_t bad_lo, bad_hi;	/* key range of damaged subtrees below */
	uint64_t arena;			/* internal: keys, then children (blocks) */
	uint32_t parent;		/* first referencing node + 1, 0 = a root */
	uint32_t owner;			/* root reference that first reached it */
	uint32_t nr_entries, max_entries;
	uint32_t sub_bad;		/* damaged subtrees below (saturating) */
	uint8_t tree;			/* enum tm_tree */
	uint8_t flags;
	uint8_t height;			/* 0 leaf; 0xff unknown */
	uint8_t depth;			/* depth below its root when first reached */
	uint8_t bad_open;		/* bad_hi unbounded */
};

/* A root of one tree, referenced from a superblock or a top-level leaf. */
struct croot {
	uint64_t block;
	uint64_t dev_id;		/* bottom trees: the device; else TM_NO_DEV */
	uint32_t parent;		/* referencing node + 1 (top-level leaf), 0 */
	uint8_t snap;			/* reached through the held snapshot */
	uint8_t dropped;		/* not walkable (out of range, kind clash) */
	uint32_t node;			/* its node + 1 once walked */
};

struct cdev {
	uint64_t dev_id;
	struct tm_device_details details;
	uint64_t root;			/* bottom-level root, 0 if none */
	uint32_t root_ref;		/* index in the bottom roots + 1 */
	uint32_t top_leaf;		/* top-level leaf node + 1 */
	int have_details, have_root;
};

struct kv {				/* a collected leaf entry */
	uint64_t key;
	uint64_t v1, v2;
	uint32_t node;			/* the leaf's node + 1 */
	uint32_t pad;
};

struct kvvec {
	struct kv *v;
	size_t n, cap;
};

int kv_push(struct kvvec *kv, const struct kv *e);
void kv_sort(struct kvvec *kv);
void kv_free(struct kvvec *kv);

/* ------------------------------------------------------------------ */

struct ck_sm;

struct ck {
	struct tm_bm *bm;
	struct tm_dev *dev;
	const struct tm_check_opts *o;
	const struct tm_check_callbacks *cb;
	struct tm_check_result *res;
	struct tm_error *e;
	int err;			/* first -ENOMEM etc.: stop */

	struct tm_superblock sb;	/* live (roots possibly overridden) */
	uint8_t sb_raw[TM_BLOCK_SIZE];	/* as read, to detect changes */
	int have_snap;
	struct tm_superblock snap;
	uint64_t snap_block;
	uint8_t snap_raw[TM_BLOCK_SIZE];

	uint64_t meta_limit;		/* metadata pointers must be below */
	uint64_t data_limit;		/* data blocks must be below */
	int count_meta;			/* compare metadata counts at the end */

	struct ck_counts mcount;	/* computed metadata reference counts */
	struct ck_counts dcount;	/* computed data reference counts */
	uint8_t *kind;			/* per metadata block: kind | tree << 4 */
	uint32_t *nodeidx;		/* per metadata block: node + 1 */

	struct cnode *nodes;
	uint32_t nr_nodes, cap_nodes;
	uint64_t *arena;
	size_t arena_n, arena_cap;

	struct croot *roots;		/* roots of every tree walked */
	uint32_t nr_roots, cap_roots;

	/* collected leaf entries */
	struct kvvec details, top;	/* v1 = snap flag; details: raw in v2? */
	struct tm_device_details *det_vals;
	size_t det_cap;
	struct kvvec data_index, data_rc, meta_rc;

	struct cdev *devs, *sdevs;	/* live and snapshot devices */
	size_t nr_devs, nr_sdevs;

	struct ck_sm *sm;		/* check_sm.c's state */
	uint64_t blocks_read, progress_total, progress_next;
	int fatal;			/* a fatal finding so far */
	int unreached;			/* some metadata could not be walked */
	uint64_t sub_path[TM_MAX_PATH];
};

/* Report a finding (counts it, calls back). */
void ck_report(struct ck *c, struct tm_problem *p);
/* Out of memory or similar: remember and stop. */
int ck_fail(struct ck *c, int err, const char *what);
void ck_progress(struct ck *c, uint64_t nr_blocks_read);

/* The node path of node @idx (+1), with the superblock first. */
unsigned ck_node_path(struct ck *c, uint32_t node1, uint64_t *path, unsigned cap);
void ck_problem_node(struct ck *c, struct tm_problem *p, uint32_t node1);

/*
 * Count one reference to metadata block @b used as @kind (tree @tree for
 * nodes).  Returns 1 if this is the first reference (descend into it), 0 if
 * it was referenced before as the same kind, -1 if it cannot be used (past
 * the end, or already used as something else): a problem is then reported,
 * @where saying who refers to it (its text names the pointer).
 */
int ck_ref_block(struct ck *c, uint64_t b, enum tm_block_kind kind,
		 enum tm_tree tree, struct tm_problem *where);

static inline uint8_t ck_kind_byte(enum tm_block_kind kind, enum tm_tree tree)
{
	return (uint8_t)(kind | (tree << 4));
}

/* Would ck_ref_block() take this reference without reporting a problem?
 * (Its callers describe the reference only when it will be reported.) */
static inline int ck_ref_ok(const struct ck *c, uint64_t b, enum tm_block_kind kind,
			    enum tm_tree tree)
{
	return b < c->meta_limit && (!c->kind[b] || c->kind[b] == ck_kind_byte(kind, tree));
}

/* Read a block and validate it as @v; 0 or a reported problem (-1). */
int ck_read_validated(struct ck *c, uint64_t b, const struct tm_validator *v,
		      void *buf, struct tm_problem *where);
/* Check a validated-or-not buffer; fills @p (code) and returns -1 if bad. */
int ck_validate(const struct tm_validator *v, const void *buf, uint64_t b,
		struct tm_problem *p);
/* The same, with @crc = tm_block_crc(@buf) computed already. */
int ck_validate_crc(const struct tm_validator *v, const void *buf, uint64_t b,
		    uint32_t crc, struct tm_problem *p);

/*
 * Batched reads (engine/bstream.h: in block order, large requests, ahead
 * of the caller): call @fn for each of the blocks @blocks[0..n), in list
 * order, with its bytes and checksum register (tm_block_crc), or NULL and
 * an errno when it could not be read.
 */
typedef void (*ck_block_fn)(struct ck *c, size_t i, uint64_t b, const uint8_t *buf,
			    uint32_t crc, int err, void *ctx);
int ck_read_list(struct ck *c, const uint64_t *blocks, size_t n, ck_block_fn fn,
		 void *ctx);

/* Walk the trees of class @tree from @roots (indexes into c->roots). */
int ck_walk(struct ck *c, enum tm_tree tree, const uint32_t *roots, uint32_t n);
/* Key ranges, heights, cycles, underfull nodes, mapped counts. */
void ck_summarise(struct ck *c, enum tm_tree tree, const uint32_t *roots, uint32_t n);
uint32_t ck_add_root(struct ck *c, uint64_t block, uint64_t dev_id, uint32_t parent,
		     int snap);

/* Space maps (check_sm.c): walk, compare, and repair when asked. */
int ck_space_maps(struct ck *c);
int ck_repair(struct ck *c);
size_t ck_repair_pending(const struct ck *c);
void ck_sm_free(struct ck *c);

#endif
