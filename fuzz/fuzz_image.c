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
 *   - thin_check's engine (tm_check): the whole check, --skip-mappings,
 *     -m, --super-block-only;
 *   - thin_explore's decoders: the field tables (tm_block_field_at on
 *     any block as each kind), the cursor over each device's mappings,
 *     the reference searches (tm_find_meta_refs, tm_find_data_refs).
 *
 * Invariants (each broken one aborts, see fuzz.h): nothing is written to
 * the device; a failure comes with an error code and a message, and is
 * never "out of memory" (the inputs are small: memory must be bounded by
 * what is on the device, not by what its fields claim); the IR
 * follows its grammar; a dump that succeeds has ended its superblock; the
 * def/ref form and --expand-shared describe the same mappings, as do a
 * --dev-id dump and the full one, and --skip-mappings lists the same
 * devices.  The checker: every finding is in the table, formats to one
 * line, and its node path encodes and decodes back; it repairs nothing
 * unasked; a whole check that finds nothing fatal means tm_view_live and
 * the dump succeed and list as many devices (and -m / --skip-mappings
 * likewise for their dumps).  The decoders answer for every byte with a
 * field inside the block.  The cursor's keys ascend, backwards is the
 * reverse of forwards, a seek lands on the first key at or after the one
 * asked, and when the dump succeeded it sees exactly the dump's mappings.
 * Every reference reported is there (the holder has that key and value at
 * that slot); on metadata the checker passes, a device's root is found;
 * a data search that read everything finds exactly the dump's mappings
 * of the block.
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
#include "thinmeta/check.h"
#include "thinmeta/cursor.h"
#include "thinmeta/dump.h"
#include "thinmeta/fields.h"
#include "thinmeta/metadata.h"
#include "thinmeta/node_path.h"
#include "thinmeta/refs.h"
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

static struct dump_result res[NR_COMBOS];

static void exercise_dumps(struct tm_bm *bm, const struct fz_image *img)
{
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
}

/* ---------------------------------------------------------------- checker */

/*
 * thin_check's engine (tm_check), as thin_check runs it: the whole check,
 * --skip-mappings, -m (the held snapshot's trees), --super-block-only.
 * Every finding must format to one line, its node path must encode and
 * decode back (thin_explore -p), and a check that finds nothing fatal
 * must mean the matching thin_dump reads the metadata.
 */
enum { K_FULL, K_SKIP, K_SNAP, K_SB, NR_CHECKS };

struct check_ctx {
	uint64_t nr_problems;
	const char *label;
};

static void check_problem(void *ctx, const struct tm_problem *p)
{
	struct check_ctx *cc = ctx;
	char line[1024];

	if ((unsigned)p->code >= TM_PR__COUNT || (unsigned)p->severity >= TM_SEV__COUNT ||
	    (unsigned)p->tree >= TM_TREE__COUNT || (unsigned)p->kind >= TM_KIND__COUNT)
		fz_bug("%s: a finding out of the table (code %d, severity %d, tree %d, kind %d)",
		       cc->label, (int)p->code, (int)p->severity, (int)p->tree, (int)p->kind);
	if (p->severity < tm_problem_info(p->code)->severity)
		fz_bug("%s: finding %s reported below its severity", cc->label,
		       tm_problem_info(p->code)->name);
	size_t n = tm_problem_format(p, line, sizeof(line));
	if (!n || strlen(line) != (n < sizeof(line) ? n : sizeof(line) - 1) || strchr(line, '\n'))
		fz_bug("%s: finding %s does not format to one line", cc->label,
		       tm_problem_info(p->code)->name);
	if (p->path_len > TM_MAX_PATH || (p->path_len && !p->path))
		fz_bug("%s: node path of %u blocks", cc->label, p->path_len);
	if (p->path_len && p->path_len <= TM_NODE_PATH_MAX) {
		char text[4 * ((2 + 9 * TM_MAX_PATH + 2) / 3) + 1];
		uint64_t back[TM_NODE_PATH_MAX + 1];
		unsigned len;
		struct tm_error e;
		if (tm_node_path_encode(p->path, p->path_len, text, sizeof(text)))
			fz_bug("%s: node path of %u blocks does not encode", cc->label, p->path_len);
		tm_error_clear(&e);
		if (tm_node_path_decode(text, back, TM_NODE_PATH_MAX + 1, &len, &e))
			fz_bug("%s: node path %s does not decode: %s", cc->label, text, e.msg);
		/* 1.1.0 leaves out a leading superblock (block 0) */
		unsigned skip = p->path[0] == 0 && len == p->path_len - 1;
		if (len + skip != p->path_len ||
		    memcmp(back, p->path + skip, len * sizeof(*back)))
			fz_bug("%s: node path %s decodes to another path", cc->label, text);
	}
	cc->nr_problems++;
}

