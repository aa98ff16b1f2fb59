/*
 * repair_int.h - the parts of the salvager (thinmeta/repair.h), internal
 * to the engine:
 *
 *   repair_scan.c   read every block; intact btree nodes, what kind of tree
 *                   each belongs to, who points to whom; the metadata space
 *                   map's reference counts
 *   repair_walk.c   walk a tree from a root keeping every usable node and
 *                   recording holes; fill holes with vouched-for orphans
 *   repair_roots.c  choose roots when the superblock is gone
 *   repair_emit.c   feed the salvage to an IR sink, sharing leaves
 *   repair.c        the order of it all, superblock values, the report
 */
#ifndef THINMETA_REPAIR_INT_H
#define THINMETA_REPAIR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "thinmeta/btree.h"
#include "thinmeta/metadata.h"
#include "thinmeta/repair.h"
#include "thinmeta/superblock.h"
#include "u64map.h"
#include "u64set.h"

/* ------------------------------------------------------------------ */
/* Growable arrays */

struct u64vec {
	uint64_t *v;
	size_t n, cap;
};

int u64vec_push(struct u64vec *a, uint64_t x);
void u64vec_free(struct u64vec *a);

/* struct u64map: u64map.h */

/* ------------------------------------------------------------------ */
/* The scan */

/* What a block is, by its checksum salt and header. */
enum bstate {
	BS_OTHER = 0,	/* no salt matches: data, garbage or damaged */
	BS_ZERO,
	BS_IOERR,
	BS_SB,		/* superblock salt, at its own location */
	BS_NODE,	/* an intact btree node (checksum, location, header, keys) */
	BS_BITMAP,
	BS_INDEX,
	BS_BADNODE,	/* node salt, but location or header rules broken */
};

/* The kind of tree a node belongs to, from what it holds or points to. */
enum rkind {
	RK_UNKNOWN = 0,
	RK_BOTTOM,	/* a device's mapping tree */
	RK_TOP,		/* the top level of the mapping tree */
	RK_DETAILS,	/* the device details tree */
	RK_EMPTY8,	/* an empty leaf of 8-byte values: bottom or top */
	RK_OTHER,	/* space-map trees, or inconsistent */
};

#define COUNT_UNKNOWN 0xffffffffu

struct snode {
	uint64_t block;
	uint64_t key_lo, key_hi;	/* first and last key (nr_entries > 0) */
	uint64_t child_off;		/* into scan.children (internal, top-like leaf) */
	uint64_t max_data;		/* bottom leaf: highest data block */
	uint32_t nr_entries;
	uint32_t value_size;
	uint32_t max_time;		/* bottom leaf: newest mapping time */
	uint32_t nr_at_max;		/* bottom leaf: mappings of that time */
	uint32_t count;			/* metadata space map count, or COUNT_UNKNOWN */
	uint32_t refs;			/* pointers to it from allocated intact nodes */
	uint32_t claims;		/* holes it was given to */
	uint8_t leaf;
	uint8_t small_vals;		/* 8-byte leaf whose values are all block numbers */
	uint8_t kind;			/* enum rkind */
	uint8_t cstate;			/* classification: 0 new, 1 busy, 2 done */
	int8_t height;			/* 0 leaf; -1 unknown */
};

/* A pointer from an intact, allocated node (or a superblock) to a block
 * that is not an intact node: somebody's lost child. */
struct lost_ptr {
	uint64_t block;
	uint64_t lo, hi;	/* keys the lost child held, inclusive */
	uint8_t kind;		/* enum rkind of the tree it belongs to */
};

struct scan {
	uint64_t nr_blocks;
	uint8_t *bstate;		/* enum bstate per block */
	struct snode *nodes;		/* ascending block */
	size_t nr_nodes, cap_nodes;
	struct u64vec children;		/* child pointers, by snode.child_off */
	struct u64vec sb_copies;	/* superblock-salted blocks other than 0 */
	uint64_t nr_io_errors;
	int have_counts;		/* metadata space map counts loaded */
	struct lost_ptr *lost;		/* (with the counts) every lost child */
	size_t nr_lost, cap_lost;
};

/* Read every block of the device (large sequential reads). */
int scan_run(struct tm_bm *bm, struct scan *s, struct tm_error *e);
void scan_free(struct scan *s);
struct snode *scan_find(const struct scan *s, uint64_t b);
/* The number of pointers a node holds (internal, or top-level leaf). */
static inline uint32_t snode_nr_children(const struct snode *n)
{
	return (!n->leaf || n->kind == RK_TOP) ? n->nr_entries : 0;
}
/* Tree kinds and heights of every node. */
void scan_classify(struct scan *s);
/*
 * Reference counts from the metadata space map at @root (0 or a negative
 * errno; -EUCLEAN etc. if it cannot be read: then no counts), and the
 * pointers from allocated intact nodes to each node.  @sb_refs: blocks the
 * superblocks point to (each counted once per occurrence), @sb_kinds the
 * kind of tree each is the root of (RK_OTHER: a space map's).
 */
int scan_load_counts(struct tm_bm *bm, struct scan *s, const struct tm_sm_root *root,
		     const uint64_t *sb_refs, const uint8_t *sb_kinds, size_t nr_sb_refs,
		     struct tm_error *e);
