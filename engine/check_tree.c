/*
 * check_tree.c - the checker's btree walk.
 *
 * Pass 1 (ck_walk) reads the trees of one class - all bottom-level mapping
 * trees at once, say - level by level: each level's new nodes are sorted
 * and read in block order, in runs of adjacent blocks.  Every reference to
 * a node is counted (the metadata reference count) but a node is read and
 * descended into only the first time.  A node is validated where it is
 * read (checksum, self-location, header, value size, key order); an
 * internal node's keys and children go to the node table's arena, a leaf's
 * entries go to the class's handler (data reference counts, device lists,
 * space-map entries) and only its key range and size are kept.
 *
 * Pass 2 (ck_summarise) works from memory only: from each root, depth
 * first, it checks every node's keys against the range its parent gives
 * it, that all children of a node have the same height (so all leaves are
 * at one depth), cycles, underfull nodes, and sums the leaf entries and
 * damaged subtrees below every node (memoised, so shared subtrees cost
 * once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "check_int.h"

#define MAX_SUMMARY_DEPTH 32

static uint32_t leaf_value_size(enum tm_tree t)
{
	switch (t) {
	case TM_TREE_DETAILS:
		return TM_VSIZE_DETAILS;
	case TM_TREE_DATA_INDEX:
		return TM_VSIZE_INDEX;
	case TM_TREE_DATA_RC:
	case TM_TREE_META_RC:
		return TM_VSIZE_REFCOUNT;
	default:
		return TM_VSIZE_U64;
	}
}

/* ------------------------------------------------------------------ */
/* Node table */

static int new_node(struct ck *c, uint64_t b, enum tm_tree tree, uint32_t parent,
		    uint32_t owner, unsigned depth, int snap, uint32_t *out)
{
	if (c->nr_nodes == c->cap_nodes) {
		uint32_t ncap = c->cap_nodes ? c->cap_nodes * 2 : 256;
		struct cnode *nn = realloc(c->nodes, (size_t)ncap * sizeof(*nn));
		if (!nn)
			return ck_fail(c, -ENOMEM, "node table");
		c->nodes = nn;
		c->cap_nodes = ncap;
	}
	struct cnode *n = &c->nodes[c->nr_nodes];
	memset(n, 0, sizeof(*n));
	n->block = b;
	n->tree = (uint8_t)tree;
	n->parent = parent;
	n->owner = owner;
	n->depth = (uint8_t)(depth > 255 ? 255 : depth);
	n->height = 0xff;
	n->flags = snap ? CN_SNAP : 0;
	c->nodeidx[b] = c->nr_nodes + 1;
	*out = c->nr_nodes++;
	return 0;
}

static int arena_put(struct ck *c, const struct tm_node *n, uint64_t *off)
{
	size_t need = 2u * n->nr_entries;

	if (c->arena_n + need > c->arena_cap) {
		size_t ncap = c->arena_cap ? c->arena_cap * 2 : 4096;
		while (ncap < c->arena_n + need)
			ncap *= 2;
		uint64_t *na = realloc(c->arena, ncap * sizeof(*na));
		if (!na)
			return ck_fail(c, -ENOMEM, "internal node table");
		c->arena = na;
		c->arena_cap = ncap;
	}
	*off = c->arena_n;
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		c->arena[c->arena_n + i] = tm_node_key(n, i);
		c->arena[c->arena_n + n->nr_entries + i] = tm_node_value64(n, i);
	}
	c->arena_n += need;
	return 0;
}

uint32_t ck_add_root(struct ck *c, uint64_t block, uint64_t dev_id, uint32_t parent,
		     int snap)
{
	if (c->nr_roots == c->cap_roots) {
		uint32_t ncap = c->cap_roots ? c->cap_roots * 2 : 64;
		struct croot *nr = realloc(c->roots, (size_t)ncap * sizeof(*nr));
		if (!nr) {
			ck_fail(c, -ENOMEM, "root list");
			return UINT32_MAX;
		}
		c->roots = nr;
		c->cap_roots = ncap;
	}
	struct croot *r = &c->roots[c->nr_roots];
	memset(r, 0, sizeof(*r));
	r->block = block;
	r->dev_id = dev_id;
	r->parent = parent;
	r->snap = (uint8_t)(snap != 0);
	return c->nr_roots++;
}

