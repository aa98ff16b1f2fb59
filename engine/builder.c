/*
 * builder.c - new pool metadata from IR events (include/thinmeta/builder.h).
 *
 * The IR sink: sections (defs, devices) feed a node builder
 * (btree_build.c) whose leaves become a def's shared run or a device's
 * mapping tree; at superblock_end the details and top-level trees and both
 * space maps (sm_build.c) are written; tm_builder_finish() writes the
 * superblock last.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"
#include "thinmeta/builder.h"
#include "thinmeta/format.h"
#include "thinmeta/metadata.h"
#include "thinmeta/superblock.h"
#include "u64set.h"

enum state {
	ST_START,	/* before superblock_begin */
	ST_SB,		/* inside the superblock, between sections */
	ST_DEF,
	ST_DEV,
	ST_ENDED,	/* superblock_end done: all but the superblock written */
	ST_DONE,	/* superblock written */
	ST_FAILED,
};

/* A def: its name and leaves live in the builder's arenas (no malloc each). */
struct def {
	size_t name;		/* offset in names */
	size_t first_leaf;	/* index in def_leaves */
	size_t nr_leaves;
	uint64_t nr_mappings;
};

struct dev {
	uint64_t dev_id;
	struct tm_device_details details;
	uint64_t root;
};

struct tm_builder {
	struct bld_out out;
	struct tm_builder_opts opts;
	struct tm_error err;
	enum state state;

	struct tm_ir_superblock sb;
	uint64_t nr_data_blocks;	/* the data space map's size */
	struct tm_rcmap data;
	struct bld_value_rc mapping_rc;

	struct def *defs;
	size_t nr_defs, defs_cap;
	char *names;			/* the defs' names, NUL-terminated */
	size_t names_len, names_cap;
	struct bld_nsum *def_leaves;	/* the defs' leaves, one run per def */
	size_t nr_def_leaves, def_leaves_cap;
	size_t *def_slots;		/* hash of names -> index + 1; 0 = empty */
	size_t def_slots_cap;

	struct dev *devs;
	size_t nr_devs, devs_cap;
	struct u64set dev_ids;

	/* the section being built */
	struct bld_nb nb;
	char *cur_def;
	struct dev cur_dev;
	uint64_t cur_mappings;
	int cur_have_last;
	uint64_t cur_last;

	uint64_t nr_mappings;
	uint64_t mapping_root, details_root;
	struct tm_sm_root data_root, meta_root;
};

/* ------------------------------------------------------------------ */

static int fail(struct tm_builder *b, int err, enum tm_rule rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct tm_builder *b, int err, enum tm_rule rule, const char *fmt, ...)
{
	va_list ap;

	tm_error_clear(&b->err);
	b->err.err = err;
	b->err.rule = rule;
	b->err.block = TM_NO_BLOCK;
	va_start(ap, fmt);
	vsnprintf(b->err.msg, sizeof(b->err.msg), fmt, ap);
	va_end(ap);
	b->state = ST_FAILED;
	return err;
}

/* A failure already recorded in b->err (by the writer or node builder). */
static int failed(struct tm_builder *b, int r)
{
	if (!b->err.err)
		tm_fail(&b->err, r, TM_RULE_NONE, TM_NO_BLOCK, "%s", strerror(-r));
	b->state = ST_FAILED;
	return r;
}

static int nomem(struct tm_builder *b)
{
	return fail(b, -ENOMEM, TM_RULE_NOMEM, "out of memory");
}

static int grammar(struct tm_builder *b, const char *what)
{
	static const char *const where[] = {
		[ST_START] = "before the superblock",
		[ST_SB] = "directly inside the superblock",
		[ST_DEF] = "inside a def",
		[ST_DEV] = "inside a device",
		[ST_ENDED] = "after the superblock",
		[ST_DONE] = "after the superblock",
		[ST_FAILED] = "after a failure",
	};
	return fail(b, -EINVAL, TM_RULE_ARG, "%s is not allowed %s", what, where[b->state]);
}

/* ------------------------------------------------------------------ */
/* Data block reference counts of mapping values */

static int mapping_inc(void *ctx, const uint8_t *value)
{
	struct tm_builder *b = ctx;
	uint64_t d = tm_bt_block(tm_le64(value));
	int r = tm_rcmap_inc(&b->data, d);

	if (r)
		return tm_fail(&b->err, r, r == -ENOMEM ? TM_RULE_NOMEM : TM_RULE_BAD_VALUE,
			       TM_NO_BLOCK, "data block %llu: cannot count another reference",
			       (unsigned long long)d);
	return 0;
}

