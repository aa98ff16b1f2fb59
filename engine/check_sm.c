/*
 * check_sm.c - the space maps: walk their indexes and overflow trees
 * (counting their own blocks as metadata references), compare every
 * bitmap entry with the computed reference count, and repair leaks.
 *
 * For each block: the count on disk is its bitmap value, or for 3 its
 * overflow entry.  Higher than computed: a leak (non-fatal; the block can
 * never be freed).  Lower: fatal (the pool could hand out a block in use).
 * Findings on runs of adjacent blocks with the same numbers are reported
 * once.  The index entries' hints (nr_free, none_free_before) and the
 * roots' nr_allocated are compared too, as notes: the kernel and the
 * reference restore tools keep them in different conventions and none of
 * them is ever relied on for correctness.
 *
 * Repair (leaks only, and only when nothing fatal was found): each bitmap
 * holding a leak is rewritten with the computed counts, an overflow entry
 * whose count drops but stays >= 3 is rewritten in its leaf, and the index
 * entry and root counts are adjusted as the kernel adjusts them when it
 * frees a block (nr_free + 1, none_free_before lowered, nr_allocated - 1).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "check_int.h"

struct bitmap_fix {
	uint64_t index;			/* bitmap number */
	uint64_t block;
	uint32_t lowered;		/* entries lowered */
	uint32_t freed;			/* entries that went to 0 */
	uint32_t first_freed;
	uint8_t *buf;
};

struct rc_fix {
	size_t kv;			/* entry in the sorted overflow list */
	uint32_t value;
};

struct run {
	int active;
	enum tm_pcode code;
	uint64_t start, len, expected, actual;
	const char *text;
};

struct smc {
	const char *name;		/* "data", "metadata" */
	enum tm_sm_kind kind;
	enum tm_block_kind bkind;
	enum tm_pcode leak, under;
	struct tm_sm_root root;
	uint64_t nr_bitmaps;
	struct tm_index_entry *ie;	/* nr_bitmaps; blocknr UINT64_MAX: none */
	uint32_t *ie_node;		/* data: the index leaf + 1; meta: 0 */
	uint8_t *ie_ok;			/* the bitmap may be read */
	struct ck_counts *counts;
	struct kvvec *rc;
	size_t rc_pos;
	struct run run;
	uint64_t disk_allocated;
	uint64_t leaked, first_leak;
	int unreached;			/* leaks are said as one LEAK_UNREACHED */
	struct bitmap_fix *fixes;
	size_t nr_fixes, cap_fixes;
	struct rc_fix *rc_fixes;
	size_t nr_rc_fixes, cap_rc_fixes;
	uint64_t *bm_index;		/* compare(): the bitmaps read, in order */
	uint8_t *buf;
};

struct ck_sm {
	struct smc data, meta;
};

/* ------------------------------------------------------------------ */

static void run_flush(struct ck *c, struct smc *s)
{
	struct tm_problem p;

	if (!s->run.active)
		return;
	tm_problem_init(&p, s->run.code);
	p.block = s->run.start;
	p.nr_blocks = s->run.len;
	p.expected = s->run.expected;
	p.actual = s->run.actual;
	p.text = s->run.text;
	ck_report(c, &p);
	s->run.active = 0;
}

static void run_add(struct ck *c, struct smc *s, enum tm_pcode code, uint64_t b,
		    uint64_t expected, uint64_t actual, const char *text)
{
	struct run *r = &s->run;

	if (r->active && r->code == code && r->start + r->len == b &&
	    r->expected == expected && r->actual == actual && r->text == text) {
		r->len++;
		return;
	}
	run_flush(c, s);
	r->active = 1;
	r->code = code;
	r->start = b;
	r->len = 1;
	r->expected = expected;
	r->actual = actual;
	r->text = text;
}

