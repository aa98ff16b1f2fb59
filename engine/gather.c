/*
 * gather.c - split the leaf lists of several btrees into maximal "atomic"
 * runs that every list follows the same way, and say which runs are
 * reached from more than one place (shared).  This reproduces the run
 * gathering of thin-provisioning-tools 1.1.0 exactly, since thin_dump's
 * <def>/<ref> output depends on it (see include/thinmeta/dump.h).
 *
 * For each leaf b: its successors N(b) (sorted), its first-seen
 * predecessor P(b), and the marks head, tail and shared.
 *   - first leaf of a list: mark-head(b)
 *   - b after p: b already in N(p) -> shared(b); add b to N(p);
 *     P(b) known and != p -> mark-head(b); else P(b) = p
 *   - last leaf of a list: tail
 *   mark-head(b): if b is a head already, shared(b); head(b).
 * Completion: b is a tail if |N(b)| != 1 or min N(b) is a head; every
 * successor of a tail is mark-head'ed.  A run starts at a head and follows
 * min N(b) up to and including the first tail.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/dump.h"
#include "u64map.h"

struct gent {
	uint64_t block;
	uint64_t back;
	uint64_t *nb;		/* successors, ascending */
	uint32_t nr_nb, cap_nb;
	uint8_t has_back, head, tail, shared;
};

struct gatherer {
	struct gent *ents;
	size_t nr, cap;
	struct u64map map;	/* block -> index into ents */
};

