/*
 * tm.c - the transaction manager: shadowing, the write-back cache of the
 * blocks of the current transaction, and commit (transaction.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/format.h"
#include "thinmeta/sm_write.h"
#include "thinmeta/transaction.h"
#include "u64set.h"

#define DEFAULT_DIRTY_BLOCKS 4096u

struct dirty {
	uint64_t block;
	const struct tm_validator *v;
	uint8_t *data;
};

struct tm_tm {
	struct tm_bm *bm;
	struct tm_msm *sm;
	struct u64set shadows;	/* allocated or shadowed this transaction */

	/* write-back cache: n entries, map: open addressing, index + 1 */
	size_t cap, n;
	struct dirty *ents;
	uint8_t *data;
	uint32_t *map;
	size_t map_cap;

	struct tm_tm_stats stats;
};

int tm_tm_create(struct tm_bm *bm, size_t dirty_blocks, struct tm_tm **out)
{
	struct tm_tm *tm = calloc(1, sizeof(*tm));

	*out = NULL;
	if (!tm)
		return -ENOMEM;
	tm->bm = bm;
	tm->cap = dirty_blocks ? dirty_blocks : DEFAULT_DIRTY_BLOCKS;
	tm->map_cap = 1;
	while (tm->map_cap < tm->cap * 2)
		tm->map_cap <<= 1;
	tm->ents = calloc(tm->cap, sizeof(*tm->ents));
	tm->data = malloc(tm->cap * TM_BLOCK_SIZE);
	tm->map = calloc(tm->map_cap, sizeof(*tm->map));
	if (!tm->ents || !tm->data || !tm->map) {
		tm_tm_destroy(tm);
		return -ENOMEM;
	}
	for (size_t i = 0; i < tm->cap; i++)
		tm->ents[i].data = tm->data + i * TM_BLOCK_SIZE;
	u64set_init(&tm->shadows);
	*out = tm;
	return 0;
}

void tm_tm_destroy(struct tm_tm *tm)
{
	if (!tm)
		return;
	u64set_free(&tm->shadows);
	free(tm->ents);
	free(tm->data);
	free(tm->map);
	free(tm);
}

void tm_tm_set_sm(struct tm_tm *tm, struct tm_msm *sm)
{
	tm->sm = sm;
}

struct tm_msm *tm_tm_sm(struct tm_tm *tm)
{
	return tm->sm;
}

struct tm_bm *tm_tm_bm(struct tm_tm *tm)
{
	return tm->bm;
}

void tm_tm_stats(const struct tm_tm *tm, struct tm_tm_stats *s)
{
	*s = tm->stats;
}

/* ------------------------------------------------------------------ */
/* The write-back cache */

static size_t slot_of(const struct tm_tm *tm, uint64_t b)
{
	return (size_t)((b * 0x9e3779b97f4a7c15ull) >> 20) & (tm->map_cap - 1);
}

static struct dirty *find_dirty(const struct tm_tm *tm, uint64_t b)
{
	size_t j = slot_of(tm, b);

	while (tm->map[j]) {
		struct dirty *d = &tm->ents[tm->map[j] - 1];
		if (d->block == b)
			return d;
		j = (j + 1) & (tm->map_cap - 1);
	}
	return NULL;
}

static int cmp_dirty(const void *a, const void *b)
{
	const struct dirty *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

int tm_tm_writeback(struct tm_tm *tm, struct tm_error *e)
{
	int r = 0;

	/* in block order: sequential I/O where the allocator was linear */
	qsort(tm->ents, tm->n, sizeof(*tm->ents), cmp_dirty);
	for (size_t i = 0; i < tm->n && !r; i++) {
		r = tm_bm_write(tm->bm, tm->ents[i].block, tm->ents[i].v,
				tm->ents[i].data, e);
		tm->stats.writes++;
	}
	memset(tm->map, 0, tm->map_cap * sizeof(*tm->map));
	tm->n = 0;
	return r;
}

static int put_dirty(struct tm_tm *tm, uint64_t b, const struct tm_validator *v,
		     const void *buf, struct tm_error *e)
{
	struct dirty *d = find_dirty(tm, b);
	size_t j;
	int r;

	if (!d) {
		if (tm->n == tm->cap) {
			r = tm_tm_writeback(tm, e);
			if (r)
				return r;
		}
		d = &tm->ents[tm->n++];
		d->block = b;
		j = slot_of(tm, b);
		while (tm->map[j])
			j = (j + 1) & (tm->map_cap - 1);
		tm->map[j] = (uint32_t)tm->n;
	}
	d->v = v;
	if (d->data != buf)
		memcpy(d->data, buf, TM_BLOCK_SIZE);
	return 0;
}

/* ------------------------------------------------------------------ */

int tm_tm_is_shadow(struct tm_tm *tm, uint64_t b)
{
	return u64set_has(&tm->shadows, b);
}

static int add_shadow(struct tm_tm *tm, uint64_t b, struct tm_error *e)
{
	if (u64set_add(&tm->shadows, b) < 0)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, b, "out of memory");
	return 0;
}

int tm_tm_read(struct tm_tm *tm, uint64_t b, const struct tm_validator *v,
	       void *buf, struct tm_error *e)
{
	struct dirty *d = find_dirty(tm, b);

	if (d) {
		memcpy(buf, d->data, TM_BLOCK_SIZE);
		return 0;
	}
	return tm_bm_read(tm->bm, b, v, buf, e);
}

