/*
 * fuzz_image_mutator.c - a structure-aware mutator for fuzz_image (linked
 * into the libFuzzer binary only: the replay test has no LLVMFuzzerMutate).
 *
 * libFuzzer's byte-level mutations mostly shift the records of the image
 * container (fuzz.h) out of frame.  This mutator works on the records: it
 * mutates one record's data within its block, the header, a record's block
 * number or seal, copies or drops a record, or makes a btree pointer or a
 * superblock root name another record's block.  One time in eight it
 * leaves the choice to libFuzzer's own mutators.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "thinmeta/format.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

#define MAX_RECS 512u

struct mrec {
	uint32_t block;
	uint8_t seal;
	uint16_t len;
	uint8_t *data;		/* malloc'd, TM_BLOCK_SIZE bytes */
};

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static size_t parse(const uint8_t *in, size_t size, struct mrec *recs)
{
	size_t n = 0, pos = FZ_HEADER_SIZE;
	struct fz_rec_header h;

	while (n < MAX_RECS && fz_next_record(in, size, &pos, &h)) {
		struct mrec *r = &recs[n];
		r->block = h.block;
		r->seal = h.seal;
		r->len = h.len;
		r->data = calloc(1, TM_BLOCK_SIZE);
		if (!r->data)
			break;
		memcpy(r->data, in + pos, r->len);
		pos += r->len;
		n++;
	}
	return n;
}

static size_t serialise(const uint8_t *header, const struct mrec *recs, size_t n,
			uint8_t *out, size_t max_size)
{
	size_t pos = FZ_HEADER_SIZE;

	if (max_size < FZ_HEADER_SIZE)
		return 0;
	memmove(out, header, FZ_HEADER_SIZE);
	for (size_t i = 0; i < n; i++) {
		if (pos + FZ_RECORD_HEADER + recs[i].len > max_size)
			return 0;
		tm_put_le32(out + pos, recs[i].block);
		out[pos + 4] = recs[i].seal;
		out[pos + 5] = (uint8_t)recs[i].len;
		out[pos + 6] = (uint8_t)(recs[i].len >> 8);
		memcpy(out + pos + FZ_RECORD_HEADER, recs[i].data, recs[i].len);
		pos += FZ_RECORD_HEADER + recs[i].len;
	}
	return pos;
}

/* Point a u64 somewhere in @r (a node's values, or a superblock root) at @target. */
static void splice_pointer(struct mrec *r, uint64_t target, uint32_t *s)
{
	uint8_t *b = r->data;
	size_t off;

	if (r->seal == 1 || r->seal == 5) {	/* superblock: held, mapping, details roots */
		static const size_t roots[] = { TM_SB_OFF_HELD_ROOT, TM_SB_OFF_MAPPING_ROOT,
						TM_SB_OFF_DETAILS_ROOT, TM_SB_OFF_DATA_SM + 16,
						TM_SB_OFF_META_SM + 16 };
		off = roots[rnd(s) % 5];
	} else {
		uint32_t nr = tm_le32(b + TM_NODE_OFF_NR_ENTRIES);
		uint32_t max = tm_le32(b + TM_NODE_OFF_MAX_ENTRIES);
		if (!nr || max > (TM_BLOCK_SIZE - TM_NODE_HEADER_SIZE) / 16)
			off = TM_NODE_HEADER_SIZE + 8 * (rnd(s) % 500);
		else
			off = TM_NODE_HEADER_SIZE + 8 * max + 8 * (rnd(s) % nr);
	}
	if (off + 8 > TM_BLOCK_SIZE)
		return;
	tm_put_le64(b + off, target);
	if (off + 8 > r->len)
		r->len = (uint16_t)(off + 8);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static struct mrec recs[MAX_RECS];
	uint8_t header[FZ_HEADER_SIZE];
	uint32_t s = seed | 1;
	size_t n, out = 0;

	if (size < FZ_HEADER_SIZE || rnd(&s) % 8 == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	memcpy(header, data, FZ_HEADER_SIZE);
	n = parse(data, size, recs);
	if (!n)
		return LLVMFuzzerMutate(data, size, max_size);

	struct mrec *r = &recs[rnd(&s) % n];
	switch (rnd(&s) % 10) {
	case 0:
	case 1:
	case 2:
	case 3:	/* the data of one record, within its block */
		r->len = (uint16_t)LLVMFuzzerMutate(r->data, r->len, TM_BLOCK_SIZE);
		break;
	case 4:	/* the header: size, dump options, cache, param */
		LLVMFuzzerMutate(header, FZ_HEADER_SIZE, FZ_HEADER_SIZE);
		break;
	case 5:	/* where a record goes, or how it is sealed */
		if (rnd(&s) & 1)
			r->block = recs[rnd(&s) % n].block + (rnd(&s) % 3) - 1;
		else
			r->seal = (uint8_t)(rnd(&s) % 10);
		break;
	case 6:	/* a copy of a record in another block */
		if (n < MAX_RECS) {
			struct mrec *c = &recs[n];
			c->data = malloc(TM_BLOCK_SIZE);
			if (c->data) {
				memcpy(c->data, r->data, TM_BLOCK_SIZE);
				c->len = r->len;
				c->seal = r->seal;
				c->block = rnd(&s) % (recs[n - 1].block + 16);
				n++;
			}
		}
		break;
	case 7:	/* drop a record */
		if (n > 1) {
			free(r->data);
			*r = recs[--n];
			recs[n].data = NULL;
		}
		break;
	default:	/* a pointer to another record's block */
		splice_pointer(r, recs[rnd(&s) % n].block, &s);
		break;
	}
	out = serialise(header, recs, n, data, max_size);
	for (size_t i = 0; i < n; i++) {
		free(recs[i].data);
		recs[i].data = NULL;
	}
	if (!out)
		return LLVMFuzzerMutate(data, size, max_size);
	return out;
}
