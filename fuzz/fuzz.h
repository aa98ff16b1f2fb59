/*
 * fuzz.h - what the fuzz targets share: the image container (a sparse
 * metadata device described by the fuzz input) and the IR checker (a sink
 * that enforces the IR grammar, records what it was told in a canonical
 * form, and compares two recordings).
 *
 * The targets are built twice: with clang and libFuzzer (make fuzz), and
 * with the project's compiler into tests/unit/test_fuzz_replay, which runs
 * the seed corpus and every saved regression input through the same entry
 * function (LLVMFuzzerTestOneInput renamed by -D).  A broken invariant is
 * reported on stderr and abort()s: libFuzzer records the input, the replay
 * test fails.
 */
#ifndef THINMETA_FUZZ_H
#define THINMETA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "thinmeta/format.h"
#include "thinmeta/io.h"
#include "thinmeta/ir.h"

/* abort() with a message: an invariant of the code under test is broken. */
void fz_bug(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---------------------------------------------------------------- images */

/*
 * The image container (little-endian), mutation-friendly:
 *
 *   header, 16 bytes:
 *     u32 nr_blocks   device size in 4 KiB blocks; 0 = highest record + 1
 *     u8  flags       dump option bits (FZ_OPT_*)
 *     u8  cache       block manager cache: 0 the default, else 1 + cache
 *     u8  reserved[2]
 *     u64 param       override values, --dev-id list, expected snapshot block
 *   records, to the end of the input:
 *     u32 block       where the record goes (>= nr_blocks: dropped)
 *     u8  seal        0: as is; 1-4: seal (blocknr + checksum) as superblock,
 *                     btree node, bitmap, index; 5-8: checksum only, same
 *                     salts (the blocknr field is left as given); else as is
 *     u16 len         bytes of data (<= 4096), the rest of the block is zero
 *     u8  data[len]
 *
 * Sealing after the mutation keeps checksums valid, so the fuzzer reaches
 * the code behind the validators.  Blocks with no record read as zeroes.
 * A later record for the same block replaces an earlier one.
 */
#define FZ_HEADER_SIZE 16u
#define FZ_RECORD_HEADER 7u
#define FZ_MAX_RECORDS 4096u

/* A record's header, as read by fz_next_record(). */
struct fz_rec_header {
	uint32_t block;
	uint8_t seal;
	uint16_t len;		/* clipped to a block and to the bytes left */
};

/*
 * The record at in[*pos] of a container of @size bytes: 1 with its header
 * in @h and *pos moved to its data (h->len bytes follow), or 0 when fewer
 * than a header's bytes are left.  The decoder and the mutator read
 * records alike.
 */
static inline int fz_next_record(const uint8_t *in, size_t size, size_t *pos,
				 struct fz_rec_header *h)
{
	const uint8_t *p = in + *pos;

	if (size - *pos < FZ_RECORD_HEADER)
		return 0;
	h->block = tm_le32(p);
	h->seal = p[4];
	h->len = (uint16_t)(p[5] | p[6] << 8);
	*pos += FZ_RECORD_HEADER;
	if (h->len > TM_BLOCK_SIZE)
		h->len = TM_BLOCK_SIZE;
	if (h->len > size - *pos)
		h->len = (uint16_t)(size - *pos);
	return 1;
}

#define FZ_OPT_SET_TRANS	0x01u
#define FZ_OPT_SET_NR_DATA	0x02u
#define FZ_OPT_SET_DBS		0x04u
#define FZ_OPT_SNAP_BLOCK	0x08u	/* -m with an expected block */

struct fz_image {
	uint64_t nr_blocks;
	uint8_t flags;
	uint8_t cache;
	uint64_t param;
	size_t nr;		/* blocks present, ascending */
	uint64_t *blocks;
	uint8_t *data;		/* nr * 4096 bytes */
};

/* 0, or -1 if the input is too short for a header (or out of memory). */
int fz_image_parse(const uint8_t *in, size_t len, struct fz_image *img);
void fz_image_free(struct fz_image *img);
/*
 * A read-only device over @img (which must outlive it); writes fail with
 * -EROFS.  0 or a negative errno.
 */
int fz_dev_open(const struct fz_image *img, struct tm_dev **out);

/* ---------------------------------------------------------------- IR */

struct fz_run {
	uint64_t origin, data, len;
	uint32_t time;
};

struct fz_dev_rec {
	struct tm_ir_device d;
	size_t first, nr;	/* its runs in rec->runs, refs expanded */
};

struct fz_def_rec {
	char *name;
	size_t first, nr;	/* its runs in rec->def_runs */
};

struct fz_record {
	/* a sink to forward every event to first (NULL: none) */
	const struct tm_ir_sink *next;
	/*
	 * strict: a ref to an unknown def or a def name given twice is a bug
	 * of the producer (abort), and defs must come before the first device
	 * (ir.h); otherwise the recording is marked invalid, and a def may
	 * come between devices (the XML reader, as 1.1.0 accepts it).
	 */
	int strict;
	size_t max_runs;	/* past this, stop recording (overflow) */

	int state;
	int seen_device;
	int done;		/* superblock_end seen */
	int invalid;
	int overflow;
	struct tm_ir_superblock sb;
	struct fz_def_rec *defs;
	size_t nr_defs, cap_defs;
	struct fz_run *def_runs;
	size_t nr_def_runs, cap_def_runs;
	struct fz_dev_rec *devs;
	size_t nr_devs, cap_devs;
	struct fz_run *runs;
	size_t nr_runs, cap_runs;
	uint64_t nr_events;
};

void fz_record_init(struct fz_record *rec, const struct tm_ir_sink *next, int strict);
void fz_record_sink(struct fz_record *rec, struct tm_ir_sink *sink);
void fz_record_free(struct fz_record *rec);

#define FZ_CMP_SB	1u	/* time, transaction, data_block_size, nr_data_blocks */
#define FZ_CMP_DETAILS	2u	/* each device's mapped_blocks, transaction, times */
#define FZ_CMP_RUNS	4u	/* each device's mappings */

/* fz_bug() unless @a and @b say the same (both complete, neither overflowed). */
void fz_record_expect_same(const struct fz_record *a, const struct fz_record *b,
			   unsigned what, const char *label);

/* A sink that throws everything away. */
void fz_null_sink(struct tm_ir_sink *sink);

#endif
