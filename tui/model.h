/*
 * model.h - thin_explore's navigation model, without a terminal.
 *
 * A session (struct xp) holds the metadata device open read-only, the live
 * view and the held metadata snapshot's view, and a stack of locations.  A
 * location is one view (superblock, devices, a device's mappings, a btree
 * node, the space maps, a bitmap, a block in hex, reference search
 * results, the snapshot/live difference, help) with its own selection and
 * scroll position, so going back restores where one was.
 *
 * The model turns commands (xp_cmd, xp_goto_*, xp_search) into state and
 * renders the whole screen as text lines with an attribute per character
 * (xp_render).  tui/thin_explore.c only maps keys to commands and
 * attributes to curses; the unit tests drive the model directly.
 *
 * Nothing read is trusted: a block that fails validation where a view
 * needs it opens in the hex view with the problem in the status line.
 */
#ifndef THINMETA_TUI_MODEL_H
#define THINMETA_TUI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "thinmeta/block.h"
#include "thinmeta/btree.h"
#include "thinmeta/error.h"
#include "thinmeta/fields.h"
#include "thinmeta/metadata.h"
#include "thinmeta/refs.h"

#define XP_LINE_MAX	512	/* widest screen line rendered */
#define XP_STACK_MAX	64	/* locations kept; the oldest are dropped */
#define XP_MIN_ROWS	24
#define XP_MIN_COLS	80

enum xp_kind {
	XP_SUPER,	/* a superblock: every field, decoded and raw */
	XP_DEVICES,	/* the devices of a view */
	XP_MAPPINGS,	/* a device's mappings as runs */
	XP_NODE,	/* a btree node */
	XP_SPACEMAPS,	/* both space maps: roots and index entries */
	XP_BITMAP,	/* one space-map bitmap: counts */
	XP_HEX,		/* any block in hex, fields marked */
	XP_REFS,	/* who references a block */
	XP_DIFF,	/* devices: held snapshot beside live */
	XP_MAPDIFF,	/* one device: mappings that differ */
	XP_HELP,	/* every key */
	XP__KINDS
};

/* Attributes of rendered characters; the UI maps them to colours. */
enum xp_attr {
	XA_NORMAL = 0,
	XA_TITLE,	/* title bar */
	XA_HEAD,	/* fixed header lines of a view */
	XA_LABEL,	/* column labels */
	XA_PTR,		/* something Enter follows */
	XA_BAD,		/* damage, errors */
	XA_DIM,		/* unused slots, padding */
	XA_ADD,		/* only in live */
	XA_DEL,		/* only in the snapshot */
	XA_CHG,		/* differs */
	XA_FIELD1,	/* hex: alternate fields */
	XA_FIELD2,
	XA_SEL,		/* the selected row */
	XA_SELFIELD,	/* hex: the selected field */
	XA_STATUS,	/* status line */
	XA_STATUS_BAD,	/* status line with a problem */
	XA__COUNT
};

struct xp_line {
	char text[XP_LINE_MAX + 1];
	uint8_t attr[XP_LINE_MAX];
};

/* One mapping run (or one difference run in MAPDIFF). */
struct xp_run {
	uint64_t vbegin, len;
	uint64_t data;		/* first data block (live side in MAPDIFF) */
	uint32_t time;
	/* MAPDIFF */
	int in_snap, in_live;
	uint64_t sdata;
	uint32_t stime;
	/* a row standing for an error: the block that failed */
	int bad;
	uint64_t bad_block;
};

struct xp_ref_list {
	struct tm_ref *refs;	/* path pointers are not kept */
	uint64_t (*paths)[TM_BTREE_MAX_DEPTH];
	uint32_t (*pidx)[TM_BTREE_MAX_DEPTH];
	size_t n, cap;
	int truncated;
	struct tm_refs_stats stats;
};

