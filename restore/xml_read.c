/*
 * xml_read.c - the thin_dump XML reader: libexpat events -> IR events.
 *
 * A small state machine follows where we are (outside, in the superblock,
 * in a def, in a device, in a mapping or ref, after the superblock); each
 * element is checked against a table of its attributes.  The first problem
 * stops the parser and is reported with the line and column of the element
 * (or of expat's error).
 *
 * The same reader parses pieces of a document for xml_par.c: a synthetic
 * prefix puts it in the middle of a document (no events), a synthetic
 * suffix checks the piece ended where the next one starts.
 */
#include <errno.h>
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xml_read.h"

#define CHUNK (256u * 1024u)

enum where { W_TOP, W_SB, W_DEF, W_DEV, W_LEAF, W_AFTER };

struct reader {
	XML_Parser p;
	const struct tm_ir_sink *sink;
	struct xml_error *err;
	enum where where;
	enum where leaf_parent;		/* W_DEF or W_DEV, inside a W_LEAF */
	const char *leaf_name;		/* "single_mapping", ... */
	int failed;
	int synth;			/* feeding synthetic tags: no events */
	int foreign_encoding;		/* <?xml encoding="..."?> not UTF-8 */
};

/* ------------------------------------------------------------------ */

static void stop_at(struct reader *r, unsigned long line, unsigned long col)
{
	r->err->line = line;
	r->err->column = col;
	r->failed = 1;
	XML_StopParser(r->p, XML_FALSE);
}

static void here(struct reader *r)
{
	stop_at(r, (unsigned long)XML_GetCurrentLineNumber(r->p),
		(unsigned long)XML_GetCurrentColumnNumber(r->p) + 1);
}

static void xml_fail(struct reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void xml_fail(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err->msg, sizeof(r->err->msg), fmt, ap);
	va_end(ap);
	here(r);
}

static void sink_failed(struct reader *r, int e)
{
	r->err->sink_err = e ? e : -EINVAL;
	here(r);
}

/* ------------------------------------------------------------------ */
/* Attributes */

enum atype { A_STR, A_NUM };

struct attr_spec {
	const char *name;
	enum atype type;
	int required;
	uint64_t min, max;
};

#define U32 0, UINT32_MAX
#define U64 0, UINT64_MAX
#define TIME24 0, 0xffffffu

static const struct attr_spec sb_attrs[] = {
	{ "uuid", A_STR, 1, 0, 0 },
	{ "time", A_NUM, 1, U32 },
	{ "transaction", A_NUM, 1, U64 },
	{ "flags", A_NUM, 0, U32 },
	{ "version", A_NUM, 0, U32 },
	{ "data_block_size", A_NUM, 1, U32 },
	{ "nr_data_blocks", A_NUM, 1, U64 },
	{ "metadata_snap", A_NUM, 0, U64 },
	{ NULL, A_STR, 0, 0, 0 },
};
enum { SB_UUID, SB_TIME, SB_TRANS, SB_FLAGS, SB_VERSION, SB_DBS, SB_NR, SB_SNAP };

static const struct attr_spec dev_attrs[] = {
	{ "dev_id", A_NUM, 1, U32 },
	{ "mapped_blocks", A_NUM, 1, U64 },
	{ "transaction", A_NUM, 1, U64 },
	{ "creation_time", A_NUM, 1, U32 },
	{ "snap_time", A_NUM, 1, U32 },
	{ NULL, A_STR, 0, 0, 0 },
};
enum { DEV_ID, DEV_MAPPED, DEV_TRANS, DEV_CTIME, DEV_STIME };

static const struct attr_spec name_attrs[] = {
	{ "name", A_STR, 1, 0, 0 },
	{ NULL, A_STR, 0, 0, 0 },
};

static const struct attr_spec single_attrs[] = {
	{ "origin_block", A_NUM, 1, U64 },
	{ "data_block", A_NUM, 1, U64 },
	{ "time", A_NUM, 1, TIME24 },
	{ NULL, A_STR, 0, 0, 0 },
};
enum { SM_ORIGIN, SM_DATA, SM_TIME };

