/*
 * block.c - block validators and the block manager (a read cache in front
 * of the device; every block is validated where it is read).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/block.h"
#include "thinmeta/crc32c.h"
#include "thinmeta/format.h"

/* ------------------------------------------------------------------ */
/* Checksums */

uint32_t tm_block_crc(const void *buf)
{
	return tm_crc32c(0xffffffffu, (const uint8_t *)buf + 4, TM_BLOCK_SIZE - 4);
}

void tm_block_seal(void *buf, uint64_t block, uint32_t salt)
{
	tm_put_le64((uint8_t *)buf + 8, block);
	tm_put_le32(buf, tm_block_crc(buf) ^ salt);
}

int tm_block_is_zero(const void *buf)
{
	const uint64_t *w = buf;

	for (unsigned i = 0; i < TM_BLOCK_SIZE / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Validators */

static int node_header(const void *buf, uint64_t b, struct tm_error *e)
{
	const uint8_t *p = buf;
	uint32_t flags = tm_le32(p + TM_NODE_OFF_FLAGS);
	uint32_t nr = tm_le32(p + TM_NODE_OFF_NR_ENTRIES);
	uint32_t max = tm_le32(p + TM_NODE_OFF_MAX_ENTRIES);
	uint32_t vsize = tm_le32(p + TM_NODE_OFF_VALUE_SIZE);
	uint32_t kind = flags & (TM_NODE_INTERNAL | TM_NODE_LEAF);

	if (kind != TM_NODE_INTERNAL && kind != TM_NODE_LEAF)
		return tm_fail(e, -EUCLEAN, TM_RULE_NODE_FLAGS, b,
			       "block %llu: btree node flags %u are neither internal nor leaf",
			       (unsigned long long)b, flags);
	if (vsize == 0 || vsize > TM_BLOCK_SIZE ||
	    (uint64_t)max * (8 + vsize) + TM_NODE_HEADER_SIZE > TM_BLOCK_SIZE)
		return tm_fail(e, -EUCLEAN, TM_RULE_MAX_ENTRIES, b,
			       "block %llu: btree node max_entries %u with value_size %u does not fit a block",
			       (unsigned long long)b, max, vsize);
	if (nr > max)
		return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, b,
			       "block %llu: btree node nr_entries %u exceeds max_entries %u",
			       (unsigned long long)b, nr, max);
	return 0;
}

const struct tm_validator tm_sb_validator = { "superblock", TM_SALT_SUPERBLOCK, NULL };
const struct tm_validator tm_node_validator = { "btree node", TM_SALT_BTREE_NODE, node_header };
const struct tm_validator tm_bitmap_validator = { "space map bitmap", TM_SALT_BITMAP, NULL };
const struct tm_validator tm_index_validator = { "space map index", TM_SALT_INDEX, NULL };

int tm_block_validate(const struct tm_validator *v, const void *buf,
		      uint64_t block, struct tm_error *e)
{
	return tm_block_validate_crc(v, buf, block, tm_block_crc(buf), e);
}

int tm_block_validate_crc(const struct tm_validator *v, const void *buf,
			  uint64_t block, uint32_t crc, struct tm_error *e)
{
	uint32_t stored = tm_le32(buf);
	uint64_t self = tm_le64((const uint8_t *)buf + 8);

	if ((crc ^ v->salt) != stored) {
		if (tm_block_is_zero(buf))
			return tm_fail(e, -EILSEQ, TM_RULE_ZEROED, block,
				       "block %llu: %s is all zeroes",
				       (unsigned long long)block, v->name);
		return tm_fail(e, -EILSEQ, TM_RULE_CHECKSUM, block,
			       "block %llu: bad checksum in %s",
			       (unsigned long long)block, v->name);
	}
	if (self != block)
		return tm_fail(e, -ENOTBLK, TM_RULE_BLOCKNR, block,
			       "block %llu: %s says it is block %llu",
			       (unsigned long long)block, v->name,
			       (unsigned long long)self);
	if (v->check_header)
		return v->check_header(buf, block, e);
	return 0;
}

const struct tm_validator *tm_block_identify(const void *buf)
{
	static const struct tm_validator *const all[] = {
		&tm_sb_validator, &tm_node_validator, &tm_bitmap_validator,
		&tm_index_validator,
	};
	uint32_t x = tm_block_crc(buf) ^ tm_le32(buf);

	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i]->salt == x)
			return all[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Block manager: a direct-mapped cache of recently read blocks. */

#define DEFAULT_CACHE_BLOCKS 1024u
#define NO_BLOCK UINT64_MAX

struct slot {
	uint64_t block;
	const struct tm_validator *valid_as;	/* already validated as */
};

struct tm_bm {
	struct tm_dev *dev;
	size_t nr_slots;
	struct slot *slots;
	uint8_t *data;
};

int tm_bm_create(struct tm_dev *dev, size_t cache_blocks, struct tm_bm **out)
{
	struct tm_bm *bm = calloc(1, sizeof(*bm));

	*out = NULL;
	if (!bm)
		return -ENOMEM;
	bm->dev = dev;
	bm->nr_slots = cache_blocks ? cache_blocks : DEFAULT_CACHE_BLOCKS;
	bm->slots = malloc(bm->nr_slots * sizeof(*bm->slots));
	bm->data = malloc(bm->nr_slots * TM_BLOCK_SIZE);
	if (!bm->slots || !bm->data) {
		tm_bm_destroy(bm);
		return -ENOMEM;
	}
	tm_bm_invalidate(bm);
	*out = bm;
	return 0;
}

void tm_bm_destroy(struct tm_bm *bm)
{
	if (!bm)
		return;
	free(bm->slots);
	free(bm->data);
	free(bm);
}

struct tm_dev *tm_bm_dev(struct tm_bm *bm)
{
	return bm->dev;
}

uint64_t tm_bm_nr_blocks(const struct tm_bm *bm)
{
	return bm->dev->nr_blocks;
}

void tm_bm_invalidate(struct tm_bm *bm)
{
	for (size_t i = 0; i < bm->nr_slots; i++) {
		bm->slots[i].block = NO_BLOCK;
		bm->slots[i].valid_as = NULL;
	}
}

static size_t slot_of(const struct tm_bm *bm, uint64_t b)
{
	return (size_t)((b * 0x9e3779b97f4a7c15ull) >> 32) % bm->nr_slots;
}

void tm_bm_forget(struct tm_bm *bm, uint64_t b)
{
	struct slot *s = &bm->slots[slot_of(bm, b)];

	if (s->block == b) {
		s->block = NO_BLOCK;
		s->valid_as = NULL;
	}
}

int tm_bm_read(struct tm_bm *bm, uint64_t b, const struct tm_validator *v,
	       void *buf, struct tm_error *e)
{
	size_t i = slot_of(bm, b);
	struct slot *s = &bm->slots[i];
	uint8_t *cached = bm->data + i * TM_BLOCK_SIZE;
	int r;

	if (b >= bm->dev->nr_blocks)
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, b,
			       "block %llu is past the end of the metadata device (%llu blocks)",
			       (unsigned long long)b,
			       (unsigned long long)bm->dev->nr_blocks);
	if (s->block != b) {
		r = tm_dev_read(bm->dev, b, 1, cached);
		if (r) {
			s->block = NO_BLOCK;
			return tm_fail(e, r, TM_RULE_IO, b, "block %llu: read failed: %s",
				       (unsigned long long)b, strerror(-r));
		}
		s->block = b;
		s->valid_as = NULL;
	}
	if (v && s->valid_as != v) {
		r = tm_block_validate(v, cached, b, e);
		if (r)
			return r;
		s->valid_as = v;
	}
	memcpy(buf, cached, TM_BLOCK_SIZE);
	return 0;
}

