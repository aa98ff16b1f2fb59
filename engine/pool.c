/*
 * pool.c - pool operations with the semantics of Linux 6.1
 * dm-thin-metadata.c and dm-thin.c (pool.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree_write.h"
#include "thinmeta/format.h"
#include "thinmeta/metadata.h"
#include "thinmeta/pool.h"
#include "thinmeta/sm_write.h"
#include "thinmeta/superblock.h"
#include "thinmeta/transaction.h"

#define SB_V (&tm_sb_validator)
#define MAX_SECTORS_WARNING 33554432ull		/* 16 GiB */
#define MAX_METADATA_SECTORS (TM_MAX_METADATA_BLOCKS * TM_BLOCK_SECTORS)

/* A device touched in this transaction (the kernel's struct dm_thin_device). */
struct td {
	uint64_t id;
	struct tm_device_details d;
	int changed;
};

struct tm_pool {
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct tm_tm *tm;
	struct tm_msm *msm;
	struct tm_dsm *dsm;

	struct tm_btree_info info;		/* 2 levels: dev, vblock -> block_time */
	struct tm_btree_info tl_info;		/* top level: dev -> subtree root */
	struct tm_btree_info bl_info;		/* bottom level: vblock -> block_time */
	struct tm_btree_info details_info;	/* dev -> details */

	uint8_t sb[TM_BLOCK_SIZE];		/* the last committed superblock */
	uint32_t time;
	uint64_t root, details_root, held_root, trans_id;
	uint32_t flags;
	uint32_t data_block_size;
	uint64_t metadata_reserve;

	struct td *tds;			/* the kernel's list: newest last */
	size_t nr_tds, cap_tds;

	int changed;			/* uncommitted changes */
	int failed;			/* an operation broke off part way */
	int out_of_metadata;		/* no free metadata beyond the reserve */
	tm_pool_commit_hook hook;
	void *hook_ctx;
	tm_pool_pre_commit_fn pre_commit;
	void *pre_commit_ctx;
};

/* ------------------------------------------------------------------ */
/* Value types of the thin trees */

static int with_data_runs(struct tm_pool *p, const uint8_t *v, uint32_t n, int dec,
			  struct tm_error *e)
{
	uint64_t begin = 0, end = 0;
	int in_run = 0, r;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t b = tm_bt_block(tm_le64(v + 8u * i));
		if (in_run && b == end) {
			end++;
			continue;
		}
		if (in_run) {
			r = dec ? tm_dsm_dec(p->dsm, begin, end, e) : tm_dsm_inc(p->dsm, begin, end, e);
			if (r)
				return r;
		}
		in_run = 1;
		begin = b;
		end = b + 1;
	}
	if (in_run)
		return dec ? tm_dsm_dec(p->dsm, begin, end, e) : tm_dsm_inc(p->dsm, begin, end, e);
	return 0;
}

static int data_inc(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	return with_data_runs(ctx, v, n, 0, e);
}

static int data_dec(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	return with_data_runs(ctx, v, n, 1, e);
}

static int data_equal(void *ctx, const uint8_t *a, const uint8_t *b)
{
	(void)ctx;
	return tm_bt_block(tm_le64(a)) == tm_bt_block(tm_le64(b));
}

static int subtree_inc(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	struct tm_pool *p = ctx;
	int r;

	for (uint32_t i = 0; i < n; i++)
		if ((r = tm_tm_inc(p->tm, tm_le64(v + 8u * i), e)))
			return r;
	return 0;
}

static int subtree_dec(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	struct tm_pool *p = ctx;
	int r;

	for (uint32_t i = 0; i < n; i++)
		if ((r = tm_btree_del(&p->bl_info, tm_le64(v + 8u * i), e)))
			return r;
	return 0;
}

static int subtree_equal(void *ctx, const uint8_t *a, const uint8_t *b)
{
	(void)ctx;
	return !memcmp(a, b, 8);
}

static void setup_btree_details(struct tm_pool *p)
{
	p->info = (struct tm_btree_info){ p->tm, 2,
		{ 8, p, data_inc, data_dec, data_equal } };
	p->tl_info = (struct tm_btree_info){ p->tm, 1,
		{ 8, p, subtree_inc, subtree_dec, subtree_equal } };
	p->bl_info = (struct tm_btree_info){ p->tm, 1,
		{ 8, p, data_inc, data_dec, data_equal } };
	p->details_info = (struct tm_btree_info){ p->tm, 1,
		{ TM_VSIZE_DETAILS, NULL, NULL, NULL, NULL } };
}

/* ------------------------------------------------------------------ */
/* Helpers */

/*
 * An operation broke off part way: the kernel aborts the transaction and
 * sets needs_check in the superblock (abort_transaction() in dm-thin.c).
 * The flag goes into the last committed superblock; if even that write
 * fails, the device still holds the last commit.
 */
static int failed(struct tm_pool *p, int r)
{
	uint8_t sb[TM_BLOCK_SIZE];
	struct tm_error ignored;

	if (!r || p->failed)
		return r;
	p->failed = 1;
	p->flags |= TM_SB_FLAG_NEEDS_CHECK;
	memcpy(sb, p->sb, TM_BLOCK_SIZE);
	tm_put_le32(sb + TM_SB_OFF_FLAGS, tm_le32(sb + TM_SB_OFF_FLAGS) | TM_SB_FLAG_NEEDS_CHECK);
	tm_error_clear(&ignored);
	if (!tm_bm_write(p->bm, 0, SB_V, sb, &ignored) && !tm_bm_flush(p->bm, &ignored))
		memcpy(p->sb, sb, TM_BLOCK_SIZE);
	return r;
}

