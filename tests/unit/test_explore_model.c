/*
 * test_explore_model.c - thin_explore's navigation model without a
 * terminal: views, the location stack, selections and paging, driven by
 * commands on the kernel fixtures (in memory, so tests can damage them),
 * with what the screen would show read back from the rendered lines.
 *
 * Expected numbers come from the fixtures' 1.1.0 outputs
 * (fixtures/kernel/NAME.txt, NAME.dump.xml): thin_ls exclusive/shared
 * counts, the devices and mappings of thin_dump.
 */
#include <errno.h>

#include "unit_util.h"
#include "model.h"
#include "thinmeta/cursor.h"
#include "thinmeta/metadata.h"
#include "thinmeta/node_path.h"

static struct xp *x;
static struct tm_error err;

static struct tm_dev *load_dev(const char *name)
{
	const char *path = fixture(name);
	struct tm_dev *dev;
	FILE *f;

	if (!path) {
		fprintf(stderr, "%s: THINMETA_FIXTURES not set, skipped\n", name);
		return NULL;
	}
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	ck_assert_int_eq(tm_dev_mem_create((uint64_t)size / TM_BLOCK_SIZE, &dev), 0);
	ck_assert_uint_eq(fread(tm_dev_mem_data(dev), 1, (size_t)size, f), (size_t)size);
	fclose(f);
	return dev;
}

static int open_fixture(const char *name, int snap)
{
	struct tm_dev *dev = load_dev(name);

	if (!dev)
		return 0;
	tm_error_clear(&err);
	ck_assert_int_eq(xp_open_dev(dev, name, snap, &x, &err), 0);
	return 1;
}

static void close_fixture(void)
{
	xp_close(x);
	x = NULL;
}

static const char *row(uint64_t i)
{
	static char buf[XP_LINE_MAX + 1];
	xp_row_text(x, i, buf, sizeof(buf));
	return buf;
}

/* The screen as text, and whether some line contains @s. */
static int screen_has(const char *s)
{
	struct xp_line lines[80];
	ck_assert_uint_le(xp_rows(x), 80);
	xp_render(x, lines);
	for (unsigned i = 0; i < xp_rows(x); i++)
		if (strstr(lines[i].text, s))
			return 1;
	return 0;
}

static void screen_fits(void)
{
	struct xp_line lines[80];
	xp_render(x, lines);
	for (unsigned i = 0; i < xp_rows(x); i++)
		ck_assert_uint_le(strlen(lines[i].text), xp_cols(x));
}

/* The run selected in a mappings view (its page filled first). */
static const struct xp_run *sel_run(void)
{
	ck_assert_uint_gt(xp_row_count(x), 0);
	return &xp_top(x)->page[xp_top(x)->sel];
}

/* Select the row whose text contains @s. */
static void select_row(const char *s)
{
	ck_assert_msg(!xp_search(x, s, 0), "no row with '%s'", s);
}

START_TEST(opens_on_the_superblock)
{
	if (!open_fixture("03-msnap-held.meta.img", 0))
		return;
	const struct xp_loc *l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_SUPER);
	ck_assert_int_eq(l->snap, 0);
	ck_assert_uint_eq(xp_depth(x), 1);
	ck_assert(xp_has_snapshot(x));
	ck_assert(screen_has("superblock 0"));
	ck_assert(screen_has("[live]"));
	ck_assert(screen_has("held_root"));
	ck_assert(screen_has("80"));
	ck_assert(!xp_status_bad(x));
	screen_fits();
	/* back at the bottom of the stack: refused, the stack stays */
	ck_assert_int_eq(xp_cmd(x, XC_BACK), -1);
	ck_assert_uint_eq(xp_depth(x), 1);
	close_fixture();

	/* -m */
	if (!open_fixture("03-msnap-held.meta.img", 1))
		return;
	ck_assert_int_eq(xp_top(x)->snap, 1);
	ck_assert_uint_eq(xp_top(x)->block, 80);
	ck_assert(screen_has("[held snapshot @80]"));
	close_fixture();
	/* -m without a held snapshot: live, and the status says why */
	if (!open_fixture("02-thins-snaps.meta.img", 1))
		return;
	ck_assert_int_eq(xp_top(x)->snap, 0);
	ck_assert(strstr(xp_status(x), "no metadata snapshot"));
	close_fixture();
}
END_TEST

