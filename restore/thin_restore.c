/*
 * thin_restore - write new thin-provisioning metadata from thin_dump XML;
 * command-line compatible with thin-provisioning-tools 1.1.0.
 *
 * The XML reader (xml_read.c; on several threads, xml_par.c) feeds the
 * engine's metadata builder (thinmeta/builder.h).  The output must exist and is never grown; its
 * superblock is zeroed before anything else and written last, so a restore
 * that fails leaves no valid metadata behind.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinmeta/builder.h"
#include "thinmeta/io.h"
#include "tool.h"
#include "xml_read.h"

#define MIN_OUTPUT_BYTES 40960u		/* 10 blocks, as 1.1.0 requires */
#define PROGRESS_MIN_BYTES (16u << 20)	/* smaller inputs finish too fast */

static void usage(FILE *f)
{
	fprintf(f,
"Convert XML format metadata to binary.\n"
"\n"
"Usage: thin_restore [OPTIONS] --input <FILE> --output <FILE>\n"
"\n"
"Options:\n"
"      --data-block-size <SECTORS>  Override the data block size if needed\n"
"  -h, --help                       Print help\n"
"  -i, --input <FILE>               Specify the input xml\n"
"      --nr-data-blocks <NUM>       Override the number of data blocks if needed\n"
"  -o, --output <FILE>              Specify the output device\n"
"  -q, --quiet                      Suppress output messages, return only exit code.\n"
"      --transaction-id <NUM>       Override the transaction id if needed\n"
"  -V, --version                    Print version\n"
"\n"
"The output must exist and hold at least 40960 bytes; it is not grown.\n"
"Exit status: 0 success, 1 failure (bad XML, output too small, I/O error),\n"
"2 command-line misuse.\n");
}

enum {
	OPT_DATA_BLOCK_SIZE = 256,
	OPT_NR_DATA_BLOCKS,
	OPT_TRANSACTION_ID,
};