static void check_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	(void)done;
	(void)total;
}

static void check_phase(void *ctx, enum tm_check_phase phase)
{
	(void)ctx;
	if ((unsigned)phase > TM_PHASE_DONE)
		fz_bug("tm_check: phase %d", (int)phase);
}

static void check_repaired(void *ctx, const char *what)
{
	fz_bug("%s: repaired without being asked: %s", ((struct check_ctx *)ctx)->label, what);
}

/* The whole check ran and found nothing fatal. */
static int check_clean;

static void exercise_check(struct tm_bm *bm, const struct fz_image *img, int have_live)
{
	static const char *const labels[NR_CHECKS] = {
		"tm_check", "tm_check --skip-mappings", "tm_check -m", "tm_check --super-block-only",
	};
	/* the dumps whose success a clean check promises (without overrides) */
	static const int dump_of[NR_CHECKS] = { 0, C_SKIP, C_SNAP, -1 };

	for (int k = 0; k < NR_CHECKS; k++) {
		struct tm_check_opts o = { 0 };
		struct check_ctx cc = { 0, labels[k] };
		struct tm_check_callbacks cb = { &cc, check_problem, check_phase, check_progress,
						 check_repaired };
		struct tm_check_result cr;
		struct tm_error e;
		int r;

		o.skip_mappings = k == K_SKIP;
		o.metadata_snap = k == K_SNAP;
		o.sb_only = k == K_SB;
		memset(&cr, 0, sizeof(cr));
		tm_error_clear(&e);
		r = tm_check(bm, &o, &cb, &cr, &e);
		expect_error(r, &e, labels[k]);
		if (r)
			continue;
		uint64_t total = 0;
		for (int s = 0; s < TM_SEV__COUNT; s++)
			total += cr.nr_problems[s];
		if (total != cc.nr_problems)
			fz_bug("%s: %" PRIu64 " findings counted, %" PRIu64 " reported", labels[k],
			       total, cc.nr_problems);
		if (cr.repaired || cr.needs_check_cleared || cr.changed)
			fz_bug("%s: repaired, cleared or saw a change on a read-only check",
			       labels[k]);
		/* a superblock tm_view_live refuses is a fatal finding */
		if (k != K_SNAP && have_live && !cr.have_sb)
			fz_bug("%s could not read the superblock tm_view_live reads", labels[k]);
		/*
		 * (--super-block-only and --skip-mappings read what 1.1.0 reads
		 * and pass a superblock whose space map roots are out of range)
		 */
		if (k == K_FULL && !have_live && cr.have_sb && cr.complete &&
		    !cr.nr_problems[TM_SEV_FATAL])
			fz_bug("%s found nothing fatal in a superblock tm_view_live refuses",
			       labels[k]);
		if (!cr.have_sb || !cr.complete || cr.nr_problems[TM_SEV_FATAL])
			continue;
		if (k == K_FULL)
			check_clean = 1;
		/* nothing fatal: the dump thin_check vouches for must succeed */
		if (dump_of[k] < 0 || !have_live || (img->flags & (FZ_OPT_SET_TRANS | FZ_OPT_SET_NR_DATA | FZ_OPT_SET_DBS)) ||
		    (k == K_SNAP && (img->flags & FZ_OPT_SNAP_BLOCK)))
			continue;
		const struct dump_result *d = &res[dump_of[k]];
		if (d->r)
			fz_bug("%s found nothing fatal, but the dump failed (%d)", labels[k], d->r);
		if (k == K_FULL && !d->rec.overflow && cr.nr_devices != d->rec.nr_devs)
			fz_bug("%s counted %" PRIu64 " devices, the dump %zu", labels[k],
			       cr.nr_devices, d->rec.nr_devs);
	}
}

/* ---------------------------------------------------------------- decoders */

