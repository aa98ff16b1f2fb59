/*
 * model.c - the explorer's session: opening the metadata, the location
 * stack, moving in lists, commands, prompts, and rendering the screen as
 * text (model.h).  The views themselves are in tui/view_*.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/btree.h"
#include "thinmeta/io.h"
#include "thinmeta/node_path.h"
#include "views.h"

#define BM_CACHE_BLOCKS 4096
#define MAX_HEAD 8

/* ------------------------------------------------------------------ */
/* Lines */

void xl_clear(struct xp_line *l)
{
	l->text[0] = '\0';
	memset(l->attr, XA_NORMAL, sizeof(l->attr));
}

unsigned xl_len(const struct xp_line *l)
{
	return (unsigned)strlen(l->text);
}

void xl_add(struct xp_line *l, enum xp_attr a, const char *fmt, ...)
{
	unsigned len = xl_len(l);
	va_list ap;

	if (len >= XP_LINE_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(l->text + len, XP_LINE_MAX + 1 - len, fmt, ap);
	va_end(ap);
	/* keep the screen printable whatever the data */
	for (unsigned i = len; l->text[i]; i++) {
		if (!isprint((unsigned char)l->text[i]))
			l->text[i] = '?';
		l->attr[i] = (uint8_t)a;
	}
}

void xl_pad(struct xp_line *l, unsigned col)
{
	unsigned len = xl_len(l);

	if (col > XP_LINE_MAX)
		col = XP_LINE_MAX;
	while (len < col)
		l->text[len++] = ' ';
	l->text[len] = '\0';
}

void xl_set_attr(struct xp_line *l, unsigned from, unsigned to, enum xp_attr a)
{
	if (to > XP_LINE_MAX)
		to = XP_LINE_MAX;
	for (unsigned i = from; i < to; i++)
		l->attr[i] = (uint8_t)a;
}

/* ------------------------------------------------------------------ */
/* Views table */

const struct xp_view_ops *xp_ops(enum xp_kind k)
{
	switch (k) {
	case XP_SUPER: return &xp_super_ops;
	case XP_DEVICES: return &xp_devices_ops;
	case XP_MAPPINGS: return &xp_mappings_ops;
	case XP_NODE: return &xp_node_ops;
	case XP_SPACEMAPS: return &xp_spacemaps_ops;
	case XP_BITMAP: return &xp_bitmap_ops;
	case XP_HEX: return &xp_hex_ops;
	case XP_REFS: return &xp_refs_ops;
	case XP_DIFF: return &xp_diff_ops;
	case XP_MAPDIFF: return &xp_mapdiff_ops;
	default: return &xp_help_ops;
	}
}

const char *xp_kind_name(enum xp_kind k)
{
	return xp_ops(k)->name;
}

/* ------------------------------------------------------------------ */
/* Session */

struct xp_viewset *xp_vs(struct xp *x, int snap)
{
	return &x->vs[snap ? 1 : 0];
}

void xp_set_status(struct xp *x, int bad, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->status, sizeof(x->status), fmt, ap);
	va_end(ap);
	x->status_bad = bad;
}

static void load_views(struct xp *x)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct xp_viewset *live = &x->vs[0], *snap = &x->vs[1];
	struct tm_error e;

	live->present = 1;
	tm_error_clear(&live->err);
	if (!tm_view_live(x->bm, &live->view, &live->err)) {
		live->ok = 1;
	} else if (!tm_bm_read(x->bm, 0, NULL, buf, &e)) {
		tm_sb_decode(buf, &live->view.sb);	/* damaged: still show it */
	}
	uint64_t held = live->view.sb.held_root;
	if (held && held < tm_bm_nr_blocks(x->bm)) {
		snap->present = 1;
		tm_error_clear(&snap->err);
		if (!tm_view_snapshot(x->bm, 0, &snap->view, &snap->err)) {
			snap->ok = 1;
		} else {
			memset(&snap->view, 0, sizeof(snap->view));
			if (!tm_bm_read(x->bm, held, NULL, buf, &e))
				tm_sb_decode(buf, &snap->view.sb);
			snap->view.sb_block = held;
			snap->view.is_snapshot = 1;
		}
	}
}

int xp_open_dev(struct tm_dev *dev, const char *name, int start_snapshot,
		struct xp **out, struct tm_error *e)
{
	struct xp *x = calloc(1, sizeof(*x));
	int r;