static int check_writable(struct tm_pool *p, struct tm_error *e)
{
	if (p->failed)
		return tm_fail(e, -EROFS, TM_RULE_ARG, TM_NO_BLOCK,
			       "the pool failed earlier: nothing more is written");
	if (p->flags & TM_SB_FLAG_NEEDS_CHECK)
		return tm_fail(e, -EROFS, TM_RULE_ARG, 0,
			       "the metadata needs checking (needs_check is set): the pool is read-only until repaired");
	if (p->out_of_metadata)
		return tm_fail(e, -EROFS, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "out of metadata space: the pool is read-only until the metadata device grows");
	return 0;
}

static int check_id(uint64_t id, struct tm_error *e)
{
	if (id > TM_POOL_MAX_DEV_ID)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "device id %llu is out of range (at most %llu)",
			       (unsigned long long)id, (unsigned long long)TM_POOL_MAX_DEV_ID);
	return 0;
}

static void touch(struct tm_pool *p)
{
	p->changed = 1;
}

static struct td *find_td(struct tm_pool *p, uint64_t id)
{
	for (size_t i = 0; i < p->nr_tds; i++)
		if (p->tds[i].id == id)
			return &p->tds[i];
	return NULL;
}

static struct td *add_td(struct tm_pool *p, uint64_t id, struct tm_error *e)
{
	if (p->nr_tds == p->cap_tds) {
		size_t ncap = p->cap_tds ? p->cap_tds * 2 : 16;
		struct td *n = realloc(p->tds, ncap * sizeof(*n));
		if (!n) {
			tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
			return NULL;
		}
		p->tds = n;
		p->cap_tds = ncap;
	}
	struct td *t = &p->tds[p->nr_tds++];
	memset(t, 0, sizeof(*t));
	t->id = id;
	return t;
}

static void drop_td(struct tm_pool *p, uint64_t id)
{
	for (size_t i = 0; i < p->nr_tds; i++)
		if (p->tds[i].id == id) {
			memmove(&p->tds[i], &p->tds[i + 1], (p->nr_tds - i - 1) * sizeof(*p->tds));
			p->nr_tds--;
			return;
		}
}

/* Is @id a device (a key of the top-level mapping tree)?  *root: its tree. */
static int dev_root(struct tm_pool *p, uint64_t id, uint64_t *root, struct tm_error *e)
{
	uint8_t v[8];
	int r = tm_btree_wlookup(&p->tl_info, p->root, &id, v, e);

	if (!r && root)
		*root = tm_le64(v);
	return r;
}

static int no_device(uint64_t id, struct tm_error *e)
{
	return tm_fail(e, -ENODATA, TM_RULE_ARG, TM_NO_BLOCK,
		       "thin device %llu does not exist", (unsigned long long)id);
}

