/*
 * view_meta.c - the superblock, devices, space maps, bitmap and help views.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/crc32c.h"
#include "thinmeta/format.h"
#include "views.h"

/* ------------------------------------------------------------------ */
/* Superblock: one row per field of the table, then places to go */

struct sb_row {
	const struct tm_field *f;
	uint32_t offset;	/* in the block */
	char name[48];
};

#define SB_MAX_ROWS 40
#define SB_EXTRA 3		/* devices, space maps, difference */

struct sb_priv {
	uint8_t buf[TM_BLOCK_SIZE];
	int read_ok;
	struct sb_row rows[SB_MAX_ROWS];
	unsigned n;
};

static uint64_t sb_block_of(struct xp *x, struct xp_loc *l)
{
	return l->snap ? x->vs[1].view.sb_block : 0;
}

static int super_open(struct xp *x, struct xp_loc *l)
{
	struct sb_priv *p = calloc(1, sizeof(*p));
	const struct tm_struct *s = &tm_struct_superblock;
	struct tm_error e;

	if (!p)
		return -1;
	l->priv = p;
	l->block = sb_block_of(x, l);
	tm_error_clear(&e);
	p->read_ok = !tm_bm_read(x->bm, l->block, NULL, p->buf, &e);
	if (!p->read_ok) {
		xp_set_status(x, 1, "%s", e.msg);
		return -1;
	}
	for (unsigned i = 0; i < s->nr_fields && p->n < SB_MAX_ROWS; i++) {
		const struct tm_field *f = &s->fields[i];
		if (f->type != TM_FT_STRUCT) {
			p->rows[p->n].f = f;
			p->rows[p->n].offset = f->offset;
			snprintf(p->rows[p->n].name, sizeof(p->rows[0].name), "%s", f->name);
			p->n++;
			continue;
		}
		for (unsigned j = 0; j < f->sub->nr_fields && p->n < SB_MAX_ROWS; j++) {
			const struct tm_field *g = &f->sub->fields[j];
			p->rows[p->n].f = g;
			p->rows[p->n].offset = f->offset + g->offset;
			snprintf(p->rows[p->n].name, sizeof(p->rows[0].name), "%s.%s",
				 f->name[0] == 'd' ? "data_sm" : "metadata_sm", g->name);
			p->n++;
		}
	}
	return 0;
}

static void super_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, "superblock %llu  %s", (unsigned long long)l->block,
		 l->snap ? "(the held metadata snapshot's copy)" : "(live)");
}

static unsigned super_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			   unsigned max, unsigned width)
{
	struct xp_viewset *v = xp_vs(x, l->snap);
	(void)width;
	if (max < 2)
		return 0;
	xl_clear(&lines[0]);
	if (v->ok)
		xl_add(&lines[0], XA_HEAD, "checksum, magic, version, flags and roots are valid");
	else
		xl_add(&lines[0], XA_BAD, "DAMAGED: %s", v->err.msg);
	xl_clear(&lines[1]);
	xl_add(&lines[1], XA_LABEL, "  %-26s %-11s %-18s %s", "field", "value", "raw", "notes");
	return 2;
}

static uint64_t super_count(struct xp *x, struct xp_loc *l)
{
	struct sb_priv *p = l->priv;
	(void)x;
	return p->n + SB_EXTRA;
}