struct xp_loc {
	enum xp_kind kind;
	int snap;		/* 0: live metadata, 1: the held snapshot */
	uint64_t block;		/* node, hex, bitmap, superblock block */
	uint64_t dev;		/* mappings, mapdiff; node of a device tree */
	/* a node's place: its tree and the nodes above it */
	enum tm_tree tree;
	unsigned depth;		/* ancestors known (path[0] is the tree's root) */
	int place_known;	/* 0: opened cold, place not located yet */
	uint64_t path[TM_BTREE_MAX_DEPTH];
	uint32_t pidx[TM_BTREE_MAX_DEPTH];
	/* hex */
	enum tm_layout hex_kind;
	uint32_t hex_off;	/* selected field's first byte */
	int bad;		/* the block failed validation */
	/* bitmap */
	int sm_data;		/* bitmap of the data space map */
	uint64_t bitmap_nr;	/* which bitmap */
	int64_t entry_mark;	/* highlighted entry (-1 none) */
	/* refs */
	int refs_data;		/* searched for a data block */
	uint64_t refs_target;
	struct xp_ref_list *refs;
	/* lists */
	uint64_t sel, top;	/* indexed views; keyed views: sel within the page */
	/* keyed views (mappings, mapdiff): the page starts at page_key */
	uint64_t page_key;
	int page_valid;
	struct xp_run *page;
	unsigned page_n, page_cap;
	int page_end;		/* the page reaches the last run */
	uint64_t *history;	/* mapdiff: earlier page keys */
	size_t hist_n, hist_cap;
	/* a node's key range, from its parent */
	int range_known;
	uint64_t key_lo, key_hi;	/* [lo, hi) */
	int key_hi_open;
	uint8_t *buf;		/* node, bitmap, hex: the block's bytes */
	void *priv;		/* view-private state */
};

struct xp;

/* Open @path read-only; *@out owns the device.  Errors name the file. */
int xp_open(const char *path, int start_snapshot, struct xp **out, struct tm_error *e);
/* The same on a device the caller opened (tests: in-memory); takes it. */
int xp_open_dev(struct tm_dev *dev, const char *name, int start_snapshot,
		struct xp **out, struct tm_error *e);
void xp_close(struct xp *x);

void xp_resize(struct xp *x, unsigned rows, unsigned cols);
/* The screen, xp_rows() lines of xp_cols() characters each. */
void xp_render(struct xp *x, struct xp_line *lines);
unsigned xp_rows(const struct xp *x);
unsigned xp_cols(const struct xp *x);

enum xp_cmd {
	XC_UP, XC_DOWN, XC_PGUP, XC_PGDN, XC_HOME, XC_END,
	XC_ENTER,		/* follow the selection */
	XC_BACK,		/* pop the location stack */
	XC_NEXT_SIB, XC_PREV_SIB,	/* next / previous node at this level */
	XC_NEXT_FIELD, XC_PREV_FIELD,	/* hex: move between fields */
	XC_HEX,			/* the current block in hex (again: back) */
	XC_SWITCH,		/* live <-> held snapshot */
	XC_SUPER, XC_DEVICES, XC_SPACEMAPS, XC_DIFF, XC_HELP,
	XC_TREE,		/* devices / mappings: the device's tree root node */
	XC_REFS,		/* who references the current / selected block */
	XC_LOCATE,		/* find the current node's place in its tree */
	XC_SEARCH_NEXT, XC_SEARCH_PREV,
};
/* 0, or -1 when the command does not apply (the status line says why). */
int xp_cmd(struct xp *x, enum xp_cmd c);

/* Prompted commands; @text is what the user typed. */
int xp_goto_block(struct xp *x, const char *text);	/* g */
int xp_goto_vblock(struct xp *x, const char *text);	/* v: "VBLOCK" in a device, or "DEV VBLOCK" */
int xp_data_refs(struct xp *x, const char *text);	/* R: who maps data block */
int xp_count(struct xp *x, const char *text);		/* c: count of a block */
int xp_search(struct xp *x, const char *text, int backward);	/* / and ? */
/* -p: a node path as 1.1.0's thin_check prints it; -b: a block. */
int xp_open_node_path(struct xp *x, const char *text);

/* What the prompt of a prompted command says in the current view. */
const char *xp_prompt(struct xp *x, int key);

/* State, for the UI and tests. */
const struct xp_loc *xp_top(const struct xp *x);
unsigned xp_depth(const struct xp *x);
const char *xp_status(const struct xp *x);
int xp_status_bad(const struct xp *x);
int xp_has_snapshot(const struct xp *x);
void xp_set_status(struct xp *x, int bad, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The text of body row @i of the current view (tests; "" past the end). */
void xp_row_text(struct xp *x, uint64_t i, char *buf, size_t n);
uint64_t xp_row_count(struct xp *x);
const char *xp_kind_name(enum xp_kind k);

#endif