unsigned ck_node_path(struct ck *c, uint32_t node1, uint64_t *path, unsigned cap)
{
	uint64_t rev[TM_MAX_PATH];
	unsigned n = 0;
	int snap = 0;

	while (node1 && n < TM_MAX_PATH - 1) {
		const struct cnode *nd = &c->nodes[node1 - 1];
		rev[n++] = nd->block;
		if (!nd->parent && nd->owner < c->nr_roots)
			snap = c->roots[nd->owner].snap;
		node1 = nd->parent;
	}
	if (!cap)
		return 0;
	unsigned k = 0;
	path[k++] = snap ? c->snap_block : 0;
	while (n && k < cap)
		path[k++] = rev[--n];
	return k;
}

static uint64_t node_dev(const struct ck *c, const struct cnode *n)
{
	if (n->tree != TM_TREE_BOTTOM || n->owner >= c->nr_roots)
		return TM_NO_DEV;
	return c->roots[n->owner].dev_id;
}

void ck_problem_node(struct ck *c, struct tm_problem *p, uint32_t node1)
{
	static uint64_t path[TM_MAX_PATH];
	const struct cnode *n = &c->nodes[node1 - 1];

	p->kind = TM_KIND_NODE;
	p->tree = (enum tm_tree)n->tree;
	p->block = n->block;
	p->in_snapshot = (n->flags & CN_SNAP) != 0;
	p->dev_id = node_dev(c, n);
	p->path_len = ck_node_path(c, node1, path, TM_MAX_PATH);
	p->path = path;
	if (n->tree == TM_TREE_BOTTOM)
		p->nr_devs = ck_counts_get(&c->mcount, n->block);
}

/* ------------------------------------------------------------------ */
/* References */

int ck_ref_block(struct ck *c, uint64_t b, enum tm_block_kind kind,
		 enum tm_tree tree, struct tm_problem *where)
{
	uint8_t want = ck_kind_byte(kind, tree);
	uint32_t old;
	int r;

