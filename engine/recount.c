/*
 * recount.c - every reference count recomputed from the trees and
 * compared with the space maps (recount.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "thinmeta/format.h"
#include "thinmeta/metadata.h"
#include "thinmeta/recount.h"
#include "thinmeta/space_map.h"

struct rc {
	struct tm_bm *bm;
	struct tm_error *e;
	uint64_t nm;			/* metadata blocks tracked */
	uint32_t *meta;			/* expected counts */
	uint64_t *data;			/* data references */
	uint64_t nd, capd;
	uint64_t mismatches;
	uint64_t overflow_entries;	/* of the overflow tree being walked */
	uint64_t overflow_meta, overflow_data;
	uint64_t data_pos;		/* cursor into the sorted data */
};

/* Count one reference to metadata block @b; 1 if it was the first. */
static int ref(struct rc *c, uint64_t b, const char *what, int *first)
{
	if (b >= c->nm)
		return tm_fail(c->e, -EUCLEAN, TM_RULE_OUT_OF_RANGE, b,
			       "%s at block %llu is past the end of the metadata space map (%llu blocks)",
			       what, (unsigned long long)b, (unsigned long long)c->nm);
	*first = c->meta[b]++ == 0;
	return 0;
}

static int push_data(struct rc *c, uint64_t b)
{
	if (c->nd == c->capd) {
		uint64_t n = c->capd ? c->capd * 2 : 4096;
		uint64_t *d = realloc(c->data, n * sizeof(*d));
		if (!d)
			return tm_fail(c->e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		c->data = d;
		c->capd = n;
	}
	c->data[c->nd++] = b;
	return 0;
}

enum leaf_kind { LEAF_NONE, LEAF_INDEX, LEAF_TOP, LEAF_MAPPING, LEAF_OVERFLOW };

static int walk(struct rc *c, uint64_t b, uint32_t vsize, enum leaf_kind kind,
		const char *what, int depth);

static int leaf(struct rc *c, const struct tm_node *n, enum leaf_kind kind, int depth)
{
	int r;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		switch (kind) {
		case LEAF_INDEX: {
			struct tm_index_entry ie;
			int first = 0;
			tm_index_entry_decode(tm_node_value(n, i), &ie);
			r = ref(c, ie.blocknr, "data space map bitmap", &first);
			if (r)
				return r;
			break;
		}
		case LEAF_TOP:
			r = walk(c, tm_node_value64(n, i), 8, LEAF_MAPPING, "mapping tree", depth + 1);
			if (r)
				return r;
			break;
		case LEAF_MAPPING:
			r = push_data(c, tm_bt_block(tm_node_value64(n, i)));
			if (r)
				return r;
			break;
		case LEAF_OVERFLOW:
			c->overflow_entries++;
			break;
		default:
			return 0;
		}
	}
	return 0;
}

static int walk(struct rc *c, uint64_t b, uint32_t vsize, enum leaf_kind kind,
		const char *what, int depth)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node n;
	int first = 0, r;

	if (depth > 2 * TM_BTREE_MAX_DEPTH)
		return tm_fail(c->e, -ELOOP, TM_RULE_DEPTH, b, "%s: too deep at block %llu",
			       what, (unsigned long long)b);
	r = ref(c, b, what, &first);
	if (r || !first)
		return r;
	r = tm_bm_read(c->bm, b, &tm_node_validator, buf, c->e);
	if (r)
		return r;
	tm_node_view(buf, b, &n);
	if (n.value_size != (tm_node_is_leaf(&n) ? vsize : 8))
		return tm_fail(c->e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
			       "%s: block %llu has value_size %u", what,
			       (unsigned long long)b, n.value_size);
	if (tm_node_is_leaf(&n))
		return leaf(c, &n, kind, depth);
	for (uint32_t i = 0; i < n.nr_entries; i++) {
		r = walk(c, tm_node_value64(&n, i), vsize, kind, what, depth + 1);
		if (r)
			return r;
	}
	return 0;
}

