/*
 * problem.c - the problem table (include/thinmeta/problem.h): names,
 * severities and templates of every finding, and one-line formatting
 * (with the node path as thin-provisioning-tools 1.x prints it, which
 * thin_explore -p reads: node_path.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "thinmeta/error.h"
#include "thinmeta/node_path.h"
#include "thinmeta/problem.h"

/* ------------------------------------------------------------------ */
/* The table */

static struct tm_problem_info table[TM_PR__COUNT] = {
#define TM_PX(name, sev, fix, tmpl) [TM_PR_##name] = { #name, TM_SEV_##sev, fix, tmpl },
	TM_PROBLEM_TABLE(TM_PX)
#undef TM_PX
};

/* Names are the enum names in lower case: "node_checksum". */
static char names[TM_PR__COUNT][32];
static int names_done;

static void make_names(void)
{
	if (names_done)
		return;
	for (int i = 0; i < TM_PR__COUNT; i++) {
		size_t j;
		for (j = 0; table[i].name[j] && j + 1 < sizeof(names[i]); j++)
			names[i][j] = (char)tolower((unsigned char)table[i].name[j]);
		names[i][j] = '\0';
	}
	for (int i = 0; i < TM_PR__COUNT; i++)
		table[i].name = names[i];
	names_done = 1;
}

const struct tm_problem_info *tm_problem_info(enum tm_pcode code)
{
	make_names();
	if ((unsigned)code >= TM_PR__COUNT)
		return NULL;
	return &table[code];
}

const char *tm_severity_name(enum tm_severity s)
{
	static const char *const n[TM_SEV__COUNT] = {
		"note", "info", "non-fatal", "fatal",
	};
	return (unsigned)s < TM_SEV__COUNT ? n[s] : "?";
}

const char *tm_tree_name(enum tm_tree t)
{
	static const char *const n[TM_TREE__COUNT] = {
		[TM_TREE_NONE] = "metadata",
		[TM_TREE_DETAILS] = "device details tree",
		[TM_TREE_TOP] = "mapping tree (top level)",
		[TM_TREE_BOTTOM] = "mapping tree",
		[TM_TREE_DATA_INDEX] = "data space map index tree",
		[TM_TREE_DATA_RC] = "data space map ref-count tree",
		[TM_TREE_META_RC] = "metadata space map ref-count tree",
	};
	return (unsigned)t < TM_TREE__COUNT ? n[t] : "?";
}

const char *tm_kind_name(enum tm_block_kind k, enum tm_tree t)
{
	switch (k) {
	case TM_KIND_SUPERBLOCK:
		return "the superblock";
	case TM_KIND_SNAP_SB:
		return "the metadata snapshot's superblock";
	case TM_KIND_META_INDEX:
		return "the metadata space map index";
	case TM_KIND_META_BITMAP:
		return "a metadata space map bitmap";
	case TM_KIND_DATA_BITMAP:
		return "a data space map bitmap";
	case TM_KIND_NODE:
		switch (t) {
		case TM_TREE_DETAILS:
			return "a device details tree node";
		case TM_TREE_TOP:
			return "a top-level mapping tree node";
		case TM_TREE_BOTTOM:
			return "a bottom-level mapping tree node";
		case TM_TREE_DATA_INDEX:
			return "a data space map index node";
		case TM_TREE_DATA_RC:
			return "a data space map ref-count node";
		case TM_TREE_META_RC:
			return "a metadata space map ref-count node";
		default:
			return "a btree node";
		}
	default:
		return "nothing";
	}
}

void tm_problem_init(struct tm_problem *p, enum tm_pcode code)
{
	memset(p, 0, sizeof(*p));
	p->code = code;
	p->severity = tm_problem_info(code)->severity;
	p->block = TM_NO_BLOCK;
	p->nr_blocks = 1;
	p->dev_id = TM_NO_DEV;
}

/* ------------------------------------------------------------------ */
/* Formatting */

struct sbuf {
	char *buf;
	size_t size, len;
};

static void sb_add(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	size_t room = s->len < s->size ? s->size - s->len : 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? s->buf + s->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		s->len += (size_t)n;
}

static void add_keys(struct sbuf *s, const struct tm_problem *p)
{
	if (p->keys_open)
		sb_add(s, "[%llu..]", (unsigned long long)p->key_lo);
	else
		sb_add(s, "[%llu..%llu)", (unsigned long long)p->key_lo,
		       (unsigned long long)p->key_hi);
}

static void add_blocks(struct sbuf *s, const struct tm_problem *p)
{
	if (p->nr_blocks > 1)
		sb_add(s, "blocks %llu..%llu", (unsigned long long)p->block,
		       (unsigned long long)(p->block + p->nr_blocks - 1));
	else
		sb_add(s, "block %llu", (unsigned long long)p->block);
}

