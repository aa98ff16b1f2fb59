/*
 * view_tree.c - btree nodes, a device's mappings as runs, the held
 * snapshot beside the live devices and mappings, and reference searches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "thinmeta/cursor.h"
#include "thinmeta/format.h"
#include "views.h"


static const char *tree_label(enum tm_tree t, uint64_t dev, char *buf, size_t n)
{
	if (t == TM_TREE_BOTTOM && dev != UINT64_MAX)
		snprintf(buf, n, "device %llu mapping tree", (unsigned long long)dev);
	else
		snprintf(buf, n, "%s", tm_tree_name(t));
	return buf;
}

/* ------------------------------------------------------------------ */
/* Btree node */

struct node_priv {
	struct tm_node n;
};

static struct tm_node *node_of(struct xp_loc *l)
{
	return &((struct node_priv *)l->priv)->n;
}

static int node_open(struct xp *x, struct xp_loc *l)
{
	struct node_priv *p = calloc(1, sizeof(*p));
	struct tm_error e;
	char warn[256] = "";

	l->buf = malloc(TM_BLOCK_SIZE);
	l->priv = p;
	if (!p || !l->buf)
		return -1;
	tm_error_clear(&e);
	if (tm_bm_read(x->bm, l->block, &tm_node_validator, l->buf, &e)) {
		xp_set_status(x, 1, "%s", e.msg);
		return -1;
	}
	tm_node_view(l->buf, l->block, &p->n);
	/*
	 * A node opened by number: find its tree.  The search reads every
	 * node but the leaves of device trees, a small part of the metadata.
	 */
	if (!l->place_known) {
		char saved[512];
		int bad = xp_status_bad(x);
		snprintf(saved, sizeof(saved), "%s", xp_status(x));
		if (xp_locate(x, l))
			xp_set_status(x, bad, "%s", saved);
	}
	/* what the node breaks, though it passed its validator */
	uint32_t want = !tm_node_is_leaf(&p->n) ? 8 : tm_tree_value_size(l->tree);
	if (want && p->n.value_size != want)
		snprintf(warn, sizeof(warn), "block %llu: value_size %u, but a %s %s holds %u",
			 (unsigned long long)l->block, p->n.value_size, tm_tree_name(l->tree),
			 tm_node_is_leaf(&p->n) ? "leaf" : "internal node", want);
	else if (tm_node_check_keys(&p->n, &e))
		snprintf(warn, sizeof(warn), "%s", e.msg);
	else if (!tm_node_is_leaf(&p->n) && !p->n.nr_entries)
		snprintf(warn, sizeof(warn), "block %llu: internal node with no entries",
			 (unsigned long long)l->block);
	/* its key range, from the parent */
	if (l->depth) {
		uint8_t buf[TM_BLOCK_SIZE];
		struct tm_node parent;
		uint32_t i = l->pidx[l->depth - 1];
		if (!tm_bm_read(x->bm, l->path[l->depth - 1], &tm_node_validator, buf, &e)) {
			tm_node_view(buf, l->path[l->depth - 1], &parent);
			if (i < parent.nr_entries) {
				l->range_known = 1;
				l->key_lo = tm_node_key(&parent, i);
				l->key_hi_open = i + 1 >= parent.nr_entries;
				l->key_hi = l->key_hi_open ? 0 : tm_node_key(&parent, i + 1);
				if (!warn[0] && p->n.nr_entries &&
				    (tm_node_key(&p->n, 0) < l->key_lo ||
				     (!l->key_hi_open &&
				      tm_node_key(&p->n, p->n.nr_entries - 1) >= l->key_hi)))
					snprintf(warn, sizeof(warn),
						 "block %llu: keys lie outside the parent's range %llu..%llu",
						 (unsigned long long)l->block,
						 (unsigned long long)l->key_lo,
						 (unsigned long long)l->key_hi);
			}
		}
	}
	if (warn[0])
		xp_set_status(x, 1, "%s", warn);
	return 0;
}

static void node_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	char t[64];
	(void)x;
	snprintf(buf, n, "node %llu  %s, %s", (unsigned long long)l->block,
		 tm_node_is_leaf(node_of(l)) ? "leaf" : "internal",
		 l->place_known ? tree_label(l->tree, l->dev, t, sizeof(t)) : "place not located");
}

static unsigned node_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			  unsigned max, unsigned width)
{
	struct tm_node *n = node_of(l);
	int64_t count = xp_meta_count(x, l->block);
	char t[64];
	(void)width;

	if (max < 3)
		return 0;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_HEAD, "block %llu  %s  entries %u/%u  value_size %u",
	       (unsigned long long)l->block, tm_node_is_leaf(n) ? "leaf" : "internal",
	       n->nr_entries, n->max_entries, n->value_size);
	if (count >= 0)
		xl_add(&lines[0], count > 1 ? XA_CHG : XA_HEAD, "  refcount %lld%s", (long long)count,
		       count > 1 ? " (shared)" : "");
	xl_clear(&lines[1]);
	if (!l->place_known) {
		xl_add(&lines[1], XA_DIM, "place: not known (L locates it in its tree)");
	} else {
		xl_add(&lines[1], XA_HEAD, "in: %s%s  path ", tree_label(l->tree, l->dev, t, sizeof(t)),
		       l->snap ? " (snapshot)" : "");
		for (unsigned i = 0; i < l->depth; i++)
			xl_add(&lines[1], XA_HEAD, "%llu[%u] > ", (unsigned long long)l->path[i],
			       l->pidx[i]);
		xl_add(&lines[1], XA_HEAD, "%llu", (unsigned long long)l->block);
		if (l->range_known) {
			if (l->key_hi_open)
				xl_add(&lines[1], XA_HEAD, "  keys %llu..", (unsigned long long)l->key_lo);
			else
				xl_add(&lines[1], XA_HEAD, "  keys %llu..%llu",
				       (unsigned long long)l->key_lo,
				       (unsigned long long)l->key_hi - 1);
		}
	}
	xl_clear(&lines[2]);
	if (!tm_node_is_leaf(n))
		xl_add(&lines[2], XA_LABEL, "%6s  %-20s %s", "entry", "key", "child node");
	else if (l->tree == TM_TREE_BOTTOM)
		xl_add(&lines[2], XA_LABEL, "%6s  %-20s %-16s %s", "entry", "virtual block",
		       "data block", "time");
	else if (l->tree == TM_TREE_TOP)
		xl_add(&lines[2], XA_LABEL, "%6s  %-20s %s", "entry", "device", "mapping tree root");
	else if (l->tree == TM_TREE_DETAILS || n->value_size == TM_VSIZE_DETAILS)
		xl_add(&lines[2], XA_LABEL, "%6s  %-8s %10s %8s %7s %7s", "entry", "device",
		       "mapped", "trans", "created", "snapped");
	else
		xl_add(&lines[2], XA_LABEL, "%6s  %-20s %s", "entry", "key", "value");
	return 3;
}