	if (b >= c->meta_limit) {
		where->code = TM_PR_BLOCK_RANGE;
		where->severity = tm_problem_info(TM_PR_BLOCK_RANGE)->severity;
		where->actual = b;
		where->expected = c->meta_limit;
		ck_report(c, where);
		return -1;
	}
	r = ck_counts_inc(&c->mcount, b, &old);
	if (r) {
		ck_fail(c, r, "metadata reference counts");
		return -1;
	}
	if (c->kind[b] && c->kind[b] != want) {
		where->code = TM_PR_BLOCK_KIND_CONFLICT;
		where->severity = tm_problem_info(TM_PR_BLOCK_KIND_CONFLICT)->severity;
		where->actual = b;
		where->text = tm_kind_name(kind, tree);
		where->text2 = tm_kind_name((enum tm_block_kind)(c->kind[b] & 15),
					    (enum tm_tree)(c->kind[b] >> 4));
		ck_report(c, where);
		return -1;
	}
	c->kind[b] = want;
	return old == 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Validation */

int ck_validate(const struct tm_validator *v, const void *buf, uint64_t b,
		struct tm_problem *p)
{
	return ck_validate_crc(v, buf, b, tm_block_crc(buf), p);
}

int ck_validate_crc(const struct tm_validator *v, const void *buf, uint64_t b,
		    uint32_t crc, struct tm_problem *p)
{
	uint32_t stored = tm_le32(buf);
	uint64_t self = tm_le64((const uint8_t *)buf + 8);

	if ((crc ^ v->salt) != stored) {
		const struct tm_validator *other = tm_block_identify(buf);
		if (tm_block_is_zero(buf)) {
			tm_problem_init(p, TM_PR_BLOCK_ZERO);
		} else if (other && other != v) {
			tm_problem_init(p, TM_PR_BLOCK_WRONG_TYPE);
			p->text2 = other->name;
		} else {
			tm_problem_init(p, TM_PR_BLOCK_CHECKSUM);
		}
		p->text = v->name;
		return -1;
	}
	if (self != b) {
		tm_problem_init(p, TM_PR_BLOCK_BLOCKNR);
		p->text = v->name;
		p->actual = self;
		p->expected = b;
		return -1;
	}
	return 0;
}

/* Header rules of a node already known to be checksummed and located. */
static int node_header(const struct tm_node *n, enum tm_tree tree, struct tm_problem *p)
{
	uint32_t kind = n->flags & (TM_NODE_INTERNAL | TM_NODE_LEAF);

	if (kind != TM_NODE_INTERNAL && kind != TM_NODE_LEAF) {
		tm_problem_init(p, TM_PR_NODE_FLAGS);
		p->actual = n->flags;
		return -1;
	}
	if (n->value_size == 0 || n->value_size > TM_BLOCK_SIZE ||
	    (uint64_t)n->max_entries * (8 + n->value_size) + TM_NODE_HEADER_SIZE > TM_BLOCK_SIZE) {
		tm_problem_init(p, TM_PR_NODE_MAX_ENTRIES);
		p->actual = n->max_entries;
		p->n = n->value_size;
		return -1;
	}
	if (n->nr_entries > n->max_entries) {
		tm_problem_init(p, TM_PR_NODE_NR_ENTRIES);
		p->actual = n->nr_entries;
		p->expected = n->max_entries;
		return -1;
	}
	uint32_t want = tm_node_is_leaf(n) ? leaf_value_size(tree) : TM_VSIZE_U64;
	if (n->value_size != want) {
		tm_problem_init(p, TM_PR_NODE_VALUE_SIZE);
		p->actual = n->value_size;
		p->expected = want;
		return -1;
	}
	uint64_t b = n->nr_entries ? tm_node_key(n, 0) : 0;
	for (uint32_t i = 1; i < n->nr_entries; i++) {
		uint64_t a = b;
		b = tm_node_key(n, i);
		if (a >= b) {
			tm_problem_init(p, TM_PR_NODE_KEY_ORDER);
			p->n = i;
			p->actual = b;
			p->expected = a;
			return -1;
		}
	}
	if (!tm_node_is_leaf(n) && !n->nr_entries) {
		tm_problem_init(p, TM_PR_NODE_EMPTY_INTERNAL);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Pass 1: the level-by-level walk */

struct item {
	uint64_t block;
	uint64_t lo, hi;
	uint32_t node;		/* node + 1 */
	uint8_t open;
};

struct level {
	struct item *v;
	size_t n, cap;
};

struct walk {
	enum tm_tree tree;
	unsigned depth;
	struct level cur, next;
	uint64_t *blocks;
	size_t blocks_cap;
};

static int level_push(struct ck *c, struct level *l, const struct item *it)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		struct item *nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv)
			return ck_fail(c, -ENOMEM, "walk frontier");
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = *it;
	return 0;
}

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

/* Fill in where a node problem is, and what it puts at risk. */
static void node_problem(struct ck *c, struct tm_problem *p, const struct item *it)
{
	ck_problem_node(c, p, it->node);
	if (p->tree == TM_TREE_BOTTOM || p->tree == TM_TREE_TOP ||
	    p->tree == TM_TREE_DETAILS) {
		p->has_keys = 1;
		p->key_lo = it->lo;
		p->key_hi = it->hi;
		p->keys_open = it->open;
	}
}

static void mark_bad(struct ck *c, const struct item *it)
{
	c->nodes[it->node - 1].flags |= CN_BAD;
}

/* Leaf entries of each class. */
static void leaf_entries(struct ck *c, uint32_t node1, const struct tm_node *n,
			 enum tm_tree tree)
{
	struct cnode *cn = &c->nodes[node1 - 1];
	int snap = (cn->flags & CN_SNAP) != 0;
	struct kv e = { .node = node1 };