START_TEST(devices_and_their_counts)
{
	if (!open_fixture("03-msnap-held.meta.img", 0))
		return;
	ck_assert_int_eq(xp_cmd(x, XC_DEVICES), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_DEVICES);
	ck_assert_uint_eq(xp_row_count(x), 5);
	/* thin_ls 1.1.0 on this image: DEV MAPPED EXCLUSIVE SHARED */
	static const char *const want[][4] = {
		{ "0", "348", "21", "327" }, { "1", "24", "0", "24" }, { "2", "8", "8", "0" },
		{ "10", "332", "5", "327" }, { "11", "24", "0", "24" },
	};
	for (unsigned i = 0; i < 5; i++) {
		char dev[16], mapped[16], trans[16], c[16], s[16], ex[16], sh[16];
		ck_assert_int_eq(sscanf(row(i), "%15s %15s %15s %15s %15s %15s %15s", dev, mapped,
					trans, c, s, ex, sh), 7);
		ck_assert_str_eq(dev, want[i][0]);
		ck_assert_str_eq(mapped, want[i][1]);
		ck_assert_str_eq(ex, want[i][2]);
		ck_assert_str_eq(sh, want[i][3]);
	}
	/* the held snapshot has three */
	ck_assert_int_eq(xp_cmd(x, XC_SWITCH), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_DEVICES);
	ck_assert_int_eq(xp_top(x)->snap, 1);
	ck_assert_uint_eq(xp_row_count(x), 3);
	ck_assert(screen_has("[held snapshot @80]"));
	ck_assert_int_eq(xp_cmd(x, XC_BACK), 0);
	ck_assert_int_eq(xp_top(x)->snap, 0);
	close_fixture();
}
END_TEST

/* Every run of device @dev, straight from a cursor. */
static uint64_t count_runs(struct tm_bm *bm, uint64_t root)
{
	struct tm_cursor c;
	uint64_t runs = 0, pk = 0, pb = 0;
	uint32_t pt = 0;

	tm_cursor_init(&c, bm, root, 8);
	for (int r = tm_cursor_first(&c, &err); !r; r = tm_cursor_next(&c, &err)) {
		uint64_t k = tm_cursor_key(&c), v = tm_cursor_value64(&c);
		if (!runs || k != pk + 1 || tm_bt_block(v) != pb + 1 || tm_bt_time(v) != pt)
			runs++;
		pk = k;
		pb = tm_bt_block(v);
		pt = tm_bt_time(v);
	}
	return runs;
}