static uint64_t node_count(struct xp *x, struct xp_loc *l)
{
	(void)x;
	return node_of(l)->nr_entries;
}

static void node_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		      unsigned width)
{
	struct tm_node *n = node_of(l);
	uint32_t k = (uint32_t)i;
	uint64_t key = tm_node_key(n, k);
	const uint8_t *v = tm_node_value(n, k);
	(void)x;
	(void)width;

	xl_clear(out);
	xl_add(out, XA_DIM, "%6u  ", k);
	if (!tm_node_is_leaf(n)) {
		xl_add(out, XA_NORMAL, "%-20llu ", (unsigned long long)key);
		xl_add(out, XA_PTR, "%llu", (unsigned long long)tm_le64(v));
		return;
	}
	switch (l->tree == TM_TREE_NONE ? (n->value_size == 24 ? TM_TREE_DETAILS :
					   n->value_size == 16 ? TM_TREE_DATA_INDEX :
					   n->value_size == 4 ? TM_TREE_META_RC :
					   TM_TREE_NONE) : l->tree) {
	case TM_TREE_BOTTOM: {
		uint64_t bt = tm_le64(v);
		xl_add(out, XA_NORMAL, "%-20llu ", (unsigned long long)key);
		xl_add(out, XA_PTR, "%-16llu", (unsigned long long)tm_bt_block(bt));
		xl_add(out, XA_NORMAL, " %u", tm_bt_time(bt));
		break;
	}
	case TM_TREE_TOP:
		xl_add(out, XA_NORMAL, "%-20llu ", (unsigned long long)key);
		xl_add(out, XA_PTR, "%llu", (unsigned long long)tm_le64(v));
		break;
	case TM_TREE_DETAILS: {
		struct tm_device_details d;
		tm_details_decode(v, &d);
		xl_add(out, XA_PTR, "%-8llu", (unsigned long long)key);
		xl_add(out, XA_NORMAL, " %10llu %8llu %7u %7u", (unsigned long long)d.mapped_blocks,
		       (unsigned long long)d.transaction_id, d.creation_time, d.snapshotted_time);
		break;
	}
	case TM_TREE_DATA_INDEX: {
		struct tm_index_entry ie;
		tm_index_entry_decode(v, &ie);
		xl_add(out, XA_NORMAL, "bitmap %-13llu ", (unsigned long long)key);
		xl_add(out, XA_PTR, "block %-8llu", (unsigned long long)ie.blocknr);
		xl_add(out, XA_NORMAL, " free %u, first free >= %u", ie.nr_free,
		       ie.none_free_before);
		break;
	}
	case TM_TREE_META_RC:
	case TM_TREE_DATA_RC:
		xl_add(out, XA_PTR, "%-20llu ", (unsigned long long)key);
		xl_add(out, XA_NORMAL, "count %u", tm_le32(v));
		break;
	default: {
		uint64_t raw = n->value_size >= 8 ? tm_le64(v) : tm_le32(v);
		xl_add(out, XA_NORMAL, "%-20llu %llu (as a mapping: data %llu time %u)",
		       (unsigned long long)key, (unsigned long long)raw,
		       (unsigned long long)tm_bt_block(raw), tm_bt_time(raw));
		break;
	}
	}
}

static int node_enter(struct xp *x, struct xp_loc *l)
{
	struct tm_node *n = node_of(l);
	uint32_t k = (uint32_t)l->sel;

	if (k >= n->nr_entries)
		return -1;
	uint64_t key = tm_node_key(n, k);
	const uint8_t *v = tm_node_value(n, k);
	if (!tm_node_is_leaf(n)) {
		uint64_t path[TM_BTREE_MAX_DEPTH];
		uint32_t pidx[TM_BTREE_MAX_DEPTH];
		if (l->depth + 1 >= TM_BTREE_MAX_DEPTH) {
			xp_set_status(x, 1, "the tree is deeper than %d levels here (a cycle?)",
				      TM_BTREE_MAX_DEPTH);
			return -1;
		}
		memcpy(path, l->path, sizeof(path));
		memcpy(pidx, l->pidx, sizeof(pidx));
		path[l->depth] = l->block;
		pidx[l->depth] = k;
		return xp_open_node(x, l->snap, tm_le64(v), l->tree, l->dev, path, pidx,
				    l->depth + 1, l->place_known, -1);
	}
	switch (l->tree) {
	case TM_TREE_TOP:
		return xp_open_node(x, l->snap, tm_le64(v), TM_TREE_BOTTOM, key, NULL, NULL, 0, 1, -1);
	case TM_TREE_BOTTOM:
		return xp_open_mappings(x, l->snap, l->dev, 1, key);
	case TM_TREE_DETAILS:
		return xp_open_mappings(x, l->snap, key, 0, 0);
	case TM_TREE_DATA_INDEX:
		return xp_open_bitmap(x, 1, key, -1);
	case TM_TREE_META_RC:
		return xp_open_block(x, key);
	case TM_TREE_DATA_RC:
		return xp_open_refs(x, 1, key);
	default:
		xp_set_status(x, 1, "this leaf's tree is not known (L locates it)");
		return -1;
	}
}

static void node_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	struct tm_node *nd = node_of(l);
	uint32_t k = (uint32_t)l->sel;

	buf[0] = '\0';
	if (k >= nd->nr_entries)
		return;
	const uint8_t *v = tm_node_value(nd, k);
	if (!tm_node_is_leaf(nd)) {
		snprintf(buf, n, " child %llu holds keys from %llu; Enter opens it; ] [ siblings",
			 (unsigned long long)tm_le64(v), (unsigned long long)tm_node_key(nd, k));
	} else if (l->tree == TM_TREE_BOTTOM) {
		uint64_t bt = tm_le64(v);
		int64_t c = xp_data_count(x, tm_bt_block(bt));
		snprintf(buf, n, " vblock %llu -> data %llu (count %lld), time %u; Enter: its run, r: who maps it",
			 (unsigned long long)tm_node_key(nd, k), (unsigned long long)tm_bt_block(bt),
			 (long long)c, tm_bt_time(bt));
	} else if (l->tree == TM_TREE_TOP) {
		snprintf(buf, n, " device %llu: Enter opens its mapping tree",
			 (unsigned long long)tm_node_key(nd, k));
	} else if (l->tree == TM_TREE_DETAILS) {
		snprintf(buf, n, " device %llu: Enter lists its mappings",
			 (unsigned long long)tm_node_key(nd, k));
	} else {
		snprintf(buf, n, " Enter follows the entry");
	}
}

