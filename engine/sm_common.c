/*
 * sm_common.c - bitmaps, overflow tree and index of the writable space
 * maps, following Linux 6.1 dm-space-map-common.c (sm_common.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sm_common.h"

#define EPB TM_ENTRIES_PER_BITMAP
#define BITMAP_V (&tm_bitmap_validator)
#define INDEX_V (&tm_index_validator)

static void ll_init(struct tm_ll *ll, struct tm_tm *tm, enum ll_kind kind)
{
	memset(ll, 0, sizeof(*ll));
	ll->tm = tm;
	ll->kind = kind;
	ll->bitmap_info.tm = tm;
	ll->bitmap_info.levels = 1;
	ll->bitmap_info.vt.size = TM_VSIZE_INDEX;
	ll->ref_count_info.tm = tm;
	ll->ref_count_info.levels = 1;
	ll->ref_count_info.vt.size = TM_VSIZE_REFCOUNT;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static uint64_t max_index_entries(const struct tm_ll *ll)
{
	return ll->kind == LL_METADATA ? TM_META_INDEX_ENTRIES : UINT64_MAX;
}

/* ------------------------------------------------------------------ */
/* The index */

static unsigned hash_index(uint64_t index)
{
	/* the kernel's dm_hash_block() */
	return (unsigned)(((uint32_t)index * 4294967291u) & (LL_IE_CACHE_SIZE - 1));
}

static int ie_writeback(struct tm_ll *ll, struct ll_ie_cache *c, struct tm_error *e)
{
	uint8_t v[TM_INDEX_ENTRY_SIZE];

	c->dirty = 0;
	tm_index_entry_encode(&c->ie, v);
	return tm_btree_insert(&ll->bitmap_info, ll->bitmap_root, &c->index, v,
			       &ll->bitmap_root, NULL, e);
}

static int load_ie(struct tm_ll *ll, uint64_t index, struct tm_index_entry *ie,
		   struct tm_error *e)
{
	struct ll_ie_cache *c;
	uint8_t v[TM_INDEX_ENTRY_SIZE];
	int r;

	if (ll->kind == LL_METADATA) {
		if (index >= TM_META_INDEX_ENTRIES)
			return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, ll->bitmap_root,
				       "metadata space map index entry %llu is out of range",
				       (unsigned long long)index);
		*ie = ll->mi[index];
		return 0;
	}
	c = &ll->iec[hash_index(index)];
	if (c->valid) {
		if (c->index == index) {
			*ie = c->ie;
			return 0;
		}
		if (c->dirty) {
			r = ie_writeback(ll, c, e);
			if (r)
				return r;
		}
	}
	r = tm_btree_wlookup(&ll->bitmap_info, ll->bitmap_root, &index, v, e);
	if (r == -ENODATA)
		return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, ll->bitmap_root,
			       "data space map index has no entry for bitmap %llu",
			       (unsigned long long)index);
	if (r)
		return r;
	tm_index_entry_decode(v, ie);
	c->valid = 1;
	c->dirty = 0;
	c->index = index;
	c->ie = *ie;
	return 0;
}

static int save_ie(struct tm_ll *ll, uint64_t index, const struct tm_index_entry *ie,
		   struct tm_error *e)
{
	struct ll_ie_cache *c;
	int r;

	ll->bitmap_index_changed = 1;
	if (ll->kind == LL_METADATA) {
		if (index >= TM_META_INDEX_ENTRIES)
			return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, ll->bitmap_root,
				       "metadata space map index entry %llu is out of range",
				       (unsigned long long)index);
		ll->mi[index] = *ie;
		return 0;
	}
	c = &ll->iec[hash_index(index)];
	if (c->valid) {
		if (c->index == index) {
			c->ie = *ie;
			c->dirty = 1;
			return 0;
		}
		if (c->dirty) {
			r = ie_writeback(ll, c, e);
			if (r)
				return r;
		}
	}
	c->valid = 1;
	c->dirty = 1;
	c->index = index;
	c->ie = *ie;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Creating and opening */

