/*
 * btree_write.c - insert, remove, lookup, delete of persistent-data btrees
 * inside a transaction, with the algorithms of Linux 6.1 dm-btree.c and
 * dm-btree-remove.c (btree_write.h).
 *
 * Each node being changed is held in a 4096-byte buffer; "unlocking" it
 * (the kernel's dm_tm_unlock of a write lock) publishes the buffer with
 * tm_tm_write().  Buffers are published exactly where the kernel unlocks,
 * so every read sees what the kernel's would.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree_write.h"
#include "thinmeta/format.h"

#define NODE_V (&tm_node_validator)
#define MAX_DEPTH 16
#define SPACE_THRESHOLD 8u

/* ------------------------------------------------------------------ */
/* Node accessors */

static uint32_t n_flags(const uint8_t *n) { return tm_le32(n + TM_NODE_OFF_FLAGS); }
uint32_t tm_bn_nr(const uint8_t *n) { return tm_le32(n + TM_NODE_OFF_NR_ENTRIES); }
uint32_t tm_bn_max(const uint8_t *n) { return tm_le32(n + TM_NODE_OFF_MAX_ENTRIES); }
uint32_t tm_bn_vsize(const uint8_t *n) { return tm_le32(n + TM_NODE_OFF_VALUE_SIZE); }
int tm_bn_is_leaf(const uint8_t *n) { return (n_flags(n) & TM_NODE_LEAF) != 0; }

#define nr_of tm_bn_nr
#define max_of tm_bn_max
#define vsize_of tm_bn_vsize
#define is_leaf tm_bn_is_leaf

static void set_nr(uint8_t *n, uint32_t v) { tm_put_le32(n + TM_NODE_OFF_NR_ENTRIES, v); }

static uint8_t *key_ptr(uint8_t *n, uint32_t i)
{
	return n + TM_NODE_HEADER_SIZE + 8u * i;
}

uint64_t tm_bn_key(const uint8_t *n, uint32_t i)
{
	return tm_le64(n + TM_NODE_HEADER_SIZE + 8u * i);
}
#define key_of tm_bn_key

static void set_key(uint8_t *n, uint32_t i, uint64_t k)
{
	tm_put_le64(key_ptr(n, i), k);
}

uint8_t *tm_bn_value(uint8_t *n, uint32_t i)
{
	return n + TM_NODE_HEADER_SIZE + 8u * max_of(n) + (size_t)vsize_of(n) * i;
}
#define value_ptr tm_bn_value

static uint64_t value64(uint8_t *n, uint32_t i)
{
	return tm_le64(value_ptr(n, i));
}

static void set_value64(uint8_t *n, uint32_t i, uint64_t v)
{
	tm_put_le64(value_ptr(n, i), v);
}

/* The kernel's bsearch: an equal key's index, else lo (or hi). */
static int bsearch_node(const uint8_t *n, uint64_t key, int want_hi)
{
	int lo = -1, hi = (int)nr_of(n);

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;
		uint64_t mk = key_of(n, (uint32_t)mid);
		if (mk == key)
			return mid;
		if (mk < key)
			lo = mid;
		else
			hi = mid;
	}
	return want_hi ? hi : lo;
}

int tm_bn_lower_bound(const uint8_t *n, uint64_t key)
{
	return bsearch_node(n, key, 0);
}
#define lower_bound tm_bn_lower_bound

static int upper_bound(const uint8_t *n, uint64_t key)
{
	return bsearch_node(n, key, 1);
}

static uint32_t calc_max_entries(uint32_t value_size)
{
	return tm_node_max_entries(value_size);
}

/* What a reader must not trust before touching a node's arrays. */
static int check_node(const uint8_t *n, uint64_t b, uint32_t leaf_vsize,
		      struct tm_error *e)
{
	uint32_t want = is_leaf(n) ? leaf_vsize : 8;

	if (vsize_of(n) != want)
		return tm_fail(e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
			       "block %llu: btree %s has value_size %u, expected %u",
			       (unsigned long long)b, is_leaf(n) ? "leaf" : "internal node",
			       vsize_of(n), want);
	if (max_of(n) < 3)
		return tm_fail(e, -EUCLEAN, TM_RULE_MAX_ENTRIES, b,
			       "block %llu: btree node max_entries %u is too small",
			       (unsigned long long)b, max_of(n));
	if (!is_leaf(n) && !nr_of(n))
		return tm_fail(e, -EUCLEAN, TM_RULE_EMPTY_INTERNAL, b,
			       "block %llu: internal btree node with no entries",
			       (unsigned long long)b);
	return 0;
}

static int read_node(struct tm_tm *tm, uint64_t b, uint32_t leaf_vsize,
		     uint8_t *buf, struct tm_error *e)
{
	int r = tm_tm_read(tm, b, NODE_V, buf, e);

	if (r)
		return r;
	return check_node(buf, b, leaf_vsize, e);
}

static int unlock(struct tm_tm *tm, uint64_t b, const uint8_t *buf, struct tm_error *e)
{
	return tm_tm_write(tm, b, NODE_V, buf, e);
}

/* ------------------------------------------------------------------ */
/* Value types */

static int le64_inc(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	return tm_tm_inc_values(ctx, v, n, e);
}

static int le64_dec(void *ctx, const uint8_t *v, uint32_t n, struct tm_error *e)
{
	return tm_tm_dec_values(ctx, v, n, e);
}

static int le64_equal(void *ctx, const uint8_t *a, const uint8_t *b)
{
	(void)ctx;
	return !memcmp(a, b, 8);
}

static void init_le64_type(struct tm_tm *tm, struct tm_btree_vtype *vt)
{
	vt->size = 8;
	vt->ctx = tm;
	vt->inc = le64_inc;
	vt->dec = le64_dec;
	vt->equal = le64_equal;
}

static int inc_children(struct tm_tm *tm, uint8_t *n, const struct tm_btree_vtype *vt,
			struct tm_error *e)
{
	if (!is_leaf(n))
		return tm_tm_inc_values(tm, value_ptr(n, 0), nr_of(n), e);
	if (vt->inc)
		return vt->inc(vt->ctx, value_ptr(n, 0), nr_of(n), e);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Array manipulation */

static int insert_at(uint8_t *n, uint32_t index, uint64_t key, const void *value,
		     uint64_t b, struct tm_error *e)
{
	uint32_t nr = nr_of(n), max = max_of(n), vs = vsize_of(n);

	if (index > nr || index >= max || nr >= max)
		return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, b,
			       "block %llu: too many entries in btree node for insert",
			       (unsigned long long)b);
	if (index < nr) {
		memmove(key_ptr(n, index + 1), key_ptr(n, index), 8u * (nr - index));
		memmove(value_ptr(n, index + 1), value_ptr(n, index), (size_t)vs * (nr - index));
	}
	set_key(n, index, key);
	memcpy(value_ptr(n, index), value, vs);
	set_nr(n, nr + 1);
	return 0;
}