const struct xp_view_ops xp_node_ops = {
	.name = "node", .open = node_open, .title = node_title, .head = node_head,
	.count = node_count, .line = node_line, .enter = node_enter, .info = node_info,
};

int xp_open_node(struct xp *x, int snap, uint64_t block, enum tm_tree tree, uint64_t dev,
		 const uint64_t *path, const uint32_t *pidx, unsigned depth, int place_known,
		 int64_t select)
{
	struct xp_loc *l = xp_loc_new(XP_NODE, snap);

	if (!l)
		return -1;
	if (block >= tm_bm_nr_blocks(x->bm)) {
		xp_set_status(x, 1, "block %llu is past the end of the metadata device (%llu blocks)",
			      (unsigned long long)block, (unsigned long long)tm_bm_nr_blocks(x->bm));
		free(l);
		return -1;
	}
	l->block = block;
	l->tree = tree;
	l->dev = dev;
	l->place_known = place_known && tree != TM_TREE_NONE;
	if (depth > TM_BTREE_MAX_DEPTH)
		depth = TM_BTREE_MAX_DEPTH;
	l->depth = depth;
	if (depth) {
		memcpy(l->path, path, depth * sizeof(uint64_t));
		memcpy(l->pidx, pidx, depth * sizeof(uint32_t));
	}
	if (select >= 0)
		l->sel = (uint64_t)select;
	return xp_push(x, l);
}

/* ------------------------------------------------------------------ */
/* A device's mappings, as runs, paged with a cursor */

struct map_priv {
	struct tm_cursor c;
	char err[256];
};

static int ensure_page(struct xp_loc *l, unsigned n)
{
	if (l->page_cap >= n)
		return 0;
	struct xp_run *p = realloc(l->page, n * sizeof(*p));
	if (!p)
		return -1;
	l->page = p;
	l->page_cap = n;
	return 0;
}

static int same_run(const struct xp_run *r, uint64_t key, uint64_t bt)
{
	return key == r->vbegin + r->len && tm_bt_block(bt) == r->data + r->len &&
	       tm_bt_time(bt) == r->time;
}

/* The run at the cursor; the cursor ends on the entry after it. */
static int next_run(struct tm_cursor *c, struct xp_run *run, struct tm_error *e)
{
	uint64_t bt = tm_cursor_value64(c);

	memset(run, 0, sizeof(*run));
	run->vbegin = tm_cursor_key(c);
	run->data = tm_bt_block(bt);
	run->time = tm_bt_time(bt);
	run->len = 1;
	for (;;) {
		int r = tm_cursor_next(c, e);
		if (r)
			return r;
		bt = tm_cursor_value64(c);
		if (!same_run(run, tm_cursor_key(c), bt))
			return 0;
		run->len++;
	}
}

/* Where the run ending before @key starts; -ENODATA if none. */
static int run_before(struct tm_cursor *c, uint64_t key, uint64_t *start, struct tm_error *e)
{
	int r = tm_cursor_seek(c, key, e);

	if (!r)
		r = tm_cursor_prev(c, e);
	else if (r == -ENODATA)
		r = tm_cursor_last(c, e);
	if (r)
		return r;
	uint64_t k = tm_cursor_key(c), bt = tm_cursor_value64(c);
	for (;;) {
		if (tm_cursor_prev(c, e))
			break;
		uint64_t k2 = tm_cursor_key(c), bt2 = tm_cursor_value64(c);
		if (k2 + 1 != k || tm_bt_block(bt2) + 1 != tm_bt_block(bt) ||
		    tm_bt_time(bt2) != tm_bt_time(bt))
			break;
		k = k2;
		bt = bt2;
	}
	*start = k;
	return 0;
}

static void add_bad_row(struct xp_loc *l, char *err, size_t errsz, const struct tm_error *e)
{
	struct xp_run *run = &l->page[l->page_n++];

	memset(run, 0, sizeof(*run));
	run->bad = 1;
	run->bad_block = e->block;
	snprintf(err, errsz, "%s", e->msg);
}

static void map_fill(struct xp *x, struct xp_loc *l, unsigned rows)
{
	struct map_priv *p = l->priv;
	struct tm_error e;
	(void)x;

	/* fewer rows than before (a resize): keep the selection on screen */
	if (l->sel < l->page_n && l->sel >= rows && !l->page[l->sel - rows + 1].bad) {
		l->page_key = l->page[l->sel - rows + 1].vbegin;
		l->sel = rows - 1;
	}
	l->page_n = 0;
	l->page_end = 0;
	l->page_valid = 1;
	if (ensure_page(l, rows + 1))
		return;
	tm_error_clear(&e);
	int r = tm_cursor_seek(&p->c, l->page_key, &e);
	while (l->page_n < rows + 1) {
		if (r == -ENODATA) {
			l->page_end = 1;
			break;
		}
		if (r) {
			add_bad_row(l, p->err, sizeof(p->err), &e);
			l->page_end = 1;
			break;
		}
		r = next_run(&p->c, &l->page[l->page_n++], &e);
	}
	if (l->sel >= l->page_n)
		l->sel = l->page_n ? l->page_n - 1 : 0;
}

static int map_open(struct xp *x, struct xp_loc *l)
{
	const struct tm_device *d = xp_find_device(x, l->snap, l->dev);
	struct map_priv *p = calloc(1, sizeof(*p));

	l->priv = p;
	if (!p)
		return -1;
	if (!d) {
		struct xp_viewset *v = xp_vs(x, l->snap);
		if (!v->devs_ok)
			xp_set_status(x, 1, "%s", v->devs_err.msg);
		else
			xp_set_status(x, 1, "no device %llu in the %s", (unsigned long long)l->dev,
				      l->snap ? "held snapshot" : "live metadata");
		return -1;
	}
	l->block = d->mapping_root;
	tm_cursor_init(&p->c, x->bm, d->mapping_root, TM_VSIZE_U64);
	return 0;
}

static void map_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, "device %llu mappings", (unsigned long long)l->dev);
}

static unsigned map_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			 unsigned max, unsigned width)
{
	const struct tm_device *d = xp_find_device(x, l->snap, l->dev);
	(void)width;

	if (max < 2 || !d)
		return 0;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_HEAD, "device %llu: %llu mapped blocks (details), tree root %llu, data block %u sectors",
	       (unsigned long long)l->dev, (unsigned long long)d->details.mapped_blocks,
	       (unsigned long long)d->mapping_root, xp_vs(x, l->snap)->view.sb.data_block_size);
	xl_clear(&lines[1]);
	xl_add(&lines[1], XA_LABEL, "%-27s    %-27s %6s %8s", "  virtual blocks", "data blocks",
	       "time", "length");
	return 2;
}

static uint64_t map_count(struct xp *x, struct xp_loc *l)
{
	(void)x;
	return l->page_n;
}