/*
 * thin_explore's hex view: any block, valid or not, decoded through the
 * field tables of fields.h as each kind of block.  The decoder must
 * answer for every byte (a field, or -ENODATA for padding) and never
 * point outside the block.
 */
#define MAX_DECODED_BLOCKS 6u
#define DECODE_STRIDE 251u

static void decode_at(enum tm_layout kind, const uint8_t *buf, const struct tm_struct *vs,
		      uint32_t off)
{
	struct tm_field_loc fl;
	int r;

	memset(&fl, 0xa5, sizeof(fl));
	r = tm_block_field_at(kind, buf, vs, off, &fl);
	if (r == -ENODATA)
		return;
	if (r)
		fz_bug("tm_block_field_at(%s, %u) returned %d", tm_layout_name(kind), off, r);
	if (!memchr(fl.name, '\0', sizeof(fl.name)) || !fl.name[0])
		fz_bug("tm_block_field_at(%s, %u): no name", tm_layout_name(kind), off);
	if (fl.offset > off || fl.size == 0 || off - fl.offset >= fl.size ||
	    fl.offset + (uint64_t)fl.size > TM_BLOCK_SIZE)
		fz_bug("tm_block_field_at(%s, %u): field %s at %u+%u does not cover the byte",
		       tm_layout_name(kind), off, fl.name, fl.offset, fl.size);
	if (fl.field) {
		const struct tm_field *f = fl.field;
		if (fl.st_offset + (uint64_t)f->offset + f->size > TM_BLOCK_SIZE)
			fz_bug("tm_block_field_at(%s, %u): field %s lies past the block",
			       tm_layout_name(kind), off, fl.name);
		(void)tm_field_get(f, buf + fl.st_offset);
		if ((unsigned)f->ref >= TM_REF__COUNT || strlen(tm_fref_name(f->ref)) > 18)
			fz_bug("tm_block_field_at(%s, %u): field %s names %d", tm_layout_name(kind),
			       off, fl.name, (int)f->ref);
	}
}

static void exercise_decoders(struct tm_bm *bm, const struct fz_image *img)
{
	static const enum tm_layout kinds[] = {
		TM_LAYOUT_SUPERBLOCK, TM_LAYOUT_NODE, TM_LAYOUT_BITMAP, TM_LAYOUT_INDEX,
	};
	static const struct tm_struct *const vstructs[] = {
		NULL, &tm_struct_mapping_value, &tm_struct_dev_root, &tm_struct_device_details,
		&tm_struct_index_entry, &tm_struct_ref_count, &tm_struct_block_value,
	};
	static uint8_t buf[TM_BLOCK_SIZE];
	size_t n = img->nr < MAX_DECODED_BLOCKS ? img->nr : MAX_DECODED_BLOCKS;
	size_t full = n ? (size_t)(img->param % n) : 0;

	for (size_t i = 0; i < n; i++) {
		struct tm_error e;
		uint64_t b = img->blocks[i];

		tm_error_clear(&e);
		if (tm_bm_read(bm, b, NULL, buf, &e)) {
			expect_error(-1, &e, "tm_bm_read(no validator)");
			continue;
		}
		(void)tm_block_identify(buf);
		uint32_t vsize = tm_le32(buf + TM_NODE_OFF_VALUE_SIZE);
		int leaf = !!(tm_le32(buf + TM_NODE_OFF_FLAGS) & TM_NODE_LEAF);
		const struct tm_struct *guess = tm_node_value_struct(vsize, leaf);
		if (guess && guess->size != vsize)
			fz_bug("tm_node_value_struct(%u) gave a structure of %u bytes", vsize,
			       guess->size);
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			size_t nv = kinds[k] == TM_LAYOUT_NODE ? sizeof(vstructs) / sizeof(vstructs[0]) : 1;
			for (size_t v = 0; v < nv; v++) {
				/*
				 * every byte of one block as one kind (as the hex view
				 * marks a block), a sample of the rest
				 */
				uint32_t step = i == full && k == (img->param >> 40) % 4 &&
						v == (b % nv) ? 1u : DECODE_STRIDE;
				for (uint32_t off = (uint32_t)(b % step); off < TM_BLOCK_SIZE; off += step)
					decode_at(kinds[k], buf, vstructs[v], off);
			}
		}
	}
}

