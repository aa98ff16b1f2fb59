/*
 * space_map.c - reading the on-disk space maps: the index (the metadata
 * space map's index block, or the data space map's index btree), bitmap
 * entries and the overflow ref-count tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "thinmeta/space_map.h"

void tm_index_entry_decode(const void *p, struct tm_index_entry *ie)
{
	const uint8_t *b = p;

	ie->blocknr = tm_le64(b);
	ie->nr_free = tm_le32(b + 8);
	ie->none_free_before = tm_le32(b + 12);
}

void tm_index_entry_encode(const struct tm_index_entry *ie, void *p)
{
	uint8_t *b = p;

	tm_put_le64(b, ie->blocknr);
	tm_put_le32(b + 8, ie->nr_free);
	tm_put_le32(b + 12, ie->none_free_before);
}

struct index_walk {
	struct tm_sm_disk *sm;
	struct tm_error *e;
	uint64_t next;		/* next expected bitmap index */
	uint64_t cap;		/* entries allocated in sm->index */
};

static int index_leaf(void *ctx, const struct tm_node *leaf)
{
	struct index_walk *iw = ctx;

	for (uint32_t i = 0; i < leaf->nr_entries; i++) {
		uint64_t k = tm_node_key(leaf, i);
		if (k != iw->next || k >= iw->sm->nr_bitmaps)
			return tm_fail(iw->e, -EUCLEAN, TM_RULE_BAD_VALUE, leaf->block,
				       "block %llu: data space map index has key %llu where %llu was expected",
				       (unsigned long long)leaf->block,
				       (unsigned long long)k,
				       (unsigned long long)iw->next);
		if (k == iw->cap) {
			/* grow with what is really there, not with what nr_blocks claims */
			uint64_t ncap = iw->cap * 2 < iw->sm->nr_bitmaps ? iw->cap * 2
									 : iw->sm->nr_bitmaps;
			struct tm_index_entry *ni = realloc(iw->sm->index, ncap * sizeof(*ni));
			if (!ni)
				return tm_fail(iw->e, -ENOMEM, TM_RULE_NOMEM, leaf->block,
					       "out of memory");
			iw->sm->index = ni;
			iw->cap = ncap;
		}
		tm_index_entry_decode(tm_node_value(leaf, i), &iw->sm->index[k]);
		iw->next++;
	}
	return 0;
}

#define INDEX_INITIAL_ENTRIES 1024u

int tm_sm_disk_open(struct tm_bm *bm, enum tm_sm_kind kind,
		    const struct tm_sm_root *root, struct tm_sm_disk *sm,
		    struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t nr_bitmaps;
	int r;

	memset(sm, 0, sizeof(*sm));
	sm->kind = kind;
	sm->root = *root;
	nr_bitmaps = (root->nr_blocks + TM_ENTRIES_PER_BITMAP - 1) / TM_ENTRIES_PER_BITMAP;
	if (kind == TM_SM_METADATA && nr_bitmaps > TM_META_INDEX_ENTRIES)
		return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, root->bitmap_root,
			       "metadata space map tracks %llu blocks, more than one index block can hold",
			       (unsigned long long)root->nr_blocks);
	/* each bitmap needs a distinct metadata block */
	if (nr_bitmaps > tm_bm_nr_blocks(bm))
		return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, root->bitmap_root,
			       "%s space map tracks %llu blocks: more bitmaps than the metadata device has blocks",
			       kind == TM_SM_DATA ? "data" : "metadata",
			       (unsigned long long)root->nr_blocks);
	sm->nr_bitmaps = nr_bitmaps;
	/*
	 * The data space map's index grows as its btree is read, so that a
	 * nr_blocks that claims more than the metadata holds costs no memory.
	 */
	uint64_t cap = kind == TM_SM_DATA && nr_bitmaps > INDEX_INITIAL_ENTRIES
			       ? INDEX_INITIAL_ENTRIES : nr_bitmaps;
	sm->index = calloc(cap ? cap : 1, sizeof(*sm->index));
	if (!sm->index)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");

	if (kind == TM_SM_METADATA) {
		sm->index_block = root->bitmap_root;
		r = tm_bm_read(bm, root->bitmap_root, &tm_index_validator, buf, e);
		if (r)
			goto fail;
		for (uint64_t i = 0; i < nr_bitmaps; i++)
			tm_index_entry_decode(buf + 16 + 16 * i, &sm->index[i]);
	} else {
		struct index_walk iw = { sm, e, 0, cap };
		r = tm_btree_walk(bm, root->bitmap_root, TM_VSIZE_INDEX, index_leaf, &iw, e);
		if (r)
			goto fail;
		if (iw.next != nr_bitmaps) {
			r = tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, root->bitmap_root,
				    "data space map index has %llu entries, expected %llu",
				    (unsigned long long)iw.next,
				    (unsigned long long)nr_bitmaps);
			goto fail;
		}
	}
	return 0;
fail:
	tm_sm_disk_close(sm);
	return r;
}

void tm_sm_disk_close(struct tm_sm_disk *sm)
{
	free(sm->index);
	sm->index = NULL;
}

int tm_sm_disk_get(struct tm_bm *bm, struct tm_sm_disk *sm, uint64_t b,
		   uint32_t *count, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t bi = b / TM_ENTRIES_PER_BITMAP;
	unsigned v;
	int r;

	if (b >= sm->root.nr_blocks)
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, b,
			       "block %llu is past the end of the space map (%llu blocks)",
			       (unsigned long long)b, (unsigned long long)sm->root.nr_blocks);
	r = tm_bm_read(bm, sm->index[bi].blocknr, &tm_bitmap_validator, buf, e);
	if (r)
		return r;
	v = tm_bitmap_get(buf, (uint32_t)(b % TM_ENTRIES_PER_BITMAP));
	if (v < 3) {
		*count = v;
		return 0;
	}
	uint8_t val[4];
	r = tm_btree_lookup(bm, sm->root.ref_count_root, TM_VSIZE_REFCOUNT, b, val, e);
	if (r == -ENODATA)
		return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
			       "block %llu has count >= 3 in its bitmap but no entry in the ref-count tree",
			       (unsigned long long)b);
	if (r)
		return r;
	*count = tm_le32(val);
	return 0;
}
