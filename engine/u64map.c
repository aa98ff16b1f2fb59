/* u64map.c - open addressing with linear probing, see u64map.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "u64map.h"

#define MIN_CAP 64

static size_t slot_of(uint64_t k, size_t cap)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

void u64map_init(struct u64map *m)
{
	memset(m, 0, sizeof(*m));
}

void u64map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	u64map_init(m);
}

/* The slot holding @k, or the empty slot where it would go. */
static size_t probe(const uint64_t *keys, size_t cap, uint64_t k)
{
	size_t j = slot_of(k, cap);

	while (keys[j] != k && keys[j] != U64MAP_EMPTY)
		j = (j + 1) & (cap - 1);
	return j;
}

uint64_t *u64map_find(const struct u64map *m, uint64_t k)
{
	size_t j;

	if (!m->cap || k == U64MAP_EMPTY)
		return NULL;
	j = probe(m->keys, m->cap, k);
	return m->keys[j] == k ? &m->vals[j] : NULL;
}

int u64map_get(const struct u64map *m, uint64_t k, uint64_t *val)
{
	const uint64_t *v = u64map_find(m, k);

	if (!v)
		return -ENODATA;
	*val = *v;
	return 0;
}

static int grow(struct u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : MIN_CAP;
	uint64_t *nk = malloc(ncap * sizeof(*nk));
	uint64_t *nv = malloc(ncap * sizeof(*nv));

	if (!nk || !nv) {
		free(nk);
		free(nv);
		return -ENOMEM;
	}
	memset(nk, 0xff, ncap * sizeof(*nk));
	for (size_t i = 0; i < m->cap; i++) {
		if (m->keys[i] == U64MAP_EMPTY)
			continue;
		size_t j = probe(nk, ncap, m->keys[i]);
		nk[j] = m->keys[i];
		nv[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	return 0;
}

int u64map_put(struct u64map *m, uint64_t k, uint64_t val)
{
	size_t j;

	if (k == U64MAP_EMPTY)
		return -EINVAL;
	if ((m->n + 1) * 2 > m->cap && grow(m))
		return -ENOMEM;
	j = probe(m->keys, m->cap, k);
	if (m->keys[j] == U64MAP_EMPTY) {
		m->keys[j] = k;
		m->n++;
	}
	m->vals[j] = val;
	return 0;
}

void u64map_remove(struct u64map *m, uint64_t k)
{
	size_t mask = m->cap - 1, i, j;

	if (!m->cap || k == U64MAP_EMPTY)
		return;
	i = probe(m->keys, m->cap, k);
	if (m->keys[i] != k)
		return;
	m->keys[i] = U64MAP_EMPTY;
	m->n--;
	/* Move back every later entry of the run whose home is not in the
	 * cyclic range (i, j], so that no probe chain is broken. */
	for (j = (i + 1) & mask; m->keys[j] != U64MAP_EMPTY; j = (j + 1) & mask) {
		size_t home = slot_of(m->keys[j], m->cap);

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->keys[j] = U64MAP_EMPTY;
			i = j;
		}
	}
}