int ll_new_metadata(struct tm_ll *ll, struct tm_tm *tm, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	int r;

	ll_init(ll, tm, LL_METADATA);
	r = tm_tm_new_block(tm, &ll->bitmap_root, buf, e);
	if (r)
		return r;
	r = tm_tm_write(tm, ll->bitmap_root, INDEX_V, buf, e);
	if (r)
		return r;
	return tm_btree_empty(&ll->ref_count_info, &ll->ref_count_root, e);
}

static void ll_set_root(struct tm_ll *ll, const struct tm_sm_root *root)
{
	ll->nr_blocks = root->nr_blocks;
	ll->nr_allocated = root->nr_allocated;
	ll->bitmap_root = root->bitmap_root;
	ll->ref_count_root = root->ref_count_root;
}

int ll_open_metadata(struct tm_ll *ll, struct tm_tm *tm, const struct tm_sm_root *root,
		     struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	int r;

	ll_init(ll, tm, LL_METADATA);
	ll_set_root(ll, root);
	if (div_up(ll->nr_blocks, EPB) > TM_META_INDEX_ENTRIES)
		return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, root->bitmap_root,
			       "metadata space map tracks %llu blocks, more than one index block can hold",
			       (unsigned long long)ll->nr_blocks);
	r = tm_tm_read(tm, ll->bitmap_root, INDEX_V, buf, e);
	if (r)
		return r;
	ll->mi_padding = tm_le32(buf + 4);
	for (unsigned i = 0; i < TM_META_INDEX_ENTRIES; i++)
		tm_index_entry_decode(buf + 16 + TM_INDEX_ENTRY_SIZE * i, &ll->mi[i]);
	return 0;
}

int ll_new_disk(struct tm_ll *ll, struct tm_tm *tm, struct tm_error *e)
{
	int r;

	ll_init(ll, tm, LL_DISK);
	r = tm_btree_empty(&ll->bitmap_info, &ll->bitmap_root, e);
	if (r)
		return r;
	return tm_btree_empty(&ll->ref_count_info, &ll->ref_count_root, e);
}

int ll_open_disk(struct tm_ll *ll, struct tm_tm *tm, const struct tm_sm_root *root,
		 struct tm_error *e)
{
	(void)e;
	ll_init(ll, tm, LL_DISK);
	ll_set_root(ll, root);
	return 0;
}

void ll_root(const struct tm_ll *ll, struct tm_sm_root *root)
{
	root->nr_blocks = ll->nr_blocks;
	root->nr_allocated = ll->nr_allocated;
	root->bitmap_root = ll->bitmap_root;
	root->ref_count_root = ll->ref_count_root;
}

