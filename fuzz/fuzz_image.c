/*
 * fuzz_image.c - libFuzzer target: an arbitrary metadata image (in the
 * container of fuzz.h) on a read-only in-memory device, through the read
 * paths that thin_dump and the other read-only tools rely on:
 *
 *   - the live view and the held metadata snapshot's view, the device
 *     list (with and without the mapping tree), btree lookups;
 *   - both space maps: index, bitmaps, overflow ref-count tree;
 *   - tm_dump with every combination of -m, --skip-mappings,
 *     --expand-shared and --dev-id, with the superblock overrides the
 *     input selects, into thin_dump's XML and human-readable writers.
 *
 * Invariants (each broken one aborts, see fuzz.h): nothing is written to
 * the device; a failure comes with an error code and a message, and is
 * never "out of memory" (the inputs are small: memory must be bounded by
 * what is on the device, not by what its fields claim); the IR
 * follows its grammar; a dump that succeeds has ended its superblock; the
 * def/ref form and --expand-shared describe the same mappings, as do a
 * --dev-id dump and the full one, and --skip-mappings lists the same
 * devices.
 *
 * TODO (docs/fuzzing.md): add thin_check's engine entry point, thin_ls,
 * thin_delta, thin_rmap and the browser's decoders once they are committed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emit.h"
#include "fuzz.h"
#include "thinmeta/btree.h"
#include "thinmeta/dump.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SM_GETS 512u

static int null_fd = -1;

/* A failed engine call must say what failed. */
static void expect_error(int r, const struct tm_error *e, const char *what)
{
	if (r > 0)
		fz_bug("%s returned %d", what, r);
	if (r < 0 && (e->err == 0 || e->msg[0] == '\0'))
		fz_bug("%s failed (%d) without an error message", what, r);
	/* inputs are small: running out of memory means an unbounded allocation */
	if (r == -ENOMEM || e->err == -ENOMEM)
		fz_bug("%s ran out of memory: %s", what, e->msg);
}

/* ---------------------------------------------------------------- views */

static void exercise_view(struct tm_bm *bm, const struct tm_view *v, const struct fz_image *img)
{
	struct tm_error e;
	struct tm_device *devs;
	uint64_t nr;
	uint8_t val[TM_VSIZE_DETAILS];
	int r;

	for (int details_only = 0; details_only < 2; details_only++) {
		tm_error_clear(&e);
		r = tm_read_devices(bm, v, details_only, &devs, &nr, &e);
		expect_error(r, &e, "tm_read_devices");
		if (!r) {
			for (uint64_t i = 1; i < nr; i++)
				if (devs[i - 1].dev_id >= devs[i].dev_id)
					fz_bug("tm_read_devices: ids not ascending");
			free(devs);
		}
	}
	uint64_t keys[3] = { img->param & 0xff, (img->param >> 8) & 0xff, img->param >> 32 };
	for (int i = 0; i < 3; i++) {
		tm_error_clear(&e);
		r = tm_btree_lookup(bm, v->sb.details_root, TM_VSIZE_DETAILS, keys[i], val, &e);
		if (r != -ENODATA)
			expect_error(r, &e, "tm_btree_lookup(details)");
		tm_error_clear(&e);
		r = tm_btree_lookup(bm, v->sb.mapping_root, TM_VSIZE_U64, keys[i], val, &e);
		if (r != -ENODATA)
			expect_error(r, &e, "tm_btree_lookup(mapping)");
	}
}

static void exercise_sm(struct tm_bm *bm, enum tm_sm_kind kind, const struct tm_sm_root *root,
			uint64_t param)
{
	struct tm_sm_disk sm;
	struct tm_error e;
	uint32_t count;
	int r;

	tm_error_clear(&e);
	r = tm_sm_disk_open(bm, kind, root, &sm, &e);
	expect_error(r, &e, "tm_sm_disk_open");
	if (r)
		return;
	uint64_t n = root->nr_blocks;
	uint64_t step = n / MAX_SM_GETS + 1;
	for (uint64_t b = 0; b < n; b += step) {
		tm_error_clear(&e);
		r = tm_sm_disk_get(bm, &sm, b, &count, &e);
		expect_error(r, &e, "tm_sm_disk_get");
	}
	tm_error_clear(&e);
	r = tm_sm_disk_get(bm, &sm, param, &count, &e);
	expect_error(r, &e, "tm_sm_disk_get");
	if (param >= n && r != -ERANGE)
		fz_bug("tm_sm_disk_get past the end returned %d", r);
	tm_sm_disk_close(&sm);
}

/* ---------------------------------------------------------------- dumps */

enum {
	C_SNAP = 1, C_SKIP = 2, C_EXPAND = 4, C_FILTER = 8, NR_COMBOS = 16
};

struct dump_result {
	int r;
	struct fz_record rec;
};

static void one_dump(struct tm_bm *bm, const struct fz_image *img, unsigned c,
		     struct dump_result *res)
{
	uint64_t ids[3] = { img->param & 0xff, (img->param >> 8) & 0xff, img->param >> 32 };
	struct tm_dump_opts o = { 0 };
	struct outbuf ob;
	struct emitter em = { &ob, 0 };
	struct tm_ir_sink out, sink;
	struct tm_error e;