/* The kernel's __open_device(create = 0): the device's details. */
static int open_td(struct tm_pool *p, uint64_t id, struct td **out, struct tm_error *e)
{
	uint8_t v[TM_VSIZE_DETAILS];
	struct td *t = find_td(p, id);
	int r;

	if (t) {
		*out = t;
		return 0;
	}
	r = tm_btree_wlookup(&p->details_info, p->details_root, &id, v, e);
	if (r == -ENODATA)
		return tm_fail(e, -EUCLEAN, TM_RULE_DEVICES, p->details_root,
			       "device %llu is in the mapping tree but not in the device details tree",
			       (unsigned long long)id);
	if (r)
		return r;
	t = add_td(p, id, e);
	if (!t)
		return -ENOMEM;
	tm_details_decode(v, &t->d);
	*out = t;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Commit */

static void sb_set_fields(struct tm_pool *p, uint8_t *sb)
{
	struct tm_sm_root dr, mr;

	tm_put_le32(sb + TM_SB_OFF_FLAGS, p->flags);
	tm_put_le32(sb + TM_SB_OFF_TIME, p->time);
	tm_put_le64(sb + TM_SB_OFF_TRANS_ID, p->trans_id);
	tm_put_le64(sb + TM_SB_OFF_HELD_ROOT, p->held_root);
	tm_dsm_root(p->dsm, &dr);
	tm_msm_root(p->msm, &mr);
	tm_sm_root_encode(&dr, sb + TM_SB_OFF_DATA_SM);
	tm_sm_root_encode(&mr, sb + TM_SB_OFF_META_SM);
	tm_put_le64(sb + TM_SB_OFF_MAPPING_ROOT, p->root);
	tm_put_le64(sb + TM_SB_OFF_DETAILS_ROOT, p->details_root);
}

static void call_hook(struct tm_pool *p, int phase, const void *raw)
{
	struct tm_superblock sb;

	if (!p->hook)
		return;
	tm_sb_decode(raw, &sb);
	p->hook(p->hook_ctx, phase, &sb);
}

static void before_sb(void *ctx, const void *sb)
{
	call_hook(ctx, 0, sb);
}

static void check_metadata_space(struct tm_pool *p)
{
	p->out_of_metadata = tm_pool_free_metadata_blocks(p) == 0;
}

/* Write the superblock: block 0 last, after everything else is flushed. */
static int write_sb(struct tm_pool *p, uint8_t *sb, struct tm_error *e)
{
	int r = tm_tm_commit(p->tm, sb, before_sb, p, e);

	if (r)
		return r;
	memcpy(p->sb, sb, TM_BLOCK_SIZE);
	call_hook(p, 1, p->sb);
	return 0;
}

static int write_changed_details(struct tm_pool *p, struct tm_error *e)
{
	uint8_t v[TM_VSIZE_DETAILS];
	int r;

	/* the kernel's list order: the most recently opened device first */
	for (size_t i = p->nr_tds; i-- > 0;) {
		struct td *t = &p->tds[i];
		if (!t->changed)
			continue;
		tm_details_encode(&t->d, v);
		r = tm_btree_insert(&p->details_info, p->details_root, &t->id, v,
				    &p->details_root, NULL, e);
		if (r)
			return r;
	}
	p->nr_tds = 0;
	return 0;
}

int tm_pool_commit(struct tm_pool *p, struct tm_error *e)
{
	uint8_t sb[TM_BLOCK_SIZE];
	int r;

	if (p->failed)
		return tm_fail(e, -EROFS, TM_RULE_ARG, TM_NO_BLOCK,
			       "the pool failed earlier: nothing more is written");
	if (!p->changed)
		return 0;
	/* the kernel's pre-commit callback: dm-thin flushes the data device */
	if (p->pre_commit && (r = p->pre_commit(p->pre_commit_ctx, e)))
		return failed(p, r < 0 ? r : -EIO);
	r = write_changed_details(p, e);
	if (!r)
		r = tm_dsm_commit(p->dsm, e);
	if (!r)
		r = tm_msm_commit(p->msm, e);
	if (r)
		return failed(p, r);
	memcpy(sb, p->sb, TM_BLOCK_SIZE);
	sb_set_fields(p, sb);
	r = write_sb(p, sb, e);
	if (r)
		return failed(p, r);
	p->changed = 0;
	check_metadata_space(p);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Open, format, close */

static uint64_t metadata_reserve(uint64_t total)
{
	uint64_t r = total / 10;

	return r < 4096 ? r : 4096;
}

static int pool_alloc(struct tm_dev *dev, struct tm_pool **out, struct tm_error *e)
{
	struct tm_pool *p = calloc(1, sizeof(*p));
	int r;

	*out = NULL;
	if (!p)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	p->dev = dev;
	if (!dev->writable) {
		free(p);
		return tm_fail(e, -EBADF, TM_RULE_ARG, TM_NO_BLOCK,
			       "the metadata device is not open for writing");
	}
	r = tm_bm_create(dev, 0, &p->bm);
	if (!r)
		r = tm_tm_create(p->bm, 0, &p->tm);
	if (r) {
		tm_pool_close(p);
		return tm_fail(e, r, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	}
	*out = p;
	return 0;
}

void tm_pool_close(struct tm_pool *p)
{
	if (!p)
		return;
	tm_dsm_destroy(p->dsm);
	tm_msm_destroy(p->msm);
	tm_tm_destroy(p->tm);
	tm_bm_destroy(p->bm);
	free(p->tds);
	free(p);
}

static void begin_transaction(struct tm_pool *p)
{
	struct tm_superblock sb;

	tm_sb_decode(p->sb, &sb);
	p->time = sb.time;
	p->root = sb.mapping_root;
	p->details_root = sb.details_root;
	p->held_root = sb.held_root;
	p->trans_id = sb.trans_id;
	p->flags = sb.flags;
	p->data_block_size = sb.data_block_size;
}

static int check_data_block_size(uint32_t s, struct tm_error *e)
{
	if (s < TM_DATA_BLOCK_SIZE_MIN || s > TM_DATA_BLOCK_SIZE_MAX ||
	    s % TM_DATA_BLOCK_SIZE_MIN)
		return tm_fail(e, -EINVAL, TM_RULE_BAD_VALUE, 0,
			       "data block size %u sectors is not a multiple of 128 within 128..2097152",
			       s);
	return 0;
}

int tm_pool_open(struct tm_dev *dev, struct tm_pool **out, struct tm_error *e)
{
	struct tm_superblock sb;
	struct tm_pool *p;
	int r;

	*out = NULL;
	r = pool_alloc(dev, &p, e);
	if (r)
		return r;
	r = tm_read_superblock(p->bm, &sb, e);
	if (!r)
		r = tm_bm_read(p->bm, 0, SB_V, p->sb, e);
	if (!r)
		r = check_data_block_size(sb.data_block_size, e);
	if (!r && sb.meta_sm.nr_blocks > tm_bm_nr_blocks(p->bm))
		r = tm_fail(e, -EUCLEAN, TM_RULE_TOO_SMALL, 0,
			    "metadata device (%llu blocks) too small: the metadata space map tracks %llu",
			    (unsigned long long)tm_bm_nr_blocks(p->bm),
			    (unsigned long long)sb.meta_sm.nr_blocks);
	if (!r && sb.data_sm.nr_blocks > TM_POOL_MAX_DATA_BLOCKS)
		r = tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, 0,
			    "data space map tracks %llu blocks, more than 2^40",
			    (unsigned long long)sb.data_sm.nr_blocks);
	if (!r)
		r = tm_msm_open(p->tm, &sb.meta_sm, &p->msm, e);
	if (!r)
		r = tm_dsm_open(p->tm, &sb.data_sm, &p->dsm, e);
	if (r) {
		tm_pool_close(p);
		return r;
	}
	setup_btree_details(p);
	begin_transaction(p);
	p->metadata_reserve = metadata_reserve(tm_msm_nr_blocks(p->msm));
	check_metadata_space(p);
	*out = p;
	return 0;
}

int tm_pool_format(struct tm_dev *dev, uint32_t data_block_size,
		   uint64_t nr_data_blocks, struct tm_pool **out, struct tm_error *e)
{
	uint8_t sb[TM_BLOCK_SIZE];
	struct tm_pool *p;
	uint64_t nr_blocks, sectors;
	int r;

	*out = NULL;
	if ((r = check_data_block_size(data_block_size, e)))
		return r;
	if (nr_data_blocks > TM_POOL_MAX_DATA_BLOCKS)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "%llu data blocks: more than 2^40 cannot be mapped",
			       (unsigned long long)nr_data_blocks);
	r = pool_alloc(dev, &p, e);
	if (r)
		return r;
	if (tm_bm_nr_blocks(p->bm) < 1) {
		r = tm_fail(e, -ENOSPC, TM_RULE_TOO_SMALL, 0,
			    "the metadata device is smaller than one block");
		goto bad;
	}
	r = tm_bm_read(p->bm, 0, NULL, sb, e);
	if (r)
		goto bad;
	if (!tm_block_is_zero(sb)) {
		r = tm_fail(e, -EEXIST, TM_RULE_ARG, 0,
			    "block 0 is not all zeroes: the device holds metadata already (zero it to format)");
		goto bad;
	}

	nr_blocks = tm_bm_nr_blocks(p->bm);
	r = tm_msm_create(p->tm, nr_blocks, 0, &p->msm, e);
	if (!r)
		r = tm_dsm_create(p->tm, 0, &p->dsm, e);
	if (r)
		goto bad;
	setup_btree_details(p);
	r = tm_btree_empty(&p->info, &p->root, e);
	if (!r)
		r = tm_btree_empty(&p->details_info, &p->details_root, e);
	if (!r)
		r = tm_dsm_commit(p->dsm, e);
	if (!r)
		r = tm_msm_commit(p->msm, e);
	if (r)
		goto bad;

	/* the kernel's __write_initial_superblock */
	sectors = dev->size_bytes / TM_SECTOR_SIZE;
	if (sectors > MAX_METADATA_SECTORS)
		sectors = MAX_METADATA_SECTORS;
	memset(sb, 0, sizeof(sb));
	tm_put_le64(sb + TM_SB_OFF_MAGIC, TM_SB_MAGIC);
	tm_put_le32(sb + TM_SB_OFF_VERSION, 2);
	tm_put_le32(sb + TM_SB_OFF_META_BLOCK_SIZE, TM_BLOCK_SECTORS);
	tm_put_le64(sb + TM_SB_OFF_META_NR_BLOCKS, sectors / TM_BLOCK_SECTORS);
	tm_put_le32(sb + TM_SB_OFF_DATA_BLOCK_SIZE, data_block_size);
	p->flags = 0;
	p->time = 0;
	p->trans_id = 0;
	p->held_root = 0;
	sb_set_fields(p, sb);
	r = write_sb(p, sb, e);
	if (r)
		goto bad;
	begin_transaction(p);
	p->metadata_reserve = metadata_reserve(tm_msm_nr_blocks(p->msm));

	if (nr_data_blocks) {
		r = tm_pool_resize_data(p, nr_data_blocks, e);
		if (!r)
			r = tm_pool_commit(p, e);
		if (r)
			goto bad;
	}
	check_metadata_space(p);
	*out = p;
	return 0;
bad:
	tm_pool_close(p);
	return r;
}

void tm_pool_set_commit_hook(struct tm_pool *p, tm_pool_commit_hook fn, void *ctx)
{
	p->hook = fn;
	p->hook_ctx = ctx;
}

void tm_pool_set_pre_commit(struct tm_pool *p, tm_pool_pre_commit_fn fn, void *ctx)
{
	p->pre_commit = fn;
	p->pre_commit_ctx = ctx;
}

/* ------------------------------------------------------------------ */
/* Messages */

int tm_pool_create_thin(struct tm_pool *p, uint64_t id, struct tm_error *e)
{
	uint64_t root;
	uint8_t v[8];
	struct td *t;
	int r;

	if ((r = check_writable(p, e)) || (r = check_id(id, e)))
		return r;
	r = dev_root(p, id, NULL, e);
	if (!r)
		return tm_fail(e, -EEXIST, TM_RULE_ARG, TM_NO_BLOCK,
			       "thin device %llu already exists", (unsigned long long)id);
	if (r != -ENODATA)
		return failed(p, r);
	touch(p);
	r = tm_btree_empty(&p->bl_info, &root, e);
	if (r)
		return failed(p, r);
	tm_put_le64(v, root);
	r = tm_btree_insert(&p->tl_info, p->root, &id, v, &p->root, NULL, e);
	if (r)
		return failed(p, r);
	t = add_td(p, id, e);
	if (!t)
		return failed(p, -ENOMEM);
	t->changed = 1;
	t->d.mapped_blocks = 0;
	t->d.transaction_id = p->trans_id;
	t->d.creation_time = p->time;
	t->d.snapshotted_time = p->time;
	return 0;
}

int tm_pool_create_snap(struct tm_pool *p, uint64_t id, uint64_t origin,
			struct tm_error *e)
{
	uint64_t origin_root;
	struct td *snap, *t;
	uint8_t v[8];
	int r;

	if ((r = check_writable(p, e)) || (r = check_id(id, e)) || (r = check_id(origin, e)))
		return r;
	r = dev_root(p, id, NULL, e);
	if (!r)
		return tm_fail(e, -EEXIST, TM_RULE_ARG, TM_NO_BLOCK,
			       "thin device %llu already exists", (unsigned long long)id);
	if (r != -ENODATA)
		return failed(p, r);
	r = dev_root(p, origin, &origin_root, e);
	if (r == -ENODATA)
		return tm_fail(e, -ENODATA, TM_RULE_ARG, TM_NO_BLOCK,
			       "origin device %llu does not exist", (unsigned long long)origin);
	if (r)
		return failed(p, r);
	if (p->time >= TM_POOL_MAX_TIME)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "the pool's snapshot time %u cannot grow past 24 bits", p->time);
	touch(p);
	/* the snapshot shares the origin's tree: one more reference */
	r = tm_tm_inc(p->tm, origin_root, e);
	if (r)
		return failed(p, r);
	tm_put_le64(v, origin_root);
	r = tm_btree_insert(&p->tl_info, p->root, &id, v, &p->root, NULL, e);
	if (r)
		return failed(p, r);
	p->time++;
	snap = add_td(p, id, e);
	if (!snap)
		return failed(p, -ENOMEM);
	snap->changed = 1;
	snap->d.transaction_id = p->trans_id;
	snap->d.creation_time = p->time;
	snap->d.snapshotted_time = p->time;
	r = open_td(p, origin, &t, e);
	if (r)
		return failed(p, r);
	snap = find_td(p, id);		/* open_td may have moved the array */
	t->changed = 1;
	t->d.snapshotted_time = p->time;
	snap->d.mapped_blocks = t->d.mapped_blocks;
	snap->d.snapshotted_time = p->time;
	return 0;
}