/* Index of @b's entry, creating it if needed; -ENOMEM. */
static int64_t entry_of(struct gatherer *g, uint64_t b)
{
	const uint64_t *v = u64map_find(&g->map, b);

	if (v)
		return (int64_t)*v;
	if (g->nr == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 256;
		struct gent *ne = realloc(g->ents, ncap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		g->ents = ne;
		g->cap = ncap;
	}
	int r = u64map_put(&g->map, b, g->nr);
	if (r)
		return r;
	memset(&g->ents[g->nr], 0, sizeof(struct gent));
	g->ents[g->nr].block = b;
	return (int64_t)g->nr++;
}

static int64_t find(const struct gatherer *g, uint64_t b)
{
	const uint64_t *v = u64map_find(&g->map, b);

	return v ? (int64_t)*v : -1;
}

/* Add @b to @e's successors; 1 if added, 0 if present, -ENOMEM. */
static int add_successor(struct gent *e, uint64_t b)
{
	uint32_t i = 0;

	while (i < e->nr_nb && e->nb[i] < b)
		i++;
	if (i < e->nr_nb && e->nb[i] == b)
		return 0;
	if (e->nr_nb == e->cap_nb) {
		uint32_t ncap = e->cap_nb ? e->cap_nb * 2 : 2;
		uint64_t *nn = realloc(e->nb, ncap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		e->nb = nn;
		e->cap_nb = ncap;
	}
	memmove(e->nb + i + 1, e->nb + i, (e->nr_nb - i) * sizeof(*e->nb));
	e->nb[i] = b;
	e->nr_nb++;
	return 1;
}

static void mark_head(struct gent *e)
{
	if (e->head)
		e->shared = 1;
	e->head = 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void gatherer_free(struct gatherer *g)
{
	for (size_t i = 0; i < g->nr; i++)
		free(g->ents[i].nb);
	free(g->ents);
	u64map_free(&g->map);
}

int tm_gather_runs(const uint64_t *const *lists, const uint64_t *lens,
		   size_t nr_lists, uint64_t nr_blocks, uint64_t **runs_out,
		   uint64_t **run_len_out, uint8_t **run_shared_out, uint64_t *nr_runs_out)
{
	struct gatherer g = { 0 };
	uint64_t *heads = NULL, *runs = NULL, *run_len = NULL;
	uint8_t *run_shared = NULL;
	uint64_t nr_heads = 0, nr_runs = 0, total = 0;
	int r = -ENOMEM;

	(void)nr_blocks;
	*runs_out = NULL;
	*run_len_out = NULL;
	*run_shared_out = NULL;
	*nr_runs_out = 0;

	/* stream the lists */
	for (size_t l = 0; l < nr_lists; l++) {
		int64_t prev = -1;
		for (uint64_t i = 0; i < lens[l]; i++) {
			uint64_t b = lists[l][i];
			int64_t ei = entry_of(&g, b);
			if (ei < 0)
				goto out;
			if (prev < 0) {
				mark_head(&g.ents[ei]);
			} else {
				struct gent *pe = &g.ents[prev];
				int added = add_successor(pe, b);
				if (added < 0)
					goto out;
				struct gent *e = &g.ents[ei];
				if (!added)
					e->shared = 1;
				if (e->has_back) {
					if (e->back != pe->block)
						mark_head(e);
				} else {
					e->back = pe->block;
					e->has_back = 1;
				}
			}
			prev = ei;
		}
		if (prev >= 0)
			g.ents[prev].tail = 1;
	}

	/* completion: extra tails, judged against the heads after streaming */
	uint8_t *new_tail = calloc(g.nr ? g.nr : 1, 1);
	if (!new_tail)
		goto out;
	for (size_t i = 0; i < g.nr; i++) {
		struct gent *e = &g.ents[i];
		if (e->nr_nb != 1)
			new_tail[i] = 1;
		if (e->nr_nb && g.ents[find(&g, e->nb[0])].head)
			new_tail[i] = 1;
	}
	for (size_t i = 0; i < g.nr; i++)
		if (new_tail[i])
			g.ents[i].tail = 1;
	free(new_tail);
	for (size_t i = 0; i < g.nr; i++) {
		struct gent *e = &g.ents[i];
		if (!e->tail)
			continue;
		for (uint32_t k = 0; k < e->nr_nb; k++)
			mark_head(&g.ents[find(&g, e->nb[k])]);
	}

	/* runs, by ascending head block */
	heads = malloc((g.nr ? g.nr : 1) * sizeof(*heads));
	runs = malloc((g.nr ? g.nr : 1) * sizeof(*runs));
	run_len = malloc((g.nr ? g.nr : 1) * sizeof(*run_len));
	run_shared = malloc(g.nr ? g.nr : 1);
	if (!heads || !runs || !run_len || !run_shared)
		goto out;
	for (size_t i = 0; i < g.nr; i++)
		if (g.ents[i].head)
			heads[nr_heads++] = g.ents[i].block;
	qsort(heads, nr_heads, sizeof(*heads), cmp_u64);
	for (uint64_t h = 0; h < nr_heads; h++) {
		int64_t ei = find(&g, heads[h]);
		uint64_t len = 0;
		run_shared[nr_runs] = g.ents[ei].shared;
		for (;;) {
			if (total >= g.nr) {	/* cannot happen on lists without repeats */
				r = -ELOOP;
				goto out;
			}
			runs[total++] = g.ents[ei].block;
			len++;
			if (g.ents[ei].tail || !g.ents[ei].nr_nb)
				break;
			ei = find(&g, g.ents[ei].nb[0]);
		}
		run_len[nr_runs++] = len;
	}
	*runs_out = runs;
	*run_len_out = run_len;
	*run_shared_out = run_shared;
	*nr_runs_out = nr_runs;
	runs = run_len = NULL;
	run_shared = NULL;
	r = 0;
out:
	free(heads);
	free(runs);
	free(run_len);
	free(run_shared);
	gatherer_free(&g);
	return r;
}

/* The run starting at block @b (runs ascend by first block), or -1. */
static int64_t run_of(const struct tm_gathered *g, uint64_t b)
{
	uint64_t lo = 0, hi = g->nr_runs;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (g->heads[mid] < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->nr_runs && g->heads[lo] == b ? (int64_t)lo : -1;
}

int tm_gather_defs(uint64_t *const *lists, uint64_t *lens, size_t nr_lists,
		   uint64_t nr_blocks, struct tm_gathered *g)
{
	uint64_t nr;
	int r;

	memset(g, 0, sizeof(*g));
	r = tm_gather_runs((const uint64_t *const *)lists, lens, nr_lists, nr_blocks,
			   &g->runs, &g->run_len, &g->run_shared, &g->nr_runs);
	if (r)
		return r;
	nr = g->nr_runs ? g->nr_runs : 1;
	g->run_start = malloc(nr * sizeof(*g->run_start));
	g->heads = malloc(nr * sizeof(*g->heads));
	if (!g->run_start || !g->heads)
		return -ENOMEM;
	for (uint64_t i = 0, pos = 0; i < g->nr_runs; i++) {
		g->run_start[i] = pos;
		g->heads[i] = g->runs[pos];
		pos += g->run_len[i];
	}
	for (size_t i = 0; i < nr_lists; i++) {
		uint64_t w = 0;
		for (uint64_t k = 0; k < lens[i];) {
			uint64_t b = lists[i][k];
			int64_t ri = run_of(g, b);
			if (ri >= 0 && g->run_shared[ri]) {
				lists[i][w++] = b | TM_GATHER_REF;
				k += g->run_len[ri];
			} else {
				lists[i][w++] = b;
				k++;
			}
		}
		lens[i] = w;
	}
	return 0;
}

void tm_gathered_free(struct tm_gathered *g)
{
	free(g->runs);
	free(g->run_len);
	free(g->run_start);
	free(g->heads);
	free(g->run_shared);
	memset(g, 0, sizeof(*g));
}