static int mapping_dec(void *ctx, const uint8_t *value)
{
	struct tm_builder *b = ctx;
	uint64_t d = tm_bt_block(tm_le64(value));
	uint32_t now;

	if (tm_rcmap_dec(&b->data, d, &now))
		return tm_fail(&b->err, -EINVAL, TM_RULE_BAD_VALUE, TM_NO_BLOCK,
			       "data block %llu: dropping a reference it does not have",
			       (unsigned long long)d);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Defs by name */

static size_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static const char *def_name(const struct tm_builder *b, const struct def *d)
{
	return b->names + d->name;
}

static const struct bld_nsum *def_leaves(const struct tm_builder *b, const struct def *d)
{
	return b->def_leaves + d->first_leaf;
}

static struct def *def_find(struct tm_builder *b, const char *name)
{
	size_t mask = b->def_slots_cap - 1, j;

	if (!b->def_slots_cap)
		return NULL;
	for (j = name_hash(name) & mask; b->def_slots[j]; j = (j + 1) & mask)
		if (!strcmp(def_name(b, &b->defs[b->def_slots[j] - 1]), name))
			return &b->defs[b->def_slots[j] - 1];
	return NULL;
}

static void def_slot_insert(const struct tm_builder *b, size_t *slots, size_t cap, size_t idx)
{
	size_t j;

	for (j = name_hash(def_name(b, &b->defs[idx])) & (cap - 1); slots[j];
	     j = (j + 1) & (cap - 1))
		;
	slots[j] = idx + 1;
}

/* Grow *@p (of *@cap elements of @size) to hold @need. */
static int arena_reserve(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if (ncap > SIZE_MAX / size || !(q = realloc(*p, ncap * size)))
		return -ENOMEM;
	*p = q;
	*cap = ncap;
	return 0;
}

/* A def named @name with @n leaves (copied). */
static int def_add(struct tm_builder *b, const char *name, const struct bld_nsum *leaves,
		   size_t n, uint64_t nr_mappings)
{
	size_t len = strlen(name) + 1;

	if (arena_reserve((void **)&b->defs, &b->defs_cap, b->nr_defs + 1, sizeof(*b->defs)) ||
	    arena_reserve((void **)&b->names, &b->names_cap, b->names_len + len, 1) ||
	    arena_reserve((void **)&b->def_leaves, &b->def_leaves_cap, b->nr_def_leaves + n,
			  sizeof(*b->def_leaves)))
		return -ENOMEM;
	if ((b->nr_defs + 1) * 2 > b->def_slots_cap) {
		size_t ncap = b->def_slots_cap ? 2 * b->def_slots_cap : 64;
		size_t *s = calloc(ncap, sizeof(*s));
		if (!s)
			return -ENOMEM;
		for (size_t i = 0; i < b->nr_defs; i++)
			def_slot_insert(b, s, ncap, i);
		free(b->def_slots);
		b->def_slots = s;
		b->def_slots_cap = ncap;
	}
	memcpy(b->names + b->names_len, name, len);
	memcpy(b->def_leaves + b->nr_def_leaves, leaves, n * sizeof(*leaves));
	b->defs[b->nr_defs] = (struct def){ b->names_len, b->nr_def_leaves, n, nr_mappings };
	b->names_len += len;
	b->nr_def_leaves += n;
	def_slot_insert(b, b->def_slots, b->def_slots_cap, b->nr_defs);
	b->nr_defs++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* IR callbacks */

static int sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	struct tm_builder *b = ctx;
	uint64_t zero_block;
	int r;

	if (b->state != ST_START)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "a second superblock");
	if (sb->data_block_size < TM_DATA_BLOCK_SIZE_MIN ||
	    sb->data_block_size > TM_DATA_BLOCK_SIZE_MAX ||
	    sb->data_block_size % TM_DATA_BLOCK_SIZE_MIN)
		return fail(b, -EINVAL, TM_RULE_BAD_VALUE,
			    "invalid data block size %u: it must be a multiple of %u sectors "
			    "between %u and %u", sb->data_block_size, TM_DATA_BLOCK_SIZE_MIN,
			    TM_DATA_BLOCK_SIZE_MIN, TM_DATA_BLOCK_SIZE_MAX);
	b->sb = *sb;
	b->nr_data_blocks = sb->nr_data_blocks;
	if (b->opts.set_nr_data_blocks && b->opts.nr_data_blocks > b->nr_data_blocks)
		b->nr_data_blocks = b->opts.nr_data_blocks;
	/* every bitmap of the data space map takes a metadata block */
	uint64_t nbm = b->nr_data_blocks / TM_ENTRIES_PER_BITMAP +
		       (b->nr_data_blocks % TM_ENTRIES_PER_BITMAP != 0);
	if (nbm >= b->out.meta.nr_blocks)
		return fail(b, -ENOSPC, TM_RULE_TOO_SMALL,
			    "out of metadata space: %llu data blocks need %llu space map "
			    "blocks, the output holds %llu blocks",
			    (unsigned long long)b->nr_data_blocks, (unsigned long long)nbm,
			    (unsigned long long)b->out.meta.nr_blocks);
	if (tm_rcmap_init(&b->data, b->nr_data_blocks))
		return nomem(b);
	/* block 0 is the superblock's, written last */
	if ((r = bld_alloc(&b->out, &zero_block)))
		return failed(b, r);
	if (zero_block != 0)
		return fail(b, -EINVAL, TM_RULE_ARG, "block 0 is not free for the superblock");
	b->state = ST_SB;
	return 0;
}