static int walk_roots(struct rc *c, uint64_t mapping_root, uint64_t details_root)
{
	int r = walk(c, details_root, TM_VSIZE_DETAILS, LEAF_NONE, "device details tree", 0);

	if (r)
		return r;
	return walk(c, mapping_root, 8, LEAF_TOP, "mapping tree", 0);
}

static void mismatch(struct rc *c, const char *kind, uint64_t b, uint32_t on_disk,
		     uint64_t expected)
{
	if (!c->mismatches++)
		tm_fail(c->e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
			"%s block %llu: the space map says %u, the trees reference it %llu times",
			kind, (unsigned long long)b, on_disk, (unsigned long long)expected);
}

/* Walk a space map's bitmaps, calling back with each block's count. */
typedef uint64_t (*expect_fn)(struct rc *c, uint64_t b);

static int compare_sm(struct rc *c, enum tm_sm_kind kind, const struct tm_sm_root *root,
		      expect_fn expect, uint64_t overflow_entries, uint64_t *referenced)
{
	const char *name = kind == TM_SM_DATA ? "data" : "metadata";
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_sm_disk sm;
	uint64_t nonzero = 0, threes = 0;
	int r;

	r = tm_sm_disk_open(c->bm, kind, root, &sm, c->e);
	if (r)
		return r;
	for (uint64_t i = 0; i < sm.nr_bitmaps; i++) {
		r = tm_bm_read(c->bm, sm.index[i].blocknr, &tm_bitmap_validator, buf, c->e);
		if (r)
			goto out;
		for (uint32_t j = 0; j < TM_ENTRIES_PER_BITMAP; j++) {
			uint64_t b = i * TM_ENTRIES_PER_BITMAP + j;
			uint32_t v = tm_bitmap_get(buf, j);
			if (b >= root->nr_blocks) {
				if (v)
					mismatch(c, name, b, v, 0);
				continue;
			}
			if (v == 3) {
				uint8_t val[4];
				r = tm_btree_lookup(c->bm, root->ref_count_root, 4, b, val, c->e);
				if (r == -ENODATA) {
					r = tm_fail(c->e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
						    "%s block %llu: bitmap says >= 3 but the ref-count tree has no entry",
						    name, (unsigned long long)b);
					goto out;
				}
				if (r)
					goto out;
				v = tm_le32(val);
				threes++;
				if (v < 3)
					mismatch(c, name, b, v, expect(c, b));
			}
			if (v)
				nonzero++;
			uint64_t x = expect(c, b);
			if (x != v)
				mismatch(c, name, b, v, x);
		}
	}
	if (threes != overflow_entries && !c->mismatches++)
		tm_fail(c->e, -EUCLEAN, TM_RULE_BAD_VALUE, root->ref_count_root,
			"%s space map: %llu blocks have count >= 3 but the ref-count tree has %llu entries",
			name, (unsigned long long)threes, (unsigned long long)overflow_entries);
	if (nonzero != root->nr_allocated && !c->mismatches++)
		tm_fail(c->e, -EUCLEAN, TM_RULE_BAD_VALUE, TM_NO_BLOCK,
			"%s space map: nr_allocated is %llu but %llu blocks have a count",
			name, (unsigned long long)root->nr_allocated, (unsigned long long)nonzero);
	*referenced = nonzero;
out:
	tm_sm_disk_close(&sm);
	return r;
}

static uint64_t expect_meta(struct rc *c, uint64_t b)
{
	return c->meta[b];
}