static void note_index(struct ck *c, struct smc *s, enum tm_pcode code, uint64_t i,
		       uint64_t actual, uint64_t expected)
{
	struct tm_problem p;

	tm_problem_init(&p, code);
	p.text = s->name;
	p.n = i;
	p.actual = actual;
	p.expected = expected;
	ck_report(c, &p);
}

static void index_problem(struct ck *c, struct smc *s, uint32_t node1, const char *fmt,
			  unsigned long long a, unsigned long long b)
{
	struct tm_problem p;
	char text[160];

	snprintf(text, sizeof(text), fmt, a, b);
	tm_problem_init(&p, TM_PR_SM_INDEX);
	if (node1)
		ck_problem_node(c, &p, node1);
	p.text = s->name;
	p.text2 = text;
	ck_report(c, &p);
}

/* ------------------------------------------------------------------ */
/* Loading the indexes */

static int alloc_index(struct ck *c, struct smc *s)
{
	size_t n = s->nr_bitmaps ? s->nr_bitmaps : 1;

	s->ie = calloc(n, sizeof(*s->ie));
	s->ie_node = calloc(n, sizeof(*s->ie_node));
	s->ie_ok = calloc(n, 1);
	if (!s->ie || !s->ie_node || !s->ie_ok)
		return ck_fail(c, -ENOMEM, "space map index");
	for (uint64_t i = 0; i < s->nr_bitmaps; i++)
		s->ie[i].blocknr = UINT64_MAX;
	return 0;
}

/* Count the references to the bitmaps the index names. */
static void ref_bitmaps(struct ck *c, struct smc *s)
{
	for (uint64_t i = 0; i < s->nr_bitmaps && !c->err; i++) {
		struct tm_problem p;
		char text[64];

		if (s->ie[i].blocknr == UINT64_MAX)
			continue;
		tm_problem_init(&p, TM_PR_BLOCK_RANGE);
		if (s->ie_node[i]) {
			ck_problem_node(c, &p, s->ie_node[i]);
		} else {
			p.kind = TM_KIND_META_INDEX;
			p.block = s->root.bitmap_root;
		}
		snprintf(text, sizeof(text), "index entry %llu", (unsigned long long)i);
		p.text = text;
		if (ck_ref_block(c, s->ie[i].blocknr, s->bkind, TM_TREE_NONE, &p) == 1)
			s->ie_ok[i] = 1;
	}
}

static int walk_one(struct ck *c, enum tm_tree tree, uint64_t root)
{
	uint32_t r = ck_add_root(c, root, TM_NO_DEV, 0, 0);

	if (r == UINT32_MAX)
		return c->err;
	ck_walk(c, tree, &r, 1);
	ck_summarise(c, tree, &r, 1);
	return c->err;
}

static int load_data_index(struct ck *c, struct smc *s)
{
	if (walk_one(c, TM_TREE_DATA_INDEX, s->root.bitmap_root))
		return c->err;
	kv_sort(&c->data_index);
	uint64_t expect = 0;
	for (size_t i = 0; i < c->data_index.n; i++) {
		const struct kv *e = &c->data_index.v[i];
		if (e->key >= s->nr_bitmaps) {
			index_problem(c, s, e->node,
				      "entry for bitmap %llu, but the space map has only %llu bitmaps",
				      e->key, s->nr_bitmaps);
			continue;
		}
		if (i && e->key == c->data_index.v[i - 1].key)
			continue;	/* the key-range check has said it */
		if (e->key > expect)
			index_problem(c, s, e->node, "no entries for bitmaps %llu..%llu",
				      expect, e->key - 1);
		s->ie[e->key].blocknr = e->v1;
		s->ie[e->key].nr_free = (uint32_t)(e->v2 >> 32);
		s->ie[e->key].none_free_before = (uint32_t)e->v2;
		s->ie_node[e->key] = e->node;
		expect = e->key + 1;
	}
	if (expect < s->nr_bitmaps)
		index_problem(c, s, 0, "no entries for bitmaps %llu..%llu", expect,
			      s->nr_bitmaps - 1);
	ref_bitmaps(c, s);
	return c->err;
}