static void section_begin(struct tm_builder *b)
{
	/* one node builder for every def and device: no queue allocated each */
	bld_nb_restart(&b->nb);
	b->cur_mappings = 0;
	b->cur_have_last = 0;
	b->cur_last = 0;
}

static int def_begin(void *ctx, const char *name)
{
	struct tm_builder *b = ctx;

	if (b->state != ST_SB)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "a def");
	if (def_find(b, name))
		return fail(b, -EINVAL, TM_RULE_ARG, "def '%s' is defined twice", name);
	if (!(b->cur_def = strdup(name)))
		return nomem(b);
	section_begin(b);
	b->state = ST_DEF;
	return 0;
}

static int section_end(struct tm_builder *b, struct bld_nsum **leaves, size_t *n)
{
	int r = bld_nb_complete(&b->nb, leaves, n);

	return r ? failed(b, r) : 0;
}

static int def_end(void *ctx)
{
	struct tm_builder *b = ctx;
	struct bld_nsum *leaves;
	size_t n;
	int r;

	if (b->state != ST_DEF)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "the end of a def");
	if ((r = section_end(b, &leaves, &n)))
		return r;
	r = def_add(b, b->cur_def, leaves, n, b->cur_mappings);
	free(leaves);
	if (r)
		return nomem(b);
	free(b->cur_def);
	b->cur_def = NULL;
	b->state = ST_SB;
	return 0;
}

static int device_begin(void *ctx, const struct tm_ir_device *d)
{
	struct tm_builder *b = ctx;
	int r;

	if (b->state != ST_SB)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "a device");
	if ((r = u64set_add(&b->dev_ids, d->dev_id)) < 0)
		return nomem(b);
	if (r == 0)
		return fail(b, -EINVAL, TM_RULE_ARG, "device %llu is given twice",
			    (unsigned long long)d->dev_id);
	b->cur_dev.dev_id = d->dev_id;
	b->cur_dev.details.mapped_blocks = d->mapped_blocks;
	b->cur_dev.details.transaction_id = d->transaction;
	b->cur_dev.details.creation_time = d->creation_time;
	b->cur_dev.details.snapshotted_time = d->snap_time;
	section_begin(b);
	b->state = ST_DEV;
	return 0;
}

static int device_end(void *ctx)
{
	struct tm_builder *b = ctx;
	struct bld_nsum *leaves;
	size_t n;
	int r;

	if (b->state != ST_DEV)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "the end of a device");
	if ((r = section_end(b, &leaves, &n)))
		return r;
	if ((r = bld_build_btree(&b->out, leaves, n, &b->cur_dev.root)))
		return failed(b, r);
	if (b->opts.recount_mapped_blocks)
		b->cur_dev.details.mapped_blocks = b->cur_mappings;
	if (b->nr_devs == b->devs_cap) {
		size_t ncap = b->devs_cap ? 2 * b->devs_cap : 64;
		struct dev *p = realloc(b->devs, ncap * sizeof(*p));
		if (!p)
			return nomem(b);
		b->devs = p;
		b->devs_cap = ncap;
	}
	b->devs[b->nr_devs++] = b->cur_dev;
	b->state = ST_SB;
	return 0;
}

