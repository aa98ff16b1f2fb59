/*
 * mtree.h - reading dm-thin bottom-level mapping trees the way the
 * thin-provisioning-tools 1.1.0 walkers do, for thin_ls, thin_delta,
 * thin_rmap and thin_trim.  Internal to the engine.
 *
 * A node is accepted when it passes the block validator (checksum,
 * self-location, header), holds 8-byte values, has max_entries divisible by
 * 3, at least max_entries/3 entries unless it is a root (the kernel's
 * minimum; 1.1.0 refuses underfull nodes too), keys strictly ascending and
 * inside [lo, hi) given by its parent, and is a leaf exactly at height 0.
 *
 * Not checked: values (data block numbers) against the data device; that
 * is for the callers, which each do what 1.1.0 does.
 */
#ifndef THINMETA_MTREE_H
#define THINMETA_MTREE_H

#include <stdint.h>

#include "thinmeta/btree.h"

/* No upper bound on a node's keys. */
#define MT_OPEN UINT64_MAX

/*
 * Read node @b into @buf (4096 bytes) and view it as @n.  @height: the
 * height the parent implies (0 = must be a leaf), or -1 if unknown.  Keys
 * must lie in [lo, hi) (hi == MT_OPEN: no upper bound; a key of
 * UINT64_MAX is then allowed).  0 or a negative errno with @e filled in.
 */
int mt_read_node(struct tm_bm *bm, uint64_t b, int height, int is_root,
		 uint64_t lo, uint64_t hi, void *buf, struct tm_node *n,
		 struct tm_error *e);

/*
 * Tell the device that the children of node @n (read, checked) will be
 * read soon (tm_dev_hint: readahead on a regular file; runs of near
 * blocks as one hint), so that a walk down internal nodes one by one has
 * their reads in flight together.  Reads nothing; changes no read order.
 */
void mt_hint_children(struct tm_bm *bm, const struct tm_node *n);

/*
 * mt_read_node()'s rules for a node already read and validated as a btree
 * node (block @b, bytes @buf): fills @n.
 */
int mt_check_node(const void *buf, uint64_t b, int height, int is_root, uint64_t lo,
		  uint64_t hi, struct tm_node *n, struct tm_error *e);

/*
 * The height of the tree at @root: the number of internal levels along the
 * first path (0 if the root is a leaf).  Nodes are checked as they are read.
 */
int mt_height(struct tm_bm *bm, uint64_t root, int *height, struct tm_error *e);

/*
 * A node listed to be read later (a leaf found by mt_list_leaves(), or
 * any node a caller lists), and what its parent says of it.
 */
struct mt_ref {
	uint64_t block;
	uint64_t lo, hi;	/* its keys must lie in [lo, hi) (MT_OPEN) */
	uint32_t tag;		/* the caller's (which device, which tree) */
	uint8_t is_root;	/* the root of its tree */
};

struct mt_refs {
	struct mt_ref *v;
	size_t n, cap;
};

/* Append @r to @l: 0 or -ENOMEM. */
int mt_refs_add(struct mt_refs *l, const struct mt_ref *r);

/*
 * Walk the tree at @root (its height from mt_height), depth first in key
 * order, reading and checking its internal nodes (mt_read_node), and
 * append its leaves, unread, to @out with @tag, in key order - for
 * mt_read_nodes() or the caller to read in bulk (engine/bstream.h).
 * @is_root: @root is a tree's root (it may then be underfull).  @seen is a
 * bit per metadata block (tm_bm_nr_blocks() bits): a node whose bit is set
 * is skipped with its whole subtree (as 1.1.0's walker skips nodes it has
 * visited before), every node listed or read gets its bit set.
 */
int mt_list_leaves(struct tm_bm *bm, uint64_t root, int height, int is_root,
		   uint8_t *seen, uint32_t tag, struct mt_refs *out, struct tm_error *e);

/* Called for each node read by mt_read_nodes(); non-zero stops it. */
typedef int (*mt_ref_fn)(void *ctx, const struct mt_ref *ref, const struct tm_node *n);

/*
 * Read the nodes @l lists, all at height @height (0: leaves), in bulk
 * (engine/bstream.h: block order, large requests), check each as
 * mt_read_node() would (the height, its is_root and range), and call @fn
 * for each in list order; the node's bytes are valid during the call
 * only.  0, or the first failure (a negative errno with @e filled in, or
 * @fn's value) with *@failed the index of the node it concerns (SIZE_MAX
 * if none: out of memory), for the caller's context.
 */
int mt_read_nodes(struct tm_bm *bm, const struct mt_refs *l, int height, mt_ref_fn fn,
		  void *ctx, size_t *failed, struct tm_error *e);

#endif
