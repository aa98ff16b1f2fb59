/*
 * problem.h - the problem table: every finding a checker can make about a
 * pool's metadata, with a stable code, a severity and a message template
 * (after e2fsprogs' problem.h).  thin_check prints through it; the browser
 * and repair tools share the codes.
 *
 * A finding is a struct tm_problem: the code plus where it is (tree, block,
 * node path from the superblock, device, key range) and the numbers its
 * template names.  tm_problem_format() turns one into a single line.
 *
 * Templates use {placeholders}:
 *   {block}   the block (or first block of a run)    {blocks} the block run
 *   {expected} {actual} {n}  numbers                  {keys}   the key range
 *   {dev}     the device id          {key} the first key   {text} {text2} strings
 */
#ifndef THINMETA_PROBLEM_H
#define THINMETA_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

/* Severities only get worse in this order. */
enum tm_severity {
	TM_SEV_NOTE = 0,	/* inexact hint; harmless; shown when verbose */
	TM_SEV_INFO,		/* worth saying, not a problem (needs_check) */
	TM_SEV_NONFATAL,	/* nothing is lost (leaks, underfull nodes) */
	TM_SEV_FATAL,		/* data or metadata at risk */
	TM_SEV__COUNT
};

/* Which tree a node belongs to, by its position. */
enum tm_tree {
	TM_TREE_NONE = 0,
	TM_TREE_DETAILS,	/* device details tree */
	TM_TREE_TOP,		/* mapping tree, top level (dev id -> root) */
	TM_TREE_BOTTOM,		/* mapping tree, a device's bottom level */
	TM_TREE_DATA_INDEX,	/* data space map index btree */
	TM_TREE_DATA_RC,	/* data space map ref-count (overflow) tree */
	TM_TREE_META_RC,	/* metadata space map ref-count tree */
	TM_TREE__COUNT
};

/* What a metadata block is used as. */
enum tm_block_kind {
	TM_KIND_NONE = 0,
	TM_KIND_SUPERBLOCK,
	TM_KIND_SNAP_SB,	/* the held metadata snapshot's superblock copy */
	TM_KIND_META_INDEX,	/* metadata space map index block */
	TM_KIND_META_BITMAP,
	TM_KIND_DATA_BITMAP,
	TM_KIND_NODE,		/* a btree node; enum tm_tree says of which */
	TM_KIND__COUNT
};

/*
 * The table.  X(name, severity, fixable, template): fixable problems are
 * repaired by thin_check --auto-repair (and --clear-needs-check-flag).
 */