static void copy_entries(uint8_t *dest, uint32_t doff, uint8_t *src, uint32_t soff,
			 uint32_t count)
{
	size_t vs = vsize_of(dest);

	memcpy(key_ptr(dest, doff), key_ptr(src, soff), 8u * count);
	memcpy(value_ptr(dest, doff), value_ptr(src, soff), vs * count);
}

static void move_entries(uint8_t *dest, uint32_t doff, uint8_t *src, uint32_t soff,
			 uint32_t count)
{
	size_t vs = vsize_of(dest);

	memmove(key_ptr(dest, doff), key_ptr(src, soff), 8u * count);
	memmove(value_ptr(dest, doff), value_ptr(src, soff), vs * count);
}

static void shift_down(uint8_t *n, uint32_t count)
{
	move_entries(n, 0, n, count, nr_of(n) - count);
}

static void shift_up(uint8_t *n, uint32_t count)
{
	move_entries(n, count, n, 0, nr_of(n));
}

static int same_shape(const uint8_t *a, const uint8_t *b, uint64_t blk, struct tm_error *e)
{
	if (max_of(a) != max_of(b) || vsize_of(a) != vsize_of(b) ||
	    is_leaf(a) != is_leaf(b))
		return tm_fail(e, -EUCLEAN, TM_RULE_MAX_ENTRIES, blk,
			       "block %llu: sibling btree nodes differ in max_entries or value size",
			       (unsigned long long)blk);
	return 0;
}

/* Insert side: make two nodes hold similar numbers of entries. */
static void redistribute2(uint8_t *left, uint8_t *right)
{
	uint32_t nr_left = nr_of(left), nr_right = nr_of(right);
	uint32_t total = nr_left + nr_right;
	uint32_t target_left = total / 2, target_right = total - target_left;

	if (nr_left < target_left) {
		uint32_t delta = target_left - nr_left;
		copy_entries(left, nr_left, right, 0, delta);
		shift_down(right, delta);
	} else if (nr_left > target_left) {
		uint32_t delta = nr_left - target_left;
		if (nr_right)
			shift_up(right, delta);
		copy_entries(right, 0, left, target_left, delta);
	}
	set_nr(left, target_left);
	set_nr(right, target_right);
}

/* Insert side: spread two nodes' entries over three (center empty). */
static void redistribute3_ins(uint8_t *left, uint8_t *center, uint8_t *right)
{
	uint32_t nr_left = nr_of(left), nr_right = nr_of(right);
	uint32_t total = nr_left + nr_right;
	uint32_t target_left = total / 3;
	uint32_t target_center = (total - target_left) / 2;
	uint32_t target_right = total - target_left - target_center;

	if (nr_left < target_left) {
		uint32_t left_short = target_left - nr_left;
		copy_entries(left, nr_left, right, 0, left_short);
		copy_entries(center, 0, right, left_short, target_center);
		shift_down(right, nr_right - target_right);
	} else if (nr_left < target_left + target_center) {
		uint32_t left_to_center = nr_left - target_left;
		copy_entries(center, 0, left, target_left, left_to_center);
		copy_entries(center, left_to_center, right, 0, target_center - left_to_center);
		shift_down(right, nr_right - target_right);
	} else {
		uint32_t right_short = target_right - nr_right;
		shift_up(right, right_short);
		copy_entries(right, 0, left, nr_left - right_short, right_short);
		copy_entries(center, 0, left, target_left, nr_left - target_left);
	}
	set_nr(left, target_left);
	set_nr(center, target_center);
	set_nr(right, target_right);
}

/* ------------------------------------------------------------------ */
/* The shadow spine: the parent and the current node of a descent. */

struct spine {
	struct tm_btree_info *info;
	struct tm_error *e;
	int count;
	uint64_t blk[2];
	uint8_t *node[2];
	uint64_t root;
	uint8_t mem[2][TM_BLOCK_SIZE];
};

static void spine_init(struct spine *s, struct tm_btree_info *info, struct tm_error *e)
{
	s->info = info;
	s->e = e;
	s->count = 0;
	s->node[0] = s->mem[0];
	s->node[1] = s->mem[1];
	s->root = 0;
}

static int spine_exit(struct spine *s)
{
	int r = 0;

	for (int i = 0; i < s->count; i++) {
		int r2 = unlock(s->info->tm, s->blk[i], s->node[i], s->e);
		if (!r)
			r = r2;
	}
	s->count = 0;
	return r;
}

static int shadow_step(struct spine *s, uint64_t b, const struct tm_btree_vtype *vt)
{
	struct tm_tm *tm = s->info->tm;
	uint64_t nb;
	int inc, r;

	if (s->count == 2) {
		uint8_t *t = s->node[0];
		r = unlock(tm, s->blk[0], s->node[0], s->e);
		if (r)
			return r;
		s->node[0] = s->node[1];
		s->node[1] = t;
		s->blk[0] = s->blk[1];
		s->count = 1;
	}
	r = tm_tm_shadow(tm, b, NODE_V, &nb, s->node[s->count], &inc, s->e);
	if (r)
		return r;
	r = check_node(s->node[s->count], b, vt->size, s->e);
	if (r)
		return r;
	if (inc) {
		r = inc_children(tm, s->node[s->count], vt, s->e);
		if (r)
			return r;
	}
	if (!s->count)
		s->root = nb;
	s->blk[s->count] = nb;
	s->count++;
	return 0;
}

static uint8_t *cur(struct spine *s) { return s->node[s->count - 1]; }
static uint64_t cur_blk(struct spine *s) { return s->blk[s->count - 1]; }
static int has_parent(struct spine *s) { return s->count >= 2; }
static uint8_t *parent(struct spine *s) { return s->node[0]; }

/* Replace the current node by @buf/@b (the current one already published). */
static void set_current(struct spine *s, const uint8_t *buf, uint64_t b)
{
	memcpy(s->node[s->count - 1], buf, TM_BLOCK_SIZE);
	s->blk[s->count - 1] = b;
}

/* ------------------------------------------------------------------ */

int tm_btree_empty(struct tm_btree_info *info, uint64_t *root, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	uint64_t b;
	int r;

	r = tm_tm_new_block(info->tm, &b, buf, e);
	if (r)
		return r;
	tm_put_le32(buf + TM_NODE_OFF_FLAGS, TM_NODE_LEAF);
	set_nr(buf, 0);
	tm_put_le32(buf + TM_NODE_OFF_MAX_ENTRIES, calc_max_entries(info->vt.size));
	tm_put_le32(buf + TM_NODE_OFF_VALUE_SIZE, info->vt.size);
	*root = b;
	return unlock(info->tm, b, buf, e);
}