static void super_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		       unsigned width)
{
	struct sb_priv *p = l->priv;
	struct xp_viewset *v = xp_vs(x, l->snap);

	xl_clear(out);
	if (i >= p->n) {
		switch (i - p->n) {
		case 0:
			xl_add(out, XA_PTR, "  [devices]");
			if (xp_load_devices(x, l->snap))
				xl_add(out, XA_BAD, "  unreadable: %s", v->devs_err.msg);
			else
				xl_add(out, XA_NORMAL, "  %llu thin devices",
				       (unsigned long long)v->nr_devs);
			break;
		case 1:
			xl_add(out, XA_PTR, "  [space maps]");
			xl_add(out, XA_NORMAL, "  metadata and data reference counts%s",
			       l->snap ? " (the live ones: a snapshot copy has none)" : "");
			break;
		default:
			if (x->vs[1].present) {
				xl_add(out, XA_PTR, "  [snapshot vs live]");
				xl_add(out, XA_NORMAL, "  the held snapshot beside the live metadata");
			} else {
				xl_add(out, XA_DIM, "  [snapshot vs live]  no metadata snapshot is held");
			}
			break;
		}
		return;
	}
	const struct sb_row *row = &p->rows[i];
	const struct tm_field *f = row->f;
	const uint8_t *base = p->buf + row->offset - f->offset;
	uint64_t val = tm_field_get(f, base);
	char value[64], raw[64];

	switch (f->type) {
	case TM_FT_BYTES: {
		const uint8_t *b = p->buf + row->offset;
		int zero = 1;
		for (unsigned k = 0; k < f->size; k++)
			zero &= !b[k];
		snprintf(value, sizeof(value), "%s", zero ? "(zeroes)" : "(bytes)");
		raw[0] = '\0';
		for (unsigned k = 0; k < f->size && k < 8; k++)
			sprintf(raw + 2 * k, "%02x", b[k]);
		if (f->size > 8)
			strcat(raw, "..");
		break;
	}
	case TM_FT_U32:
		snprintf(value, sizeof(value), "%llu", (unsigned long long)val);
		snprintf(raw, sizeof(raw), "0x%08llx", (unsigned long long)val);
		break;
	case TM_FT_U64:
		snprintf(value, sizeof(value), "%llu", (unsigned long long)val);
		snprintf(raw, sizeof(raw), width >= 100 ? "0x%016llx" : "0x%llx",
			 (unsigned long long)val);
		break;
	default:
		snprintf(value, sizeof(value), "%llu", (unsigned long long)val);
		snprintf(raw, sizeof(raw), "0x%016llx", (unsigned long long)val);
		break;
	}
	xl_add(out, XA_NORMAL, "  %-26s ", row->name);
	xl_add(out, f->ref && f->ref != TM_REF_SELF && val ? XA_PTR : XA_NORMAL, "%-11s", value);
	xl_add(out, XA_DIM, " %-18s ", raw);
	/* what is wrong or notable about it */
	if (row->offset == TM_SB_OFF_CSUM) {
		uint32_t want = tm_block_crc(p->buf) ^ TM_SALT_SUPERBLOCK;
		if (want == val)
			xl_add(out, XA_NORMAL, "ok");
		else
			xl_add(out, XA_BAD, "BAD, computed 0x%08x", want);
	} else if (row->offset == TM_SB_OFF_MAGIC && val != TM_SB_MAGIC) {
		xl_add(out, XA_BAD, "BAD, not %llu", TM_SB_MAGIC);
	} else if (row->offset == TM_SB_OFF_BLOCKNR && val != l->block) {
		xl_add(out, XA_BAD, "BAD, this is block %llu", (unsigned long long)l->block);
	} else if (row->offset == TM_SB_OFF_FLAGS && val) {
		xl_add(out, (val & ~1ull) ? XA_BAD : XA_CHG, "%s%s",
		       (val & TM_SB_FLAG_NEEDS_CHECK) ? "NEEDS_CHECK" : "",
		       (val & ~1ull) ? " unknown bits" : "");
	} else if (row->offset == TM_SB_OFF_DATA_BLOCK_SIZE) {
		xl_add(out, XA_NORMAL, "%llu KiB", (unsigned long long)val / 2);
	} else if (f->ref && f->ref != TM_REF_SELF) {
		if (!val)
			xl_add(out, XA_DIM, "%s", l->snap && row->offset >= TM_SB_OFF_DATA_SM &&
					       row->offset < TM_SB_OFF_MAPPING_ROOT ?
					       "zeroed in a snapshot copy" : "none");
		else if (val >= tm_bm_nr_blocks(x->bm))
			xl_add(out, XA_BAD, "past the device end");
		else
			xl_add(out, XA_PTR, "%s", tm_fref_name(f->ref));
	}
}

static enum tm_tree tree_of_ref(enum tm_fref ref)
{
	switch (ref) {
	case TM_REF_TOP_ROOT: return TM_TREE_TOP;
	case TM_REF_DETAILS_ROOT: return TM_TREE_DETAILS;
	case TM_REF_DATA_INDEX_ROOT: return TM_TREE_DATA_INDEX;
	case TM_REF_META_REFCOUNT: return TM_TREE_META_RC;
	case TM_REF_DATA_REFCOUNT: return TM_TREE_DATA_RC;
	default: return TM_TREE_NONE;
	}
}

