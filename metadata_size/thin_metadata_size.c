/*
 * thin_metadata_size - estimate the metadata device size a pool needs;
 * command-line and output compatible with thin-provisioning-tools 1.1.0
 * (docs/design/read-tools.md).
 *
 * Sizes are <number>[unit] with units b s k m g t p e (binary multiples,
 * sector = 512 bytes) and K M G T P E (decimal); a bare number is sectors.
 * The result is printed as Rust prints an f64: the shortest decimal that
 * reads back as the same double, never in exponent form; non-integers of
 * 1 or more with two decimals.
 */

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinmeta/metadata_size.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
"Estimate the size of the metadata device needed for a given configuration.\n"
"\n"
"Usage: thin_metadata_size [OPTIONS] --block-size <SIZE[bskmg]> --pool-size <SIZE[bskmgtp]> --max-thins <NUM>\n"
"\n"
"Options:\n"
"  -b, --block-size <SIZE[bskmg]>   Specify the data block size\n"
"  -h, --help                       Print help\n"
"  -m, --max-thins <NUM>            Maximum number of thin devices and snapshots\n"
"  -n, --numeric-only[=<OPT>]       Output numeric value only\n"
"  -s, --pool-size <SIZE[bskmgtp]>  Specify the size of pool device\n"
"  -u, --unit <UNIT>                Specify the output unit in {bskKmMgG} [default: sector]\n"
"  -V, --version                    Print version\n");
}

