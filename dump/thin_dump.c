/*
 * thin_dump - dump thin-provisioning metadata as XML or human-readable
 * text; command-line and output compatible with thin-provisioning-tools
 * 1.1.0 (README.md, docs/thin_dump.md).
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../repair/report.h"
#include "emit.h"
#include "thinmeta/dump.h"
#include "thinmeta/io.h"
#include "thinmeta/repair.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: thin_dump [OPTIONS] <INPUT>\n"
"\n"
"Dump thin-provisioning metadata to stdout in XML format\n"
"\n"
"Arguments:\n"
"  <INPUT>  Specify the input device to dump\n"
"\n"
"Options:\n"
"  -q, --quiet                      Suppress output messages, return only exit code.\n"
"  -r, --repair                     Repair the metadata whilst dumping it\n"
"      --skip-mappings              Do not dump the mappings\n"
"      --data-block-size <SECTORS>  Provide the data block size for repairing\n"
"      --dev-id <THIN_ID>           Dump the specified device (repeatable)\n"
"  -f, --format <TYPE>              Choose the output format: xml (default) or human_readable\n"
"  -m, --metadata-snap[=<BLOCKNR>]  Access the metadata snapshot on a live pool\n"
"      --nr-data-blocks <NUM>       Override the number of data blocks if needed\n"
"  -o, --output <FILE>              Specify the output file rather than stdout\n"
"      --transaction-id <NUM>       Override the transaction id if needed\n"
"      --expand-shared              Expand shared mappings: no <def>/<ref>, every\n"
"                                   device in full (the canonical form for comparing pools)\n"
"  -h, --help                       Print help\n"
"  -V, --version                    Print version\n"
"\n"
"Exit status: 0 success, 1 failure (damaged metadata, I/O error, bad input),\n"
"2 command-line misuse.\n");
}

enum {
	OPT_SKIP_MAPPINGS = 256,
	OPT_DATA_BLOCK_SIZE,
	OPT_DEV_ID,
	OPT_NR_DATA_BLOCKS,
	OPT_TRANSACTION_ID,
	OPT_EXPAND_SHARED,
};

static const struct option long_opts[] = {
	{ "quiet", no_argument, NULL, 'q' },
	{ "repair", no_argument, NULL, 'r' },
	{ "skip-mappings", no_argument, NULL, OPT_SKIP_MAPPINGS },
	{ "data-block-size", required_argument, NULL, OPT_DATA_BLOCK_SIZE },
	{ "dev-id", required_argument, NULL, OPT_DEV_ID },
	{ "format", required_argument, NULL, 'f' },
	{ "metadata-snap", optional_argument, NULL, 'm' },
	{ "nr-data-blocks", required_argument, NULL, OPT_NR_DATA_BLOCKS },
	{ "output", required_argument, NULL, 'o' },
	{ "transaction-id", required_argument, NULL, OPT_TRANSACTION_ID },
	{ "expand-shared", no_argument, NULL, OPT_EXPAND_SHARED },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct output {
	const char *path;	/* NULL: stdout */
	char *tmp;		/* temporary file renamed onto path at the end */
	int fd;
};

/*
 * A regular file (or a new one) is written under a temporary name and
 * renamed into place only when the dump is complete, so a failed dump
 * never leaves partial XML behind nor destroys an earlier file.
 */