static void range(char *buf, size_t n, uint64_t begin, uint64_t len)
{
	if (len == 1)
		snprintf(buf, n, "%llu", (unsigned long long)begin);
	else
		snprintf(buf, n, "%llu..%llu", (unsigned long long)begin,
			 (unsigned long long)(begin + len - 1));
}

static void map_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		     unsigned width)
{
	struct map_priv *p = l->priv;
	const struct xp_run *run = &l->page[i];
	char v[48], d[48];
	(void)x;
	(void)width;

	xl_clear(out);
	if (run->bad) {
		xl_add(out, XA_BAD, "  !! %s (Enter opens block %llu)", p->err,
		       (unsigned long long)run->bad_block);
		return;
	}
	range(v, sizeof(v), run->vbegin, run->len);
	range(d, sizeof(d), run->data, run->len);
	xl_add(out, XA_NORMAL, "  %-27s -> ", v);
	xl_add(out, XA_PTR, "%-27s", d);
	xl_add(out, XA_NORMAL, " %6u %8llu", run->time, (unsigned long long)run->len);
}

static int map_move(struct xp *x, struct xp_loc *l, enum xp_cmd c, unsigned rows)
{
	struct map_priv *p = l->priv;
	struct tm_error e;
	uint64_t start;

	tm_error_clear(&e);
	if (!l->page_valid)
		map_fill(x, l, rows);
	switch ((int)c) {
	case XC_DOWN:
		if (l->sel + 1 < l->page_n && l->sel + 1 < rows)
			l->sel++;
		else if (l->page_n > rows && !l->page[1].bad) {
			l->page_key = l->page[1].vbegin;
			map_fill(x, l, rows);
			if (l->sel + 1 < l->page_n && l->sel + 1 < rows)
				l->sel++;
		}
		break;
	case XC_UP:
		if (l->sel)
			l->sel--;
		else if (!run_before(&p->c, l->page_key, &start, &e)) {
			l->page_key = start;
			map_fill(x, l, rows);
		}
		break;
	case XC_PGDN:
		if (l->page_n > rows && !l->page[rows].bad) {
			l->page_key = l->page[rows].vbegin;
			map_fill(x, l, rows);
		} else {
			l->sel = l->page_n ? l->page_n - 1 : 0;
		}
		break;
	case XC_PGUP: {
		unsigned moved = 0;
		while (moved < rows && !run_before(&p->c, l->page_key, &start, &e)) {
			l->page_key = start;
			moved++;
		}
		if (!moved)
			l->sel = 0;
		map_fill(x, l, rows);
		break;
	}
	case XC_HOME:
		l->page_key = 0;
		l->sel = 0;
		map_fill(x, l, rows);
		break;
	case XC_END: {
		int r = tm_cursor_last(&p->c, &e);
		if (r)
			break;
		uint64_t last = tm_cursor_key(&p->c);
		if (last == UINT64_MAX || run_before(&p->c, last + 1, &start, &e))
			break;
		unsigned moved = 0;
		l->page_key = start;
		while (moved + 1 < rows && !run_before(&p->c, l->page_key, &start, &e)) {
			l->page_key = start;
			moved++;
		}
		map_fill(x, l, rows);
		l->sel = moved < l->page_n ? moved : 0;
		break;
	}
	default:
		break;
	}
	if (e.err && e.err != -ENODATA)
		xp_set_status(x, 1, "%s", e.msg);
	return 0;
}

static int map_enter(struct xp *x, struct xp_loc *l)
{
	struct map_priv *p = l->priv;
	struct tm_error e;

	if (l->sel >= l->page_n)
		return -1;
	const struct xp_run *run = &l->page[l->sel];
	if (run->bad) {
		if (run->bad_block == TM_NO_BLOCK || run->bad_block >= tm_bm_nr_blocks(x->bm))
			return -1;
		return xp_open_node(x, l->snap, run->bad_block, TM_TREE_BOTTOM, l->dev, NULL,
				    NULL, 0, 0, -1);
	}
	tm_error_clear(&e);
	if (tm_cursor_seek(&p->c, run->vbegin, &e)) {
		xp_set_status(x, 1, "%s", e.msg);
		return -1;
	}
	/* the cursor's levels are the path from the root to the leaf */
	uint64_t path[TM_BTREE_MAX_DEPTH];
	uint32_t pidx[TM_BTREE_MAX_DEPTH];
	unsigned depth = p->c.depth - 1;
	for (unsigned i = 0; i < depth; i++) {
		path[i] = p->c.level[i].block;
		pidx[i] = p->c.level[i].index;
	}
	l->page_valid = 0;
	return xp_open_node(x, l->snap, tm_cursor_leaf(&p->c), TM_TREE_BOTTOM, l->dev, path,
			    pidx, depth, 1, tm_cursor_index(&p->c));
}

static void map_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	if (l->sel >= l->page_n)
		return;
	const struct xp_run *run = &l->page[l->sel];
	if (run->bad) {
		snprintf(buf, n, " the device's tree is damaged here; v VBLOCK jumps past it");
		return;
	}
	snprintf(buf, n, " %llu blocks from vblock %llu -> data %llu, time %u; Enter: its leaf, r: who maps data %llu",
		 (unsigned long long)run->len, (unsigned long long)run->vbegin,
		 (unsigned long long)run->data, run->time, (unsigned long long)run->data);
}

const struct xp_view_ops xp_mappings_ops = {
	.name = "mappings", .open = map_open, .title = map_title, .head = map_head,
	.count = map_count, .line = map_line, .enter = map_enter, .info = map_info,
	.move = map_move,
};