static const char *section_name(struct tm_builder *b, char *buf, size_t len)
{
	if (b->state == ST_DEF)
		snprintf(buf, len, "def '%s'", b->cur_def);
	else
		snprintf(buf, len, "device %llu", (unsigned long long)b->cur_dev.dev_id);
	return buf;
}

static int run_refused(struct tm_builder *b, const struct tm_ir_run *m);

static int run(void *ctx, const struct tm_ir_run *m)
{
	struct tm_builder *b = ctx;
	uint64_t bad;
	int r;

	if (b->state != ST_DEF && b->state != ST_DEV)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "a mapping");
	if (m->length == 0 || m->origin_begin + (m->length - 1) < m->origin_begin ||
	    m->data_begin >= b->sb.nr_data_blocks ||
	    m->length > b->sb.nr_data_blocks - m->data_begin ||
	    m->data_begin + (m->length - 1) > TM_MAX_DATA_BLOCK || m->time > TM_TIME_MASK ||
	    (b->cur_have_last && m->origin_begin <= b->cur_last) ||
	    m->length / tm_node_max_entries(TM_VSIZE_U64) > bld_nr_free(&b->out))
		return run_refused(b, m);
	if ((r = tm_rcmap_inc_range(&b->data, m->data_begin, m->length, &bad)))
		return fail(b, r, r == -ENOMEM ? TM_RULE_NOMEM : TM_RULE_BAD_VALUE,
			    "data block %llu: cannot count another reference",
			    (unsigned long long)bad);
	if ((r = bld_nb_push_mappings(&b->nb, m->origin_begin, m->data_begin, m->length,
				      m->time)))
		return failed(b, r);
	b->cur_have_last = 1;
	b->cur_last = m->origin_begin + (m->length - 1);
	b->cur_mappings += m->length;
	b->nr_mappings += m->length;
	return 0;
}

/* Why run() refuses @m (the checks again, slowly, with words). */
static int run_refused(struct tm_builder *b, const struct tm_ir_run *m)
{
	char sec[96];

	section_name(b, sec, sizeof(sec));
	if (m->length == 0)
		return fail(b, -EINVAL, TM_RULE_BAD_VALUE, "%s: a mapping of length 0", sec);
	if (m->origin_begin + (m->length - 1) < m->origin_begin)
		return fail(b, -EINVAL, TM_RULE_BAD_VALUE,
			    "%s: mapping at virtual block %llu of length %llu passes 2^64",
			    sec, (unsigned long long)m->origin_begin,
			    (unsigned long long)m->length);
	if (m->data_begin >= b->sb.nr_data_blocks ||
	    m->length > b->sb.nr_data_blocks - m->data_begin)
		return fail(b, -EINVAL, TM_RULE_OUT_OF_RANGE,
			    "%s: mapping to data blocks %llu..%llu is past the pool's "
			    "nr_data_blocks %llu", sec, (unsigned long long)m->data_begin,
			    (unsigned long long)(m->data_begin + (m->length - 1)),
			    (unsigned long long)b->sb.nr_data_blocks);
	if (m->data_begin + (m->length - 1) > TM_MAX_DATA_BLOCK)
		return fail(b, -EINVAL, TM_RULE_OUT_OF_RANGE,
			    "%s: data block %llu does not fit 40 bits", sec,
			    (unsigned long long)(m->data_begin + (m->length - 1)));
	if (m->time > TM_TIME_MASK)
		return fail(b, -EINVAL, TM_RULE_BAD_VALUE,
			    "%s: mapping time %u does not fit 24 bits", sec, m->time);
	if (b->cur_have_last && m->origin_begin <= b->cur_last)
		return fail(b, -EINVAL, TM_RULE_KEY_ORDER,
			    "%s: mapping at virtual block %llu does not follow virtual block "
			    "%llu (mappings must ascend and not overlap)", sec,
			    (unsigned long long)m->origin_begin,
			    (unsigned long long)b->cur_last);
	/* about a leaf per 252 mappings: fail early rather than after hours */
	if (m->length / tm_node_max_entries(TM_VSIZE_U64) > bld_nr_free(&b->out))
		return fail(b, -ENOSPC, TM_RULE_TOO_SMALL,
			    "%s: out of metadata space for %llu more mappings (the output "
			    "holds %llu blocks)", sec, (unsigned long long)m->length,
			    (unsigned long long)b->out.meta.nr_blocks);
	return fail(b, -EINVAL, TM_RULE_ARG, "%s: mapping refused", sec);
}

