/*
 * view_hex.c - any metadata block in hex, its fields marked from the field
 * tables (thinmeta/fields.h); and opening a block as what it is.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/format.h"
#include "views.h"

struct hex_priv {
	uint8_t mark[TM_BLOCK_SIZE];	/* attribute of each byte, without the selection */
	uint16_t starts[TM_BLOCK_SIZE];	/* offsets where a field starts */
	unsigned nr_starts;
	const struct tm_struct *vstruct;
	const struct tm_validator *ident;
	char problem[300];
	int valid;
};

static const struct tm_validator *validator_of(enum tm_layout k)
{
	switch (k) {
	case TM_LAYOUT_SUPERBLOCK: return &tm_sb_validator;
	case TM_LAYOUT_NODE: return &tm_node_validator;
	case TM_LAYOUT_BITMAP: return &tm_bitmap_validator;
	case TM_LAYOUT_INDEX: return &tm_index_validator;
	default: return NULL;
	}
}

static enum tm_layout kind_of(const struct tm_validator *v)
{
	if (v == &tm_sb_validator) return TM_LAYOUT_SUPERBLOCK;
	if (v == &tm_node_validator) return TM_LAYOUT_NODE;
	if (v == &tm_bitmap_validator) return TM_LAYOUT_BITMAP;
	if (v == &tm_index_validator) return TM_LAYOUT_INDEX;
	return TM_LAYOUT_UNKNOWN;
}

static const struct tm_struct *tree_value_struct(enum tm_tree t)
{
	switch (t) {
	case TM_TREE_TOP: return &tm_struct_dev_root;
	case TM_TREE_BOTTOM: return &tm_struct_mapping_value;
	case TM_TREE_DETAILS: return &tm_struct_device_details;
	case TM_TREE_DATA_INDEX: return &tm_struct_index_entry;
	case TM_TREE_META_RC:
	case TM_TREE_DATA_RC: return &tm_struct_ref_count;
	default: return NULL;
	}
}

static int field_at(struct xp_loc *l, uint32_t off, struct tm_field_loc *fl)
{
	struct hex_priv *p = l->priv;
	const struct tm_struct *vs = p->vstruct;

	/* internal nodes hold child pointers whatever the tree */
	if (l->hex_kind == TM_LAYOUT_NODE &&
	    !(tm_le32(l->buf + TM_NODE_OFF_FLAGS) & TM_NODE_LEAF))
		vs = &tm_struct_block_value;
	return tm_block_field_at(l->hex_kind, l->buf, vs, off, fl);
}

static void hex_marks(struct xp_loc *l)
{
	struct hex_priv *p = l->priv;
	struct tm_field_loc fl;
	int parity = 0;
	uint32_t cur = UINT32_MAX;

	p->nr_starts = 0;
	for (uint32_t off = 0; off < TM_BLOCK_SIZE; off++) {
		if (field_at(l, off, &fl)) {
			p->mark[off] = XA_DIM;
			cur = UINT32_MAX;
			continue;
		}
		if (fl.offset != cur) {
			cur = fl.offset;
			parity = !parity;
			p->starts[p->nr_starts++] = (uint16_t)off;
		}
		p->mark[off] = !fl.in_use ? XA_DIM : parity ? XA_FIELD1 : XA_FIELD2;
	}
}

static int hex_open(struct xp *x, struct xp_loc *l)
{
	struct hex_priv *p = calloc(1, sizeof(*p));
	struct tm_error e;

	l->buf = malloc(TM_BLOCK_SIZE);
	l->priv = p;
	if (!p || !l->buf)
		return -1;
	tm_error_clear(&e);
	if (tm_bm_read(x->bm, l->block, NULL, l->buf, &e)) {
		xp_set_status(x, 1, "%s", e.msg);
		return -1;
	}
	p->ident = tm_block_identify(l->buf);
	if (l->hex_kind == TM_LAYOUT_UNKNOWN)
		l->hex_kind = kind_of(p->ident);
	p->vstruct = tree_value_struct(l->tree);
	const struct tm_validator *v = validator_of(l->hex_kind);
	if (v) {
		tm_error_clear(&e);
		p->valid = !tm_block_validate(v, l->buf, l->block, &e);
		if (!p->valid) {
			l->bad = 1;
			snprintf(p->problem, sizeof(p->problem), "%s", e.msg);
		}
	} else if (tm_block_is_zero(l->buf)) {
		snprintf(p->problem, sizeof(p->problem), "all zeroes");
	} else {
		snprintf(p->problem, sizeof(p->problem),
			 "no block type's checksum matches: free, stale or damaged");
	}
	hex_marks(l);
	return 0;
}