static int load_meta_index(struct ck *c, struct smc *s)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_problem p;

	tm_problem_init(&p, TM_PR_BLOCK_RANGE);
	p.kind = TM_KIND_SUPERBLOCK;
	p.block = 0;
	p.text = "the metadata space map index root";
	if (ck_ref_block(c, s->root.bitmap_root, TM_KIND_META_INDEX, TM_TREE_NONE, &p) != 1)
		return c->err;
	tm_problem_init(&p, TM_PR_BLOCK_IO);
	p.kind = TM_KIND_META_INDEX;
	p.block = s->root.bitmap_root;
	if (ck_read_validated(c, s->root.bitmap_root, &tm_index_validator, buf, &p))
		return c->err;
	for (uint64_t i = 0; i < s->nr_bitmaps; i++)
		tm_index_entry_decode(buf + 16 + 16 * i, &s->ie[i]);
	ref_bitmaps(c, s);
	return c->err;
}

/* ------------------------------------------------------------------ */
/* Comparing */

static int add_fix(struct ck *c, struct smc *s, uint64_t index, uint64_t block,
		   const uint8_t *buf, uint32_t lowered, uint32_t freed, uint32_t first_freed)
{
	if (s->nr_fixes == s->cap_fixes) {
		size_t ncap = s->cap_fixes ? s->cap_fixes * 2 : 16;
		struct bitmap_fix *nf = realloc(s->fixes, ncap * sizeof(*nf));
		if (!nf)
			return ck_fail(c, -ENOMEM, "repair list");
		s->fixes = nf;
		s->cap_fixes = ncap;
	}
	struct bitmap_fix *f = &s->fixes[s->nr_fixes];
	f->buf = malloc(TM_BLOCK_SIZE);
	if (!f->buf)
		return ck_fail(c, -ENOMEM, "repair list");
	memcpy(f->buf, buf, TM_BLOCK_SIZE);
	f->index = index;
	f->block = block;
	f->lowered = lowered;
	f->freed = freed;
	f->first_freed = first_freed;
	s->nr_fixes++;
	return 0;
}

static int add_rc_fix(struct ck *c, struct smc *s, size_t kv, uint32_t value)
{
	if (s->nr_rc_fixes == s->cap_rc_fixes) {
		size_t ncap = s->cap_rc_fixes ? s->cap_rc_fixes * 2 : 16;
		struct rc_fix *nf = realloc(s->rc_fixes, ncap * sizeof(*nf));
		if (!nf)
			return ck_fail(c, -ENOMEM, "repair list");
		s->rc_fixes = nf;
		s->cap_rc_fixes = ncap;
	}
	s->rc_fixes[s->nr_rc_fixes++] = (struct rc_fix){ kv, value };
	return 0;
}

static const char *meta_kind_text(struct ck *c, uint64_t b)
{
	if (b >= c->meta_limit || !c->kind[b])
		return "unused";
	return tm_kind_name((enum tm_block_kind)(c->kind[b] & 15),
			    (enum tm_tree)(c->kind[b] >> 4));
}

/* What comparing one bitmap found so far. */
struct bm_cmp {
	uint64_t base, in_range;	/* first block; entries in range */
	uint32_t free_before, first_free;
	uint32_t past_free;		/* free entries past the end */
	uint32_t lowered, freed, first_freed;
	int changed, tail;
};

