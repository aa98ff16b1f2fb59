/*
 * json.c - the tools' JSON writer (json.h).
 */
#include <inttypes.h>

#include "json.h"

void json_put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void jw_init(struct json_writer *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->count[0] = 0;
}

/* The separator, indentation and key before a value. */
static void lead(struct json_writer *w, const char *key)
{
	if (w->depth > 0) {
		if (w->count[w->depth]++)
			fputc(',', w->f);
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	if (key) {
		json_put_string(w->f, key);
		fputs(": ", w->f);
	}
}

static void open_(struct json_writer *w, const char *key, char c)
{
	lead(w, key);
	fputc(c, w->f);
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->count[w->depth] = 0;
}

static void close_(struct json_writer *w, char c)
{
	int had = w->count[w->depth];

	if (w->depth > 0)
		w->depth--;
	if (had) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	fputc(c, w->f);
}

void jw_obj_begin(struct json_writer *w, const char *key)
{
	open_(w, key, '{');
}

void jw_obj_end(struct json_writer *w)
{
	close_(w, '}');
}

void jw_arr_begin(struct json_writer *w, const char *key)
{
	open_(w, key, '[');
}

void jw_arr_end(struct json_writer *w)
{
	close_(w, ']');
}

void jw_str(struct json_writer *w, const char *key, const char *v)
{
	lead(w, key);
	if (v)
		json_put_string(w->f, v);
	else
		fputs("null", w->f);
}

void jw_u64(struct json_writer *w, const char *key, uint64_t v)
{
	lead(w, key);
	fprintf(w->f, "%" PRIu64, v);
}

void jw_bool(struct json_writer *w, const char *key, int v)
{
	lead(w, key);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct json_writer *w, const char *key)
{
	lead(w, key);
	fputs("null", w->f);
}

void jw_end(struct json_writer *w)
{
	fputc('\n', w->f);
}
