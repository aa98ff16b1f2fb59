/* count2.c - saturating two-bit counters in lazily allocated pages. */
#include <errno.h>
#include <stdlib.h>

#include "count2.h"

#define PAGE_SHIFT	20			/* blocks per page: 2^20 */
#define PAGE_BLOCKS	(1ull << PAGE_SHIFT)
#define PAGE_WORDS	(PAGE_BLOCKS / 32)	/* 32 two-bit counters per word */
#define MAX_BLOCKS	(1ull << 40)

int count2_init(struct count2 *c, uint64_t nr)
{
	if (nr > MAX_BLOCKS)
		nr = MAX_BLOCKS;
	c->nr = nr;
	c->nr_pages = (nr + PAGE_BLOCKS - 1) >> PAGE_SHIFT;
	c->pages = calloc(c->nr_pages ? c->nr_pages : 1, sizeof(*c->pages));
	return c->pages ? 0 : -ENOMEM;
}

void count2_free(struct count2 *c)
{
	if (c->pages)
		for (uint64_t i = 0; i < c->nr_pages; i++)
			free(c->pages[i]);
	free(c->pages);
	c->pages = NULL;
	c->nr_pages = 0;
	c->nr = 0;
}

int count2_inc(struct count2 *c, uint64_t b)
{
	if (b >= c->nr)
		return 0;
	uint64_t **pp = &c->pages[b >> PAGE_SHIFT];
	if (!*pp) {
		*pp = calloc(PAGE_WORDS, sizeof(uint64_t));
		if (!*pp)
			return -ENOMEM;
	}
	uint64_t i = b & (PAGE_BLOCKS - 1);
	uint64_t *w = &(*pp)[i / 32];
	unsigned shift = 2 * (unsigned)(i % 32);
	uint64_t v = (*w >> shift) & 3;
	if (v < 2)
		*w += 1ull << shift;
	return 0;
}

unsigned count2_get(const struct count2 *c, uint64_t b)
{
	if (b >= c->nr)
		return 0;
	const uint64_t *p = c->pages[b >> PAGE_SHIFT];
	if (!p)
		return 0;
	uint64_t i = b & (PAGE_BLOCKS - 1);
	return (unsigned)((p[i / 32] >> (2 * (i % 32))) & 3);
}