static void expand(struct sbuf *s, const struct tm_problem *p, const char *t)
{
	while (*t) {
		const char *open = strchr(t, '{');
		if (!open) {
			sb_add(s, "%s", t);
			return;
		}
		sb_add(s, "%.*s", (int)(open - t), t);
		const char *close = strchr(open, '}');
		if (!close) {
			sb_add(s, "%s", open);
			return;
		}
		size_t n = (size_t)(close - open - 1);
		const char *k = open + 1;
#define IS(w) (n == sizeof(w) - 1 && !memcmp(k, w, n))
		if (IS("block"))
			sb_add(s, "%llu", (unsigned long long)p->block);
		else if (IS("blocks"))
			add_blocks(s, p);
		else if (IS("expected"))
			sb_add(s, "%llu", (unsigned long long)p->expected);
		else if (IS("actual"))
			sb_add(s, "%llu", (unsigned long long)p->actual);
		else if (IS("n"))
			sb_add(s, "%llu", (unsigned long long)p->n);
		else if (IS("dev"))
			sb_add(s, "%llu", (unsigned long long)p->dev_id);
		else if (IS("key"))
			sb_add(s, "%llu", (unsigned long long)p->key_lo);
		else if (IS("keys"))
			add_keys(s, p);
		else if (IS("text"))
			sb_add(s, "%s", p->text ? p->text : "");
		else if (IS("text2"))
			sb_add(s, "%s", p->text2 ? p->text2 : "");
		else
			sb_add(s, "{%.*s}", (int)n, k);
#undef IS
		t = close + 1;
	}
}

size_t tm_problem_message(const struct tm_problem *p, char *buf, size_t size)
{
	struct sbuf s = { buf, size, 0 };
	const struct tm_problem_info *pi = tm_problem_info(p->code);

	if (size)
		buf[0] = '\0';
	expand(&s, p, pi ? pi->tmpl : "unknown problem");
	return s.len;
}

/* "mapping tree of device 3, block 70" */
static void add_where(struct sbuf *s, const struct tm_problem *p)
{
	const char *snap = p->in_snapshot ? "metadata snapshot: " : "";
	int have_block = p->block != TM_NO_BLOCK;

	switch (p->kind) {
	case TM_KIND_NODE:
		if (p->tree == TM_TREE_BOTTOM && p->dev_id != TM_NO_DEV)
			sb_add(s, "%smapping tree of device %llu", snap,
			       (unsigned long long)p->dev_id);
		else
			sb_add(s, "%s%s", snap, tm_tree_name(p->tree));
		break;
	case TM_KIND_SUPERBLOCK:
		sb_add(s, "%ssuperblock", snap);
		break;
	case TM_KIND_SNAP_SB:
		sb_add(s, "metadata snapshot superblock");
		break;
	case TM_KIND_META_INDEX:
		sb_add(s, "metadata space map index");
		break;
	case TM_KIND_META_BITMAP:
		sb_add(s, "metadata space map bitmap");
		break;
	case TM_KIND_DATA_BITMAP:
		sb_add(s, "data space map bitmap");
		break;
	default:
		/* device and space-map problems say where in their text */
		if (p->in_snapshot)
			sb_add(s, "metadata snapshot");
		else
			return;
		if (have_block)
			sb_add(s, ", block %llu", (unsigned long long)p->block);
		sb_add(s, ": ");
		return;
	}
	if (have_block)
		sb_add(s, ", block %llu", (unsigned long long)p->block);
	sb_add(s, ": ");
}

/* What it costs: the device(s) and key range the problem puts at risk. */
static void add_cost(struct sbuf *s, const struct tm_problem *p)
{
	if (!p->has_keys)
		return;
	if (p->kind == TM_KIND_NODE && p->tree == TM_TREE_BOTTOM) {
		sb_add(s, "; at risk: ");
		if (p->dev_id != TM_NO_DEV)
			sb_add(s, "device %llu ", (unsigned long long)p->dev_id);
		sb_add(s, "virtual blocks ");
		add_keys(s, p);
		if (p->nr_devs > 1)
			sb_add(s, " (and the same range of %llu other device%s sharing it)",
			       (unsigned long long)(p->nr_devs - 1),
			       p->nr_devs > 2 ? "s" : "");
	} else if (p->kind == TM_KIND_NODE &&
		   (p->tree == TM_TREE_TOP || p->tree == TM_TREE_DETAILS)) {
		sb_add(s, "; at risk: device ids ");
		add_keys(s, p);
	} else if (p->code == TM_PR_DEV_DAMAGED) {
		sb_add(s, "; unreadable: virtual blocks ");
		add_keys(s, p);
	} else if (p->kind == TM_KIND_NODE) {
		sb_add(s, "; at risk: keys ");
		add_keys(s, p);
	}
}

size_t tm_problem_format(const struct tm_problem *p, char *buf, size_t size)
{
	struct sbuf s = { buf, size, 0 };
	const struct tm_problem_info *pi = tm_problem_info(p->code);

	if (size)
		buf[0] = '\0';
	add_where(&s, p);
	expand(&s, p, pi ? pi->tmpl : "unknown problem");
	if (p->code != TM_PR_NODE_KEY_RANGE || p->kind != TM_KIND_NODE)
		add_cost(&s, p);
	else if (p->tree == TM_TREE_BOTTOM && p->dev_id != TM_NO_DEV)
		sb_add(&s, "; at risk: device %llu", (unsigned long long)p->dev_id);
	if (p->path_len) {
		char path[512];
		if (tm_node_path_encode(p->path, p->path_len, path, sizeof(path)) == 0)
			sb_add(&s, " (node path %s)", path);
	}
	return s.len;
}
