/*
 * thin_check - validate thin-provisioning metadata on a device or file;
 * command-line compatible with thin-provisioning-tools 1.1.0
 * (docs/thin_check.md).  The checking is the engine's (thinmeta/check.h);
 * this file parses options, opens the input and turns the result into an
 * exit status: 0 clean (or only non-fatal problems that were repaired or
 * are ignored), 1 problems found or the check could not run, 2 misuse.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "thinmeta/check.h"
#include "thinmeta/io.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
"Validates thin provisioning metadata on a device or file.\n"
"\n"
"Usage: thin_check [OPTIONS] <INPUT>\n"
"\n"
"Arguments:\n"
"  <INPUT>  Specify the input device to check\n"
"\n"
"Options:\n"
"      --auto-repair                      Auto repair trivial issues.\n"
"      --clear-needs-check-flag           Clears the 'needs_check' flag in the superblock\n"
"  -h, --help                             Print help\n"
"      --ignore-non-fatal-errors          Only return a non-zero exit code if a fatal error is found.\n"
"  -m, --metadata-snap                    Check the metadata snapshot on a live pool\n"
"      --override-details-root <BLOCKNR>  Specify a details root to use\n"
"      --override-mapping-root <BLOCKNR>  Specify a mapping root to use\n"
"  -q, --quiet                            Suppress output messages, return only exit code.\n"
"      --skip-mappings                    Don't check the mapping tree\n"
"      --super-block-only                 Only check the superblock.\n"
"  -v                                     Also print notes (inexact space map hints) and counts\n"
"  -V, --version                          Print version\n"
"\n"
"Exit status: 0 the metadata is clean (non-fatal problems repaired, or ignored\n"
"with --ignore-non-fatal-errors), 1 problems found or the check could not run,\n"
"2 command-line misuse.\n");
}

enum {
	OPT_AUTO_REPAIR = 256,
	OPT_CLEAR_NEEDS_CHECK,
	OPT_IGNORE_NON_FATAL,
	OPT_SB_ONLY,
	OPT_SKIP_MAPPINGS,
	OPT_OVERRIDE_MAPPING_ROOT,
	OPT_OVERRIDE_DETAILS_ROOT,
	OPT_IO_ENGINE,
};

static const struct option long_opts[] = {
	{ "auto-repair", no_argument, NULL, OPT_AUTO_REPAIR },
	{ "clear-needs-check-flag", no_argument, NULL, OPT_CLEAR_NEEDS_CHECK },
	{ "ignore-non-fatal-errors", no_argument, NULL, OPT_IGNORE_NON_FATAL },
	{ "metadata-snap", no_argument, NULL, 'm' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "super-block-only", no_argument, NULL, OPT_SB_ONLY },
	{ "skip-mappings", no_argument, NULL, OPT_SKIP_MAPPINGS },
	{ "override-mapping-root", required_argument, NULL, OPT_OVERRIDE_MAPPING_ROOT },
	{ "override-details-root", required_argument, NULL, OPT_OVERRIDE_DETAILS_ROOT },
	{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* 1.1.0's conflicts (clap): exit 2. */
static void conflict(int a, const char *an, int b, const char *bn)
{
	if (a && b)
		usage_error("the argument '%s' cannot be used with '%s'", an, bn);
}