static const struct attr_spec range_attrs[] = {
	{ "origin_begin", A_NUM, 1, U64 },
	{ "data_begin", A_NUM, 1, U64 },
	{ "length", A_NUM, 1, 1, UINT64_MAX },
	{ "time", A_NUM, 1, TIME24 },
	{ NULL, A_STR, 0, 0, 0 },
};
enum { RM_ORIGIN, RM_DATA, RM_LENGTH, RM_TIME };

#define MAX_ATTRS 8

struct attr_vals {
	const char *str[MAX_ATTRS];
	uint64_t num[MAX_ATTRS];
	int present[MAX_ATTRS];
};

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * A decimal number: digits only, after the whitespace XML Schema's
 * collapse would remove (so xsd:unsignedLong and we agree); no sign.
 * -1: not a number; -2: more than 64 bits (found before any later
 * non-digit, as a left-to-right reading finds it).
 */
static int parse_num(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int digits = 0;

	while (is_space(*s))
		s++;
	for (; (unsigned)(*s - '0') < 10; s++, digits++) {
		unsigned d = (unsigned)(*s - '0');
		/* 19 digits always fit in 64 bits */
		if (digits >= 19 && (__builtin_mul_overflow(v, 10, &v) ||
				     __builtin_add_overflow(v, d, &v)))
			return -2;
		if (digits < 19)
			v = v * 10 + d;
	}
	while (is_space(*s))
		s++;
	if (!digits || *s)
		return -1;
	*out = v;
	return 0;
}