int ll_extend(struct tm_ll *ll, uint64_t extra, struct tm_error *e)
{
	uint64_t nr_blocks = ll->nr_blocks + extra;
	uint64_t old_blocks = div_up(ll->nr_blocks, EPB);
	uint64_t blocks = div_up(nr_blocks, EPB);
	uint8_t buf[TM_BLOCK_SIZE];
	int r;

	if (nr_blocks < ll->nr_blocks || blocks > max_index_entries(ll))
		return tm_fail(e, -EINVAL, TM_RULE_TOO_SMALL, ll->bitmap_root,
			       "space map too large: %llu blocks",
			       (unsigned long long)nr_blocks);
	/* set before the allocations below */
	ll->nr_blocks = nr_blocks;
	for (uint64_t i = old_blocks; i < blocks; i++) {
		struct tm_index_entry ie;
		uint64_t b;

		r = tm_tm_new_block(ll->tm, &b, buf, e);
		if (r)
			return r;
		r = tm_tm_write(ll->tm, b, BITMAP_V, buf, e);
		if (r)
			return r;
		ie.blocknr = b;
		ie.nr_free = EPB;
		ie.none_free_before = 0;
		r = save_ie(ll, i, &ie, e);
		if (r)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Lookups */

static int check_block(const struct tm_ll *ll, uint64_t b, struct tm_error *e)
{
	if (b >= ll->nr_blocks)
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, b,
			       "%s block %llu is past the end of its space map (%llu blocks)",
			       ll->kind == LL_METADATA ? "metadata" : "data",
			       (unsigned long long)b, (unsigned long long)ll->nr_blocks);
	return 0;
}

int ll_lookup_bitmap(struct tm_ll *ll, uint64_t b, uint32_t *v, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_index_entry ie;
	int r;

	if ((r = check_block(ll, b, e)))
		return r;
	r = load_ie(ll, b / EPB, &ie, e);
	if (r)
		return r;
	r = tm_tm_read(ll->tm, ie.blocknr, BITMAP_V, buf, e);
	if (r)
		return r;
	*v = tm_bitmap_get(buf, (uint32_t)(b % EPB));
	return 0;
}

static int lookup_big(struct tm_ll *ll, uint64_t b, uint32_t *count, struct tm_error *e)
{
	uint8_t v[4];
	int r = tm_btree_wlookup(&ll->ref_count_info, ll->ref_count_root, &b, v, e);

	if (r == -ENODATA)
		return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
			       "block %llu has count >= 3 in its bitmap but no entry in the ref-count tree",
			       (unsigned long long)b);
	if (r)
		return r;
	*count = tm_le32(v);
	return 0;
}

int ll_lookup(struct tm_ll *ll, uint64_t b, uint32_t *count, struct tm_error *e)
{
	int r = ll_lookup_bitmap(ll, b, count, e);

	if (r || *count != 3)
		return r;
	return lookup_big(ll, b, count, e);
}

/* First entry in [begin, end) of a bitmap whose count is 0. */
static int bitmap_find_free(const uint8_t *bm, uint32_t begin, uint32_t end,
			    uint32_t *pos)
{
	while (begin < end) {
		uint32_t w = begin / 32, sh = 2 * (begin % 32);
		uint64_t word = tm_le64(bm + 16 + 8u * w);
		uint64_t used = word | (word >> 1);
		uint64_t z = ~used & 0x5555555555555555ull;

		z &= ~0ull << sh;
		if (z) {
			uint32_t p = w * 32 + (uint32_t)__builtin_ctzll(z) / 2;
			if (p >= end)
				return -ENOSPC;
			*pos = p;
			return 0;
		}
		begin = (w + 1) * 32;
	}
	return -ENOSPC;
}

int ll_find_free(struct tm_ll *ll, uint64_t begin, uint64_t end, uint64_t *result,
		 struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t index_begin = begin / EPB, index_end = div_up(end, EPB);
	uint32_t bbit = (uint32_t)(begin % EPB), ebit = (uint32_t)(end % EPB);
	int r;

	if (!ebit)
		ebit = EPB;
	for (uint64_t i = index_begin; i < index_end; i++, bbit = 0) {
		struct tm_index_entry ie;
		uint32_t pos, bit_end, from;

		r = load_ie(ll, i, &ie, e);
		if (r)
			return r;
		if (!ie.nr_free)
			continue;
		r = tm_tm_read(ll->tm, ie.blocknr, BITMAP_V, buf, e);
		if (r)
			return r;
		bit_end = i == index_end - 1 ? ebit : EPB;
		from = bbit > ie.none_free_before ? bbit : ie.none_free_before;
		if (bitmap_find_free(buf, from, bit_end, &pos))
			continue;	/* we may have started part way through */
		*result = i * EPB + pos;
		return 0;
	}
	return -ENOSPC;
}