/* Entry @j of bitmap @buf, whose computed count is @comp (3: look it up). */
static void compare_entry(struct ck *c, struct smc *s, uint8_t *buf, uint32_t j,
			  uint32_t comp, struct bm_cmp *m)
{
	unsigned v = tm_bitmap_get(buf, j);
	uint64_t b = m->base + j;

	if (j >= m->in_range) {
		if (v)
			m->tail = 1;
		else
			m->past_free++;
		return;
	}
	if (comp == 3)
		comp = ck_counts_get(s->counts, b);
	/* the overflow entry of this block, if any */
	while (s->rc_pos < s->rc->n && s->rc->v[s->rc_pos].key < b)
		s->rc_pos++;
	size_t rci = SIZE_MAX;
	if (s->rc_pos < s->rc->n && s->rc->v[s->rc_pos].key == b)
		rci = s->rc_pos;

	if (v == 0) {
		m->free_before++;
		if (m->first_free == UINT32_MAX)
			m->first_free = j;
	} else {
		s->disk_allocated++;
	}
	if (v < 3 && comp == v && rci == SIZE_MAX)
		return;

	uint64_t d = v;
	if (v == 3) {
		if (rci == SIZE_MAX) {
			struct tm_problem p;
			tm_problem_init(&p, TM_PR_SM_OVERFLOW_MISSING);
			p.text = s->name;
			p.block = b;
			ck_report(c, &p);
			return;
		}
		d = s->rc->v[rci].v1;
		if (d < 3) {
			struct tm_problem p;
			tm_problem_init(&p, TM_PR_SM_OVERFLOW_SMALL);
			p.text = s->name;
			p.block = b;
			p.actual = d;
			ck_report(c, &p);
		}
	} else if (rci != SIZE_MAX) {
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_SM_OVERFLOW_STALE);
		p.text = s->name;
		p.block = b;
		p.actual = s->rc->v[rci].v1;
		p.expected = v;
		ck_report(c, &p);
	}
	if (d == comp)
		return;
	if (d > comp) {
		if (!s->leaked++)
			s->first_leak = b;
		if (!s->unreached)
			run_add(c, s, s->leak, b, comp, d, NULL);
		/* the fix: the computed count */
		unsigned nv = comp < 3 ? comp : 3;
		if (nv != v) {
			tm_bitmap_set(buf, j, nv);
			m->changed = 1;
			m->lowered++;
			if (nv == 0) {
				m->freed++;
				if (m->first_freed == UINT32_MAX)
					m->first_freed = j;
			}
		}
		if (comp >= 3 && rci != SIZE_MAX)
			add_rc_fix(c, s, rci, comp);
	} else {
		run_add(c, s, s->under, b, comp, d,
			s->kind == TM_SM_METADATA ? meta_kind_text(c, b) : NULL);
	}
}

/*
 * Index entry @i's nr_free matches neither way of counting its bitmap's
 * free entries.  A bitmap that runs past the end of the space map (the
 * last) is counted the way the entry seems to count it, and the message
 * says which: all 16320 entries, those past the end free (the kernel,
 * sm_ll_extend: a new bitmap starts at nr_free 16320), or only those
 * within the space map (1.1.0's and 0.9.0's thin_restore).
 */
static void note_nr_free(struct ck *c, struct smc *s, uint64_t i, uint32_t nr_free,
			 const struct bm_cmp *m)
{
	struct tm_problem p;
	char text[160];
	uint32_t past = (uint32_t)(TM_ENTRIES_PER_BITMAP - m->in_range);
	uint32_t whole = m->free_before + m->past_free;

	tm_problem_init(&p, TM_PR_SM_NR_FREE);
	p.text = s->name;
	p.n = i;
	p.actual = nr_free;
	p.expected = m->free_before;
	if (past) {
		uint32_t d_in = nr_free > m->free_before ? nr_free - m->free_before
							 : m->free_before - nr_free;
		uint32_t d_all = nr_free > whole ? nr_free - whole : whole - nr_free;
		if (nr_free > m->in_range || d_all < d_in) {
			p.expected = whole;
			snprintf(text, sizeof(text),
				 " of its %u, counting the %u past the end of the space map "
				 "(block %llu on) as the kernel does",
				 TM_ENTRIES_PER_BITMAP, past,
				 (unsigned long long)s->root.nr_blocks);
		} else {
			snprintf(text, sizeof(text),
				 " among its %llu within the space map (blocks %llu-%llu)",
				 (unsigned long long)m->in_range, (unsigned long long)m->base,
				 (unsigned long long)(m->base + m->in_range - 1));
		}
		p.text2 = text;
	}
	ck_report(c, &p);
}