static const struct option long_opts[] = {
	{ "input", required_argument, NULL, 'i' },
	{ "output", required_argument, NULL, 'o' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "data-block-size", required_argument, NULL, OPT_DATA_BLOCK_SIZE },
	{ "nr-data-blocks", required_argument, NULL, OPT_NR_DATA_BLOCKS },
	{ "transaction-id", required_argument, NULL, OPT_TRANSACTION_ID },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* ------------------------------------------------------------------ */
/* Progress: a percentage on a terminal, for large inputs only. */

struct progress {
	uint64_t total;
	int last;
	int shown;
};

static void progress_cb(void *ctx, uint64_t bytes)
{
	struct progress *p = ctx;
	int pct = p->total ? (int)(bytes * 100 / p->total) : 100;

	if (pct > 100)
		pct = 100;
	if (pct == p->last)
		return;
	p->last = pct;
	p->shown = 1;
	fprintf(stderr, "\r%s: restoring: %3d%%", tool_name, pct);
	fflush(stderr);
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = 0;
}

/* ------------------------------------------------------------------ */
/*
 * For tests: THIN_RESTORE_THREADS (parser threads; 1 = one expat parser
 * reading in turn) and THIN_RESTORE_PIECE (bytes per piece) override the
 * reader's choices, THIN_RESTORE_EXPAT_ONLY=1 turns the canonical-line
 * fast path off; THIN_RESTORE_STATS prints what the reader did on stderr.  Not in --help: they change nothing but speed.
 */
static void reader_knobs(struct xml_read_opts *o)
{
	const char *s;
	char *end;

	if ((s = getenv("THIN_RESTORE_THREADS")) && *s) {
		unsigned long v = strtoul(s, &end, 10);
		if (!*end && v >= 1 && v <= 64)
			o->threads = (unsigned)v;
	}
	if ((s = getenv("THIN_RESTORE_EXPAT_ONLY")) && !strcmp(s, "1"))
		o->expat_only = 1;
	if ((s = getenv("THIN_RESTORE_PIECE")) && *s) {
		unsigned long long v = strtoull(s, &end, 10);
		if (!*end && v >= 1)
			o->piece_bytes = v;
	}
}

static int open_input(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			msg("Couldn't find input file '%s'", path);
		else
			msg("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0 || S_ISDIR(st->st_mode)) {
		msg("%s: %s", path, S_ISDIR(st->st_mode) ? "is a directory" : strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct tm_builder_opts opts = { 0 };
	const char *input = NULL, *output = NULL;
	int quiet = 0, c;

	tool_init("thin_restore");
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
			if (v == 0 || v > UINT32_MAX)
				usage_error("invalid value '%s' for '--data-block-size'", optarg);
			opts.set_data_block_size = 1;
			opts.data_block_size = (uint32_t)v;
			break;
		}
		case OPT_NR_DATA_BLOCKS:
			opts.set_nr_data_blocks = 1;
			opts.nr_data_blocks = opt_u64("--nr-data-blocks", optarg);
			break;
		case OPT_TRANSACTION_ID:
			opts.set_transaction_id = 1;
			opts.transaction_id = opt_u64("--transaction-id", optarg);
			break;
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!input && !output)
		usage_error("the following required arguments were not provided: --input <FILE> --output <FILE>");
	if (!input)
		usage_error("the following required arguments were not provided: --input <FILE>");
	if (!output)
		usage_error("the following required arguments were not provided: --output <FILE>");
	if (quiet && !freopen("/dev/null", "w", stderr))
		return EXIT_FAIL;

	struct stat in_st, out_st;
	int in_fd = open_input(input, &in_st);
	if (in_fd < 0)
		return EXIT_FAIL;
	if (check_output_file(output, MIN_OUTPUT_BYTES)) {
		close(in_fd);
		return EXIT_FAIL;
	}
	if (stat(output, &out_st) == 0 && out_st.st_dev == in_st.st_dev &&
	    out_st.st_ino == in_st.st_ino) {
		msg("%s: the input and the output are the same file", output);
		close(in_fd);
		return EXIT_FAIL;
	}

	struct tm_dev *dev;
	int r = tm_dev_open_file(output, TM_DEV_WRITE | TM_DEV_EXCL, &dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?)", output);
		else
			msg("%s: %s", output, strerror(-r));
		close(in_fd);
		return EXIT_FAIL;
	}
	struct tm_bm *bm;
	if (tm_bm_create(dev, 0, &bm)) {
		msg("out of memory");
		tm_dev_close(dev);
		close(in_fd);
		return EXIT_FAIL;
	}

	int status = EXIT_FAIL;
	struct tm_error err;
	struct tm_builder *b = NULL;
	tm_error_clear(&err);
	if ((r = tm_builder_create(bm, &opts, &b, &err))) {
		msg_error(output, &err);
		goto out;
	}

	struct tm_ir_sink sink;
	struct progress prog = { (uint64_t)in_st.st_size, -1, 0 };
	struct xml_read_stats rstats;
	struct xml_read_opts ropts = { NULL, NULL, 0, 0, &rstats, 0 };
	struct xml_error xerr;
	tm_builder_sink(b, &sink);
	if (!quiet && isatty(STDERR_FILENO) && S_ISREG(in_st.st_mode) &&
	    (uint64_t)in_st.st_size >= PROGRESS_MIN_BYTES) {
		ropts.progress = progress_cb;
		ropts.progress_ctx = &prog;
	}
	reader_knobs(&ropts);
	r = xml_read_parallel(in_fd, &sink, &ropts, &xerr);
	progress_end(&prog);
	if (getenv("THIN_RESTORE_STATS"))
		fprintf(stderr, "%s: reader: %u threads, %llu pieces, %llu bytes as canonical "
			"lines, re-read: %s%llu\n", tool_name, rstats.threads,
			(unsigned long long)rstats.pieces, (unsigned long long)rstats.fast_bytes,
			rstats.reread ? "after " : "no ", (unsigned long long)rstats.reread_skip);
	if (r) {
		const struct tm_error *be = tm_builder_error(b);
		if (xerr.io_err)
			msg("%s: %s", input, xerr.msg);
		else if (!xerr.sink_err)
			msg("%s:%lu:%lu: %s", input, xerr.line, xerr.column, xerr.msg);
		else if (be->rule == TM_RULE_IO)
			msg_error(output, be);
		else
			msg("%s:%lu:%lu: %s", input, xerr.line, xerr.column,
			    be->msg[0] ? be->msg : strerror(-xerr.sink_err));
		goto out;
	}
	if ((r = tm_builder_finish(b, &err))) {
		msg_error(output, &err);
		goto out;
	}
	status = EXIT_OK;
out:
	tm_builder_destroy(b);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	close(in_fd);
	return status;
}