/* ------------------------------------------------------------------ */
/* Lookup */

static int lookup_raw(struct tm_tm *tm, uint64_t block, uint64_t key,
		      uint32_t leaf_vsize, uint64_t *rkey, void *v, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	int i, r;

	for (int depth = 0; depth < MAX_DEPTH; depth++) {
		r = read_node(tm, block, leaf_vsize, buf, e);
		if (r)
			return r;
		i = lower_bound(buf, key);
		if (i < 0 || (uint32_t)i >= nr_of(buf))
			return -ENODATA;
		if (is_leaf(buf)) {
			*rkey = key_of(buf, (uint32_t)i);
			if (v)
				memcpy(v, value_ptr(buf, (uint32_t)i), leaf_vsize);
			return 0;
		}
		block = value64(buf, (uint32_t)i);
	}
	return tm_fail(e, -ELOOP, TM_RULE_DEPTH, block,
		       "btree deeper than %d levels", MAX_DEPTH);
}

int tm_btree_wlookup(struct tm_btree_info *info, uint64_t root,
		     const uint64_t *keys, void *value, struct tm_error *e)
{
	unsigned last = info->levels - 1;
	uint8_t inner[8];
	uint64_t rkey;
	int r;

	for (unsigned level = 0; level < info->levels; level++) {
		int lastl = level == last;
		r = lookup_raw(info->tm, root, keys[level], lastl ? info->vt.size : 8,
			       &rkey, lastl ? value : inner, e);
		if (r)
			return r;
		if (rkey != keys[level])
			return -ENODATA;
		if (!lastl)
			root = tm_le64(inner);
	}
	return 0;
}

static int lookup_next_single(struct tm_btree_info *info, uint64_t root, uint64_t key,
			      uint64_t *rkey, void *value, int depth, struct tm_error *e)
{
	uint8_t *buf;
	uint32_t nr;
	int i, r;

	if (depth >= MAX_DEPTH)
		return tm_fail(e, -ELOOP, TM_RULE_DEPTH, root,
			       "btree deeper than %d levels", MAX_DEPTH);
	buf = malloc(TM_BLOCK_SIZE);
	if (!buf)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	r = read_node(info->tm, root, info->vt.size, buf, e);
	if (r)
		goto out;
	nr = nr_of(buf);
	if (!is_leaf(buf)) {
		i = lower_bound(buf, key);
		if (i < 0)
			i = 0;
		if ((uint32_t)i >= nr) {
			r = -ENODATA;
			goto out;
		}
		r = lookup_next_single(info, value64(buf, (uint32_t)i), key, rkey, value,
				       depth + 1, e);
		if (r == -ENODATA && (uint32_t)i < nr - 1) {
			i++;
			r = lookup_next_single(info, value64(buf, (uint32_t)i), key, rkey,
					       value, depth + 1, e);
		}
	} else {
		i = upper_bound(buf, key);
		if (i < 0 || (uint32_t)i >= nr) {
			r = -ENODATA;
			goto out;
		}
		*rkey = key_of(buf, (uint32_t)i);
		memcpy(value, value_ptr(buf, (uint32_t)i), info->vt.size);
	}
out:
	free(buf);
	return r;
}

int tm_btree_lookup_next(struct tm_btree_info *info, uint64_t root,
			 const uint64_t *keys, uint64_t *rkey, void *value,
			 struct tm_error *e)
{
	unsigned level;
	uint8_t inner[8];
	int r;

	for (level = 0; level + 1 < info->levels; level++) {
		r = lookup_raw(info->tm, root, keys[level], 8, rkey, inner, e);
		if (r)
			return r;
		if (*rkey != keys[level])
			return -ENODATA;
		root = tm_le64(inner);
	}
	return lookup_next_single(info, root, keys[level], rkey, value, 0, e);
}

/* ------------------------------------------------------------------ */
/* Insert */

/* Shadow child @index of @pn into @buf and point the parent at the copy. */
static int shadow_child(struct tm_btree_info *info, const struct tm_btree_vtype *vt,
			uint8_t *pn, uint32_t index, uint64_t *b, uint8_t *buf,
			struct tm_error *e)
{
	uint64_t orig = value64(pn, index);
	int inc, r;

	r = tm_tm_shadow(info->tm, orig, NODE_V, b, buf, &inc, e);
	if (r)
		return r;
	r = check_node(buf, orig, vt->size, e);
	if (r)
		return r;
	if (inc) {
		r = inc_children(info->tm, buf, vt, e);
		if (r)
			return r;
	}
	set_value64(pn, index, *b);
	return 0;
}

static int new_node_like(struct tm_btree_info *info, const uint8_t *like, uint64_t *b,
			 uint8_t *buf, struct tm_error *e)
{
	int r = tm_tm_new_block(info->tm, b, buf, e);

	if (r)
		return r;
	memcpy(buf + TM_NODE_OFF_FLAGS, like + TM_NODE_OFF_FLAGS, 4);
	set_nr(buf, 0);
	memcpy(buf + TM_NODE_OFF_MAX_ENTRIES, like + TM_NODE_OFF_MAX_ENTRIES, 4);
	memcpy(buf + TM_NODE_OFF_VALUE_SIZE, like + TM_NODE_OFF_VALUE_SIZE, 4);
	return 0;
}

static int split_one_into_two(struct spine *s, uint32_t parent_index, uint64_t key)
{
	struct tm_tm *tm = s->info->tm;
	uint8_t rn[TM_BLOCK_SIZE], loc[8];
	uint8_t *ln = cur(s), *pn = parent(s);
	uint64_t rb;
	int r;

	r = new_node_like(s->info, ln, &rb, rn, s->e);
	if (r)
		return r;
	redistribute2(ln, rn);
	tm_put_le64(loc, rb);
	r = insert_at(pn, parent_index + 1, key_of(rn, 0), loc, s->blk[0], s->e);
	if (r)
		return r;
	if (key < key_of(rn, 0))
		return unlock(tm, rb, rn, s->e);
	r = unlock(tm, cur_blk(s), ln, s->e);
	if (r)
		return r;
	set_current(s, rn, rb);
	return 0;
}

