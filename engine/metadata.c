/*
 * metadata.c - opening a pool's metadata for reading: the live superblock,
 * the held metadata snapshot, and the device list (the details tree joined
 * with the top level of the mapping tree).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "thinmeta/metadata.h"

void tm_details_decode(const void *p, struct tm_device_details *d)
{
	const uint8_t *b = p;

	d->mapped_blocks = tm_le64(b);
	d->transaction_id = tm_le64(b + 8);
	d->creation_time = tm_le32(b + 16);
	d->snapshotted_time = tm_le32(b + 20);
}

void tm_details_encode(const struct tm_device_details *d, void *p)
{
	uint8_t *b = p;

	tm_put_le64(b, d->mapped_blocks);
	tm_put_le64(b + 8, d->transaction_id);
	tm_put_le32(b + 16, d->creation_time);
	tm_put_le32(b + 20, d->snapshotted_time);
}

int tm_sb_read(struct tm_bm *bm, uint64_t b, struct tm_superblock *sb,
	       struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	int r;

	r = tm_bm_read(bm, b, &tm_sb_validator, buf, e);
	if (r == -EILSEQ) {
		/* a pool may be rewriting it: look again before calling it damage */
		tm_bm_forget(bm, b);
		r = tm_bm_read(bm, b, &tm_sb_validator, buf, e);
	}
	if (!r)
		tm_sb_decode(buf, sb);
	return r;
}

static int read_sb_at(struct tm_bm *bm, uint64_t b, struct tm_superblock *sb,
		      struct tm_error *e)
{
	int r = tm_sb_read(bm, b, sb, e);

	return r ? r : tm_sb_check_fields(sb, tm_bm_nr_blocks(bm), b != 0, e);
}

int tm_read_superblock(struct tm_bm *bm, struct tm_superblock *sb, struct tm_error *e)
{
	if (tm_bm_nr_blocks(bm) < 1)
		return tm_fail(e, -EUCLEAN, TM_RULE_TOO_SMALL, 0,
			       "metadata device is smaller than one block");
	return read_sb_at(bm, 0, sb, e);
}

int tm_view_live(struct tm_bm *bm, struct tm_view *v, struct tm_error *e)
{
	memset(v, 0, sizeof(*v));
	return tm_read_superblock(bm, &v->sb, e);
}

int tm_view_snapshot(struct tm_bm *bm, uint64_t expect, struct tm_view *v,
		     struct tm_error *e)
{
	struct tm_superblock live;
	int r;

	memset(v, 0, sizeof(*v));
	r = tm_read_superblock(bm, &live, e);
	if (r)
		return r;
	if (!live.held_root)
		return tm_fail(e, -ENODATA, TM_RULE_NO_SNAP, 0,
			       "no current metadata snapshot (the superblock holds none)");
	if (expect && expect != live.held_root)
		return tm_fail(e, -EINVAL, TM_RULE_SNAP_MISMATCH, expect,
			       "metadata snapshot block %llu does not match the one in the superblock (%llu)",
			       (unsigned long long)expect,
			       (unsigned long long)live.held_root);
	r = read_sb_at(bm, live.held_root, &v->sb, e);
	if (r) {
		tm_error_context(e, "metadata snapshot");
		return r;
	}
	v->sb_block = live.held_root;
	v->is_snapshot = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Devices */

struct kv_list {
	uint64_t *keys;
	uint8_t *vals;
	uint32_t vsize;
	uint64_t n, cap;
	struct tm_error *e;
};

static int collect_leaf(void *ctx, const struct tm_node *leaf)
{
	struct kv_list *l = ctx;

	if (l->n + leaf->nr_entries > l->cap) {
		uint64_t ncap = (l->cap ? l->cap * 2 : 64) + leaf->nr_entries;
		uint64_t *nk = realloc(l->keys, ncap * sizeof(uint64_t));
		if (!nk)
			return tm_fail(l->e, -ENOMEM, TM_RULE_NOMEM, leaf->block, "out of memory");
		l->keys = nk;
		uint8_t *nv = realloc(l->vals, ncap * l->vsize);
		if (!nv)
			return tm_fail(l->e, -ENOMEM, TM_RULE_NOMEM, leaf->block, "out of memory");
		l->vals = nv;
		l->cap = ncap;
	}
	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		l->keys[l->n] = tm_node_key(leaf, i);
		memcpy(l->vals + l->n * l->vsize, tm_node_value(leaf, i), l->vsize);
		l->n++;
	}
	return 0;
}

static void kv_free(struct kv_list *l)
{
	free(l->keys);
	free(l->vals);
}

int tm_read_devices(struct tm_bm *bm, const struct tm_view *v, int details_only,
		    struct tm_device **devs, uint64_t *nr, struct tm_error *e)
{
	struct kv_list det = { .vsize = TM_VSIZE_DETAILS, .e = e };
	struct kv_list top = { .vsize = TM_VSIZE_U64, .e = e };
	struct tm_device *out = NULL;
	int r;

	*devs = NULL;
	*nr = 0;
	r = tm_btree_walk(bm, v->sb.details_root, TM_VSIZE_DETAILS, collect_leaf, &det, e);
	if (r) {
		tm_error_context(e, "device details tree");
		goto done;
	}
	if (!details_only) {
		r = tm_btree_walk(bm, v->sb.mapping_root, TM_VSIZE_U64, collect_leaf, &top, e);
		if (r) {
			tm_error_context(e, "mapping tree (top level)");
			goto done;
		}
	}
	out = calloc(det.n ? det.n : 1, sizeof(*out));
	if (!out) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto done;
	}
	uint64_t j = 0;
	for (uint64_t i = 0; i < det.n; i++) {
		out[i].dev_id = det.keys[i];
		tm_details_decode(det.vals + i * det.vsize, &out[i].details);
		if (details_only)
			continue;
		if (j < top.n && top.keys[j] < det.keys[i]) {
			r = tm_fail(e, -EUCLEAN, TM_RULE_DEVICES, v->sb.mapping_root,
				    "device %llu is in the mapping tree but not in the device details tree",
				    (unsigned long long)top.keys[j]);
			goto done;
		}
		if (j >= top.n || top.keys[j] != det.keys[i]) {
			r = tm_fail(e, -EUCLEAN, TM_RULE_DEVICES, v->sb.details_root,
				    "device %llu is in the device details tree but not in the mapping tree",
				    (unsigned long long)det.keys[i]);
			goto done;
		}
		out[i].mapping_root = tm_le64(top.vals + j * 8);
		j++;
	}
	if (!details_only && j < top.n) {
		r = tm_fail(e, -EUCLEAN, TM_RULE_DEVICES, v->sb.mapping_root,
			    "device %llu is in the mapping tree but not in the device details tree",
			    (unsigned long long)top.keys[j]);
		goto done;
	}
	*devs = out;
	*nr = det.n;
	out = NULL;
done:
	free(out);
	kv_free(&det);
	kv_free(&top);
	return r;
}
