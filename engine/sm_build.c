/*
 * sm_build.c - what the metadata builder needs of space maps: compact
 * in-core reference counts (tm_rcmap), the output writer that allocates
 * metadata blocks from them, and the writers of fresh on-disk space maps
 * (FORMAT.md §7).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"
#include "thinmeta/format.h"
#include "thinmeta/space_map.h"

/* ------------------------------------------------------------------ */
/* tm_rcmap */

#define BIG_HUGE 255u		/* a big count that is in the huge table */

int tm_rcmap_init(struct tm_rcmap *m, uint64_t nr_blocks)
{
	memset(m, 0, sizeof(*m));
	m->nr_blocks = nr_blocks;
	m->nr_chunks = nr_blocks / TM_ENTRIES_PER_BITMAP +
		       (nr_blocks % TM_ENTRIES_PER_BITMAP != 0);
	if (m->nr_chunks > SIZE_MAX / sizeof(*m->chunks))
		return -ENOMEM;
	m->chunks = calloc(m->nr_chunks ? m->nr_chunks : 1, sizeof(*m->chunks));
	m->big = calloc(m->nr_chunks ? m->nr_chunks : 1, sizeof(*m->big));
	if (!m->chunks || !m->big) {
		tm_rcmap_free(m);
		return -ENOMEM;
	}
	return 0;
}

void tm_rcmap_free(struct tm_rcmap *m)
{
	for (uint64_t i = 0; i < m->nr_chunks; i++) {
		if (m->chunks)
			free(m->chunks[i]);
		if (m->big)
			free(m->big[i]);
	}
	free(m->chunks);
	free(m->big);
	u64map_free(&m->huge);
	memset(m, 0, sizeof(*m));
}

uint32_t tm_rcmap_get(const struct tm_rcmap *m, uint64_t b)
{
	uint64_t ci = b / TM_ENTRIES_PER_BITMAP;
	uint32_t i = (uint32_t)(b % TM_ENTRIES_PER_BITMAP);
	unsigned v;

	if (b >= m->nr_blocks || !m->chunks[ci])
		return 0;
	v = tm_bitmap_get(m->chunks[ci], i);
	if (v < 3)
		return v;
	if (m->big[ci][i] != BIG_HUGE)
		return m->big[ci][i];
	const uint64_t *p = u64map_find(&m->huge, b);
	return p ? (uint32_t)*p : BIG_HUGE;
}

int tm_rcmap_inc(struct tm_rcmap *m, uint64_t b)
{
	uint64_t ci = b / TM_ENTRIES_PER_BITMAP;
	uint32_t i = (uint32_t)(b % TM_ENTRIES_PER_BITMAP);
	uint8_t **cp;
	unsigned v;

	if (b >= m->nr_blocks)
		return -ERANGE;
	cp = &m->chunks[ci];
	if (!*cp && !(*cp = calloc(1, TM_BLOCK_SIZE)))
		return -ENOMEM;
	v = tm_bitmap_get(*cp, i);
	if (v < 2) {
		m->nr_allocated += v == 0;
		tm_bitmap_set(*cp, i, v + 1);
	} else if (v == 2) {
		if (!m->big[ci] && !(m->big[ci] = calloc(1, TM_ENTRIES_PER_BITMAP)))
			return -ENOMEM;
		m->big[ci][i] = 3;
		m->nr_overflow++;
		tm_bitmap_set(*cp, i, 3);
	} else if (m->big[ci][i] < BIG_HUGE - 1) {
		m->big[ci][i]++;
	} else if (m->big[ci][i] == BIG_HUGE - 1) {
		if (u64map_put(&m->huge, b, BIG_HUGE))
			return -ENOMEM;
		m->big[ci][i] = BIG_HUGE;
	} else {
		uint64_t *p = u64map_find(&m->huge, b);
		if (!p)
			return -EINVAL;
		if (*p == UINT32_MAX)
			return -EOVERFLOW;
		(*p)++;
	}
	return 0;
}