/* 0, or -1 after reporting the problem. */
static int get_attrs(struct reader *r, const char *elem, const XML_Char **atts,
		     const struct attr_spec *spec, struct attr_vals *v)
{
	int nspec = 0, pos = 0;

	while (spec[nspec].name)
		nspec++;
	memset(v->present, 0, sizeof(v->present));
	for (; atts[0]; atts += 2, pos++) {
		int i = pos;
		/* thin_dump writes the attributes in the table's order */
		if (i >= nspec || strcmp(spec[i].name, atts[0]))
			for (i = 0; spec[i].name && strcmp(spec[i].name, atts[0]); i++)
				;
		if (!spec[i].name) {
			xml_fail(r, "unknown attribute '%s' in <%s>", atts[0], elem);
			return -1;
		}
		v->present[i] = 1;
		v->str[i] = atts[1];
		if (spec[i].type != A_NUM)
			continue;
		int pr = parse_num(atts[1], &v->num[i]);
		if (pr == -1) {
			xml_fail(r, "attribute %s=\"%.40s\" of <%s> is not a decimal number",
				 atts[0], atts[1], elem);
			return -1;
		}
		if (pr == -2 || v->num[i] < spec[i].min || v->num[i] > spec[i].max) {
			if (spec[i].min && pr == 0)
				xml_fail(r, "attribute %s=\"%.40s\" of <%s> is out of range "
					 "(at least %llu)", atts[0], atts[1], elem,
					 (unsigned long long)spec[i].min);
			else
				xml_fail(r, "attribute %s=\"%.40s\" of <%s> is out of range "
					 "(at most %llu)", atts[0], atts[1], elem,
					 (unsigned long long)spec[i].max);
			return -1;
		}
	}
	for (int i = 0; i < nspec; i++)
		if (!v->present[i]) {
			v->num[i] = 0;
			v->str[i] = NULL;
			if (!spec[i].required)
				continue;
			xml_fail(r, "<%s> has no %s attribute", elem, spec[i].name);
			return -1;
		}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Elements */

enum elem { E_OTHER, E_SUPERBLOCK, E_DEF, E_DEVICE, E_REF, E_SINGLE, E_RANGE };

/* Which element @name is: one comparison, picked by the first letter. */
static enum elem elem_kind(const char *name)
{
	switch (name[0]) {
	case 's':
		if (!strcmp(name, "single_mapping"))
			return E_SINGLE;
		return strcmp(name, "superblock") ? E_OTHER : E_SUPERBLOCK;
	case 'r':
		if (!strcmp(name, "range_mapping"))
			return E_RANGE;
		return strcmp(name, "ref") ? E_OTHER : E_REF;
	case 'd':
		if (!strcmp(name, "device"))
			return E_DEVICE;
		return strcmp(name, "def") ? E_OTHER : E_DEF;
	default:
		return E_OTHER;
	}
}

static void misplaced(struct reader *r, const char *name)
{
	static const char *const in[] = {
		[W_TOP] = "outside <superblock>",
		[W_SB] = "directly inside <superblock>",
		[W_DEF] = "inside <def>",
		[W_DEV] = "inside <device>",
		[W_LEAF] = "inside another element",
		[W_AFTER] = "after </superblock>",
	};

	if (elem_kind(name) == E_OTHER)
		xml_fail(r, "unknown element <%s>", name);
	else if (r->where == W_LEAF)
		xml_fail(r, "<%s> is not allowed inside <%s>", name, r->leaf_name);
	else
		xml_fail(r, "<%s> is not allowed %s", name, in[r->where]);
}

static void start_superblock(struct reader *r, const XML_Char **atts)
{
	struct tm_ir_superblock sb;
	struct attr_vals v;

	if (get_attrs(r, "superblock", atts, sb_attrs, &v))
		return;
	/* uuid, flags, version and metadata_snap are read and ignored, as 1.1.0 does */
	memset(&sb, 0, sizeof(sb));
	sb.time = (uint32_t)v.num[SB_TIME];
	sb.transaction = v.num[SB_TRANS];
	sb.flags = (uint32_t)v.num[SB_FLAGS];
	sb.version = (uint32_t)v.num[SB_VERSION];
	sb.data_block_size = (uint32_t)v.num[SB_DBS];
	sb.nr_data_blocks = v.num[SB_NR];
	sb.metadata_snap = v.num[SB_SNAP];
	r->where = W_SB;
	int e = r->sink->superblock_begin(r->sink->ctx, &sb);
	if (e)
		sink_failed(r, e);
}

static void start_device(struct reader *r, const XML_Char **atts)
{
	struct tm_ir_device d;
	struct attr_vals v;

	if (get_attrs(r, "device", atts, dev_attrs, &v))
		return;
	d.dev_id = v.num[DEV_ID];
	d.mapped_blocks = v.num[DEV_MAPPED];
	d.transaction = v.num[DEV_TRANS];
	d.creation_time = (uint32_t)v.num[DEV_CTIME];
	d.snap_time = (uint32_t)v.num[DEV_STIME];
	r->where = W_DEV;
	int e = r->sink->device_begin(r->sink->ctx, &d);
	if (e)
		sink_failed(r, e);
}

static void start_def(struct reader *r, const XML_Char **atts)
{
	struct attr_vals v;

	if (get_attrs(r, "def", atts, name_attrs, &v))
		return;
	r->where = W_DEF;
	int e = r->sink->def_begin(r->sink->ctx, v.str[0]);
	if (e)
		sink_failed(r, e);
}

static void enter_leaf(struct reader *r, const char *name)
{
	r->leaf_parent = r->where;
	r->leaf_name = name;
	r->where = W_LEAF;
}

static void start_mapping(struct reader *r, enum elem kind, const XML_Char **atts)
{
	struct tm_ir_run m;
	struct attr_vals v;
	const char *name = kind == E_SINGLE ? "single_mapping" : "range_mapping";

	if (kind == E_SINGLE) {
		if (get_attrs(r, name, atts, single_attrs, &v))
			return;
		m.origin_begin = v.num[SM_ORIGIN];
		m.data_begin = v.num[SM_DATA];
		m.length = 1;
		m.time = (uint32_t)v.num[SM_TIME];
		enter_leaf(r, "single_mapping");
	} else {
		if (get_attrs(r, name, atts, range_attrs, &v))
			return;
		m.origin_begin = v.num[RM_ORIGIN];
		m.data_begin = v.num[RM_DATA];
		m.length = v.num[RM_LENGTH];
		m.time = (uint32_t)v.num[RM_TIME];
		enter_leaf(r, "range_mapping");
	}
	int e = r->sink->run(r->sink->ctx, &m);
	if (e)
		sink_failed(r, e);
}

static void start_ref(struct reader *r, const XML_Char **atts)
{
	struct attr_vals v;

	if (get_attrs(r, "ref", atts, name_attrs, &v))
		return;
	enter_leaf(r, "ref");
	int e = r->sink->ref(r->sink->ctx, v.str[0]);
	if (e)
		sink_failed(r, e);
}

/* A synthetic tag of a piece's prefix or suffix: context, no events. */
static void synth_start(struct reader *r, enum elem kind)
{
	if (kind == E_SUPERBLOCK && r->where == W_TOP)
		r->where = W_SB;
	else if (kind == E_DEVICE && r->where == W_SB)
		r->where = W_DEV;
	else if (kind == E_DEF && r->where == W_SB)
		r->where = W_DEF;
	else
		xml_fail(r, "bad synthetic context");
}

static void synth_end(struct reader *r)
{
	if (r->where == W_DEV || r->where == W_DEF)
		r->where = W_SB;
	else if (r->where == W_SB)
		r->where = W_AFTER;
	else
		xml_fail(r, "a piece ends in the wrong context");
}

static void XMLCALL on_start(void *ctx, const XML_Char *name, const XML_Char **atts)
{
	struct reader *r = ctx;
	enum elem kind = elem_kind(name);

	if (r->failed)
		return;
	if (r->synth) {
		synth_start(r, kind);
		return;
	}
	switch (r->where) {
	case W_TOP:
		if (kind == E_SUPERBLOCK) {
			start_superblock(r, atts);
			return;
		}
		break;
	case W_SB:
		if (kind == E_DEVICE) {
			start_device(r, atts);
			return;
		}
		if (kind == E_DEF) {
			start_def(r, atts);
			return;
		}
		break;
	case W_DEF:
		if (kind == E_SINGLE || kind == E_RANGE) {
			start_mapping(r, kind, atts);
			return;
		}
		break;
	case W_DEV:
		if (kind == E_SINGLE || kind == E_RANGE) {
			start_mapping(r, kind, atts);
			return;
		}
		if (kind == E_REF) {
			start_ref(r, atts);
			return;
		}
		break;
	case W_LEAF:
	case W_AFTER:
		break;
	}
	misplaced(r, name);
}

static void XMLCALL on_end(void *ctx, const XML_Char *name)
{
	struct reader *r = ctx;
	int e = 0;

	(void)name;	/* expat has matched it with its start tag */
	if (r->failed)
		return;
	if (r->synth) {
		synth_end(r);
		return;
	}
	switch (r->where) {
	case W_LEAF:
		r->where = r->leaf_parent;
		return;
	case W_DEF:
		r->where = W_SB;
		e = r->sink->def_end(r->sink->ctx);
		break;
	case W_DEV:
		r->where = W_SB;
		e = r->sink->device_end(r->sink->ctx);
		break;
	case W_SB:
		r->where = W_AFTER;
		e = r->sink->superblock_end(r->sink->ctx);
		break;
	case W_TOP:
	case W_AFTER:
		break;
	}
	if (e)
		sink_failed(r, e);
}

static void XMLCALL on_text(void *ctx, const XML_Char *s, int len)
{
	struct reader *r = ctx;

	if (r->failed)
		return;
	for (int i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
			xml_fail(r, "unexpected text \"%.*s\"", len - i < 20 ? len - i : 20, s + i);
			return;
		}
}

static void XMLCALL on_doctype(void *ctx, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	struct reader *r = ctx;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	if (!r->failed)
		xml_fail(r, "document type declarations (<!DOCTYPE ...>) are not allowed");
}

static void XMLCALL on_entity(void *ctx, const XML_Char *name, int is_param,
			      const XML_Char *value, int value_len, const XML_Char *base,
			      const XML_Char *sysid, const XML_Char *pubid,
			      const XML_Char *notation)
{
	struct reader *r = ctx;

	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	if (!r->failed)
		xml_fail(r, "entity declarations are not allowed");
}

/* ------------------------------------------------------------------ */

static int expat_error(struct reader *r, int at_eof)
{
	enum XML_Error code = XML_GetErrorCode(r->p);

	if (r->failed)
		return -1;	/* ours, already described */
	r->err->line = (unsigned long)XML_GetCurrentLineNumber(r->p);
	r->err->column = (unsigned long)XML_GetCurrentColumnNumber(r->p) + 1;
	if (at_eof && (code == XML_ERROR_NO_ELEMENTS || code == XML_ERROR_UNCLOSED_TOKEN ||
		       code == XML_ERROR_PARTIAL_CHAR ||
		       code == XML_ERROR_UNCLOSED_CDATA_SECTION))
		snprintf(r->err->msg, sizeof(r->err->msg),
			 "the XML ends before </superblock> (truncated or empty?): %s",
			 XML_ErrorString(code));
	else
		snprintf(r->err->msg, sizeof(r->err->msg), "the XML is not well-formed: %s",
			 XML_ErrorString(code));
	return -1;
}

static void XMLCALL on_xmldecl(void *ctx, const XML_Char *version,
			       const XML_Char *encoding, int standalone)
{
	struct reader *r = ctx;

	(void)version;
	(void)standalone;
	if (encoding && strcasecmp(encoding, "UTF-8"))
		r->foreign_encoding = 1;
}

/* A fresh or reset parser: our handlers, no DTD processing. */
static void setup(struct reader *r)
{
	XML_SetUserData(r->p, r);
	XML_SetElementHandler(r->p, on_start, on_end);
	XML_SetCharacterDataHandler(r->p, on_text);
	XML_SetStartDoctypeDeclHandler(r->p, on_doctype);
	XML_SetEntityDeclHandler(r->p, on_entity);
	XML_SetXmlDeclHandler(r->p, on_xmldecl);
	XML_SetParamEntityParsing(r->p, XML_PARAM_ENTITY_PARSING_NEVER);
}

int xml_read(int fd, const struct tm_ir_sink *sink,
	     const struct xml_read_opts *opts, struct xml_error *err)
{
	struct reader r;
	uint64_t total = 0;
	int ret = -1;

	memset(err, 0, sizeof(*err));
	memset(&r, 0, sizeof(r));
	r.sink = sink;
	r.err = err;
	r.where = W_TOP;
	r.p = XML_ParserCreate(NULL);
	if (!r.p) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -1;
	}
	setup(&r);

	for (;;) {
		void *buf = XML_GetBuffer(r.p, CHUNK);
		ssize_t n;

		if (!buf) {
			snprintf(err->msg, sizeof(err->msg), "out of memory");
			goto out;
		}
		do
			n = read(fd, buf, CHUNK);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			err->io_err = -errno;
			snprintf(err->msg, sizeof(err->msg), "read failed: %s", strerror(errno));
			goto out;
		}
		total += (uint64_t)n;
		if (XML_ParseBuffer(r.p, (int)n, n == 0) != XML_STATUS_OK) {
			expat_error(&r, n == 0);
			goto out;
		}
		if (opts && opts->progress)
			opts->progress(opts->progress_ctx, total);
		if (n == 0)
			break;
	}
	if (r.where != W_AFTER) {
		/* expat accepted a complete document: only our own rules can fail here */
		err->line = (unsigned long)XML_GetCurrentLineNumber(r.p);
		err->column = (unsigned long)XML_GetCurrentColumnNumber(r.p) + 1;
		snprintf(err->msg, sizeof(err->msg), "the XML ends before </superblock>");
		goto out;
	}
	ret = 0;
