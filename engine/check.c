/*
 * check.c - the checker's driver (include/thinmeta/check.h): the live
 * superblock and the held snapshot's copy, the device details and top-level
 * trees, the device lists, the bottom-level trees, then the space maps
 * (check_sm.c); change detection; repair and clearing needs_check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_int.h"

/* ------------------------------------------------------------------ */
/* Reporting */

void ck_report(struct ck *c, struct tm_problem *p)
{
	const struct tm_problem_info *pi = tm_problem_info(p->code);

	if (p->severity >= TM_SEV__COUNT)
		p->severity = TM_SEV_FATAL;
	c->res->nr_problems[p->severity]++;
	c->res->nr_by_code[p->code]++;
	if (p->severity == TM_SEV_FATAL)
		c->fatal = 1;
	switch (p->code) {
	case TM_PR_BLOCK_IO: case TM_PR_BLOCK_ZERO: case TM_PR_BLOCK_WRONG_TYPE:
	case TM_PR_BLOCK_CHECKSUM: case TM_PR_BLOCK_BLOCKNR: case TM_PR_BLOCK_RANGE:
	case TM_PR_BLOCK_KIND_CONFLICT: case TM_PR_NODE_FLAGS: case TM_PR_NODE_MAX_ENTRIES:
	case TM_PR_NODE_NR_ENTRIES: case TM_PR_NODE_VALUE_SIZE: case TM_PR_NODE_KEY_ORDER:
	case TM_PR_NODE_TOO_DEEP: case TM_PR_NODE_EMPTY_INTERNAL: case TM_PR_NODE_CYCLE:
	case TM_PR_DEV_NO_MAPPING: case TM_PR_SM_INDEX:
		/* references below it are not counted: "leaks" are not leaks */
		c->unreached = 1;
		break;
	default:
		break;
	}
	if (pi->fixable && p->severity == TM_SEV_NONFATAL)
		c->res->nr_fixable++;
	if (c->cb->problem)
		c->cb->problem(c->cb->ctx, p);
}