#define TM_PROBLEM_TABLE(X) \
	/* any block */ \
	X(BLOCK_IO, FATAL, 0, "{text} could not be read: {text2}") \
	X(BLOCK_ZERO, FATAL, 0, "bad checksum in {text}: the block is all zeroes") \
	X(BLOCK_WRONG_TYPE, FATAL, 0, "expected a {text}, found a {text2} (its checksum matches that block type)") \
	X(BLOCK_CHECKSUM, FATAL, 0, "bad checksum in {text}") \
	X(BLOCK_BLOCKNR, FATAL, 0, "{text} says it is block {actual}") \
	X(BLOCK_RANGE, FATAL, 0, "{text} points to block {actual}, past the end of the metadata ({expected} blocks)") \
	X(BLOCK_KIND_CONFLICT, FATAL, 0, "block {actual} is used as {text} and also as {text2}") \
	/* superblock */ \
	X(SB_MAGIC, FATAL, 0, "superblock magic is {actual}, not 27022010") \
	X(SB_VERSION, FATAL, 0, "unsupported superblock version {actual}") \
	X(SB_FEATURES, FATAL, 0, "unknown feature flags (incompat {actual}, compat_ro {n}): the kernel refuses this metadata") \
	X(SB_META_BLOCK_SIZE, FATAL, 0, "metadata block size is {actual} sectors, not 8") \
	X(SB_DATA_BLOCK_SIZE, FATAL, 0, "data block size {actual} sectors is not a multiple of 128 within 128..2097152") \
	X(SB_META_SM_SIZE, FATAL, 0, "the metadata space map tracks {actual} blocks, but the device holds {expected}") \
	X(SB_DATA_SM_SIZE, FATAL, 0, "the data space map tracks {actual} blocks, more than a mapping can address") \
	X(SB_FLAGS, NONFATAL, 1, "unknown superblock flag bits {actual}") \
	X(SB_NEEDS_CHECK, INFO, 0, "the needs_check flag is set: the kernel keeps the pool read-only until it is cleared") \
	X(SB_NR_ALLOCATED, NOTE, 0, "{text} space map root says {actual} blocks are allocated, {expected} are") \
	X(SB_CHANGED, FATAL, 0, "the superblock changed while it was being checked: the pool is in use (reserve a metadata snapshot and check it with -m); nothing is known about the metadata") \
	X(SNAP_NONE, FATAL, 0, "no current metadata snap") \
	X(SNAP_CHANGED, FATAL, 0, "the metadata snapshot was released or replaced during the check; nothing is known about it") \
	/* btree nodes */ \
	X(NODE_FLAGS, FATAL, 0, "btree node flags {actual} are neither internal nor leaf") \
	X(NODE_MAX_ENTRIES, FATAL, 0, "max_entries {actual} with value_size {n} does not fit in a block") \
	X(NODE_NR_ENTRIES, FATAL, 0, "nr_entries {actual} > max_entries {expected}") \
	X(NODE_VALUE_SIZE, FATAL, 0, "value_size {actual}, expected {expected}") \
	X(NODE_MAX_ENTRIES_DIV3, NONFATAL, 0, "max_entries {actual} is not divisible by 3") \
	X(NODE_KEY_ORDER, FATAL, 0, "keys out of order: entry {n} has key {actual} after key {expected}") \
	X(NODE_KEY_RANGE, FATAL, 0, "keys {actual}..{n} lie outside the range {keys} its parent gives it") \
	X(NODE_DEPTH, FATAL, 0, "children at different heights: leaves are not all at the same depth") \
	X(NODE_TOO_DEEP, FATAL, 0, "btree deeper than {expected} levels") \
	X(NODE_CYCLE, FATAL, 0, "node is its own descendant (a cycle)") \
	X(NODE_EMPTY_INTERNAL, FATAL, 0, "internal node with no entries") \
	X(NODE_UNDERFULL, NONFATAL, 0, "non-root node holds {actual} entries, fewer than max_entries / 3 = {expected}") \
	/* devices and mappings */ \
	X(DEV_NO_MAPPING, FATAL, 0, "device {dev} is in the device details tree but not in the mapping tree") \
	X(DEV_NO_DETAILS, FATAL, 0, "device {dev} is in the mapping tree but not in the device details tree") \
	X(DEV_MAPPED_BLOCKS, FATAL, 0, "device {dev} has {actual} mappings, but its details say mapped_blocks {expected}") \
	X(DEV_DAMAGED, FATAL, 0, "device {dev}: {n} damaged subtree(s); {actual} of {expected} mappings readable") \
	X(MAP_DATA_RANGE, FATAL, 0, "virtual block {key} maps to data block {actual}, past the end of the data device ({expected} blocks)") \
	X(MAP_TIME, FATAL, 0, "virtual block {key} has time {actual}, later than the pool's time {expected}") \
	/* space maps */ \
	X(SM_INDEX, FATAL, 0, "{text} space map index: {text2}") \
	X(SM_NR_FREE, NOTE, 0, "{text} space map index entry {n}: nr_free {actual}, the bitmap has {expected} free entries{text2}") \
	X(SM_NONE_FREE_BEFORE, NOTE, 0, "{text} space map index entry {n}: none_free_before {actual}, but entry {expected} is free") \
	X(SM_BITMAP_TAIL, NOTE, 0, "{text} space map bitmap {n}: entries past the end of the space map are not zero") \
	X(SM_OVERFLOW_MISSING, FATAL, 0, "{text} block {block}: its bitmap says 3 or more references, but the ref-count tree has no entry") \
	X(SM_OVERFLOW_SMALL, NOTE, 0, "{text} block {block}: the ref-count tree holds {actual}, below 3") \
	X(SM_OVERFLOW_STALE, NOTE, 0, "{text} block {block}: the ref-count tree holds {actual}, but the bitmap says {expected} (the entry is ignored)") \
	X(META_LEAK, NONFATAL, 1, "metadata {blocks}: reference count {actual} in the space map, {expected} references found (leaked)") \
	X(META_UNDERCOUNT, FATAL, 0, "metadata {blocks} ({text}): reference count {actual} in the space map, but {expected} references found: the pool could reuse it while in use") \
	X(DATA_LEAK, NONFATAL, 1, "data {blocks}: reference count {actual} in the space map, {expected} references found (leaked)") \
	X(LEAK_UNREACHED, NONFATAL, 0, "{actual} {text} blocks from block {block} have higher reference counts than the references found; expected while parts of the metadata cannot be read, so they are not repaired as leaks") \
	X(DATA_UNDERCOUNT, FATAL, 0, "data {blocks}: reference count {actual} in the space map, but {expected} references found: the pool could hand it out while in use")

enum tm_pcode {
#define TM_PX(name, sev, fix, tmpl) TM_PR_##name,
	TM_PROBLEM_TABLE(TM_PX)
#undef TM_PX
	TM_PR__COUNT
};

struct tm_problem_info {
	const char *name;		/* stable short name: "node_checksum" */
	enum tm_severity severity;
	int fixable;
	const char *tmpl;
};

const struct tm_problem_info *tm_problem_info(enum tm_pcode code);
const char *tm_severity_name(enum tm_severity s);	/* "fatal", ... */
const char *tm_tree_name(enum tm_tree t);		/* "device details tree" */
const char *tm_kind_name(enum tm_block_kind k, enum tm_tree t);

#define TM_NO_DEV UINT64_MAX
#define TM_MAX_PATH 40

struct tm_problem {
	enum tm_pcode code;
	enum tm_severity severity;	/* from the table, unless raised */
	enum tm_tree tree;		/* TM_TREE_NONE: not a tree node */
	enum tm_block_kind kind;	/* what the block is used as */
	int in_snapshot;		/* reached through the held snapshot */
	uint64_t block;			/* TM_NO_BLOCK (error.h) if none */
	uint64_t nr_blocks;		/* a run of blocks from block (>= 1) */
	uint64_t dev_id;		/* device concerned, TM_NO_DEV if none */
	uint64_t nr_devs;		/* devices reaching the node (0 = unknown) */
	int has_keys;			/* keys affected: [key_lo, key_hi) */
	int keys_open;			/*   ... with no upper bound */
	uint64_t key_lo, key_hi;
	uint64_t expected, actual, n;
	const char *text, *text2;
	const uint64_t *path;		/* node path, superblock first */
	unsigned path_len;
};

void tm_problem_init(struct tm_problem *p, enum tm_pcode code);

/*
 * One line: where, what, what it costs, node path.  Truncated to @size.
 * Returns the length it needed (as snprintf).
 */
size_t tm_problem_format(const struct tm_problem *p, char *buf, size_t size);
/* Only the template part. */
size_t tm_problem_message(const struct tm_problem *p, char *buf, size_t size);

/* Node paths: thinmeta/node_path.h (tm_node_path_encode). */

#endif