START_TEST(paging_through_mappings)
{
	struct tm_dev *dev = load_dev("02-thins-snaps.meta.img");
	if (!dev)
		return;
	/* the expected runs, from a cursor of our own on a second copy */
	struct tm_dev *dev2 = load_dev("02-thins-snaps.meta.img");
	struct tm_bm *bm2;
	struct tm_view v;
	struct tm_device *devs;
	uint64_t nr;
	ck_assert_int_eq(tm_bm_create(dev2, 0, &bm2), 0);
	ck_assert_int_eq(tm_view_live(bm2, &v, &err), 0);
	ck_assert_int_eq(tm_read_devices(bm2, &v, 0, &devs, &nr, &err), 0);
	uint64_t runs = count_runs(bm2, devs[0].mapping_root);
	ck_assert_uint_gt(runs, 100);	/* more than a screen */

	ck_assert_int_eq(xp_open_dev(dev, "02", 0, &x, &err), 0);
	ck_assert_int_eq(xp_cmd(x, XC_DEVICES), 0);
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	const struct xp_loc *l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_MAPPINGS);
	ck_assert_uint_eq(l->dev, 0);
	ck_assert(screen_has("device 0 mappings"));
	/* thin_dump 1.1.0: the first runs of device 0 */
	ck_assert(strstr(row(0), "0..3") && strstr(row(0), "368..371"));

	/* down, one row at a time, to the end: every run once, in order */
	char first[XP_LINE_MAX + 1], prev[XP_LINE_MAX + 1] = "";
	snprintf(first, sizeof(first), "%s", row(0));
	uint64_t seen = 1, last_key = 0;
	for (;;) {
		uint64_t before = l->page_key + l->sel;
		xp_cmd(x, XC_DOWN);
		if (l->page_key + l->sel == before)
			break;
		ck_assert_uint_gt(l->page[l->sel].vbegin, last_key);
		last_key = l->page[l->sel].vbegin;
		seen++;
	}
	ck_assert_uint_eq(seen, runs);
	snprintf(prev, sizeof(prev), "%s", row(l->sel));
	/* and up again, to the first */
	for (uint64_t i = 1; i < runs; i++)
		xp_cmd(x, XC_UP);
	ck_assert_uint_eq(l->page[l->sel].vbegin, 0);
	ck_assert_str_eq(row(l->sel), first);
	/* End and Home */
	xp_cmd(x, XC_END);
	ck_assert_str_eq(row(l->sel), prev);
	xp_cmd(x, XC_HOME);
	ck_assert_uint_eq(l->page_key, 0);
	ck_assert_uint_eq(l->sel, 0);
	/* a page down and back up lands where it was */
	xp_cmd(x, XC_DOWN);
	uint64_t at = l->page[l->sel].vbegin;
	xp_cmd(x, XC_PGDN);
	ck_assert_uint_gt(l->page[l->sel].vbegin, at);
	xp_cmd(x, XC_PGUP);
	ck_assert_uint_eq(l->page[l->sel].vbegin, at);
	/* more rows: a bigger page */
	xp_resize(x, 50, 120);
	xp_row_count(x);
	ck_assert_uint_eq(xp_row_count(x), 50 - 6 + 1);
	screen_fits();
	/* the last row selected, then fewer rows: it stays on screen */
	for (int i = 0; i < 60; i++)
		xp_cmd(x, XC_DOWN);
	at = sel_run()->vbegin;
	ck_assert_uint_eq(xp_top(x)->sel, 50 - 6 - 1);
	xp_resize(x, 24, 80);
	ck_assert_uint_eq(sel_run()->vbegin, at);
	ck_assert_uint_eq(xp_top(x)->sel, 24 - 6 - 1);
	screen_fits();

	free(devs);
	tm_bm_destroy(bm2);
	tm_dev_close(dev2);
	close_fixture();
}
END_TEST

START_TEST(virtual_blocks_and_nodes)
{
	if (!open_fixture("02-thins-snaps.meta.img", 0))
		return;
	/* v DEV VBLOCK: the run holding it */
	ck_assert_int_eq(xp_goto_vblock(x, "0 300"), 0);
	const struct xp_loc *l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_MAPPINGS);
	ck_assert(strstr(xp_status(x), "vblock 300 -> data block 202"));
	ck_assert_uint_eq(sel_run()->vbegin, 300);
	/* not mapped: the next one */
	ck_assert_int_eq(xp_goto_vblock(x, "301"), 0);
	ck_assert(strstr(xp_status(x), "301 is not mapped; the next mapped one is 302"));
	ck_assert_int_eq(xp_goto_vblock(x, "7 1"), -1);
	ck_assert(strstr(xp_status(x), "no device 7"));
	ck_assert_int_eq(xp_goto_vblock(x, "x"), -1);

	/* Enter: the leaf holding the run, its place known */
	ck_assert_int_eq(xp_goto_vblock(x, "0 300"), 0);
	unsigned depth = xp_depth(x);
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_NODE);
	ck_assert_uint_eq(l->block, 95);
	ck_assert(l->place_known);
	ck_assert_int_eq(l->tree, TM_TREE_BOTTOM);
	ck_assert_uint_eq(l->dev, 0);
	ck_assert_uint_eq(l->depth, 1);
	ck_assert_uint_eq(l->path[0], 112);
	ck_assert(strstr(row(l->sel), "300") && strstr(row(l->sel), "202"));
	ck_assert(screen_has("refcount 2 (shared)"));
	ck_assert(screen_has("path 112[1] > 95"));
	/* siblings: the previous leaf, then none before it */
	ck_assert_int_eq(xp_cmd(x, XC_PREV_SIB), 0);
	ck_assert_uint_eq(xp_top(x)->block, 114);
	ck_assert_uint_eq(xp_depth(x), depth + 1);	/* siblings replace */
	ck_assert_int_eq(xp_cmd(x, XC_PREV_SIB), -1);
	ck_assert(strstr(xp_status(x), "first node at its level"));
	ck_assert_int_eq(xp_cmd(x, XC_NEXT_SIB), 0);
	ck_assert_uint_eq(xp_top(x)->block, 95);
	/* back to the mappings, the selection where it was */
	ck_assert_int_eq(xp_cmd(x, XC_BACK), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_MAPPINGS);
	ck_assert_uint_eq(sel_run()->vbegin, 300);
	close_fixture();
}
END_TEST