static int split_two_into_three(struct spine *s, const struct tm_btree_vtype *vt,
				uint32_t parent_index, uint64_t key)
{
	struct tm_tm *tm = s->info->tm;
	uint8_t other[TM_BLOCK_SIZE], mn[TM_BLOCK_SIZE], loc[8];
	uint8_t *pn = parent(s), *ln, *rn;
	uint64_t lb, rb, mb;
	uint32_t middle_index;
	int r, chosen;

	if (parent_index == 0) {
		middle_index = 1;
		ln = cur(s);
		lb = cur_blk(s);
		r = shadow_child(s->info, vt, pn, parent_index + 1, &rb, other, s->e);
		rn = other;
	} else {
		middle_index = parent_index;
		rn = cur(s);
		rb = cur_blk(s);
		r = shadow_child(s->info, vt, pn, parent_index - 1, &lb, other, s->e);
		ln = other;
	}
	if (r)
		return r;
	if ((r = same_shape(ln, rn, rb, s->e)))
		return r;
	r = new_node_like(s->info, ln, &mb, mn, s->e);
	if (r)
		return r;
	redistribute3_ins(ln, mn, rn);

	set_key(pn, middle_index, key_of(rn, 0));
	tm_put_le64(loc, mb);
	r = insert_at(pn, middle_index, key_of(mn, 0), loc, s->blk[0], s->e);
	if (r)
		return r;

	if (key < key_of(mn, 0))
		chosen = 0;
	else if (key < key_of(rn, 0))
		chosen = 1;
	else
		chosen = 2;
	/* publish the two not chosen, then make the chosen one current */
	if (chosen != 0 && (r = unlock(tm, lb, ln, s->e)))
		return r;
	if (chosen != 1 && (r = unlock(tm, mb, mn, s->e)))
		return r;
	if (chosen != 2 && (r = unlock(tm, rb, rn, s->e)))
		return r;
	if (chosen == 0 && ln != cur(s))
		set_current(s, ln, lb);
	else if (chosen == 1)
		set_current(s, mn, mb);
	else if (chosen == 2 && rn != cur(s))
		set_current(s, rn, rb);
	return 0;
}

static int split_beneath(struct spine *s)
{
	struct tm_tm *tm = s->info->tm;
	uint8_t ln[TM_BLOCK_SIZE], rn[TM_BLOCK_SIZE];
	uint8_t *pn = cur(s);
	uint32_t nr = nr_of(pn), nr_left = nr / 2, nr_right = nr - nr_left;
	size_t size = vsize_of(pn);
	uint64_t lb, rb;
	int r;

	r = tm_tm_new_block(tm, &lb, ln, s->e);
	if (r)
		return r;
	memcpy(ln + TM_NODE_OFF_FLAGS, pn + TM_NODE_OFF_FLAGS, 4);
	set_nr(ln, nr_left);
	memcpy(ln + TM_NODE_OFF_MAX_ENTRIES, pn + TM_NODE_OFF_MAX_ENTRIES, 4);
	memcpy(ln + TM_NODE_OFF_VALUE_SIZE, pn + TM_NODE_OFF_VALUE_SIZE, 4);
	memcpy(key_ptr(ln, 0), key_ptr(pn, 0), 8u * nr_left);
	memcpy(value_ptr(ln, 0), value_ptr(pn, 0), size * nr_left);

	r = tm_tm_new_block(tm, &rb, rn, s->e);
	if (r)
		return r;
	memcpy(rn + TM_NODE_OFF_FLAGS, pn + TM_NODE_OFF_FLAGS, 4);
	set_nr(rn, nr_right);
	memcpy(rn + TM_NODE_OFF_MAX_ENTRIES, pn + TM_NODE_OFF_MAX_ENTRIES, 4);
	memcpy(rn + TM_NODE_OFF_VALUE_SIZE, pn + TM_NODE_OFF_VALUE_SIZE, 4);
	memcpy(key_ptr(rn, 0), key_ptr(pn, nr_left), 8u * nr_right);
	memcpy(value_ptr(rn, 0), value_ptr(pn, nr_left), size * nr_right);

	tm_put_le32(pn + TM_NODE_OFF_FLAGS, TM_NODE_INTERNAL);
	set_nr(pn, 2);
	tm_put_le32(pn + TM_NODE_OFF_MAX_ENTRIES, calc_max_entries(8));
	tm_put_le32(pn + TM_NODE_OFF_VALUE_SIZE, 8);
	set_key(pn, 0, key_of(ln, 0));
	set_value64(pn, 0, lb);
	set_key(pn, 1, key_of(rn, 0));
	set_value64(pn, 1, rb);

	r = unlock(tm, lb, ln, s->e);
	if (!r)
		r = unlock(tm, rb, rn, s->e);
	return r;
}

static int rebalance_left(struct spine *s, const struct tm_btree_vtype *vt,
			  uint32_t parent_index, uint64_t key)
{
	uint8_t sib[TM_BLOCK_SIZE];
	uint8_t *pn = parent(s), *right = cur(s);
	uint64_t sb;
	int r;

	r = shadow_child(s->info, vt, pn, parent_index - 1, &sb, sib, s->e);
	if (r)
		return r;
	if ((r = same_shape(sib, right, sb, s->e)))
		return r;
	redistribute2(sib, right);
	set_key(pn, parent_index, key_of(right, 0));
	if (key < key_of(right, 0)) {
		r = unlock(s->info->tm, cur_blk(s), right, s->e);
		if (r)
			return r;
		set_current(s, sib, sb);
		return 0;
	}
	return unlock(s->info->tm, sb, sib, s->e);
}

static int rebalance_right(struct spine *s, const struct tm_btree_vtype *vt,
			   uint32_t parent_index, uint64_t key)
{
	uint8_t sib[TM_BLOCK_SIZE];
	uint8_t *pn = parent(s), *left = cur(s);
	uint64_t sb;
	int r;

	r = shadow_child(s->info, vt, pn, parent_index + 1, &sb, sib, s->e);
	if (r)
		return r;
	if ((r = same_shape(left, sib, sb, s->e)))
		return r;
	redistribute2(left, sib);
	set_key(pn, parent_index + 1, key_of(sib, 0));
	if (key < key_of(sib, 0))
		return unlock(s->info->tm, sb, sib, s->e);
	r = unlock(s->info->tm, cur_blk(s), left, s->e);
	if (r)
		return r;
	set_current(s, sib, sb);
	return 0;
}

static int node_free_space(struct tm_btree_info *info, uint64_t b, uint32_t leaf_vsize,
			   uint32_t *space, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	int r = read_node(info->tm, b, leaf_vsize, buf, e);

	if (r)
		return r;
	*space = max_of(buf) - nr_of(buf);
	return 0;
}