out:
	XML_ParserFree(r.p);
	return ret;
}

/* ------------------------------------------------------------------ */
/*
 * Canonical lines.  thin_dump writes one element per line: blanks, the
 * element with its attributes in the order of the tables above, each
 * value plain digits (or, for names, printable ASCII that needs no
 * decoding), and a newline.  Such a line is well-formed on its own and
 * means exactly one event, checked against the same tables; xml_lines()
 * gives those events without expat (and passes over blank lines) and stops
 * at the first line that is anything else, out of range included, for
 * expat to read from there.
 */
#define MAX_CANON_NAME 255

static const struct attr_spec no_attrs[] = {
	{ NULL, A_STR, 0, 0, 0 },
};

struct canon {
	uint64_t num[MAX_ATTRS];
	char name[MAX_CANON_NAME + 1];
};

/* Taken as it is by expat in a "quoted" attribute value. */
static int plain_char(char c)
{
	return c >= 0x20 && c < 0x7f && c != '<' && c != '&' && c != '"';
}

/*
 * @s just after '<': @elem, the attributes of @spec in order (` a="v"`),
 * then @close.  The position after @close, or NULL.
 */
static const char *canon_tag(const char *s, const char *end, const char *elem,
			     const struct attr_spec *spec, const char *close, struct canon *c)
{
	for (; *elem; elem++, s++)
		if (s >= end || *s != *elem)
			return NULL;
	for (int i = 0; spec[i].name; i++) {
		const char *n = spec[i].name;

		if (s >= end || *s++ != ' ')
			return NULL;
		for (; *n; n++, s++)
			if (s >= end || *s != *n)
				return NULL;
		if (end - s < 2 || s[0] != '=' || s[1] != '"')
			return NULL;
		s += 2;
		if (spec[i].type == A_NUM) {
			uint64_t v = 0;
			int digits = 0;
			for (; s < end && (unsigned)(*s - '0') < 10; s++) {
				if (++digits > 19)	/* 19 digits always fit */
					return NULL;
				v = v * 10 + (unsigned)(*s - '0');
			}
			if (!digits || v < spec[i].min || v > spec[i].max)
				return NULL;
			c->num[i] = v;
		} else {
			const char *b = s;
			while (s < end && plain_char(*s))
				s++;
			if (s == b || s - b > MAX_CANON_NAME)
				return NULL;
			memcpy(c->name, b, (size_t)(s - b));
			c->name[s - b] = 0;
		}
		if (s >= end || *s++ != '"')
			return NULL;
	}
	for (; *close; close++, s++)
		if (s >= end || *s != *close)
			return NULL;
	return s;
}