static void hex_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, "hex %llu  %s", (unsigned long long)l->block,
		 tm_layout_name(l->hex_kind));
}

static unsigned hex_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			 unsigned max, unsigned width)
{
	struct hex_priv *p = l->priv;
	const struct tm_validator *v = validator_of(l->hex_kind);
	int64_t c = xp_meta_count(x, l->block);
	(void)width;

	if (max < 2)
		return 0;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_HEAD, "block %llu as %s", (unsigned long long)l->block,
	       tm_layout_name(l->hex_kind));
	if (v) {
		uint32_t want = tm_block_crc(l->buf) ^ v->salt, got = tm_le32(l->buf);
		xl_add(&lines[0], XA_HEAD, ": checksum ");
		if (want == got)
			xl_add(&lines[0], XA_HEAD, "ok");
		else
			xl_add(&lines[0], XA_BAD, "0x%08x BAD (want 0x%08x)", got, want);
		uint64_t self = tm_le64(l->buf + 8);
		xl_add(&lines[0], self == l->block ? XA_HEAD : XA_BAD, ", blocknr %llu",
		       (unsigned long long)self);
	}
	if (p->ident && kind_of(p->ident) != l->hex_kind)
		xl_add(&lines[0], XA_CHG, "; its checksum says %s", p->ident->name);
	xl_clear(&lines[1]);
	if (p->problem[0])
		xl_add(&lines[1], l->bad ? XA_BAD : XA_HEAD, "%s%s", l->bad ? "DAMAGED: " : "",
		       p->problem);
	else
		xl_add(&lines[1], XA_HEAD, "valid");
	if (c >= 0)
		xl_add(&lines[1], XA_HEAD, "   metadata space map count %lld", (long long)c);
	return 2;
}

static uint64_t hex_count(struct xp *x, struct xp_loc *l)
{
	(void)x;
	(void)l;
	return TM_BLOCK_SIZE / 16;
}

static void hex_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		     unsigned width)
{
	struct hex_priv *p = l->priv;
	struct tm_field_loc sel;
	uint32_t base = (uint32_t)i * 16;
	int have_sel = !field_at(l, l->hex_off, &sel);
	(void)x;
	(void)width;

	xl_clear(out);
	xl_add(out, XA_DIM, "%04x  ", base);
	for (uint32_t j = 0; j < 16; j++) {
		uint32_t off = base + j;
		enum xp_attr a = p->mark[off];
		if (have_sel && off >= sel.offset && off < sel.offset + sel.size)
			a = XA_SELFIELD;
		if (j == 8)
			xl_add(out, XA_NORMAL, " ");
		xl_add(out, a, "%02x", l->buf[off]);
		/* the gap belongs to the field when the next byte does too */
		xl_add(out, j < 15 && p->mark[off + 1] == p->mark[off] && j != 7 &&
		       (a != XA_SELFIELD || off + 1 < sel.offset + sel.size) ? a : XA_NORMAL, " ");
	}
	xl_add(out, XA_NORMAL, " |");
	for (uint32_t j = 0; j < 16; j++) {
		uint8_t b = l->buf[base + j];
		xl_add(out, p->mark[base + j] == XA_DIM ? XA_DIM : XA_NORMAL, "%c",
		       isprint(b) ? (char)b : '.');
	}
	xl_add(out, XA_NORMAL, "|");
}

/* The selection follows the rows: the field at (or after) the row's start. */
static void hex_sync(struct xp_loc *l)
{
	struct hex_priv *p = l->priv;
	uint32_t base = (uint32_t)l->sel * 16;
	struct tm_field_loc fl;

	if (l->hex_off >= base && l->hex_off < base + 16)
		return;
	if (!field_at(l, base, &fl)) {
		l->hex_off = fl.offset;
		return;
	}
	for (unsigned i = 0; i < p->nr_starts; i++)
		if (p->starts[i] >= base) {
			l->hex_off = p->starts[i];
			return;
		}
	l->hex_off = base;
}

