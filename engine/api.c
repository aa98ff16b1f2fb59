/*
 * api.c - libthinmeta's stable API (include/thinmeta/thinmeta.h) over the
 * engine: a handle is an opened device, its block manager and one view
 * (live or held snapshot); the device list is read once and kept.
 *
 * Only the functions marked THINMETA_API are exported by the shared
 * library; everything else in the engine is compiled with hidden
 * visibility.  Nothing here prints.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "thinmeta/delta.h"
#include "thinmeta/format.h"
#include "thinmeta/io.h"
#include "thinmeta/metadata.h"
#include "thinmeta/thinmeta.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define API_LIB_VERSION \
	STR(THINMETA_VERSION_MAJOR) "." STR(THINMETA_VERSION_MINOR) "." STR(THINMETA_VERSION_PATCH)

_Static_assert(sizeof(struct thinmeta_error) == 260, "thinmeta_error is ABI");
_Static_assert(sizeof(struct thinmeta_run) == 32, "thinmeta_run is ABI");
_Static_assert(sizeof(struct thinmeta_device) == 72, "thinmeta_device is ABI");
_Static_assert(sizeof(struct thinmeta_delta) == 56, "thinmeta_delta is ABI");
_Static_assert(sizeof(struct thinmeta_info) == 144, "thinmeta_info is ABI");

struct thinmeta {
	char *path;
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct tm_view view;
	struct tm_superblock live;	/* the live superblock */
	struct thinmeta_device *devs;	/* read on first use */
	size_t nr_devs;
	int have_devs;
};

const char *thinmeta_version(void)
{
	return API_LIB_VERSION;
}

/* ------------------------------------------------------------------ */
/* errors */

static void err_clear(struct thinmeta_error *err)
{
	if (err) {
		err->code = 0;
		err->message[0] = '\0';
	}
}

