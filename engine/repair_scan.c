/*
 * repair_scan.c - read every metadata block once, in large sequential
 * reads (the holes of a sparse file are not read: they are zero blocks,
 * tm_dev_data_extent), and keep what a salvage needs to know about it: which blocks are
 * intact btree nodes (checksum, self-location, header, key order), what
 * they hold (key range, value size, child pointers, mapping times), what
 * kind of tree each belongs to, and what the metadata space map says of
 * each (its reference count) against the pointers to it that intact,
 * allocated nodes hold.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repair_int.h"
#include "thinmeta/btree.h"
#include "thinmeta/space_map.h"

/* ------------------------------------------------------------------ */
/* Small containers */

int u64vec_push(struct u64vec *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 16;
		uint64_t *nv = realloc(a->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n++] = x;
	return 0;
}

void u64vec_free(struct u64vec *a)
{
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Reading */

#define SCAN_CHUNK 256u		/* blocks per read: 1 MiB */

static int add_node(struct scan *s, const uint8_t *buf, uint64_t b)
{
	struct tm_node n;
	struct snode *sn;

	if (s->nr_nodes == s->cap_nodes) {
		size_t ncap = s->cap_nodes ? s->cap_nodes * 2 : 256;
		struct snode *nn = realloc(s->nodes, ncap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		s->nodes = nn;
		s->cap_nodes = ncap;
	}
	tm_node_view(buf, b, &n);
	sn = &s->nodes[s->nr_nodes];
	memset(sn, 0, sizeof(*sn));
	sn->block = b;
	sn->nr_entries = n.nr_entries;
	sn->value_size = n.value_size;
	sn->leaf = tm_node_is_leaf(&n);
	sn->count = COUNT_UNKNOWN;
	sn->height = -1;
	if (n.nr_entries) {
		sn->key_lo = tm_node_key(&n, 0);
		sn->key_hi = tm_node_key(&n, n.nr_entries - 1);
	}
	if (n.value_size == 8) {
		int small = n.nr_entries > 0;
		for (uint32_t i = 0; i < n.nr_entries; i++) {
			uint64_t v = tm_node_value64(&n, i);
			if (v == 0 || v >= s->nr_blocks)
				small = 0;
			if (sn->leaf) {
				if (tm_bt_block(v) > sn->max_data)
					sn->max_data = tm_bt_block(v);
				if (tm_bt_time(v) > sn->max_time) {
					sn->max_time = tm_bt_time(v);
					sn->nr_at_max = 0;
				}
				if (tm_bt_time(v) == sn->max_time)
					sn->nr_at_max++;
			}
		}
		sn->small_vals = (uint8_t)(sn->leaf && small);
		if (!sn->leaf || small) {
			sn->child_off = s->children.n;
			for (uint32_t i = 0; i < n.nr_entries; i++)
				if (u64vec_push(&s->children, tm_node_value64(&n, i)))
					return -ENOMEM;
		}
	}
	s->nr_nodes++;
	return 0;
}

static int classify_block(struct scan *s, const uint8_t *buf, uint64_t b)
{
	const struct tm_validator *v;
	struct tm_error tmp;
	int r;

	if (tm_block_is_zero(buf)) {
		s->bstate[b] = BS_ZERO;
		return 0;
	}
	v = tm_block_identify(buf);
	if (!v) {
		s->bstate[b] = BS_OTHER;
		return 0;
	}
	if (v == &tm_node_validator) {
		struct tm_node n;
		if (tm_block_validate(v, buf, b, &tmp)) {
			s->bstate[b] = BS_BADNODE;
			return 0;
		}
		tm_node_view(buf, b, &n);
		if (tm_node_check_keys(&n, &tmp)) {
			s->bstate[b] = BS_BADNODE;
			return 0;
		}
		if ((r = add_node(s, buf, b)))
			return r;
		s->bstate[b] = BS_NODE;
		return 0;
	}
	if (tm_block_validate(v, buf, b, &tmp)) {
		s->bstate[b] = BS_OTHER;
		return 0;
	}
	if (v == &tm_sb_validator) {
		s->bstate[b] = BS_SB;
		if (b && u64vec_push(&s->sb_copies, b))
			return -ENOMEM;
	} else {
		s->bstate[b] = v == &tm_bitmap_validator ? BS_BITMAP : BS_INDEX;
	}
	return 0;
}

/* Read and classify blocks [@b, @end), SCAN_CHUNK at a time. */
static int scan_extent(struct scan *s, struct tm_dev *dev, uint8_t *buf, uint64_t b,
		       uint64_t end)
{
	int r;

	for (; b < end; b += SCAN_CHUNK) {
		unsigned n = end - b < SCAN_CHUNK ? (unsigned)(end - b) : SCAN_CHUNK;
		if (tm_dev_read(dev, b, n, buf)) {
			/* find which blocks fail, one by one */
			for (unsigned i = 0; i < n; i++) {
				uint8_t *p = buf + (size_t)i * TM_BLOCK_SIZE;
				if (tm_dev_read(dev, b + i, 1, p)) {
					s->bstate[b + i] = BS_IOERR;
					s->nr_io_errors++;
					continue;
				}
				if ((r = classify_block(s, p, b + i)))
					return r;
			}
			continue;
		}
		for (unsigned i = 0; i < n; i++)
			if ((r = classify_block(s, buf + (size_t)i * TM_BLOCK_SIZE, b + i)))
				return r;
	}
	return 0;
}

int scan_run(struct tm_bm *bm, struct scan *s, struct tm_error *e)
{
	struct tm_dev *dev = tm_bm_dev(bm);
	uint8_t *buf;
	int r = 0;

	memset(s, 0, sizeof(*s));
	s->nr_blocks = tm_bm_nr_blocks(bm);
	/* metadata never lives past the format's largest space map */
	if (s->nr_blocks > TM_MAX_METADATA_BLOCKS)
		s->nr_blocks = TM_MAX_METADATA_BLOCKS;
	s->bstate = calloc(s->nr_blocks ? s->nr_blocks : 1, 1);
	buf = malloc((size_t)SCAN_CHUNK * TM_BLOCK_SIZE);
	if (!s->bstate || !buf) {
		free(buf);
		scan_free(s);
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	}
	/* holes of a sparse file are zero blocks without reading them */
	for (uint64_t next = 0; next < s->nr_blocks;) {
		uint64_t start, end;
		if (tm_dev_data_extent(dev, next, &start, &end) || start < next || end < start) {
			start = next;	/* cannot tell: read the rest */
			end = s->nr_blocks;
		}
		if (start > s->nr_blocks)
			start = s->nr_blocks;
		if (end > s->nr_blocks || (end == start && start < s->nr_blocks))
			end = s->nr_blocks;
		memset(s->bstate + next, BS_ZERO, start - next);
		if ((r = scan_extent(s, dev, buf, start, end)))
			goto nomem;
		next = end;
	}
	free(buf);
	if (s->nr_io_errors == s->nr_blocks && s->nr_blocks) {
		scan_free(s);
		return tm_fail(e, -EIO, TM_RULE_IO, 0, "no block of the metadata device can be read");
	}
	return 0;
nomem:
	free(buf);
	scan_free(s);
	return tm_fail(e, r, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
}

void scan_free(struct scan *s)
{
	free(s->bstate);
	free(s->nodes);
	u64vec_free(&s->children);
	u64vec_free(&s->sb_copies);
	free(s->lost);
	memset(s, 0, sizeof(*s));
}

struct snode *scan_find(const struct scan *s, uint64_t b)
{
	size_t lo = 0, hi = s->nr_nodes;

	if (!s->bstate || b >= s->nr_blocks || s->bstate[b] != BS_NODE)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->nodes[mid].block < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nr_nodes && s->nodes[lo].block == b ? &s->nodes[lo] : NULL;
}

/* ------------------------------------------------------------------ */
/* Kinds */

#define CLASSIFY_MAX_DEPTH (2 * TM_BTREE_MAX_DEPTH + 2)

static enum rkind kind_of(struct scan *s, struct snode *n, int depth)
{
	if (n->cstate == 2)
		return (enum rkind)n->kind;
	if (n->cstate == 1 || depth > CLASSIFY_MAX_DEPTH)
		return RK_OTHER;	/* a cycle, or absurdly deep */
	n->cstate = 1;

	enum rkind k = RK_OTHER;
	int h = -1;
	if (n->leaf) {
		h = 0;
		if (n->value_size == TM_VSIZE_DETAILS) {
			k = RK_DETAILS;
		} else if (n->value_size == TM_VSIZE_U64) {
			if (!n->nr_entries) {
				k = RK_EMPTY8;
			} else {
				k = RK_BOTTOM;
				/*
				 * Top level: every value a block number, pointing at a
				 * device's tree, or at a block too damaged to say (a
				 * mapping leaf cannot hold this: all its mappings would
				 * be of data block 0).
				 */
				if (n->small_vals) {
					int top = 1;
					for (uint32_t i = 0; i < n->nr_entries && top; i++) {
						uint64_t cb = s->children.v[n->child_off + i];
						struct snode *c = scan_find(s, cb);
						if (c) {
							enum rkind ck = kind_of(s, c, depth + 1);
							top = ck == RK_BOTTOM || ck == RK_EMPTY8;
						} else {
							uint8_t st = s->bstate[cb];
							top = st == BS_ZERO || st == BS_IOERR ||
							      st == BS_OTHER || st == BS_BADNODE;
						}
					}
					if (top)
						k = RK_TOP;
				}
			}
		}
	} else if (n->value_size == TM_VSIZE_U64 && n->nr_entries) {
		enum rkind agreed = RK_UNKNOWN;
		int conflict = 0;
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			struct snode *c = scan_find(s, s->children.v[n->child_off + i]);
			if (!c)
				continue;	/* a damaged child: a hole, not a verdict */
			enum rkind ck = kind_of(s, c, depth + 1);
			if (h < 0 && c->height >= 0)
				h = c->height + 1;
			if (ck == RK_EMPTY8)
				continue;
			if (ck == RK_OTHER || (agreed != RK_UNKNOWN && ck != agreed))
				conflict = 1;
			else
				agreed = ck;
		}
		k = conflict || agreed == RK_UNKNOWN ? RK_OTHER : agreed;
	}
	n->kind = (uint8_t)k;
	n->height = (int8_t)(h > 100 ? -1 : h);
	n->cstate = 2;
	return k;
}

void scan_classify(struct scan *s)
{
	for (size_t i = 0; i < s->nr_nodes; i++)
		kind_of(s, &s->nodes[i], 0);
}

/* ------------------------------------------------------------------ */
/* Reference counts */

static int add_lost(struct scan *s, uint64_t b, uint64_t lo, uint64_t hi, enum rkind kind)
{
	if (s->nr_lost == s->cap_lost) {
		size_t ncap = s->cap_lost ? s->cap_lost * 2 : 16;
		struct lost_ptr *l = realloc(s->lost, ncap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		s->lost = l;
		s->cap_lost = ncap;
	}
	s->lost[s->nr_lost++] = (struct lost_ptr){ b, lo, hi, (uint8_t)kind };
	return 0;
}

static int cmp_lost(const void *a, const void *b)
{
	const struct lost_ptr *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->block < y->block ? -1 : (x->block > y->block);
}

static int is_lost(const struct scan *s, uint64_t b)
{
	return b < s->nr_blocks && s->bstate[b] != BS_NODE;
}

/*
 * Every pointer from an allocated intact node to a block that is not an
 * intact node, with the key range the parent gives it; the superblocks'
 * roots that are lost, with every key.
 */
static int find_lost(struct tm_bm *bm, struct scan *s, const uint64_t *sb_refs,
		     const uint8_t *sb_kinds, size_t nr)
{
	uint8_t buf[TM_BLOCK_SIZE];

	for (size_t k = 0; k < nr; k++)
		if (sb_refs[k] && sb_kinds[k] != RK_OTHER && is_lost(s, sb_refs[k]) &&
		    add_lost(s, sb_refs[k], 0, UINT64_MAX, (enum rkind)sb_kinds[k]))
			return -ENOMEM;
	for (size_t i = 0; i < s->nr_nodes; i++) {
		struct snode *n = &s->nodes[i];
		uint32_t nc = snode_nr_children(n);
		int any = 0;
		if (!n->count || n->value_size != TM_VSIZE_U64)
			continue;
		for (uint32_t k = 0; k < nc && !any; k++)
			any = is_lost(s, s->children.v[n->child_off + k]);
		if (!any)
			continue;
		struct tm_error tmp;
		struct tm_node v;
		if (tm_bm_read(bm, n->block, &tm_node_validator, buf, &tmp))
			continue;
		tm_node_view(buf, n->block, &v);
		for (uint32_t k = 0; k < nc && k < v.nr_entries; k++) {
			uint64_t c = tm_node_value64(&v, k);
			if (!is_lost(s, c))
				continue;
			if (n->leaf) {	/* a top-level leaf: a device's whole tree */
				if (add_lost(s, c, 0, UINT64_MAX, RK_BOTTOM))
					return -ENOMEM;
				continue;
			}
			uint64_t hi = k + 1 < v.nr_entries ? tm_node_key(&v, k + 1) - 1 : UINT64_MAX;
			if (add_lost(s, c, tm_node_key(&v, k), hi, (enum rkind)n->kind))
				return -ENOMEM;
		}
	}
	/* one entry per lost block and kind, with the widest range it was given */
	size_t w = 0;
	if (s->nr_lost)
		qsort(s->lost, s->nr_lost, sizeof(*s->lost), cmp_lost);
	for (size_t i = 0; i < s->nr_lost; i++) {
		struct lost_ptr *l = &s->lost[i];
		if (w && s->lost[w - 1].block == l->block && s->lost[w - 1].kind == l->kind) {
			if (l->lo < s->lost[w - 1].lo)
				s->lost[w - 1].lo = l->lo;
			if (l->hi > s->lost[w - 1].hi)
				s->lost[w - 1].hi = l->hi;
			continue;
		}
		s->lost[w++] = *l;
	}
	s->nr_lost = w;
	return 0;
}

size_t scan_claimants(const struct scan *s, const struct snode *n, enum rkind kind)
{
	size_t count = 0;

	for (size_t i = 0; i < s->nr_lost; i++) {
		const struct lost_ptr *l = &s->lost[i];
		if (l->kind == kind && n->key_lo >= l->lo && n->key_hi <= l->hi)
			count++;
	}
	return count;
}

int scan_load_counts(struct tm_bm *bm, struct scan *s, const struct tm_sm_root *root,
		     const uint64_t *sb_refs, const uint8_t *sb_kinds, size_t nr_sb_refs,
		     struct tm_error *e)
{
	uint8_t *buf = malloc(TM_BLOCK_SIZE);
	uint8_t *ibuf = malloc(TM_BLOCK_SIZE);
	uint64_t nr_bitmaps;
	size_t i = 0;
	int r = 0;

	if (!buf || !ibuf) {
		r = tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	nr_bitmaps = (root->nr_blocks + TM_ENTRIES_PER_BITMAP - 1) / TM_ENTRIES_PER_BITMAP;
	if (root->nr_blocks < s->nr_blocks && root->nr_blocks < 2) {
		r = tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, 0,
			    "the metadata space map tracks %llu blocks",
			    (unsigned long long)root->nr_blocks);
		goto out;
	}
	if (nr_bitmaps > TM_META_INDEX_ENTRIES) {
		r = tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, root->bitmap_root,
			    "the metadata space map tracks %llu blocks, more than an index block holds",
			    (unsigned long long)root->nr_blocks);
		goto out;
	}
	if ((r = tm_bm_read(bm, root->bitmap_root, &tm_index_validator, ibuf, e))) {
		tm_error_context(e, "metadata space map index");
		goto out;
	}
	for (uint64_t bi = 0; bi < nr_bitmaps && i < s->nr_nodes; bi++) {
		struct tm_index_entry ie;
		struct tm_error tmp;
		uint64_t first = bi * TM_ENTRIES_PER_BITMAP;
		uint64_t end = first + TM_ENTRIES_PER_BITMAP;
		int ok;

		tm_index_entry_decode(ibuf + 16 + 16 * bi, &ie);
		ok = tm_bm_read(bm, ie.blocknr, &tm_bitmap_validator, buf, &tmp) == 0;
		for (; i < s->nr_nodes && s->nodes[i].block < end; i++) {
			struct snode *n = &s->nodes[i];
			uint64_t b = n->block;
			if (!ok || b >= root->nr_blocks) {
				n->count = COUNT_UNKNOWN;
				continue;
			}
			unsigned v = tm_bitmap_get(buf, (uint32_t)(b - first));
			if (v < 3) {
				n->count = v;
				continue;
			}
			uint8_t val[4];
			if (tm_btree_lookup(bm, root->ref_count_root, 4, b, val, &tmp) == 0)
				n->count = tm_le32(val);
			else
				n->count = COUNT_UNKNOWN;
		}
	}
	for (; i < s->nr_nodes; i++)
		s->nodes[i].count = COUNT_UNKNOWN;

	/* pointers from allocated (or possibly allocated) intact nodes */
	for (i = 0; i < s->nr_nodes; i++) {
		struct snode *n = &s->nodes[i];
		uint32_t nc = snode_nr_children(n);
		if (!n->count || n->value_size != TM_VSIZE_U64 || (n->leaf && !n->small_vals))
			continue;
		for (uint32_t k = 0; k < nc; k++) {
			struct snode *c = scan_find(s, s->children.v[n->child_off + k]);
			if (c)
				c->refs++;
		}
	}
	for (size_t k = 0; k < nr_sb_refs; k++) {
		struct snode *c = scan_find(s, sb_refs[k]);
		if (c)
			c->refs++;
	}
	if ((r = find_lost(bm, s, sb_refs, sb_kinds, nr_sb_refs))) {
		r = tm_fail(e, r, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		goto out;
	}
	s->have_counts = 1;
out:
	free(buf);
	free(ibuf);
	return r;
}