void xp_hex_moved(struct xp_loc *l)
{
	hex_sync(l);
}

int xp_hex_field(struct xp *x, struct xp_loc *l, int dir)
{
	struct hex_priv *p = l->priv;
	struct tm_field_loc fl;
	uint32_t cur = field_at(l, l->hex_off, &fl) ? l->hex_off : fl.offset;

	if (!p->nr_starts) {
		xp_set_status(x, 1, "no fields are known in this block");
		return -1;
	}
	if (dir > 0) {
		for (unsigned i = 0; i < p->nr_starts; i++)
			if (p->starts[i] > cur) {
				l->hex_off = p->starts[i];
				l->sel = l->hex_off / 16;
				return 0;
			}
	} else {
		for (unsigned i = p->nr_starts; i-- > 0;)
			if (p->starts[i] < cur) {
				l->hex_off = p->starts[i];
				l->sel = l->hex_off / 16;
				return 0;
			}
	}
	xp_set_status(x, 0, "no more fields that way");
	return -1;
}

static int hex_enter(struct xp *x, struct xp_loc *l)
{
	struct tm_field_loc fl;

	if (field_at(l, l->hex_off, &fl) || !fl.field || !fl.field->ref ||
	    fl.field->type == TM_FT_STRUCT) {
		xp_set_status(x, 1, "the selected field is not a pointer (Tab moves between fields)");
		return -1;
	}
	uint64_t v = tm_field_get(fl.field, l->buf + fl.st_offset);
	int snap = l->snap;
	switch (fl.field->ref) {
	case TM_REF_SELF:
		xp_set_status(x, 0, "blocknr is the block's own location");
		return -1;
	case TM_REF_DATA_BLOCK:
		return xp_open_refs(x, 1, v);
	default:
		break;
	}
	if (v >= tm_bm_nr_blocks(x->bm)) {
		xp_set_status(x, 1, "%s %llu is past the end of the metadata device", fl.name,
			      (unsigned long long)v);
		return -1;
	}
	switch (fl.field->ref) {
	case TM_REF_SUPERBLOCK:
		if (x->vs[1].present && v == x->vs[1].view.sb_block)
			return xp_push(x, xp_loc_new(XP_SUPER, 1));
		return xp_open_hex(x, 1, v, TM_LAYOUT_SUPERBLOCK, NULL);
	case TM_REF_TOP_ROOT:
		return xp_open_node(x, snap, v, TM_TREE_TOP, UINT64_MAX, NULL, NULL, 0, 1, -1);
	case TM_REF_DETAILS_ROOT:
		return xp_open_node(x, snap, v, TM_TREE_DETAILS, UINT64_MAX, NULL, NULL, 0, 1, -1);
	case TM_REF_DATA_INDEX_ROOT:
		return xp_open_node(x, snap, v, TM_TREE_DATA_INDEX, UINT64_MAX, NULL, NULL, 0, 1, -1);
	case TM_REF_META_REFCOUNT:
		return xp_open_node(x, snap, v, TM_TREE_META_RC, UINT64_MAX, NULL, NULL, 0, 1, -1);
	case TM_REF_DATA_REFCOUNT:
		return xp_open_node(x, snap, v, TM_TREE_DATA_RC, UINT64_MAX, NULL, NULL, 0, 1, -1);
	case TM_REF_META_INDEX:
		return xp_open_hex(x, 0, v, TM_LAYOUT_INDEX, NULL);
	case TM_REF_BOTTOM_ROOT:
		return xp_open_node(x, snap, v, TM_TREE_BOTTOM,
				    fl.slot >= 0 ? tm_le64(l->buf + TM_NODE_HEADER_SIZE + 8 * fl.slot) :
				    UINT64_MAX, NULL, NULL, 0, fl.slot >= 0, -1);
	case TM_REF_BITMAP:
		if (l->hex_kind == TM_LAYOUT_INDEX && fl.slot >= 0)
			return xp_open_bitmap(x, 0, (uint64_t)fl.slot, -1);
		if (fl.slot >= 0)
			return xp_open_bitmap(x, 1, tm_le64(l->buf + TM_NODE_HEADER_SIZE + 8 * fl.slot), -1);
		return xp_open_block(x, v);
	default:	/* a child node */
		return xp_open_node(x, snap, v, l->tree, l->dev, NULL, NULL, 0, 0, -1);
	}
}