int ck_fail(struct ck *c, int err, const char *what)
{
	if (!c->err) {
		c->err = err;
		if (err == -ENOMEM)
			tm_fail(c->e, err, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory (%s)", what);
		else
			tm_fail(c->e, err, TM_RULE_IO, TM_NO_BLOCK, "%s: %s", what, strerror(-err));
	}
	return err;
}

void ck_progress(struct ck *c, uint64_t n)
{
	c->blocks_read += n;
	if (!c->cb->progress || c->blocks_read < c->progress_next)
		return;
	c->cb->progress(c->cb->ctx, c->blocks_read, c->progress_total);
	c->progress_next = c->blocks_read + (c->progress_total / 200 + 64);
}

static void place(struct tm_problem *p, const struct tm_problem *where)
{
	p->kind = where->kind;
	p->tree = where->tree;
	p->block = where->block;
	p->in_snapshot = where->in_snapshot;
	p->dev_id = where->dev_id;
	p->path = where->path;
	p->path_len = where->path_len;
	p->has_keys = where->has_keys;
	p->keys_open = where->keys_open;
	p->key_lo = where->key_lo;
	p->key_hi = where->key_hi;
}

int ck_read_validated(struct ck *c, uint64_t b, const struct tm_validator *v,
		      void *buf, struct tm_problem *where)
{
	struct tm_problem p;
	int r = tm_dev_read(c->dev, b, 1, buf);

	if (r) {
		tm_problem_init(&p, TM_PR_BLOCK_IO);
		place(&p, where);
		p.text = v->name;
		p.text2 = strerror(-r);
		ck_report(c, &p);
		return -1;
	}
	if (ck_validate(v, buf, b, &p)) {
		place(&p, where);
		ck_report(c, &p);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Superblocks */

static void sb_problem(struct ck *c, struct tm_problem *p, int snap)
{
	p->kind = snap ? TM_KIND_SNAP_SB : TM_KIND_SUPERBLOCK;
	p->block = snap ? c->sb.held_root : 0;
	p->in_snapshot = snap;
	ck_report(c, p);
}

static void sb_say(struct ck *c, enum tm_pcode code, uint64_t actual, uint64_t expected,
		   uint64_t n, int snap)
{
	struct tm_problem p;

	tm_problem_init(&p, code);
	p.actual = actual;
	p.expected = expected;
	p.n = n;
	sb_problem(c, &p, snap);
}

/*
 * Read and validate a superblock at @b into @raw.  A checksum mismatch is
 * read again before it is called damage: a pool may be writing the block.
 * 0, 1 (usable but with a wrong blocknr, reported) or -1 (unusable).
 */
static int read_sb(struct ck *c, uint64_t b, uint8_t *raw, int snap)
{
	struct tm_problem p;
	int r = tm_dev_read(c->dev, b, 1, raw);

	tm_problem_init(&p, TM_PR_BLOCK_IO);	/* (p.code is read below when valid) */

	if (r) {
		tm_problem_init(&p, TM_PR_BLOCK_IO);
		p.text = "superblock";
		p.text2 = strerror(-r);
		sb_problem(c, &p, snap);
		return -1;
	}
	if (ck_validate(&tm_sb_validator, raw, b, &p) && p.code != TM_PR_BLOCK_BLOCKNR) {
		if (tm_dev_read(c->dev, b, 1, raw) == 0 &&
		    !ck_validate(&tm_sb_validator, raw, b, &p))
			return 0;
	}
	if (p.code == TM_PR_BLOCK_BLOCKNR && tm_le64(raw + TM_SB_OFF_BLOCKNR) != b) {
		sb_problem(c, &p, snap);
		return 1;
	}
	if (tm_le32(raw) != (tm_block_crc(raw) ^ TM_SALT_SUPERBLOCK)) {
		sb_problem(c, &p, snap);
		return -1;
	}
	return 0;
}

static int check_fields(struct ck *c, const struct tm_superblock *sb, int snap)
{
	if (sb->magic != TM_SB_MAGIC) {
		sb_say(c, TM_PR_SB_MAGIC, sb->magic, TM_SB_MAGIC, 0, snap);
		return -1;
	}
	if (sb->version < TM_SB_VERSION_MIN || sb->version > TM_SB_VERSION_MAX)
		sb_say(c, TM_PR_SB_VERSION, sb->version, 2, 0, snap);
	if (sb->incompat_flags || sb->compat_ro_flags)
		sb_say(c, TM_PR_SB_FEATURES, sb->incompat_flags, 0, sb->compat_ro_flags, snap);
	if (sb->metadata_block_size != TM_BLOCK_SECTORS)
		sb_say(c, TM_PR_SB_META_BLOCK_SIZE, sb->metadata_block_size, 8, 0, snap);
	if (sb->data_block_size < TM_DATA_BLOCK_SIZE_MIN ||
	    sb->data_block_size > TM_DATA_BLOCK_SIZE_MAX ||
	    sb->data_block_size % TM_DATA_BLOCK_SIZE_MIN)
		sb_say(c, TM_PR_SB_DATA_BLOCK_SIZE, sb->data_block_size, 0, 0, snap);
	if (snap)
		return 0;
	if (sb->flags & ~TM_SB_FLAG_NEEDS_CHECK)
		sb_say(c, TM_PR_SB_FLAGS, sb->flags & ~TM_SB_FLAG_NEEDS_CHECK, 0, 0, 0);
	if (sb->flags & TM_SB_FLAG_NEEDS_CHECK)
		sb_say(c, TM_PR_SB_NEEDS_CHECK, 0, 0, 0, 0);
	return 0;
}

static int check_live_sb(struct ck *c)
{
	if (read_sb(c, 0, c->sb_raw, 0) < 0)
		return -1;
	tm_sb_decode(c->sb_raw, &c->sb);
	if (check_fields(c, &c->sb, 0))
		return -1;
	return 0;
}

static int check_snap_sb(struct ck *c, uint8_t *raw)
{
	uint64_t b = c->sb.held_root;

	if (b >= c->dev->nr_blocks || b >= TM_MAX_METADATA_BLOCKS) {
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_BLOCK_RANGE);
		p.kind = TM_KIND_SUPERBLOCK;
		p.block = 0;
		p.text = "the metadata snapshot root (held root)";
		p.actual = b;
		p.expected = c->dev->nr_blocks;
		ck_report(c, &p);
		return -1;
	}
	if (read_sb(c, b, raw, 1) < 0)
		return -1;
	tm_sb_decode(raw, &c->snap);
	if (check_fields(c, &c->snap, 1))
		return -1;
	c->have_snap = 1;
	c->snap_block = b;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Devices */

static void dev_problem(struct ck *c, enum tm_pcode code, uint32_t node1, uint64_t dev)
{
	struct tm_problem p;

	tm_problem_init(&p, code);
	if (node1)
		ck_problem_node(c, &p, node1);
	p.dev_id = dev;
	p.tree = code == TM_PR_DEV_NO_MAPPING ? TM_TREE_DETAILS : TM_TREE_TOP;
	ck_report(c, &p);
}

/*
 * Mark (in @seen, per node) every node of @tree reachable from @root's
 * node through valid internal nodes.  A node shared by the live trees and
 * the held snapshot's is walked once, by whichever reached it first, so
 * which view a leaf belongs to is found here, not from the walk.
 */
static int mark_view(struct ck *c, enum tm_tree tree, uint64_t root, uint8_t *seen)
{
	uint32_t *stack, sp = 0, cap = 64;
	uint32_t first = root < c->meta_limit ? c->nodeidx[root] : 0;

	if (!first || c->nodes[first - 1].tree != tree)
		return 0;
	stack = malloc(cap * sizeof(*stack));
	if (!stack)
		return ck_fail(c, -ENOMEM, "device list");
	seen[first - 1] = 1;
	stack[sp++] = first;
	while (sp) {
		const struct cnode *cn = &c->nodes[stack[--sp] - 1];

		if (cn->flags & (CN_LEAF | CN_BAD) || !cn->nr_entries)
			continue;
		for (uint32_t k = 0; k < cn->nr_entries; k++) {
			uint64_t b = c->arena[cn->arena + cn->nr_entries + k];
			uint32_t ch = b < c->meta_limit ? c->nodeidx[b] : 0;

			if (!ch || seen[ch - 1] || c->nodes[ch - 1].tree != tree)
				continue;
			if (sp == cap) {
				uint32_t *ns = realloc(stack, 2 * cap * sizeof(*ns));
				if (!ns) {
					free(stack);
					return ck_fail(c, -ENOMEM, "device list");
				}
				stack = ns;
				cap *= 2;
			}
			seen[ch - 1] = 1;
			stack[sp++] = ch;
		}
	}
	free(stack);
	return 0;
}

/* The next entry of @kv from @i on that is in a marked leaf and has a key
 * other than @last's (the first one of a duplicated key is kept). */
static size_t next_entry(const struct kvvec *kv, size_t i, const uint8_t *seen,
			 const uint64_t *last)
{
	while (i < kv->n && (!seen[kv->v[i].node - 1] || (last && kv->v[i].key == *last)))
		i++;
	return i;
}

/* Join the details and top-level entries of the live (@snap 0) or
 * snapshot trees into a device list. */
static int join_devices(struct ck *c, int snap, struct cdev **out, size_t *nr)
{
	const struct tm_superblock *sb = snap ? &c->snap : &c->sb;
	struct kvvec *d = &c->details, *t = &c->top;
	size_t i, j, n = 0, cap = 16;
	uint64_t last_d = 0, last_t = 0;
	uint8_t *seen = calloc(c->nr_nodes ? c->nr_nodes : 1, 1);
	struct cdev *v = malloc(cap * sizeof(*v));

	if (!seen || !v) {
		free(seen);
		free(v);
		return ck_fail(c, -ENOMEM, "device list");
	}
	if (mark_view(c, TM_TREE_DETAILS, sb->details_root, seen) ||
	    mark_view(c, TM_TREE_TOP, sb->mapping_root, seen)) {
		free(seen);
		free(v);
		return c->err;
	}
	i = next_entry(d, 0, seen, NULL);
	j = next_entry(t, 0, seen, NULL);
	while (i < d->n || j < t->n) {
		if (n == cap) {
			cap *= 2;
			struct cdev *nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(seen);
				free(v);
				return ck_fail(c, -ENOMEM, "device list");
			}
			v = nv;
		}
		struct cdev *dv = &v[n++];
		memset(dv, 0, sizeof(*dv));
		int take_d = i < d->n && (j >= t->n || d->v[i].key <= t->v[j].key);
		int take_t = j < t->n && (i >= d->n || t->v[j].key <= d->v[i].key);
		if (take_d) {
			dv->dev_id = d->v[i].key;
			dv->details = c->det_vals[d->v[i].v1];
			dv->have_details = 1;
		}
		if (take_t) {
			dv->dev_id = t->v[j].key;
			dv->root = t->v[j].v1;
			dv->top_leaf = t->v[j].node;
			dv->have_root = 1;
		}
		if (!take_t)
			dev_problem(c, TM_PR_DEV_NO_MAPPING, d->v[i].node, dv->dev_id);
		if (!take_d)
			dev_problem(c, TM_PR_DEV_NO_DETAILS, t->v[j].node, dv->dev_id);
		if (take_d) {
			last_d = d->v[i].key;
			i = next_entry(d, i + 1, seen, &last_d);
		}
		if (take_t) {
			last_t = t->v[j].key;
			j = next_entry(t, j + 1, seen, &last_t);
		}
	}
	free(seen);
	*out = v;
	*nr = n;
	return 0;
}

static void check_device(struct ck *c, const struct cdev *dv, int snap)
{
	struct tm_problem p;
	const struct croot *r;

	if (!dv->have_details || !dv->have_root || !dv->root_ref)
		return;
	r = &c->roots[dv->root_ref - 1];
	const struct cnode *n = r->node ? &c->nodes[r->node - 1] : NULL;
	uint64_t want = dv->details.mapped_blocks;

	if (r->dropped || !n || (n->flags & CN_BAD)) {
		tm_problem_init(&p, TM_PR_DEV_DAMAGED);
		p.dev_id = dv->dev_id;
		p.in_snapshot = snap;
		p.n = 1;
		p.actual = 0;
		p.expected = want;
		p.has_keys = 1;
		p.keys_open = 1;
		ck_report(c, &p);
		return;
	}
	if (n->sub_bad) {
		tm_problem_init(&p, TM_PR_DEV_DAMAGED);
		p.dev_id = dv->dev_id;
		p.in_snapshot = snap;
		p.n = n->sub_bad;
		p.actual = n->sub_count;
		p.expected = want;
		p.has_keys = 1;
		p.key_lo = n->bad_lo;
		p.key_hi = n->bad_hi;
		p.keys_open = n->bad_open;
		ck_report(c, &p);
		return;
	}
	if (n->sub_count != want) {
		tm_problem_init(&p, TM_PR_DEV_MAPPED_BLOCKS);
		p.dev_id = dv->dev_id;
		p.in_snapshot = snap;
		p.actual = n->sub_count;
		p.expected = want;
		ck_report(c, &p);
	}
}

/* The live device @dev_id (c->devs is sorted by dev_id), or NULL. */
static const struct cdev *live_dev(const struct ck *c, uint64_t dev_id)
{
	size_t lo = 0, hi = c->nr_devs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->devs[mid].dev_id < dev_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nr_devs && c->devs[lo].dev_id == dev_id ? &c->devs[lo] : NULL;
}

/* The snapshot's device is the live one, unchanged: said once. */
static int same_as_live(const struct ck *c, const struct cdev *s)
{
	const struct cdev *l = live_dev(c, s->dev_id);

	return l && l->root == s->root && l->have_root == s->have_root &&
	       l->have_details == s->have_details &&
	       l->details.mapped_blocks == s->details.mapped_blocks;
}

/*
 * The live device whose top-level entry @s's is: the same leaf, the same
 * key (trees the held snapshot shares with the live ones).  That entry
 * points at its bottom-level root once, so it is walked and counted once.
 */
static const struct cdev *live_twin(const struct ck *c, const struct cdev *s)
{
	const struct cdev *l = live_dev(c, s->dev_id);

	return l && l->have_root && l->top_leaf == s->top_leaf ? l : NULL;
}

static int check_trees(struct ck *c)
{
	uint32_t det[2], top[2], n = 0;
	const struct tm_check_opts *o = c->o;

	if (!o->metadata_snap) {
		det[n] = ck_add_root(c, c->sb.details_root, TM_NO_DEV, 0, 0);
		top[n++] = ck_add_root(c, c->sb.mapping_root, TM_NO_DEV, 0, 0);
	}
	if (c->have_snap) {
		det[n] = ck_add_root(c, c->snap.details_root, TM_NO_DEV, 0, 1);
		top[n++] = ck_add_root(c, c->snap.mapping_root, TM_NO_DEV, 0, 1);
	}
	if (c->err)
		return c->err;
	if (ck_walk(c, TM_TREE_DETAILS, det, n) || ck_walk(c, TM_TREE_TOP, top, n))
		return c->err;
	ck_summarise(c, TM_TREE_DETAILS, det, n);
	ck_summarise(c, TM_TREE_TOP, top, n);
	kv_sort(&c->details);
	kv_sort(&c->top);
	if ((!o->metadata_snap && join_devices(c, 0, &c->devs, &c->nr_devs)) ||
	    (c->have_snap && join_devices(c, 1, &c->sdevs, &c->nr_sdevs)))
		return c->err;
	c->res->nr_devices = o->metadata_snap ? c->nr_sdevs : c->nr_devs;
	c->res->nr_snap_devices = c->nr_sdevs;
	if (o->skip_mappings)
		return 0;

	if (c->cb->phase)
		c->cb->phase(c->cb->ctx, TM_PHASE_MAPPINGS);
	size_t total = c->nr_devs + c->nr_sdevs;
	uint32_t *roots = malloc((total ? total : 1) * sizeof(*roots));
	uint32_t nr = 0;
	if (!roots)
		return ck_fail(c, -ENOMEM, "root list");
	for (int s = 0; s < 2; s++) {
		struct cdev *v = s ? c->sdevs : c->devs;
		size_t cnt = s ? c->nr_sdevs : c->nr_devs;
		for (size_t i = 0; i < cnt; i++) {
			if (!v[i].have_root)
				continue;
			const struct cdev *twin = s ? live_twin(c, &v[i]) : NULL;
			if (twin) {
				v[i].root_ref = twin->root_ref;
				continue;
			}
			uint32_t r = ck_add_root(c, v[i].root, v[i].dev_id, v[i].top_leaf, s);
			if (r == UINT32_MAX)
				break;
			roots[nr++] = r;
			v[i].root_ref = r + 1;
		}
	}
	if (!c->err)
		ck_walk(c, TM_TREE_BOTTOM, roots, nr);
	if (!c->err)
		ck_summarise(c, TM_TREE_BOTTOM, roots, nr);
	free(roots);
	if (c->err)
		return c->err;
	for (size_t i = 0; i < c->nr_devs; i++)
		check_device(c, &c->devs[i], 0);
	for (size_t i = 0; i < c->nr_sdevs; i++)
		if (o->metadata_snap || !same_as_live(c, &c->sdevs[i]))
			check_device(c, &c->sdevs[i], 1);
	return 0;
}

/* ------------------------------------------------------------------ */

static int setup(struct ck *c)
{
	uint64_t devb = c->dev->nr_blocks;
	uint64_t lim = devb < TM_MAX_METADATA_BLOCKS ? devb : TM_MAX_METADATA_BLOCKS;
	uint64_t smn = c->sb.meta_sm.nr_blocks;

	if (!c->o->metadata_snap) {
		if (smn == 0 || smn > devb || smn > TM_MAX_METADATA_BLOCKS) {
			sb_say(c, TM_PR_SB_META_SM_SIZE, smn,
			       devb < TM_MAX_METADATA_BLOCKS ? devb : TM_MAX_METADATA_BLOCKS, 0, 0);
		} else {
			lim = smn;
			c->count_meta = 1;
		}
	}
	c->meta_limit = lim;
	c->data_limit = c->sb.data_sm.nr_blocks;
	if (c->data_limit > TM_MAX_DATA_BLOCK + 1) {
		sb_say(c, TM_PR_SB_DATA_SM_SIZE, c->data_limit, TM_MAX_DATA_BLOCK + 1, 0, 0);
		c->data_limit = TM_MAX_DATA_BLOCK + 1;
	}
	c->progress_total = c->count_meta && c->sb.meta_sm.nr_allocated <= lim ?
			    c->sb.meta_sm.nr_allocated : lim;
	c->kind = calloc(lim ? lim : 1, 1);
	c->nodeidx = calloc(lim ? lim : 1, sizeof(*c->nodeidx));
	if (!c->kind || !c->nodeidx || ck_counts_init(&c->mcount, lim) ||
	    ck_counts_init(&c->dcount, c->data_limit))
		return ck_fail(c, -ENOMEM, "reference counts");
	return 0;
}

static void teardown(struct ck *c)
{
	ck_sm_free(c);
	ck_counts_free(&c->mcount);
	ck_counts_free(&c->dcount);
	free(c->kind);
	free(c->nodeidx);
	free(c->nodes);
	free(c->arena);
	free(c->roots);
	kv_free(&c->details);
	kv_free(&c->top);
	kv_free(&c->data_index);
	kv_free(&c->data_rc);
	kv_free(&c->meta_rc);
	free(c->det_vals);
	free(c->devs);
	free(c->sdevs);
}

/* Has anything changed since we read it? */
static void detect_changes(struct ck *c, const uint8_t *snap_raw)
{
	uint8_t now[TM_BLOCK_SIZE];
	struct tm_problem p;

	if (c->o->metadata_snap) {
		struct tm_superblock live;
		if (tm_dev_read(c->dev, 0, 1, now) == 0 &&
		    (tm_le32(now) == (tm_block_crc(now) ^ TM_SALT_SUPERBLOCK) ||
		     (tm_dev_read(c->dev, 0, 1, now) == 0 &&
		      tm_le32(now) == (tm_block_crc(now) ^ TM_SALT_SUPERBLOCK)))) {
			tm_sb_decode(now, &live);
			if (live.held_root == c->snap_block &&
			    tm_dev_read(c->dev, c->snap_block, 1, now) == 0 &&
			    !memcmp(now, snap_raw, TM_BLOCK_SIZE))
				return;
		}
		tm_problem_init(&p, TM_PR_SNAP_CHANGED);
		c->res->changed = 1;
		ck_report(c, &p);
		return;
	}
	if (tm_dev_read(c->dev, 0, 1, now) == 0 && !memcmp(now, c->sb_raw, TM_BLOCK_SIZE))
		return;
	tm_problem_init(&p, TM_PR_SB_CHANGED);
	p.kind = TM_KIND_SUPERBLOCK;
	p.block = 0;
	c->res->changed = 1;
	ck_report(c, &p);
}

/* Rewrite the superblock: flags and the roots' nr_allocated, if changed. */
static int write_sb(struct ck *c, uint32_t flags)
{
	uint8_t buf[TM_BLOCK_SIZE], now[TM_BLOCK_SIZE];
	int r;

	memcpy(buf, c->sb_raw, TM_BLOCK_SIZE);
	tm_put_le32(buf + TM_SB_OFF_FLAGS, flags);
	tm_put_le64(buf + TM_SB_OFF_DATA_SM + 8, c->sb.data_sm.nr_allocated);
	tm_put_le64(buf + TM_SB_OFF_META_SM + 8, c->sb.meta_sm.nr_allocated);
	if (!memcmp(buf, c->sb_raw, TM_BLOCK_SIZE))
		return 0;
	r = tm_dev_read(c->dev, 0, 1, now);
	if (r)
		return tm_fail(c->e, c->err = r, TM_RULE_IO, 0, "superblock: read failed: %s",
			       strerror(-r));
	if (memcmp(now, c->sb_raw, TM_BLOCK_SIZE))
		return tm_fail(c->e, c->err = -EAGAIN, TM_RULE_BAD_VALUE, 0,
			       "the superblock changed during the check: nothing written to it");
	if ((r = tm_bm_flush(c->bm, c->e)) || (r = tm_bm_write(c->bm, 0, &tm_sb_validator, buf, c->e)) ||
	    (r = tm_bm_flush(c->bm, c->e)))
		return c->err = r;
	c->res->repaired = 1;
	memcpy(c->sb_raw, buf, TM_BLOCK_SIZE);
	return 0;
}

static int finish(struct ck *c, int full)
{
	const struct tm_check_opts *o = c->o;
	struct tm_check_result *res = c->res;
	uint64_t nonfatal = res->nr_problems[TM_SEV_NONFATAL];
	uint32_t flags = c->sb.flags;
	uint64_t fixed = 0;

	if (o->detect_changes && !res->changed)
		detect_changes(c, c->snap_raw);
	if (c->fatal || res->changed || o->metadata_snap)
		return 0;
	if (o->repair) {
		if (c->cb->phase && (ck_repair_pending(c) || (flags & ~TM_SB_FLAG_NEEDS_CHECK)))
			c->cb->phase(c->cb->ctx, TM_PHASE_REPAIR);
		if (full && ck_repair(c))
			return c->err;
		flags &= TM_SB_FLAG_NEEDS_CHECK;
		fixed = full ? res->nr_fixable : res->nr_by_code[TM_PR_SB_FLAGS];
	}
	if ((o->clear_needs_check || o->repair) &&
	    (nonfatal <= fixed || o->ignore_non_fatal) && (flags & TM_SB_FLAG_NEEDS_CHECK)) {
		flags &= ~TM_SB_FLAG_NEEDS_CHECK;
		res->needs_check_cleared = 1;
	}
	if (write_sb(c, flags))
		return c->err;
	if (!res->repaired)
		res->needs_check_cleared = 0;
	else if (res->needs_check_cleared && c->cb->repaired)
		c->cb->repaired(c->cb->ctx, "cleared the needs_check flag");
	return 0;
}

int tm_check(struct tm_bm *bm, const struct tm_check_opts *o,
	     const struct tm_check_callbacks *cb, struct tm_check_result *res,
	     struct tm_error *e)
{
	static const struct tm_check_callbacks none;
	struct ck c;
	int r = 0;

	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.bm = bm;
	c.dev = tm_bm_dev(bm);
	c.o = o;
	c.cb = cb ? cb : &none;
	c.res = res;
	c.e = e;
	tm_error_clear(e);

	if (c.dev->nr_blocks < 1 || check_live_sb(&c))
		goto done;
	if (o->override_mapping_root)
		c.sb.mapping_root = o->mapping_root;
	if (o->override_details_root)
		c.sb.details_root = o->details_root;
	if (o->metadata_snap && !c.sb.held_root) {
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_SNAP_NONE);
		ck_report(&c, &p);
		goto done;
	}
	if (c.sb.held_root && check_snap_sb(&c, c.snap_raw) && o->metadata_snap)
		goto done;

	res->have_sb = 1;
	res->sb = c.sb;
	res->transaction_id = c.sb.trans_id;
	res->metadata_free = c.sb.meta_sm.nr_blocks >= c.sb.meta_sm.nr_allocated ?
			     c.sb.meta_sm.nr_blocks - c.sb.meta_sm.nr_allocated : 0;
	if (c.cb->phase)
		c.cb->phase(c.cb->ctx, TM_PHASE_SUPERBLOCK);
	if (o->sb_only) {
		res->complete = 1;
		r = finish(&c, 0);
		goto done;
	}
	if (c.cb->phase)
		c.cb->phase(c.cb->ctx, TM_PHASE_START);
	if (setup(&c))
		goto done;
	{
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_BLOCK_RANGE);
		ck_ref_block(&c, 0, TM_KIND_SUPERBLOCK, TM_TREE_NONE, &p);
		/* the live superblock refers to the held root, readable or not */
		if (c.sb.held_root && c.sb.held_root < c.meta_limit) {
			p.kind = TM_KIND_SUPERBLOCK;
			p.block = 0;
			p.text = "the metadata snapshot root (held root)";
			if (ck_ref_block(&c, c.sb.held_root, TM_KIND_SNAP_SB, TM_TREE_NONE, &p) < 0)
				c.have_snap = 0;
		}
	}
	if (c.cb->phase)
		c.cb->phase(c.cb->ctx, TM_PHASE_DETAILS);
	if (check_trees(&c))
		goto done;
	if (o->skip_mappings || o->metadata_snap) {
		res->complete = 1;
		r = finish(&c, 0);
		goto done;
	}
	if (ck_space_maps(&c))
		goto done;
	res->complete = 1;
	r = finish(&c, c.count_meta);
done:
	if (c.err)
		r = c.err;
	if (c.cb->phase)
		c.cb->phase(c.cb->ctx, TM_PHASE_DONE);
	teardown(&c);
	return r;
}