static int output_open(struct output *o)
{
	struct stat st;

	if (!o->path) {
		o->fd = STDOUT_FILENO;
		return 0;
	}
	if (stat(o->path, &st) == 0 && !S_ISREG(st.st_mode)) {
		o->fd = open(o->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (o->fd < 0) {
			msg("%s: %s", o->path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (asprintf(&o->tmp, "%s.XXXXXX", o->path) < 0) {
		o->tmp = NULL;
		msg("out of memory");
		return -1;
	}
	o->fd = mkstemp(o->tmp);
	if (o->fd < 0) {
		msg("%s: cannot create output: %s", o->path, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return -1;
	}
	if (fchmod(o->fd, 0644) < 0) {
		/* keep mkstemp's mode */
	}
	return 0;
}

static int output_close(struct output *o, int ok)
{
	int r = 0;

	if (!o->path)
		return 0;
	if (ok && o->tmp && fsync(o->fd) < 0)
		ok = 0, r = -errno;
	if (close(o->fd) < 0 && ok)
		ok = 0, r = -errno;
	if (o->tmp) {
		if (ok && rename(o->tmp, o->path) < 0)
			r = -errno, ok = 0;
		if (!ok)
			unlink(o->tmp);
		free(o->tmp);
	}
	return r;
}

/*
 * --repair: salvage (thinmeta/repair.h) and dump what survives; the report
 * goes to stderr when something was lost or guessed.  Returns
 * DUMP_REPAIR_REPORTED when it has said why it failed.
 */
#define DUMP_REPAIR_REPORTED 1

static int dump_repair(struct tm_bm *bm, const char *input, const struct tm_dump_opts *o,
		       const struct tm_ir_sink *sink, struct tm_error *err)
{
	struct tm_repair_opts ro = { 0 };
	struct tm_salvage_emit_opts eo = { 0 };
	struct tm_salvage *s;
	int r;

	ro.set_transaction_id = o->set_transaction_id;
	ro.transaction_id = o->transaction_id;
	ro.set_nr_data_blocks = o->set_nr_data_blocks;
	ro.nr_data_blocks = o->nr_data_blocks;
	ro.set_data_block_size = o->set_data_block_size;
	ro.data_block_size = o->data_block_size;
	r = tm_salvage(bm, &ro, &s, err);
	if (r) {
		repair_report_failure(stderr, input, r, err->msg[0] ? err->msg : strerror(-r),
				      s ? tm_salvage_report(s) : NULL, 1);
		tm_salvage_free(s);
		return DUMP_REPAIR_REPORTED;
	}
	eo.expand_shared = o->expand_shared;
	eo.skip_mappings = o->skip_mappings;
	eo.dev_ids = o->dev_ids;
	eo.nr_dev_ids = o->nr_dev_ids;
	eo.keep_flags = 1;
	r = tm_salvage_emit(s, &eo, sink, err);
	if (!r && repair_report_eventful(tm_salvage_report(s)))
		repair_report_print(stderr, input, tm_salvage_report(s));
	tm_salvage_free(s);
	return r;
}

int main(int argc, char **argv)
{
	struct tm_dump_opts opts = { 0 };
	struct output out = { 0 };
	uint64_t *dev_ids = NULL;
	size_t nr_dev_ids = 0;
	int quiet = 0, repair = 0, human = 0, c;
	const char *input;

	tool_init("thin_dump");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qrf:m::o:hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = 1;
			break;
		case 'r':
			repair = 1;
			break;
		case OPT_SKIP_MAPPINGS:
			opts.skip_mappings = 1;
			break;
		case OPT_DATA_BLOCK_SIZE: {
			uint64_t v = opt_u64("--data-block-size", optarg);
			if (v > UINT32_MAX)
				usage_error("invalid value '%s' for '--data-block-size'", optarg);
			opts.set_data_block_size = 1;
			opts.data_block_size = (uint32_t)v;
			break;
		}
		case OPT_DEV_ID: {
			uint64_t *n = realloc(dev_ids, (nr_dev_ids + 1) * sizeof(*n));
			if (!n) {
				msg("out of memory");
				return EXIT_FAIL;
			}
			dev_ids = n;
			dev_ids[nr_dev_ids++] = opt_u64("--dev-id", optarg);
			break;
		}
		case 'f':
			if (!strcmp(optarg, "xml"))
				human = 0;
			else if (!strcmp(optarg, "human_readable"))
				human = 1;
			else
				usage_error("invalid value '%s' for '--format': xml or human_readable",
					    optarg);
			break;
		case 'm':
			opts.metadata_snap = 1;
			if (optarg) {
				const char *v = optarg[0] == '=' ? optarg + 1 : optarg;
				opts.snap_block = opt_u64("--metadata-snap", v);
			}
			break;
		case OPT_NR_DATA_BLOCKS:
			opts.set_nr_data_blocks = 1;
			opts.nr_data_blocks = opt_u64("--nr-data-blocks", optarg);
			break;
		case 'o':
			out.path = optarg;
			break;
		case OPT_TRANSACTION_ID:
			opts.set_transaction_id = 1;
			opts.transaction_id = opt_u64("--transaction-id", optarg);
			break;
		case OPT_EXPAND_SHARED:
			opts.expand_shared = 1;
			break;
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (optind >= argc)
		usage_error("no input file given");
	if (optind + 1 < argc)
		usage_error("unexpected argument '%s'", argv[optind + 1]);
	input = argv[optind];
	if (repair && opts.metadata_snap)
		usage_error("--repair cannot be used with --metadata-snap");
	opts.dev_ids = dev_ids;
	opts.nr_dev_ids = nr_dev_ids;
	if (quiet)
		freopen("/dev/null", "w", stderr) ? (void)0 : (void)0;

	if (check_input_file(input, 1))
		return EXIT_FAIL;

	struct tm_dev *dev;
	int r = tm_dev_open_file(input, opts.metadata_snap ? 0 : TM_DEV_EXCL, &dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?); reserve a metadata "
			    "snapshot and dump it with -m", input);
		else
			msg("%s: %s", input, strerror(-r));
		return EXIT_FAIL;
	}
	struct tm_bm *bm;
	if ((r = tm_bm_create(dev, 0, &bm))) {
		msg("out of memory");
		tm_dev_close(dev);
		return EXIT_FAIL;
	}

	if (output_open(&out)) {
		tm_bm_destroy(bm);
		tm_dev_close(dev);
		return EXIT_FAIL;
	}
	struct outbuf ob;
	struct emitter em = { &ob, 0 };
	struct tm_ir_sink sink;
	struct tm_error err;
	tm_error_clear(&err);
	ob_open_fd(&ob, out.fd, 1u << 20);
	if (human)
		emit_human_sink(&em, &sink);
	else
		emit_xml_sink(&em, &sink);

	if (repair)
		r = dump_repair(bm, input, &opts, &sink, &err);
	else
		r = tm_dump(bm, &opts, &sink, &err);
	int wr = ob_flush(&ob);
	if (r && ob.err)	/* the sink stopped the walk: a write failed */
		wr = ob.err;
	int status = EXIT_OK;
	if (wr) {
		if (wr != -EPIPE)
			msg("writing %s: %s", out.path ? out.path : "standard output",
			    strerror(-wr));
		status = EXIT_FAIL;
	} else if (r == DUMP_REPAIR_REPORTED) {
		status = EXIT_FAIL;
	} else if (r) {
		msg_error(input, &err);
		status = EXIT_FAIL;
	}
	int cr = output_close(&out, status == EXIT_OK);
	if (cr && status == EXIT_OK) {
		msg("writing %s: %s", out.path, strerror(-cr));
		status = EXIT_FAIL;
	}
	ob_free(&ob);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	free(dev_ids);
	return status;
}