static void hex_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	struct tm_field_loc fl;
	size_t len;
	(void)x;

	if (field_at(l, l->hex_off, &fl)) {
		snprintf(buf, n, " @0x%03x: no field (unused bytes)", l->hex_off);
		return;
	}
	len = (size_t)snprintf(buf, n, " @0x%03x %s%s:", fl.offset, fl.name,
			       fl.in_use ? "" : " (unused slot)");
	if (len >= n)
		return;
	if (!fl.field) {
		/* keys, bitmap bytes */
		if (l->hex_kind == TM_LAYOUT_BITMAP) {
			for (unsigned k = 0; k < 4; k++)
				len += (size_t)snprintf(buf + len, n - len, " %u",
							tm_bitmap_get(l->buf, (uint32_t)fl.slot + k));
			snprintf(buf + len, n - len, " (counts; 3 = 3 or more)");
		} else {
			snprintf(buf + len, n - len, " %llu",
				 (unsigned long long)tm_le64(l->buf + fl.offset));
		}
		return;
	}
	if (fl.field->type == TM_FT_BYTES || fl.field->type == TM_FT_STRUCT) {
		for (uint32_t k = 0; k < fl.size && k < 16 && len < n; k++)
			len += (size_t)snprintf(buf + len, n - len, " %02x", l->buf[fl.offset + k]);
		if (len < n)
			snprintf(buf + len, n - len, " - %s", fl.field->doc);
		return;
	}
	if (fl.field->bits && fl.st) {
		/* a packed word: every bit field of it */
		for (unsigned k = 0; k < fl.st->nr_fields && len < n; k++) {
			const struct tm_field *f = &fl.st->fields[k];
			if (f->offset == fl.field->offset)
				len += (size_t)snprintf(buf + len, n - len, " %s %llu", f->name,
							(unsigned long long)tm_field_get(f, l->buf + fl.st_offset));
		}
		return;
	}
	uint64_t v = tm_field_get(fl.field, l->buf + fl.st_offset);
	len += (size_t)snprintf(buf + len, n - len, " %llu", (unsigned long long)v);
	if (len < n && fl.field->ref && fl.field->ref != TM_REF_SELF)
		len += (size_t)snprintf(buf + len, n - len, " -> %s (Enter)",
					tm_fref_name(fl.field->ref));
	if (len < n)
		snprintf(buf + len, n - len, " - %s", fl.field->doc);
}

const struct xp_view_ops xp_hex_ops = {
	.name = "hex", .open = hex_open, .title = hex_title, .head = hex_head,
	.count = hex_count, .line = hex_line, .enter = hex_enter, .info = hex_info,
};

int xp_open_hex(struct xp *x, int snap, uint64_t block, enum tm_layout kind,
		const struct tm_error *why)
{
	struct xp_loc *l = xp_loc_new(XP_HEX, snap);
	const struct xp_loc *cur = xp_top(x);

	if (!l)
		return -1;
	l->block = block;
	l->hex_kind = kind;
	/* a node keeps its tree: its values are decoded right */
	if (cur && cur->kind == XP_NODE && cur->block == block) {
		l->tree = cur->tree;
		l->dev = cur->dev;
	}
	if (xp_push(x, l))
		return -1;
	if (why && why->msg[0])
		xp_set_status(x, 1, "%s", why->msg);
	return 0;
}

/* Which bitmap of which space map lives at @b; -1 if none. */
static int64_t find_bitmap(struct xp *x, uint64_t b, int *data)
{
	xp_load_space_maps(x);
	for (int d = 0; d < 2; d++) {
		const struct tm_sm_disk *sm = d ? &x->dsm : &x->msm;
		if (d ? !x->dsm_ok : !x->msm_ok)
			continue;
		for (uint64_t i = 0; i < sm->nr_bitmaps; i++)
			if (sm->index[i].blocknr == b) {
				*data = d;
				return (int64_t)i;
			}
	}
	return -1;
}