	*out = NULL;
	if (!x) {
		tm_dev_close(dev);
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	}
	x->dev = dev;
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->rows = XP_MIN_ROWS;
	x->cols = XP_MIN_COLS;
	r = tm_bm_create(dev, BM_CACHE_BLOCKS, &x->bm);
	if (r) {
		xp_close(x);
		return tm_fail(e, r, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	}
	if (tm_bm_nr_blocks(x->bm) < 1) {
		xp_close(x);
		return tm_fail(e, -EINVAL, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "%s: smaller than one metadata block", name);
	}
	load_views(x);

	int snap = start_snapshot && x->vs[1].present;
	xp_push(x, xp_loc_new(XP_SUPER, snap));
	if (start_snapshot && !x->vs[1].present)
		xp_set_status(x, 1, "no metadata snapshot is held (the superblock's held_root is 0); showing the live metadata");
	else if (!x->vs[snap].ok)
		xp_open_hex(x, snap, snap ? x->vs[1].view.sb_block : 0, TM_LAYOUT_SUPERBLOCK,
			    &x->vs[snap].err);
	else if (!x->vs[0].ok)
		xp_set_status(x, 1, "live superblock: %s", x->vs[0].err.msg);
	else if (x->vs[1].present && !x->vs[1].ok)
		xp_set_status(x, 1, "held metadata snapshot: %s", x->vs[1].err.msg);
	*out = x;
	return 0;
}

int xp_open(const char *path, int start_snapshot, struct xp **out, struct tm_error *e)
{
	struct tm_dev *dev;
	/* the held snapshot may be read from a live pool: no O_EXCL then */
	int r = tm_dev_open_file(path, start_snapshot ? 0 : TM_DEV_EXCL, &dev);

	*out = NULL;
	if (r)
		return tm_fail(e, r, TM_RULE_IO, TM_NO_BLOCK, "%s: %s", path, strerror(-r));
	return xp_open_dev(dev, path, start_snapshot, out, e);
}

static void loc_free(struct xp_loc *l)
{
	if (!l)
		return;
	if (xp_ops(l->kind)->free)
		xp_ops(l->kind)->free(l);
	free(l->page);
	free(l->history);
	free(l->buf);
	free(l->priv);
	free(l);
}

void xp_close(struct xp *x)
{
	if (!x)
		return;
	for (unsigned i = 0; i < x->depth; i++)
		loc_free(x->stack[i]);
	for (int s = 0; s < 2; s++) {
		free(x->vs[s].devs);
		free(x->vs[s].counts);
	}
	if (x->sm_loaded) {
		tm_sm_disk_close(&x->msm);
		tm_sm_disk_close(&x->dsm);
	}
	tm_bm_destroy(x->bm);
	tm_dev_close(x->dev);
	free(x);
}

struct xp_loc *xp_loc_new(enum xp_kind kind, int snap)
{
	struct xp_loc *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->kind = kind;
	l->snap = snap;
	l->entry_mark = -1;
	return l;
}

static void push_raw(struct xp *x, struct xp_loc *l)
{
	if (x->depth == XP_STACK_MAX) {
		loc_free(x->stack[0]);
		memmove(x->stack, x->stack + 1, (XP_STACK_MAX - 1) * sizeof(x->stack[0]));
		x->depth--;
	}
	x->stack[x->depth++] = l;
}

int xp_push(struct xp *x, struct xp_loc *l)
{
	if (!l) {
		xp_set_status(x, 1, "out of memory");
		return -1;
	}
	const struct xp_view_ops *ops = xp_ops(l->kind);
	if (ops->open && ops->open(x, l) < 0) {
		/* the view cannot show it: its block in hex, if it has one */
		int hexable = l->kind == XP_NODE || l->kind == XP_BITMAP ||
			      (l->kind == XP_SUPER);
		uint64_t b = l->block;
		int snap = l->snap;
		enum tm_layout k = l->kind == XP_NODE ? TM_LAYOUT_NODE :
				       l->kind == XP_BITMAP ? TM_LAYOUT_BITMAP :
				       TM_LAYOUT_SUPERBLOCK;
		char saved[sizeof(x->status)];
		memcpy(saved, x->status, sizeof(saved));
		loc_free(l);
		if (hexable && b < tm_bm_nr_blocks(x->bm)) {
			struct xp_loc *h = xp_loc_new(XP_HEX, snap);
			if (h) {
				h->block = b;
				h->hex_kind = k;
				h->bad = 1;
				if (!xp_hex_ops.open(x, h)) {
					push_raw(x, h);
					memcpy(x->status, saved, sizeof(saved));
					x->status_bad = 1;
					return 0;
				}
				loc_free(h);
			}
		}
		memcpy(x->status, saved, sizeof(saved));
		x->status_bad = 1;
		return -1;
	}
	push_raw(x, l);
	return 0;
}

const struct xp_loc *xp_top(const struct xp *x)
{
	return x->depth ? x->stack[x->depth - 1] : NULL;
}

static struct xp_loc *top(struct xp *x)
{
	return x->stack[x->depth - 1];
}

unsigned xp_depth(const struct xp *x) { return x->depth; }
const char *xp_status(const struct xp *x) { return x->status; }
int xp_status_bad(const struct xp *x) { return x->status_bad; }
int xp_has_snapshot(const struct xp *x) { return x->vs[1].present; }
unsigned xp_rows(const struct xp *x) { return x->rows; }
unsigned xp_cols(const struct xp *x) { return x->cols; }

void xp_resize(struct xp *x, unsigned rows, unsigned cols)
{
	x->rows = rows < 1 ? 1 : rows;
	x->cols = cols > XP_LINE_MAX ? XP_LINE_MAX : cols < 1 ? 1 : cols;
	/* keyed pages are refilled for the new height */
	for (unsigned i = 0; i < x->depth; i++)
		x->stack[i]->page_valid = 0;
}

/* ------------------------------------------------------------------ */
/* Loading shared data */

int xp_load_devices(struct xp *x, int snap)
{
	struct xp_viewset *v = xp_vs(x, snap);

	if (v->devs_loaded)
		return v->devs_ok ? 0 : -1;
	v->devs_loaded = 1;
	tm_error_clear(&v->devs_err);
	if (!v->present) {
		tm_fail(&v->devs_err, -ENODATA, TM_RULE_NO_SNAP, TM_NO_BLOCK,
			"no metadata snapshot is held");
		return -1;
	}
	if (tm_read_devices(x->bm, &v->view, 0, &v->devs, &v->nr_devs, &v->devs_err))
		return -1;
	v->devs_ok = 1;
	return 0;
}

int xp_load_counts(struct xp *x, int snap)
{
	struct xp_viewset *v = xp_vs(x, snap);

	if (v->counts_loaded)
		return v->counts_ok ? 0 : -1;
	v->counts_loaded = 1;
	if (xp_load_devices(x, snap))
		return -1;
	v->counts = calloc(v->nr_devs ? v->nr_devs : 1, sizeof(*v->counts));
	if (!v->counts)
		return -1;
	tm_error_clear(&v->counts_err);
	if (tm_ls_count(x->bm, v->devs, v->nr_devs, x->vs[0].view.sb.data_sm.nr_blocks,
			v->counts, &v->counts_err))
		return -1;
	v->counts_ok = 1;
	return 0;
}

void xp_load_space_maps(struct xp *x)
{
	const struct tm_superblock *sb = &x->vs[0].view.sb;

	if (x->sm_loaded)
		return;
	x->sm_loaded = 1;
	tm_error_clear(&x->msm_err);
	tm_error_clear(&x->dsm_err);
	x->msm_ok = !tm_sm_disk_open(x->bm, TM_SM_METADATA, &sb->meta_sm, &x->msm, &x->msm_err);
	x->dsm_ok = !tm_sm_disk_open(x->bm, TM_SM_DATA, &sb->data_sm, &x->dsm, &x->dsm_err);
}

const struct tm_device *xp_find_device(struct xp *x, int snap, uint64_t dev)
{
	struct xp_viewset *v = xp_vs(x, snap);

	if (xp_load_devices(x, snap))
		return NULL;
	uint64_t lo = 0, hi = v->nr_devs;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (v->devs[mid].dev_id < dev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->nr_devs && v->devs[lo].dev_id == dev ? &v->devs[lo] : NULL;
}

static int64_t sm_count(struct xp *x, int data, uint64_t b)
{
	struct tm_error e;
	uint32_t c;

	xp_load_space_maps(x);
	if (data ? !x->dsm_ok : !x->msm_ok)
		return -1;
	if (tm_sm_disk_get(x->bm, data ? &x->dsm : &x->msm, b, &c, &e))
		return -1;
	return c;
}

int64_t xp_meta_count(struct xp *x, uint64_t b) { return sm_count(x, 0, b); }
int64_t xp_data_count(struct xp *x, uint64_t b) { return sm_count(x, 1, b); }

/* ------------------------------------------------------------------ */
/* Rendering */

unsigned xp_body_rows(struct xp *x, struct xp_loc *l)
{
	struct xp_line head[MAX_HEAD];
	const struct xp_view_ops *ops = xp_ops(l->kind);
	unsigned nh = ops->head ? ops->head(x, l, head, MAX_HEAD, x->cols) : 0;
	int rows = (int)x->rows - 4 - (int)nh;

	return rows < 1 ? 1 : (unsigned)rows;
}

static void clip(struct xp_line *l, unsigned cols)
{
	if (xl_len(l) > cols)
		l->text[cols] = '\0';
}

static void fill(struct xp_line *l, unsigned cols, enum xp_attr a)
{
	unsigned len = xl_len(l);

	xl_pad(l, cols);
	xl_set_attr(l, len, cols, a);
}

/* Keep the selection of an indexed list in range and on screen. */
static void settle(struct xp *x, struct xp_loc *l)
{
	const struct xp_view_ops *ops = xp_ops(l->kind);
	uint64_t n = ops->count ? ops->count(x, l) : 0;
	unsigned rows = xp_body_rows(x, l);

	if (ops->move)
		return;
	if (!n) {
		l->sel = l->top = 0;
		return;
	}
	if (l->sel >= n)
		l->sel = n - 1;
	if (l->sel < l->top)
		l->top = l->sel;
	if (l->sel >= l->top + rows)
		l->top = l->sel - rows + 1;
	if (l->top + rows > n)
		l->top = n > rows ? n - rows : 0;
}

static void crumbs(struct xp *x, char *buf, size_t n)
{
	char tmp[1024] = "";
	size_t len = 0;

	for (unsigned i = 0; i < x->depth; i++) {
		char t[160];
		xp_ops(x->stack[i]->kind)->title(x, x->stack[i], t, sizeof(t));
		/* the short form: up to the first double space */
		char *cut = strstr(t, "  ");
		if (cut)
			*cut = '\0';
		len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, "%s%s", i ? " > " : "", t);
		if (len >= sizeof(tmp))
			len = sizeof(tmp) - 1;
	}
	/* keep the end, which is where we are */
	if (len >= n) {
		const char *p = tmp + len - (n - 4);
		snprintf(buf, n, "...%s", p);
	} else {
		snprintf(buf, n, "%s", tmp);
	}
}

void xp_render(struct xp *x, struct xp_line *lines)
{
	struct xp_loc *l = top(x);
	const struct xp_view_ops *ops = xp_ops(l->kind);
	unsigned cols = x->cols, rows = x->rows, r = 0;
	char buf[XP_LINE_MAX + 1], info[XP_LINE_MAX + 1];

	for (unsigned i = 0; i < rows; i++)
		xl_clear(&lines[i]);
	if (ops->move)
		ops->move(x, l, (enum xp_cmd)-1, xp_body_rows(x, l));	/* refill */
	settle(x, l);

	/* title bar: the view; on the right the file and which metadata */
	ops->title(x, l, buf, sizeof(buf));
	char which[64], right[XP_LINE_MAX + 1];
	if (l->snap)
		snprintf(which, sizeof(which), "[held snapshot @%llu]",
			 (unsigned long long)x->vs[1].view.sb_block);
	else
		snprintf(which, sizeof(which), "[live]");
	const char *base = strrchr(x->name, '/') ? strrchr(x->name, '/') + 1 : x->name;
	xl_add(&lines[r], XA_TITLE, " thin_explore: %s", buf);
	unsigned left = xl_len(&lines[r]);
	/* the file's name only where it fits */
	if (left + strlen(base) + strlen(which) + 4 <= cols)
		snprintf(right, sizeof(right), "%s %s ", base, which);
	else
		snprintf(right, sizeof(right), "%s ", which);
	unsigned wr = (unsigned)strlen(right);
	if (cols > wr + 1) {
		if (left > cols - wr - 1)
			lines[r].text[cols - wr - 1] = '\0';
		xl_pad(&lines[r], cols - wr);
		xl_add(&lines[r], XA_TITLE, "%s", right);
	}
	fill(&lines[r], cols, XA_TITLE);
	xl_set_attr(&lines[r], 0, cols, XA_TITLE);
	clip(&lines[r], cols);
	r++;
	if (rows < 2)
		return;

	/* where we came from */
	crumbs(x, buf, cols + 1 > sizeof(buf) ? sizeof(buf) : cols + 1);
	xl_add(&lines[r], XA_HEAD, "%s", buf);
	clip(&lines[r++], cols);

	/* fixed head of the view */
	struct xp_line head[MAX_HEAD];
	unsigned nh = ops->head ? ops->head(x, l, head, MAX_HEAD, cols) : 0;
	for (unsigned i = 0; i < nh && r + 2 < rows; i++) {
		lines[r] = head[i];
		clip(&lines[r++], cols);
	}

	/* the list */
	unsigned body = rows > r + 2 ? rows - r - 2 : 0;
	uint64_t n = ops->count ? ops->count(x, l) : 0;
	for (unsigned i = 0; i < body; i++) {
		uint64_t idx = l->top + i;
		if (idx >= n)
			break;
		ops->line(x, l, idx, &lines[r + i], cols);
		if (idx == l->sel && l->kind != XP_HEX) {
			/* the selection in reverse, keeping marks of bad things
			 * (hex marks its selected field instead) */
			xl_pad(&lines[r + i], cols);
			for (unsigned c = 0; c < cols; c++)
				if (lines[r + i].attr[c] != XA_BAD &&
				    lines[r + i].attr[c] != XA_SELFIELD)
					lines[r + i].attr[c] = XA_SEL;
		}
		clip(&lines[r + i], cols);
	}
	r += body;
	if (rows < 2 || r + 2 > rows)
		r = rows - 2;

	/* details of the selection */
	info[0] = '\0';
	if (ops->info && n)
		ops->info(x, l, info, sizeof(info));
	xl_add(&lines[r], XA_HEAD, "%s", info);
	fill(&lines[r], cols, XA_HEAD);
	clip(&lines[r++], cols);

	/* status: a message, or the position and a hint */
	if (x->status[0]) {
		xl_add(&lines[r], x->status_bad ? XA_STATUS_BAD : XA_STATUS, " %s", x->status);
		fill(&lines[r], cols, x->status_bad ? XA_STATUS_BAD : XA_STATUS);
	} else {
		char pos[64] = "";
		if (!ops->move && n)
			snprintf(pos, sizeof(pos), "%llu/%llu ", (unsigned long long)l->sel + 1,
				 (unsigned long long)n);
		xl_add(&lines[r], XA_STATUS, " %s| ? keys  Enter follow  h back  g block  q quit",
		       pos);
		fill(&lines[r], cols, XA_STATUS);
	}
	clip(&lines[r], cols);
}

void xp_row_text(struct xp *x, uint64_t i, char *buf, size_t n)
{
	struct xp_loc *l = top(x);
	const struct xp_view_ops *ops = xp_ops(l->kind);
	struct xp_line line;

	xl_clear(&line);
	if (ops->move)
		ops->move(x, l, (enum xp_cmd)-1, xp_body_rows(x, l));
	if (ops->count && i < ops->count(x, l))
		ops->line(x, l, i, &line, XP_LINE_MAX);
	snprintf(buf, n, "%s", line.text);
}

uint64_t xp_row_count(struct xp *x)
{
	struct xp_loc *l = top(x);
	const struct xp_view_ops *ops = xp_ops(l->kind);

	if (ops->move)
		ops->move(x, l, (enum xp_cmd)-1, xp_body_rows(x, l));
	return ops->count ? ops->count(x, l) : 0;
}

/* ------------------------------------------------------------------ */
/* Commands */

static int move(struct xp *x, enum xp_cmd c)
{
	struct xp_loc *l = top(x);
	const struct xp_view_ops *ops = xp_ops(l->kind);
	unsigned rows = xp_body_rows(x, l);

	if (ops->move)
		return ops->move(x, l, c, rows);
	uint64_t n = ops->count ? ops->count(x, l) : 0;
	if (!n)
		return 0;
	switch (c) {
	case XC_UP:
		if (l->sel)
			l->sel--;
		break;
	case XC_DOWN:
		if (l->sel + 1 < n)
			l->sel++;
		break;
	case XC_PGUP:
		l->sel = l->sel > rows ? l->sel - rows : 0;
		l->top = l->top > rows ? l->top - rows : 0;
		break;
	case XC_PGDN:
		l->sel = l->sel + rows < n ? l->sel + rows : n - 1;
		l->top += rows;
		if (l->top > l->sel)
			l->top = l->sel;
		break;
	case XC_HOME:
		l->sel = 0;
		break;
	case XC_END:
		l->sel = n - 1;
		break;
	default:
		break;
	}
	settle(x, l);
	if (l->kind == XP_HEX)
		xp_hex_moved(l);
	return 0;
}

static int back(struct xp *x)
{
	if (x->depth <= 1) {
		xp_set_status(x, 0, "at the first location (q quits)");
		return -1;
	}
	loc_free(x->stack[--x->depth]);
	return 0;
}

static int open_super(struct xp *x, int snap)
{
	return xp_push(x, xp_loc_new(XP_SUPER, snap));
}

/* The same place in the other view, where there is one. */
static int switch_view(struct xp *x)
{
	struct xp_loc *l = top(x);
	int to = !l->snap;

	if (!x->vs[1].present) {
		xp_set_status(x, 1, "no metadata snapshot is held (the superblock's held_root is 0)");
		return -1;
	}
	switch (l->kind) {
	case XP_DEVICES:
		xp_push(x, xp_loc_new(XP_DEVICES, to));
		break;
	case XP_MAPPINGS:
		if (xp_find_device(x, to, l->dev)) {
			uint64_t key = l->page_n ? l->page[l->sel < l->page_n ? l->sel : 0].vbegin :
						   l->page_key;
			xp_open_mappings(x, to, l->dev, 1, key);
		} else {
			xp_push(x, xp_loc_new(XP_DEVICES, to));
			xp_set_status(x, 0, "device %llu is not in the %s; showing its devices",
				      (unsigned long long)l->dev,
				      to ? "held snapshot" : "live metadata");
			return 0;
		}
		break;
	default:
		open_super(x, to);
		break;
	}
	if (!x->status[0] || !x->status_bad)
		xp_set_status(x, 0, "now in the %s",
			      to ? "held metadata snapshot" : "live metadata");
	return 0;
}

/* Next/previous node on the same level of the tree. */
static int sibling(struct xp *x, int dir)
{
	struct xp_loc *l = top(x);
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_error e;
	struct tm_node n;
	int d;

	if (l->kind != XP_NODE) {
		xp_set_status(x, 1, "siblings are for btree nodes");
		return -1;
	}
	if (!l->place_known && xp_locate(x, l))
		return -1;
	if (!l->depth) {
		xp_set_status(x, 0, "block %llu is the root of its tree: no siblings",
			      (unsigned long long)l->block);
		return -1;
	}
	uint64_t path[TM_BTREE_MAX_DEPTH];
	uint32_t pidx[TM_BTREE_MAX_DEPTH];
	memcpy(path, l->path, sizeof(path));
	memcpy(pidx, l->pidx, sizeof(pidx));
	unsigned depth = l->depth;
	/* climb to a level with a sibling that way */
	for (d = (int)depth - 1; d >= 0; d--) {
		tm_error_clear(&e);
		if (tm_bm_read(x->bm, path[d], &tm_node_validator, buf, &e)) {
			xp_set_status(x, 1, "%s", e.msg);
			return -1;
		}
		tm_node_view(buf, path[d], &n);
		if (dir > 0 ? pidx[d] + 1 < n.nr_entries : pidx[d] > 0 && pidx[d] <= n.nr_entries)
			break;
	}
	if (d < 0) {
		xp_set_status(x, 0, "block %llu is the %s node at its level",
			      (unsigned long long)l->block, dir > 0 ? "last" : "first");
		return -1;
	}
	pidx[d] = dir > 0 ? pidx[d] + 1 : pidx[d] - 1;
	uint64_t b = tm_node_value64(&n, pidx[d]);
	/* and down the edge to the same depth */
	for (unsigned k = (unsigned)d + 1; k < depth; k++) {
		path[k] = b;
		tm_error_clear(&e);
		if (tm_bm_read(x->bm, b, &tm_node_validator, buf, &e)) {
			xp_open_hex(x, l->snap, b, TM_LAYOUT_NODE, &e);
			return 0;
		}
		tm_node_view(buf, b, &n);
		if (tm_node_is_leaf(&n) || !n.nr_entries) {
			xp_set_status(x, 1, "block %llu: the tree is shallower here (leaves at different depths)",
				      (unsigned long long)b);
			return -1;
		}
		pidx[k] = dir > 0 ? 0 : n.nr_entries - 1;
		b = tm_node_value64(&n, pidx[k]);
	}
	/* replace the current location: siblings are a walk, not a descent */
	struct xp_loc *old = l;
	x->depth--;
	int r = xp_open_node(x, old->snap, b, old->tree, old->dev, path, pidx, depth, 1, -1);
	if (r) {
		x->stack[x->depth++] = old;
		return r;
	}
	loc_free(old);
	return 0;
}

/* Find a cold node's tree and path with a reference search. */
struct locate_ctx {
	struct tm_ref ref;
	uint64_t path[TM_BTREE_MAX_DEPTH];
	uint32_t pidx[TM_BTREE_MAX_DEPTH];
	int found;
	int want_snap;
};

static int locate_fn(void *ctx, const struct tm_ref *r)
{
	struct locate_ctx *c = ctx;

	if (c->found && (c->ref.snapshot == c->want_snap || r->snapshot != c->want_snap))
		return 0;
	if (r->kind != TM_REFBY_CHILD && r->kind != TM_REFBY_DEVICE_ROOT &&
	    r->kind != TM_REFBY_SUPERBLOCK)
		return 0;
	c->ref = *r;
	memcpy(c->path, r->path, r->path_len * sizeof(uint64_t));
	memcpy(c->pidx, r->path_index, r->path_len * sizeof(uint32_t));
	c->found = 1;
	return 0;
}

static enum tm_tree tree_of_sb_offset(uint32_t off)
{
	switch (off) {
	case TM_SB_OFF_MAPPING_ROOT: return TM_TREE_TOP;
	case TM_SB_OFF_DETAILS_ROOT: return TM_TREE_DETAILS;
	case TM_SB_OFF_DATA_SM + 16: return TM_TREE_DATA_INDEX;
	case TM_SB_OFF_DATA_SM + 24: return TM_TREE_DATA_RC;
	case TM_SB_OFF_META_SM + 24: return TM_TREE_META_RC;
	default: return TM_TREE_NONE;
	}
}

int xp_locate(struct xp *x, struct xp_loc *l)
{
	struct locate_ctx c;
	struct tm_refs_stats st;

	memset(&c, 0, sizeof(c));
	c.want_snap = l->snap;
	if (tm_find_meta_refs(x->bm, l->block, locate_fn, &c, &st) < 0) {
		xp_set_status(x, 1, "out of memory");
		return -1;
	}
	if (!c.found) {
		xp_set_status(x, 1, "block %llu is not referenced by any tree%s",
			      (unsigned long long)l->block,
			      st.unreadable ? " that could be read" : "");
		return -1;
	}
	l->place_known = 1;
	l->snap = c.ref.snapshot;
	switch (c.ref.kind) {
	case TM_REFBY_SUPERBLOCK:
		l->tree = tree_of_sb_offset(c.ref.slot);
		l->depth = 0;
		break;
	case TM_REFBY_DEVICE_ROOT:
		l->tree = TM_TREE_BOTTOM;
		l->dev = c.ref.key;
		l->depth = 0;
		break;
	default:
		l->tree = c.ref.tree;
		l->dev = c.ref.dev_id;
		l->depth = c.ref.path_len;
		memcpy(l->path, c.path, sizeof(c.path));
		memcpy(l->pidx, c.pidx, sizeof(c.pidx));
		break;
	}
	xp_set_status(x, 0, "block %llu is in the %s%s", (unsigned long long)l->block,
		      tm_tree_name(l->tree), l->snap ? " of the held snapshot" : "");
	return 0;
}

static int refs_here(struct xp *x)
{
	struct xp_loc *l = top(x);

	switch (l->kind) {
	case XP_MAPPINGS:
		if (l->page_n && !l->page[l->sel].bad)
			return xp_open_refs(x, 1, l->page[l->sel].data);
		break;
	case XP_NODE:
	case XP_HEX:
	case XP_BITMAP:
		return xp_open_refs(x, 0, l->block);
	case XP_SUPER:
		if (l->snap)
			return xp_open_refs(x, 0, x->vs[1].view.sb_block);
		break;
	default:
		break;
	}
	xp_set_status(x, 1, "r: nothing here to search references for (R asks for a data block)");
	return -1;
}

int xp_cmd(struct xp *x, enum xp_cmd c)
{
	struct xp_loc *l = top(x);
	const struct xp_view_ops *ops = xp_ops(l->kind);

	x->status[0] = '\0';
	x->status_bad = 0;
	if (ops->move)	/* keyed views: the page is filled lazily */
		ops->move(x, l, (enum xp_cmd)-1, xp_body_rows(x, l));
	switch (c) {
	case XC_UP: case XC_DOWN: case XC_PGUP: case XC_PGDN: case XC_HOME: case XC_END:
	case XC_NEXT_FIELD: case XC_PREV_FIELD:
		if (c == XC_NEXT_FIELD || c == XC_PREV_FIELD) {
			if (l->kind != XP_HEX) {
				xp_set_status(x, 1, "Tab moves between fields in the hex view (x)");
				return -1;
			}
			int r = xp_hex_field(x, l, c == XC_NEXT_FIELD ? 1 : -1);
			settle(x, l);
			return r;
		}
		return move(x, c);
	case XC_ENTER:
		if (!ops->enter) {
			xp_set_status(x, 1, "nothing to follow here");
			return -1;
		}
		return ops->enter(x, l);
	case XC_BACK:
		return back(x);
	case XC_NEXT_SIB:
	case XC_PREV_SIB:
		return sibling(x, c == XC_NEXT_SIB ? 1 : -1);
	case XC_HEX:
		if (l->kind == XP_HEX)
			return back(x);
		if (l->kind == XP_NODE || l->kind == XP_BITMAP)
			return xp_open_hex(x, l->snap, l->block,
					   l->kind == XP_NODE ? TM_LAYOUT_NODE : TM_LAYOUT_BITMAP,
					   NULL);
		if (l->kind == XP_SUPER)
			return xp_open_hex(x, l->snap, l->snap ? x->vs[1].view.sb_block : 0,
					   TM_LAYOUT_SUPERBLOCK, NULL);
		xp_set_status(x, 1, "x: this view is not one block (g BLOCK then x)");
		return -1;
	case XC_SWITCH:
		return switch_view(x);
	case XC_SUPER:
		return open_super(x, l->snap);
	case XC_DEVICES:
		return xp_push(x, xp_loc_new(XP_DEVICES, l->snap));
	case XC_SPACEMAPS:
		return xp_push(x, xp_loc_new(XP_SPACEMAPS, 0));
	case XC_DIFF:
		if (!x->vs[1].present) {
			xp_set_status(x, 1, "no metadata snapshot is held: nothing to compare");
			return -1;
		}
		return xp_push(x, xp_loc_new(XP_DIFF, 1));
	case XC_HELP:
		if (l->kind == XP_HELP)
			return back(x);
		return xp_push(x, xp_loc_new(XP_HELP, l->snap));
	case XC_TREE:
		if (l->kind == XP_DEVICES || l->kind == XP_MAPPINGS) {
			uint64_t dev = l->dev;
			if (l->kind == XP_DEVICES) {
				struct xp_viewset *v = xp_vs(x, l->snap);
				if (!v->devs_ok || l->sel >= v->nr_devs)
					return -1;
				dev = v->devs[l->sel].dev_id;
			}
			const struct tm_device *d = xp_find_device(x, l->snap, dev);
			if (!d)
				return -1;
			return xp_open_node(x, l->snap, d->mapping_root, TM_TREE_BOTTOM, dev,
					    NULL, NULL, 0, 1, -1);
		}
		xp_set_status(x, 1, "t: the tree of a device (from the devices or mappings view)");
		return -1;
	case XC_REFS:
		return refs_here(x);
	case XC_LOCATE:
		if (l->kind != XP_NODE) {
			xp_set_status(x, 1, "L locates btree nodes");
			return -1;
		}
		return xp_locate(x, l);
	case XC_SEARCH_NEXT:
	case XC_SEARCH_PREV:
		if (!x->search[0]) {
			xp_set_status(x, 1, "no search yet (/ searches)");
			return -1;
		}
		return xp_search(x, x->search, c == XC_SEARCH_PREV);
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Prompts */

static int parse_num(const char *s, uint64_t *v)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	if (!*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	return *end ? -1 : 0;
}

const char *xp_prompt(struct xp *x, int key)
{
	struct xp_loc *l = top(x);

	switch (key) {
	case 'g': return "go to metadata block: ";
	case 'v':
		return (l->kind == XP_MAPPINGS || (l->kind == XP_NODE && l->tree == TM_TREE_BOTTOM)) ?
		       "virtual block: " : "device and virtual block (DEV VBLOCK): ";
	case 'R': return "who maps data block: ";
	case 'c':
		return (l->kind == XP_BITMAP && l->sm_data) ? "count of data block: " :
		       "count of block (N: metadata, d N: data): ";
	case '/': return "/";
	default: return "";
	}
}

int xp_goto_block(struct xp *x, const char *text)
{
	uint64_t b;

	x->status[0] = '\0';
	if (parse_num(text, &b)) {
		xp_set_status(x, 1, "not a block number: '%s'", text);
		return -1;
	}
	if (b >= tm_bm_nr_blocks(x->bm)) {
		xp_set_status(x, 1, "block %llu is past the end of the metadata device (%llu blocks)",
			      (unsigned long long)b, (unsigned long long)tm_bm_nr_blocks(x->bm));
		return -1;
	}
	return xp_open_block(x, b);
}

int xp_goto_vblock(struct xp *x, const char *text)
{
	struct xp_loc *l = top(x);
	uint64_t dev, vb;
	char a[64], b[64];
	int n = sscanf(text, " %63s %63s", a, b);

	x->status[0] = '\0';
	if (n == 1 && (l->kind == XP_MAPPINGS || (l->kind == XP_NODE && l->tree == TM_TREE_BOTTOM))) {
		if (parse_num(a, &vb))
			goto bad;
		return xp_open_mappings(x, l->snap, l->dev, 1, vb);
	}
	if (n != 2 || parse_num(a, &dev) || parse_num(b, &vb))
		goto bad;
	if (!xp_find_device(x, l->snap, dev)) {
		xp_set_status(x, 1, "no device %llu in the %s", (unsigned long long)dev,
			      l->snap ? "held snapshot" : "live metadata");
		return -1;
	}
	return xp_open_mappings(x, l->snap, dev, 1, vb);
bad:
	xp_set_status(x, 1, "expected %s, got '%s'",
		      n == 1 ? "a virtual block number" : "DEV VBLOCK", text);
	return -1;
}

int xp_data_refs(struct xp *x, const char *text)
{
	uint64_t b;

	x->status[0] = '\0';
	if (parse_num(text, &b)) {
		xp_set_status(x, 1, "not a data block number: '%s'", text);
		return -1;
	}
	return xp_open_refs(x, 1, b);
}

int xp_count(struct xp *x, const char *text)
{
	struct xp_loc *l = top(x);
	int data = l->kind == XP_BITMAP && l->sm_data;
	uint64_t b;

	x->status[0] = '\0';
	while (isspace((unsigned char)*text))
		text++;
	if (*text == 'd' || *text == 'D') {
		data = 1;
		text++;
	} else if (*text == 'm' || *text == 'M') {
		data = 0;
		text++;
	}
	if (parse_num(text, &b)) {
		xp_set_status(x, 1, "not a block number: '%s'", text);
		return -1;
	}
	xp_load_space_maps(x);
	if (data ? !x->dsm_ok : !x->msm_ok) {
		xp_set_status(x, 1, "%s space map: %s", data ? "data" : "metadata",
			      data ? x->dsm_err.msg : x->msm_err.msg);
		return -1;
	}
	const struct tm_sm_disk *sm = data ? &x->dsm : &x->msm;
	if (b >= sm->root.nr_blocks) {
		xp_set_status(x, 1, "%s block %llu is past the space map's end (%llu blocks)",
			      data ? "data" : "metadata", (unsigned long long)b,
			      (unsigned long long)sm->root.nr_blocks);
		return -1;
	}
	int r = xp_open_bitmap(x, data, b / TM_ENTRIES_PER_BITMAP,
			       (int64_t)(b % TM_ENTRIES_PER_BITMAP));
	if (!r) {
		int64_t c = sm_count(x, data, b);
		if (c >= 0)
			xp_set_status(x, 0, "%s block %llu: reference count %lld",
				      data ? "data" : "metadata", (unsigned long long)b,
				      (long long)c);
		else
			xp_set_status(x, 1, "%s block %llu: count unreadable",
				      data ? "data" : "metadata", (unsigned long long)b);
	}
	return r;
}

static int icontains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return 1;
	return 0;
}

int xp_search(struct xp *x, const char *text, int backward)
{
	struct xp_loc *l = top(x);
	const struct xp_view_ops *ops = xp_ops(l->kind);
	struct xp_line line;

	x->status[0] = '\0';
	if (!*text) {
		xp_set_status(x, 1, "empty search");
		return -1;
	}
	snprintf(x->search, sizeof(x->search), "%s", text);
	if (l->kind == XP_MAPPINGS) {
		/* millions of rows: a search here is a virtual block */
		return xp_goto_vblock(x, text);
	}
	if (ops->move) {
		xp_set_status(x, 1, "this view pages through the metadata: no text search");
		return -1;
	}
	uint64_t n = ops->count ? ops->count(x, l) : 0;
	for (uint64_t k = 1; k <= n; k++) {
		uint64_t i = backward ? (l->sel + n - k % n) % n : (l->sel + k) % n;
		xl_clear(&line);
		ops->line(x, l, i, &line, x->cols);	/* what the screen shows */
		if (icontains(line.text, text)) {
			uint64_t old = l->sel;
			l->sel = i;
			settle(x, l);
			if (backward ? i > old : i < old)
				xp_set_status(x, 0, "search wrapped: %s", text);
			return 0;
		}
	}
	xp_set_status(x, 1, "not found: %s", text);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Node paths (-p) */

int xp_open_node_path(struct xp *x, const char *text)
{
	uint64_t path[TM_NODE_PATH_MAX + 1];
	unsigned len, i = 0;
	struct tm_error e;
	int snap = top(x)->snap;

	tm_error_clear(&e);
	if (tm_node_path_decode(text, path, TM_NODE_PATH_MAX + 1, &len, &e)) {
		xp_set_status(x, 1, "%s", e.msg);
		return -1;
	}
	if (!len) {
		xp_set_status(x, 1, "the node path is empty");
		return -1;
	}
	const struct tm_superblock *sb = &x->vs[snap].view.sb;
	if (path[0] == 0 || (snap && path[0] == x->vs[1].view.sb_block))
		i = 1;		/* the superblock: it is where we start */
	if (i >= len)
		return 0;

	/* the first node: a root the superblock names, or a device's root */
	uint64_t b = path[i];
	enum tm_tree tree = TM_TREE_NONE;
	uint64_t dev = UINT64_MAX;
	if (b == sb->mapping_root)
		tree = TM_TREE_TOP;
	else if (b == sb->details_root)
		tree = TM_TREE_DETAILS;
	else if (!snap && b == sb->data_sm.bitmap_root)
		tree = TM_TREE_DATA_INDEX;
	else if (!snap && b == sb->data_sm.ref_count_root)
		tree = TM_TREE_DATA_RC;
	else if (!snap && b == sb->meta_sm.ref_count_root)
		tree = TM_TREE_META_RC;
	else if (!xp_load_devices(x, snap)) {
		struct xp_viewset *v = xp_vs(x, snap);
		for (uint64_t k = 0; k < v->nr_devs; k++)
			if (v->devs[k].mapping_root == b) {
				tree = TM_TREE_BOTTOM;
				dev = v->devs[k].dev_id;
				break;
			}
	}
	if (tree == TM_TREE_NONE) {
		int r = xp_open_block(x, path[len - 1]);
		xp_set_status(x, 1, "node path: block %llu is no tree root the superblock names; showing block %llu, the path's last",
			      (unsigned long long)b, (unsigned long long)path[len - 1]);
		return r;
	}

	/* down the path: each block must be a child of the one before */
	uint64_t anc[TM_BTREE_MAX_DEPTH];
	uint32_t aidx[TM_BTREE_MAX_DEPTH];
	unsigned depth = 0;
	for (i++; i < len; i++) {
		uint8_t buf[TM_BLOCK_SIZE];
		struct tm_node n;
		uint32_t k;

		tm_error_clear(&e);
		if (tm_bm_read(x->bm, b, &tm_node_validator, buf, &e)) {
			/* damage on the way: show it */
			xp_open_node(x, snap, b, tree, dev, anc, aidx, depth, 1, -1);
			xp_set_status(x, 1, "%s (node path stops here, %u blocks short)", e.msg,
				      len - i);
			return 0;
		}
		tm_node_view(buf, b, &n);
		for (k = 0; k < n.nr_entries; k++)
			if (tm_node_value64(&n, k) == path[i])
				break;
		if (k == n.nr_entries || depth + 1 >= TM_BTREE_MAX_DEPTH) {
			xp_open_node(x, snap, b, tree, dev, anc, aidx, depth, 1, -1);
			xp_set_status(x, 1, "node path: block %llu is not a child of block %llu (g %llu opens it)",
				      (unsigned long long)path[i], (unsigned long long)b,
				      (unsigned long long)path[i]);
			return 0;
		}
		if (tm_node_is_leaf(&n) && tree == TM_TREE_TOP) {
			/* a device root, from the top level's leaf */
			tree = TM_TREE_BOTTOM;
			dev = tm_node_key(&n, k);
			depth = 0;
			b = path[i];
			continue;
		}
		anc[depth] = b;
		aidx[depth] = k;
		depth++;
		b = path[i];
	}
	return xp_open_node(x, snap, b, tree, dev, anc, aidx, depth, 1, -1);
}