static int super_enter(struct xp *x, struct xp_loc *l)
{
	struct sb_priv *p = l->priv;

	if (l->sel >= p->n) {
		switch (l->sel - p->n) {
		case 0: return xp_push(x, xp_loc_new(XP_DEVICES, l->snap));
		case 1: return xp_push(x, xp_loc_new(XP_SPACEMAPS, 0));
		default: return xp_cmd(x, XC_DIFF);
		}
	}
	const struct sb_row *row = &p->rows[l->sel];
	uint64_t val = tm_field_get(row->f, p->buf + row->offset - row->f->offset);

	if (!row->f->ref || row->f->ref == TM_REF_SELF) {
		xp_set_status(x, 1, "%s is not a pointer", row->name);
		return -1;
	}
	if (!val) {
		xp_set_status(x, 1, "%s is 0: it points nowhere", row->name);
		return -1;
	}
	if (val >= tm_bm_nr_blocks(x->bm)) {
		xp_set_status(x, 1, "%s %llu is past the end of the metadata device (%llu blocks)",
			      row->name, (unsigned long long)val,
			      (unsigned long long)tm_bm_nr_blocks(x->bm));
		return -1;
	}
	switch (row->f->ref) {
	case TM_REF_SUPERBLOCK:
		return xp_push(x, xp_loc_new(XP_SUPER, 1));
	case TM_REF_META_INDEX:
		return xp_open_hex(x, l->snap, val, TM_LAYOUT_INDEX, NULL);
	default:
		return xp_open_node(x, l->snap, val, tree_of_ref(row->f->ref), UINT64_MAX,
				    NULL, NULL, 0, 1, -1);
	}
}

static void super_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	struct sb_priv *p = l->priv;
	(void)x;
	if (l->sel >= p->n) {
		snprintf(buf, n, " Enter opens it");
		return;
	}
	const struct sb_row *row = &p->rows[l->sel];
	snprintf(buf, n, " @%u %s %u bytes: %s", row->offset,
		 row->f->type == TM_FT_U32 ? "u32" : row->f->type == TM_FT_U64 ? "u64" : "bytes",
		 row->f->size, row->f->doc);
}

const struct xp_view_ops xp_super_ops = {
	.name = "superblock", .open = super_open, .title = super_title, .head = super_head,
	.count = super_count, .line = super_line, .enter = super_enter, .info = super_info,
};

/* ------------------------------------------------------------------ */
/* Devices */

static int devices_open(struct xp *x, struct xp_loc *l)
{
	xp_load_devices(x, l->snap);
	/* exclusive / shared need a walk of every tree: done once, here */
	if (!xp_load_counts(x, l->snap) || !xp_vs(x, l->snap)->devs_ok)
		return 0;
	xp_set_status(x, 1, "exclusive/shared counts: %s", xp_vs(x, l->snap)->counts_err.msg);
	return 0;
}

static void devices_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, "devices  of the %s", l->snap ? "held snapshot" : "live metadata");
}

static unsigned devices_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			     unsigned max, unsigned width)
{
	(void)x;
	(void)l;
	if (!max)
		return 0;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_LABEL, "%8s %10s %8s %7s %7s %10s %10s", "dev", "mapped", "trans",
	       "created", "snapped", "exclusive", "shared");
	if (width >= 90)
		xl_add(&lines[0], XA_LABEL, " %10s", "root");
	return 1;
}

static uint64_t devices_count(struct xp *x, struct xp_loc *l)
{
	struct xp_viewset *v = xp_vs(x, l->snap);

	if (xp_load_devices(x, l->snap))
		return 1;	/* the error */
	return v->nr_devs;
}

