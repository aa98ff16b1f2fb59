/*
 * json.h - a small streaming JSON writer for the tools' machine-readable
 * output (thin_check --json; docs/json.md).  Tool-side only.
 *
 * Values are written as they come, two-space indented, one member per
 * line; the writer tracks commas.  @key is the member name inside an
 * object and NULL inside an array or at the top.  Strings are escaped as
 * RFC 8259 requires (bytes >= 0x80 are passed through: the tools' strings
 * are ASCII or the user's UTF-8 file names).
 */
#ifndef THINMETA_JSON_H
#define THINMETA_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json_writer {
	FILE *f;
	int depth;
	int count[JSON_MAX_DEPTH];	/* members written at each level */
};

void jw_init(struct json_writer *w, FILE *f);
void jw_obj_begin(struct json_writer *w, const char *key);
void jw_obj_end(struct json_writer *w);
void jw_arr_begin(struct json_writer *w, const char *key);
void jw_arr_end(struct json_writer *w);
/* @v NULL writes null. */
void jw_str(struct json_writer *w, const char *key, const char *v);
void jw_u64(struct json_writer *w, const char *key, uint64_t v);
void jw_bool(struct json_writer *w, const char *key, int v);
void jw_null(struct json_writer *w, const char *key);
/* After the top-level value: a final newline. */
void jw_end(struct json_writer *w);

/* A JSON string literal of @s, quotes included. */
void json_put_string(FILE *f, const char *s);

#endif