static int rebalance_or_split(struct spine *s, const struct tm_btree_vtype *vt,
			      uint32_t parent_index, uint64_t key)
{
	uint8_t *pn = parent(s);
	uint32_t nr_parent = nr_of(pn), free_space;
	int left_shared = 0, right_shared = 0, r;

	if (parent_index > 0) {
		uint64_t left_b = value64(pn, parent_index - 1);
		r = tm_tm_is_shared(s->info->tm, left_b, &left_shared, s->e);
		if (r)
			return r;
		if (!left_shared) {
			r = node_free_space(s->info, left_b, vt->size, &free_space, s->e);
			if (r)
				return r;
			if (free_space >= SPACE_THRESHOLD)
				return rebalance_left(s, vt, parent_index, key);
		}
	}
	if (parent_index + 1 < nr_parent) {
		uint64_t right_b = value64(pn, parent_index + 1);
		r = tm_tm_is_shared(s->info->tm, right_b, &right_shared, s->e);
		if (r)
			return r;
		if (!right_shared) {
			r = node_free_space(s->info, right_b, vt->size, &free_space, s->e);
			if (r)
				return r;
			if (free_space >= SPACE_THRESHOLD)
				return rebalance_right(s, vt, parent_index, key);
		}
	}
	if (left_shared || right_shared || nr_parent <= 2 || parent_index == 0 ||
	    parent_index + 1 == nr_parent)
		return split_one_into_two(s, parent_index, key);
	return split_two_into_three(s, vt, parent_index, key);
}

static int contains_key(const uint8_t *n, uint64_t key)
{
	int i = lower_bound(n, key);

	return i >= 0 && key_of(n, (uint32_t)i) == key;
}

static int has_space_for_insert(const uint8_t *n, uint64_t key)
{
	if (nr_of(n) == max_of(n)) {
		if (is_leaf(n))
			return contains_key(n, key);
		return 0;
	}
	return 1;
}

static int insert_raw(struct spine *s, uint64_t root, const struct tm_btree_vtype *vt,
		      uint64_t key, int *index)
{
	int r, i = *index, top = 1;
	uint8_t *n;

	for (int depth = 0;; depth++) {
		if (depth >= MAX_DEPTH)
			return tm_fail(s->e, -ELOOP, TM_RULE_DEPTH, root,
				       "btree deeper than %d levels", MAX_DEPTH);
		r = shadow_step(s, root, vt);
		if (r)
			return r;
		if (has_parent(s) && i >= 0)
			set_value64(parent(s), (uint32_t)i, cur_blk(s));
		n = cur(s);
		if (!has_space_for_insert(n, key)) {
			if (top)
				r = split_beneath(s);
			else
				r = rebalance_or_split(s, vt, (uint32_t)i, key);
			if (r)
				return r;
			n = cur(s);
		}
		i = lower_bound(n, key);
		if (is_leaf(n))
			break;
		if (i < 0) {
			/* change the bounds on the lowest key */
			set_key(n, 0, key);
			i = 0;
		}
		root = value64(n, (uint32_t)i);
		top = 0;
	}
	if (i < 0 || key_of(n, (uint32_t)i) != key)
		i++;
	*index = i;
	return 0;
}

static int need_insert(const uint8_t *n, uint64_t key, int index)
{
	return (uint32_t)index >= nr_of(n) || key_of(n, (uint32_t)index) != key;
}

int tm_btree_insert(struct tm_btree_info *info, uint64_t root,
		    const uint64_t *keys, const void *value, uint64_t *new_root,
		    int *inserted, struct tm_error *e)
{
	struct spine *s = malloc(sizeof(*s));
	struct tm_btree_vtype le64;
	unsigned level, last = info->levels - 1;
	uint64_t block = root;
	int index = -1, r;
	uint8_t *n;

	if (!s)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	init_le64_type(info->tm, &le64);
	spine_init(s, info, e);

	for (level = 0; level < last; level++) {
		r = insert_raw(s, block, &le64, keys[level], &index);
		if (r)
			goto bad;
		n = cur(s);
		if (need_insert(n, keys[level], index)) {
			uint64_t new_tree;
			uint8_t le[8];
			r = tm_btree_empty(info, &new_tree, e);
			if (r)
				goto bad;
			tm_put_le64(le, new_tree);
			r = insert_at(n, (uint32_t)index, keys[level], le, cur_blk(s), e);
			if (r)
				goto bad;
		}
		block = value64(n, (uint32_t)index);
	}

	r = insert_raw(s, block, &info->vt, keys[level], &index);
	if (r)
		goto bad;
	n = cur(s);
	if (need_insert(n, keys[level], index)) {
		if (inserted)
			*inserted = 1;
		r = insert_at(n, (uint32_t)index, keys[level], value, cur_blk(s), e);
		if (r)
			goto bad;
	} else {
		if (inserted)
			*inserted = 0;
		if (info->vt.dec &&
		    (!info->vt.equal ||
		     !info->vt.equal(info->vt.ctx, value_ptr(n, (uint32_t)index), value))) {
			r = info->vt.dec(info->vt.ctx, value_ptr(n, (uint32_t)index), 1, e);
			if (r)
				goto bad;
		}
		memcpy(value_ptr(n, (uint32_t)index), value, info->vt.size);
	}
	*new_root = s->root;
	r = spine_exit(s);
	free(s);
	return r;
bad:
	spine_exit(s);
	free(s);
	return r;
}

/* ------------------------------------------------------------------ */
/* Overwrite in place (no rebalancing), for the overflow ref-count trees */

int tm_btree_get_overwrite_leaf(struct tm_btree_info *info, uint64_t root,
				uint64_t key, uint32_t *index, uint64_t *new_root,
				uint64_t *leaf, void *leaf_buf, struct tm_error *e)
{
	struct spine *s = malloc(sizeof(*s));
	int r = 0, i = -1;
	uint8_t *n;

	if (!s)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	spine_init(s, info, e);
	*index = 0;
	for (int depth = 0;; depth++) {
		if (depth >= MAX_DEPTH) {
			r = tm_fail(e, -ELOOP, TM_RULE_DEPTH, root,
				    "btree deeper than %d levels", MAX_DEPTH);
			goto bad;
		}
		r = shadow_step(s, root, &info->vt);
		if (r)
			goto bad;
		if (has_parent(s) && i >= 0)
			set_value64(parent(s), (uint32_t)i, cur_blk(s));
		n = cur(s);
		i = lower_bound(n, key);
		if (i < 0 || (uint32_t)i >= nr_of(n)) {
			r = tm_fail(e, -ENODATA, TM_RULE_BAD_VALUE, cur_blk(s),
				    "block %llu: key %llu is not in the btree",
				    (unsigned long long)cur_blk(s), (unsigned long long)key);
			goto bad;
		}
		if (is_leaf(n)) {
			if (key != key_of(n, (uint32_t)i)) {
				r = tm_fail(e, -ENODATA, TM_RULE_BAD_VALUE, cur_blk(s),
					    "block %llu: key %llu is not in the btree",
					    (unsigned long long)cur_blk(s),
					    (unsigned long long)key);
				goto bad;
			}
			break;
		}
		root = value64(n, (uint32_t)i);
	}
	*index = (uint32_t)i;
	*new_root = s->root;
	*leaf = cur_blk(s);
	memcpy(leaf_buf, cur(s), TM_BLOCK_SIZE);
	s->count--;		/* the caller holds the leaf */
	r = spine_exit(s);
	free(s);
	return r;
bad:
	spine_exit(s);
	free(s);
	return r;
}