static int err_set(struct thinmeta_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int err_set(struct thinmeta_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}

/* An engine error, with the path in front. */
static int err_engine(struct thinmeta_error *err, const struct thinmeta *md, int r,
		      const struct tm_error *e)
{
	const char *what = e->err && e->msg[0] ? e->msg : strerror(-r);

	return err_set(err, r, "%s: %s", md->path, what);
}

/* ------------------------------------------------------------------ */
/* opening */

int thinmeta_open(const char *path, unsigned flags, struct thinmeta **out,
		  struct thinmeta_error *err)
{
	struct thinmeta *md;
	struct tm_error e;
	int r;

	err_clear(err);
	if (!out)
		return err_set(err, -EINVAL, "thinmeta_open: no handle pointer given");
	*out = NULL;
	if (!path || !*path)
		return err_set(err, -EINVAL, "thinmeta_open: no path given");
	if (flags & ~(THINMETA_OPEN_SNAPSHOT | THINMETA_OPEN_SHARED))
		return err_set(err, -EINVAL, "thinmeta_open: unknown flags 0x%x",
			       flags & ~(THINMETA_OPEN_SNAPSHOT | THINMETA_OPEN_SHARED));
	md = calloc(1, sizeof(*md));
	if (!md || !(md->path = strdup(path))) {
		free(md);
		return err_set(err, -ENOMEM, "%s: out of memory", path);
	}

	unsigned dflags = (flags & (THINMETA_OPEN_SNAPSHOT | THINMETA_OPEN_SHARED)) ? 0 : TM_DEV_EXCL;
	r = tm_dev_open_file(path, dflags, &md->dev);
	if (r) {
		if (r == -EBUSY)
			err_set(err, r, "%s: the device is in use (by an active pool?); reserve a "
				"metadata snapshot and open it with THINMETA_OPEN_SNAPSHOT", path);
		else
			err_set(err, r, "%s: %s", path, strerror(-r));
		goto fail;
	}
	r = tm_bm_create(md->dev, 0, &md->bm);
	if (r) {
		err_set(err, r, "%s: out of memory", path);
		goto fail;
	}
	tm_error_clear(&e);
	r = tm_read_superblock(md->bm, &md->live, &e);
	if (!r)
		r = (flags & THINMETA_OPEN_SNAPSHOT) ? tm_view_snapshot(md->bm, 0, &md->view, &e)
						     : tm_view_live(md->bm, &md->view, &e);
	if (r) {
		err_engine(err, md, r, &e);
		goto fail;
	}
	*out = md;
	return 0;

fail:
	thinmeta_close(md);
	return r;
}

void thinmeta_close(struct thinmeta *md)
{
	if (!md)
		return;
	if (md->bm)
		tm_bm_destroy(md->bm);
	tm_dev_close(md->dev);
	free(md->devs);
	free(md->path);
	free(md);
}

int thinmeta_get_info(struct thinmeta *md, struct thinmeta_info *info)
{
	if (!md || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->transaction_id = md->view.sb.trans_id;
	info->time = md->view.sb.time;
	info->flags = md->live.flags & THINMETA_FLAG_NEEDS_CHECK;
	info->version = md->view.sb.version;
	info->data_block_size = md->live.data_block_size;
	info->nr_data_blocks = md->live.data_sm.nr_blocks;
	info->nr_metadata_blocks = md->live.meta_sm.nr_blocks;
	info->free_metadata_blocks = md->live.meta_sm.nr_blocks > md->live.meta_sm.nr_allocated
		? md->live.meta_sm.nr_blocks - md->live.meta_sm.nr_allocated : 0;
	info->held_root = md->live.held_root;
	info->is_snapshot = md->view.is_snapshot;
	memcpy(info->uuid, md->live.uuid, sizeof(info->uuid));
	return 0;
}

/* ------------------------------------------------------------------ */
/* devices */

static int load_devices(struct thinmeta *md, struct thinmeta_error *err)
{
	struct tm_device *devs = NULL;
	uint64_t nr = 0;
	struct tm_error e;
	int r;

	if (md->have_devs)
		return 0;
	tm_error_clear(&e);
	r = tm_read_devices(md->bm, &md->view, 0, &devs, &nr, &e);
	if (r)
		return err_engine(err, md, r, &e);
	md->devs = calloc(nr ? nr : 1, sizeof(*md->devs));
	if (!md->devs) {
		free(devs);
		return err_set(err, -ENOMEM, "%s: out of memory", md->path);
	}
	for (uint64_t i = 0; i < nr; i++) {
		struct thinmeta_device *d = &md->devs[i];
		d->dev_id = devs[i].dev_id;
		d->mapped_blocks = devs[i].details.mapped_blocks;
		d->transaction_id = devs[i].details.transaction_id;
		d->creation_time = devs[i].details.creation_time;
		d->snapshotted_time = devs[i].details.snapshotted_time;
		d->mapping_root = devs[i].mapping_root;
	}
	free(devs);
	md->nr_devs = (size_t)nr;
	md->have_devs = 1;
	return 0;
}

int thinmeta_devices(struct thinmeta *md, const struct thinmeta_device **devs, size_t *nr,
		     struct thinmeta_error *err)
{
	int r;

	err_clear(err);
	if (!md || !devs || !nr)
		return err_set(err, -EINVAL, "thinmeta_devices: a NULL argument");
	if ((r = load_devices(md, err)))
		return r;
	*devs = md->devs;
	*nr = md->nr_devs;
	return 0;
}

static const struct thinmeta_device *find_dev(const struct thinmeta *md, uint64_t dev_id)
{
	size_t lo = 0, hi = md->nr_devs;

	while (lo < hi) {	/* the list is in ascending id */
		size_t mid = lo + (hi - lo) / 2;
		if (md->devs[mid].dev_id == dev_id)
			return &md->devs[mid];
		if (md->devs[mid].dev_id < dev_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int lookup_dev(struct thinmeta *md, uint64_t dev_id, const struct thinmeta_device **d,
		      struct thinmeta_error *err)
{
	int r;

	if ((r = load_devices(md, err)))
		return r;
	*d = find_dev(md, dev_id);
	if (!*d)
		return err_set(err, -ENODATA, "%s: no thin device %llu in the %s", md->path,
			       (unsigned long long)dev_id,
			       md->view.is_snapshot ? "metadata snapshot" : "metadata");
	return 0;
}

int thinmeta_find_device(struct thinmeta *md, uint64_t dev_id, struct thinmeta_device *dev,
			 struct thinmeta_error *err)
{
	const struct thinmeta_device *d;
	int r;

	err_clear(err);
	if (!md || !dev)
		return err_set(err, -EINVAL, "thinmeta_find_device: a NULL argument");
	if ((r = lookup_dev(md, dev_id, &d, err)))
		return r;
	*dev = *d;
	return 0;
}

/* ------------------------------------------------------------------ */
/* runs */

struct run_ctx {
	thinmeta_run_fn fn;
	void *ctx;
	struct thinmeta_run cur;
	int have;
	int stopped;		/* the callback's non-zero value */
};

static int run_flush(struct run_ctx *rc)
{
	int r = 0;

	if (rc->have) {
		r = rc->fn(rc->ctx, &rc->cur);
		rc->have = 0;
		if (r)
			rc->stopped = r;
	}
	return r;
}

static int run_leaf(void *ctx, const struct tm_node *leaf)
{
	struct run_ctx *rc = ctx;

	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		uint64_t key = tm_node_key(leaf, i);
		uint64_t v = tm_node_value64(leaf, i);
		uint64_t data = v >> TM_TIME_BITS;
		uint32_t time = (uint32_t)(v & TM_TIME_MASK);
		struct thinmeta_run *c = &rc->cur;

		if (rc->have && key == c->thin_begin + c->length &&
		    data == c->data_begin + c->length && time == c->time) {
			c->length++;
			continue;
		}
		if (run_flush(rc))
			return 1;
		c->thin_begin = key;
		c->data_begin = data;
		c->length = 1;
		c->time = time;
		c->reserved = 0;
		rc->have = 1;
	}
	return 0;
}

/* @dev_id: the device the tree belongs to (named in errors), or UINT64_MAX. */
static int tree_runs(struct thinmeta *md, uint64_t root, uint64_t dev_id, thinmeta_run_fn fn,
		     void *ctx, struct thinmeta_error *err)
{
	struct run_ctx rc = { .fn = fn, .ctx = ctx };
	struct tm_error e;
	int r;

	tm_error_clear(&e);
	r = tm_btree_walk(md->bm, root, TM_VSIZE_U64, run_leaf, &rc, &e);
	if (r < 0) {
		if (dev_id != UINT64_MAX)
			tm_error_context(&e, "thin device %llu mapping tree",
					 (unsigned long long)dev_id);
		return err_engine(err, md, r, &e);
	}
	if (!r)
		run_flush(&rc);
	return rc.stopped;
}

int thinmeta_tree_runs(struct thinmeta *md, uint64_t root, thinmeta_run_fn fn, void *ctx,
		       struct thinmeta_error *err)
{
	err_clear(err);
	if (!md || !fn)
		return err_set(err, -EINVAL, "thinmeta_tree_runs: a NULL argument");
	return tree_runs(md, root, UINT64_MAX, fn, ctx, err);
}

int thinmeta_device_runs(struct thinmeta *md, uint64_t dev_id, thinmeta_run_fn fn, void *ctx,
			 struct thinmeta_error *err)
{
	const struct thinmeta_device *d;
	int r;

	err_clear(err);
	if (!md || !fn)
		return err_set(err, -EINVAL, "thinmeta_device_runs: a NULL argument");
	if ((r = lookup_dev(md, dev_id, &d, err)))
		return r;
	return tree_runs(md, d->mapping_root, dev_id, fn, ctx, err);
}

/* ------------------------------------------------------------------ */
/* delta: tm_delta's ranges (delta.h) */

struct delta_ctx {
	thinmeta_delta_fn fn;
	void *ctx;
	int stopped;
};

static int delta_cb(void *ctx, const struct tm_delta_range *rg)
{
	struct delta_ctx *dc = ctx;
	struct thinmeta_delta d;

	memset(&d, 0, sizeof(d));
	switch (rg->kind) {
	case TM_DELTA_LEFT_ONLY:
		d.kind = THINMETA_DELTA_LEFT_ONLY;
		d.left_data = rg->left_data;
		break;
	case TM_DELTA_RIGHT_ONLY:
		d.kind = THINMETA_DELTA_RIGHT_ONLY;
		d.right_data = rg->right_data;
		break;
	case TM_DELTA_DIFFERENT:
		d.kind = THINMETA_DELTA_DIFFERENT;
		d.left_data = rg->left_data;
		d.right_data = rg->right_data;
		break;
	default:
		d.kind = THINMETA_DELTA_SAME;
		d.left_data = rg->left_data;
		d.right_data = rg->right_data;
		break;
	}
	d.thin_begin = rg->begin;
	d.length = rg->length;
	dc->stopped = dc->fn(dc->ctx, &d);
	return dc->stopped ? 1 : 0;
}

static int delta_roots(struct thinmeta *md, uint64_t left, uint64_t right, unsigned flags,
		       thinmeta_delta_fn fn, void *ctx, struct thinmeta_error *err)
{
	if (flags & ~THINMETA_DELTA_SKIP_SAME)
		return err_set(err, -EINVAL, "thinmeta_delta: unknown flags 0x%x",
			       flags & ~THINMETA_DELTA_SKIP_SAME);
	struct delta_ctx dc = { .fn = fn, .ctx = ctx };
	struct tm_error e;
	int r;

	tm_error_clear(&e);
	r = tm_delta(md->bm, left, right,
		     (flags & THINMETA_DELTA_SKIP_SAME) ? TM_DELTA_SKIP_SAME : 0,
		     delta_cb, &dc, NULL, &e);
	if (r < 0)
		return err_engine(err, md, r, &e);
	return dc.stopped;
}

int thinmeta_delta_roots(struct thinmeta *md, uint64_t left_root, uint64_t right_root,
			 unsigned flags, thinmeta_delta_fn fn, void *ctx,
			 struct thinmeta_error *err)
{
	err_clear(err);
	if (!md || !fn)
		return err_set(err, -EINVAL, "thinmeta_delta_roots: a NULL argument");
	return delta_roots(md, left_root, right_root, flags, fn, ctx, err);
}

int thinmeta_delta_devices(struct thinmeta *md, uint64_t left, uint64_t right, unsigned flags,
			   thinmeta_delta_fn fn, void *ctx, struct thinmeta_error *err)
{
	const struct thinmeta_device *l, *rt;
	int r;

	err_clear(err);
	if (!md || !fn)
		return err_set(err, -EINVAL, "thinmeta_delta_devices: a NULL argument");
	if ((r = lookup_dev(md, left, &l, err)) || (r = lookup_dev(md, right, &rt, err)))
		return r;
	return delta_roots(md, l->mapping_root, rt->mapping_root, flags, fn, ctx, err);
}
