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

/* 0 or -ENOMEM.  @nr is capped at 2^40 (the largest data block + 1). */
int count2_init(struct count2 *c, uint64_t nr);
void count2_free(struct count2 *c);
/* Add one (saturating at 2).  Blocks >= nr are ignored.  0 or -ENOMEM. */
int count2_inc(struct count2 *c, uint64_t b);
/* 0, 1 or 2 (meaning "2 or more"); 0 for blocks >= nr. */
unsigned count2_get(const struct count2 *c, uint64_t b);

#endif