int tm_btree_put_leaf(struct tm_btree_info *info, uint64_t leaf,
		      const void *leaf_buf, struct tm_error *e)
{
	return unlock(info->tm, leaf, leaf_buf, e);
}

/* ------------------------------------------------------------------ */
/* Remove (dm-btree-remove.c) */

static void node_shift(uint8_t *n, int shift)
{
	uint32_t nr = nr_of(n);
	size_t vs = vsize_of(n);

	if (shift < 0) {
		uint32_t s = (uint32_t)-shift;
		memmove(key_ptr(n, 0), key_ptr(n, s), 8u * (nr - s));
		memmove(value_ptr(n, 0), value_ptr(n, s), vs * (nr - s));
	} else {
		memmove(key_ptr(n, (uint32_t)shift), key_ptr(n, 0), 8u * nr);
		memmove(value_ptr(n, (uint32_t)shift), value_ptr(n, 0), vs * nr);
	}
}

static void node_copy(uint8_t *left, uint8_t *right, int shift)
{
	uint32_t nr_left = nr_of(left);
	size_t vs = vsize_of(left);

	if (shift < 0) {
		uint32_t s = (uint32_t)-shift;
		memcpy(key_ptr(left, nr_left), key_ptr(right, 0), 8u * s);
		memcpy(value_ptr(left, nr_left), value_ptr(right, 0), vs * s);
	} else {
		uint32_t s = (uint32_t)shift;
		memcpy(key_ptr(right, 0), key_ptr(left, nr_left - s), 8u * s);
		memcpy(value_ptr(right, 0), value_ptr(left, nr_left - s), vs * s);
	}
}

static void delete_at(uint8_t *n, uint32_t index)
{
	uint32_t nr = nr_of(n), to_copy = nr - (index + 1);
	size_t vs = vsize_of(n);

	if (to_copy) {
		memmove(key_ptr(n, index), key_ptr(n, index + 1), 8u * to_copy);
		memmove(value_ptr(n, index), value_ptr(n, index + 1), vs * to_copy);
	}
	set_nr(n, nr - 1);
}

static uint32_t merge_threshold(const uint8_t *n)
{
	return max_of(n) / 3;
}

struct child {
	uint32_t index;
	uint64_t block;
	uint8_t *n;
};

static int init_child(struct tm_btree_info *info, const struct tm_btree_vtype *vt,
		      uint8_t *pn, uint32_t index, struct child *c, struct tm_error *e)
{
	c->index = index;
	return shadow_child(info, vt, pn, index, &c->block, c->n, e);
}

static int shift(uint8_t *left, uint8_t *right, int count, uint64_t b, struct tm_error *e)
{
	uint32_t nr_left = nr_of(left), nr_right = nr_of(right), max = max_of(left);

	if (max != max_of(right) || vsize_of(left) != vsize_of(right))
		return tm_fail(e, -EUCLEAN, TM_RULE_MAX_ENTRIES, b,
			       "block %llu: sibling btree nodes differ in max_entries or value size",
			       (unsigned long long)b);
	if ((int64_t)nr_left - count < 0 || (int64_t)nr_left - count > max ||
	    (int64_t)nr_right + count < 0 || (int64_t)nr_right + count > max)
		return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, b,
			       "block %llu: btree node shift out of bounds",
			       (unsigned long long)b);
	if (!count)
		return 0;
	if (count > 0) {
		node_shift(right, count);
		node_copy(left, right, count);
	} else {
		node_copy(left, right, count);
		node_shift(right, count);
	}
	set_nr(left, (uint32_t)((int64_t)nr_left - count));
	set_nr(right, (uint32_t)((int64_t)nr_right + count));
	return 0;
}

static int rebalance2_(struct tm_btree_info *info, uint8_t *pn, struct child *l,
		       struct child *r, struct tm_error *e)
{
	uint8_t *left = l->n, *right = r->n;
	uint32_t nr_left = nr_of(left), nr_right = nr_of(right);
	uint32_t threshold = 2 * (merge_threshold(left) + 1);
	int ret;

	if ((ret = same_shape(left, right, r->block, e)))
		return ret;
	if (nr_left + nr_right < threshold) {
		/* merge */
		node_copy(left, right, -(int)nr_right);
		set_nr(left, nr_left + nr_right);
		delete_at(pn, r->index);
		/* the right block goes, not its children: left has them */
		return tm_tm_dec(info->tm, r->block, e);
	}
	uint32_t target_left = (nr_left + nr_right) / 2;
	ret = shift(left, right, (int)nr_left - (int)target_left, r->block, e);
	if (ret)
		return ret;
	set_key(pn, r->index, key_of(right, 0));
	return 0;
}

static int rebalance2(struct spine *s, const struct tm_btree_vtype *vt, uint32_t left_index)
{
	uint8_t lbuf[TM_BLOCK_SIZE], rbuf[TM_BLOCK_SIZE];
	struct child l = { .n = lbuf }, rc = { .n = rbuf };
	uint8_t *pn = cur(s);
	struct tm_tm *tm = s->info->tm;
	int r;

	r = init_child(s->info, vt, pn, left_index, &l, s->e);
	if (r)
		return r;
	r = init_child(s->info, vt, pn, left_index + 1, &rc, s->e);
	if (r)
		return r;
	r = rebalance2_(s->info, pn, &l, &rc, s->e);
	if (r)
		return r;
	r = unlock(tm, l.block, l.n, s->e);
	if (!r)
		r = unlock(tm, rc.block, rc.n, s->e);
	return r;
}

static int delete_center_node(struct tm_btree_info *info, uint8_t *pn, struct child *l,
			      struct child *c, struct child *r, struct tm_error *e)
{
	uint8_t *left = l->n, *center = c->n, *right = r->n;
	uint32_t nr_left = nr_of(left), nr_center = nr_of(center), nr_right = nr_of(right);
	uint32_t max = max_of(left);
	uint32_t sh = max - nr_left < nr_center ? max - nr_left : nr_center;
	int ret;