int main(int argc, char **argv)
{
	struct tm_check_opts o = { 0 };
	int quiet = 0, verbose = 0, version = 0, auto_repair = 0, clear = 0, c;
	const char *input = NULL;
	int nr_other = 0;

	tool_init("thin_check");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qmhVv", long_opts, NULL)) != -1) {
		if (c != 'V')
			nr_other++;
		switch (c) {
		case 'q':
			quiet = 1;
			break;
		case 'm':
			o.metadata_snap = 1;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_AUTO_REPAIR:
			auto_repair = 1;
			break;
		case OPT_CLEAR_NEEDS_CHECK:
			clear = 1;
			break;
		case OPT_IGNORE_NON_FATAL:
			o.ignore_non_fatal = 1;
			break;
		case OPT_SB_ONLY:
			o.sb_only = 1;
			break;
		case OPT_SKIP_MAPPINGS:
			o.skip_mappings = 1;
			break;
		case OPT_OVERRIDE_MAPPING_ROOT:
			o.override_mapping_root = 1;
			o.mapping_root = opt_u64("--override-mapping-root", optarg);
			break;
		case OPT_OVERRIDE_DETAILS_ROOT:
			o.override_details_root = 1;
			o.details_root = opt_u64("--override-details-root", optarg);
			break;
		case OPT_IO_ENGINE:
			if (!strcmp(optarg, "async")) {
				msg("This tool has not been compiled with async engine support");
				return EXIT_FAIL;
			}
			if (strcmp(optarg, "sync") && strcmp(optarg, "spindle")) {
				msg("unknown io engine type '%s'", optarg);
				return EXIT_FAIL;
			}
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			version = 1;
			break;
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unexpected argument '-%c' found", optopt);
			usage_error("unexpected argument '%s' found", argv[optind - 1]);
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!argv[i][0])	/* old lvm2 passes empty words: ignore them */
			continue;
		nr_other++;
		if (input)
			usage_error("unexpected argument '%s' found", argv[i]);
		input = argv[i];
	}
	if (version) {
		if (nr_other)
			usage_error("the argument '--version' cannot be used with one or more of the other specified arguments");
		printf("%s\n", THINMETA_VERSION);
		return EXIT_OK;
	}
	conflict(auto_repair, "--auto-repair", o.ignore_non_fatal, "--ignore-non-fatal-errors");
	conflict(auto_repair, "--auto-repair", o.metadata_snap, "--metadata-snap");
	conflict(auto_repair, "--auto-repair", o.override_mapping_root, "--override-mapping-root");
	conflict(auto_repair, "--auto-repair", o.override_details_root, "--override-details-root");
	conflict(auto_repair, "--auto-repair", o.sb_only, "--super-block-only");
	conflict(auto_repair, "--auto-repair", o.skip_mappings, "--skip-mappings");
	conflict(clear, "--clear-needs-check-flag", o.metadata_snap, "--metadata-snap");
	conflict(clear, "--clear-needs-check-flag", o.override_mapping_root, "--override-mapping-root");
	conflict(clear, "--clear-needs-check-flag", o.override_details_root, "--override-details-root");
	if (!input)
		usage_error("the following required arguments were not provided: <INPUT>");

	/* --clear-needs-check-flag repairs leaks too, as in 1.1.0 */
	o.repair = auto_repair || clear;
	o.clear_needs_check = clear || auto_repair;
	o.detect_changes = 1;

	struct reporter *rep = reporter_new(quiet, verbose);
	if (!rep) {
		if (!quiet)
			msg("out of memory");
		return EXIT_FAIL;
	}
	if (quiet && !freopen("/dev/null", "w", stderr)) {
		/* nothing will be printed anyway */
	}
	if (check_input_file(input, 1)) {
		reporter_free(rep);
		return EXIT_FAIL;
	}

	/* Writable only when asked to fix; exclusive unless reading the
	 * held snapshot, which a running pool leaves alone. */
	unsigned flags = (o.repair ? TM_DEV_WRITE : 0) | (o.metadata_snap ? 0 : TM_DEV_EXCL);
	struct tm_dev *dev;
	int r = tm_dev_open_file(input, flags, &dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?); reserve a metadata "
			    "snapshot (dmsetup message <pool> 0 reserve_metadata_snap) and check "
			    "it with -m", input);
		else
			msg("%s: %s", input, strerror(-r));
		reporter_free(rep);
		return EXIT_FAIL;
	}
	struct tm_bm *bm;
	if (tm_bm_create(dev, 0, &bm)) {
		msg("out of memory");
		tm_dev_close(dev);
		reporter_free(rep);
		return EXIT_FAIL;
	}

	struct tm_check_result res;
	struct tm_check_callbacks cb;
	struct tm_error err;
	reporter_callbacks(rep, &cb, &res);
	r = tm_check(bm, &o, &cb, &res, &err);
	reporter_finish(rep, &res, o.ignore_non_fatal, o.repair);

	int status = EXIT_OK;
	uint64_t nonfatal = res.nr_problems[TM_SEV_NONFATAL];
	if (res.repaired && nonfatal >= res.nr_fixable)
		nonfatal -= res.nr_fixable;
	if (r) {
		msg_error(input, &err);
		status = EXIT_FAIL;
	} else if (!res.have_sb || res.changed || res.nr_problems[TM_SEV_FATAL]) {
		status = EXIT_FAIL;
	} else if (nonfatal && !o.ignore_non_fatal) {
		status = EXIT_FAIL;
	}
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	reporter_free(rep);
	return status;
}