/* ---------------------------------------------------------------- cursor */

/*
 * thin_explore's mapping pages: a cursor over each device's tree, forwards
 * then backwards.  Keys ascend; when the dump (--expand-shared) succeeded,
 * the cursor sees exactly its mappings; a seek lands on the first key at
 * or after the one asked for.
 */
#define MAX_CURSOR_ENTRIES 65536u
#define MAX_CURSOR_DEVICES 8u

struct entry {
	uint64_t key, value;
};

static int walk_cursor(struct tm_cursor *c, int backwards, struct entry *out, size_t max,
		       size_t *nr)
{
	struct tm_error e;
	int r;

	*nr = 0;
	tm_error_clear(&e);
	r = backwards ? tm_cursor_last(c, &e) : tm_cursor_first(c, &e);
	while (!r) {
		if (*nr == max)
			return 1;	/* too many: no comparison */
		out[(*nr)++] = (struct entry){ tm_cursor_key(c), tm_cursor_value64(c) };
		if (*nr > 1 && (backwards ? out[*nr - 1].key >= out[*nr - 2].key
					  : out[*nr - 1].key <= out[*nr - 2].key))
			fz_bug("tm_cursor: keys not in order (%" PRIu64 " after %" PRIu64 ")",
			       out[*nr - 1].key, out[*nr - 2].key);
		tm_error_clear(&e);
		r = backwards ? tm_cursor_prev(c, &e) : tm_cursor_next(c, &e);
	}
	if (r == -ENODATA)
		return 0;
	expect_error(r, &e, "tm_cursor");
	return r;
}

static const struct fz_dev_rec *dump_device(const struct fz_record *rec, uint64_t id)
{
	for (size_t i = 0; i < rec->nr_devs; i++)
		if (rec->devs[i].d.dev_id == id)
			return &rec->devs[i];
	return NULL;
}

static void exercise_cursor(struct tm_bm *bm, const struct tm_view *v, const struct fz_image *img)
{
	static struct entry fwd[MAX_CURSOR_ENTRIES], bwd[MAX_CURSOR_ENTRIES];
	const struct fz_record *dump = res[C_EXPAND].r ? NULL : &res[C_EXPAND].rec;
	struct tm_device *devs;
	uint64_t nr;
	struct tm_error e;

	if (dump && dump->overflow)
		dump = NULL;
	tm_error_clear(&e);
	if (tm_read_devices(bm, v, 0, &devs, &nr, &e))
		return;
	for (uint64_t i = 0; i < nr && i < MAX_CURSOR_DEVICES; i++) {
		struct tm_cursor c;
		size_t nf, nb;

		tm_cursor_init(&c, bm, devs[i].mapping_root, TM_VSIZE_U64);
		if (walk_cursor(&c, 0, fwd, MAX_CURSOR_ENTRIES, &nf))
			continue;
		if (walk_cursor(&c, 1, bwd, MAX_CURSOR_ENTRIES, &nb))
			continue;
		if (nf != nb)
			fz_bug("tm_cursor: %zu entries forwards, %zu backwards", nf, nb);
		for (size_t k = 0; k < nf; k++)
			if (fwd[k].key != bwd[nf - 1 - k].key || fwd[k].value != bwd[nf - 1 - k].value)
				fz_bug("tm_cursor: entry %zu differs forwards and backwards", k);

		/* a seek: the first key >= the one asked */
		uint64_t want = nf ? fwd[(img->param >> 16) % nf].key + ((img->param >> 8) & 1) : img->param;
		size_t at = 0;
		while (at < nf && fwd[at].key < want)
			at++;
		tm_error_clear(&e);
		int r = tm_cursor_seek(&c, want, &e);
		if (at == nf ? r != -ENODATA : r || tm_cursor_key(&c) != fwd[at].key)
			fz_bug("tm_cursor_seek(%" PRIu64 ") returned %d, expected entry %zu of %zu",
			       want, r, at, nf);

		const struct fz_dev_rec *d = dump ? dump_device(dump, devs[i].dev_id) : NULL;
		if (!dump)
			continue;
		if (!d)
			fz_bug("device %" PRIu64 " is in the device list but not in the dump",
			       devs[i].dev_id);
		size_t k = 0;
		for (size_t j = 0; j < d->nr; j++) {
			const struct fz_run *run = &dump->runs[d->first + j];
			for (uint64_t o = 0; o < run->len; o++, k++)
				if (k >= nf || fwd[k].key != run->origin + o ||
				    tm_bt_block(fwd[k].value) != run->data + o ||
				    tm_bt_time(fwd[k].value) != run->time)
					fz_bug("device %" PRIu64 ": the cursor's entry %zu differs from the dump",
					       devs[i].dev_id, k);
		}
		if (k != nf)
			fz_bug("device %" PRIu64 ": the cursor sees %zu mappings, the dump %zu",
			       devs[i].dev_id, nf, k);
	}
	free(devs);
}