	if (nr_left + sh > max)
		return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, l->block,
			       "block %llu: btree node shift out of bounds",
			       (unsigned long long)l->block);
	node_copy(left, center, -(int)sh);
	set_nr(left, nr_left + sh);
	if (sh != nr_center) {
		sh = nr_center - sh;
		if (nr_right + sh > max)
			return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, r->block,
				       "block %llu: btree node shift out of bounds",
				       (unsigned long long)r->block);
		node_shift(right, (int)sh);
		node_copy(center, right, (int)sh);
		set_nr(right, nr_right + sh);
	}
	set_key(pn, r->index, key_of(right, 0));
	delete_at(pn, c->index);
	r->index--;
	ret = tm_tm_dec(info->tm, c->block, e);
	if (ret)
		return ret;
	return rebalance2_(info, pn, l, r, e);
}

static int redistribute3_rm(uint8_t *pn, struct child *l, struct child *c,
			    struct child *r, struct tm_error *e)
{
	uint8_t *left = l->n, *center = c->n, *right = r->n;
	int nr_left = (int)nr_of(left), nr_center = (int)nr_of(center);
	int nr_right = (int)nr_of(right), max = (int)max_of(left);
	int total = nr_left + nr_center + nr_right;
	int target_right = total / 3;
	int remainder = (target_right * 3) != total;
	int target_left = target_right + remainder;
	int sh, ret;

	if (target_left > max || target_right > max)
		return tm_fail(e, -EUCLEAN, TM_RULE_NR_ENTRIES, l->block,
			       "block %llu: btree nodes too full to redistribute",
			       (unsigned long long)l->block);
	if (nr_left < nr_right) {
		sh = nr_left - target_left;
		if (sh < 0 && nr_center < -sh) {
			/* not enough in the central node */
			ret = shift(left, center, -nr_center, c->block, e);
			if (ret)
				return ret;
			sh += nr_center;
			ret = shift(left, right, sh, r->block, e);
			if (ret)
				return ret;
			nr_right += sh;
		} else {
			ret = shift(left, center, sh, c->block, e);
			if (ret)
				return ret;
		}
		ret = shift(center, right, target_right - nr_right, r->block, e);
		if (ret)
			return ret;
	} else {
		sh = target_right - nr_right;
		if (sh > 0 && nr_center < sh) {
			/* not enough in the central node */
			ret = shift(center, right, nr_center, r->block, e);
			if (ret)
				return ret;
			sh -= nr_center;
			ret = shift(left, right, sh, r->block, e);
			if (ret)
				return ret;
			nr_left -= sh;
		} else {
			ret = shift(center, right, sh, r->block, e);
			if (ret)
				return ret;
		}
		ret = shift(left, center, nr_left - target_left, c->block, e);
		if (ret)
			return ret;
	}
	set_key(pn, c->index, key_of(center, 0));
	set_key(pn, r->index, key_of(right, 0));
	return 0;
}

static int rebalance3(struct spine *s, const struct tm_btree_vtype *vt, uint32_t left_index)
{
	uint8_t lbuf[TM_BLOCK_SIZE], cbuf[TM_BLOCK_SIZE], rbuf[TM_BLOCK_SIZE];
	struct child l = { .n = lbuf }, c = { .n = cbuf }, rc = { .n = rbuf };
	uint8_t *pn = cur(s);
	struct tm_tm *tm = s->info->tm;
	uint32_t threshold;
	int r;

	r = init_child(s->info, vt, pn, left_index, &l, s->e);
	if (!r)
		r = init_child(s->info, vt, pn, left_index + 1, &c, s->e);
	if (!r)
		r = init_child(s->info, vt, pn, left_index + 2, &rc, s->e);
	if (r)
		return r;
	if ((r = same_shape(lbuf, cbuf, c.block, s->e)) ||
	    (r = same_shape(cbuf, rbuf, rc.block, s->e)))
		return r;
	threshold = merge_threshold(lbuf) * 4 + 1;
	if (nr_of(lbuf) + nr_of(cbuf) + nr_of(rbuf) < threshold)
		r = delete_center_node(s->info, pn, &l, &c, &rc, s->e);
	else
		r = redistribute3_rm(pn, &l, &c, &rc, s->e);
	if (r)
		return r;
	r = unlock(tm, l.block, l.n, s->e);
	if (!r)
		r = unlock(tm, c.block, c.n, s->e);
	if (!r)
		r = unlock(tm, rc.block, rc.n, s->e);
	return r;
}

static int rebalance_children(struct spine *s, const struct tm_btree_vtype *vt, uint64_t key)
{
	uint8_t *n = cur(s);
	int i, r;

	if (nr_of(n) == 1) {
		uint8_t child[TM_BLOCK_SIZE];
		uint64_t b = value64(n, 0);
		int shared;

		r = tm_tm_is_shared(s->info->tm, b, &shared, s->e);
		if (r)
			return r;
		r = read_node(s->info->tm, b, vt->size, child, s->e);
		if (r)
			return r;
		if (shared) {
			r = inc_children(s->info->tm, child, vt, s->e);
			if (r)
				return r;
		}
		memcpy(n, child, TM_BLOCK_SIZE);
		return tm_tm_dec(s->info->tm, b, s->e);
	}
	i = lower_bound(n, key);
	if (i < 0)
		return -ENODATA;
	if (i == 0)
		return rebalance2(s, vt, (uint32_t)i);
	if ((uint32_t)i == nr_of(n) - 1)
		return rebalance2(s, vt, (uint32_t)i - 1);
	return rebalance3(s, vt, (uint32_t)i - 1);
}

static int do_leaf(uint8_t *n, uint64_t key, int *index)
{
	int i = lower_bound(n, key);

	if (i < 0 || (uint32_t)i >= nr_of(n) || key_of(n, (uint32_t)i) != key)
		return -ENODATA;
	*index = i;
	return 0;
}

/* nearest: in the leaf, take lower_bound's index whatever it holds */
static int remove_raw(struct spine *s, const struct tm_btree_vtype *vt, uint64_t root,
		      uint64_t key, int *index, int nearest)
{
	int i = *index, r;
	uint8_t *n;

	for (int depth = 0;; depth++) {
		if (depth >= MAX_DEPTH)
			return tm_fail(s->e, -ELOOP, TM_RULE_DEPTH, root,
				       "btree deeper than %d levels", MAX_DEPTH);
		r = shadow_step(s, root, vt);
		if (r)
			return r;
		if (has_parent(s))
			set_value64(parent(s), (uint32_t)i, cur_blk(s));
		n = cur(s);
		if (is_leaf(n))
			goto leaf;
		r = rebalance_children(s, vt, key);
		if (r)
			return r;
		n = cur(s);
		if (is_leaf(n))
			goto leaf;
		i = lower_bound(n, key);
		if (i < 0)
			return -ENODATA;
		root = value64(n, (uint32_t)i);
	}
leaf:
	if (nearest) {
		*index = lower_bound(n, key);
		return 0;
	}
	return do_leaf(n, key, index);
}