	switch (tree) {
	case TM_TREE_DETAILS:
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			struct tm_device_details d;
			tm_details_decode(tm_node_value(n, i), &d);
			if (c->details.n >= c->det_cap) {
				size_t ncap = c->det_cap ? c->det_cap * 2 : 64;
				struct tm_device_details *nd =
					realloc(c->det_vals, ncap * sizeof(*nd));
				if (!nd) {
					ck_fail(c, -ENOMEM, "device list");
					return;
				}
				c->det_vals = nd;
				c->det_cap = ncap;
			}
			c->det_vals[c->details.n] = d;
			e.key = tm_node_key(n, i);
			e.v1 = c->details.n;
			e.v2 = (uint64_t)snap;
			if (kv_push(&c->details, &e)) {
				ck_fail(c, -ENOMEM, "device list");
				return;
			}
		}
		break;
	case TM_TREE_TOP:
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			e.key = tm_node_key(n, i);
			e.v1 = tm_node_value64(n, i);
			e.v2 = (uint64_t)snap;
			if (kv_push(&c->top, &e)) {
				ck_fail(c, -ENOMEM, "device list");
				return;
			}
		}
		break;
	case TM_TREE_BOTTOM: {
		uint32_t tmax = snap ? c->snap.time : c->sb.time;
		uint64_t data_limit = c->data_limit;
		c->res->nr_mappings += n->nr_entries;
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			uint64_t v = tm_node_value64(n, i);
			uint64_t db = tm_bt_block(v);
			uint32_t t = tm_bt_time(v);
			if (db >= data_limit) {
				struct tm_problem p;
				tm_problem_init(&p, TM_PR_MAP_DATA_RANGE);
				ck_problem_node(c, &p, node1);
				p.has_keys = 1;
				p.key_lo = tm_node_key(n, i);
				p.key_hi = p.key_lo + 1;
				p.actual = db;
				p.expected = c->data_limit;
				ck_report(c, &p);
				continue;
			}
			if (t > tmax) {
				struct tm_problem p;
				tm_problem_init(&p, TM_PR_MAP_TIME);
				ck_problem_node(c, &p, node1);
				p.has_keys = 1;
				p.key_lo = tm_node_key(n, i);
				p.key_hi = p.key_lo + 1;
				p.actual = t;
				p.expected = tmax;
				ck_report(c, &p);
			}
			int r = ck_counts_add(&c->dcount, db);
			if (r) {
				ck_fail(c, r, "data reference counts");
				return;
			}
		}
		break;
	}
	case TM_TREE_DATA_INDEX:
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			struct tm_index_entry ie;
			tm_index_entry_decode(tm_node_value(n, i), &ie);
			e.key = tm_node_key(n, i);
			e.v1 = ie.blocknr;
			e.v2 = (uint64_t)ie.nr_free << 32 | ie.none_free_before;
			if (kv_push(&c->data_index, &e)) {
				ck_fail(c, -ENOMEM, "space map index");
				return;
			}
		}
		break;
	case TM_TREE_DATA_RC:
	case TM_TREE_META_RC:
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			e.key = tm_node_key(n, i);
			e.v1 = tm_le32(tm_node_value(n, i));
			e.v2 = i;
			if (kv_push(tree == TM_TREE_DATA_RC ? &c->data_rc : &c->meta_rc, &e)) {
				ck_fail(c, -ENOMEM, "ref-count entries");
				return;
			}
		}
		break;
	default:
		break;
	}
}