/* c->data sorted; a cursor moving forward with b. */
static uint64_t expect_data(struct rc *c, uint64_t b)
{
	uint64_t n = 0;

	while (c->data_pos < c->nd && c->data[c->data_pos] < b)
		c->data_pos++;
	for (uint64_t i = c->data_pos; i < c->nd && c->data[i] == b; i++)
		n++;
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int tm_recount(struct tm_bm *bm, struct tm_recount_result *res, struct tm_error *e)
{
	struct rc c = { .bm = bm, .e = e };
	struct tm_superblock sb;
	uint8_t buf[TM_BLOCK_SIZE];
	int first = 0, r;

	memset(res, 0, sizeof(*res));
	r = tm_read_superblock(bm, &sb, e);
	if (r)
		return r;
	c.nm = sb.meta_sm.nr_blocks;
	if (c.nm > tm_bm_nr_blocks(bm))
		return tm_fail(e, -EUCLEAN, TM_RULE_TOO_SMALL, 0,
			       "metadata space map tracks %llu blocks, the device has %llu",
			       (unsigned long long)c.nm, (unsigned long long)tm_bm_nr_blocks(bm));
	c.meta = calloc(c.nm ? c.nm : 1, sizeof(*c.meta));
	if (!c.meta)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");

	/* superblock, metadata space map */
	r = ref(&c, 0, "superblock", &first);
	if (!r)
		r = ref(&c, sb.meta_sm.bitmap_root, "metadata space map index", &first);
	if (!r)
		r = tm_bm_read(bm, sb.meta_sm.bitmap_root, &tm_index_validator, buf, e);
	if (!r) {
		uint64_t nb = (c.nm + TM_ENTRIES_PER_BITMAP - 1) / TM_ENTRIES_PER_BITMAP;
		for (uint64_t i = 0; !r && i < nb && i < TM_META_INDEX_ENTRIES; i++) {
			struct tm_index_entry ie;
			tm_index_entry_decode(buf + 16 + 16 * i, &ie);
			r = ref(&c, ie.blocknr, "metadata space map bitmap", &first);
		}
	}
	if (!r)
		r = walk(&c, sb.meta_sm.ref_count_root, 4, LEAF_OVERFLOW,
			 "metadata space map ref-count tree", 0);
	c.overflow_meta = c.overflow_entries;
	c.overflow_entries = 0;
	/* data space map */
	if (!r)
		r = walk(&c, sb.data_sm.bitmap_root, TM_VSIZE_INDEX, LEAF_INDEX,
			 "data space map index tree", 0);
	if (!r)
		r = walk(&c, sb.data_sm.ref_count_root, 4, LEAF_OVERFLOW,
			 "data space map ref-count tree", 0);
	c.overflow_data = c.overflow_entries;
	/* the live trees and the held snapshot's */
	if (!r)
		r = walk_roots(&c, sb.mapping_root, sb.details_root);
	if (!r && sb.held_root) {
		struct tm_view v;
		r = ref(&c, sb.held_root, "metadata snapshot", &first);
		if (!r)
			r = tm_view_snapshot(bm, 0, &v, e);
		if (!r)
			r = walk_roots(&c, v.sb.mapping_root, v.sb.details_root);
	}
	if (r)
		goto out;

	if (c.nd)
		qsort(c.data, c.nd, sizeof(*c.data), cmp_u64);
	if (c.nd && c.data[c.nd - 1] >= sb.data_sm.nr_blocks) {
		r = tm_fail(e, -EUCLEAN, TM_RULE_OUT_OF_RANGE, TM_NO_BLOCK,
			    "a mapping names data block %llu, past the data device's %llu blocks",
			    (unsigned long long)c.data[c.nd - 1],
			    (unsigned long long)sb.data_sm.nr_blocks);
		goto out;
	}
	r = compare_sm(&c, TM_SM_METADATA, &sb.meta_sm, expect_meta, c.overflow_meta,
		       &res->meta_referenced);
	c.data_pos = 0;
	if (!r)
		r = compare_sm(&c, TM_SM_DATA, &sb.data_sm, expect_data, c.overflow_data,
			       &res->data_referenced);
	if (r)
		goto out;
	res->meta_blocks = c.nm;
	res->data_blocks = sb.data_sm.nr_blocks;
	res->data_refs = c.nd;
	res->mismatches = c.mismatches;
	if (c.mismatches)
		r = -EUCLEAN;
out:
	free(c.meta);
	free(c.data);
	return r;
}