static void devices_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
			 unsigned width)
{
	struct xp_viewset *v = xp_vs(x, l->snap);
	char ex[24] = "?", sh[24] = "?";

	xl_clear(out);
	if (xp_load_devices(x, l->snap)) {
		xl_add(out, XA_BAD, "cannot list the devices: %s", v->devs_err.msg);
		return;
	}
	const struct tm_device *d = &v->devs[i];
	if (v->counts_ok) {
		snprintf(ex, sizeof(ex), "%llu",
			 (unsigned long long)(v->counts[i].mapped - v->counts[i].shared));
		snprintf(sh, sizeof(sh), "%llu", (unsigned long long)v->counts[i].shared);
	}
	xl_add(out, XA_PTR, "%8llu", (unsigned long long)d->dev_id);
	xl_add(out, XA_NORMAL, " %10llu %8llu %7u %7u %10s %10s",
	       (unsigned long long)d->details.mapped_blocks,
	       (unsigned long long)d->details.transaction_id, d->details.creation_time,
	       d->details.snapshotted_time, ex, sh);
	if (v->counts_ok && v->counts[i].mapped != d->details.mapped_blocks)
		xl_set_attr(out, 9, 20, XA_BAD);
	if (width >= 90)
		xl_add(out, XA_DIM, " %10llu", (unsigned long long)d->mapping_root);
}

static int devices_enter(struct xp *x, struct xp_loc *l)
{
	struct xp_viewset *v = xp_vs(x, l->snap);

	if (xp_load_devices(x, l->snap)) {
		if (v->devs_err.block != TM_NO_BLOCK)
			return xp_open_block(x, v->devs_err.block);
		return -1;
	}
	if (l->sel >= v->nr_devs)
		return -1;
	return xp_open_mappings(x, l->snap, v->devs[l->sel].dev_id, 0, 0);
}

static void devices_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	struct xp_viewset *v = xp_vs(x, l->snap);

	if (xp_load_devices(x, l->snap) || l->sel >= v->nr_devs) {
		snprintf(buf, n, " Enter opens the block that failed");
		return;
	}
	const struct tm_device *d = &v->devs[l->sel];
	snprintf(buf, n, " device %llu: tree root %llu%s; Enter mappings, t tree, v DEV VBLOCK",
		 (unsigned long long)d->dev_id, (unsigned long long)d->mapping_root,
		 v->counts_ok && v->counts[l->sel].mapped != d->details.mapped_blocks ?
		 " - its tree holds a different number of mappings" : "");
	if (v->counts_ok && v->counts[l->sel].mapped != d->details.mapped_blocks) {
		size_t len = strlen(buf);
		snprintf(buf + len, n - len, " (%llu)",
			 (unsigned long long)v->counts[l->sel].mapped);
	}
}

const struct xp_view_ops xp_devices_ops = {
	.name = "devices", .open = devices_open, .title = devices_title, .head = devices_head,
	.count = devices_count, .line = devices_line, .enter = devices_enter,
	.info = devices_info,
};

/* ------------------------------------------------------------------ */
/* Space maps: rows are computed from the index, not stored */

enum sm_row { SMR_TITLE, SMR_INDEX, SMR_REFCOUNT, SMR_BITMAP, SMR_ERROR };

static uint64_t sm_rows(struct xp *x, int data)
{
	if (data ? !x->dsm_ok : !x->msm_ok)
		return 2;
	return 3 + (data ? x->dsm.nr_bitmaps : x->msm.nr_bitmaps);
}

static enum sm_row sm_classify(struct xp *x, uint64_t i, int *data, uint64_t *nr)
{
	uint64_t m = sm_rows(x, 0);

	*data = i >= m;
	if (*data)
		i -= m;
	int ok = *data ? x->dsm_ok : x->msm_ok;
	*nr = 0;
	if (i == 0)
		return SMR_TITLE;
	if (!ok)
		return SMR_ERROR;
	if (i == 1)
		return SMR_INDEX;
	if (i == 2)
		return SMR_REFCOUNT;
	*nr = i - 3;
	return SMR_BITMAP;
}

static int spacemaps_open(struct xp *x, struct xp_loc *l)
{
	(void)l;
	xp_load_space_maps(x);
	return 0;
}

static void spacemaps_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	(void)l;
	snprintf(buf, n, "space maps  (live)");
}

static uint64_t spacemaps_count(struct xp *x, struct xp_loc *l)
{
	(void)l;
	return sm_rows(x, 0) + sm_rows(x, 1);
}