int ll_find_common_free(struct tm_ll *old_ll, struct tm_ll *new_ll, uint64_t begin,
			uint64_t *b, struct tm_error *e)
{
	uint32_t count;
	int r;

	do {
		r = ll_find_free(new_ll, begin, new_ll->nr_blocks, b, e);
		if (r)
			return r;
		/* double check the block was not in use at the last commit */
		count = 0;
		if (*b < old_ll->nr_blocks) {
			r = ll_lookup(old_ll, *b, &count, e);
			if (r)
				return r;
			if (count)
				begin = *b + 1;
		}
	} while (count);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Changing counts: the kernel's range inc/dec with an "inc context" that
 * holds the bitmap and, for counts >= 3, the overflow leaf. */

struct inc_ctx {
	struct tm_index_entry ie;
	int have_bitmap, have_leaf;
	uint64_t leaf;
	uint8_t bitmap[TM_BLOCK_SIZE];
	uint8_t leaf_buf[TM_BLOCK_SIZE];
};

static int reset_ctx(struct tm_ll *ll, struct inc_ctx *ic, struct tm_error *e)
{
	int r = 0, r2;

	if (ic->have_bitmap) {
		r = tm_tm_write(ll->tm, ic->ie.blocknr, BITMAP_V, ic->bitmap, e);
		ic->have_bitmap = 0;
	}
	if (ic->have_leaf) {
		r2 = tm_btree_put_leaf(&ll->ref_count_info, ic->leaf, ic->leaf_buf, e);
		if (!r)
			r = r2;
		ic->have_leaf = 0;
	}
	return r;
}

static int shadow_bitmap(struct tm_ll *ll, struct inc_ctx *ic, struct tm_error *e)
{
	uint64_t nb;
	int inc, r;

	r = tm_tm_shadow(ll->tm, ic->ie.blocknr, BITMAP_V, &nb, ic->bitmap, &inc, e);
	if (r)
		return r;
	ic->ie.blocknr = nb;
	ic->have_bitmap = 1;
	return 0;
}

static int ensure_bitmap(struct tm_ll *ll, struct inc_ctx *ic, struct tm_error *e)
{
	int r;

	if (ic->have_bitmap)
		return 0;
	r = tm_tm_read(ll->tm, ic->ie.blocknr, BITMAP_V, ic->bitmap, e);
	if (r)
		return r;
	ic->have_bitmap = 1;
	return 0;
}

static int leaf_index(const uint8_t *n, uint64_t key, uint32_t *index)
{
	int i = tm_bn_lower_bound(n, key);

	if (i < 0 || (uint32_t)i >= tm_bn_nr(n) || tm_bn_key(n, (uint32_t)i) != key)
		return 0;
	*index = (uint32_t)i;
	return 1;
}

static int missing_overflow(uint64_t b, struct tm_error *e)
{
	return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
		       "block %llu has count >= 3 in its bitmap but no entry in the ref-count tree",
		       (unsigned long long)b);
}

static int get_overflow_leaf(struct tm_ll *ll, uint64_t b, uint32_t *index,
			     struct inc_ctx *ic, struct tm_error *e)
{
	int r = reset_ctx(ll, ic, e);

	if (r)
		return r;
	r = tm_btree_get_overwrite_leaf(&ll->ref_count_info, ll->ref_count_root, b,
					index, &ll->ref_count_root, &ic->leaf,
					ic->leaf_buf, e);
	if (r == -ENODATA)
		return missing_overflow(b, e);
	if (r)
		return r;
	ic->have_leaf = 1;
	return 0;
}

static int inc_overflow(struct tm_ll *ll, uint64_t b, struct inc_ctx *ic, struct tm_error *e)
{
	uint32_t index;
	uint8_t *v;
	int r;

	if (!ic->have_leaf || !leaf_index(ic->leaf_buf, b, &index)) {
		r = get_overflow_leaf(ll, b, &index, ic, e);
		if (r)
			return r;
	}
	v = tm_bn_value(ic->leaf_buf, index);
	tm_put_le32(v, tm_le32(v) + 1);
	return 0;
}

