/*
 * trim.c - check a pool's metadata enough to trust its data space map,
 * then list the free data blocks (include/thinmeta/trim.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "count2.h"
#include "mtree.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"
#include "thinmeta/trim.h"

struct tctx {
	struct tm_error *e;
	struct count2 used;
	uint64_t nr_data;
	struct tm_range *runs;
	uint64_t nr, cap;
};

static int mark_used(void *ctx, const struct mt_ref *l, const struct tm_node *leaf)
{
	struct tctx *t = ctx;

	(void)l;
	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		uint64_t d = tm_bt_block(tm_node_value64(leaf, i));
		if (d >= t->nr_data)
			return tm_fail(t->e, -ERANGE, TM_RULE_OUT_OF_RANGE, leaf->block,
				       "block %" PRIu64 ": virtual block %" PRIu64
				       " maps data block %" PRIu64
				       ", past the end of the data device (%" PRIu64 " blocks)",
				       leaf->block, tm_node_key(leaf, i), d, t->nr_data);
		if (count2_inc(&t->used, d))
			return tm_fail(t->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	}
	return 0;
}

/*
 * List the leaves of @n devices' mapping trees that no earlier tree holds
 * (@seen), tagged @tag0 + the device's index.
 */
static int list_devices(struct tm_bm *bm, const struct tm_device *devs, uint64_t n,
			uint8_t *seen, uint32_t tag0, const char *what, struct mt_refs *out,
			struct tm_error *e)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t root = devs[i].mapping_root;
		int height, r;
		if (root < tm_bm_nr_blocks(bm) && (seen[root / 8] & (1u << (root % 8))))
			continue;	/* listed for an earlier device */
		if ((r = mt_height(bm, root, &height, e)) ||
		    (r = mt_list_leaves(bm, root, height, 1, seen, tag0 + (uint32_t)i, out, e))) {
			tm_error_context(e, "%sdevice %" PRIu64 " mapping tree", what,
					 devs[i].dev_id);
			return r;
		}
	}
	return 0;
}

static int push_run(struct tctx *t, uint64_t b, uint64_t e)
{
	if (t->nr == t->cap) {
		uint64_t ncap = t->cap ? t->cap * 2 : 64;
		struct tm_range *nr = realloc(t->runs, ncap * sizeof(*nr));
		if (!nr)
			return tm_fail(t->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		t->runs = nr;
		t->cap = ncap;
	}
	t->runs[t->nr].begin = b;
	t->runs[t->nr].end = e;
	t->nr++;
	return 0;
}

int tm_free_data_ranges(struct tm_bm *bm, struct tm_superblock *sb, struct tm_range **free_out,
			uint64_t *nr_free, struct tm_error *e)
{
	struct tctx t = { .e = e };
	struct tm_view view;
	struct tm_device *devs = NULL;
	struct tm_sm_disk sm = { 0 };
	struct tm_device *sdevs = NULL;
	struct mt_refs leaves = { 0 };
	uint8_t *seen = NULL;
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t nr_devs = 0, nr_sdevs = 0;
	int r, have_sm = 0;

	*free_out = NULL;
	*nr_free = 0;
	if ((r = tm_view_live(bm, &view, e)))
		goto out;
	*sb = view.sb;
	t.nr_data = view.sb.data_sm.nr_blocks;
	if ((r = tm_read_devices(bm, &view, 0, &devs, &nr_devs, e)))
		goto out;
	if ((r = tm_sm_disk_open(bm, TM_SM_DATA, &view.sb.data_sm, &sm, e))) {
		tm_error_context(e, "data space map");
		goto out;
	}
	have_sm = 1;
	if (count2_init(&t.used, t.nr_data)) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	/* the leaves of the live trees, then of the held metadata snapshot's */
	seen = calloc(tm_bm_nr_blocks(bm) / 8 + 1, 1);
	if (!seen) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	if ((r = list_devices(bm, devs, nr_devs, seen, 0, "", &leaves, e)))
		goto out;
	if (view.sb.held_root) {
		/* its trees keep their data blocks too */
		struct tm_view snap;
		if ((r = tm_view_snapshot(bm, 0, &snap, e)) ||
		    (r = tm_read_devices(bm, &snap, 0, &sdevs, &nr_sdevs, e))) {
			tm_error_context(e, "held metadata snapshot");
			goto out;
		}
		if (nr_devs + nr_sdevs > UINT32_MAX) {
			r = tm_fail(e, -EUCLEAN, TM_RULE_DEVICES, TM_NO_BLOCK,
				    "more thin devices than can be counted");
			goto out;
		}
		r = list_devices(bm, sdevs, nr_sdevs, seen, (uint32_t)nr_devs,
				 "held metadata snapshot: ", &leaves, e);
		if (r)
			goto out;
	}
	size_t bad;
	if ((r = mt_read_nodes(bm, &leaves, 0, mark_used, &t, &bad, e))) {
		uint64_t tag = bad < leaves.n ? leaves.v[bad].tag : UINT64_MAX;
		if (tag < nr_devs)
			tm_error_context(e, "device %" PRIu64 " mapping tree", devs[tag].dev_id);
		else if (tag != UINT64_MAX)
			tm_error_context(e, "held metadata snapshot: device %" PRIu64
					 " mapping tree", sdevs[tag - nr_devs].dev_id);
		goto out;
	}

	uint64_t run_begin = 0;
	int in_run = 0;
	for (uint64_t bi = 0; bi < sm.nr_bitmaps; bi++) {
		uint64_t base = bi * TM_ENTRIES_PER_BITMAP;
		uint64_t n = t.nr_data - base < TM_ENTRIES_PER_BITMAP ? t.nr_data - base
								    : TM_ENTRIES_PER_BITMAP;
		r = tm_bm_read(bm, sm.index[bi].blocknr, &tm_bitmap_validator, buf, e);
		if (r) {
			tm_error_context(e, "data space map bitmap %" PRIu64, bi);
			goto out;
		}
		for (uint64_t j = 0; j < n; j++) {
			uint64_t b = base + j;
			if (tm_bitmap_get(buf, (uint32_t)j)) {
				if (in_run && (r = push_run(&t, run_begin, b)))
					goto out;
				in_run = 0;
				continue;
			}
			if (count2_get(&t.used, b)) {
				r = tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, sm.index[bi].blocknr,
					    "data block %" PRIu64 " is mapped by a thin device but free "
					    "in the data space map (bitmap block %" PRIu64 ")",
					    b, sm.index[bi].blocknr);
				goto out;
			}
			if (!in_run) {
				in_run = 1;
				run_begin = b;
			}
		}
	}
	if (in_run && (r = push_run(&t, run_begin, t.nr_data)))
		goto out;
	*free_out = t.runs;
	*nr_free = t.nr;
	t.runs = NULL;
	r = 0;
out:
	if (have_sm)
		tm_sm_disk_close(&sm);
	count2_free(&t.used);
	free(seen);
	free(leaves.v);
	free(sdevs);
	free(devs);
	free(t.runs);
	return r;
}