/*
 * The layout a block whose checksum fits no type seems to have: a
 * superblock's magic; a node's own location and flags; a block the space
 * maps name as their index or a bitmap.
 */
static enum tm_layout guess_layout(struct xp *x, const uint8_t *buf, uint64_t b)
{
	int data;
	uint32_t flags = tm_le32(buf + TM_NODE_OFF_FLAGS);

	if (tm_le64(buf + TM_SB_OFF_MAGIC) == TM_SB_MAGIC)
		return TM_LAYOUT_SUPERBLOCK;
	if (b == x->vs[0].view.sb.meta_sm.bitmap_root)
		return TM_LAYOUT_INDEX;
	if (find_bitmap(x, b, &data) >= 0)
		return TM_LAYOUT_BITMAP;
	if (tm_le64(buf + TM_NODE_OFF_BLOCKNR) == b &&
	    (flags == TM_NODE_INTERNAL || flags == TM_NODE_LEAF))
		return TM_LAYOUT_NODE;
	return TM_LAYOUT_UNKNOWN;
}

int xp_open_block(struct xp *x, uint64_t b)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_error e;
	int snap = xp_top(x) ? xp_top(x)->snap : 0;
	int data;

	tm_error_clear(&e);
	if (tm_bm_read(x->bm, b, NULL, buf, &e)) {
		xp_set_status(x, 1, "%s", e.msg);
		return -1;
	}
	const struct tm_validator *v = tm_block_identify(buf);
	if (v == &tm_sb_validator) {
		if (b == 0)
			return xp_push(x, xp_loc_new(XP_SUPER, 0));
		if (x->vs[1].present && b == x->vs[1].view.sb_block)
			return xp_push(x, xp_loc_new(XP_SUPER, 1));
		if (xp_open_hex(x, snap, b, TM_LAYOUT_SUPERBLOCK, NULL))
			return -1;
		xp_set_status(x, 0, "block %llu is a superblock copy that held_root does not name",
			      (unsigned long long)b);
		return 0;
	}
	if (v == &tm_node_validator)
		return xp_open_node(x, snap, b, TM_TREE_NONE, UINT64_MAX, NULL, NULL, 0, 0, -1);
	if (v == &tm_bitmap_validator) {
		int64_t nr = find_bitmap(x, b, &data);
		if (nr >= 0)
			return xp_open_bitmap(x, data, (uint64_t)nr, -1);
		if (xp_open_hex(x, snap, b, TM_LAYOUT_BITMAP, NULL))
			return -1;
		xp_set_status(x, 1, "block %llu is a bitmap that no index entry names",
			      (unsigned long long)b);
		return 0;
	}
	if (!v) {
		/* no checksum matches: what does it look like? */
		enum tm_layout guess = guess_layout(x, buf, b);
		if (guess == TM_LAYOUT_NODE)	/* falls back to hex, naming the problem */
			return xp_open_node(x, snap, b, TM_TREE_NONE, UINT64_MAX, NULL, NULL, 0, 0, -1);
		if (guess != TM_LAYOUT_UNKNOWN) {
			struct tm_error why;
			tm_error_clear(&why);
			tm_block_validate(validator_of(guess), buf, b, &why);
			return xp_open_hex(x, snap, b, guess, &why);
		}
	}
	if (xp_open_hex(x, snap, b, v == &tm_index_validator ? TM_LAYOUT_INDEX : TM_LAYOUT_UNKNOWN,
			NULL))
		return -1;
	if (!v) {
		int64_t c = xp_meta_count(x, b);
		char cnt[64] = "";
		if (c >= 0)
			snprintf(cnt, sizeof(cnt), "; space map count %lld", (long long)c);
		if (tm_block_is_zero(buf))
			xp_set_status(x, c > 0, "block %llu is all zeroes%s", (unsigned long long)b, cnt);
		else
			xp_set_status(x, 1, "block %llu: no block type's checksum matches (free, stale or damaged)%s",
				      (unsigned long long)b, cnt);
	}
	return 0;
}