int tm_bm_write(struct tm_bm *bm, uint64_t b, const struct tm_validator *v,
		void *buf, struct tm_error *e)
{
	size_t i = slot_of(bm, b);
	struct slot *s = &bm->slots[i];
	int r;

	if (b >= bm->dev->nr_blocks)
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, b,
			       "block %llu is past the end of the metadata device (%llu blocks)",
			       (unsigned long long)b,
			       (unsigned long long)bm->dev->nr_blocks);
	if (v)
		tm_block_seal(buf, b, v->salt);
	r = tm_dev_write(bm->dev, b, 1, buf);
	if (r) {
		if (s->block == b)
			s->block = NO_BLOCK;
		return tm_fail(e, r, TM_RULE_IO, b, "block %llu: write failed: %s",
			       (unsigned long long)b, strerror(-r));
	}
	memcpy(bm->data + i * TM_BLOCK_SIZE, buf, TM_BLOCK_SIZE);
	s->block = b;
	s->valid_as = v;
	return 0;
}

int tm_bm_flush(struct tm_bm *bm, struct tm_error *e)
{
	int r = tm_dev_flush(bm->dev);

	if (r)
		return tm_fail(e, r, TM_RULE_IO, TM_NO_BLOCK, "flush failed: %s",
			       strerror(-r));
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define PREFETCH_MAX_RUN 64u	/* blocks per read */

/*
 * Read the blocks that are not cached yet in block order, contiguous ones
 * in one request, and put them in the cache (unvalidated: each is
 * validated when it is read).  At most half the cache is filled, so that
 * the blocks do not evict one another before they are used.
 */
void tm_bm_prefetch(struct tm_bm *bm, const uint64_t *blocks, size_t n)
{
	uint64_t *sorted;
	uint8_t *staging;
	size_t i, m = 0;

	if (n > bm->nr_slots / 2)
		n = bm->nr_slots / 2;
	if (n < 2)
		return;
	sorted = malloc(n * sizeof(*sorted));
	staging = malloc((size_t)PREFETCH_MAX_RUN * TM_BLOCK_SIZE);
	if (!sorted || !staging)
		goto out;
	for (i = 0; i < n; i++) {
		uint64_t b = blocks[i];
		if (b < bm->dev->nr_blocks && bm->slots[slot_of(bm, b)].block != b)
			sorted[m++] = b;
	}
	qsort(sorted, m, sizeof(*sorted), cmp_u64);
	for (i = 0; i < m;) {
		size_t j = i + 1;
		while (j < m && sorted[j] - sorted[i] < PREFETCH_MAX_RUN &&
		       sorted[j] <= sorted[j - 1] + 1)
			j++;
		uint64_t first = sorted[i];
		unsigned count = (unsigned)(sorted[j - 1] - first + 1);
		if (tm_dev_read(bm->dev, first, count, staging) == 0) {
			for (size_t k = i; k < j; k++) {
				uint64_t b = sorted[k];
				size_t slot = slot_of(bm, b);
				memcpy(bm->data + slot * TM_BLOCK_SIZE,
				       staging + (b - first) * TM_BLOCK_SIZE, TM_BLOCK_SIZE);
				bm->slots[slot].block = b;
				bm->slots[slot].valid_as = NULL;
			}
		}
		i = j;
	}
out:
	free(sorted);
	free(staging);
}