int tm_pool_delete(struct tm_pool *p, uint64_t id, struct tm_error *e)
{
	uint8_t v[TM_VSIZE_DETAILS];
	int r;

	if ((r = check_writable(p, e)) || (r = check_id(id, e)))
		return r;
	r = dev_root(p, id, NULL, e);
	if (r == -ENODATA)
		return no_device(id, e);
	if (r)
		return failed(p, r);
	touch(p);
	drop_td(p, id);
	r = tm_btree_wlookup(&p->details_info, p->details_root, &id, v, e);
	if (!r)
		r = tm_btree_remove(&p->details_info, p->details_root, &id,
				    &p->details_root, e);
	else if (r == -ENODATA)
		r = 0;		/* created in this transaction: no details yet */
	if (!r)
		r = tm_btree_remove(&p->tl_info, p->root, &id, &p->root, e);
	return failed(p, r);
}

int tm_pool_set_transaction_id(struct tm_pool *p, uint64_t old_id, uint64_t new_id,
			       struct tm_error *e)
{
	int r;

	if ((r = check_writable(p, e)))
		return r;
	if (p->trans_id != old_id)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "mismatched transaction id: the pool's is %llu, not %llu",
			       (unsigned long long)p->trans_id, (unsigned long long)old_id);
	touch(p);
	p->trans_id = new_id;
	return 0;
}