int xp_open_mappings(struct xp *x, int snap, uint64_t dev, int at_key, uint64_t key)
{
	struct xp_loc *l = xp_loc_new(XP_MAPPINGS, snap);
	struct tm_error e;
	uint64_t start;

	if (!l)
		return -1;
	l->dev = dev;
	if (xp_push(x, l))
		return -1;
	if (!at_key)
		return 0;
	/* the run holding @key, or the first one after it */
	struct map_priv *p = l->priv;
	tm_error_clear(&e);
	int r = tm_cursor_seek(&p->c, key, &e);
	if (!r && tm_cursor_key(&p->c) == key) {
		uint64_t bt = tm_cursor_value64(&p->c);
		l->page_key = key;
		if (key != UINT64_MAX && !run_before(&p->c, key + 1, &start, &e))
			l->page_key = start;
		xp_set_status(x, 0, "device %llu vblock %llu -> data block %llu, time %u",
			      (unsigned long long)dev, (unsigned long long)key,
			      (unsigned long long)tm_bt_block(bt), tm_bt_time(bt));
	} else if (!r) {
		l->page_key = key;
		xp_set_status(x, 0, "device %llu vblock %llu is not mapped; the next mapped one is %llu",
			      (unsigned long long)dev, (unsigned long long)key,
			      (unsigned long long)tm_cursor_key(&p->c));
	} else if (r == -ENODATA) {
		l->page_key = key;
		xp_set_status(x, 0, "device %llu has no mapping at or after vblock %llu",
			      (unsigned long long)dev, (unsigned long long)key);
	} else {
		l->page_key = key;
		xp_set_status(x, 1, "%s", e.msg);
	}
	l->sel = 0;
	l->page_valid = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The held snapshot beside the live devices */

struct diff_row {
	uint64_t dev;
	int64_t s, l;		/* index in each view's device list, -1 absent */
};

struct diff_priv {
	struct diff_row *rows;
	uint64_t n;
	int failed;
	char err[300];
};

static void diff_free(struct xp_loc *l)
{
	struct diff_priv *p = l->priv;
	if (p)
		free(p->rows);
}

static int diff_open(struct xp *x, struct xp_loc *l)
{
	struct diff_priv *p = calloc(1, sizeof(*p));
	struct xp_viewset *s = xp_vs(x, 1), *v = xp_vs(x, 0);

	l->priv = p;
	if (!p)
		return -1;
	if (xp_load_devices(x, 1) || xp_load_devices(x, 0)) {
		p->failed = 1;
		snprintf(p->err, sizeof(p->err), "%s: %s", s->devs_ok ? "live" : "held snapshot",
			 s->devs_ok ? v->devs_err.msg : s->devs_err.msg);
		return 0;
	}
	p->rows = calloc(s->nr_devs + v->nr_devs + 1, sizeof(*p->rows));
	if (!p->rows)
		return -1;
	uint64_t i = 0, j = 0;
	while (i < s->nr_devs || j < v->nr_devs) {
		struct diff_row *r = &p->rows[p->n++];
		if (j >= v->nr_devs || (i < s->nr_devs && s->devs[i].dev_id < v->devs[j].dev_id)) {
			*r = (struct diff_row){ s->devs[i].dev_id, (int64_t)i, -1 };
			i++;
		} else if (i >= s->nr_devs || v->devs[j].dev_id < s->devs[i].dev_id) {
			*r = (struct diff_row){ v->devs[j].dev_id, -1, (int64_t)j };
			j++;
		} else {
			*r = (struct diff_row){ s->devs[i].dev_id, (int64_t)i, (int64_t)j };
			i++;
			j++;
		}
	}
	return 0;
}

static void diff_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)l;
	snprintf(buf, n, "snapshot vs live  held snapshot @%llu beside the live metadata",
		 (unsigned long long)x->vs[1].view.sb_block);
}

static unsigned diff_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			  unsigned max, unsigned width)
{
	const struct tm_superblock *s = &x->vs[1].view.sb, *v = &x->vs[0].view.sb;
	unsigned half = width > 20 ? (width - 20) / 2 : 30;
	(void)l;

	if (max < 2)
		return 0;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_HEAD, "snapshot: transaction %llu, time %u", (unsigned long long)s->trans_id,
	       s->time);
	xl_pad(&lines[0], 10 + half);
	xl_add(&lines[0], XA_HEAD, "live: transaction %llu, time %u", (unsigned long long)v->trans_id,
	       v->time);
	xl_clear(&lines[1]);
	xl_add(&lines[1], XA_LABEL, "%8s  %s", "dev", "held snapshot");
	xl_pad(&lines[1], 10 + half);
	xl_add(&lines[1], XA_LABEL, "live");
	return 2;
}

static uint64_t diff_count(struct xp *x, struct xp_loc *l)
{
	struct diff_priv *p = l->priv;
	(void)x;
	return p->failed ? 1 : p->n;
}

static void dev_summary(char *buf, size_t n, const struct tm_device *d)
{
	snprintf(buf, n, "%llu mapped, root %llu, snap %u", (unsigned long long)d->details.mapped_blocks,
		 (unsigned long long)d->mapping_root, d->details.snapshotted_time);
}

static void diff_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		      unsigned width)
{
	struct diff_priv *p = l->priv;
	unsigned half = width > 20 ? (width - 20) / 2 : 30;
	char a[128], b[128];

	xl_clear(out);
	if (p->failed) {
		xl_add(out, XA_BAD, "cannot compare: %s", p->err);
		return;
	}
	const struct diff_row *r = &p->rows[i];
	const struct tm_device *sd = r->s >= 0 ? &x->vs[1].devs[r->s] : NULL;
	const struct tm_device *ld = r->l >= 0 ? &x->vs[0].devs[r->l] : NULL;
	int same = sd && ld && sd->mapping_root == ld->mapping_root &&
		   !memcmp(&sd->details, &ld->details, sizeof(sd->details));
	enum xp_attr at = !sd ? XA_ADD : !ld ? XA_DEL : same ? XA_NORMAL : XA_CHG;

	if (sd)
		dev_summary(a, sizeof(a), sd);
	else
		snprintf(a, sizeof(a), "-");
	if (ld)
		dev_summary(b, sizeof(b), ld);
	else
		snprintf(b, sizeof(b), "-");
	xl_add(out, XA_PTR, "%8llu", (unsigned long long)r->dev);
	xl_add(out, at, "  %.*s", (int)half - 1, a);
	xl_pad(out, 10 + half);
	xl_add(out, at, "%.*s", (int)half - 1, b);
	xl_pad(out, 10 + 2 * half);
	xl_add(out, at, " %s", !sd ? "new" : !ld ? "gone" : same ? "same" : "changed");
}

static int diff_enter(struct xp *x, struct xp_loc *l)
{
	struct diff_priv *p = l->priv;

	if (p->failed || l->sel >= p->n)
		return -1;
	const struct diff_row *r = &p->rows[l->sel];
	if (r->s < 0)
		return xp_open_mappings(x, 0, r->dev, 0, 0);
	if (r->l < 0)
		return xp_open_mappings(x, 1, r->dev, 0, 0);
	struct xp_loc *m = xp_loc_new(XP_MAPDIFF, 1);
	if (!m)
		return -1;
	m->dev = r->dev;
	return xp_push(x, m);
}

static void diff_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	(void)l;
	snprintf(buf, n, " Enter: the device's mappings that differ (or its mappings, if only in one)");
}

const struct xp_view_ops xp_diff_ops = {
	.name = "snapshot vs live", .open = diff_open, .title = diff_title, .head = diff_head,
	.count = diff_count, .line = diff_line, .enter = diff_enter, .info = diff_info,
	.free = diff_free,
};

/* ------------------------------------------------------------------ */
/* One device: the mappings that differ between snapshot and live */

struct side {
	struct tm_cursor c;
	int at;			/* positioned */
};