/*
 * How many distinct lost children of kind @kind could be @n (their key
 * range holds @n's keys): the parents that may claim it.
 */
size_t scan_claimants(const struct scan *s, const struct snode *n, enum rkind kind);
/* How many references to @n are unaccounted for (0 if unknown). */
static inline uint32_t snode_missing(const struct snode *n)
{
	if (n->count == COUNT_UNKNOWN || n->count <= n->refs + n->claims)
		return 0;
	return n->count - n->refs - n->claims;
}

/* ------------------------------------------------------------------ */
/* Walks */

enum tree { TREE_DETAILS, TREE_TOP, TREE_BOTTOM };

/* A pointer to a node that could not be used. */
struct hole {
	uint64_t block;
	uint64_t lo, hi;	/* keys the lost subtree held, inclusive */
	int depth;		/* of the lost node within its tree */
	int leaf_depth;		/* of the tree's leaves, -1 unknown */
	uint8_t tree;		/* enum tree */
	uint8_t why;		/* enum tm_rule */
	uint8_t filled;		/* adopted: see sub */
	uint8_t tried;
	uint64_t dev;		/* bottom: a device whose tree it is in (report) */
	size_t sub;		/* the list of what was brought back (bottom) */
	uint64_t nr_adopted;
};

/* Entries of a bottom list: a leaf block, or a hole (HOLE_BIT | index). */
#define HOLE_BIT ((uint64_t)1 << 63)

struct top_entry {
	uint64_t dev_id;
	uint64_t root;
};

struct det_entry {
	uint64_t dev_id;
	struct tm_device_details d;
};

struct leaf_info {
	uint32_t nr_entries;
	uint32_t max_time;
	uint64_t max_data;
};

struct walker {
	struct tm_bm *bm;
	uint64_t nr_blocks;
	struct tm_error *e;

	/* results */
	struct hole *holes;
	size_t nr_holes, cap_holes;
	struct u64vec *lists;		/* bottom lists (entries above) */
	size_t nr_lists, cap_lists;
	struct top_entry *top;
	size_t nr_top, cap_top;
	struct det_entry *det;
	size_t nr_det, cap_det;

	/* leaves read and found intact: block -> index in leaves */
	struct u64map leaf_idx;
	struct leaf_info *leaves;
	size_t nr_leaves, cap_leaves;

	/* per walk */
	enum tree tree;
	struct u64set seen;		/* cycle detection within one tree */
	int leaf_depth;
	size_t first_hole;		/* holes of this walk start here */
	size_t list;			/* bottom: the list being filled */
	uint64_t cur_dev;		/* bottom: the device walked (UINT64_MAX: none) */
	uint8_t bufs[TM_BTREE_MAX_DEPTH + 1][TM_BLOCK_SIZE];
};

int walker_init(struct walker *w, struct tm_bm *bm, struct tm_error *e);
void walker_free(struct walker *w);
/* A new empty bottom list; its index. */
int walker_new_list(struct walker *w, size_t *idx);
/*
 * Walk the tree at @root whose keys lie in [@lo, @hi], as a tree of kind
 * @tree whose node @root sits at @depth (0: a real root) above leaves at
 * @leaf_depth (-1 unknown).  Bottom leaves go to list @list; top and
 * details entries to w->top / w->det; unusable nodes become holes.
 */
int walker_walk(struct walker *w, enum tree tree, uint64_t root, uint64_t lo,
		uint64_t hi, int depth, int leaf_depth, size_t list);

/* ------------------------------------------------------------------ */
/* Choosing roots without a superblock */

struct root_choice {
	uint64_t mapping_root;		/* 0 = none found */
	uint64_t details_root;		/* 0 = none paired */
	uint64_t nr_candidates;
	uint64_t nr_pairs;
	uint64_t max_tid;		/* of the chosen details tree */
	uint32_t age;			/* newest time seen in the chosen trees */
	uint64_t highest_data;		/* of the chosen mapping tree */
};

int roots_choose(struct tm_bm *bm, struct scan *s, uint64_t avoid_top,
		 struct root_choice *c, struct tm_error *e);

/* ------------------------------------------------------------------ */
/* The salvage */

struct sdev {
	uint64_t dev_id;
	struct tm_device_details d;
	int have_details;
	int details_rebuilt;
	int root_assigned;
	int left_out;
	uint64_t root;		/* 0 = none */
	size_t list;		/* index of its bottom list (SIZE_MAX: none) */
	uint64_t *leaves;	/* flattened: intact leaves in key order */
	size_t nr_leaves;
	uint64_t recovered, dropped;
	struct tm_repair_loss *losses;
	size_t nr_losses, cap_losses;
};

struct tm_salvage {
	struct tm_bm *bm;
	struct tm_repair_opts opts;
	struct tm_repair_report rep;
	struct tm_superblock sb;	/* the values to write */
	struct sdev *devs;
	size_t nr_devs;
	uint64_t nr_data_blocks;
};

/* Feed the salvage to a sink (repair_emit.c). */
int salvage_emit(struct tm_salvage *s, const struct tm_salvage_emit_opts *o,
		 const struct tm_ir_sink *sink, struct tm_error *e);

#endif
