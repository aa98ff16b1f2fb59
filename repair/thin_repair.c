/*
 * thin_repair - salvage damaged thin-provisioning metadata onto another
 * device; command-line compatible with thin-provisioning-tools 1.1.0
 * (docs/thin_repair.md).
 *
 * The input is opened read-only and never written.  The engine salvages
 * what it can (thinmeta/repair.h) before the output is touched; the
 * metadata builder (thinmeta/builder.h) then writes fresh metadata, block 0
 * zeroed first and the superblock last.  A report on stderr says what was
 * lost and what was guessed.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "thinmeta/builder.h"
#include "thinmeta/format.h"
#include "thinmeta/io.h"
#include "thinmeta/repair.h"
#include "tool.h"

#define MIN_OUTPUT_BYTES 40960u		/* 10 blocks, as 1.1.0 requires */

static void usage(FILE *f)
{
	fprintf(f,
"Repair thin-provisioning metadata, and write it to different device or file\n"
"\n"
"Usage: thin_repair [OPTIONS] --input <FILE> --output <FILE>\n"
"\n"
"Options:\n"
"      --data-block-size <SECTORS>  Provide the data block size for repairing\n"
"  -h, --help                       Print help\n"
"  -i, --input <FILE>               Specify the input device\n"
"      --nr-data-blocks <NUM>       Override the number of data blocks if needed\n"
"  -o, --output <FILE>              Specify the output device\n"
"  -q, --quiet                      Suppress output messages, return only exit code.\n"
"      --transaction-id <NUM>       Override the transaction id if needed\n"
"  -V, --version                    Print version\n"
"\n"
"The input is only read.  The output must exist and hold at least 40960 bytes;\n"
"it is not grown.  Everything intact is kept; what was lost or guessed is\n"
"reported on stderr (not with -q).  One extra argument, such as the empty one\n"
"lvconvert passes, is ignored.\n"
"Exit status: 0 success, 1 failure (nothing usable, a value needed, I/O error),\n"
"2 command-line misuse.\n");
}

enum {
	OPT_DATA_BLOCK_SIZE = 256,
	OPT_NR_DATA_BLOCKS,
	OPT_TRANSACTION_ID,
	OPT_FORCE_SCAN,
};