struct mapdiff_priv {
	struct side s, v;	/* held snapshot, live */
	int have_pending;
	uint64_t pk;		/* a difference read but not yet in a run */
	int ps, pl;
	uint64_t psv, plv;
	char err[256];
	struct tm_error e;
};

static int mapdiff_open(struct xp *x, struct xp_loc *l)
{
	struct mapdiff_priv *p = calloc(1, sizeof(*p));
	const struct tm_device *sd = xp_find_device(x, 1, l->dev);
	const struct tm_device *ld = xp_find_device(x, 0, l->dev);

	l->priv = p;
	if (!p)
		return -1;
	if (!sd || !ld) {
		xp_set_status(x, 1, "device %llu is not in both the snapshot and the live metadata",
			      (unsigned long long)l->dev);
		return -1;
	}
	tm_cursor_init(&p->s.c, x->bm, sd->mapping_root, TM_VSIZE_U64);
	tm_cursor_init(&p->v.c, x->bm, ld->mapping_root, TM_VSIZE_U64);
	return 0;
}

static int side_step(struct side *s, struct tm_error *e)
{
	int r = tm_cursor_next(&s->c, e);
	s->at = !r;
	return r == -ENODATA ? 0 : r;
}

/* The next key where the two trees differ; 1 found, 0 none, < 0 error. */
static int next_difference(struct mapdiff_priv *p, uint64_t *k, int *ins, uint64_t *sv,
			   int *inl, uint64_t *lv)
{
	int r;

	for (;;) {
		if (!p->s.at && !p->v.at)
			return 0;
		if (p->s.at && p->v.at && tm_cursor_leaf(&p->s.c) == tm_cursor_leaf(&p->v.c) &&
		    tm_cursor_index(&p->s.c) == tm_cursor_index(&p->v.c)) {
			/* one leaf reached from both trees: nothing differs in it */
			r = tm_cursor_next_leaf(&p->s.c, &p->e);
			p->s.at = !r;
			if (r && r != -ENODATA)
				return r;
			r = tm_cursor_next_leaf(&p->v.c, &p->e);
			p->v.at = !r;
			if (r && r != -ENODATA)
				return r;
			continue;
		}
		uint64_t ks = p->s.at ? tm_cursor_key(&p->s.c) : UINT64_MAX;
		uint64_t kl = p->v.at ? tm_cursor_key(&p->v.c) : UINT64_MAX;
		*k = ks < kl ? ks : kl;
		*ins = p->s.at && ks == *k;
		*inl = p->v.at && kl == *k;
		*sv = *ins ? tm_cursor_value64(&p->s.c) : 0;
		*lv = *inl ? tm_cursor_value64(&p->v.c) : 0;
		if (*ins && (r = side_step(&p->s, &p->e)))
			return r;
		if (*inl && (r = side_step(&p->v, &p->e)))
			return r;
		if (*ins && *inl && *sv == *lv)
			continue;
		return 1;
	}
}

static int extends(const struct xp_run *run, uint64_t k, int ins, uint64_t sv, int inl,
		   uint64_t lv)
{
	if (k != run->vbegin + run->len || ins != run->in_snap || inl != run->in_live)
		return 0;
	if (ins && (tm_bt_block(sv) != run->sdata + run->len || tm_bt_time(sv) != run->stime))
		return 0;
	if (inl && (tm_bt_block(lv) != run->data + run->len || tm_bt_time(lv) != run->time))
		return 0;
	return 1;
}

static void start_run(struct xp_run *run, uint64_t k, int ins, uint64_t sv, int inl,
		      uint64_t lv)
{
	memset(run, 0, sizeof(*run));
	run->vbegin = k;
	run->len = 1;
	run->in_snap = ins;
	run->in_live = inl;
	run->sdata = tm_bt_block(sv);
	run->stime = tm_bt_time(sv);
	run->data = tm_bt_block(lv);
	run->time = tm_bt_time(lv);
}

static int push_history(struct xp_loc *l);

static void mapdiff_fill(struct xp *x, struct xp_loc *l, unsigned rows)
{
	struct mapdiff_priv *p = l->priv;
	uint64_t k, sv, lv;
	int ins, inl, r;
	(void)x;

	if (l->sel < l->page_n && l->sel >= rows && !l->page[l->sel - rows + 1].bad &&
	    !push_history(l)) {
		l->page_key = l->page[l->sel - rows + 1].vbegin;
		l->sel = rows - 1;
	}
	l->page_n = 0;
	l->page_end = 0;
	l->page_valid = 1;
	if (ensure_page(l, rows + 1))
		return;
	tm_error_clear(&p->e);
	r = tm_cursor_seek(&p->s.c, l->page_key, &p->e);
	p->s.at = !r;
	if (r && r != -ENODATA)
		goto bad;
	r = tm_cursor_seek(&p->v.c, l->page_key, &p->e);
	p->v.at = !r;
	if (r && r != -ENODATA)
		goto bad;
	p->have_pending = 0;
	while (l->page_n < rows + 1) {
		struct xp_run *run = &l->page[l->page_n];
		if (p->have_pending) {
			start_run(run, p->pk, p->ps, p->psv, p->pl, p->plv);
			p->have_pending = 0;
		} else {
			r = next_difference(p, &k, &ins, &sv, &inl, &lv);
			if (r < 0)
				goto bad;
			if (!r) {
				l->page_end = 1;
				break;
			}
			start_run(run, k, ins, sv, inl, lv);
		}
		l->page_n++;
		for (;;) {
			r = next_difference(p, &k, &ins, &sv, &inl, &lv);
			if (r < 0)
				goto bad;
			if (!r)
				break;
			if (!extends(run, k, ins, sv, inl, lv)) {
				p->have_pending = 1;
				p->pk = k;
				p->ps = ins;
				p->psv = sv;
				p->pl = inl;
				p->plv = lv;
				break;
			}
			run->len++;
		}
		if (!p->have_pending) {
			l->page_end = 1;
			break;
		}
	}
	goto done;
bad:
	if (l->page_n < rows + 1)
		add_bad_row(l, p->err, sizeof(p->err), &p->e);
	l->page_end = 1;
done:
	if (l->sel >= l->page_n)
		l->sel = l->page_n ? l->page_n - 1 : 0;
}

static int push_history(struct xp_loc *l)
{
	if (l->hist_n == l->hist_cap) {
		size_t ncap = l->hist_cap ? l->hist_cap * 2 : 16;
		uint64_t *h = realloc(l->history, ncap * sizeof(*h));
		if (!h)
			return -1;
		l->history = h;
		l->hist_cap = ncap;
	}
	l->history[l->hist_n++] = l->page_key;
	return 0;
}

