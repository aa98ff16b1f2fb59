/*
 * fuzz_xml.c - libFuzzer target: thin_restore's path.  The input is an XML
 * document; it goes through restore/xml_read.c into the engine's metadata
 * builder on an in-memory device, as thin_restore does.
 *
 * Invariants (each broken one aborts, see fuzz.h):
 *   - a refused document is refused with a message (the XML's own, or the
 *     builder's), never for want of memory, and the device is left without
 *     a valid superblock;
 *   - the builder never accepts what the IR forbids (a ref to an unknown
 *     def, a def name given twice);
 *   - a document that is accepted gives metadata that thin_dump reads back,
 *     in the def/ref form and expanded, saying exactly what the document
 *     said: superblock fields, device details, every mapping.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "thinmeta/builder.h"
#include "thinmeta/dump.h"
#include "thinmeta/format.h"
#include "thinmeta/metadata.h"
#include "xml_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEV_BLOCKS 512u	/* 2 MiB of metadata */
#define CACHE_BLOCKS 32u	/* 128 KiB */

static int input_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-xml", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

/* After a refused restore, block 0 must not be a valid superblock. */
static void expect_no_superblock(struct tm_bm *bm, const char *after)
{
	struct tm_superblock sb;
	struct tm_error e;

	tm_bm_invalidate(bm);
	tm_error_clear(&e);
	if (tm_read_superblock(bm, &sb, &e) == 0)
		fz_bug("a valid superblock was left behind after %s", after);
}

static void dump_back(struct tm_bm *bm, const struct fz_record *want, int expand)
{
	struct tm_dump_opts o = { 0 };
	struct fz_record got;
	struct tm_ir_sink sink;
	struct tm_error e;
	int r;

	o.expand_shared = expand;
	fz_record_init(&got, NULL, 1);
	fz_record_sink(&got, &sink);
	tm_bm_invalidate(bm);
	tm_error_clear(&e);
	r = tm_dump(bm, &o, &sink, &e);
	if (r)
		fz_bug("the restored metadata does not dump%s: %s", expand ? " (expanded)" : "",
		       e.msg);
	fz_record_expect_same(want, &got, FZ_CMP_SB | FZ_CMP_DETAILS | FZ_CMP_RUNS,
			      expand ? "XML against its restore, expanded"
				     : "XML against its restore");
	fz_record_free(&got);
}

static struct tm_dev *dev;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tm_bm *bm;
	struct tm_builder *b;
	struct tm_error e;
	struct tm_ir_sink bsink, sink;
	struct fz_record rec;
	struct xml_error xerr;
	int fd, r;

	/* one device for all runs (an mmap per run is slow), zeroed each time */
	if (!dev && tm_dev_mem_create(DEV_BLOCKS, &dev))
		abort();
	memset(tm_dev_mem_data(dev), 0, (size_t)DEV_BLOCKS * TM_BLOCK_SIZE);
	if (tm_bm_create(dev, CACHE_BLOCKS, &bm))
		abort();
	tm_error_clear(&e);
	if (tm_builder_create(bm, NULL, &b, &e))
		fz_bug("tm_builder_create failed: %s", e.msg);
	tm_builder_sink(b, &bsink);
	fz_record_init(&rec, &bsink, 0);
	fz_record_sink(&rec, &sink);

	fd = input_fd(data, size);
	memset(&xerr, 0, sizeof(xerr));
	r = xml_read(fd, &sink, NULL, &xerr);
	close(fd);
	if (r) {
		if (xerr.sink_err) {
			const struct tm_error *be = tm_builder_error(b);
			if (!be->err || !be->msg[0])
				fz_bug("the builder refused the XML (%d) without a message",
				       xerr.sink_err);
			if (be->err == -ENOMEM)
				fz_bug("the builder ran out of memory: %s", be->msg);
		} else if (!xerr.msg[0]) {
			fz_bug("the XML was refused without a message");
		}
		expect_no_superblock(bm, "a refused document");
		goto out;
	}
	if (!rec.done)
		fz_bug("xml_read succeeded without a complete document");
	tm_error_clear(&e);
	r = tm_builder_finish(b, &e);
	if (r) {
		if (!e.err || !e.msg[0])
			fz_bug("tm_builder_finish failed (%d) without a message", r);
		if (r == -ENOMEM)
			fz_bug("tm_builder_finish ran out of memory: %s", e.msg);
		expect_no_superblock(bm, "a failed tm_builder_finish");
		goto out;
	}
	if (rec.invalid)
		fz_bug("the builder accepted a ref to an unknown def or a def given twice");
	if (dev->nr_blocks != DEV_BLOCKS)
		fz_bug("the device changed size");
	dump_back(bm, &rec, 0);
	dump_back(bm, &rec, 1);
out:
	fz_record_free(&rec);
	tm_builder_destroy(b);
	tm_bm_destroy(bm);
	return 0;
}