START_TEST(following_pointers)
{
	if (!open_fixture("02-thins-snaps.meta.img", 0))
		return;
	/* superblock -> mapping tree top level -> a device's tree */
	select_row("data_mapping_root");
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	const struct xp_loc *l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_NODE);
	ck_assert_uint_eq(l->block, 138);
	ck_assert_int_eq(l->tree, TM_TREE_TOP);
	ck_assert_uint_eq(xp_row_count(x), 5);
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);	/* device 0 */
	l = xp_top(x);
	ck_assert_int_eq(l->tree, TM_TREE_BOTTOM);
	ck_assert_uint_eq(l->dev, 0);
	ck_assert_uint_eq(l->block, 112);
	ck_assert(!(tm_le32(l->buf + TM_NODE_OFF_FLAGS) & TM_NODE_LEAF));
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);	/* its first leaf */
	ck_assert_uint_eq(xp_top(x)->block, 114);
	ck_assert_uint_eq(xp_top(x)->depth, 1);
	/* x: the same block in hex; x again: back */
	ck_assert_int_eq(xp_cmd(x, XC_HEX), 0);
	l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_HEX);
	ck_assert_uint_eq(l->block, 114);
	ck_assert(screen_has("checksum ok"));
	ck_assert(screen_has("@0x000 csum"));
	/* the marks: csum selected, flags and blocknr in alternate attributes */
	{
		struct xp_line lines[24];
		unsigned r;
		xp_render(x, lines);
		for (r = 0; r < 24 && strncmp(lines[r].text, "0000  ", 6); r++)
			;
		ck_assert_uint_lt(r, 24);
		const uint8_t *a = lines[r].attr;	/* byte j of the row at column 6 + 3j */
		ck_assert_int_eq(a[6], XA_SELFIELD);	/* csum */
		ck_assert_int_eq(a[6 + 3 * 3], XA_SELFIELD);
		ck_assert(a[6 + 3 * 4] == XA_FIELD1 || a[6 + 3 * 4] == XA_FIELD2);	/* flags */
		ck_assert(a[6 + 3 * 8 + 1] == XA_FIELD1 || a[6 + 3 * 8 + 1] == XA_FIELD2);
		ck_assert_int_ne(a[6 + 3 * 4], a[6 + 3 * 8 + 1]);	/* blocknr differs */
	}
	/* Tab walks the fields of the table */
	static const char *const fields[] = { "flags", "blocknr", "nr_entries", "max_entries",
					      "value_size", "padding", "keys[0]", "keys[1]" };
	for (unsigned i = 0; i < 8; i++) {
		ck_assert_int_eq(xp_cmd(x, XC_NEXT_FIELD), 0);
		char want[64];
		snprintf(want, sizeof(want), " %s", fields[i]);
		ck_assert_msg(screen_has(want), "field %s", fields[i]);
	}
	ck_assert_int_eq(xp_cmd(x, XC_PREV_FIELD), 0);
	ck_assert(screen_has("@0x020 keys[0]: 0"));
	/* the values of a mapping leaf: data block and time of one word */
	for (unsigned i = 0; i < 40; i++)
		xp_cmd(x, XC_PGDN);
	ck_assert_int_eq(xp_cmd(x, XC_HEX), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_NODE);
	close_fixture();
}
END_TEST