static const struct option long_opts[] = {
	{ "block-size", required_argument, NULL, 'b' },
	{ "pool-size", required_argument, NULL, 's' },
	{ "max-thins", required_argument, NULL, 'm' },
	{ "unit", required_argument, NULL, 'u' },
	{ "numeric-only", optional_argument, NULL, 'n' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct unit {
	const char *names[3];	/* accepted spellings */
	uint64_t bytes;
	const char *display;	/* 1.1.0's Display ("terabyte" for TiB is 1.1.0's) */
	const char *letter;
};

static const struct unit units[] = {
	{ { "byte", "b", NULL }, 1ull, "byte", "b" },
	{ { "sector", "s", NULL }, 512ull, "sector", "s" },
	{ { "kibibyte", "KiB", "k" }, 1ull << 10, "kibibyte", "k" },
	{ { "mebibyte", "MiB", "m" }, 1ull << 20, "mebibyte", "m" },
	{ { "gibibyte", "GiB", "g" }, 1ull << 30, "gibibyte", "g" },
	{ { "tebibyte", "TiB", "t" }, 1ull << 40, "terabyte", "t" },
	{ { "pebibyte", "PiB", "p" }, 1ull << 50, "pebibyte", "p" },
	{ { "exbibyte", "EiB", "e" }, 1ull << 60, "exbibyte", "e" },
	{ { "kilobyte", "kB", "K" }, 1000ull, "kilobyte", "K" },
	{ { "megabyte", "MB", "M" }, 1000000ull, "megabyte", "M" },
	{ { "gigabyte", "GB", "G" }, 1000000000ull, "gigabyte", "G" },
	{ { "terabyte", "TB", "T" }, 1000000000000ull, "terabyte", "T" },
	{ { "petabyte", "PB", "P" }, 1000000000000000ull, "petabyte", "P" },
	{ { "exabyte", "EB", "E" }, 1000000000000000000ull, "exabyte", "E" },
};

static const struct unit *find_unit(const char *s)
{
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		for (int j = 0; j < 3; j++)
			if (units[i].names[j] && !strcmp(units[i].names[j], s))
				return &units[i];
	return NULL;
}

/* Rust's str::parse::<u64>: NULL, or its words for what is wrong. */
static const char *rs_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (!len)
		return "cannot parse integer from empty string";
	if (*s == '+') {
		s++;
		len--;
		if (!len)
			return "invalid digit found in string";
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return "invalid digit found in string";
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return "number too large to fit in target type";
		v = v * 10 + d;
	}
	*out = v;
	return NULL;
}

/* A size in bytes, as 1.1.0's StorageSize reads it; exits 2 if malformed. */
static uint64_t parse_size(const char *opt, const char *s)
{
	size_t pos = strspn(s, "0123456789");
	const struct unit *u = find_unit("sector");
	uint64_t mult = 0;
	const char *why = rs_u64(s, s[pos] ? pos : strlen(s), &mult);

	if (!why && s[pos] && !(u = find_unit(s + pos)))
		why = "Invalid unit specifier";
	if (!why && mult > UINT64_MAX / u->bytes)
		why = "value out of bounds";
	if (why)
		usage_error("invalid value '%s' for '%s': %s", s, opt, why);
	return mult * u->bytes;
}

/*
 * An f64 as Rust's Display writes it: the shortest digits that read back
 * as @v (the nearest such, a tie rounded up), placed around a decimal
 * point, never an exponent.
 */
static void rust_f64(double v, char *out, size_t len)
{
	static char exact[900];
	char digits[24], cand[48];
	int nd = 0, exp, point;
	size_t o = 0;

	if (v == 0) {
		snprintf(out, len, "0");
		return;
	}
	/* every double is a finite decimal: 800 digits hold it exactly */
	snprintf(exact, sizeof(exact), "%.800e", v);
	exp = atoi(strchr(exact, 'e') + 1);
	char all[810];
	int na = 0;
	for (const char *q = exact; *q && *q != 'e'; q++)
		if (*q >= '0' && *q <= '9')
			all[na++] = *q;
	for (int p = 1; p <= 17; p++) {
		/* round the exact digits to p places, half up */
		int e2 = exp;
		memcpy(digits, all, (size_t)p);
		if (p < na && all[p] >= '5') {
			int i = p - 1;
			while (i >= 0 && digits[i] == '9')
				digits[i--] = '0';
			if (i >= 0) {
				digits[i]++;
			} else {
				memmove(digits + 1, digits, (size_t)p - 1);
				digits[0] = '1';
				e2++;
			}
		}
		snprintf(cand, sizeof(cand), "%c.%.*se%d", digits[0], p - 1, digits + 1, e2);
		nd = p;
		if (strtod(cand, NULL) == v) {
			exp = e2;
			break;
		}
	}
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;

	point = exp + 1;	/* digits before the decimal point */
#define PUT(c) do { if (o + 1 < len) out[o++] = (c); } while (0)
	if (point <= 0) {
		PUT('0');
		PUT('.');
		for (int i = 0; i < -point; i++)
			PUT('0');
		for (int i = 0; i < nd; i++)
			PUT(digits[i]);
	} else {
		for (int i = 0; i < point; i++)
			PUT(i < nd ? digits[i] : '0');
		if (point < nd) {
			PUT('.');
			for (int i = point; i < nd; i++)
				PUT(digits[i]);
		}
	}
#undef PUT
	out[o] = '\0';
}

enum format { FULL, SHORT_UNITS, LONG_UNITS, NUMERIC_ONLY };

static void once(int *seen, const char *opt)
{
	if (*seen)
		usage_error("the argument '%s' cannot be used multiple times", opt);
	*seen = 1;
}

int main(int argc, char **argv)
{
	int have_b = 0, have_s = 0, have_m = 0, have_u = 0, have_n = 0, c;
	uint64_t block = 0, pool = 0, max_thins = 0;
	const struct unit *unit = find_unit("sector");
	enum format fmt = FULL;

	tool_init("thin_metadata_size");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":b:s:m:u:n::hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			once(&have_b, "--block-size <SIZE[bskmg]>");
			block = parse_size("--block-size <SIZE[bskmg]>", optarg);
			break;
		case 's':
			once(&have_s, "--pool-size <SIZE[bskmgtp]>");
			pool = parse_size("--pool-size <SIZE[bskmgtp]>", optarg);
			break;
		case 'm': {
			once(&have_m, "--max-thins <NUM>");
			const char *why = rs_u64(optarg, strlen(optarg), &max_thins);
			if (why)
				usage_error("invalid value '%s' for '--max-thins <NUM>': %s",
					    optarg, why);
			break;
		}
		case 'u':
			once(&have_u, "--unit <UNIT>");
			if (!(unit = find_unit(optarg)))
				usage_error("invalid value '%s' for '--unit <UNIT>': Invalid unit specifier",
					    optarg);
			break;
		case 'n': {
			once(&have_n, "--numeric-only[=<OPT>]");
			const char *v = optarg && optarg[0] == '=' ? optarg + 1 : optarg;
			if (!v)
				fmt = NUMERIC_ONLY;
			else if (!strcmp(v, "short"))
				fmt = SHORT_UNITS;
			else if (!strcmp(v, "long"))
				fmt = LONG_UNITS;
			else
				usage_error("invalid value '%s' for '--numeric-only[=<OPT>]' "
					    "[possible values: short, long]", v);
			break;
		}
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!have_b || !have_s || !have_m)
		usage_error("the following required arguments were not provided:%s%s%s",
			    have_b ? "" : " --block-size <SIZE[bskmg]>",
			    have_s ? "" : " --pool-size <SIZE[bskmgtp]>",
			    have_m ? "" : " --max-thins <NUM>");

	const char *why = tm_data_block_bytes_problem(block);
	if (why) {
		msg("%s", why);
		return EXIT_FAIL;
	}
	if (pool < block) {
		msg("pool size must be larger than block size");
		return EXIT_FAIL;
	}

	uint64_t bytes = tm_metadata_size_estimate(pool / block, max_thins);
	double size = (double)bytes / (double)unit->bytes;
	char num[64];
	if (size < 1.0 || (double)(uint64_t)size == size)
		rust_f64(size, num, sizeof(num));
	else
		snprintf(num, sizeof(num), "%.2f", size);
	switch (fmt) {
	case FULL:
		printf("%s %ss\n", num, unit->display);
		break;
	case SHORT_UNITS:
		printf("%s%s\n", num, unit->letter);
		break;
	case LONG_UNITS:
		printf("%s%ss\n", num, unit->display);
		break;
	case NUMERIC_ONLY:
		printf("%s\n", num);
		break;
	}
	if (fflush(stdout) || ferror(stdout)) {
		msg("writing standard output failed");
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