size_t xml_lines(const char *buf, size_t len, enum xml_ctx *ctx,
		 const struct tm_ir_sink *sink, int *sink_err)
{
	const char *p = buf, *end = buf + len;
	struct canon c;
	int e = 0;

	*sink_err = 0;
	while (p < end) {
		const char *s = p, *next = NULL;

		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		if (s < end && *s == '\n' && *ctx != XML_CTX_DOC) {
			p = s + 1;	/* a blank line: whitespace, no event */
			continue;
		}
		if (s >= end || *s++ != '<')
			break;
		switch (*ctx) {
		case XML_CTX_DEV:
		case XML_CTX_DEF:
			if ((next = canon_tag(s, end, "range_mapping", range_attrs, "/>\n", &c))) {
				struct tm_ir_run m = { c.num[RM_ORIGIN], c.num[RM_DATA],
						       c.num[RM_LENGTH], (uint32_t)c.num[RM_TIME] };
				e = sink->run(sink->ctx, &m);
			} else if ((next = canon_tag(s, end, "single_mapping", single_attrs,
						     "/>\n", &c))) {
				struct tm_ir_run m = { c.num[SM_ORIGIN], c.num[SM_DATA], 1,
						       (uint32_t)c.num[SM_TIME] };
				e = sink->run(sink->ctx, &m);
			} else if (*ctx == XML_CTX_DEV &&
				   (next = canon_tag(s, end, "ref", name_attrs, "/>\n", &c))) {
				e = sink->ref(sink->ctx, c.name);
			} else if (*ctx == XML_CTX_DEV &&
				   (next = canon_tag(s, end, "/device", no_attrs, ">\n", &c))) {
				e = sink->device_end(sink->ctx);
				*ctx = XML_CTX_SB;
			} else if (*ctx == XML_CTX_DEF &&
				   (next = canon_tag(s, end, "/def", no_attrs, ">\n", &c))) {
				e = sink->def_end(sink->ctx);
				*ctx = XML_CTX_SB;
			}
			break;
		case XML_CTX_SB:
			if ((next = canon_tag(s, end, "device", dev_attrs, ">\n", &c))) {
				struct tm_ir_device d = { c.num[DEV_ID], c.num[DEV_MAPPED],
							  c.num[DEV_TRANS],
							  (uint32_t)c.num[DEV_CTIME],
							  (uint32_t)c.num[DEV_STIME] };
				e = sink->device_begin(sink->ctx, &d);
				*ctx = XML_CTX_DEV;
			} else if ((next = canon_tag(s, end, "def", name_attrs, ">\n", &c))) {
				e = sink->def_begin(sink->ctx, c.name);
				*ctx = XML_CTX_DEF;
			}
			break;
		case XML_CTX_DOC:
			break;
		}
		if (!next)
			break;
		p = next;
		if (e) {
			*sink_err = e;
			break;
		}
	}
	return (size_t)(p - buf);
}