int tm_rcmap_inc_range(struct tm_rcmap *m, uint64_t b, uint64_t n, uint64_t *failed)
{
	if (b >= m->nr_blocks || n > m->nr_blocks - b) {
		*failed = b >= m->nr_blocks ? b : m->nr_blocks;
		return -ERANGE;
	}
	while (n) {
		uint8_t **cp = &m->chunks[b / TM_ENTRIES_PER_BITMAP];
		uint32_t i = (uint32_t)(b % TM_ENTRIES_PER_BITMAP);
		uint32_t end = n < TM_ENTRIES_PER_BITMAP - i ? i + (uint32_t)n : TM_ENTRIES_PER_BITMAP;

		if (!*cp && !(*cp = calloc(1, TM_BLOCK_SIZE))) {
			*failed = b;
			return -ENOMEM;
		}
		n -= end - i;
		/* a word of 32 entries at a time (tm_bitmap_get's bit order) */
		while (i < end) {
			uint8_t *wp = *cp + TM_BITMAP_HEADER_SIZE + 8 * (i / 32);
			uint32_t wend = (i / 32 + 1) * 32 < end ? (i / 32 + 1) * 32 : end;
			uint64_t w = tm_le64(wp);

			for (; i < wend; i++, b++) {
				unsigned bit = 2 * (i % 32);
				unsigned hi = (unsigned)(w >> bit) & 1, lo = (unsigned)(w >> (bit + 1)) & 1;
				int r;

				if (!hi) {
					/* 0 -> 1 or 1 -> 2: nearly all, in the bitmap alone */
					m->nr_allocated += !lo;
					w ^= (uint64_t)(lo ? 3 : 2) << bit;
					continue;
				}
				tm_put_le64(wp, w);
				if ((r = tm_rcmap_inc(m, b))) {
					*failed = b;
					return r;
				}
				w = tm_le64(wp);
			}
			tm_put_le64(wp, w);
		}
	}
	return 0;
}

int tm_rcmap_dec(struct tm_rcmap *m, uint64_t b, uint32_t *now)
{
	uint64_t ci = b / TM_ENTRIES_PER_BITMAP;
	uint32_t i = (uint32_t)(b % TM_ENTRIES_PER_BITMAP);
	uint8_t *c;
	unsigned v;

	if (b >= m->nr_blocks)
		return -ERANGE;
	if (!(c = m->chunks[ci]) || !(v = tm_bitmap_get(c, i)))
		return -EINVAL;
	if (v < 3) {
		tm_bitmap_set(c, i, v - 1);
		m->nr_allocated -= v == 1;
		*now = v - 1;
		return 0;
	}
	if (m->big[ci][i] == BIG_HUGE) {
		uint64_t *p = u64map_find(&m->huge, b);
		if (!p)
			return -EINVAL;
		if (*p > BIG_HUGE) {
			*now = (uint32_t)--(*p);
			return 0;
		}
		u64map_remove(&m->huge, b);
		m->big[ci][i] = BIG_HUGE - 1;
	} else if (m->big[ci][i] > 3) {
		m->big[ci][i]--;
	} else {
		m->big[ci][i] = 0;
		m->nr_overflow--;
		tm_bitmap_set(c, i, 2);
	}
	*now = tm_rcmap_get(m, b);
	return 0;
}