static void read_one(struct ck *c, size_t i, uint64_t b, const uint8_t *buf, uint32_t crc,
		     int err, void *ctx)
{
	struct walk *w = ctx;
	const struct item *it = &w->cur.v[i];
	struct cnode *cn = &c->nodes[it->node - 1];
	struct tm_problem p;
	struct tm_node n;

	c->res->nr_nodes++;
	if (!buf) {
		tm_problem_init(&p, TM_PR_BLOCK_IO);
		p.text = "btree node";
		p.text2 = strerror(err < 0 ? -err : EIO);
		node_problem(c, &p, it);
		ck_report(c, &p);
		mark_bad(c, it);
		return;
	}
	if (ck_validate_crc(&tm_node_validator, buf, b, crc, &p)) {
		node_problem(c, &p, it);
		ck_report(c, &p);
		mark_bad(c, it);
		return;
	}
	tm_node_view(buf, b, &n);
	if (node_header(&n, w->tree, &p)) {
		node_problem(c, &p, it);
		ck_report(c, &p);
		mark_bad(c, it);
		return;
	}
	cn->nr_entries = n.nr_entries;
	cn->max_entries = n.max_entries;
	if (n.max_entries % 3) {
		tm_problem_init(&p, TM_PR_NODE_MAX_ENTRIES_DIV3);
		p.actual = n.max_entries;
		node_problem(c, &p, it);
		ck_report(c, &p);
	}
	if (tm_node_is_leaf(&n)) {
		cn->flags |= CN_LEAF;
		cn->height = 0;
		cn->sub_count = n.nr_entries;
		if (n.nr_entries) {
			cn->sub_min = tm_node_key(&n, 0);
			cn->sub_max = tm_node_key(&n, n.nr_entries - 1);
		}
		leaf_entries(c, it->node, &n, w->tree);
		return;
	}
	if (w->depth + 1 >= TM_BTREE_MAX_DEPTH) {
		tm_problem_init(&p, TM_PR_NODE_TOO_DEEP);
		p.expected = TM_BTREE_MAX_DEPTH;
		node_problem(c, &p, it);
		ck_report(c, &p);
		mark_bad(c, it);
		return;
	}
	if (arena_put(c, &n, &cn->arena))
		return;
	uint32_t parent = it->node;
	for (uint32_t k = 0; k < n.nr_entries && !c->err; k++) {
		uint64_t child = tm_node_value64(&n, k);
		struct item ci = {
			.block = child,
			.lo = tm_node_key(&n, k),
			.hi = k + 1 < n.nr_entries ? tm_node_key(&n, k + 1) : it->hi,
			.open = k + 1 < n.nr_entries ? 0 : it->open,
		};
		char text[48];
		tm_problem_init(&p, TM_PR_BLOCK_RANGE);
		if (!ck_ref_ok(c, child, TM_KIND_NODE, w->tree)) {
			/* the reference will be reported: say where it is */
			ck_problem_node(c, &p, parent);
			p.has_keys = p.tree == TM_TREE_BOTTOM || p.tree == TM_TREE_TOP ||
				     p.tree == TM_TREE_DETAILS;
			p.key_lo = ci.lo;
			p.key_hi = ci.hi;
			p.keys_open = ci.open;
			snprintf(text, sizeof(text), "entry %u", k);
			p.text = text;
		}
		int r = ck_ref_block(c, child, TM_KIND_NODE, w->tree, &p);
		if (r != 1)
			continue;
		/* the parent's slot may have moved: new_node can realloc */
		uint32_t idx;
		const struct cnode *pn = &c->nodes[parent - 1];
		if (new_node(c, child, w->tree, parent, pn->owner, w->depth + 1,
			     (pn->flags & CN_SNAP) != 0, &idx))
			return;
		ci.node = idx + 1;
		if (level_push(c, &w->next, &ci))
			return;
	}
}

int ck_walk(struct ck *c, enum tm_tree tree, const uint32_t *roots, uint32_t nroots)
{
	struct walk w = { .tree = tree };

	for (uint32_t i = 0; i < nroots && !c->err; i++) {
		struct croot *r = &c->roots[roots[i]];
		struct tm_problem p;
		char text[64];

		if (r->parent) {
			tm_problem_init(&p, TM_PR_BLOCK_RANGE);
			ck_problem_node(c, &p, r->parent);
			snprintf(text, sizeof(text), "device %llu's mapping root",
				 (unsigned long long)r->dev_id);
		} else {
			tm_problem_init(&p, TM_PR_BLOCK_RANGE);
			p.kind = r->snap ? TM_KIND_SNAP_SB : TM_KIND_SUPERBLOCK;
			p.block = r->snap ? c->snap_block : 0;
			snprintf(text, sizeof(text), "the %s root", tm_tree_name(tree));
		}
		p.text = text;
		if (tree == TM_TREE_BOTTOM) {
			p.dev_id = r->dev_id;
			p.has_keys = 0;
		}
		int rr = ck_ref_block(c, r->block, TM_KIND_NODE, tree, &p);
		if (rr < 0) {
			r->dropped = 1;
			continue;
		}
		if (rr == 0) {
			r->node = c->nodeidx[r->block];
			continue;
		}
		uint32_t idx;
		if (new_node(c, r->block, tree, r->parent, roots[i], 0, r->snap, &idx))
			break;
		r->node = idx + 1;
		struct item it = { .block = r->block, .node = idx + 1, .open = 1 };
		if (level_push(c, &w.cur, &it))
			break;
	}
	while (w.cur.n && !c->err) {
		qsort(w.cur.v, w.cur.n, sizeof(*w.cur.v), item_cmp);
		if (w.cur.n > w.blocks_cap) {
			uint64_t *nb = realloc(w.blocks, w.cur.n * sizeof(*nb));
			if (!nb) {
				ck_fail(c, -ENOMEM, "walk");
				break;
			}
			w.blocks = nb;
			w.blocks_cap = w.cur.n;
		}
		for (size_t i = 0; i < w.cur.n; i++)
			w.blocks[i] = w.cur.v[i].block;
		w.next.n = 0;
		ck_read_list(c, w.blocks, w.cur.n, read_one, &w);
		struct level t = w.cur;
		w.cur = w.next;
		w.next = t;
		w.depth++;
	}
	free(w.cur.v);
	free(w.next.v);
	free(w.blocks);
	return c->err;
}