/* ---------------------------------------------------------------- refs */

/*
 * thin_explore's "who points here": every reference reported must be
 * there (the holder read as a node has that value at that slot), and a
 * search that could read everything finds every mapping of a data block
 * that the dump shows, and no other.
 */
#define MAX_REFS 4096u

struct refs_ctx {
	struct tm_bm *bm;
	uint64_t target;
	int data;
	uint64_t nr, nr_live;
	struct entry found[64];	/* live mappings: (dev, key) */
	uint32_t found_time[64];
	size_t nr_found;
	int device_root_seen;
	uint64_t root_dev;
};

static int ref_fn(void *ctx, const struct tm_ref *r)
{
	struct refs_ctx *rc = ctx;
	static uint8_t buf[TM_BLOCK_SIZE];
	struct tm_error e;
	struct tm_node n;

	if (++rc->nr > MAX_REFS)
		return 1;
	if ((unsigned)r->tree >= TM_TREE__COUNT)
		fz_bug("refs: tree %d", (int)r->tree);
	if (r->kind == TM_REFBY_SUPERBLOCK) {
		if (r->path_len || r->slot >= TM_BLOCK_SIZE || rc->data)
			fz_bug("refs: a superblock reference with a path or past the block");
		return 0;
	}
	if (r->kind == TM_REFBY_INDEX_BLOCK) {
		if (r->path_len || r->slot >= TM_META_INDEX_ENTRIES || rc->data)
			fz_bug("refs: an index block reference with a path or past the index");
		return 0;
	}
	if (!r->path_len || r->path_len > TM_BTREE_MAX_DEPTH ||
	    r->path[r->path_len - 1] != r->holder || r->path_index[r->path_len - 1] != r->slot)
		fz_bug("refs: reference from block %" PRIu64 " with a path of %u blocks not ending there",
		       r->holder, r->path_len);
	tm_error_clear(&e);
	if (tm_bm_read(rc->bm, r->holder, &tm_node_validator, buf, &e))
		fz_bug("refs: holder %" PRIu64 " is not a node: %s", r->holder, e.msg);
	tm_node_view(buf, r->holder, &n);
	if (r->slot >= n.nr_entries || tm_node_key(&n, r->slot) != r->key)
		fz_bug("refs: holder %" PRIu64 " has no key %" PRIu64 " at entry %u", r->holder,
		       r->key, r->slot);
	uint64_t v = tm_node_value64(&n, r->slot);
	if (rc->data) {
		if (r->kind != TM_REFBY_MAPPING || tm_bt_block(v) != rc->target ||
		    tm_bt_time(v) != r->time)
			fz_bug("refs: block %" PRIu64 " entry %u does not map data block %" PRIu64,
			       r->holder, r->slot, rc->target);
		if (!r->snapshot) {
			rc->nr_live++;
			if (rc->nr_found < 64) {
				rc->found_time[rc->nr_found] = r->time;
				rc->found[rc->nr_found++] = (struct entry){ r->dev_id, r->key };
			}
		}
	} else {
		if (v != rc->target)
			fz_bug("refs: block %" PRIu64 " entry %u does not point at %" PRIu64,
			       r->holder, r->slot, rc->target);
		if (r->kind == TM_REFBY_DEVICE_ROOT && !r->snapshot && r->key == rc->root_dev)
			rc->device_root_seen = 1;
	}
	return 0;
}

