/*
 * unit_util.h - helpers for the engine's unit tests: hand-made blocks on an
 * in-memory device, and the kernel-written fixtures.
 */
#ifndef THINMETA_UNIT_UTIL_H
#define THINMETA_UNIT_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/block.h"
#include "thinmeta/btree.h"
#include "thinmeta/format.h"
#include "thinmeta/io.h"
#include "thinmeta/superblock.h"

static inline uint8_t *mem_block(struct tm_dev *dev, uint64_t b)
{
	return tm_dev_mem_data(dev) + b * TM_BLOCK_SIZE;
}

/* Write a btree node with @n keys and u64 values (or raw values) at @b. */
static inline void put_node(struct tm_dev *dev, uint64_t b, uint32_t flags,
			    uint32_t value_size, uint32_t n, const uint64_t *keys,
			    const void *values)
{
	uint8_t *p = mem_block(dev, b);
	uint32_t max = tm_node_max_entries(value_size);

	memset(p, 0, TM_BLOCK_SIZE);
	tm_put_le32(p + TM_NODE_OFF_FLAGS, flags);
	tm_put_le32(p + TM_NODE_OFF_NR_ENTRIES, n);
	tm_put_le32(p + TM_NODE_OFF_MAX_ENTRIES, max);
	tm_put_le32(p + TM_NODE_OFF_VALUE_SIZE, value_size);
	for (uint32_t i = 0; i < n; i++)
		tm_put_le64(p + TM_NODE_HEADER_SIZE + 8 * i, keys[i]);
	if (values)
		memcpy(p + TM_NODE_HEADER_SIZE + 8 * max, values, (size_t)n * value_size);
	tm_block_seal(p, b, TM_SALT_BTREE_NODE);
}

static inline void put_u64_node(struct tm_dev *dev, uint64_t b, uint32_t flags,
				uint32_t n, const uint64_t *keys, const uint64_t *vals)
{
	uint8_t tmp[TM_BLOCK_SIZE];

	for (uint32_t i = 0; i < n; i++)
		tm_put_le64(tmp + 8 * i, vals[i]);
	put_node(dev, b, flags, 8, n, keys, tmp);
}

static inline void reseal(struct tm_dev *dev, uint64_t b, uint32_t salt)
{
	tm_block_seal(mem_block(dev, b), b, salt);
}

/* Path of an uncompressed kernel fixture, or NULL (test skipped). */
static inline const char *fixture(const char *name)
{
	static char path[4096];
	const char *dir = getenv("THINMETA_FIXTURES");

	if (!dir)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return path;
}

/* Run one suite and return the process's exit status. */
static inline int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