static int ref(void *ctx, const char *name)
{
	struct tm_builder *b = ctx;
	struct def *d;
	int r;

	if (b->state != ST_DEV)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "a ref");
	if (!(d = def_find(b, name)))
		return fail(b, -EINVAL, TM_RULE_ARG,
			    "device %llu: ref to an unknown def '%s'",
			    (unsigned long long)b->cur_dev.dev_id, name);
	if (d->nr_mappings) {
		uint64_t first = def_leaves(b, d)[0].first_key;
		uint64_t last = def_leaves(b, d)[d->nr_leaves - 1].last_key;
		if (b->cur_have_last && first <= b->cur_last)
			return fail(b, -EINVAL, TM_RULE_KEY_ORDER,
				    "device %llu: def '%s' starts at virtual block %llu, which "
				    "does not follow virtual block %llu",
				    (unsigned long long)b->cur_dev.dev_id, name,
				    (unsigned long long)first, (unsigned long long)b->cur_last);
		b->cur_have_last = 1;
		b->cur_last = last;
	}
	if ((r = bld_nb_push_nodes(&b->nb, def_leaves(b, d), d->nr_leaves)))
		return failed(b, r);
	b->cur_mappings += d->nr_mappings;
	return 0;
}

static int cmp_dev(const void *x, const void *y)
{
	const struct dev *a = x, *c = y;
	return a->dev_id < c->dev_id ? -1 : a->dev_id > c->dev_id;
}

/* The details tree and the top level of the mapping tree. */
static int write_device_trees(struct tm_builder *b)
{
	struct bld_nb det, top;
	struct bld_nsum *leaves;
	size_t n;
	uint8_t v[TM_VSIZE_DETAILS];
	int r = 0;

	if (b->nr_devs)
		qsort(b->devs, b->nr_devs, sizeof(*b->devs), cmp_dev);
	bld_nb_init(&det, &b->out, TM_NODE_LEAF, TM_VSIZE_DETAILS, NULL);
	bld_nb_init(&top, &b->out, TM_NODE_LEAF, TM_VSIZE_U64, NULL);
	/* both trees are fed in one pass (their leaves interleave, as in 1.1.0) */
	for (size_t i = 0; i < b->nr_devs && !r; i++) {
		tm_details_encode(&b->devs[i].details, v);
		if (!(r = bld_nb_push_value(&det, b->devs[i].dev_id, v))) {
			tm_put_le64(v, b->devs[i].root);
			r = bld_nb_push_value(&top, b->devs[i].dev_id, v);
		}
	}
	if (!r && !(r = bld_nb_complete(&det, &leaves, &n)))
		r = bld_build_btree(&b->out, leaves, n, &b->details_root);
	if (!r && !(r = bld_nb_complete(&top, &leaves, &n)))
		r = bld_build_btree(&b->out, leaves, n, &b->mapping_root);
	bld_nb_free(&det);
	bld_nb_free(&top);
	return r;
}

/*
 * Drop the defs' own references to their leaves: a leaf no device uses
 * is freed, and so are its references to data blocks.
 */
static int release_defs(struct tm_builder *b)
{
	uint64_t keys[TM_BLOCK_SIZE / 8];
	uint8_t values[TM_BLOCK_SIZE];
	uint32_t n;
	int freed, r;

	for (size_t i = 0; i < b->nr_defs; i++) {
		struct def *d = &b->defs[i];
		for (size_t j = 0; j < d->nr_leaves; j++) {
			uint64_t leaf = def_leaves(b, d)[j].block;
			if ((r = bld_dec(&b->out, leaf, &freed)))
				return r;
			if (!freed)
				continue;
			if ((r = bld_read_leaf(&b->out, leaf, TM_VSIZE_U64, keys, values, &n)))
				return r;
			for (uint32_t k = 0; k < n; k++)
				if ((r = mapping_dec(b, values + 8 * k)))
					return r;
		}
	}
	return 0;
}

static int sb_end(void *ctx)
{
	struct tm_builder *b = ctx;
	int r;

	if (b->state != ST_SB)
		return b->state == ST_FAILED ? b->err.err : grammar(b, "the end of the superblock");
	if ((r = write_device_trees(b)) || (r = release_defs(b)) ||
	    (r = bld_write_data_sm(&b->out, &b->data, &b->data_root)) ||
	    (r = bld_write_meta_sm(&b->out, &b->meta_root)) ||
	    (r = bld_flush(&b->out)))
		return failed(b, r);
	b->state = ST_ENDED;
	return 0;
}