/* ------------------------------------------------------------------ */
/* Pass 2: summaries */

struct sum {
	enum tm_tree tree;
	uint64_t *path;		/* c->sub_path */
	unsigned plen;
};

static void sum_problem(struct ck *c, struct sum *s, struct tm_problem *p,
			uint32_t node1)
{
	ck_problem_node(c, p, node1);
	p->path = s->path;
	p->path_len = s->plen;
}

static void add_bad(struct cnode *n, uint64_t lo, uint64_t hi, int open)
{
	if (n->sub_bad == 0) {
		n->bad_lo = lo;
		n->bad_hi = hi;
		n->bad_open = (uint8_t)open;
	} else {
		if (lo < n->bad_lo)
			n->bad_lo = lo;
		if (open)
			n->bad_open = 1;
		else if (!n->bad_open && hi > n->bad_hi)
			n->bad_hi = hi;
	}
	if (n->sub_bad < UINT32_MAX)
		n->sub_bad++;
}

static void merge_bad(struct cnode *n, const struct cnode *ch)
{
	uint32_t k = ch->sub_bad;

	if (!k)
		return;
	add_bad(n, ch->bad_lo, ch->bad_hi, ch->bad_open);
	n->sub_bad--;
	n->sub_bad = n->sub_bad > UINT32_MAX - k ? UINT32_MAX : n->sub_bad + k;
}

/*
 * Summarise node @node1 reached with key range [lo, hi) (or [lo..] if
 * open); 0 if usable, -1 if the subtree is unusable from this parent.
 */