static void spacemaps_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
			   unsigned width)
{
	int data;
	uint64_t nr;
	const struct tm_sm_root *root;
	const struct tm_sm_disk *sm;
	(void)l;
	(void)width;

	xl_clear(out);
	enum sm_row k = sm_classify(x, i, &data, &nr);
	sm = data ? &x->dsm : &x->msm;
	root = data ? &x->vs[0].view.sb.data_sm : &x->vs[0].view.sb.meta_sm;
	switch (k) {
	case SMR_TITLE:
		xl_add(out, XA_HEAD, "%s space map: %llu blocks, %llu allocated",
		       data ? "data" : "metadata", (unsigned long long)root->nr_blocks,
		       (unsigned long long)root->nr_allocated);
		break;
	case SMR_ERROR:
		xl_add(out, XA_BAD, "  %s", data ? x->dsm_err.msg : x->msm_err.msg);
		break;
	case SMR_INDEX:
		xl_add(out, XA_NORMAL, "  %-16s", data ? "index tree" : "index block");
		xl_add(out, XA_PTR, "%llu", (unsigned long long)root->bitmap_root);
		break;
	case SMR_REFCOUNT:
		xl_add(out, XA_NORMAL, "  %-16s", "ref-count tree");
		xl_add(out, XA_PTR, "%llu", (unsigned long long)root->ref_count_root);
		xl_add(out, XA_DIM, "   counts of 3 and more");
		break;
	case SMR_BITMAP: {
		const struct tm_index_entry *ie = &sm->index[nr];
		uint64_t first = nr * TM_ENTRIES_PER_BITMAP;
		uint64_t last = first + TM_ENTRIES_PER_BITMAP - 1;
		if (last >= root->nr_blocks)
			last = root->nr_blocks - 1;
		xl_add(out, XA_NORMAL, "  bitmap %-7llu block ", (unsigned long long)nr);
		xl_add(out, XA_PTR, "%-8llu", (unsigned long long)ie->blocknr);
		xl_add(out, XA_NORMAL, " free %-6u first free >= %-6u  blocks %llu..%llu",
		       ie->nr_free, ie->none_free_before, (unsigned long long)first,
		       (unsigned long long)last);
		break;
	}
	}
}

static int spacemaps_enter(struct xp *x, struct xp_loc *l)
{
	int data;
	uint64_t nr;
	enum sm_row k = sm_classify(x, l->sel, &data, &nr);
	const struct tm_sm_root *root = data ? &x->vs[0].view.sb.data_sm :
				       &x->vs[0].view.sb.meta_sm;

	switch (k) {
	case SMR_INDEX:
		if (data)
			return xp_open_node(x, 0, root->bitmap_root, TM_TREE_DATA_INDEX,
					    UINT64_MAX, NULL, NULL, 0, 1, -1);
		return xp_open_hex(x, 0, root->bitmap_root, TM_LAYOUT_INDEX, NULL);
	case SMR_REFCOUNT:
		return xp_open_node(x, 0, root->ref_count_root,
				    data ? TM_TREE_DATA_RC : TM_TREE_META_RC,
				    UINT64_MAX, NULL, NULL, 0, 1, -1);
	case SMR_BITMAP:
		return xp_open_bitmap(x, data, nr, -1);
	case SMR_ERROR: {
		const struct tm_error *e = data ? &x->dsm_err : &x->msm_err;
		if (e->block != TM_NO_BLOCK && e->block < tm_bm_nr_blocks(x->bm))
			return xp_open_block(x, e->block);
		return -1;
	}
	default:
		xp_set_status(x, 1, "nothing to follow on a title row");
		return -1;
	}
}

static void spacemaps_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	int data;
	uint64_t nr;
	enum sm_row k = sm_classify(x, l->sel, &data, &nr);

	snprintf(buf, n, " %s",
		 k == SMR_BITMAP ? "Enter: the bitmap's counts; c: the count of any block" :
		 k == SMR_INDEX ? (data ? "Enter: the index tree" : "Enter: the index block in hex") :
		 k == SMR_REFCOUNT ? "Enter: the overflow tree (block -> count)" :
		 k == SMR_ERROR ? "Enter: the block that failed" : "c: the count of any block");
}

const struct xp_view_ops xp_spacemaps_ops = {
	.name = "space maps", .open = spacemaps_open, .title = spacemaps_title,
	.count = spacemaps_count, .line = spacemaps_line, .enter = spacemaps_enter,
	.info = spacemaps_info,
};

/* ------------------------------------------------------------------ */
/* Bitmap: 32 two-bit counts per row */

#define BM_PER_ROW 32u