int tm_tm_new_block(struct tm_tm *tm, uint64_t *b, void *buf, struct tm_error *e)
{
	int r = tm_msm_new_block(tm->sm, b, e);

	if (r)
		return r;
	if (*b >= tm_bm_nr_blocks(tm->bm))
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, *b,
			       "space map handed out block %llu, past the end of the metadata device",
			       (unsigned long long)*b);
	memset(buf, 0, TM_BLOCK_SIZE);
	tm->stats.new_blocks++;
	return add_shadow(tm, *b, e);
}

int tm_tm_shadow(struct tm_tm *tm, uint64_t orig, const struct tm_validator *v,
		 uint64_t *b, void *buf, int *inc_children, struct tm_error *e)
{
	uint64_t nb;
	int r;

	r = tm_msm_count_is_more_than_one(tm->sm, orig, inc_children, e);
	if (r)
		return r;
	if (tm_tm_is_shadow(tm, orig) && !*inc_children) {
		*b = orig;
		return tm_tm_read(tm, orig, v, buf, e);
	}
	r = tm_msm_new_block(tm->sm, &nb, e);
	if (r)
		return r;
	if (nb >= tm_bm_nr_blocks(tm->bm))
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, nb,
			       "space map handed out block %llu, past the end of the metadata device",
			       (unsigned long long)nb);
	r = tm_msm_dec(tm->sm, orig, orig + 1, e);
	if (r)
		return r;
	r = tm_tm_read(tm, orig, v, buf, e);
	if (r)
		return r;
	*b = nb;
	tm->stats.shadows++;
	return add_shadow(tm, nb, e);
}

int tm_tm_write(struct tm_tm *tm, uint64_t b, const struct tm_validator *v,
		const void *buf, struct tm_error *e)
{
	if (!tm_tm_is_shadow(tm, b))
		return tm_fail(e, -EINVAL, TM_RULE_ARG, b,
			       "internal error: block %llu is written but was not allocated in this transaction",
			       (unsigned long long)b);
	return put_dirty(tm, b, v, buf, e);
}

/* ------------------------------------------------------------------ */
/* Counts */

int tm_tm_inc(struct tm_tm *tm, uint64_t b, struct tm_error *e)
{
	return tm_msm_inc(tm->sm, b, b + 1, e);
}

int tm_tm_dec(struct tm_tm *tm, uint64_t b, struct tm_error *e)
{
	return tm_msm_dec(tm->sm, b, b + 1, e);
}

int tm_tm_inc_range(struct tm_tm *tm, uint64_t b, uint64_t end, struct tm_error *e)
{
	return tm_msm_inc(tm->sm, b, end, e);
}

int tm_tm_dec_range(struct tm_tm *tm, uint64_t b, uint64_t end, struct tm_error *e)
{
	return tm_msm_dec(tm->sm, b, end, e);
}

int tm_tm_ref(struct tm_tm *tm, uint64_t b, uint32_t *count, struct tm_error *e)
{
	return tm_msm_get_count(tm->sm, b, count, e);
}

int tm_tm_is_shared(struct tm_tm *tm, uint64_t b, int *shared, struct tm_error *e)
{
	return tm_msm_count_is_more_than_one(tm->sm, b, shared, e);
}

/* The kernel's dm_tm_with_runs: one call per run of consecutive blocks. */
static int with_runs(struct tm_tm *tm, const uint8_t *values, uint32_t n, int dec,
		     struct tm_error *e)
{
	uint64_t begin = 0, end = 0;
	int in_run = 0, r;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t b = tm_le64(values + 8u * i);
		if (in_run && b == end) {
			end++;
			continue;
		}
		if (in_run) {
			r = dec ? tm_msm_dec(tm->sm, begin, end, e)
				: tm_msm_inc(tm->sm, begin, end, e);
			if (r)
				return r;
		}
		in_run = 1;
		begin = b;
		end = b + 1;
	}
	if (in_run)
		return dec ? tm_msm_dec(tm->sm, begin, end, e)
			   : tm_msm_inc(tm->sm, begin, end, e);
	return 0;
}

int tm_tm_inc_values(struct tm_tm *tm, const uint8_t *values, uint32_t n,
		     struct tm_error *e)
{
	return with_runs(tm, values, n, 0, e);
}

int tm_tm_dec_values(struct tm_tm *tm, const uint8_t *values, uint32_t n,
		     struct tm_error *e)
{
	return with_runs(tm, values, n, 1, e);
}

/* ------------------------------------------------------------------ */

int tm_tm_commit(struct tm_tm *tm, void *sb,
		 void (*before_sb)(void *ctx, const void *sb), void *ctx,
		 struct tm_error *e)
{
	int r;

	r = tm_tm_writeback(tm, e);
	if (!r)
		r = tm_bm_flush(tm->bm, e);
	if (!r && before_sb) {
		tm_block_seal(sb, 0, TM_SALT_SUPERBLOCK);
		before_sb(ctx, sb);
	}
	if (!r)
		r = tm_bm_write(tm->bm, 0, &tm_sb_validator, sb, e);
	if (!r)
		r = tm_bm_flush(tm->bm, e);
	if (r)
		return r;
	u64set_clear(&tm->shadows);
	tm->stats.commits++;
	return 0;
}