int tm_pool_reserve_metadata_snap(struct tm_pool *p, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t copy;
	int inc, r;

	if ((r = check_writable(p, e)))
		return r;
	if (p->held_root)
		return tm_fail(e, -EBUSY, TM_RULE_ARG, p->held_root,
			       "pool metadata snapshot already exists (block %llu): release it before taking another",
			       (unsigned long long)p->held_root);
	/* the roots we increment below must be the committed ones */
	r = tm_pool_commit(p, e);
	if (r)
		return r;
	touch(p);
	r = tm_tm_inc(p->tm, 0, e);
	if (!r)
		r = tm_tm_shadow(p->tm, 0, SB_V, &copy, buf, &inc, e);
	if (r)
		return failed(p, r);
	/* the copy has no space maps */
	memset(buf + TM_SB_OFF_DATA_SM, 0, TM_SM_ROOT_AREA);
	memset(buf + TM_SB_OFF_META_SM, 0, TM_SM_ROOT_AREA);
	r = tm_tm_inc(p->tm, tm_le64(buf + TM_SB_OFF_MAPPING_ROOT), e);
	if (!r)
		r = tm_tm_inc(p->tm, tm_le64(buf + TM_SB_OFF_DETAILS_ROOT), e);
	if (!r)
		r = tm_tm_write(p->tm, copy, SB_V, buf, e);
	if (r)
		return failed(p, r);
	p->held_root = copy;
	return 0;
}

int tm_pool_release_metadata_snap(struct tm_pool *p, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t held = p->held_root;
	int r;

	if ((r = check_writable(p, e)))
		return r;
	if (!held)
		return tm_fail(e, -EINVAL, TM_RULE_NO_SNAP, 0,
			       "no pool metadata snapshot found: nothing to release");
	r = tm_tm_read(p->tm, held, SB_V, buf, e);
	if (r)
		return failed(p, r);
	touch(p);
	p->held_root = 0;
	r = tm_btree_del(&p->info, tm_le64(buf + TM_SB_OFF_MAPPING_ROOT), e);
	if (!r)
		r = tm_btree_del(&p->details_info, tm_le64(buf + TM_SB_OFF_DETAILS_ROOT), e);
	if (!r)
		r = tm_tm_dec(p->tm, held, e);
	return failed(p, r);
}

/* ------------------------------------------------------------------ */
/* Provisioning */

static int find_block(struct tm_pool *p, uint64_t id, uint64_t vblock, uint64_t *block,
		      uint32_t *time, struct tm_error *e)
{
	uint64_t keys[2] = { id, vblock };
	uint8_t v[8];
	int r = tm_btree_wlookup(&p->info, p->root, keys, v, e);

	if (r)
		return r;
	*block = tm_bt_block(tm_le64(v));
	*time = tm_bt_time(tm_le64(v));
	return 0;
}