/* ------------------------------------------------------------------ */
/* Pieces */

struct xml_piece {
	struct reader r;
	struct xml_error scratch;	/* messages nobody reads */
	int expat_failed;
};

static const char *const prefixes[] = {
	[XML_CTX_DOC] = "",
	[XML_CTX_SB] = "<superblock>",
	[XML_CTX_DEV] = "<superblock><device>",
	[XML_CTX_DEF] = "<superblock><def>",
};

static const char *const suffixes[] = {
	[XML_CTX_DOC] = "",
	[XML_CTX_SB] = "</superblock>",
	[XML_CTX_DEV] = "</device></superblock>",
	[XML_CTX_DEF] = "</def></superblock>",
};

static const enum where ctx_where[] = {
	[XML_CTX_DOC] = W_TOP,
	[XML_CTX_SB] = W_SB,
	[XML_CTX_DEV] = W_DEV,
	[XML_CTX_DEF] = W_DEF,
};

struct xml_piece *xml_piece_new(const struct tm_ir_sink *sink)
{
	struct xml_piece *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (!(p->r.p = XML_ParserCreate(NULL))) {
		free(p);
		return NULL;
	}
	p->r.sink = sink;
	p->r.err = &p->scratch;
	return p;
}

void xml_piece_free(struct xml_piece *p)
{
	if (!p)
		return;
	XML_ParserFree(p->r.p);
	free(p);
}

