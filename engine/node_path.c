/*
 * node_path.c - 1.1.0's base64 node paths (node_path.h): the pack VM's
 * delta encoding of u64s, and its decoder, bounded for hostile input.
 */
#include <errno.h>
#include <string.h>

#include "thinmeta/format.h"
#include "thinmeta/node_path.h"

/* Instruction tags of the pack VM, in 1.1.0's order. */
enum {
	TAG_SET, TAG_POS, TAG_POSW, TAG_NEG, TAG_NEGW, TAG_CONST, TAG_CONST8,
	TAG_COUNT, TAG_COUNT8, TAG_LIT, TAG_LITW, TAG_SHIFTED_RUN,
};

#define MAX_PACKED 1200		/* bytes: 1 + 127 * (up to 9) fits */

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ------------------------------------------------------------------ */
/* Encoding */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static void put8(struct wbuf *w, unsigned v)
{
	if (w->len < w->cap)
		w->p[w->len++] = (uint8_t)v;
	else
		w->overflow = 1;
}

static void put_tag(struct wbuf *w, unsigned tag, unsigned nibble)
{
	put8(w, (tag << 4) | (nibble & 0xf));
}

/* A value in the narrowest of 1, 2, 4, 8 bytes, after @tag with the width. */
static void put_width(struct wbuf *w, unsigned tag, uint64_t v)
{
	unsigned width = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffull ? 4 : 8;

	put_tag(w, tag, width);
	for (unsigned i = 0; i < width; i++)
		put8(w, (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_count(struct wbuf *w, uint64_t count)
{
	if (count == 1)
		return;
	if (count < 16) {
		put_tag(w, TAG_COUNT, (unsigned)count);
	} else {
		put_tag(w, TAG_COUNT8, (unsigned)(count >> 8));
		put8(w, (unsigned)(count & 0xff));
	}
}

static void put_delta(struct wbuf *w, int neg, uint64_t delta, uint64_t count)
{
	put_count(w, count);
	if (delta < 16)
		put_tag(w, neg ? TAG_NEG : TAG_POS, (unsigned)delta);
	else
		put_width(w, neg ? TAG_NEGW : TAG_POSW, delta);
}

/* 1.1.0's to_delta + pack_deltas. */
static void pack_u64s(struct wbuf *w, const uint64_t *ns, unsigned n)
{
	unsigned i = 1;
	uint64_t base;

	if (!n)
		return;
	base = ns[0];
	put_width(w, TAG_SET, base);
	while (i < n) {
		uint64_t v = ns[i], count = 1;
		if (v < base) {
			uint64_t delta = base - v;
			while (i < n && ns[i] + count * delta == base) {
				i++;
				count++;
			}
			count--;
			put_delta(w, 1, delta, count);
			base -= delta * count;
		} else if (v == base) {
			while (i < n && ns[i] == base) {
				i++;
				count++;
			}
			count--;
			if (count < 16) {
				put_tag(w, TAG_CONST, (unsigned)count);
			} else {
				put_tag(w, TAG_CONST8, (unsigned)(count >> 8));
				put8(w, (unsigned)(count & 0xff));
			}
		} else {
			uint64_t delta = v - base;
			while (i < n && ns[i] == base + count * delta) {
				i++;
				count++;
			}
			count--;
			put_delta(w, 0, delta, count);
			base += delta * count;
		}
	}
}

int tm_node_path_encode(const uint64_t *path, unsigned len, char *out, size_t outsz)
{
	uint8_t raw[MAX_PACKED];
	struct wbuf w = { raw, 0, sizeof(raw), 0 };
	size_t o = 0;

	if (len > TM_NODE_PATH_MAX)
		return -EINVAL;
	if (len && path[0] == 0) {
		put8(&w, (len - 1) << 1);
		pack_u64s(&w, path + 1, len - 1);
	} else {
		put8(&w, (len << 1) | 1);
		pack_u64s(&w, path, len);
	}
	if (w.overflow)
		return -ENOSPC;
	for (size_t i = 0; i < w.len; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16;
		size_t rest = w.len - i;
		if (rest > 1)
			v |= (uint32_t)raw[i + 1] << 8;
		if (rest > 2)
			v |= raw[i + 2];
		if (o + 5 > outsz)
			return -ENOSPC;
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = rest > 1 ? b64[(v >> 6) & 63] : '=';
		out[o++] = rest > 2 ? b64[v & 63] : '=';
	}
	if (o + 1 > outsz)
		return -ENOSPC;
	out[o] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Decoding */

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

static int bad(struct tm_error *e, const char *what)
{
	return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK, "bad node path: %s", what);
}

struct rbuf {
	const uint8_t *p;
	size_t len, pos;
};

struct vm {
	uint64_t base;
	uint8_t *out;
	size_t len, cap;	/* bytes emitted, room */
};

static int get8(struct rbuf *r, unsigned *v)
{
	if (r->pos >= r->len)
		return -1;
	*v = r->p[r->pos++];
	return 0;
}

static int get_width(struct rbuf *r, unsigned width, uint64_t *v)
{
	unsigned b;

	if (width != 1 && width != 2 && width != 4 && width != 8)
		return -1;
	*v = 0;
	for (unsigned i = 0; i < width; i++) {
		if (get8(r, &b))
			return -1;
		*v |= (uint64_t)b << (8 * i);
	}
	return 0;
}

static int emit(struct vm *m, const uint8_t *bytes, size_t n)
{
	if (m->len + n > m->cap)
		return -1;
	memcpy(m->out + m->len, bytes, n);
	m->len += n;
	return 0;
}

static int emit_base(struct vm *m)
{
	uint8_t b[8];

	tm_put_le64(b, m->base);
	return emit(m, b, 8);
}

/* One instruction, applied @count times (1.1.0's unpack_instr). */
static int instr(struct vm *m, struct rbuf *r, size_t count, int depth)
{
	unsigned b, x;
	uint64_t v;

	if (depth > 4 || get8(r, &b))
		return -1;
	unsigned tag = b >> 4, nibble = b & 0xf;

	switch (tag) {
	case TAG_SET:
		if (get_width(r, nibble, &m->base))
			return -1;
		for (size_t i = 0; i < count; i++)
			if (emit_base(m))
				return -1;
		return 0;
	case TAG_POS:
	case TAG_NEG:
	case TAG_POSW:
	case TAG_NEGW:
		v = nibble;
		if ((tag == TAG_POSW || tag == TAG_NEGW) && get_width(r, nibble, &v))
			return -1;
		for (size_t i = 0; i < count; i++) {
			m->base = (tag == TAG_POS || tag == TAG_POSW) ? m->base + v : m->base - v;
			if (emit_base(m))
				return -1;
		}
		return 0;
	case TAG_CONST:
	case TAG_CONST8:
		if (count != 1)
			return -1;
		v = nibble;
		if (tag == TAG_CONST8) {
			if (get8(r, &x))
				return -1;
			v = (v << 8) | x;
		}
		for (uint64_t i = 0; i < v; i++)
			if (emit_base(m))
				return -1;
		return 0;
	case TAG_COUNT:
		return instr(m, r, nibble, depth + 1);
	case TAG_COUNT8:
		if (get8(r, &x))
			return -1;
		return instr(m, r, ((size_t)nibble << 8) | x, depth + 1);
	case TAG_LIT:
	case TAG_LITW:
		if (count != 1)
			return -1;
		v = nibble;
		if (tag == TAG_LITW && get_width(r, nibble, &v))
			return -1;
		if (v > r->len - r->pos)
			return -1;
		if (emit(m, r->p + r->pos, (size_t)v))
			return -1;
		r->pos += (size_t)v;
		return 0;
	case TAG_SHIFTED_RUN: {
		if (get8(r, &x))
			return -1;
		size_t n = ((size_t)nibble << 8) | x;
		if (n * 8 > m->cap - m->len)
			return -1;
		uint8_t hi[MAX_PACKED], lo[MAX_PACKED];
		struct vm mh = { m->base, hi, 0, n * 8 }, ml;
		while (mh.len < n * 8)
			if (instr(&mh, r, 1, depth + 1))
				return -1;
		ml = (struct vm){ mh.base, lo, 0, n * 8 };
		while (ml.len < n * 8)
			if (instr(&ml, r, 1, depth + 1))
				return -1;
		m->base = ml.base;
		for (size_t i = 0; i < n; i++) {
			uint64_t h = tm_le64(hi + 8 * i), l = tm_le64(lo + 8 * i);
			m->base = (h << 24) | (l & 0xffffff);
			if (emit_base(m))
				return -1;
		}
		return 0;
	}
	default:
		return -1;
	}
}

int tm_node_path_decode(const char *text, uint64_t *path, unsigned max,
			unsigned *len, struct tm_error *e)
{
	uint8_t raw[MAX_PACKED], out[8 * TM_NODE_PATH_MAX];
	size_t n = 0, bits = 0;
	uint32_t acc = 0;
	const char *s = text, *end;

	*len = 0;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
			   end[-1] == '\r'))
		end--;
	while (end > s && end[-1] == '=')
		end--;
	if (end == s)
		return bad(e, "empty");
	for (const char *c = s; c < end; c++) {
		int v = b64_value(*c);
		if (v < 0)
			return bad(e, "not base64");
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == sizeof(raw))
				return bad(e, "too long");
			raw[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bits >= 6 || acc)
		return bad(e, "not base64 (bad length or trailing bits)");
	if (!n)
		return bad(e, "empty");

	unsigned count = raw[0] >> 1;
	int implicit_zero = !(raw[0] & 1);
	unsigned total = count + (implicit_zero ? 1 : 0);

	if (total > max)
		return bad(e, "longer than this program takes");
	struct rbuf r = { raw, n, 1 };
	struct vm m = { 0, out, 0, (size_t)count * 8 };
	while (m.len < (size_t)count * 8)
		if (instr(&m, &r, 1, 0))
			return bad(e, "corrupt packed block list");
	if (r.pos != r.len)
		return bad(e, "trailing bytes after the block list");
	unsigned k = 0;
	if (implicit_zero)
		path[k++] = 0;
	for (unsigned i = 0; i < count; i++)
		path[k++] = tm_le64(out + 8 * i);
	*len = k;
	return 0;
}