/*
 * Bitmap @i against the computed counts, a word (32 entries) at a time:
 * a word in range, equal to the computed one (same layout, check_int.h),
 * without a 3 (overflow) and with no overflow entry for its blocks needs
 * no more than counting its free entries; any other goes entry by entry.
 */
static void compare_bitmap(struct ck *c, struct smc *s, uint64_t i, uint8_t *buf)
{
	const uint64_t lows = 0x5555555555555555ull;	/* one bit of each entry */
	const uint64_t *page = ck_counts_page(s->counts, i);
	struct bm_cmp m = {
		.base = i * TM_ENTRIES_PER_BITMAP,
		.first_free = UINT32_MAX,
		.first_freed = UINT32_MAX,
	};

	m.in_range = s->root.nr_blocks - m.base;
	if (m.in_range > TM_ENTRIES_PER_BITMAP)
		m.in_range = TM_ENTRIES_PER_BITMAP;
	for (uint32_t w = 0; w < TM_BITMAP_WORDS; w++) {
		uint32_t j0 = 32 * w;
		uint64_t disk = tm_le64(buf + 16 + 8 * w);
		uint64_t mine = page ? page[w] : 0;

		if (j0 >= m.in_range) {
			if (disk)
				m.tail = 1;
			m.past_free += (uint32_t)__builtin_popcountll(~(disk | (disk >> 1)) & lows);
			continue;
		}
		while (s->rc_pos < s->rc->n && s->rc->v[s->rc_pos].key < m.base + j0)
			s->rc_pos++;
		if (j0 + 32 <= m.in_range && disk == mine && !(disk & (disk >> 1) & lows) &&
		    (s->rc_pos >= s->rc->n || s->rc->v[s->rc_pos].key >= m.base + j0 + 32)) {
			uint64_t zero = ~(disk | (disk >> 1)) & lows;	/* free entries */
			uint32_t nfree = (uint32_t)__builtin_popcountll(zero);
			m.free_before += nfree;
			if (nfree && m.first_free == UINT32_MAX)
				m.first_free = j0 + (uint32_t)__builtin_ctzll(zero) / 2;
			s->disk_allocated += 32 - nfree;
			continue;
		}
		for (uint32_t j = j0; j < j0 + 32; j++)
			compare_entry(c, s, buf, j, ck_field_value(mine, j % 32), &m);
	}
	if (m.tail) {
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_SM_BITMAP_TAIL);
		p.text = s->name;
		p.n = i;
		ck_report(c, &p);
	}
	/* the hints: in-range free count (tools) or counting the entries
	 * past the end as free (the kernel) */
	const struct tm_index_entry *ie = &s->ie[i];
	uint32_t whole = m.free_before + m.past_free;
	if (ie->nr_free != m.free_before && ie->nr_free != whole)
		note_nr_free(c, s, i, ie->nr_free, &m);
	if (m.first_free != UINT32_MAX && ie->none_free_before > m.first_free)
		note_index(c, s, TM_PR_SM_NONE_FREE_BEFORE, i, ie->none_free_before,
			   m.first_free);
	if (m.changed)
		add_fix(c, s, i, ie->blocknr, buf, m.lowered, m.freed, m.first_freed);
}

/* One bitmap from the batched reads: validate, compare (a copy: a repair
 * changes it). */
static void bitmap_read(struct ck *c, size_t k, uint64_t b, const uint8_t *data,
			uint32_t crc, int err, void *ctx)
{
	struct smc *s = ctx;
	uint64_t i = s->bm_index[k];
	struct tm_problem p;

	tm_problem_init(&p, TM_PR_BLOCK_IO);
	p.kind = s->bkind;
	p.block = b;
	if (!data) {
		p.text = tm_bitmap_validator.name;
		p.text2 = strerror(-err);
		ck_report(c, &p);
		return;
	}
	if (ck_validate_crc(&tm_bitmap_validator, data, b, crc, &p)) {
		p.kind = s->bkind;
		p.block = b;
		ck_report(c, &p);
		return;
	}
	memcpy(s->buf, data, TM_BLOCK_SIZE);
	compare_bitmap(c, s, i, s->buf);
}

