/* u64set.c - a set of u64, open addressing with linear probing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "u64set.h"

#define EMPTY UINT64_MAX

static size_t hash(uint64_t v, size_t cap)
{
	return (size_t)((v * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

void u64set_init(struct u64set *s)
{
	s->slots = NULL;
	s->cap = 0;
	s->n = 0;
	s->has_max = 0;
}

void u64set_free(struct u64set *s)
{
	free(s->slots);
	u64set_init(s);
}

void u64set_clear(struct u64set *s)
{
	if (s->slots && s->n)
		memset(s->slots, 0xff, s->cap * sizeof(uint64_t));
	s->n = 0;
	s->has_max = 0;
}

static int grow(struct u64set *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 64;
	uint64_t *ns = malloc(ncap * sizeof(uint64_t));

	if (!ns)
		return -ENOMEM;
	memset(ns, 0xff, ncap * sizeof(uint64_t));
	for (size_t i = 0; i < s->cap; i++) {
		uint64_t v = s->slots[i];
		if (v == EMPTY)
			continue;
		size_t j = hash(v, ncap);
		while (ns[j] != EMPTY)
			j = (j + 1) & (ncap - 1);
		ns[j] = v;
	}
	free(s->slots);
	s->slots = ns;
	s->cap = ncap;
	return 0;
}

int u64set_add(struct u64set *s, uint64_t v)
{
	size_t j;

	if (v == EMPTY) {
		/* (the empty-slot marker: kept aside; a hostile pointer may be 2^64-1) */
		if (s->has_max)
			return 0;
		s->has_max = 1;
		return 1;
	}
	if ((s->n + 1) * 2 > s->cap && grow(s))
		return -ENOMEM;
	j = hash(v, s->cap);
	while (s->slots[j] != EMPTY) {
		if (s->slots[j] == v)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->slots[j] = v;
	s->n++;
	return 1;
}

int u64set_has(const struct u64set *s, uint64_t v)
{
	size_t j;

	if (v == EMPTY)
		return s->has_max;
	if (!s->cap)
		return 0;
	j = hash(v, s->cap);
	while (s->slots[j] != EMPTY) {
		if (s->slots[j] == v)
			return 1;
		j = (j + 1) & (s->cap - 1);
	}
	return 0;
}
