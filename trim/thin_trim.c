/*
 * thin_trim - discard the unused parts of a pool's data device (offline);
 * command-line compatible with thin-provisioning-tools 1.1.0
 * (docs/design/read-tools.md).
 *
 * The metadata is checked first (tm_free_data_ranges); nothing is
 * discarded unless the check passes.  Each maximal run of free data blocks
 * is discarded: BLKDISCARD on a block device, a punched hole
 * (fallocate PUNCH_HOLE|KEEP_SIZE) in a regular file, which keeps its size.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thinmeta/format.h"
#include "thinmeta/io.h"
#include "thinmeta/trim.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
"Issue discard requests for free pool space (offline tool).\n"
"\n"
"Usage: thin_trim [OPTIONS] --metadata-dev <FILE> --data-dev <FILE>\n"
"\n"
"Options:\n"
"      --data-dev <FILE>      Specify the pool data device\n"
"  -h, --help                 Print help\n"
"      --metadata-dev <FILE>  Specify the pool metadata device\n"
"  -q, --quiet                Suppress output messages, return only exit code.\n"
"  -V, --version              Print version\n");
}

enum { OPT_METADATA_DEV = 256, OPT_DATA_DEV };

static const struct option long_opts[] = {
	{ "metadata-dev", required_argument, NULL, OPT_METADATA_DEV },
	{ "data-dev", required_argument, NULL, OPT_DATA_DEV },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Discard [off, off + len) of the data device. */
static int discard(int fd, int is_blk, uint64_t off, uint64_t len)
{
	if (is_blk) {
		uint64_t range[2] = { off, len };
		return ioctl(fd, BLKDISCARD, range) < 0 ? -errno : 0;
	}
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			 (off_t)len) < 0 ? -errno : 0;
}

static int data_dev_size(int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		return 0;
	}
	return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	const char *meta = NULL, *data = NULL;
	int quiet = 0, c;

	tool_init("thin_trim");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qhV", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_METADATA_DEV:
			if (meta)
				usage_error("the argument '--metadata-dev <FILE>' cannot be used multiple times");
			meta = optarg;
			break;
		case OPT_DATA_DEV:
			if (data)
				usage_error("the argument '--data-dev <FILE>' cannot be used multiple times");
			data = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!meta || !data)
		usage_error("the following required arguments were not provided:%s%s",
			    meta ? "" : " --metadata-dev <FILE>", data ? "" : " --data-dev <FILE>");
	if (quiet && !freopen("/dev/null", "w", stderr))
		return EXIT_FAIL;

	if (check_input_file(meta, 1))
		return EXIT_FAIL;
	struct stat st;
	if (stat(data, &st) < 0) {
		if (errno == ENOENT)
			msg("Couldn't find input file '%s'", data);
		else
			msg("%s: %s", data, strerror(errno));
		return EXIT_FAIL;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		msg("Not a block device or regular file '%s'.", data);
		return EXIT_FAIL;
	}

	struct tm_dev *dev;
	int r = tm_dev_open_file(meta, TM_DEV_EXCL, &dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?); thin_trim works "
			    "on an inactive pool only", meta);
		else
			msg("%s: %s", meta, strerror(-r));
		return EXIT_FAIL;
	}
	struct tm_bm *bm;
	if (tm_bm_create(dev, 0, &bm)) {
		msg("out of memory");
		tm_dev_close(dev);
		return EXIT_FAIL;
	}

	struct tm_error err;
	struct tm_superblock sb;
	struct tm_range *ranges = NULL;
	uint64_t nr = 0;
	int status = EXIT_FAIL, fd = -1;

	tm_error_clear(&err);
	r = tm_free_data_ranges(bm, &sb, &ranges, &nr, &err);
	if (r) {
		msg_error(meta, &err);
		msg("metadata contains errors (run thin_check for details).");
		msg("perhaps you need to run thin_repair.");
		goto out;
	}
	if (!quiet) {
		/* what 1.1.0's built-in check prints */
		uint64_t free_meta = sb.meta_sm.nr_blocks > sb.meta_sm.nr_allocated
				     ? sb.meta_sm.nr_blocks - sb.meta_sm.nr_allocated : 0;
		printf("TRANSACTION_ID=%" PRIu64 "\nMETADATA_FREE_BLOCKS=%" PRIu64 "\n",
		       sb.trans_id, free_meta);
		fflush(stdout);
	}

	uint64_t bs = (uint64_t)sb.data_block_size * TM_SECTOR_SIZE, size;
	uint64_t nr_blocks = sb.data_sm.nr_blocks;
	if (bs && nr_blocks > UINT64_MAX / bs) {
		msg("%s: the data device would be %" PRIu64 " blocks of %" PRIu64
		    " bytes, more than 2^64 bytes", meta, nr_blocks, bs);
		goto out;
	}
	fd = open(data, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		msg("%s: %s", data, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || (r = data_dev_size(fd, &st, &size)) < 0) {
		msg("%s: cannot read its size: %s", data, strerror(r < 0 ? -r : errno));
		goto out;
	}
	if (nr_blocks * bs > size) {
		msg("unexpected data device size, wanted %" PRIu64 " bytes", nr_blocks * bs);
		goto out;
	}
	for (uint64_t i = 0; i < nr; i++) {
		uint64_t off = ranges[i].begin * bs, len = (ranges[i].end - ranges[i].begin) * bs;
		r = discard(fd, S_ISBLK(st.st_mode), off, len);
		if (r) {
			msg("%s: discarding data blocks %" PRIu64 "..%" PRIu64 " (bytes %" PRIu64
			    "..%" PRIu64 "): %s", data, ranges[i].begin, ranges[i].end, off,
			    off + len, strerror(-r));
			goto out;
		}
	}
	if (!S_ISBLK(st.st_mode) && fsync(fd) < 0) {
		msg("%s: %s", data, strerror(errno));
		goto out;
	}
	status = EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	free(ranges);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	return status;
}