/* ------------------------------------------------------------------ */

int tm_builder_create(struct tm_bm *bm, const struct tm_builder_opts *opts,
		      struct tm_builder **out, struct tm_error *e)
{
	struct tm_builder *b;
	uint8_t zero[TM_BLOCK_SIZE];
	int r;

	*out = NULL;
	if (tm_bm_nr_blocks(bm) < 2)
		return tm_fail(e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "the output is too small for metadata (%llu blocks)",
			       (unsigned long long)tm_bm_nr_blocks(bm));
	if (!(b = calloc(1, sizeof(*b))))
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	if (opts)
		b->opts = *opts;
	tm_error_clear(&b->err);
	u64set_init(&b->dev_ids);
	b->mapping_rc = (struct bld_value_rc){ mapping_inc, mapping_dec, b };
	if ((r = bld_out_init(&b->out, bm, e))) {
		free(b);
		return r;
	}
	b->out.e = &b->err;
	bld_nb_init(&b->nb, &b->out, TM_NODE_LEAF, TM_VSIZE_U64, &b->mapping_rc);
	/* no valid superblock until the very end */
	memset(zero, 0, sizeof(zero));
	if ((r = tm_bm_write(bm, 0, NULL, zero, e)) || (r = tm_bm_flush(bm, e))) {
		tm_builder_destroy(b);
		return r;
	}
	b->state = ST_START;
	*out = b;
	return 0;
}

void tm_builder_sink(struct tm_builder *b, struct tm_ir_sink *sink)
{
	sink->ctx = b;
	sink->superblock_begin = sb_begin;
	sink->superblock_end = sb_end;
	sink->def_begin = def_begin;
	sink->def_end = def_end;
	sink->device_begin = device_begin;
	sink->device_end = device_end;
	sink->ref = ref;
	sink->run = run;
}

const struct tm_error *tm_builder_error(const struct tm_builder *b)
{
	return &b->err;
}

int tm_builder_finish(struct tm_builder *b, struct tm_error *e)
{
	struct tm_superblock sb;
	uint8_t buf[TM_BLOCK_SIZE];
	int r;

	if (b->state == ST_FAILED) {
		*e = b->err;
		return b->err.err;
	}
	if (b->state != ST_ENDED)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "the metadata is incomplete: %s",
			       b->state == ST_START ? "no superblock was given"
						    : "the superblock was not ended");
	memset(&sb, 0, sizeof(sb));
	sb.magic = TM_SB_MAGIC;
	sb.version = 2;
	sb.time = b->sb.time;
	sb.trans_id = b->sb.transaction;
	if (b->opts.set_transaction_id && b->opts.transaction_id > sb.trans_id)
		sb.trans_id = b->opts.transaction_id;
	sb.data_sm = b->data_root;
	sb.meta_sm = b->meta_root;
	sb.mapping_root = b->mapping_root;
	sb.details_root = b->details_root;
	sb.data_block_size = b->opts.set_data_block_size ? b->opts.data_block_size
							 : b->sb.data_block_size;
	sb.metadata_block_size = TM_BLOCK_SECTORS;
	sb.metadata_nr_blocks = b->meta_root.nr_blocks;
	tm_sb_encode(&sb, buf);
	if ((r = tm_bm_write(b->out.bm, 0, &tm_sb_validator, buf, e)) ||
	    (r = tm_bm_flush(b->out.bm, e)))
		return r;
	b->state = ST_DONE;
	return 0;
}

void tm_builder_destroy(struct tm_builder *b)
{
	if (!b)
		return;
	bld_nb_free(&b->nb);
	free(b->defs);
	free(b->names);
	free(b->def_leaves);
	free(b->def_slots);
	free(b->devs);
	free(b->cur_def);
	u64set_free(&b->dev_ids);
	tm_rcmap_free(&b->data);
	bld_out_free(&b->out);
	free(b);
}

void tm_builder_stats(const struct tm_builder *b, struct tm_builder_stats *s)
{
	s->nr_devices = b->nr_devs;
	s->nr_defs = b->nr_defs;
	s->nr_mappings = b->nr_mappings;
	s->metadata_blocks = b->out.meta.nr_allocated;
	s->metadata_nr_blocks = b->out.meta.nr_blocks;
}