int tm_rcmap_overflow(const struct tm_rcmap *m, uint64_t **keys,
		      uint32_t **vals, size_t *n)
{
	uint64_t *ks = NULL;
	uint32_t *vs = NULL;
	size_t k = 0;

	*keys = NULL;
	*vals = NULL;
	*n = 0;
	if (!m->nr_overflow)
		return 0;
	ks = malloc(m->nr_overflow * sizeof(*ks));
	vs = malloc(m->nr_overflow * sizeof(*vs));
	if (!ks || !vs) {
		free(ks);
		free(vs);
		return -ENOMEM;
	}
	/* in block order: the chunks with big counts, entry by entry */
	for (uint64_t ci = 0; ci < m->nr_chunks && k < m->nr_overflow; ci++) {
		if (!m->big[ci])
			continue;
		for (uint32_t i = 0; i < TM_ENTRIES_PER_BITMAP && k < m->nr_overflow; i++) {
			uint64_t b = ci * TM_ENTRIES_PER_BITMAP + i;
			if (m->big[ci][i]) {
				ks[k] = b;
				vs[k++] = tm_rcmap_get(m, b);
			}
		}
	}
	*keys = ks;
	*vals = vs;
	*n = k;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The output writer */

int bld_out_init(struct bld_out *o, struct tm_bm *bm, struct tm_error *e)
{
	uint64_t nr = tm_bm_nr_blocks(bm);
	void *p;
	int r;

	memset(o, 0, sizeof(*o));
	o->bm = bm;
	o->e = e;
	if (nr > TM_MAX_METADATA_BLOCKS)
		nr = TM_MAX_METADATA_BLOCKS;
	if ((r = tm_rcmap_init(&o->meta, nr)))
		return tm_fail(e, r, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	if (posix_memalign(&p, TM_BLOCK_SIZE, (size_t)BLD_BATCH_BLOCKS * TM_BLOCK_SIZE)) {
		tm_rcmap_free(&o->meta);
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	}
	o->batch = p;
	return 0;
}

void bld_out_free(struct bld_out *o)
{
	tm_rcmap_free(&o->meta);
	free(o->batch);
	o->batch = NULL;
}

int bld_alloc(struct bld_out *o, uint64_t *b)
{
	uint64_t nr = o->meta.nr_blocks, c = o->cursor;

	if (bld_nr_free(o) == 0)
		return tm_fail(o->e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "out of metadata space: all %llu blocks of the output are used",
			       (unsigned long long)nr);
	for (uint64_t n = 0; n < nr; n++, c++) {
		if (c >= nr)
			c = 0;
		const uint8_t *ch = o->meta.chunks[c / TM_ENTRIES_PER_BITMAP];
		if (ch && tm_bitmap_get(ch, (uint32_t)(c % TM_ENTRIES_PER_BITMAP)))
			continue;
		int r = tm_rcmap_inc(&o->meta, c);
		if (r)
			return tm_fail(o->e, r, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		o->cursor = c + 1;
		*b = c;
		return 0;
	}
	return tm_fail(o->e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
		       "out of metadata space: all %llu blocks of the output are used",
		       (unsigned long long)nr);
}

int bld_inc(struct bld_out *o, uint64_t b)
{
	int r = tm_rcmap_inc(&o->meta, b);

	if (r)
		return tm_fail(o->e, r, r == -ENOMEM ? TM_RULE_NOMEM : TM_RULE_BAD_VALUE, b,
			       "metadata block %llu: cannot count another reference",
			       (unsigned long long)b);
	return 0;
}

int bld_dec(struct bld_out *o, uint64_t b, int *freed)
{
	uint32_t now;
	int r = tm_rcmap_dec(&o->meta, b, &now);

	if (r)
		return tm_fail(o->e, -EINVAL, TM_RULE_BAD_VALUE, b,
			       "metadata block %llu: dropping a reference it does not have",
			       (unsigned long long)b);
	if (freed)
		*freed = now == 0;
	return 0;
}

static int batch_write_out(struct bld_out *o)
{
	int r;

	if (!o->batch_n)
		return 0;
	r = tm_dev_write(tm_bm_dev(o->bm), o->batch_start, o->batch_n, o->batch);
	if (r)
		return tm_fail(o->e, r, TM_RULE_IO, o->batch_start,
			       "writing blocks %llu..%llu failed: %s",
			       (unsigned long long)o->batch_start,
			       (unsigned long long)(o->batch_start + o->batch_n - 1),
			       strerror(-r));
	o->batch_n = 0;
	return 0;
}

int bld_write(struct bld_out *o, uint64_t b, const struct tm_validator *v, void *buf)
{
	int r;

	if (b >= tm_bm_nr_blocks(o->bm))
		return tm_fail(o->e, -ERANGE, TM_RULE_OUT_OF_RANGE, b,
			       "block %llu is past the end of the output", (unsigned long long)b);
	if (v)
		tm_block_seal(buf, b, v->salt);
	tm_bm_forget(o->bm, b);
	if (o->batch_n && b >= o->batch_start && b < o->batch_start + o->batch_n) {
		memcpy(o->batch + (b - o->batch_start) * TM_BLOCK_SIZE, buf, TM_BLOCK_SIZE);
		return 0;
	}
	if (o->batch_n && (b != o->batch_start + o->batch_n || o->batch_n == BLD_BATCH_BLOCKS))
		if ((r = batch_write_out(o)))
			return r;
	if (!o->batch_n)
		o->batch_start = b;
	memcpy(o->batch + (size_t)o->batch_n * TM_BLOCK_SIZE, buf, TM_BLOCK_SIZE);
	o->batch_n++;
	return 0;
}

int bld_read(struct bld_out *o, uint64_t b, const struct tm_validator *v, void *buf)
{
	if (o->batch_n && b >= o->batch_start && b < o->batch_start + o->batch_n) {
		memcpy(buf, o->batch + (b - o->batch_start) * TM_BLOCK_SIZE, TM_BLOCK_SIZE);
		return v ? tm_block_validate(v, buf, b, o->e) : 0;
	}
	return tm_bm_read(o->bm, b, v, buf, o->e);
}

int bld_flush(struct bld_out *o)
{
	int r = batch_write_out(o);

	return r ? r : tm_bm_flush(o->bm, o->e);
}

/* ------------------------------------------------------------------ */
/* Bitmaps */

/*
 * Write one bitmap holding entries [0, @len) of @chunk (NULL = zeroes) at
 * block @b, and describe it in @ie: nr_free counts the whole bitmap, as
 * the kernel does, none_free_before is the first free entry.
 */
static int write_bitmap(struct bld_out *o, uint64_t b, const uint8_t *chunk,
			uint32_t len, struct tm_index_entry *ie)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint32_t used = 0, first_free = len;

	if (chunk)
		memcpy(buf, chunk, TM_BLOCK_SIZE);
	else
		memset(buf, 0, TM_BLOCK_SIZE);
	memset(buf, 0, TM_BITMAP_HEADER_SIZE);
	for (uint32_t w = 0; chunk && w * 32 < len; w++) {
		uint64_t word = tm_le64(buf + TM_BITMAP_HEADER_SIZE + 8 * w);
		uint64_t inuse = (word | word >> 1) & 0x5555555555555555ull;
		uint32_t n = len - w * 32 < 32 ? len - w * 32 : 32;
		if (n < 32)
			inuse &= (1ull << (2 * n)) - 1;
		used += (uint32_t)__builtin_popcountll(inuse);
		if (first_free == len) {
			uint64_t freeb = ~inuse & 0x5555555555555555ull;
			if (n < 32)
				freeb &= (1ull << (2 * n)) - 1;
			if (freeb)
				first_free = w * 32 + (uint32_t)__builtin_ctzll(freeb) / 2;
		}
	}
	if (!chunk)
		first_free = 0;
	ie->blocknr = b;
	ie->nr_free = TM_ENTRIES_PER_BITMAP - used;
	ie->none_free_before = first_free;
	return bld_write(o, b, &tm_bitmap_validator, buf);
}

static uint32_t bitmap_len(uint64_t nr_blocks, uint64_t i)
{
	uint64_t left = nr_blocks - i * TM_ENTRIES_PER_BITMAP;
	return left < TM_ENTRIES_PER_BITMAP ? (uint32_t)left : TM_ENTRIES_PER_BITMAP;
}

/*
 * The overflow tree (u32 counts >= 3 keyed by block) is built while the
 * bitmaps are allocated, bitmap by bitmap, as 1.1.0 does: the entries of a
 * bitmap's range are pushed before the bitmap's own block is allocated.
 */
struct ovf_feed {
	struct bld_nb nb;
	uint64_t *keys;
	uint32_t *vals;
	size_t n, next;
};

static int ovf_feed_init(struct ovf_feed *f, struct bld_out *o, const struct tm_rcmap *m)
{
	bld_nb_init(&f->nb, o, TM_NODE_LEAF, TM_VSIZE_REFCOUNT, NULL);
	f->next = 0;
	if (tm_rcmap_overflow(m, &f->keys, &f->vals, &f->n))
		return tm_fail(o->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	return 0;
}

/* Push the entries below @end. */
static int ovf_feed_upto(struct ovf_feed *f, uint64_t end)
{
	uint8_t v[4];
	int r;

	for (; f->next < f->n && f->keys[f->next] < end; f->next++) {
		tm_put_le32(v, f->vals[f->next]);
		if ((r = bld_nb_push_value(&f->nb, f->keys[f->next], v)))
			return r;
	}
	return 0;
}

static int ovf_feed_finish(struct ovf_feed *f, struct bld_out *o, uint64_t *root)
{
	struct bld_nsum *leaves;
	size_t nl;
	int r = ovf_feed_upto(f, UINT64_MAX);

	if (!r)
		r = bld_nb_complete(&f->nb, &leaves, &nl);
	if (!r)
		r = bld_build_btree(o, leaves, nl, root);
	return r;
}

static void ovf_feed_free(struct ovf_feed *f)
{
	bld_nb_free(&f->nb);
	free(f->keys);
	free(f->vals);
}

int bld_write_data_sm(struct bld_out *o, const struct tm_rcmap *counts,
		      struct tm_sm_root *root)
{
	uint64_t nbm = counts->nr_chunks, index_root, ovf_root, b;
	struct tm_index_entry *ies;
	struct ovf_feed f;
	struct bld_nb nb;
	struct bld_nsum *leaves;
	size_t nl;
	uint8_t v[TM_VSIZE_INDEX];
	int r = 0;

	if (nbm > bld_nr_free(o))
		return tm_fail(o->e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "out of metadata space: %llu data blocks need %llu bitmap blocks, "
			       "more than the %llu free blocks of the output",
			       (unsigned long long)counts->nr_blocks, (unsigned long long)nbm,
			       (unsigned long long)bld_nr_free(o));
	if (!(ies = malloc((nbm ? nbm : 1) * sizeof(*ies))))
		return tm_fail(o->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	if ((r = ovf_feed_init(&f, o, counts))) {
		free(ies);
		return r;
	}
	/* bitmaps (and overflow leaves as they fill), then the index btree */
	for (uint64_t i = 0; i < nbm && !r; i++) {
		if (!(r = ovf_feed_upto(&f, (i + 1) * TM_ENTRIES_PER_BITMAP)) &&
		    !(r = bld_alloc(o, &b)))
			r = write_bitmap(o, b, tm_rcmap_chunk(counts, i),
					 bitmap_len(counts->nr_blocks, i), &ies[i]);
	}
	if (!r)
		r = ovf_feed_finish(&f, o, &ovf_root);
	ovf_feed_free(&f);
	bld_nb_init(&nb, o, TM_NODE_LEAF, TM_VSIZE_INDEX, NULL);
	for (uint64_t i = 0; i < nbm && !r; i++) {
		tm_index_entry_encode(&ies[i], v);
		r = bld_nb_push_value(&nb, i, v);
	}
	free(ies);
	if (!r && !(r = bld_nb_complete(&nb, &leaves, &nl)))
		r = bld_build_btree(o, leaves, nl, &index_root);
	bld_nb_free(&nb);
	if (r)
		return r;

	root->nr_blocks = counts->nr_blocks;
	root->nr_allocated = counts->nr_allocated;
	root->bitmap_root = index_root;
	root->ref_count_root = ovf_root;
	return 0;
}

int bld_write_meta_sm(struct bld_out *o, struct tm_sm_root *root)
{
	const struct tm_rcmap *m = &o->meta;
	uint64_t nbm = m->nr_chunks, index_block, ovf_root;
	uint64_t bitmaps[TM_META_INDEX_ENTRIES];
	uint8_t buf[TM_BLOCK_SIZE];
	struct ovf_feed f;
	int r = 0;

	if (nbm > TM_META_INDEX_ENTRIES)
		return tm_fail(o->e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "metadata space map of %llu blocks is too large",
			       (unsigned long long)m->nr_blocks);
	/*
	 * Allocate everything first - overflow tree, bitmaps, index block, in
	 * 1.1.0's order - and fill the bitmaps in afterwards, when every count
	 * is final.  The overflow tree holds blocks counted >= 3, which blocks
	 * allocated from here on (counted 1) never are.
	 */
	if ((r = ovf_feed_init(&f, o, m)))
		return r;
	for (uint64_t i = 0; i < nbm && !r; i++)
		if (!(r = ovf_feed_upto(&f, (i + 1) * TM_ENTRIES_PER_BITMAP)))
			r = bld_alloc(o, &bitmaps[i]);
	if (!r)
		r = ovf_feed_finish(&f, o, &ovf_root);
	ovf_feed_free(&f);
	if (!r)
		r = bld_alloc(o, &index_block);
	if (r)
		return r;

	memset(buf, 0, sizeof(buf));
	for (uint64_t i = 0; i < nbm; i++) {
		struct tm_index_entry ie;
		if ((r = write_bitmap(o, bitmaps[i], tm_rcmap_chunk(m, i),
				      bitmap_len(m->nr_blocks, i), &ie)))
			return r;
		tm_index_entry_encode(&ie, buf + 16 + TM_INDEX_ENTRY_SIZE * i);
	}
	if ((r = bld_write(o, index_block, &tm_index_validator, buf)))
		return r;

	root->nr_blocks = m->nr_blocks;
	root->nr_allocated = m->nr_allocated;
	root->bitmap_root = index_block;
	root->ref_count_root = ovf_root;
	return 0;
}