static void exercise_refs(struct tm_bm *bm, const struct tm_view *v, const struct fz_image *img)
{
	const struct fz_record *dump = res[C_EXPAND].r || res[C_EXPAND].rec.overflow
				       ? NULL : &res[C_EXPAND].rec;
	struct tm_refs_stats st;
	struct tm_device *devs = NULL;
	uint64_t nr = 0;
	struct tm_error e;
	int r;

	/* metadata: a device's root (which must be found), and a block of the input */
	tm_error_clear(&e);
	if (tm_read_devices(bm, v, 0, &devs, &nr, &e))
		nr = 0;
	uint64_t targets[2] = {
		nr ? devs[img->param % nr].mapping_root : 0,
		img->nr ? img->blocks[(img->param >> 24) % img->nr] : 1,
	};
	for (int t = 0; t < 2; t++) {
		struct refs_ctx rc = { .bm = bm, .target = targets[t],
				       .root_dev = nr ? devs[img->param % nr].dev_id : 0 };
		memset(&st, 0, sizeof(st));
		r = tm_find_meta_refs(bm, targets[t], ref_fn, &rc, &st);
		if (r < 0)
			expect_error(r, &st.first_error, "tm_find_meta_refs");
		/*
		 * (on metadata the checker passes: a search walks each node once,
		 * so a node that is also part of another tree is not seen again)
		 */
		if (t == 0 && nr && !r && !st.unreadable && check_clean && !rc.device_root_seen)
			fz_bug("tm_find_meta_refs: device %" PRIu64 "'s root %" PRIu64 " not found",
			       rc.root_dev, targets[0]);
	}
	free(devs);

	/* data: a block the dump maps, and one the input names */
	uint64_t dtargets[2] = { img->param >> 32, img->param >> 32 };
	if (dump && dump->nr_runs)
		dtargets[0] = dump->runs[img->param % dump->nr_runs].data;
	for (int t = 0; t < 2; t++) {
		struct refs_ctx rc = { .bm = bm, .target = dtargets[t], .data = 1 };
		memset(&st, 0, sizeof(st));
		r = tm_find_data_refs(bm, dtargets[t], ref_fn, &rc, &st);
		if (r < 0)
			expect_error(r, &st.first_error, "tm_find_data_refs");
		if (r || st.unreadable || !dump)
			continue;
		/* the live mappings of the block: those of the dump */
		uint64_t want = 0;
		for (size_t i = 0; i < dump->nr_devs; i++) {
			const struct fz_dev_rec *d = &dump->devs[i];
			for (size_t j = 0; j < d->nr; j++) {
				const struct fz_run *run = &dump->runs[d->first + j];
				if (rc.target < run->data || rc.target - run->data >= run->len)
					continue;
				want++;
				uint64_t key = run->origin + (rc.target - run->data);
				int seen = rc.nr_found < 64 ? 0 : 1;
				for (size_t k = 0; k < rc.nr_found && !seen; k++)
					seen = rc.found[k].key == d->d.dev_id && rc.found[k].value == key &&
					       rc.found_time[k] == run->time;
				if (!seen)
					fz_bug("tm_find_data_refs(%" PRIu64 ") missed device %" PRIu64
					       " block %" PRIu64, rc.target, d->d.dev_id, key);
			}
		}
		if (want != rc.nr_live)
			fz_bug("tm_find_data_refs(%" PRIu64 "): %" PRIu64 " live mappings, the dump has %" PRIu64,
			       rc.target, rc.nr_live, want);
	}
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
	int have_live = !r;
	check_clean = 0;
	if (!r) {
		exercise_view(bm, &v, &img);
		exercise_sm(bm, TM_SM_METADATA, &v.sb.meta_sm, img.param);
		exercise_sm(bm, TM_SM_DATA, &v.sb.data_sm, img.param);
	}
	struct tm_view snap;
	tm_error_clear(&e);
	r = tm_view_snapshot(bm, 0, &snap, &e);
	expect_error(r, &e, "tm_view_snapshot");
	if (!r)
		exercise_view(bm, &snap, &img);

	exercise_dumps(bm, &img);
	exercise_check(bm, &img, have_live);
	exercise_decoders(bm, &img);
	if (have_live) {
		exercise_cursor(bm, &v, &img);
		exercise_refs(bm, &v, &img);
	}
	for (unsigned c = 0; c < NR_COMBOS; c++)
		fz_record_free(&res[c].rec);

	if (dev->writes)
		fz_bug("the read paths wrote %" PRIu64 " blocks", dev->writes);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	fz_image_free(&img);
	return 0;
}