START_TEST(hex_of_the_values)
{
	if (!open_fixture("02-thins-snaps.meta.img", 0))
		return;
	ck_assert_int_eq(xp_goto_block(x, "114"), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_NODE);
	/* opened by number: located in its tree */
	ck_assert(xp_top(x)->place_known);
	ck_assert_int_eq(xp_top(x)->tree, TM_TREE_BOTTOM);
	ck_assert_uint_eq(xp_top(x)->dev, 0);
	ck_assert_int_eq(xp_cmd(x, XC_HEX), 0);
	/* values start after 252 keys: 32 + 8 * 252 = 0x800 */
	while (xp_top(x)->hex_off < 0x800)
		ck_assert_int_eq(xp_cmd(x, XC_NEXT_FIELD), 0);
	ck_assert_uint_eq(xp_top(x)->hex_off, 0x800);
	ck_assert(screen_has("@0x800 values[0]: data_block 368 time 2"));
	/* Enter on a data block: who maps it */
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_REFS);
	ck_assert(screen_has("1 mappings to data block 368"));
	ck_assert(strstr(row(0), "device 0") && strstr(row(0), "vblock 0"));
	close_fixture();
}
END_TEST

START_TEST(references)
{
	if (!open_fixture("02-thins-snaps.meta.img", 0))
		return;
	/* the leaf devices 0 and 10 share: two parents */
	ck_assert_int_eq(xp_goto_block(x, "95"), 0);
	ck_assert_int_eq(xp_cmd(x, XC_REFS), 0);
	const struct xp_loc *l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_REFS);
	ck_assert_uint_eq(xp_row_count(x), 2);
	ck_assert(screen_has("2 references to metadata block 95; its space map count is 2"));
	ck_assert(strstr(row(0), "node 112 entry 1"));
	ck_assert(strstr(row(1), "node 121 entry 1"));
	/* Enter: the referrer, with the entry selected */
	ck_assert_int_eq(xp_cmd(x, XC_DOWN), 0);
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	ck_assert_uint_eq(xp_top(x)->block, 121);
	ck_assert_uint_eq(xp_top(x)->sel, 1);
	ck_assert_uint_eq(xp_top(x)->dev, 10);
	/* a data block three devices map */
	ck_assert_int_eq(xp_data_refs(x, "5"), 0);
	ck_assert(screen_has("to data block 5"));
	ck_assert_uint_ge(xp_row_count(x), 2);
	ck_assert_int_eq(xp_data_refs(x, "nope"), -1);
	/* a free block: nothing */
	ck_assert_int_eq(xp_goto_block(x, "1000"), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_HEX);
	ck_assert(strstr(xp_status(x), "all zeroes"));
	ck_assert_int_eq(xp_cmd(x, XC_REFS), 0);
	ck_assert(strstr(row(0), "nothing references it"));
	close_fixture();
}
END_TEST

START_TEST(space_maps_and_counts)
{
	if (!open_fixture("02-thins-snaps.meta.img", 0))
		return;
	ck_assert_int_eq(xp_cmd(x, XC_SPACEMAPS), 0);
	ck_assert(screen_has("metadata space map: 2048 blocks, 19 allocated"));
	ck_assert(screen_has("data space map: 4096 blocks, 384 allocated"));
	select_row("bitmap 0");
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_BITMAP);
	ck_assert(screen_has("blocks 0..2047: 2029 free"));
	/* c: the count of one block, marked in its bitmap */
	ck_assert_int_eq(xp_count(x, "95"), 0);
	ck_assert(strstr(xp_status(x), "metadata block 95: reference count 2"));
	ck_assert_int_eq(xp_top(x)->entry_mark, 95);
	ck_assert_uint_eq(xp_top(x)->sel, 95 / 32);
	ck_assert_int_eq(xp_count(x, "d 5"), 0);
	ck_assert(strstr(xp_status(x), "data block 5: reference count"));
	ck_assert_int_eq(xp_top(x)->sm_data, 1);
	ck_assert_int_eq(xp_count(x, "d 99999"), -1);
	ck_assert(strstr(xp_status(x), "past the space map's end"));
	close_fixture();
}
END_TEST

