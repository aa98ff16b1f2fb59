/* count2.c - saturating two-bit counters in lazily allocated pages. */
#include <errno.h>
#include <stdlib.h>

#include "count2.h"

#define PAGE_SHIFT	COUNT2_PAGE_SHIFT
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

int count2_inc_new_page(struct count2 *c, uint64_t b)
{
	uint64_t **pp = &c->pages[b >> PAGE_SHIFT];

	if (!*pp) {
		*pp = calloc(PAGE_WORDS, sizeof(uint64_t));
		if (!*pp)
			return -ENOMEM;
	}
	return count2_inc(c, b);
}
