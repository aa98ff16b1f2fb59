/*
 * tool.h - what every thinmeta tool shares: exit codes, messages, the
 * pre-flight checks of input and output files, number parsing, and a fast
 * buffered output writer.  Tool-side only: the engine never prints.
 */
#ifndef THINMETA_TOOL_H
#define THINMETA_TOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "thinmeta/error.h"

/* Exit codes, for every tool (docs/exit-codes.md). */
#define EXIT_OK		0	/* success */
#define EXIT_FAIL	1	/* damage found, I/O error, bad input */
#define EXIT_USAGE	2	/* command-line misuse, and nothing else */

#define THINMETA_VERSION "1.1.0"

extern const char *tool_name;

void tool_init(const char *name);
/* "NAME: message" on stderr. */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The message of an engine error, with the file it concerns. */
void msg_error(const char *path, const struct tm_error *e);
/* A usage error: message, a hint to --help, and exit 2. */
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * The end of every tool's getopt switch, for what getopt_long() returned as
 * @c: 'h' prints @usage to stdout and exits 0, 'V' prints the bare version
 * and exits 0, ':' (an option without its value) and anything else (an
 * unknown option) are usage errors (exit 2).  The optstring must start
 * with ':' and opterr be 0.
 */
void tool_std_option(int c, char **argv, void (*usage)(FILE *)) __attribute__((noreturn));

/* Parse a whole decimal u64 (no sign, no junk); 0 on success. */
int parse_u64(const char *s, uint64_t *out);
/* Parse an option's u64 value or exit 2 naming the option. */
uint64_t opt_u64(const char *opt, const char *s);

/*
 * Pre-flight checks of a metadata input, as 1.1.0 makes them: it exists,
 * is a regular file or block device, is at least one block, and (when
 * @reject_xml) does not look like XML.  0, or prints and returns -1.
 */
int check_input_file(const char *path, int reject_xml);
/* An output that must exist and hold at least @min_bytes. */
int check_output_file(const char *path, uint64_t min_bytes);

/* Buffered output with fast number formatting. */
struct outbuf {
	int fd;
	char *buf;
	size_t len, cap;
	int err;		/* first write error (negative errno) */
};

int ob_open_fd(struct outbuf *ob, int fd, size_t cap);
/*
 * Room for @n bytes at the end of the buffer (draining it first if need
 * be; @n must be at most the capacity): write there, then ob_commit() the
 * end of what was written.
 */
char *ob_reserve(struct outbuf *ob, size_t n);

static inline void ob_commit(struct outbuf *ob, char *end)
{
	ob->len = (size_t)(end - ob->buf);
}

/* Copy a string literal: its length is known at compile time. */
#define PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

/* Decimal digits of @v (1 for 0). */
static inline unsigned dec_digits(uint64_t v)
{
	static const uint64_t pow10[20] = {
		1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
		10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
		100000000000ull, 1000000000000ull, 10000000000000ull,
		100000000000000ull, 1000000000000000ull, 10000000000000000ull,
		100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull,
	};
	/* log10(2^bits) ~ bits * 1233 / 4096, then one correction */
	unsigned t = ((64 - (unsigned)__builtin_clzll(v | 1)) * 1233) >> 12;

	return t + (v >= pow10[t]);
}

/* Write @v in decimal at @p; returns the end.  Two digits per step, from
 * the last one backwards, straight into place. */
static inline char *put_u64(char *p, uint64_t v)
{
	static const char digits2[] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	unsigned n = v < 10 ? 1 : dec_digits(v);
	char *end = p + n, *q = end;
	uint32_t w;

	while (v > UINT32_MAX) {	/* 64-bit division only while needed */
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		q -= 2;
		memcpy(q, digits2 + d, 2);
	}
	w = (uint32_t)v;
	while (w >= 100) {
		unsigned d = (w % 100) * 2;
		w /= 100;
		q -= 2;
		memcpy(q, digits2 + d, 2);
	}
	if (w >= 10)
		memcpy(q - 2, digits2 + w * 2, 2);
	else
		q[-1] = (char)('0' + w);
	return end;
}
void ob_write(struct outbuf *ob, const char *s, size_t n);
void ob_puts(struct outbuf *ob, const char *s);
void ob_u64(struct outbuf *ob, uint64_t v);
int ob_flush(struct outbuf *ob);
void ob_free(struct outbuf *ob);

#endif