static int summarise(struct ck *c, struct sum *s, uint32_t node1, uint64_t lo,
		     uint64_t hi, int open, int is_root, unsigned depth)
{
	struct cnode *n = &c->nodes[node1 - 1];
	struct tm_problem p;

	if (s->plen < TM_MAX_PATH)
		s->path[s->plen++] = n->block;
	if (depth > MAX_SUMMARY_DEPTH) {
		tm_problem_init(&p, TM_PR_NODE_TOO_DEEP);
		p.expected = MAX_SUMMARY_DEPTH;
		sum_problem(c, s, &p, node1);
		ck_report(c, &p);
		s->plen--;
		return -1;
	}
	if (n->flags & CN_SUM_BUSY) {
		tm_problem_init(&p, TM_PR_NODE_CYCLE);
		sum_problem(c, s, &p, node1);
		ck_report(c, &p);
		s->plen--;
		return -1;
	}
	if (n->flags & CN_BAD) {
		s->plen--;
		return -1;
	}
	if (!(n->flags & CN_SUM_DONE) && !(n->flags & CN_LEAF)) {
		const uint64_t *keys = c->arena + n->arena;
		uint32_t nr = n->nr_entries;
		int have_h = 0;
		uint8_t h = 0xff;

		n->flags |= CN_SUM_BUSY;
		n->sub_count = 0;
		for (uint32_t i = 0; i < nr && !c->err; i++) {
			uint64_t child = c->arena[n->arena + nr + i];
			uint64_t clo = keys[i];
			uint64_t chi = i + 1 < nr ? keys[i + 1] : hi;
			int copen = i + 1 < nr ? 0 : open;
			uint32_t ci = child < c->meta_limit ? c->nodeidx[child] : 0;
			/* a child used as something else is not ours */
			if (ci && c->nodes[ci - 1].tree != n->tree)
				ci = 0;
			if (!ci || summarise(c, s, ci, clo, chi, copen, 0, depth + 1)) {
				add_bad(n, clo, chi, copen);
				continue;
			}
			const struct cnode *ch = &c->nodes[ci - 1];
			merge_bad(n, ch);
			if (ch->sub_count) {
				if (!n->sub_count)
					n->sub_min = ch->sub_min;
				n->sub_max = ch->sub_max;
				n->sub_count += ch->sub_count;
			}
			if (ch->height != 0xff) {
				if (!have_h) {
					h = ch->height;
					have_h = 1;
				} else if (ch->height != h && !(n->flags & CN_DEPTH_SAID)) {
					n->flags |= CN_DEPTH_SAID;
					tm_problem_init(&p, TM_PR_NODE_DEPTH);
					sum_problem(c, s, &p, node1);
					ck_report(c, &p);
				}
			}
		}
		n = &c->nodes[node1 - 1];
		n->flags &= (uint8_t)~CN_SUM_BUSY;
		n->flags |= CN_SUM_DONE;
		n->height = have_h && h < 0xfe ? (uint8_t)(h + 1) : 0xff;
		if (n->flags & CN_DEPTH_SAID) {
			/* leaves at several depths: lookups may go wrong anywhere */
			s->plen--;
			return -1;
		}
	}
	n->flags |= CN_SUM_DONE;

	/* What this parent says about the node. */
	if (!is_root && n->nr_entries < n->max_entries / 3 &&
	    !(n->flags & CN_UNDERFULL_SAID)) {
		n->flags |= CN_UNDERFULL_SAID;
		tm_problem_init(&p, TM_PR_NODE_UNDERFULL);
		p.actual = n->nr_entries;
		p.expected = n->max_entries / 3;
		sum_problem(c, s, &p, node1);
		ck_report(c, &p);
	}
	int bad_range = 0;
	uint64_t kmin = n->sub_min, kmax = n->sub_max;
	if (n->sub_count && (kmin < lo || (!open && kmax >= hi)))
		bad_range = 1;
	if (!(n->flags & CN_LEAF) && n->nr_entries > 1) {
		const uint64_t *keys = c->arena + n->arena;
		if (keys[1] <= lo || (!open && keys[n->nr_entries - 1] >= hi)) {
			bad_range = 1;
			if (!n->sub_count || keys[1] < kmin)
				kmin = keys[1];
			if (!n->sub_count || keys[n->nr_entries - 1] > kmax)
				kmax = keys[n->nr_entries - 1];
		}
	}
	if (bad_range) {
		if (!(n->flags & CN_RANGE_SAID)) {
			n->flags |= CN_RANGE_SAID;
			tm_problem_init(&p, TM_PR_NODE_KEY_RANGE);
			sum_problem(c, s, &p, node1);
			p.actual = kmin;
			p.n = kmax;
			p.has_keys = 1;
			p.key_lo = lo;
			p.key_hi = hi;
			p.keys_open = open;
			ck_report(c, &p);
		}
		s->plen--;
		return -1;
	}
	s->plen--;
	return 0;
}

void ck_summarise(struct ck *c, enum tm_tree tree, const uint32_t *roots, uint32_t nr)
{
	struct sum s = { .tree = tree, .path = c->sub_path };

	for (uint32_t i = 0; i < nr && !c->err; i++) {
		struct croot *r = &c->roots[roots[i]];
		if (r->dropped || !r->node)
			continue;
		s.plen = 0;
		if (r->parent) {
			s.plen = ck_node_path(c, r->parent, s.path, TM_MAX_PATH);
		} else {
			s.path[0] = r->snap ? c->snap_block : 0;
			s.plen = 1;
		}
		if (summarise(c, &s, r->node, 0, 0, 1, 1, 0))
			r->dropped = 2;	/* unusable as a whole */
	}
}
