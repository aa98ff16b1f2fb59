/*
 * u64set.h - a set of u64 (block numbers), open addressing.  Internal to
 * the engine: cycle detection in walks, and seen-once bookkeeping.
 */
#ifndef THINMETA_U64SET_H
#define THINMETA_U64SET_H

#include <stddef.h>
#include <stdint.h>

struct u64set {
	uint64_t *slots;	/* UINT64_MAX = empty */
	size_t cap;		/* power of two */
	size_t n;
	int has_max;		/* UINT64_MAX is in the set (not in slots) */
};

void u64set_init(struct u64set *s);
void u64set_free(struct u64set *s);
void u64set_clear(struct u64set *s);
/* 1 if added, 0 if already present, -ENOMEM.  Any value, UINT64_MAX too. */
int u64set_add(struct u64set *s, uint64_t v);
int u64set_has(const struct u64set *s, uint64_t v);

#endif