static void compare(struct ck *c, struct smc *s)
{
	uint64_t n = 0, *blocks;

	s->buf = malloc(TM_BLOCK_SIZE);
	blocks = malloc((s->nr_bitmaps ? s->nr_bitmaps : 1) * sizeof(*blocks));
	s->bm_index = malloc((s->nr_bitmaps ? s->nr_bitmaps : 1) * sizeof(*s->bm_index));
	if (!s->buf || !blocks || !s->bm_index) {
		free(blocks);
		ck_fail(c, -ENOMEM, "bitmap");
		return;
	}
	s->rc_pos = 0;
	s->unreached = c->unreached;
	for (uint64_t i = 0; i < s->nr_bitmaps; i++) {
		if (!s->ie_ok[i])
			continue;
		s->bm_index[n] = i;
		blocks[n++] = s->ie[i].blocknr;
	}
	ck_read_list(c, blocks, n, bitmap_read, s);
	free(blocks);
	if (c->err)
		return;
	run_flush(c, s);
	if (s->unreached && s->leaked) {
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_LEAK_UNREACHED);
		p.text = s->name;
		p.block = s->first_leak;
		p.actual = s->leaked;
		ck_report(c, &p);
	}
	/* overflow entries past the end of the space map */
	for (size_t k = 0; k < s->rc->n; k++) {
		if (s->rc->v[k].key < s->root.nr_blocks)
			continue;
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_SM_OVERFLOW_STALE);
		p.text = s->name;
		p.block = s->rc->v[k].key;
		p.actual = s->rc->v[k].v1;
		p.expected = 0;
		ck_report(c, &p);
	}
	if (s->disk_allocated != s->root.nr_allocated) {
		struct tm_problem p;
		tm_problem_init(&p, TM_PR_SB_NR_ALLOCATED);
		p.kind = TM_KIND_SUPERBLOCK;
		p.block = 0;
		p.text = s->name;
		p.actual = s->root.nr_allocated;
		p.expected = s->disk_allocated;
		ck_report(c, &p);
	}
	if (s->kind == TM_SM_DATA)
		c->res->data_leaked = s->leaked;
	else
		c->res->meta_leaked = s->leaked;
}

/* ------------------------------------------------------------------ */

static void smc_init(struct smc *s, enum tm_sm_kind kind, const struct tm_sm_root *root,
		     struct ck_counts *counts, struct kvvec *rc)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->root = *root;
	s->counts = counts;
	s->rc = rc;
	s->nr_bitmaps = (root->nr_blocks + TM_ENTRIES_PER_BITMAP - 1) / TM_ENTRIES_PER_BITMAP;
	if (kind == TM_SM_DATA) {
		s->name = "data";
		s->bkind = TM_KIND_DATA_BITMAP;
		s->leak = TM_PR_DATA_LEAK;
		s->under = TM_PR_DATA_UNDERCOUNT;
	} else {
		s->name = "metadata";
		s->bkind = TM_KIND_META_BITMAP;
		s->leak = TM_PR_META_LEAK;
		s->under = TM_PR_META_UNDERCOUNT;
	}
}