int tm_pool_lookup(struct tm_pool *p, uint64_t id, uint64_t vblock,
		   uint64_t *data_block, uint32_t *time, struct tm_error *e)
{
	return find_block(p, id, vblock, data_block, time, e);
}

/*
 * The kernel's alloc_data_block().  *@refused: no block was free (now and
 * at the last commit) and nothing changed, or the pool ran out of
 * metadata space (the allocation committed, -EROFS).
 */
static int alloc_data_block(struct tm_pool *p, uint64_t *b, int *refused,
			    struct tm_error *e)
{
	int r;

	*refused = 0;
	if (!tm_dsm_nr_free(p->dsm)) {
		/* a commit may free blocks released in this transaction */
		r = tm_pool_commit(p, e);
		if (r)
			return r;
		if (!tm_dsm_nr_free(p->dsm)) {
			*refused = 1;
			return tm_fail(e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
				       "out of data space: all %llu data blocks are in use",
				       (unsigned long long)tm_dsm_nr_blocks(p->dsm));
		}
	}
	uint64_t cursor = tm_dsm_cursor(p->dsm);
	r = tm_dsm_new_block(p->dsm, b, e);
	if (r == -ENOSPC && tm_dsm_cursor(p->dsm) == cursor)
		*refused = 1;	/* nothing free now and at the last commit */
	if (r)
		return r;
	touch(p);
	if (!tm_pool_free_metadata_blocks(p)) {
		/* commit before the metadata reserve is used up */
		r = tm_pool_commit(p, e);
		if (r)
			return r;
		/*
		 * Still none free: out of metadata space.  As in the kernel, the
		 * block just allocated stays allocated (committed, mapped by
		 * nothing: a leak thin_check reports) and the write fails; the
		 * commit cleared the transaction, so nothing may be added to it.
		 */
		if (!tm_pool_free_metadata_blocks(p)) {
			*refused = 1;
			return tm_fail(e, -EROFS, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
				       "out of metadata space: the pool is read-only until the metadata device grows");
		}
	}
	return 0;
}

int tm_pool_write(struct tm_pool *p, uint64_t id, uint64_t vblock,
		  enum tm_provision *what, uint64_t *data_block, struct tm_error *e)
{
	uint64_t keys[2] = { id, vblock }, old, nb;
	uint32_t time;
	struct td *t;
	uint8_t v[8];
	int r, inserted, refused;

	if ((r = check_writable(p, e)) || (r = check_id(id, e)))
		return r;
	r = dev_root(p, id, NULL, e);
	if (r == -ENODATA)
		return no_device(id, e);
	if (r)
		return failed(p, r);
	r = open_td(p, id, &t, e);
	if (r)
		return failed(p, r);
	r = find_block(p, id, vblock, &old, &time, e);
	if (!r) {
		/* shared when mapped before the device's last snapshot */
		if (!(t->d.snapshotted_time > time)) {
			*what = TM_PROV_MAPPED;
			*data_block = old;
			return 0;
		}
		*what = TM_PROV_COW;
	} else if (r == -ENODATA) {
		*what = TM_PROV_NEW;
	} else {
		return failed(p, r);
	}
	r = alloc_data_block(p, &nb, &refused, e);
	if (r && refused)
		return r;		/* nothing changed */
	if (r)
		return failed(p, r);
	tm_put_le64(v, tm_bt_pack(nb, p->time));
	r = tm_btree_insert(&p->info, p->root, keys, v, &p->root, &inserted, e);
	if (r)
		return failed(p, r);
	t = find_td(p, id);
	if (!t && (r = open_td(p, id, &t, e)))
		return failed(p, r);
	t->changed = 1;
	if (inserted)
		t->d.mapped_blocks++;
	*data_block = nb;
	return 0;
}

/* The kernel's __remove_range(): the device's tree comes out of the top
 * level, loses the mapped entries of [begin, end), and goes back in. */
static int remove_range(struct tm_pool *p, uint64_t id, uint64_t begin, uint64_t end,
			uint64_t *removed, struct tm_error *e)
{
	uint64_t mapping_root, key, total = 0, count;
	struct td *t;
	uint8_t v[8];
	int r;

	r = dev_root(p, id, &mapping_root, e);
	if (r)
		return r;
	r = tm_tm_inc(p->tm, mapping_root, e);
	if (!r)
		r = tm_btree_remove(&p->tl_info, p->root, &id, &p->root, e);
	if (r)
		return r;
	while (begin < end) {
		r = tm_btree_lookup_next(&p->bl_info, mapping_root, &begin, &key, v, e);
		if (r == -ENODATA)
			break;
		if (r)
			return r;
		begin = key;
		if (begin >= end)
			break;
		r = tm_btree_remove_leaves(&p->bl_info, mapping_root, &begin, end,
					   &mapping_root, &count, e);
		if (r)
			return r;
		total += count;
	}
	r = open_td(p, id, &t, e);
	if (r)
		return r;
	t->d.mapped_blocks -= total;
	t->changed = 1;
	*removed += total;
	tm_put_le64(v, mapping_root);
	return tm_btree_insert(&p->tl_info, p->root, &id, v, &p->root, NULL, e);
}

/* The kernel's __find_mapped_range(): a run of mapped blocks whose data
 * blocks follow each other and whose sharing is the same. */
static int find_mapped_range(struct tm_pool *p, struct td *t, uint64_t begin,
			     uint64_t end, uint64_t *vbegin, uint64_t *vend,
			     struct tm_error *e)
{
	uint64_t keys[2] = { t->id, begin }, pool_end, b;
	uint32_t time;
	uint8_t v[8];
	int shared, r;

