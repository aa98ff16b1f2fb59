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
#include <unistd.h>

#include "json_report.h"
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
"      --json                             Print the result as JSON on stdout (docs/json.md)\n"
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
	OPT_JSON,
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
	{ "json", no_argument, NULL, OPT_JSON },
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

/*
 * Open the input: writable only when asked to fix; exclusive unless
 * reading the held snapshot, which a running pool leaves alone.  0, or
 * prints why not and returns the negative errno.
 */
static int open_input(const char *input, const struct tm_check_opts *o, struct tm_dev **dev)
{
	unsigned flags = (o->repair ? TM_DEV_WRITE : 0) | (o->metadata_snap ? 0 : TM_DEV_EXCL);
	int r = tm_dev_open_file(input, flags, dev);

	if (r == -EBUSY)
		msg("%s: the device is in use (by an active pool?); reserve a metadata "
		    "snapshot (dmsetup message <pool> 0 reserve_metadata_snap) and check "
		    "it with -m", input);
	else if (r)
		msg("%s: %s", input, strerror(-r));
	return r;
}

/* The exit status of a check that returned @r with @res. */
static int check_status(int r, const struct tm_check_result *res, const struct tm_check_opts *o)
{
	uint64_t nonfatal = res->nr_problems[TM_SEV_NONFATAL];

	if (res->repaired && nonfatal >= res->nr_fixable)
		nonfatal -= res->nr_fixable;
	if (r || !res->have_sb || res->changed || res->nr_problems[TM_SEV_FATAL])
		return EXIT_FAIL;
	if (nonfatal && !o->ignore_non_fatal)
		return EXIT_FAIL;
	return EXIT_OK;
}

/*
 * --json: what msg() would print goes to a temporary file instead (fd 2
 * is redirected) and becomes the document's "error"; stdout holds the
 * document only.
 */
struct capture {
	int saved;
	FILE *tmp;
};

static int capture_begin(struct capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	if (!c->tmp)
		return -1;
	c->saved = dup(STDERR_FILENO);
	if (c->saved < 0 || dup2(fileno(c->tmp), STDERR_FILENO) < 0) {
		if (c->saved >= 0)
			close(c->saved);
		fclose(c->tmp);
		return -1;
	}
	return 0;
}

/* Restore stderr; the lines captured without "thin_check: ", joined by
 * "; " (malloc'd), or NULL if there were none. */
static char *capture_end(struct capture *c)
{
	char line[1024], *out = NULL;
	size_t len = 0, pl = strlen(tool_name) + 2;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	rewind(c->tmp);
	while (fgets(line, sizeof(line), c->tmp)) {
		char *l = line;
		size_t n;
		l[strcspn(l, "\n")] = '\0';
		if (!strncmp(l, tool_name, pl - 2) && !strncmp(l + pl - 2, ": ", 2))
			l += pl;
		if (!*l)
			continue;
		n = strlen(l);
		char *grown = realloc(out, len + n + 3);
		if (!grown)
			break;
		out = grown;
		if (len) {
			memcpy(out + len, "; ", 2);
			len += 2;
		}
		memcpy(out + len, l, n + 1);
		len += n;
	}
	fclose(c->tmp);
	return out;
}

static int check_json(const char *input, const struct tm_check_opts *o)
{
	struct json_report *jr = json_report_new(input, o);
	struct tm_check_result res;
	struct tm_check_callbacks cb;
	struct tm_error err;
	struct capture cap;
	struct tm_dev *dev = NULL;
	struct tm_bm *bm = NULL;
	int ran = 0, status = EXIT_FAIL, capturing, r;

	if (!jr) {
		msg("out of memory");
		return EXIT_FAIL;
	}
	capturing = capture_begin(&cap) == 0;
	memset(&res, 0, sizeof(res));
	if (check_input_file(input, 1) || open_input(input, o, &dev))
		goto out;
	if (tm_bm_create(dev, 0, &bm)) {
		msg("out of memory");
		goto out;
	}
	json_report_callbacks(jr, &cb, &res);
	tm_error_clear(&err);
	r = tm_check(bm, o, &cb, &res, &err);
	ran = 1;
	if (r)
		msg_error(input, &err);
	status = check_status(r, &res, o);
out:
	if (bm)
		tm_bm_destroy(bm);
	tm_dev_close(dev);
	char *error = capturing ? capture_end(&cap) : NULL;
	if (json_report_finish(jr, ran ? &res : NULL, status, error)) {
		if (errno != EPIPE)
			msg("writing standard output: %s", strerror(errno));
		status = EXIT_FAIL;
	}
	free(error);
	json_report_free(jr);
	return status;
}

int main(int argc, char **argv)
{
	struct tm_check_opts o = { 0 };
	int quiet = 0, verbose = 0, version = 0, auto_repair = 0, clear = 0, json = 0, c;
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
		case OPT_JSON:
			json = 1;
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
	conflict(json, "--json", quiet, "--quiet");
	if (!input)
		usage_error("the following required arguments were not provided: <INPUT>");

	/* --clear-needs-check-flag repairs leaks too, as in 1.1.0 */
	o.repair = auto_repair || clear;
	o.clear_needs_check = clear || auto_repair;
	o.detect_changes = 1;

	if (json)
		return check_json(input, &o);

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

	struct tm_dev *dev;
	int r = open_input(input, &o, &dev);
	if (r) {
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

	if (r)
		msg_error(input, &err);
	int status = check_status(r, &res, &o);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	reporter_free(rep);
	return status;
}