static const struct tm_sm_disk *bitmap_sm(struct xp *x, struct xp_loc *l)
{
	return l->sm_data ? &x->dsm : &x->msm;
}

static int bitmap_open(struct xp *x, struct xp_loc *l)
{
	struct tm_error e;

	l->buf = malloc(TM_BLOCK_SIZE);
	if (!l->buf)
		return -1;
	tm_error_clear(&e);
	if (tm_bm_read(x->bm, l->block, &tm_bitmap_validator, l->buf, &e)) {
		xp_set_status(x, 1, "%s", e.msg);
		return -1;
	}
	if (l->entry_mark >= 0)
		l->sel = (uint64_t)l->entry_mark / BM_PER_ROW;
	return 0;
}

static void bitmap_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	snprintf(buf, n, "bitmap %llu  %s space map bitmap %llu", (unsigned long long)l->block,
		 l->sm_data ? "data" : "metadata", (unsigned long long)l->bitmap_nr);
}

/* Entries of this bitmap that lie inside the space map. */
static uint64_t bitmap_used(struct xp *x, struct xp_loc *l)
{
	uint64_t first = l->bitmap_nr * TM_ENTRIES_PER_BITMAP;
	uint64_t nr = bitmap_sm(x, l)->root.nr_blocks;

	if (nr <= first)
		return 0;
	return nr - first < TM_ENTRIES_PER_BITMAP ? nr - first : TM_ENTRIES_PER_BITMAP;
}

static unsigned bitmap_head(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			    unsigned max, unsigned width)
{
	uint64_t hist[4] = { 0 }, used = bitmap_used(x, l);
	(void)width;

	if (max < 2)
		return 0;
	for (uint32_t i = 0; i < used; i++)
		hist[tm_bitmap_get(l->buf, i)]++;
	xl_clear(&lines[0]);
	xl_add(&lines[0], XA_HEAD, "blocks %llu..%llu: %llu free, %llu x1, %llu x2, %llu x3+",
	       (unsigned long long)(l->bitmap_nr * TM_ENTRIES_PER_BITMAP),
	       (unsigned long long)(l->bitmap_nr * TM_ENTRIES_PER_BITMAP + (used ? used - 1 : 0)),
	       (unsigned long long)hist[0], (unsigned long long)hist[1],
	       (unsigned long long)hist[2], (unsigned long long)hist[3]);
	xl_clear(&lines[1]);
	xl_add(&lines[1], XA_LABEL, "%12s  %s", "block", "counts (. free, 1, 2, 3 = 3 or more)");
	return 2;
}

static uint64_t bitmap_count(struct xp *x, struct xp_loc *l)
{
	uint64_t used = bitmap_used(x, l);
	return used ? (used + BM_PER_ROW - 1) / BM_PER_ROW : 1;
}

static void bitmap_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
			unsigned width)
{
	uint64_t used = bitmap_used(x, l);
	(void)width;

	xl_clear(out);
	xl_add(out, XA_NORMAL, "%12llu  ",
	       (unsigned long long)(l->bitmap_nr * TM_ENTRIES_PER_BITMAP + i * BM_PER_ROW));
	for (uint32_t k = 0; k < BM_PER_ROW; k++) {
		uint32_t e = (uint32_t)i * BM_PER_ROW + k;
		if (k && !(k % 8))
			xl_add(out, XA_NORMAL, " ");
		if (e >= used) {
			xl_add(out, XA_DIM, " ");
			continue;
		}
		unsigned v = tm_bitmap_get(l->buf, e);
		xl_add(out, (int64_t)e == l->entry_mark ? XA_SELFIELD : v ? XA_NORMAL : XA_DIM,
		       "%c", v ? (char)('0' + v) : '.');
	}
}

static uint64_t bitmap_target(struct xp_loc *l)
{
	uint64_t e = l->entry_mark >= 0 && (uint64_t)l->entry_mark / BM_PER_ROW == l->sel ?
		     (uint64_t)l->entry_mark : l->sel * BM_PER_ROW;
	return l->bitmap_nr * TM_ENTRIES_PER_BITMAP + e;
}

static int bitmap_enter(struct xp *x, struct xp_loc *l)
{
	uint64_t b = bitmap_target(l);

	if (l->sm_data)
		return xp_open_refs(x, 1, b);
	if (b >= tm_bm_nr_blocks(x->bm))
		return -1;
	return xp_open_block(x, b);
}