int ck_space_maps(struct ck *c)
{
	if (!c->sm && !(c->sm = calloc(1, sizeof(*c->sm))))
		return ck_fail(c, -ENOMEM, "space maps");
	struct smc *d = &c->sm->data, *m = &c->sm->meta;

	smc_init(d, TM_SM_DATA, &c->sb.data_sm, &c->dcount, &c->data_rc);
	smc_init(m, TM_SM_METADATA, &c->sb.meta_sm, &c->mcount, &c->meta_rc);

	/* each bitmap needs a block of its own */
	if (d->nr_bitmaps > c->meta_limit) {
		index_problem(c, d, 0, "%llu bitmaps cannot fit in %llu metadata blocks",
			      d->nr_bitmaps, c->meta_limit);
		d->nr_bitmaps = 0;
	}
	if (m->nr_bitmaps > TM_META_INDEX_ENTRIES)
		m->nr_bitmaps = TM_META_INDEX_ENTRIES;	/* said by the superblock check */

	if (c->cb->phase)
		c->cb->phase(c->cb->ctx, TM_PHASE_DATA_SM);
	if (alloc_index(c, d) || load_data_index(c, d) ||
	    walk_one(c, TM_TREE_DATA_RC, c->sb.data_sm.ref_count_root))
		return c->err;
	kv_sort(&c->data_rc);
	compare(c, d);
	if (c->err)
		return c->err;

	if (c->cb->phase)
		c->cb->phase(c->cb->ctx, TM_PHASE_META_SM);
	if (alloc_index(c, m) || load_meta_index(c, m) ||
	    walk_one(c, TM_TREE_META_RC, c->sb.meta_sm.ref_count_root))
		return c->err;
	kv_sort(&c->meta_rc);
	compare(c, m);
	return c->err;
}

/* ------------------------------------------------------------------ */
/* Repair */

