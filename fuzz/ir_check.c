/*
 * ir_check.c - the fuzz targets' IR checker: a sink that enforces the IR
 * grammar of include/thinmeta/ir.h, records what it is told in a canonical
 * form (refs expanded, adjacent runs merged) and compares two recordings.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

enum { S_TOP, S_SB, S_DEF, S_DEV, S_AFTER };

static const char *const state_name[] = { "top", "superblock", "def", "device", "after" };

static void grammar(const struct fz_record *rec, const char *event)
{
	fz_bug("IR grammar: %s in state %s", event, state_name[rec->state]);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* Append @r to a run list whose current group started at @first, merging. */
static int append_run(struct fz_record *rec, struct fz_run **runs, size_t *nr,
		      size_t *cap, size_t first, const struct fz_run *r, int merge)
{
	if (merge && *nr > first) {
		struct fz_run *last = &(*runs)[*nr - 1];
		if (last->time == r->time && last->origin + last->len == r->origin &&
		    last->data + last->len == r->data) {
			last->len += r->len;
			return 0;
		}
	}
	if (*nr >= rec->max_runs) {
		rec->overflow = 1;
		return 0;
	}
	if (grow((void **)runs, cap, *nr + 1, sizeof(**runs))) {
		rec->overflow = 1;
		return 0;
	}
	(*runs)[(*nr)++] = *r;
	return 0;
}

static struct fz_def_rec *find_def(struct fz_record *rec, const char *name)
{
	for (size_t i = 0; i < rec->nr_defs; i++)
		if (!strcmp(rec->defs[i].name, name))
			return &rec->defs[i];
	return NULL;
}

/* ---------------------------------------------------------------- sink */

/* Forward an event to rec->next first; its failure stops the producer. */
#define FORWARD(rec, call)							\
	do {									\
		const struct tm_ir_sink *nx_ = (rec)->next;			\
		int fr_ = nx_ ? nx_->call : 0;					\
		if (fr_)							\
			return fr_;						\
	} while (0)

static int r_sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	struct fz_record *rec = ctx;

	rec->nr_events++;
	if (rec->state != S_TOP)
		grammar(rec, "superblock_begin");
	FORWARD(rec, superblock_begin(nx_->ctx, sb));
	rec->sb = *sb;
	rec->state = S_SB;
	return 0;
}

static int r_sb_end(void *ctx)
{
	struct fz_record *rec = ctx;

	rec->nr_events++;
	if (rec->state != S_SB)
		grammar(rec, "superblock_end");
	FORWARD(rec, superblock_end(nx_->ctx));
	rec->state = S_AFTER;
	rec->done = 1;
	return 0;
}

static int r_def_begin(void *ctx, const char *name)
{
	struct fz_record *rec = ctx;

	rec->nr_events++;
	/*
	 * ir.h puts every def before the first device, and tm_dump does; the
	 * XML reader passes defs on where the document has them, and thin
	 * restore accepts a def between devices as 1.1.0 does.
	 */
	if (rec->state != S_SB || (rec->strict && rec->seen_device))
		grammar(rec, "def_begin");
	if (!name)
		fz_bug("IR: def without a name");
	FORWARD(rec, def_begin(nx_->ctx, name));
	rec->state = S_DEF;
	if (find_def(rec, name)) {
		if (rec->strict)
			fz_bug("IR: def '%s' given twice", name);
		rec->invalid = 1;
	}
	if (grow((void **)&rec->defs, &rec->cap_defs, rec->nr_defs + 1, sizeof(*rec->defs))) {
		rec->overflow = 1;
		return 0;
	}
	struct fz_def_rec *d = &rec->defs[rec->nr_defs];
	d->name = strdup(name);
	if (!d->name) {
		rec->overflow = 1;
		return 0;
	}
	d->first = rec->nr_def_runs;
	d->nr = 0;
	rec->nr_defs++;
	return 0;
}

static int r_def_end(void *ctx)
{
	struct fz_record *rec = ctx;

	rec->nr_events++;
	if (rec->state != S_DEF)
		grammar(rec, "def_end");
	FORWARD(rec, def_end(nx_->ctx));
	rec->state = S_SB;
	if (rec->nr_defs)
		rec->defs[rec->nr_defs - 1].nr =
			rec->nr_def_runs - rec->defs[rec->nr_defs - 1].first;
	return 0;
}