static void bitmap_info(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	uint64_t b = bitmap_target(l);
	int64_t c = l->sm_data ? xp_data_count(x, b) : xp_meta_count(x, b);

	if (c < 0)
		snprintf(buf, n, " %s block %llu: count unreadable", l->sm_data ? "data" : "metadata",
			 (unsigned long long)b);
	else
		snprintf(buf, n, " %s block %llu: count %lld; Enter %s", l->sm_data ? "data" : "metadata",
			 (unsigned long long)b, (long long)c,
			 l->sm_data ? "finds who maps it" : "opens it");
}

const struct xp_view_ops xp_bitmap_ops = {
	.name = "bitmap", .open = bitmap_open, .title = bitmap_title, .head = bitmap_head,
	.count = bitmap_count, .line = bitmap_line, .enter = bitmap_enter, .info = bitmap_info,
};

int xp_open_bitmap(struct xp *x, int data, uint64_t nr, int64_t mark)
{
	xp_load_space_maps(x);
	const struct tm_sm_disk *sm = data ? &x->dsm : &x->msm;
	if (data ? !x->dsm_ok : !x->msm_ok) {
		xp_set_status(x, 1, "%s", data ? x->dsm_err.msg : x->msm_err.msg);
		return -1;
	}
	if (nr >= sm->nr_bitmaps) {
		xp_set_status(x, 1, "no bitmap %llu", (unsigned long long)nr);
		return -1;
	}
	struct xp_loc *l = xp_loc_new(XP_BITMAP, 0);
	if (!l)
		return -1;
	l->sm_data = data;
	l->bitmap_nr = nr;
	l->block = sm->index[nr].blocknr;
	l->entry_mark = mark;
	return xp_push(x, l);
}

/* ------------------------------------------------------------------ */
/* Help */

static const char *const help_lines[] = {
	"Moving",
	"  j  Down  Ctrl-N        next row",
	"  k  Up  Ctrl-P          previous row",
	"  Space  f  PgDn  Ctrl-F next page",
	"  b  PgUp  Ctrl-B        previous page",
	"  <  Home                first row",
	"  >  G  End              last row",
	"  /TEXT                  search the list (mappings: a virtual block)",
	"  n  N                   repeat the search forward / backward",
	"Going places",
	"  Enter  l  Right        follow the selected pointer",
	"  h  Backspace  Left     back to the previous location",
	"  g BLOCK                go to a metadata block (opened as what it is)",
	"  v [DEV] VBLOCK         find a virtual block of a device",
	"  ]  [                   next / previous node on the same tree level",
	"  L                      locate a node opened by number in its tree",
	"  t                      the selected device's mapping tree root",
	"  s                      the superblock",
	"  d                      the devices",
	"  S                      the space maps",
	"  c [d] BLOCK            the reference count of a metadata (d: data) block",
	"  r                      who references this block (a mapping: its data block)",
	"  R DATA_BLOCK           who maps a data block",
	"Looking",
	"  x                      this block in hex, its fields marked (x again: back)",
	"  Tab  .  /  Shift-Tab  ,    hex: next / previous field",
	"  m                      switch between the live metadata and the held snapshot",
	"  D                      the held snapshot beside the live metadata",
	"  Ctrl-L                 redraw",
	"  ?                      this list (again: back)      q  quit",
	"",
	"Damage is shown, not fatal: a block that fails its checks opens in hex with",
	"the problem in the status line.  The metadata is only ever read.",
};

static void help_title(struct xp *x, struct xp_loc *l, char *buf, size_t n)
{
	(void)x;
	(void)l;
	snprintf(buf, n, "keys");
}

static uint64_t help_count(struct xp *x, struct xp_loc *l)
{
	(void)x;
	(void)l;
	return sizeof(help_lines) / sizeof(help_lines[0]);
}

static void help_line(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		      unsigned width)
{
	(void)x;
	(void)l;
	(void)width;
	xl_clear(out);
	xl_add(out, help_lines[i][0] == ' ' || !help_lines[i][0] ? XA_NORMAL : XA_HEAD, "%s",
	       help_lines[i]);
}

const struct xp_view_ops xp_help_ops = {
	.name = "keys", .title = help_title, .count = help_count, .line = help_line,
};