static void said(struct ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void said(struct ck *c, const char *fmt, ...)
{
	char text[200];
	va_list ap;

	if (!c->cb->repaired)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->cb->repaired(c->cb->ctx, text);
}

static int write_block(struct ck *c, uint64_t b, const struct tm_validator *v, void *buf)
{
	int r = tm_bm_write(c->bm, b, v, buf, c->e);

	if (r)
		c->err = r;
	else
		c->res->repaired = 1;
	return r;
}

static int read_block(struct ck *c, uint64_t b, const struct tm_validator *v, void *buf)
{
	tm_bm_forget(c->bm, b);
	int r = tm_bm_read(c->bm, b, v, buf, c->e);
	if (r)
		c->err = r;
	return r;
}

/* Rewrite overflow entries whose count drops but stays >= 3. */
static int fix_rc(struct ck *c, struct smc *s)
{
	uint8_t buf[TM_BLOCK_SIZE];

	for (size_t k = 0; k < s->nr_rc_fixes; k++) {
		const struct kv *e = &s->rc->v[s->rc_fixes[k].kv];
		uint64_t b = c->nodes[e->node - 1].block;
		struct tm_node n;
		if (read_block(c, b, &tm_node_validator, buf))
			return c->err;
		tm_node_view(buf, b, &n);
		if (e->v2 >= n.nr_entries || tm_node_key(&n, (uint32_t)e->v2) != e->key)
			return tm_fail(c->e, c->err = -EUCLEAN, TM_RULE_BAD_VALUE, b,
				       "block %llu changed during the repair",
				       (unsigned long long)b);
		tm_put_le32((uint8_t *)tm_node_value(&n, (uint32_t)e->v2), s->rc_fixes[k].value);
		if (write_block(c, b, &tm_node_validator, buf))
			return c->err;
		said(c, "set the %s reference count of block %llu to %u (ref-count tree block %llu)",
		     s->name, (unsigned long long)e->key, s->rc_fixes[k].value,
		     (unsigned long long)b);
	}
	return 0;
}

static int fix_bitmaps(struct ck *c, struct smc *s, uint64_t *freed_total)
{
	uint8_t buf[TM_BLOCK_SIZE];

	*freed_total = 0;
	for (size_t k = 0; k < s->nr_fixes; k++) {
		struct bitmap_fix *f = &s->fixes[k];
		if (write_block(c, f->block, &tm_bitmap_validator, f->buf))
			return c->err;
		said(c, "rewrote %s space map bitmap %llu (block %llu): %u count%s lowered, %u block%s freed",
		     s->name, (unsigned long long)f->index, (unsigned long long)f->block,
		     f->lowered, f->lowered == 1 ? "" : "s", f->freed, f->freed == 1 ? "" : "s");
		*freed_total += f->freed;
		if (!f->freed)
			continue;
		/* the index entry, as the kernel updates it when freeing */
		struct tm_index_entry *ie = &s->ie[f->index];
		ie->nr_free += f->freed;
		if (f->first_freed < ie->none_free_before)
			ie->none_free_before = f->first_freed;
		if (s->kind == TM_SM_METADATA)
			continue;
		uint64_t b = c->nodes[s->ie_node[f->index] - 1].block;
		struct tm_node n;
		if (read_block(c, b, &tm_node_validator, buf))
			return c->err;
		tm_node_view(buf, b, &n);
		uint32_t slot = UINT32_MAX;
		for (uint32_t i = 0; i < n.nr_entries; i++)
			if (tm_node_key(&n, i) == f->index)
				slot = i;
		if (slot == UINT32_MAX)
			return tm_fail(c->e, c->err = -EUCLEAN, TM_RULE_BAD_VALUE, b,
				       "block %llu changed during the repair",
				       (unsigned long long)b);
		tm_index_entry_encode(ie, (uint8_t *)tm_node_value(&n, slot));
		if (write_block(c, b, &tm_node_validator, buf))
			return c->err;
		said(c, "updated data space map index entry %llu (block %llu)",
		     (unsigned long long)f->index, (unsigned long long)b);
	}
	if (s->kind == TM_SM_METADATA && *freed_total) {
		uint64_t b = s->root.bitmap_root;
		if (read_block(c, b, &tm_index_validator, buf))
			return c->err;
		for (size_t k = 0; k < s->nr_fixes; k++) {
			uint64_t i = s->fixes[k].index;
			tm_index_entry_encode(&s->ie[i], buf + 16 + 16 * i);
		}
		if (write_block(c, b, &tm_index_validator, buf))
			return c->err;
		said(c, "updated the metadata space map index (block %llu)",
		     (unsigned long long)b);
	}
	return 0;
}

/*
 * Fix the leaks found; the caller then rewrites the superblock with the
 * roots' new nr_allocated (c->sb is updated here).
 */
int ck_repair(struct ck *c)
{
	if (!c->sm)
		return 0;
	struct smc *sms[2] = { &c->sm->data, &c->sm->meta };

	for (int k = 0; k < 2; k++) {
		struct smc *s = sms[k];
		uint64_t freed;
		if (!s->nr_fixes && !s->nr_rc_fixes)
			continue;
		if (fix_rc(c, s) || fix_bitmaps(c, s, &freed))
			return c->err;
		struct tm_sm_root *root = s->kind == TM_SM_DATA ? &c->sb.data_sm : &c->sb.meta_sm;
		root->nr_allocated = root->nr_allocated >= freed ? root->nr_allocated - freed : 0;
	}
	return 0;
}

void ck_sm_free(struct ck *c)
{
	if (!c->sm)
		return;
	struct smc *sms[2] = { &c->sm->data, &c->sm->meta };

	for (int k = 0; k < 2; k++) {
		struct smc *s = sms[k];
		for (size_t i = 0; i < s->nr_fixes; i++)
			free(s->fixes[i].buf);
		free(s->fixes);
		free(s->rc_fixes);
		free(s->ie);
		free(s->ie_node);
		free(s->ie_ok);
		free(s->bm_index);
		free(s->buf);
	}
	free(c->sm);
	c->sm = NULL;
}

/* Fixes waiting for ck_repair(). */
size_t ck_repair_pending(const struct ck *c)
{
	if (!c->sm)
		return 0;
	return c->sm->data.nr_fixes + c->sm->data.nr_rc_fixes +
	       c->sm->meta.nr_fixes + c->sm->meta.nr_rc_fixes;
}
