/*
 * thin_rmap - which thin blocks map given regions of the data device;
 * command-line and output compatible with thin-provisioning-tools 1.1.0
 * (docs/design/read-tools.md).  One line per run:
 *   data <begin>..<end> -> thin(<dev>) <begin>..<end>
 * (half-open ranges of consecutive data and thin blocks of one device).
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinmeta/io.h"
#include "thinmeta/metadata.h"
#include "thinmeta/rmap.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
"Output reverse map of a thin provisioned region of blocks\n"
"\n"
"Usage: thin_rmap --region <BLOCK_RANGE> <INPUT>\n"
"\n"
"Arguments:\n"
"  <INPUT>  Specify the input device\n"
"\n"
"Options:\n"
"  -h, --help                  Print help\n"
"      --region <BLOCK_RANGE>  Specify range of blocks on the data device\n"
"  -V, --version               Print version\n");
}

enum { OPT_REGION = 256 };

static const struct option long_opts[] = {
	{ "region", required_argument, NULL, OPT_REGION },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/*
 * A u64 as Rust's str::parse reads one (an optional '+', then decimal
 * digits); NULL on success, else Rust's words for what is wrong.
 */
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

/* BEGIN..END, as 1.1.0's RangeU64; exits 2 on a malformed region. */
static struct tm_range parse_region(const char *s)
{
	const char *sep = strstr(s, "..");
	const char *why;
	struct tm_range r;

	if (!sep) {	/* the whole text is the begin; there is no end */
		why = rs_u64(s, strlen(s), &r.begin);
		if (!why)
			why = "badly formed region";
	} else if ((why = rs_u64(s, (size_t)(sep - s), &r.begin)))
		;
	else {
		const char *e = sep + 2, *more = strstr(e, "..");
		size_t len = more ? (size_t)(more - e) : strlen(e);
		if ((why = rs_u64(e, len, &r.end)))
			;
		else if (more)
			why = "badly formed region";
		else if (r.end <= r.begin)
			why = "end <= begin";
	}
	if (why)
		usage_error("invalid value '%s' for '--region <BLOCK_RANGE>': %s", s, why);
	return r;
}

int main(int argc, char **argv)
{
	struct tm_range *regions = NULL;
	size_t nr_regions = 0;
	int c;

	tool_init("thin_rmap");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hV", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_REGION: {
			struct tm_range r = parse_region(optarg);	/* may exit */
			struct tm_range *n = realloc(regions, (nr_regions + 1) * sizeof(*n));
			if (!n) {
				msg("out of memory");
				return EXIT_FAIL;
			}
			regions = n;
			regions[nr_regions++] = r;
			break;
		}
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (!nr_regions)
		usage_error("the following required arguments were not provided: --region <BLOCK_RANGE>");
	if (optind >= argc)
		usage_error("no input file given");
	if (optind + 1 < argc)
		usage_error("unexpected argument '%s'", argv[optind + 1]);
	const char *input = argv[optind];

	if (check_input_file(input, 1)) {
		free(regions);
		return EXIT_FAIL;
	}
	struct tm_dev *dev;
	int r = tm_dev_open_file(input, TM_DEV_EXCL, &dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?)", input);
		else
			msg("%s: %s", input, strerror(-r));
		free(regions);
		return EXIT_FAIL;
	}
	struct tm_bm *bm;
	if (tm_bm_create(dev, 0, &bm)) {
		msg("out of memory");
		tm_dev_close(dev);
		free(regions);
		return EXIT_FAIL;
	}

	struct tm_error err;
	struct tm_view view;
	struct tm_rmap_run *runs = NULL;
	uint64_t nr = 0;
	int status = EXIT_FAIL;

	tm_error_clear(&err);
	r = tm_view_live(bm, &view, &err);
	if (!r)
		r = tm_rmap(bm, &view, regions, nr_regions, &runs, &nr, &err);
	if (r) {
		msg_error(input, &err);
	} else {
		struct outbuf ob;
		if (ob_open_fd(&ob, STDOUT_FILENO, 1u << 20)) {
			msg("out of memory");
		} else {
			for (uint64_t i = 0; i < nr && !ob.err; i++) {
				const struct tm_rmap_run *x = &runs[i];
				/* formatted in place: 5 numbers of at most 20 digits */
				char *p = ob_reserve(&ob, 128);
				p = PUT_LIT(p, "data ");
				p = put_u64(p, x->data_begin);
				p = PUT_LIT(p, "..");
				p = put_u64(p, x->data_end);
				p = PUT_LIT(p, " -> thin(");
				p = put_u64(p, x->dev_id);
				p = PUT_LIT(p, ") ");
				p = put_u64(p, x->thin_begin);
				p = PUT_LIT(p, "..");
				p = put_u64(p, x->thin_begin + (x->data_end - x->data_begin));
				p = PUT_LIT(p, "\n");
				ob_commit(&ob, p);
			}
			r = ob_flush(&ob);
			if (r && r != -EPIPE)
				msg("writing standard output: %s", strerror(-r));
			if (!r)
				status = EXIT_OK;
			ob_free(&ob);
		}
	}
	free(runs);
	free(regions);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	return status;
}
