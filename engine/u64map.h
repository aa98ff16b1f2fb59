/*
 * u64map.h - a map from 64-bit keys (block numbers) to 64-bit values:
 * open addressing with linear probing, a power-of-two table at most half
 * full, removal by shifting entries back (no tombstones).  UINT64_MAX is
 * the one key that cannot be stored: it marks an empty slot.
 * Internal to the engine (the dump's gatherer, thin_ls's node index, the
 * checker's and the builder's overflow counts, the salvager's indexes).
 */
#ifndef THINMETA_U64MAP_H
#define THINMETA_U64MAP_H

#include <stddef.h>
#include <stdint.h>

#define U64MAP_EMPTY UINT64_MAX

struct u64map {
	uint64_t *keys;		/* U64MAP_EMPTY = empty slot */
	uint64_t *vals;
	size_t cap;		/* power of two, or 0 */
	size_t n;		/* entries */
};

void u64map_init(struct u64map *m);
void u64map_free(struct u64map *m);
/* The value stored for @k, for reading or updating in place; NULL if none. */
uint64_t *u64map_find(const struct u64map *m, uint64_t k);
/* 0 and *val if present, -ENODATA if not. */
int u64map_get(const struct u64map *m, uint64_t k, uint64_t *val);
/* Insert or replace; 0 or -ENOMEM (the map is unchanged then). */
int u64map_put(struct u64map *m, uint64_t k, uint64_t val);
/* Remove @k if present. */
void u64map_remove(struct u64map *m, uint64_t k);

#endif