static int del_overflow(struct tm_ll *ll, uint64_t b, struct inc_ctx *ic, struct tm_error *e)
{
	int r = reset_ctx(ll, ic, e);

	if (r)
		return r;
	r = tm_btree_remove(&ll->ref_count_info, ll->ref_count_root, &b,
			    &ll->ref_count_root, e);
	if (r == -ENODATA)
		return missing_overflow(b, e);
	return r;
}

static int dec_overflow(struct tm_ll *ll, uint64_t b, struct inc_ctx *ic, uint32_t *old,
			struct tm_error *e)
{
	uint32_t index, rc;
	uint8_t *v;
	int r;

	if (ic->have_leaf && leaf_index(ic->leaf_buf, b, &index)) {
		v = tm_bn_value(ic->leaf_buf, index);
		rc = tm_le32(v);
		*old = rc;
		if (rc > 3) {
			tm_put_le32(v, rc - 1);
			return 0;
		}
		return del_overflow(ll, b, ic, e);
	}
	r = get_overflow_leaf(ll, b, &index, ic, e);
	if (r)
		return r;
	v = tm_bn_value(ic->leaf_buf, index);
	rc = tm_le32(v);
	*old = rc;
	if (rc <= 3)
		return del_overflow(ll, b, ic, e);
	tm_put_le32(v, rc - 1);
	return 0;
}

static int inc_bitmap(struct tm_ll *ll, uint64_t b, uint32_t bit, uint32_t bit_end,
		      int64_t *nr_allocations, uint64_t *new_b, struct inc_ctx *ic,
		      struct tm_error *e)
{
	uint8_t le_rc[4];
	int r;

	for (; bit != bit_end; bit++, b++) {
		/* the bitmap is dropped while the overflow tree changes */
		r = ensure_bitmap(ll, ic, e);
		if (r)
			return r;
		switch (tm_bitmap_get(ic->bitmap, bit)) {
		case 0:
			tm_bitmap_set(ic->bitmap, bit, 1);
			(*nr_allocations)++;
			ll->nr_allocated++;
			ic->ie.nr_free--;
			if (ic->ie.none_free_before == bit)
				ic->ie.none_free_before = bit + 1;
			break;
		case 1:
			tm_bitmap_set(ic->bitmap, bit, 2);
			break;
		case 2:
			tm_bitmap_set(ic->bitmap, bit, 3);
			r = reset_ctx(ll, ic, e);
			if (r)
				return r;
			tm_put_le32(le_rc, 3);
			r = tm_btree_insert(&ll->ref_count_info, ll->ref_count_root, &b,
					    le_rc, &ll->ref_count_root, NULL, e);
			if (r)
				return r;
			break;
		default:
			r = inc_overflow(ll, b, ic, e);
			if (r)
				return r;
		}
	}
	*new_b = b;
	return 0;
}

static int dec_bitmap(struct tm_ll *ll, uint64_t b, uint32_t bit, uint32_t bit_end,
		      int64_t *nr_allocations, uint64_t *new_b, struct inc_ctx *ic,
		      struct tm_error *e)
{
	uint32_t old;
	int r;

	for (; bit != bit_end; bit++, b++) {
		r = ensure_bitmap(ll, ic, e);
		if (r)
			return r;
		switch (tm_bitmap_get(ic->bitmap, bit)) {
		case 0:
			return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
				       "%s block %llu: cannot drop a reference, its count is already 0",
				       ll->kind == LL_METADATA ? "metadata" : "data",
				       (unsigned long long)b);
		case 1:
			tm_bitmap_set(ic->bitmap, bit, 0);
			(*nr_allocations)--;
			ll->nr_allocated--;
			ic->ie.nr_free++;
			if (bit < ic->ie.none_free_before)
				ic->ie.none_free_before = bit;
			break;
		case 2:
			tm_bitmap_set(ic->bitmap, bit, 1);
			break;
		default:
			r = dec_overflow(ll, b, ic, &old, e);
			if (r)
				return r;
			if (old == 3) {
				r = ensure_bitmap(ll, ic, e);
				if (r)
					return r;
				tm_bitmap_set(ic->bitmap, bit, 2);
			}
		}
	}
	*new_b = b;
	return 0;
}