	o.metadata_snap = !!(c & C_SNAP);
	o.snap_block = (c & C_SNAP) && (img->flags & FZ_OPT_SNAP_BLOCK) ? img->param : 0;
	o.skip_mappings = !!(c & C_SKIP);
	o.expand_shared = !!(c & C_EXPAND);
	if (c & C_FILTER) {
		o.dev_ids = ids;
		o.nr_dev_ids = 3;
	}
	o.set_transaction_id = !!(img->flags & FZ_OPT_SET_TRANS);
	o.transaction_id = img->param;
	o.set_nr_data_blocks = !!(img->flags & FZ_OPT_SET_NR_DATA);
	o.nr_data_blocks = img->param;
	o.set_data_block_size = !!(img->flags & FZ_OPT_SET_DBS);
	o.data_block_size = (uint32_t)img->param;

	if (ob_open_fd(&ob, null_fd, 1u << 16))
		abort();
	if (c % 3 == 0)
		emit_human_sink(&em, &out);
	else
		emit_xml_sink(&em, &out);
	fz_record_init(&res->rec, &out, 1);
	fz_record_sink(&res->rec, &sink);
	tm_error_clear(&e);
	res->r = tm_dump(bm, &o, &sink, &e);
	if (ob.err)
		fz_bug("writing to /dev/null failed: %d", ob.err);
	expect_error(res->r, &e, "tm_dump");
	if (!res->r && !res->rec.done)
		fz_bug("tm_dump succeeded without ending the superblock");
	if (o.skip_mappings && res->rec.nr_runs)
		fz_bug("tm_dump --skip-mappings gave mappings");
	ob_flush(&ob);
	ob_free(&ob);
}

/* Every device of @part appears in @full with the same content. */
static void expect_subset(const struct fz_record *part, const struct fz_record *full,
			  const char *label)
{
	if (part->overflow || full->overflow)
		return;
	for (size_t i = 0; i < part->nr_devs; i++) {
		const struct fz_dev_rec *p = &part->devs[i];
		size_t j = 0;
		while (j < full->nr_devs && full->devs[j].d.dev_id != p->d.dev_id)
			j++;
		if (j == full->nr_devs)
			fz_bug("%s: device %" PRIu64 " is not in the full dump", label, p->d.dev_id);
		const struct fz_dev_rec *f = &full->devs[j];
		if (p->nr != f->nr)
			fz_bug("%s: device %" PRIu64 " has %zu runs, %zu in the full dump", label,
			       p->d.dev_id, p->nr, f->nr);
		for (size_t k = 0; k < p->nr; k++) {
			const struct fz_run *x = &part->runs[p->first + k], *y = &full->runs[f->first + k];
			if (x->origin != y->origin || x->data != y->data || x->len != y->len ||
			    x->time != y->time)
				fz_bug("%s: device %" PRIu64 " run %zu differs from the full dump",
				       label, p->d.dev_id, k);
		}
	}
}

static void exercise_dumps(struct tm_bm *bm, const struct fz_image *img)
{
	static struct dump_result res[NR_COMBOS];

	for (unsigned c = 0; c < NR_COMBOS; c++)
		one_dump(bm, img, c, &res[c]);
	for (unsigned snap = 0; snap < 2; snap++) {
		struct dump_result *plain = &res[snap], *expand = &res[snap | C_EXPAND],
				   *skip = &res[snap | C_SKIP];
		if (!plain->r && !expand->r)
			fz_record_expect_same(&plain->rec, &expand->rec,
					      FZ_CMP_SB | FZ_CMP_DETAILS | FZ_CMP_RUNS,
					      "def/ref form against --expand-shared");
		if (!plain->r && !skip->r)
			fz_record_expect_same(&plain->rec, &skip->rec, FZ_CMP_SB | FZ_CMP_DETAILS,
					      "devices against --skip-mappings");
		for (unsigned f = 0; f < 2; f++) {
			struct dump_result *part = &res[snap | C_FILTER | (f ? C_EXPAND : 0)];
			if (!part->r && !plain->r)
				expect_subset(&part->rec, &plain->rec, "--dev-id dump");
		}
	}
	for (unsigned c = 0; c < NR_COMBOS; c++)
		fz_record_free(&res[c].rec);
}

/* ---------------------------------------------------------------- entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_image img;
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct tm_view v;
	struct tm_error e;
	int r;

	if (null_fd < 0 && (null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		abort();
	if (fz_image_parse(data, size, &img))
		return 0;
	if (fz_dev_open(&img, &dev)) {
		fz_image_free(&img);
		return 0;
	}
	/*
	 * 32 blocks (128 KiB: the sanitizer's allocator serves that without an
	 * mmap per run), or 2..256 if the input asks, to exercise eviction
	 */
	if (tm_bm_create(dev, img.cache ? 1u + img.cache : 32u, &bm)) {
		tm_dev_close(dev);
		fz_image_free(&img);
		return 0;
	}

	tm_error_clear(&e);
	r = tm_view_live(bm, &v, &e);
	expect_error(r, &e, "tm_view_live");
	if (!r) {
		exercise_view(bm, &v, &img);
		exercise_sm(bm, TM_SM_METADATA, &v.sb.meta_sm, img.param);
		exercise_sm(bm, TM_SM_DATA, &v.sb.data_sm, img.param);
	}
	tm_error_clear(&e);
	r = tm_view_snapshot(bm, 0, &v, &e);
	expect_error(r, &e, "tm_view_snapshot");
	if (!r)
		exercise_view(bm, &v, &img);

	exercise_dumps(bm, &img);

	if (dev->writes)
		fz_bug("the read paths wrote %" PRIu64 " blocks", dev->writes);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	fz_image_free(&img);
	return 0;
}