static int mapdiff_move(struct xp *x, struct xp_loc *l, enum xp_cmd c, unsigned rows)
{
	if (!l->page_valid)
		mapdiff_fill(x, l, rows);
	switch ((int)c) {
	case XC_DOWN:
		if (l->sel + 1 < l->page_n && l->sel + 1 < rows)
			l->sel++;
		else if (l->page_n > rows && !l->page[1].bad && !push_history(l)) {
			l->page_key = l->page[1].vbegin;
			mapdiff_fill(x, l, rows);
		}
		break;
	case XC_PGDN:
		if (l->page_n > rows && !l->page[rows].bad && !push_history(l)) {
			l->page_key = l->page[rows].vbegin;
			mapdiff_fill(x, l, rows);
		} else {
			l->sel = l->page_n ? l->page_n - 1 : 0;
		}
		break;
	case XC_UP:
	case XC_PGUP:
		if (c == XC_UP && l->sel) {
			l->sel--;
		} else if (l->hist_n) {
			l->page_key = l->history[--l->hist_n];
			mapdiff_fill(x, l, rows);
		} else {
			l->sel = 0;
		}
		break;
	case XC_HOME:
		l->hist_n = 0;
		l->page_key = 0;
		l->sel = 0;
		mapdiff_fill(x, l, rows);
		break;
	case XC_END:
		/* forward a page at a time: differences are few, or this is slow */
		for (unsigned guard = 0; !l->page_end && guard < 100000; guard++) {
			if (l->page_n <= rows || l->page[rows].bad || push_history(l))
				break;
			l->page_key = l->page[rows].vbegin;
			mapdiff_fill(x, l, rows);
		}
		l->sel = l->page_n ? l->page_n - 1 : 0;
		break;
	default:
		break;
	}
	return 0;
}

static void mapdiff_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, "device %llu changes  mappings that differ, held snapshot vs live",
		 (unsigned long long)l->dev);
}

static unsigned mapdiff_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			     unsigned max, unsigned width)
{
	unsigned half = width > 28 ? (width - 28) / 2 : 26;
	(void)x;
	(void)l;
	if (max < 1)
		return 0;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_LABEL, "  %-24s  %s", "virtual blocks", "held snapshot");
	xl_pad(&lines[0], 28 + half);
	xl_add(&lines[0], XA_LABEL, "live");
	return 1;
}

static void side_text(char *buf, size_t n, int in, uint64_t data, uint32_t time, uint64_t len)
{
	char r[48];

	if (!in) {
		snprintf(buf, n, "-");
		return;
	}
	range(r, sizeof(r), data, len);
	snprintf(buf, n, "%s t%u", r, time);
}

static void mapdiff_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
			 unsigned width)
{
	struct mapdiff_priv *p = l->priv;
	const struct xp_run *run = &l->page[i];
	unsigned half = width > 28 ? (width - 28) / 2 : 26;
	char v[48], a[64], b[64];
	(void)x;

	xl_clear(out);
	if (run->bad) {
		xl_add(out, XA_BAD, "  !! %s", p->err);
		return;
	}
	enum xp_attr at = !run->in_snap ? XA_ADD : !run->in_live ? XA_DEL : XA_CHG;
	range(v, sizeof(v), run->vbegin, run->len);
	side_text(a, sizeof(a), run->in_snap, run->sdata, run->stime, run->len);
	side_text(b, sizeof(b), run->in_live, run->data, run->time, run->len);
	xl_add(out, XA_NORMAL, "  %-24s  ", v);
	xl_add(out, at, "%.*s", (int)half - 1, a);
	xl_pad(out, 28 + half);
	xl_add(out, at, "%.*s", (int)half - 1, b);
}

static int mapdiff_enter(struct xp *x, struct xp_loc *l)
{
	if (l->sel >= l->page_n || l->page[l->sel].bad)
		return -1;
	const struct xp_run *run = &l->page[l->sel];
	return xp_open_mappings(x, run->in_live ? 0 : 1, l->dev, 1, run->vbegin);
}

static void mapdiff_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	if (l->sel >= l->page_n)
		snprintf(buf, n, " no differences%s", l->hist_n ? " further on" : "");
	else
		snprintf(buf, n, " %s; Enter: the mappings there (m switches view)",
			 !l->page[l->sel].in_snap ? "mapped only in the live metadata" :
			 !l->page[l->sel].in_live ? "mapped only in the held snapshot" :
			 "remapped since the snapshot");
}

const struct xp_view_ops xp_mapdiff_ops = {
	.name = "changes", .open = mapdiff_open, .title = mapdiff_title, .head = mapdiff_head,
	.count = map_count, .line = mapdiff_line, .enter = mapdiff_enter, .info = mapdiff_info,
	.move = mapdiff_move,
};

/* ------------------------------------------------------------------ */
/* Who references a block */

#define REFS_MAX 10000

static int collect_ref(void *ctx, const struct tm_ref *r)
{
	struct xp_ref_list *rl = ctx;

	if (rl->n == REFS_MAX) {
		rl->truncated = 1;
		return 1;
	}
	if (rl->n == rl->cap) {
		size_t ncap = rl->cap ? rl->cap * 2 : 32;
		struct tm_ref *nr = realloc(rl->refs, ncap * sizeof(*nr));
		if (nr)
			rl->refs = nr;
		uint64_t (*np)[TM_BTREE_MAX_DEPTH] = realloc(rl->paths, ncap * sizeof(*np));
		if (np)
			rl->paths = np;
		uint32_t (*ni)[TM_BTREE_MAX_DEPTH] = realloc(rl->pidx, ncap * sizeof(*ni));
		if (ni)
			rl->pidx = ni;
		if (!nr || !np || !ni)
			return -ENOMEM;
		rl->cap = ncap;
	}
	rl->refs[rl->n] = *r;
	memset(rl->paths[rl->n], 0, sizeof(rl->paths[0]));
	memset(rl->pidx[rl->n], 0, sizeof(rl->pidx[0]));
	memcpy(rl->paths[rl->n], r->path, r->path_len * sizeof(uint64_t));
	memcpy(rl->pidx[rl->n], r->path_index, r->path_len * sizeof(uint32_t));
	rl->refs[rl->n].path = NULL;
	rl->refs[rl->n].path_index = NULL;
	rl->n++;
	return 0;
}

static void refs_free(struct xp_loc *l)
{
	if (!l->refs)
		return;
	free(l->refs->refs);
	free(l->refs->paths);
	free(l->refs->pidx);
	free(l->refs);
	l->refs = NULL;
}