START_TEST(snapshot_beside_live)
{
	if (!open_fixture("03-msnap-held.meta.img", 0))
		return;
	ck_assert_int_eq(xp_cmd(x, XC_DIFF), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_DIFF);
	ck_assert_uint_eq(xp_row_count(x), 5);
	ck_assert(strstr(row(0), "changed"));
	ck_assert(strstr(row(2), "new"));
	ck_assert(strstr(row(3), "same"));
	/* device 0: remapped 1..4, new 768..783 (thin_dump -m vs thin_dump) */
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_MAPDIFF);
	ck_assert_uint_eq(xp_row_count(x), 2);
	ck_assert(strstr(row(0), "1..4") && strstr(row(0), "350..353 t1"));
	ck_assert(strstr(row(1), "768..783") && strstr(row(1), "-"));
	/* a device with no changes */
	xp_cmd(x, XC_BACK);
	select_row("same");
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	ck_assert_uint_eq(xp_row_count(x), 0);
	close_fixture();

	if (!open_fixture("02-thins-snaps.meta.img", 0))
		return;
	ck_assert_int_eq(xp_cmd(x, XC_DIFF), -1);
	ck_assert_int_eq(xp_cmd(x, XC_SWITCH), -1);
	ck_assert(strstr(xp_status(x), "no metadata snapshot is held"));
	close_fixture();
}
END_TEST

START_TEST(damage_opens_in_hex)
{
	struct tm_dev *dev = load_dev("02-thins-snaps.meta.img");
	if (!dev)
		return;
	/* the details root (141): one byte flipped */
	tm_dev_mem_data(dev)[141 * TM_BLOCK_SIZE + 100] ^= 0xff;
	ck_assert_int_eq(xp_open_dev(dev, "damaged", 0, &x, &err), 0);
	select_row("device_details_root");
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	const struct xp_loc *l = xp_top(x);
	ck_assert_int_eq(l->kind, XP_HEX);
	ck_assert_uint_eq(l->block, 141);
	ck_assert(l->bad);
	ck_assert(xp_status_bad(x));
	ck_assert(strstr(xp_status(x), "block 141: bad checksum in btree node"));
	ck_assert(screen_has("BAD (want"));
	ck_assert(screen_has("DAMAGED"));
	/* the device list says so too, and Enter opens the culprit */
	ck_assert_int_eq(xp_cmd(x, XC_DEVICES), 0);
	ck_assert(strstr(row(0), "cannot list the devices"));
	ck_assert_int_eq(xp_cmd(x, XC_ENTER), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_HEX);
	ck_assert_uint_eq(xp_top(x)->block, 141);
	/* -p with the path 1.1.0's thin_check printed for this damage */
	ck_assert_int_eq(xp_open_node_path(x, "AgGN"), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_HEX);
	ck_assert_uint_eq(xp_top(x)->block, 141);
	ck_assert(strstr(xp_status(x), "bad checksum"));
	ck_assert_int_eq(xp_open_node_path(x, "!!"), -1);
	ck_assert(strstr(xp_status(x), "bad node path"));
	close_fixture();

	/* a damaged superblock: shown decoded, then in hex */
	dev = load_dev("02-thins-snaps.meta.img");
	tm_dev_mem_data(dev)[40] ^= 0x01;	/* version */
	ck_assert_int_eq(xp_open_dev(dev, "damaged", 0, &x, &err), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_HEX);
	ck_assert_uint_eq(xp_top(x)->block, 0);
	ck_assert(xp_status_bad(x));
	ck_assert_int_eq(xp_cmd(x, XC_BACK), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_SUPER);
	ck_assert(screen_has("DAMAGED"));
	ck_assert(screen_has("BAD, computed"));
	close_fixture();
}
END_TEST