	r = tm_btree_lookup_next(&p->info, p->root, keys, &begin, v, e);
	if (r)
		return r;
	if (begin >= end)
		return -ENODATA;
	*vbegin = begin;
	pool_end = tm_bt_block(tm_le64(v)) + 1;
	shared = t->d.snapshotted_time > tm_bt_time(tm_le64(v));
	for (begin++; begin != end; begin++) {
		r = find_block(p, t->id, begin, &b, &time, e);
		if (r == -ENODATA)
			break;
		if (r)
			return r;
		if (b != pool_end || (t->d.snapshotted_time > time) != shared)
			break;
		pool_end++;
	}
	*vend = begin;
	return 0;
}

int tm_pool_discard(struct tm_pool *p, uint64_t id, uint64_t begin, uint64_t end,
		    uint64_t *unmapped, struct tm_error *e)
{
	uint64_t vb, ve;
	struct td *t;
	int r;

	*unmapped = 0;
	if ((r = check_writable(p, e)) || (r = check_id(id, e)))
		return r;
	r = dev_root(p, id, NULL, e);
	if (r == -ENODATA)
		return no_device(id, e);
	if (r)
		return failed(p, r);
	while (begin < end) {
		r = open_td(p, id, &t, e);
		if (r)
			return failed(p, r);
		r = find_mapped_range(p, t, begin, end, &vb, &ve, e);
		if (r == -ENODATA)
			break;
		if (r)
			return failed(p, r);
		touch(p);
		r = remove_range(p, id, vb, ve, unmapped, e);
		if (r)
			return failed(p, r);
		begin = ve;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sizes */

int tm_pool_resize_data(struct tm_pool *p, uint64_t nr_blocks, struct tm_error *e)
{
	uint64_t now = tm_dsm_nr_blocks_now(p->dsm), need;
	int r;

	if ((r = check_writable(p, e)))
		return r;
	if (nr_blocks == now)
		return 0;
	if (nr_blocks < now)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "cannot reduce the data device from %llu to %llu blocks",
			       (unsigned long long)now, (unsigned long long)nr_blocks);
	if (nr_blocks > TM_POOL_MAX_DATA_BLOCKS)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "%llu data blocks: more than 2^40 cannot be mapped",
			       (unsigned long long)nr_blocks);
	/* one bitmap per 16320 blocks, and some room for the index tree */
	need = (nr_blocks + TM_ENTRIES_PER_BITMAP - 1) / TM_ENTRIES_PER_BITMAP -
	       (now + TM_ENTRIES_PER_BITMAP - 1) / TM_ENTRIES_PER_BITMAP;
	if (need + need / 100 + 16 > tm_msm_nr_free(p->msm))
		return tm_fail(e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "the metadata device is too small for %llu data blocks (%llu bitmap blocks needed, %llu free)",
			       (unsigned long long)nr_blocks, (unsigned long long)need,
			       (unsigned long long)tm_msm_nr_free(p->msm));
	touch(p);
	return failed(p, tm_dsm_extend(p->dsm, nr_blocks - now, e));
}

int tm_pool_resize_metadata(struct tm_pool *p, uint64_t nr_blocks, struct tm_error *e)
{
	uint64_t now = tm_msm_nr_blocks(p->msm);
	int r;

	if (p->failed || (p->flags & TM_SB_FLAG_NEEDS_CHECK))
		return check_writable(p, e);
	if (nr_blocks > TM_MAX_METADATA_BLOCKS)
		nr_blocks = TM_MAX_METADATA_BLOCKS;
	if (nr_blocks == now)
		return 0;
	if (nr_blocks < now)
		return tm_fail(e, -EINVAL, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "metadata device (%llu blocks) too small: expected %llu",
			       (unsigned long long)nr_blocks, (unsigned long long)now);
	if (nr_blocks > tm_bm_nr_blocks(p->bm))
		return tm_fail(e, -EINVAL, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "the metadata device has only %llu blocks, not %llu",
			       (unsigned long long)tm_bm_nr_blocks(p->bm),
			       (unsigned long long)nr_blocks);
	touch(p);
	r = tm_msm_extend(p->msm, nr_blocks - now, e);
	if (r)
		return failed(p, r);
	p->metadata_reserve = metadata_reserve(tm_msm_nr_blocks(p->msm));
	p->out_of_metadata = 0;
	return 0;
}

int tm_pool_grow_metadata_to_device(struct tm_pool *p, int *grown, struct tm_error *e)
{
	uint64_t dev_blocks = tm_bm_nr_blocks(p->bm);
	int r;

	*grown = 0;
	if (dev_blocks > TM_MAX_METADATA_BLOCKS)
		dev_blocks = TM_MAX_METADATA_BLOCKS;
	if (dev_blocks <= tm_msm_nr_blocks(p->msm) || tm_pool_is_read_only(p))
		return 0;
	r = tm_pool_resize_metadata(p, dev_blocks, e);
	if (!r)
		r = tm_pool_commit(p, e);
	if (!r)
		*grown = 1;
	return r;
}

int tm_pool_set_needs_check(struct tm_pool *p, int set, struct tm_error *e)
{
	uint8_t sb[TM_BLOCK_SIZE];
	int r;

	if (p->failed)
		return check_writable(p, e);
	if (set)
		p->flags |= TM_SB_FLAG_NEEDS_CHECK;
	else
		p->flags &= ~TM_SB_FLAG_NEEDS_CHECK;
	/* straight into the committed superblock, as the kernel does */
	memcpy(sb, p->sb, TM_BLOCK_SIZE);
	tm_put_le32(sb + TM_SB_OFF_FLAGS, p->flags);
	if (!memcmp(sb, p->sb, TM_BLOCK_SIZE))
		return 0;
	r = tm_bm_write(p->bm, 0, SB_V, sb, e);
	if (!r)
		r = tm_bm_flush(p->bm, e);
	if (r)
		return failed(p, r);
	memcpy(p->sb, sb, TM_BLOCK_SIZE);
	return 0;
}