int tm_btree_remove(struct tm_btree_info *info, uint64_t root,
		    const uint64_t *keys, uint64_t *new_root, struct tm_error *e)
{
	struct spine *s = malloc(sizeof(*s));
	struct tm_btree_vtype le64;
	unsigned last = info->levels - 1;
	int index = 0, r = 0;
	uint8_t *n;

	if (!s)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	/*
	 * The kernel shadows the path before it finds out that the key is
	 * absent, and then keeps the old root: the tree would lose a
	 * reference.  Look first, change nothing if it is not there.
	 */
	{
		uint8_t *v = malloc(info->vt.size ? info->vt.size : 1);
		if (!v) {
			free(s);
			return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
		}
		r = tm_btree_wlookup(info, root, keys, v, e);
		free(v);
		if (r) {
			free(s);
			return r;
		}
	}
	init_le64_type(info->tm, &le64);
	spine_init(s, info, e);
	for (unsigned level = 0; level < info->levels; level++) {
		r = remove_raw(s, level == last ? &info->vt : &le64, root, keys[level],
			       &index, 0);
		if (r)
			break;
		n = cur(s);
		if (level != last) {
			root = value64(n, (uint32_t)index);
			continue;
		}
		if (info->vt.dec) {
			r = info->vt.dec(info->vt.ctx, value_ptr(n, (uint32_t)index), 1, e);
			if (r)
				break;
		}
		delete_at(n, (uint32_t)index);
	}
	if (!r)
		*new_root = s->root;
	int r2 = spine_exit(s);
	free(s);
	return r ? r : r2;
}

static int remove_one(struct tm_btree_info *info, uint64_t root, uint64_t *keys,
		      uint64_t end_key, uint64_t *new_root, struct tm_error *e)
{
	struct spine *s = malloc(sizeof(*s));
	struct tm_btree_vtype le64;
	unsigned level, last = info->levels - 1;
	int index = 0, r = 0;
	uint8_t *n;
	uint64_t k;

	if (!s)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	init_le64_type(info->tm, &le64);
	spine_init(s, info, e);
	for (level = 0; level < last; level++) {
		r = remove_raw(s, &le64, root, keys[level], &index, 0);
		if (r)
			goto out;
		root = value64(cur(s), (uint32_t)index);
	}
	r = remove_raw(s, &info->vt, root, keys[last], &index, 1);
	if (r)
		goto out;
	n = cur(s);
	if (index < 0)
		index = 0;
	if ((uint32_t)index >= nr_of(n)) {
		r = -ENODATA;
		goto out;
	}
	k = key_of(n, (uint32_t)index);
	if (k >= keys[last] && k < end_key) {
		if (info->vt.dec) {
			r = info->vt.dec(info->vt.ctx, value_ptr(n, (uint32_t)index), 1, e);
			if (r)
				goto out;
		}
		delete_at(n, (uint32_t)index);
		keys[last] = k + 1;
	} else {
		r = -ENODATA;
	}
out:
	*new_root = s->root ? s->root : root;
	int r2 = spine_exit(s);
	free(s);
	return r ? r : r2;
}

int tm_btree_remove_leaves(struct tm_btree_info *info, uint64_t root,
			   uint64_t *keys, uint64_t end_key, uint64_t *new_root,
			   uint64_t *nr_removed, struct tm_error *e)
{
	int r;

	*nr_removed = 0;
	do {
		r = remove_one(info, root, keys, end_key, &root, e);
		if (!r)
			(*nr_removed)++;
	} while (!r);
	*new_root = root;
	return r == -ENODATA ? 0 : r;
}

/* ------------------------------------------------------------------ */
/* Delete a whole tree */

#define MAX_SPINE_DEPTH 64

struct frame {
	uint64_t b;
	unsigned level;
	uint32_t nr_children, current_child;
	uint8_t n[TM_BLOCK_SIZE];
};

struct del_stack {
	struct tm_btree_info *info;
	struct tm_error *e;
	int top;
	struct frame spine[MAX_SPINE_DEPTH];
};

static int push_frame(struct del_stack *s, uint64_t b, unsigned level)
{
	struct tm_tm *tm = s->info->tm;
	uint32_t ref;
	int r;

	if (s->top >= MAX_SPINE_DEPTH - 1)
		return tm_fail(s->e, -ELOOP, TM_RULE_DEPTH, b,
			       "btree deletion deeper than %d levels", MAX_SPINE_DEPTH);
	r = tm_tm_ref(tm, b, &ref, s->e);
	if (r)
		return r;
	if (ref > 1)
		/* shared: drop our reference, leave the children */
		return tm_tm_dec(tm, b, s->e);
	if (ref == 0)
		return tm_fail(s->e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
			       "block %llu is in a btree but its reference count is 0",
			       (unsigned long long)b);
	struct frame *f = &s->spine[++s->top];
	unsigned last = s->info->levels - 1;
	r = read_node(tm, b, level < last ? 8 : s->info->vt.size, f->n, s->e);
	if (r) {
		s->top--;
		return r;
	}
	f->b = b;
	f->level = level;
	f->nr_children = nr_of(f->n);
	f->current_child = 0;
	return 0;
}

static int pop_frame(struct del_stack *s)
{
	struct frame *f = &s->spine[s->top--];

	return tm_tm_dec(s->info->tm, f->b, s->e);
}

int tm_btree_del(struct tm_btree_info *info, uint64_t root, struct tm_error *e)
{
	struct del_stack *s = malloc(sizeof(*s));
	unsigned last = info->levels - 1;
	int r;

	if (!s)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, root, "out of memory");
	s->info = info;
	s->e = e;
	s->top = -1;
	r = push_frame(s, root, 0);
	while (!r && s->top >= 0) {
		struct frame *f = &s->spine[s->top];
		if (f->current_child >= f->nr_children) {
			r = pop_frame(s);
			continue;
		}
		if (!is_leaf(f->n)) {
			uint64_t b = value64(f->n, f->current_child++);
			r = push_frame(s, b, f->level);
		} else if (f->level < last) {
			uint64_t b = value64(f->n, f->current_child++);
			r = push_frame(s, b, f->level + 1);
		} else {
			if (info->vt.dec && f->nr_children)
				r = info->vt.dec(info->vt.ctx, value_ptr(f->n, 0),
						 f->nr_children, e);
			f->current_child = f->nr_children;
			if (!r)
				r = pop_frame(s);
		}
	}
	free(s);
	return r;
}
