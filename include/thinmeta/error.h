/*
 * error.h - how the engine says what went wrong, and where.
 *
 * Every engine function returns 0 or a negative errno.  The errno says the
 * class of failure; the struct tm_error that the caller handed in (or that
 * the block manager owns) says which block, which rule and in which tree.
 *
 *   -EIO      the device failed a read or write
 *   -ENOMEM   out of memory
 *   -EILSEQ   a checksum did not match
 *   -ENOTBLK  a block's self-location field is not its location
 *   -EUCLEAN  a block's contents break a format rule (header, keys, sizes)
 *   -ERANGE   a pointer or value lies past the end of its device
 *   -ELOOP    a tree refers back to itself
 *   -ENODATA  a key or object is absent
 *   -EINVAL   a bad argument from the caller
 *
 * The engine never prints; tools turn a tm_error into a message.
 */
#ifndef THINMETA_ERROR_H
#define THINMETA_ERROR_H

#include <stdint.h>

/* The rule a block or structure broke: one per distinct problem. */
enum tm_rule {
	TM_RULE_NONE = 0,
	TM_RULE_IO,		/* read or write failed */
	TM_RULE_NOMEM,
	TM_RULE_CHECKSUM,	/* checksum mismatch */
	TM_RULE_BLOCKNR,	/* self-location field differs from location */
	TM_RULE_MAGIC,		/* superblock magic */
	TM_RULE_VERSION,	/* unsupported superblock version */
	TM_RULE_FEATURE,	/* unknown incompat / compat_ro feature bits */
	TM_RULE_BLOCK_SIZE,	/* metadata_block_size != 8 */
	TM_RULE_NODE_FLAGS,	/* neither or both of INTERNAL/LEAF */
	TM_RULE_MAX_ENTRIES,	/* max_entries does not fit the block */
	TM_RULE_NR_ENTRIES,	/* nr_entries > max_entries */
	TM_RULE_VALUE_SIZE,	/* value_size not what the tree needs */
	TM_RULE_KEY_ORDER,	/* keys not strictly ascending */
	TM_RULE_KEY_RANGE,	/* key outside the parent's range */
	TM_RULE_DEPTH,		/* leaves at different depths, or too deep */
	TM_RULE_CYCLE,		/* a node reached twice within one tree */
	TM_RULE_OUT_OF_RANGE,	/* block pointer past the device end */
	TM_RULE_EMPTY_INTERNAL,	/* internal node with no children */
	TM_RULE_DEVICES,	/* details and mapping trees disagree */
	TM_RULE_NO_SNAP,	/* no metadata snapshot held */
	TM_RULE_SNAP_MISMATCH,	/* given snapshot block is not the held one */
	TM_RULE_TOO_SMALL,	/* device too small for metadata */
	TM_RULE_ZEROED,		/* block is all zeroes */
	TM_RULE_BAD_VALUE,	/* a field holds an impossible value */
	TM_RULE_ARG,		/* a bad argument from the caller */
	TM_RULE__COUNT
};

struct tm_error {
	int err;		/* negative errno, 0 = none */
	enum tm_rule rule;
	uint64_t block;		/* block concerned, TM_NO_BLOCK if none */
	char msg[256];		/* a sentence naming what and where */
};

#define TM_NO_BLOCK UINT64_MAX

/* Record a failure; returns err so callers can `return tm_fail(...)`. */
int tm_fail(struct tm_error *e, int err, enum tm_rule rule, uint64_t block,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Prefix the message with context ("device 3 mapping tree: ..."). */
void tm_error_context(struct tm_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void tm_error_clear(struct tm_error *e);

/* A short stable name of a rule ("checksum", "key_order", ...). */
const char *tm_rule_name(enum tm_rule rule);

#endif