static int r_dev_begin(void *ctx, const struct tm_ir_device *dev)
{
	struct fz_record *rec = ctx;

	rec->nr_events++;
	if (rec->state != S_SB)
		grammar(rec, "device_begin");
	FORWARD(rec, device_begin(nx_->ctx, dev));
	rec->state = S_DEV;
	rec->seen_device = 1;
	if (grow((void **)&rec->devs, &rec->cap_devs, rec->nr_devs + 1, sizeof(*rec->devs))) {
		rec->overflow = 1;
		return 0;
	}
	struct fz_dev_rec *d = &rec->devs[rec->nr_devs++];
	d->d = *dev;
	d->first = rec->nr_runs;
	d->nr = 0;
	return 0;
}

static int r_dev_end(void *ctx)
{
	struct fz_record *rec = ctx;

	rec->nr_events++;
	if (rec->state != S_DEV)
		grammar(rec, "device_end");
	FORWARD(rec, device_end(nx_->ctx));
	rec->state = S_SB;
	if (rec->nr_devs)
		rec->devs[rec->nr_devs - 1].nr =
			rec->nr_runs - rec->devs[rec->nr_devs - 1].first;
	return 0;
}

static size_t cur_dev_first(const struct fz_record *rec)
{
	return rec->nr_devs ? rec->devs[rec->nr_devs - 1].first : 0;
}

static int r_ref(void *ctx, const char *name)
{
	struct fz_record *rec = ctx;

	rec->nr_events++;
	if (rec->state != S_DEV)
		grammar(rec, "ref");
	if (!name)
		fz_bug("IR: ref without a name");
	FORWARD(rec, ref(nx_->ctx, name));
	struct fz_def_rec *d = find_def(rec, name);
	if (!d) {
		if (rec->strict && !rec->overflow)
			fz_bug("IR: ref to unknown def '%s'", name);
		rec->invalid = 1;
		return 0;
	}
	for (size_t i = 0; i < d->nr && !rec->overflow; i++) {
		struct fz_run r = rec->def_runs[d->first + i];
		append_run(rec, &rec->runs, &rec->nr_runs, &rec->cap_runs,
			   cur_dev_first(rec), &r, 1);
	}
	return 0;
}

static int r_run(void *ctx, const struct tm_ir_run *run)
{
	struct fz_record *rec = ctx;
	struct fz_run r = { run->origin_begin, run->data_begin, run->length, run->time };

	rec->nr_events++;
	if (rec->state != S_DEF && rec->state != S_DEV)
		grammar(rec, "run");
	FORWARD(rec, run(nx_->ctx, run));
	if (rec->strict && run->length == 0)
		fz_bug("IR: run of length 0 at origin %" PRIu64, run->origin_begin);
	if (rec->state == S_DEF)
		append_run(rec, &rec->def_runs, &rec->nr_def_runs, &rec->cap_def_runs,
			   rec->nr_def_runs, &r, 0);
	else
		append_run(rec, &rec->runs, &rec->nr_runs, &rec->cap_runs,
			   cur_dev_first(rec), &r, 1);
	return 0;
}

void fz_record_init(struct fz_record *rec, const struct tm_ir_sink *next, int strict)
{
	memset(rec, 0, sizeof(*rec));
	rec->next = next;
	rec->strict = strict;
	rec->max_runs = 1u << 20;
	rec->state = S_TOP;
}

void fz_record_sink(struct fz_record *rec, struct tm_ir_sink *sink)
{
	sink->ctx = rec;
	sink->superblock_begin = r_sb_begin;
	sink->superblock_end = r_sb_end;
	sink->def_begin = r_def_begin;
	sink->def_end = r_def_end;
	sink->device_begin = r_dev_begin;
	sink->device_end = r_dev_end;
	sink->ref = r_ref;
	sink->run = r_run;
}

void fz_record_free(struct fz_record *rec)
{
	for (size_t i = 0; i < rec->nr_defs; i++)
		free(rec->defs[i].name);
	free(rec->defs);
	free(rec->def_runs);
	free(rec->devs);
	free(rec->runs);
	memset(rec, 0, sizeof(*rec));
}

/* ---------------------------------------------------------------- compare */

static const struct fz_record *sort_rec;

static int cmp_dev_idx(const void *a, const void *b)
{
	uint64_t x = sort_rec->devs[*(const size_t *)a].d.dev_id;
	uint64_t y = sort_rec->devs[*(const size_t *)b].d.dev_id;

	if (x != y)
		return x < y ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Indexes of @rec's devices in ascending id order (malloc'd; NULL: no memory). */