static int piece_parse(struct xml_piece *p, const char *buf, size_t len, int final)
{
	if (XML_Parse(p->r.p, buf, (int)len, final) != XML_STATUS_OK)
		p->expat_failed = 1;
	return p->expat_failed || p->r.failed ? -1 : 0;
}

int xml_piece_begin(struct xml_piece *p, enum xml_ctx ctx)
{
	struct reader *r = &p->r;

	/* the start of the document is detected as xml_read() detects it */
	if (!XML_ParserReset(r->p, ctx == XML_CTX_DOC ? NULL : "UTF-8"))
		return -1;
	setup(r);
	r->where = W_TOP;
	r->failed = 0;
	r->foreign_encoding = 0;
	p->expat_failed = 0;
	if (ctx == XML_CTX_DOC)
		return 0;
	r->synth = 1;
	piece_parse(p, prefixes[ctx], strlen(prefixes[ctx]), 0);
	r->synth = 0;
	return r->where == ctx_where[ctx] && !p->expat_failed && !r->failed ? 0 : -1;
}

int xml_piece_feed(struct xml_piece *p, const char *buf, size_t len, int final)
{
	const size_t max = (size_t)1 << 30;	/* XML_Parse takes an int */

	while (len > max) {
		if (piece_parse(p, buf, max, 0))
			return -1;
		buf += max;
		len -= max;
	}
	return piece_parse(p, buf, len, final);
}

int xml_piece_end(struct xml_piece *p, enum xml_ctx next)
{
	struct reader *r = &p->r;

	if (next == XML_CTX_DOC || p->expat_failed || r->failed || r->where != ctx_where[next])
		return -1;
	r->synth = 1;
	piece_parse(p, suffixes[next], strlen(suffixes[next]), 1);
	r->synth = 0;
	return !p->expat_failed && !r->failed && r->where == W_AFTER ? 0 : -1;
}

int xml_piece_done(struct xml_piece *p)
{
	return !p->expat_failed && !p->r.failed && p->r.where == W_AFTER ? 0 : -1;
}

int xml_piece_foreign_encoding(const struct xml_piece *p)
{
	return p->r.foreign_encoding;
}