START_TEST(node_paths)
{
	if (!open_fixture("02-thins-snaps.meta.img", 0))
		return;
	/* [0, 138]: the top level */
	ck_assert_int_eq(xp_open_node_path(x, "AgGK"), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_NODE);
	ck_assert_uint_eq(xp_top(x)->block, 138);
	ck_assert_int_eq(xp_top(x)->tree, TM_TREE_TOP);
	/* [0, 112, 95]: a device's root (1.1.0's mapping tree paths) and a leaf */
	static const uint64_t p[] = { 0, 112, 95 };
	char text[64];
	ck_assert_int_eq(tm_node_path_encode(p, 3, text, sizeof(text)), 0);
	ck_assert_int_eq(xp_open_node_path(x, text), 0);
	ck_assert_uint_eq(xp_top(x)->block, 95);
	ck_assert_int_eq(xp_top(x)->tree, TM_TREE_BOTTOM);
	ck_assert_uint_eq(xp_top(x)->dev, 0);
	ck_assert_uint_eq(xp_top(x)->path[0], 112);
	/* [0, 138, 114]: 114 is not a child of the top level */
	static const uint64_t q[] = { 0, 138, 114 };
	ck_assert_int_eq(tm_node_path_encode(q, 3, text, sizeof(text)), 0);
	ck_assert_int_eq(xp_open_node_path(x, text), 0);
	ck_assert_uint_eq(xp_top(x)->block, 138);
	ck_assert(strstr(xp_status(x), "block 114 is not a child of block 138"));
	close_fixture();
}
END_TEST

START_TEST(search_help_and_sizes)
{
	if (!open_fixture("03-msnap-held.meta.img", 0))
		return;
	ck_assert_int_eq(xp_cmd(x, XC_DEVICES), 0);
	ck_assert_int_eq(xp_search(x, "11", 0), 0);
	ck_assert_uint_eq(xp_top(x)->sel, 4);
	ck_assert_int_eq(xp_cmd(x, XC_SEARCH_NEXT), 0);
	ck_assert_int_eq(xp_search(x, "no such text", 0), -1);
	ck_assert(strstr(xp_status(x), "not found"));
	ck_assert_int_eq(xp_cmd(x, XC_HELP), 0);
	ck_assert_int_eq(xp_top(x)->kind, XP_HELP);
	ck_assert(screen_has("Enter  l  Right"));
	/* every size from the minimum up renders inside the screen */
	for (unsigned r = 24; r <= 60; r += 12)
		for (unsigned c = 80; c <= 200; c += 40) {
			xp_resize(x, r, c);
			screen_fits();
		}
	ck_assert_int_eq(xp_cmd(x, XC_HELP), 0);	/* ? again: back */
	ck_assert_int_eq(xp_top(x)->kind, XP_DEVICES);
	/* g: bad input is a message, not a move */
	unsigned d = xp_depth(x);
	ck_assert_int_eq(xp_goto_block(x, "99999999"), -1);
	ck_assert(strstr(xp_status(x), "past the end"));
	ck_assert_int_eq(xp_goto_block(x, "-1"), -1);
	ck_assert_uint_eq(xp_depth(x), d);
	/* a long walk: the stack keeps the newest locations */
	for (int i = 0; i < XP_STACK_MAX + 10; i++)
		ck_assert_int_eq(xp_cmd(x, XC_SUPER), 0);
	ck_assert_uint_eq(xp_depth(x), XP_STACK_MAX);
	close_fixture();
}
END_TEST

/*
 * Hostile metadata: random bytes of random metadata blocks changed, the
 * blocks mostly resealed so the damage gets past the checksums, then a
 * walk through every view.  Nothing may crash or hang (run it under
 * ASan: make check SANITIZE=1).
 */