static const struct option long_opts[] = {
	{ "input", required_argument, NULL, 'i' },
	{ "output", required_argument, NULL, 'o' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "data-block-size", required_argument, NULL, OPT_DATA_BLOCK_SIZE },
	{ "nr-data-blocks", required_argument, NULL, OPT_NR_DATA_BLOCKS },
	{ "transaction-id", required_argument, NULL, OPT_TRANSACTION_ID },
	{ "force-scan", no_argument, NULL, OPT_FORCE_SCAN },	/* hidden: tests */
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int same_file(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int open_bm(const char *path, unsigned flags, struct tm_dev **dev, struct tm_bm **bm)
{
	int r = tm_dev_open_file(path, flags, dev);

	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?)", path);
		else
			msg("%s: %s", path, strerror(-r));
		return -1;
	}
	if (tm_bm_create(*dev, 0, bm)) {
		msg("out of memory");
		tm_dev_close(*dev);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tm_repair_opts ropts = { 0 };
	const char *input = NULL, *output = NULL;
	int quiet = 0, c;

	tool_init("thin_repair");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:o:qhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			input = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case OPT_DATA_BLOCK_SIZE: {
			uint64_t v = opt_u64("--data-block-size", optarg);
			if (v < TM_DATA_BLOCK_SIZE_MIN || v > TM_DATA_BLOCK_SIZE_MAX ||
			    v % TM_DATA_BLOCK_SIZE_MIN)
				usage_error("invalid value '%s' for '--data-block-size': a multiple "
					    "of 128 sectors from 128 to 2097152", optarg);
			ropts.set_data_block_size = 1;
			ropts.data_block_size = (uint32_t)v;
			break;
		}
		case OPT_NR_DATA_BLOCKS:
			ropts.set_nr_data_blocks = 1;
			ropts.nr_data_blocks = opt_u64("--nr-data-blocks", optarg);
			if (ropts.nr_data_blocks > TM_MAX_DATA_BLOCK + 1)
				usage_error("invalid value '%s' for '--nr-data-blocks': at most 2^40",
					    optarg);
			break;
		case OPT_TRANSACTION_ID:
			ropts.set_transaction_id = 1;
			ropts.transaction_id = opt_u64("--transaction-id", optarg);
			break;
		case OPT_FORCE_SCAN:
			ropts.force_scan = 1;
			break;
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	/* lvconvert (lvm2 2.03.16-21) passes one empty argument: ignore one */
	if (optind + 1 < argc)
		usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (!input && !output)
		usage_error("the following required arguments were not provided: --input <FILE> --output <FILE>");
	if (!input)
		usage_error("the following required arguments were not provided: --input <FILE>");
	if (!output)
		usage_error("the following required arguments were not provided: --output <FILE>");
	if (quiet && !freopen("/dev/null", "w", stderr))
		return EXIT_FAIL;

	struct stat in_st, out_st;
	if (check_input_file(input, 1) || check_output_file(output, MIN_OUTPUT_BYTES))
		return EXIT_FAIL;
	if (stat(input, &in_st) == 0 && stat(output, &out_st) == 0 && same_file(&in_st, &out_st)) {
		msg("%s: the input and the output are the same; repair writes a new copy "
		    "onto another device", output);
		return EXIT_FAIL;
	}

	struct tm_dev *in_dev, *out_dev = NULL;
	struct tm_bm *in_bm, *out_bm = NULL;
	if (open_bm(input, TM_DEV_EXCL, &in_dev, &in_bm))
		return EXIT_FAIL;

	int status = EXIT_FAIL;
	struct tm_salvage *s = NULL;
	struct tm_builder *b = NULL;
	struct tm_error err;
	tm_error_clear(&err);
	int r = tm_salvage(in_bm, &ropts, &s, &err);
	if (r) {
		repair_report_failure(stderr, input, r, err.msg[0] ? err.msg : strerror(-r),
				      s ? tm_salvage_report(s) : NULL, 0);
		goto out;
	}

	/* only now is the output touched */
	if (open_bm(output, TM_DEV_WRITE | TM_DEV_EXCL, &out_dev, &out_bm))
		goto out;
	struct tm_builder_opts bopts = { 0 };
	bopts.recount_mapped_blocks = 1;
	if ((r = tm_builder_create(out_bm, &bopts, &b, &err))) {
		msg_error(output, &err);
		goto out;
	}
	struct tm_ir_sink sink;
	struct tm_salvage_emit_opts eopts = { 0 };
	tm_builder_sink(b, &sink);
	r = tm_salvage_emit(s, &eopts, &sink, &err);
	if (r) {
		const struct tm_error *be = tm_builder_error(b);
		if (be->err) {
			msg_error(output, be);
			if (be->rule == TM_RULE_TOO_SMALL)
				msg("%s: the output is too small for the salvaged metadata; "
				    "use a device at least as large as the input", output);
		} else {
			msg_error(input, &err);
		}
		goto out;
	}
	if ((r = tm_builder_finish(b, &err))) {
		msg_error(output, &err);
		goto out;
	}
	status = EXIT_OK;
	if (!quiet) {
		const struct tm_repair_report *rep = tm_salvage_report(s);
		if (repair_report_eventful(rep))
			repair_report_print(stderr, input, rep);
		else
			repair_report_summary(stderr, rep);
	}
out:
	tm_builder_destroy(b);
	tm_salvage_free(s);
	if (out_bm)
		tm_bm_destroy(out_bm);
	tm_dev_close(out_dev);
	tm_bm_destroy(in_bm);
	tm_dev_close(in_dev);
	return status;
}