static int refs_open(struct xp *x, struct xp_loc *l)
{
	int r;

	l->refs = calloc(1, sizeof(*l->refs));
	if (!l->refs)
		return -1;
	if (l->refs_data)
		r = tm_find_data_refs(x->bm, l->refs_target, collect_ref, l->refs, &l->refs->stats);
	else
		r = tm_find_meta_refs(x->bm, l->refs_target, collect_ref, l->refs, &l->refs->stats);
	if (r < 0) {
		xp_set_status(x, 1, "reference search: %s", strerror(-r));
		return -1;
	}
	if (l->refs->stats.unreadable)
		xp_set_status(x, 1, "%llu nodes could not be read; the first: %s",
			      (unsigned long long)l->refs->stats.unreadable,
			      l->refs->stats.first_error.msg);
	return 0;
}

static void refs_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, "refs %s %llu  who references %s block %llu",
		 l->refs_data ? "data" : "block", (unsigned long long)l->refs_target,
		 l->refs_data ? "data" : "metadata", (unsigned long long)l->refs_target);
}

static unsigned refs_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			  unsigned max, unsigned width)
{
	int64_t c = l->refs_data ? xp_data_count(x, l->refs_target) :
				   xp_meta_count(x, l->refs_target);
	(void)width;

	if (max < 1)
		return 0;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_HEAD, "%zu %s%s to %s block %llu", l->refs->n,
	       l->refs_data ? "mappings" : "references", l->refs->truncated ? " (at least)" : "",
	       l->refs_data ? "data" : "metadata", (unsigned long long)l->refs_target);
	if (c >= 0)
		xl_add(&lines[0], XA_HEAD, "; its space map count is %lld", (long long)c);
	if (l->refs->stats.unreadable)
		xl_add(&lines[0], XA_BAD, "; %llu nodes unreadable",
		       (unsigned long long)l->refs->stats.unreadable);
	return 1;
}

static uint64_t refs_count(struct xp *x, struct xp_loc *l)
{
	(void)x;
	return l->refs->n ? l->refs->n : 1;
}

static void refs_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		      unsigned width)
{
	char t[64];
	(void)x;
	(void)width;

	xl_clear(out);
	if (!l->refs->n) {
		xl_add(out, XA_DIM, "  nothing references it%s",
		       l->refs_data ? "" : " (a free block, or leaked)");
		return;
	}
	const struct tm_ref *r = &l->refs->refs[i];
	const char *where = r->snapshot ? " [snapshot]" : "";
	switch (r->kind) {
	case TM_REFBY_SUPERBLOCK: {
		struct tm_field_loc fl;
		uint8_t zero[TM_BLOCK_SIZE] = { 0 };
		tm_block_field_at(TM_LAYOUT_SUPERBLOCK, zero, NULL, r->slot, &fl);
		xl_add(out, XA_PTR, "  superblock %llu", (unsigned long long)r->holder);
		xl_add(out, XA_NORMAL, " field %s (@%u)%s", fl.name, r->slot, where);
		break;
	}
	case TM_REFBY_CHILD:
		xl_add(out, XA_PTR, "  node %llu", (unsigned long long)r->holder);
		xl_add(out, XA_NORMAL, " entry %u key %llu, %s%s", r->slot,
		       (unsigned long long)r->key, tree_label(r->tree, r->dev_id, t, sizeof(t)),
		       where);
		break;
	case TM_REFBY_DEVICE_ROOT:
		xl_add(out, XA_PTR, "  node %llu", (unsigned long long)r->holder);
		xl_add(out, XA_NORMAL, " entry %u: the root of device %llu's mapping tree%s",
		       r->slot, (unsigned long long)r->key, where);
		break;
	case TM_REFBY_INDEX_BLOCK:
		xl_add(out, XA_PTR, "  index block %llu", (unsigned long long)r->holder);
		xl_add(out, XA_NORMAL, " entry %u: metadata bitmap %u", r->slot, r->slot);
		break;
	case TM_REFBY_INDEX_TREE:
		xl_add(out, XA_PTR, "  node %llu", (unsigned long long)r->holder);
		xl_add(out, XA_NORMAL, " entry %u: data bitmap %llu", r->slot,
		       (unsigned long long)r->key);
		break;
	case TM_REFBY_MAPPING:
		xl_add(out, XA_PTR, "  device %-6llu vblock %-12llu", (unsigned long long)r->dev_id,
		       (unsigned long long)r->key);
		xl_add(out, XA_NORMAL, " time %-4u leaf %llu entry %u%s", r->time,
		       (unsigned long long)r->holder, r->slot, where);
		break;
	}
}

static int refs_enter(struct xp *x, struct xp_loc *l)
{
	if (!l->refs->n || l->sel >= l->refs->n)
		return -1;
	const struct tm_ref *r = &l->refs->refs[l->sel];
	const uint64_t *path = l->refs->paths[l->sel];
	const uint32_t *pidx = l->refs->pidx[l->sel];
	unsigned depth = r->path_len ? r->path_len - 1 : 0;

	switch (r->kind) {
	case TM_REFBY_SUPERBLOCK:
		if (xp_open_hex(x, r->snapshot, r->holder, TM_LAYOUT_SUPERBLOCK, NULL))
			return -1;
		((struct xp_loc *)xp_top(x))->hex_off = r->slot;
		((struct xp_loc *)xp_top(x))->sel = r->slot / 16;
		return 0;
	case TM_REFBY_INDEX_BLOCK:
		if (xp_open_hex(x, 0, r->holder, TM_LAYOUT_INDEX, NULL))
			return -1;
		((struct xp_loc *)xp_top(x))->hex_off = 16 + 16 * r->slot;
		((struct xp_loc *)xp_top(x))->sel = (16 + 16 * r->slot) / 16;
		return 0;
	case TM_REFBY_MAPPING:
		return xp_open_mappings(x, r->snapshot, r->dev_id, 1, r->key);
	default:
		return xp_open_node(x, r->snapshot, r->holder,
				    r->kind == TM_REFBY_DEVICE_ROOT ? TM_TREE_TOP : r->tree,
				    r->dev_id, path, pidx, depth, 1, r->slot);
	}
}

static void refs_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, " Enter opens the referrer%s",
		 l->refs->truncated ? "; only the first 10000 are listed" : "");
}

const struct xp_view_ops xp_refs_ops = {
	.name = "references", .open = refs_open, .title = refs_title, .head = refs_head,
	.count = refs_count, .line = refs_line, .enter = refs_enter, .info = refs_info,
	.free = refs_free,
};

int xp_open_refs(struct xp *x, int data, uint64_t target)
{
	struct xp_loc *l = xp_loc_new(XP_REFS, 0);

	if (!l)
		return -1;
	if (!data && target >= tm_bm_nr_blocks(x->bm)) {
		xp_set_status(x, 1, "block %llu is past the end of the metadata device",
			      (unsigned long long)target);
		free(l);
		return -1;
	}
	l->refs_data = data;
	l->refs_target = target;
	return xp_push(x, l);
}
