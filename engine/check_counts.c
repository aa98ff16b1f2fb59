/*
 * check_counts.c - the checker's compact reference counters, growable
 * vectors of leaf entries, and batched block reads.
 *
 * Counters: two bits per block, min(count, 3), in pages of 16320 blocks
 * laid out exactly as a space-map bitmap's entries (check_int.h), allocated
 * when a block in them is first counted, so a large pool with few blocks in
 * use costs little; the exact counts of blocks counted 3 times or more live
 * in an overflow hash.  10M mapped data blocks cost about 2.5 MiB.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bstream.h"
#include "check_int.h"

#define PAGE_ENTRIES TM_ENTRIES_PER_BITMAP
#define DIR_PAGES 1024u

int ck_counts_init(struct ck_counts *c, uint64_t nr)
{
	memset(c, 0, sizeof(*c));
	c->nr = nr;
	c->nr_pages = (nr + PAGE_ENTRIES - 1) / PAGE_ENTRIES;
	c->nr_dirs = (c->nr_pages + DIR_PAGES - 1) / DIR_PAGES;
	c->dirs = calloc(c->nr_dirs ? c->nr_dirs : 1, sizeof(*c->dirs));
	return c->dirs ? 0 : -ENOMEM;
}

void ck_counts_free(struct ck_counts *c)
{
	if (c->dirs) {
		for (uint64_t d = 0; d < c->nr_dirs; d++) {
			if (!c->dirs[d])
				continue;
			for (unsigned i = 0; i < DIR_PAGES; i++)
				free(c->dirs[d][i]);
			free(c->dirs[d]);
		}
	}
	free(c->dirs);
	u64map_free(&c->over);
	memset(c, 0, sizeof(*c));
}

static uint64_t *page_of(const struct ck_counts *c, uint64_t p)
{
	uint64_t **dir = c->dirs[p / DIR_PAGES];

	return dir ? dir[p % DIR_PAGES] : NULL;
}

static uint64_t *page_make(struct ck_counts *c, uint64_t p)
{
	uint64_t ***dir = &c->dirs[p / DIR_PAGES];

	if (c->last && p * PAGE_ENTRIES == c->last_base)
		return c->last;
	if (!*dir) {
		*dir = calloc(DIR_PAGES, sizeof(**dir));
		if (!*dir)
			return NULL;
	}
	uint64_t **pg = &(*dir)[p % DIR_PAGES];
	if (!*pg)
		*pg = calloc(TM_BITMAP_WORDS, sizeof(uint64_t));
	if (*pg) {
		c->last_base = p * PAGE_ENTRIES;
		c->last = *pg;
	}
	return *pg;
}

int ck_counts_inc(struct ck_counts *c, uint64_t b, uint32_t *old)
{
	uint64_t *pg, *w;
	uint64_t *ov;
	uint32_t j;
	unsigned v;

	if (b >= c->nr)
		return -ERANGE;
	pg = page_make(c, b / PAGE_ENTRIES);
	if (!pg)
		return -ENOMEM;
	j = (uint32_t)(b % PAGE_ENTRIES);
	w = &pg[j / 32];
	v = ck_field_value(*w, j % 32);
	if (v < 3) {
		if (v == 2) {
			int r = u64map_put(&c->over, b, 3);
			if (r)
				return r;
		}
		if (old)
			*old = v;
		/* v + 1 in the bitmap's bit order: 1 -> 10b, 2 -> 01b, 3 -> 11b */
		unsigned f = v + 1;
		f = (f >> 1) | ((f & 1) << 1);
		*w = (*w & ~(3ull << (2 * (j % 32)))) | (uint64_t)f << (2 * (j % 32));
		return 0;
	}
	ov = u64map_find(&c->over, b);
	if (old)
		*old = ov ? (uint32_t)*ov : 3;
	if (ov && *ov < UINT32_MAX)
		(*ov)++;
	return 0;
}

uint32_t ck_counts_get(const struct ck_counts *c, uint64_t b)
{
	const uint64_t *pg;

	if (b >= c->nr)
		return 0;
	pg = page_of(c, b / PAGE_ENTRIES);
	if (!pg)
		return 0;
	uint32_t j = (uint32_t)(b % PAGE_ENTRIES);
	unsigned v = ck_field_value(pg[j / 32], j % 32);
	if (v < 3)
		return v;
	const uint64_t *ov = u64map_find(&c->over, b);
	return ov ? (uint32_t)*ov : 3;
}

const uint64_t *ck_counts_page(const struct ck_counts *c, uint64_t page)
{
	if (page >= c->nr_pages)
		return NULL;
	return page_of(c, page);
}

/* ------------------------------------------------------------------ */

int kv_push(struct kvvec *kv, const struct kv *e)
{
	if (kv->n == kv->cap) {
		size_t ncap = kv->cap ? kv->cap * 2 : 64;
		struct kv *nv = realloc(kv->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		kv->v = nv;
		kv->cap = ncap;
	}
	kv->v[kv->n++] = *e;
	return 0;
}

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	/* stable for equal keys: by leaf, then as collected */
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return 0;
}

void kv_sort(struct kvvec *kv)
{
	if (kv->n > 1)
		qsort(kv->v, kv->n, sizeof(*kv->v), kv_cmp);
}

void kv_free(struct kvvec *kv)
{
	free(kv->v);
	memset(kv, 0, sizeof(*kv));
}

/* ------------------------------------------------------------------ */
/* Batched reads */

int ck_read_list(struct ck *c, const uint64_t *blocks, size_t n, ck_block_fn fn,
		 void *ctx)
{
	struct bstream *s;
	struct bs_block blk;
	size_t done = 0;

	if (bs_open(c->dev, blocks, n, &s))
		return ck_fail(c, -ENOMEM, "read buffer");
	for (size_t i = 0; i < n && !c->err; i++) {
		bs_get(s, i, &blk);
		fn(c, i, blocks[i], blk.data, blk.crc, blk.err, ctx);
		if (++done == BS_WINDOW) {
			ck_progress(c, done);
			done = 0;
		}
	}
	bs_close(s);
	ck_progress(c, done);
	return c->err;
}