static size_t *by_id(const struct fz_record *rec)
{
	size_t *idx = malloc((rec->nr_devs ? rec->nr_devs : 1) * sizeof(*idx));

	if (!idx)
		return NULL;
	for (size_t i = 0; i < rec->nr_devs; i++)
		idx[i] = i;
	sort_rec = rec;
	qsort(idx, rec->nr_devs, sizeof(*idx), cmp_dev_idx);
	return idx;
}

void fz_record_expect_same(const struct fz_record *a, const struct fz_record *b,
			   unsigned what, const char *label)
{
	size_t *ia, *ib;

	if (!a->done || !b->done || a->overflow || b->overflow)
		return;
	if (what & FZ_CMP_SB) {
		const struct tm_ir_superblock *x = &a->sb, *y = &b->sb;
		if (x->time != y->time || x->transaction != y->transaction ||
		    x->data_block_size != y->data_block_size ||
		    x->nr_data_blocks != y->nr_data_blocks)
			fz_bug("%s: superblocks differ (time %u/%u, transaction %" PRIu64 "/%" PRIu64
			       ", data_block_size %u/%u, nr_data_blocks %" PRIu64 "/%" PRIu64 ")",
			       label, x->time, y->time, x->transaction, y->transaction,
			       x->data_block_size, y->data_block_size, x->nr_data_blocks,
			       y->nr_data_blocks);
	}
	if (a->nr_devs != b->nr_devs)
		fz_bug("%s: %zu devices against %zu", label, a->nr_devs, b->nr_devs);
	ia = by_id(a);
	ib = by_id(b);
	if (!ia || !ib) {
		free(ia);
		free(ib);
		return;
	}
	for (size_t i = 0; i < a->nr_devs; i++) {
		const struct fz_dev_rec *x = &a->devs[ia[i]], *y = &b->devs[ib[i]];
		if (x->d.dev_id != y->d.dev_id)
			fz_bug("%s: device %" PRIu64 " against device %" PRIu64, label,
			       x->d.dev_id, y->d.dev_id);
		if ((what & FZ_CMP_DETAILS) &&
		    (x->d.mapped_blocks != y->d.mapped_blocks ||
		     x->d.transaction != y->d.transaction ||
		     x->d.creation_time != y->d.creation_time ||
		     x->d.snap_time != y->d.snap_time))
			fz_bug("%s: device %" PRIu64 " details differ", label, x->d.dev_id);
		if (!(what & FZ_CMP_RUNS))
			continue;
		if (x->nr != y->nr)
			fz_bug("%s: device %" PRIu64 " has %zu runs against %zu", label,
			       x->d.dev_id, x->nr, y->nr);
		for (size_t k = 0; k < x->nr; k++) {
			const struct fz_run *p = &a->runs[x->first + k], *q = &b->runs[y->first + k];
			if (p->origin != q->origin || p->data != q->data || p->len != q->len ||
			    p->time != q->time)
				fz_bug("%s: device %" PRIu64 " run %zu differs: %" PRIu64 "->%" PRIu64
				       " x%" PRIu64 " t%u against %" PRIu64 "->%" PRIu64 " x%" PRIu64
				       " t%u", label, x->d.dev_id, k, p->origin, p->data, p->len,
				       p->time, q->origin, q->data, q->len, q->time);
		}
	}
	free(ia);
	free(ib);
}

/* ---------------------------------------------------------------- null sink */

static int n_sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	(void)ctx;
	(void)sb;
	return 0;
}

static int n_void(void *ctx)
{
	(void)ctx;
	return 0;
}

static int n_name(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return 0;
}

static int n_dev(void *ctx, const struct tm_ir_device *d)
{
	(void)ctx;
	(void)d;
	return 0;
}

static int n_run(void *ctx, const struct tm_ir_run *r)
{
	(void)ctx;
	(void)r;
	return 0;
}

void fz_null_sink(struct tm_ir_sink *sink)
{
	sink->ctx = NULL;
	sink->superblock_begin = n_sb_begin;
	sink->superblock_end = n_void;
	sink->def_begin = n_name;
	sink->def_end = n_void;
	sink->device_begin = n_dev;
	sink->device_end = n_void;
	sink->ref = n_name;
	sink->run = n_run;
}
