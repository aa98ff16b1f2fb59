/*
 * run.c - thin_pool's `run`: a deterministic random workload on a pool
 * (writes, discards, new thins and snapshots, deletes, metadata snapshot
 * reserve/release cycles, transaction ids), committing regularly, with a
 * log line per commit so a crash test knows which states a killed run can
 * have left on the device.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool_tool.h"
#include "thinmeta/dump.h"
#include "thinmeta/format.h"
#include "thinmeta/superblock.h"
#include "tool.h"

#define MAX_DEVICES 32

struct wl {
	struct pctx *c;
	struct tm_pool *p;
	uint64_t rng;
	uint64_t devs[MAX_DEVICES];
	unsigned nr_devs;
	uint64_t next_id;
	uint64_t vspan;			/* virtual blocks a device uses */
	uint64_t ops_done, writes, discards, messages;
	int keep_held;
};

/* splitmix64: the same sequence on every machine */
static uint64_t rnd(struct wl *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(struct wl *w, uint64_t n)
{
	return n ? rnd(w) % n : 0;
}

/* ------------------------------------------------------------------ */
/* The commit log */

/*
 * The content digest of a commit line: CRC-32 (zlib's) of the committed
 * pool's live content as text, one line each:
 *     tid T time X
 *     dev ID mapped M trans T ctime C stime S     each device, ascending id
 *     V D TIME                                    each mapped block, ascending
 * (decimal numbers; what thin_dump says of the pool, shared leaves
 * expanded, independent of where the blocks are), so that a crash test can
 * compare it with what a dump of the device says after a kill.
 */
struct digest {
	uint32_t crc;
	uint32_t table[256];
};

static void digest_add(struct digest *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void digest_add(struct digest *d, const char *fmt, ...)
{
	char line[160];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (int i = 0; i < n && i < (int)sizeof(line) - 1; i++)
		d->crc = d->table[(d->crc ^ (uint8_t)line[i]) & 0xff] ^ (d->crc >> 8);
}

static int dg_sb(void *ctx, const struct tm_ir_superblock *sb)
{
	digest_add(ctx, "tid %llu time %u\n", (unsigned long long)sb->transaction, sb->time);
	return 0;
}

static int dg_dev(void *ctx, const struct tm_ir_device *d)
{
	digest_add(ctx, "dev %llu mapped %llu trans %llu ctime %u stime %u\n",
		   (unsigned long long)d->dev_id, (unsigned long long)d->mapped_blocks,
		   (unsigned long long)d->transaction, d->creation_time, d->snap_time);
	return 0;
}

static int dg_run(void *ctx, const struct tm_ir_run *r)
{
	for (uint64_t i = 0; i < r->length; i++)
		digest_add(ctx, "%llu %llu %u\n", (unsigned long long)(r->origin_begin + i),
			   (unsigned long long)(r->data_begin + i), r->time);
	return 0;
}

static int dg_none(void *ctx)
{
	(void)ctx;
	return 0;
}

static int dg_name(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return -EINVAL;		/* no defs or refs when shared leaves are expanded */
}

/*
 * The device as it will be once @sb is written to block 0: block 0 is
 * read as @sb, every other block from the pool's device (where the rest
 * of the commit already is, flushed).
 */
struct overlay {
	struct tm_dev dev;
	struct tm_dev *inner;
	uint8_t sb[TM_BLOCK_SIZE];
};

static int ov_read(struct tm_dev *dev, uint64_t block, unsigned count, void *buf)
{
	struct overlay *o = (struct overlay *)dev;
	int r = tm_dev_read(o->inner, block, count, buf);

	if (!r && block == 0 && count)
		memcpy(buf, o->sb, TM_BLOCK_SIZE);
	return r;
}

static int ov_write(struct tm_dev *dev, uint64_t block, unsigned count, const void *buf)
{
	(void)dev, (void)block, (void)count, (void)buf;
	return -EROFS;
}

static int ov_flush(struct tm_dev *dev)
{
	(void)dev;
	return 0;
}

static void ov_close(struct tm_dev *dev)
{
	(void)dev;
}

static const struct tm_dev_ops overlay_ops = { ov_read, ov_write, ov_flush, ov_close, NULL, NULL };

/* The digest of the pool @sb describes, or -1 (then "-" is logged). */
static int64_t content_digest(struct pctx *c, const struct tm_superblock *sb)
{
	struct tm_ir_sink sink = { 0 };
	struct tm_dump_opts o = { 0 };
	struct overlay ov;
	struct digest d;
	struct tm_error e;
	struct tm_bm *bm;
	int r;

	ov.dev = *c->dev;
	ov.dev.ops = &overlay_ops;
	ov.dev.writable = 0;
	ov.inner = c->dev;
	memset(ov.sb, 0, sizeof(ov.sb));
	tm_sb_encode(sb, ov.sb);
	tm_block_seal(ov.sb, 0, TM_SALT_SUPERBLOCK);
	if (tm_le32(ov.sb) != sb->csum)
		return -1;	/* not the bytes about to be written */
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t x = i;
		for (int k = 0; k < 8; k++)
			x = x & 1 ? (x >> 1) ^ 0xedb88320u : x >> 1;
		d.table[i] = x;
	}
	d.crc = 0xffffffffu;
	sink.ctx = &d;
	sink.superblock_begin = dg_sb;
	sink.superblock_end = dg_none;
	sink.def_begin = dg_name;
	sink.def_end = dg_none;
	sink.device_begin = dg_dev;
	sink.device_end = dg_none;
	sink.ref = dg_name;
	sink.run = dg_run;
	o.expand_shared = 1;
	if (tm_bm_create(&ov.dev, 0, &bm))
		return -1;
	tm_error_clear(&e);
	r = tm_dump(bm, &o, &sink, &e);
	tm_bm_destroy(bm);
	return r ? -1 : (int64_t)(d.crc ^ 0xffffffffu);
}

static void log_commit(void *ctx, int phase, const struct tm_superblock *sb)
{
	struct pctx *c = ctx;

	if (phase == 1)
		c->commits++;
	if (!c->log)
		return;
	fprintf(c->log, "%s %llu tid %llu time %u sb %08x held %llu data %llu meta %llu",
		phase ? "commit" : "prepare",
		(unsigned long long)(phase ? c->commits : c->commits + 1),
		(unsigned long long)sb->trans_id, sb->time, sb->csum,
		(unsigned long long)sb->held_root,
		(unsigned long long)sb->data_sm.nr_allocated,
		(unsigned long long)sb->meta_sm.nr_allocated);
	if (phase == 0) {
		/* before block 0 is written: a kill cannot fall between the two */
		int64_t dg = content_digest(c, sb);
		if (dg < 0)
			fprintf(c->log, " content -");
		else
			fprintf(c->log, " content %08x", (unsigned)dg);
	}
	fputc('\n', c->log);
	fflush(c->log);
	if (phase == 1)
		fdatasync(fileno(c->log));
}

/* ------------------------------------------------------------------ */

static int fail(struct wl *w, const char *what, const struct tm_error *e)
{
	char where[300];

	snprintf(where, sizeof(where), "%s: run: op %llu (%s): ", w->c->path,
		 (unsigned long long)w->ops_done, what);
	report(where, e);
	return -1;
}

static int commit(struct wl *w)
{
	struct tm_error e;

	tm_error_clear(&e);
	if (tm_pool_commit(w->p, &e))
		return fail(w, "commit", &e);
	return 0;
}

static void forget_dev(struct wl *w, unsigned i)
{
	w->devs[i] = w->devs[--w->nr_devs];
}

static int do_write(struct wl *w, uint64_t id, uint64_t begin, uint64_t count)
{
	struct tm_error e;

	/* with a data file: the whole block, tagged with the operation's number */
	char tag[32];
	snprintf(tag, sizeof(tag), "run%llu", (unsigned long long)w->ops_done);
	struct wspec ws = { tag, 0, (uint64_t)tm_pool_data_block_size(w->p) * TM_SECTOR_SIZE };

	for (uint64_t b = begin; b < begin + count; b++) {
		tm_error_clear(&e);
		int r = pool_write_block(w->c, id, b, &ws, &e);
		if (r == -ENOSPC && !tm_pool_failed(w->p))
			return commit(w);	/* full: try again later */
		if (r)
			return fail(w, "write", &e);
	}
	w->writes++;
	return 0;
}

static int do_discard(struct wl *w, uint64_t id, uint64_t begin, uint64_t count)
{
	struct tm_error e;
	uint64_t n;

	tm_error_clear(&e);
	if (tm_pool_discard(w->p, id, begin, begin + count, &n, &e))
		return fail(w, "discard", &e);
	w->discards++;
	return 0;
}

/* Messages: each commits, like the kernel's. */
static int message(struct wl *w, int r, const char *what, const struct tm_error *e)
{
	if (r)
		return fail(w, what, e);
	w->messages++;
	return commit(w);
}

static int delete_random(struct wl *w)
{
	struct tm_error e;
	unsigned i = (unsigned)below(w, w->nr_devs);
	uint64_t id = w->devs[i];

	tm_error_clear(&e);
	forget_dev(w, i);
	return message(w, tm_pool_delete(w->p, id, &e), "delete", &e);
}

/* Keep room: free data and metadata before they run out. */
static int make_room(struct wl *w)
{
	uint64_t data_total = tm_pool_nr_data_blocks(w->p);
	uint64_t meta_total = tm_pool_nr_metadata_blocks(w->p);
	struct tm_error e;
	int r;

	for (int tries = 0; tries < 4; tries++) {
		int low_meta = tm_pool_free_metadata_blocks(w->p) < meta_total / 8 + 16;
		int low_data = tm_pool_free_data_blocks(w->p) < data_total / 16 + 16;
		if (!low_meta && !low_data)
			return 0;
		r = commit(w);		/* blocks freed since count after it */
		if (r)
			return r;
		low_meta = tm_pool_free_metadata_blocks(w->p) < meta_total / 8 + 16;
		low_data = tm_pool_free_data_blocks(w->p) < data_total / 16 + 16;
		if (!low_meta && !low_data)
			return 0;
		if (tm_pool_held_root(w->p) && !w->keep_held) {
			tm_error_clear(&e);
			r = message(w, tm_pool_release_metadata_snap(w->p, &e), "release", &e);
		} else if (w->nr_devs > 1) {
			r = delete_random(w);
		} else if (w->nr_devs == 1) {
			r = do_discard(w, w->devs[0], 0, w->vspan);
			if (!r)
				r = commit(w);
		} else {
			return 0;
		}
		if (r)
			return r;
	}
	return 0;
}

static int one_op(struct wl *w)
{
	struct tm_error e;
	unsigned pick = (unsigned)below(w, 100);
	uint64_t id, begin, count;
	int r;

	tm_error_clear(&e);
	if (!w->nr_devs || (pick >= 70 && pick < 76 && w->nr_devs < MAX_DEVICES)) {
		id = w->next_id++;
		r = message(w, tm_pool_create_thin(w->p, id, &e), "create_thin", &e);
		if (!r)
			w->devs[w->nr_devs++] = id;
		return r;
	}
	id = w->devs[below(w, w->nr_devs)];
	if (pick < 55) {
		count = 1 + below(w, 16);
		begin = below(w, w->vspan);
		return do_write(w, id, begin, count);
	}
	if (pick < 70) {
		count = 1 + below(w, 64);
		begin = below(w, w->vspan);
		return do_discard(w, id, begin, count);
	}
	if (pick < 83) {
		if (w->nr_devs >= MAX_DEVICES || tm_pool_time(w->p) >= TM_POOL_MAX_TIME)
			return do_write(w, id, below(w, w->vspan), 1);
		uint64_t snap = w->next_id++;
		r = message(w, tm_pool_create_snap(w->p, snap, id, &e), "create_snap", &e);
		if (!r)
			w->devs[w->nr_devs++] = snap;
		return r;
	}
	if (pick < 88) {
		if (w->nr_devs < 2)
			return do_write(w, id, below(w, w->vspan), 1);
		return delete_random(w);
	}
	if (pick < 94) {
		if (tm_pool_held_root(w->p)) {
			if (w->keep_held)
				return commit(w);
			return message(w, tm_pool_release_metadata_snap(w->p, &e), "release", &e);
		}
		return message(w, tm_pool_reserve_metadata_snap(w->p, &e), "reserve", &e);
	}
	if (pick < 97) {
		uint64_t tid = tm_pool_transaction_id(w->p);
		return message(w, tm_pool_set_transaction_id(w->p, tid, tid + 1, &e),
			       "set_transaction_id", &e);
	}
	return commit(w);
}

int run_workload(struct pctx *c, const struct run_opts *o)
{
	struct tm_pool_device_info *devs = NULL;
	struct wl w;
	struct tm_error e;
	uint64_t nr = 0, since = 0, every;
	time_t start = time(NULL);
	int r = 0;

	memset(&w, 0, sizeof(w));
	w.c = c;
	w.p = c->pool;
	w.rng = o->seed;
	w.keep_held = o->keep_held;
	tm_pool_set_commit_hook(w.p, log_commit, c);
	if (tm_pool_is_read_only(w.p)) {
		msg("%s: run: the pool is read-only (needs_check, out of metadata space)", c->path);
		return -1;
	}

	tm_error_clear(&e);
	if (tm_pool_devices(w.p, &devs, &nr, &e))
		return fail(&w, "list devices", &e);
	for (uint64_t i = 0; i < nr; i++) {
		if (w.nr_devs < MAX_DEVICES)
			w.devs[w.nr_devs++] = devs[i].id;
		if (devs[i].id >= w.next_id)
			w.next_id = devs[i].id + 1;
	}
	free(devs);
	if (w.next_id > TM_POOL_MAX_DEV_ID - o->ops) {
		msg("%s: run: device ids would run past 2^24", c->path);
		return -1;
	}
	w.vspan = tm_pool_nr_data_blocks(w.p);
	if (w.vspan < 64)
		w.vspan = 64;
	if (w.vspan > (1u << 20))
		w.vspan = 1u << 20;

	if (o->keep_held && !tm_pool_held_root(w.p)) {
		r = message(&w, tm_pool_reserve_metadata_snap(w.p, &e), "reserve", &e);
		if (r)
			return r;
	}
	every = 1 + below(&w, 32);
	for (w.ops_done = 0; w.ops_done < o->ops; w.ops_done++) {
		if (o->seconds && (uint64_t)(time(NULL) - start) >= o->seconds)
			break;
		r = make_room(&w);
		if (!r)
			r = one_op(&w);
		if (r)
			return r;
		if (++since >= every) {
			r = commit(&w);
			if (r)
				return r;
			since = 0;
			every = 1 + below(&w, 32);
		}
	}
	r = commit(&w);
	if (r)
		return r;
	printf("ops %llu writes %llu discards %llu messages %llu commits %llu tid %llu time %u devices %u\n",
	       (unsigned long long)w.ops_done, (unsigned long long)w.writes,
	       (unsigned long long)w.discards, (unsigned long long)w.messages,
	       (unsigned long long)c->commits, (unsigned long long)tm_pool_transaction_id(w.p),
	       tm_pool_time(w.p), w.nr_devs);
	return 0;
}
