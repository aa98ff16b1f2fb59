/*
 * views.h - inside the explorer's model: the session, the table of views
 * and the helpers they share.  Only tui/model.c and tui/view_*.c include it.
 */
#ifndef THINMETA_TUI_VIEWS_H
#define THINMETA_TUI_VIEWS_H

#include "model.h"
#include "thinmeta/ls.h"
#include "thinmeta/space_map.h"

/* One set of roots: the live superblock's or the held snapshot's. */
struct xp_viewset {
	int present;		/* live: always; snapshot: a held root is named */
	int ok;			/* the superblock validated */
	struct tm_view view;	/* decoded even when damaged */
	struct tm_error err;
	/* the device list, loaded on first use */
	int devs_loaded, devs_ok;
	struct tm_device *devs;
	uint64_t nr_devs;
	struct tm_error devs_err;
	/* exclusive / shared counts, on first use */
	int counts_loaded, counts_ok;
	struct tm_ls_counts *counts;
	struct tm_error counts_err;
};

struct xp {
	struct tm_dev *dev;
	struct tm_bm *bm;
	char name[256];
	struct xp_viewset vs[2];
	struct xp_loc *stack[XP_STACK_MAX];
	unsigned depth;
	unsigned rows, cols;
	char status[512];
	int status_bad;
	char search[128];
	/* the live space maps, on first use */
	int sm_loaded;
	int msm_ok, dsm_ok;
	struct tm_sm_disk msm, dsm;
	struct tm_error msm_err, dsm_err;
};

struct xp_view_ops {
	const char *name;
	/* Load what the view needs; on failure set the status and return < 0. */
	int (*open)(struct xp *x, struct xp_loc *l);
	void (*title)(struct xp *x, struct xp_loc *l, char *buf, size_t n);
	/* Fixed lines above the list; returns how many (at most @max). */
	unsigned (*head)(struct xp *x, struct xp_loc *l, struct xp_line *lines,
			 unsigned max, unsigned width);
	uint64_t (*count)(struct xp *x, struct xp_loc *l);
	void (*line)(struct xp *x, struct xp_loc *l, uint64_t i, struct xp_line *out,
		     unsigned width);
	int (*enter)(struct xp *x, struct xp_loc *l);
	void (*info)(struct xp *x, struct xp_loc *l, char *buf, size_t n);
	/* Keyed views move themselves (the list is the page); NULL: indexed. */
	int (*move)(struct xp *x, struct xp_loc *l, enum xp_cmd c, unsigned rows);
	void (*free)(struct xp_loc *l);
};

extern const struct xp_view_ops xp_super_ops, xp_devices_ops, xp_mappings_ops,
	xp_node_ops, xp_spacemaps_ops, xp_bitmap_ops, xp_hex_ops, xp_refs_ops,
	xp_diff_ops, xp_mapdiff_ops, xp_help_ops;

const struct xp_view_ops *xp_ops(enum xp_kind k);

/* ---- lines ---- */
void xl_clear(struct xp_line *l);
unsigned xl_len(const struct xp_line *l);
/* Append formatted text in attribute @a. */
void xl_add(struct xp_line *l, enum xp_attr a, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Pad with spaces to column @col. */
void xl_pad(struct xp_line *l, unsigned col);
void xl_set_attr(struct xp_line *l, unsigned from, unsigned to, enum xp_attr a);

/* ---- session helpers ---- */
struct xp_loc *xp_loc_new(enum xp_kind kind, int snap);
/* Open @l and push it; on failure push the hex view of its block instead. */
int xp_push(struct xp *x, struct xp_loc *l);
struct xp_viewset *xp_vs(struct xp *x, int snap);
int xp_load_devices(struct xp *x, int snap);
int xp_load_counts(struct xp *x, int snap);
void xp_load_space_maps(struct xp *x);
/* The device @dev of a view, or NULL. */
const struct tm_device *xp_find_device(struct xp *x, int snap, uint64_t dev);
/* Rows for the list of @l at the current size. */
unsigned xp_body_rows(struct xp *x, struct xp_loc *l);

/* Opening places: the status line says what went wrong. */
int xp_open_node(struct xp *x, int snap, uint64_t block, enum tm_tree tree, uint64_t dev,
		 const uint64_t *path, const uint32_t *pidx, unsigned depth, int place_known,
		 int64_t select);
int xp_open_hex(struct xp *x, int snap, uint64_t block, enum tm_layout kind,
		const struct tm_error *why);
int xp_open_mappings(struct xp *x, int snap, uint64_t dev, int at_key, uint64_t key);
int xp_open_bitmap(struct xp *x, int data, uint64_t nr, int64_t mark);
int xp_open_refs(struct xp *x, int data, uint64_t target);
/* Find a cold node's tree and path (a reference search); sets the status. */
int xp_locate(struct xp *x, struct xp_loc *l);
/* Open a block as what it identifies as (node, bitmap, superblock...). */
int xp_open_block(struct xp *x, uint64_t block);

/* Hex: the selection follows row moves; Tab moves between fields. */
void xp_hex_moved(struct xp_loc *l);
int xp_hex_field(struct xp *x, struct xp_loc *l, int dir);

/* A metadata block's count in the live metadata space map; -1 if unknown. */
int64_t xp_meta_count(struct xp *x, uint64_t b);
int64_t xp_data_count(struct xp *x, uint64_t b);

#endif
