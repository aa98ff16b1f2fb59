/*
 * count2.h - a saturating 0/1/2 counter per block over a large, sparse
 * block range (data blocks: up to 2^40).  Two bits per block, in pages
 * allocated on first use, so memory follows the blocks actually counted.
 * Internal to the engine (thin_ls sharing counts, thin_trim's used set).
 */
#ifndef THINMETA_COUNT2_H
#define THINMETA_COUNT2_H

#include <stdint.h>

struct count2 {
	uint64_t nr;		/* blocks 0..nr-1 may be counted */
	uint64_t nr_pages;
	uint64_t **pages;	/* NULL until a block of the page is counted */
};

#define COUNT2_PAGE_SHIFT 20		/* blocks per page: 2^20 */

/* 0 or -ENOMEM.  @nr is capped at 2^40 (the largest data block + 1). */
int count2_init(struct count2 *c, uint64_t nr);
void count2_free(struct count2 *c);
/* count2_inc() when the block's page is not allocated yet. */
int count2_inc_new_page(struct count2 *c, uint64_t b);

/* Add one (saturating at 2).  Blocks >= nr are ignored.  0 or -ENOMEM. */
static inline int count2_inc(struct count2 *c, uint64_t b)
{
	if (b >= c->nr)
		return 0;
	uint64_t *p = c->pages[b >> COUNT2_PAGE_SHIFT];
	if (!p)
		return count2_inc_new_page(c, b);
	uint64_t *w = &p[(b & ((1ull << COUNT2_PAGE_SHIFT) - 1)) / 32];
	unsigned shift = 2 * (unsigned)(b % 32);
	if (((*w >> shift) & 3) < 2)
		*w += 1ull << shift;
	return 0;
}

/* 0, 1 or 2 (meaning "2 or more"); 0 for blocks >= nr. */
static inline unsigned count2_get(const struct count2 *c, uint64_t b)
{
	if (b >= c->nr)
		return 0;
	const uint64_t *p = c->pages[b >> COUNT2_PAGE_SHIFT];
	if (!p)
		return 0;
	return (unsigned)((p[(b & ((1ull << COUNT2_PAGE_SHIFT) - 1)) / 32] >> (2 * (b % 32))) & 3);
}

#endif