static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void walk_everything(void)
{
	static const enum xp_cmd script[] = {
		XC_DEVICES, XC_END, XC_ENTER, XC_END, XC_PGUP, XC_UP, XC_ENTER, XC_NEXT_SIB,
		XC_NEXT_SIB, XC_PREV_SIB, XC_HEX, XC_NEXT_FIELD, XC_ENTER, XC_BACK, XC_REFS,
		XC_ENTER, XC_SUPER, XC_DOWN, XC_DOWN, XC_ENTER, XC_ENTER, XC_END, XC_ENTER,
		XC_SWITCH, XC_DEVICES, XC_ENTER, XC_PGDN, XC_TREE, XC_DIFF, XC_ENTER,
		XC_PGDN, XC_END, XC_ENTER, XC_SPACEMAPS, XC_DOWN, XC_ENTER, XC_BACK, XC_END,
		XC_ENTER, XC_ENTER, XC_LOCATE, XC_HELP, XC_BACK,
	};
	struct xp_line lines[40];

	for (unsigned i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		xp_cmd(x, script[i]);
		xp_render(x, lines);
		if (next_rand() % 5 == 0) {
			char b[32];
			snprintf(b, sizeof(b), "%llu", (unsigned long long)(next_rand() % 2100));
			xp_goto_block(x, b);
			xp_render(x, lines);
			for (unsigned k = 0; k < 3; k++)
				xp_cmd(x, next_rand() % 2 ? XC_ENTER : XC_DOWN);
			xp_render(x, lines);
		}
	}
	xp_data_refs(x, "5");
	xp_goto_vblock(x, "0 100");
	xp_count(x, "d 3");
	xp_render(x, lines);
}

START_TEST(survives_hostile_metadata)
{
	static const char *const names[] = { "02-thins-snaps.meta.img", "03-msnap-held.meta.img" };

	/* EXPLORE_FUZZ_ROUNDS: more rounds for a soak */
	unsigned rounds = getenv("EXPLORE_FUZZ_ROUNDS") ? (unsigned)atoi(getenv("EXPLORE_FUZZ_ROUNDS")) : 60;

	for (unsigned round = 0; round < rounds; round++) {
		struct tm_dev *dev = load_dev(names[round % 2]);
		if (!dev)
			return;
		uint8_t *data = tm_dev_mem_data(dev);
		/* the blocks in use: those whose checksum names a type */
		uint64_t used[2048], n = 0;
		for (uint64_t b = 0; b < dev->nr_blocks && n < 2048; b++)
			if (tm_block_identify(data + b * TM_BLOCK_SIZE))
				used[n++] = b;
		unsigned hits = 1 + (unsigned)(next_rand() % 6);
		for (unsigned h = 0; h < hits; h++) {
			uint64_t b = used[next_rand() % n];
			uint8_t *blk = data + b * TM_BLOCK_SIZE;
			const struct tm_validator *v = tm_block_identify(blk);
			/* mostly headers and the first entries, where it matters */
			uint32_t off = (uint32_t)(next_rand() % (next_rand() % 3 ? 64 : TM_BLOCK_SIZE));
			switch (next_rand() % 4) {
			case 0: blk[off] ^= (uint8_t)(1 + next_rand() % 255); break;
			case 1: memset(blk + (off & ~7u), 0xff, 8); break;
			case 2: tm_put_le64(blk + (off & ~7u), next_rand() % 4096); break;
			default: tm_put_le32(blk + (off & ~3u), (uint32_t)next_rand()); break;
			}
			if (v && next_rand() % 4)
				tm_block_seal(blk, off >= 8 && off < 16 && next_rand() % 2 ?
					      tm_le64(blk + 8) : b, v->salt);
		}
		ck_assert_int_eq(xp_open_dev(dev, "hostile", (int)(round % 3 == 0), &x, &err), 0);
		walk_everything();
		xp_resize(x, 40, 140);
		walk_everything();
		close_fixture();
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("explore_model");
	TCase *tc = tcase_create("explore_model");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, opens_on_the_superblock);
	tcase_add_test(tc, devices_and_their_counts);
	tcase_add_test(tc, paging_through_mappings);
	tcase_add_test(tc, virtual_blocks_and_nodes);
	tcase_add_test(tc, following_pointers);
	tcase_add_test(tc, hex_of_the_values);
	tcase_add_test(tc, references);
	tcase_add_test(tc, space_maps_and_counts);
	tcase_add_test(tc, snapshot_beside_live);
	tcase_add_test(tc, damage_opens_in_hex);
	tcase_add_test(tc, node_paths);
	tcase_add_test(tc, search_help_and_sizes);
	tcase_add_test(tc, survives_hostile_metadata);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