static int change_range(struct tm_ll *ll, uint64_t b, uint64_t end, int dec,
			int64_t *nr_allocations, uint64_t *new_b, struct tm_error *e)
{
	struct inc_ctx *ic = malloc(sizeof(*ic));
	uint64_t index = b / EPB;
	uint32_t bit = (uint32_t)(b % EPB), bit_end;
	int r, r2;

	if (!ic)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, b, "out of memory");
	ic->have_bitmap = ic->have_leaf = 0;
	r = load_ie(ll, index, &ic->ie, e);
	if (!r)
		r = shadow_bitmap(ll, ic, e);
	if (r) {
		free(ic);
		return r;
	}
	bit_end = end - b < EPB - bit ? bit + (uint32_t)(end - b) : EPB;
	if (dec)
		r = dec_bitmap(ll, b, bit, bit_end, nr_allocations, new_b, ic, e);
	else
		r = inc_bitmap(ll, b, bit, bit_end, nr_allocations, new_b, ic, e);
	r2 = reset_ctx(ll, ic, e);
	if (!r)
		r = r2;
	if (!r)
		r = save_ie(ll, index, &ic->ie, e);
	free(ic);
	return r;
}

static int change(struct tm_ll *ll, uint64_t b, uint64_t end, int dec,
		  int64_t *nr_allocations, struct tm_error *e)
{
	int r;

	*nr_allocations = 0;
	if (end > ll->nr_blocks || b > end)
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, end > ll->nr_blocks ? end - 1 : b,
			       "%s blocks %llu..%llu are past the end of their space map (%llu blocks)",
			       ll->kind == LL_METADATA ? "metadata" : "data",
			       (unsigned long long)b, (unsigned long long)end,
			       (unsigned long long)ll->nr_blocks);
	while (b != end) {
		r = change_range(ll, b, end, dec, nr_allocations, &b, e);
		if (r)
			return r;
	}
	return 0;
}

int ll_inc(struct tm_ll *ll, uint64_t b, uint64_t end, int64_t *nr_allocations,
	   struct tm_error *e)
{
	return change(ll, b, end, 0, nr_allocations, e);
}

int ll_dec(struct tm_ll *ll, uint64_t b, uint64_t end, int64_t *nr_allocations,
	   struct tm_error *e)
{
	return change(ll, b, end, 1, nr_allocations, e);
}

/* ------------------------------------------------------------------ */
/* Commit */

static int metadata_commit(struct tm_ll *ll, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t nb;
	int inc, r;

	r = tm_tm_shadow(ll->tm, ll->bitmap_root, INDEX_V, &nb, buf, &inc, e);
	if (r)
		return r;
	memset(buf, 0, TM_BLOCK_SIZE);
	tm_put_le32(buf + 4, ll->mi_padding);
	for (unsigned i = 0; i < TM_META_INDEX_ENTRIES; i++)
		tm_index_entry_encode(&ll->mi[i], buf + 16 + TM_INDEX_ENTRY_SIZE * i);
	ll->bitmap_root = nb;
	return tm_tm_write(ll->tm, nb, INDEX_V, buf, e);
}

static int disk_commit(struct tm_ll *ll, struct tm_error *e)
{
	int r = 0;

	for (unsigned i = 0; i < LL_IE_CACHE_SIZE; i++) {
		struct ll_ie_cache *c = &ll->iec[i];
		if (c->valid && c->dirty)
			r = ie_writeback(ll, c, e);
		if (r)
			return r;
	}
	return 0;
}

int ll_commit(struct tm_ll *ll, struct tm_error *e)
{
	int r;

	if (!ll->bitmap_index_changed)
		return 0;
	r = ll->kind == LL_METADATA ? metadata_commit(ll, e) : disk_commit(ll, e);
	if (!r)
		ll->bitmap_index_changed = 0;
	return r;
}