/* ------------------------------------------------------------------ */
/* State */

int tm_pool_status(struct tm_pool *p, struct tm_pool_status *st, struct tm_error *e)
{
	uint64_t dev_sectors = p->dev->size_bytes / TM_SECTOR_SIZE;
	int r;

	if (!tm_pool_is_read_only(p)) {
		r = tm_pool_commit(p, e);
		if (r)
			return r;
	}
	memset(st, 0, sizeof(*st));
	st->transaction_id = p->trans_id;
	st->meta_total = tm_msm_nr_blocks(p->msm);
	st->meta_used = st->meta_total - tm_pool_free_metadata_blocks(p);
	st->data_total = tm_dsm_nr_blocks(p->dsm);
	st->data_used = st->data_total - tm_dsm_nr_free(p->dsm);
	st->held_root = p->held_root;
	st->read_only = tm_pool_is_read_only(p);
	st->needs_check = (p->flags & TM_SB_FLAG_NEEDS_CHECK) != 0;
	if (dev_sectors > MAX_SECTORS_WARNING)
		dev_sectors = MAX_SECTORS_WARNING;
	st->meta_low_water = dev_sectors / TM_BLOCK_SECTORS / 4;
	if (st->meta_low_water > 1024)
		st->meta_low_water = 1024;
	return 0;
}

struct dev_list {
	struct tm_pool *p;
	struct tm_pool_device_info *devs;
	uint64_t n, cap;
};

static int collect_devs(struct tm_pool *p, uint64_t b, int depth, struct dev_list *l,
			struct tm_error *e)
{
	uint8_t *buf;
	int r = 0;

	if (depth >= 16)
		return tm_fail(e, -ELOOP, TM_RULE_DEPTH, b, "btree deeper than 16 levels");
	buf = malloc(TM_BLOCK_SIZE);
	if (!buf)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, b, "out of memory");
	r = tm_tm_read(p->tm, b, &tm_node_validator, buf, e);
	if (!r && tm_bn_vsize(buf) != 8)
		r = tm_fail(e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
			    "block %llu: top-level mapping tree node has value_size %u",
			    (unsigned long long)b, tm_bn_vsize(buf));
	for (uint32_t i = 0; !r && i < tm_bn_nr(buf); i++) {
		uint64_t v = tm_le64(tm_bn_value(buf, i));
		if (!tm_bn_is_leaf(buf)) {
			r = collect_devs(p, v, depth + 1, l, e);
			continue;
		}
		if (l->n == l->cap) {
			uint64_t nc = l->cap ? l->cap * 2 : 64;
			struct tm_pool_device_info *nd = realloc(l->devs, nc * sizeof(*nd));
			if (!nd) {
				r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, b, "out of memory");
				break;
			}
			l->devs = nd;
			l->cap = nc;
		}
		struct td *t;
		uint64_t id = tm_bn_key(buf, i);
		r = open_td(p, id, &t, e);
		if (r)
			break;
		l->devs[l->n++] = (struct tm_pool_device_info){
			id, t->d.mapped_blocks, t->d.transaction_id, t->d.creation_time,
			t->d.snapshotted_time };
	}
	free(buf);
	return r;
}

int tm_pool_devices(struct tm_pool *p, struct tm_pool_device_info **devs,
		    uint64_t *nr, struct tm_error *e)
{
	struct dev_list l = { p, NULL, 0, 0 };
	int r = collect_devs(p, p->root, 0, &l, e);

	if (r) {
		free(l.devs);
		return r;
	}
	*devs = l.devs;
	*nr = l.n;
	return 0;
}

uint32_t tm_pool_time(const struct tm_pool *p) { return p->time; }
uint64_t tm_pool_transaction_id(const struct tm_pool *p) { return p->trans_id; }
uint64_t tm_pool_held_root(const struct tm_pool *p) { return p->held_root; }
uint32_t tm_pool_data_block_size(const struct tm_pool *p) { return p->data_block_size; }
uint64_t tm_pool_nr_data_blocks(const struct tm_pool *p) { return tm_dsm_nr_blocks_now(p->dsm); }
uint64_t tm_pool_nr_metadata_blocks(const struct tm_pool *p) { return tm_msm_nr_blocks(p->msm); }
uint64_t tm_pool_free_data_blocks(const struct tm_pool *p) { return tm_dsm_nr_free(p->dsm); }
int tm_pool_changed(const struct tm_pool *p) { return p->changed; }
uint64_t tm_pool_data_cursor(const struct tm_pool *p) { return tm_dsm_cursor(p->dsm); }
const uint8_t *tm_pool_last_superblock(const struct tm_pool *p) { return p->sb; }

uint64_t tm_pool_free_metadata_blocks(const struct tm_pool *p)
{
	uint64_t f = tm_msm_nr_free(p->msm);

	return f < p->metadata_reserve ? 0 : f - p->metadata_reserve;
}

int tm_pool_failed(const struct tm_pool *p)
{
	return p->failed;
}

int tm_pool_is_read_only(const struct tm_pool *p)
{
	return p->failed || (p->flags & TM_SB_FLAG_NEEDS_CHECK) || p->out_of_metadata;
}
