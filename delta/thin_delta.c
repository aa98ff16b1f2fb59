/*
 * thin_delta - print the differences in the mappings of two thin devices
 * (or two mapping-tree roots) as XML; command-line and output compatible
 * with thin-provisioning-tools 1.1.0 (docs/design/read-tools.md).
 *
 * The engine (tm_delta) walks both trees together and skips the subtrees
 * they share; this file only chooses the roots and writes the XML.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thinmeta/delta.h"
#include "thinmeta/format.h"
#include "thinmeta/io.h"
#include "thinmeta/metadata.h"
#include "tool.h"

static void usage(FILE *f)
{
	fprintf(f,
"Print the differences in the mappings between two thin devices\n"
"\n"
"Usage: thin_delta [OPTIONS] <INPUT>\n"
"\n"
"Arguments:\n"
"  <INPUT>  Specify the input device\n"
"\n"
"Options:\n"
"  -h, --help             Print help\n"
"  -m, --metadata-snap    Use metadata snapshot\n"
"      --root1 <BLOCKNR>  The root block for the first thin volume to diff\n"
"      --root2 <BLOCKNR>  The root block for the second thin volume to diff\n"
"      --thin1 <DEV_ID>   The numeric identifier for the first thin volume to diff [aliases: snap1]\n"
"      --thin2 <DEV_ID>   The numeric identifier for the second thin volume to diff [aliases: snap2]\n"
"  -V, --version          Print version\n"
"      --verbose          Provide extra information on the mappings\n");
}

enum { OPT_VERBOSE = 256, OPT_ROOT1, OPT_ROOT2, OPT_THIN1, OPT_THIN2 };

static const struct option long_opts[] = {
	{ "metadata-snap", no_argument, NULL, 'm' },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "root1", required_argument, NULL, OPT_ROOT1 },
	{ "root2", required_argument, NULL, OPT_ROOT2 },
	{ "thin1", required_argument, NULL, OPT_THIN1 },
	{ "snap1", required_argument, NULL, OPT_THIN1 },
	{ "thin2", required_argument, NULL, OPT_THIN2 },
	{ "snap2", required_argument, NULL, OPT_THIN2 },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* One side of the diff: a device id or a root block. */
struct snap {
	int given;
	int is_root;
	uint64_t v;
};

/* A u64 as 1.1.0 (Rust) reads one: an optional '+', then digits. */
static uint64_t opt_rs_u64(const char *opt, const char *s)
{
	return opt_u64(opt, s && *s == '+' ? s + 1 : s);
}

static void set_snap(struct snap *s, int is_root, const char *opt, const char *other,
		     const char *val)
{
	if (s->given && s->is_root != is_root)
		usage_error("the argument '%s' cannot be used with '%s'", opt, other);
	if (s->given)
		usage_error("the argument '%s' cannot be used multiple times", opt);
	s->given = 1;
	s->is_root = is_root;
	s->v = opt_rs_u64(opt, val);
}

/* ---------------------------------------------------------------- XML */

struct writer {
	struct outbuf ob;
	int verbose;
	int open_kind;		/* verbose: the open container element, -1 none */
};

static const char *const kind_names[] = {
	[TM_DELTA_LEFT_ONLY] = "left_only",
	[TM_DELTA_RIGHT_ONLY] = "right_only",
	[TM_DELTA_DIFFERENT] = "different",
	[TM_DELTA_SAME] = "same",
};

static void attr(struct outbuf *ob, const char *name, uint64_t v)
{
	ob_write(ob, " ", 1);
	ob_puts(ob, name);
	ob_write(ob, "=\"", 2);
	ob_u64(ob, v);
	ob_write(ob, "\"", 1);
}

static int write_range(void *ctx, const struct tm_delta_range *r)
{
	struct writer *w = ctx;
	struct outbuf *ob = &w->ob;

	if (!w->verbose) {
		ob_puts(ob, "    <");
		ob_puts(ob, kind_names[r->kind]);
		attr(ob, "begin", r->begin);
		attr(ob, "length", r->length);
		ob_puts(ob, "/>\n");
		return ob->err;
	}
	if (w->open_kind != (int)r->kind) {
		if (w->open_kind >= 0) {
			ob_puts(ob, "    </");
			ob_puts(ob, kind_names[w->open_kind]);
			ob_puts(ob, ">\n");
		}
		ob_puts(ob, "    <");
		ob_puts(ob, kind_names[r->kind]);
		ob_puts(ob, ">\n");
		w->open_kind = (int)r->kind;
	}
	ob_puts(ob, "      <range");
	attr(ob, "begin", r->begin);
	switch (r->kind) {
	case TM_DELTA_DIFFERENT:
		attr(ob, "left_data_begin", r->left_data);
		attr(ob, "right_data_begin", r->right_data);
		break;
	case TM_DELTA_RIGHT_ONLY:
		attr(ob, "data_begin", r->right_data);
		break;
	default:
		attr(ob, "data_begin", r->left_data);
		break;
	}
	attr(ob, "length", r->length);
	ob_puts(ob, "/>\n");
	return ob->err;
}

static void write_head(struct writer *w, const struct tm_superblock *sb,
		       const struct snap *s1, const struct snap *s2)
{
	struct outbuf *ob = &w->ob;

	ob_puts(ob, "<superblock uuid=\"\"");
	attr(ob, "time", sb->time);
	attr(ob, "transaction", sb->trans_id);
	if (sb->flags & TM_SB_FLAG_NEEDS_CHECK)
		attr(ob, "flags", 1);
	attr(ob, "data_block_size", sb->data_block_size);
	attr(ob, "nr_data_blocks", sb->data_sm.nr_blocks);
	ob_puts(ob, ">\n  <diff");
	attr(ob, s1->is_root ? "left_root" : "left", s1->v);
	attr(ob, s2->is_root ? "right_root" : "right", s2->v);
	ob_puts(ob, ">\n");
}

static void write_tail(struct writer *w)
{
	if (w->verbose && w->open_kind >= 0) {
		ob_puts(&w->ob, "    </");
		ob_puts(&w->ob, kind_names[w->open_kind]);
		ob_puts(&w->ob, ">\n");
	}
	/* 1.1.0 ends without a newline */
	ob_puts(&w->ob, "  </diff>\n</superblock>");
}

/* ---------------------------------------------------------------- main */

/* The root of device @id's mapping tree, or -ENODATA naming the side. */
static int find_root(const struct tm_device *devs, uint64_t nr, uint64_t id,
		     const char *side, uint64_t *root, struct tm_error *e)
{
	for (uint64_t i = 0; i < nr; i++)
		if (devs[i].dev_id == id) {
			*root = devs[i].mapping_root;
			return 0;
		}
	return tm_fail(e, -ENODATA, TM_RULE_DEVICES, TM_NO_BLOCK,
		       "Unable to find mapping tree for %s (%" PRIu64 "): no such device",
		       side, id);
}

int main(int argc, char **argv)
{
	struct snap s1 = { 0 }, s2 = { 0 };
	struct writer w = { .open_kind = -1 };
	int snap = 0, c;

	tool_init("thin_delta");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":mhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			snap = 1;
			break;
		case OPT_VERBOSE:
			w.verbose = 1;
			break;
		case OPT_ROOT1:
			set_snap(&s1, 1, "--root1 <BLOCKNR>", "--thin1 <DEV_ID>", optarg);
			break;
		case OPT_THIN1:
			set_snap(&s1, 0, "--thin1 <DEV_ID>", "--root1 <BLOCKNR>", optarg);
			break;
		case OPT_ROOT2:
			set_snap(&s2, 1, "--root2 <BLOCKNR>", "--thin2 <DEV_ID>", optarg);
			break;
		case OPT_THIN2:
			set_snap(&s2, 0, "--thin2 <DEV_ID>", "--root2 <BLOCKNR>", optarg);
			break;
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (optind >= argc)
		usage_error("no input file given");
	if (optind + 1 < argc)
		usage_error("unexpected argument '%s'", argv[optind + 1]);
	if (!s1.given)
		usage_error("--thin1 or --root1 not specified");
	if (!s2.given)
		usage_error("--thin2 or --root2 not specified");
	const char *input = argv[optind];

	if (check_input_file(input, 1))
		return EXIT_FAIL;
	struct tm_dev *dev;
	int r = tm_dev_open_file(input, snap ? 0 : TM_DEV_EXCL, &dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?); reserve a metadata "
			    "snapshot and compare with -m", input);
		else
			msg("%s: %s", input, strerror(-r));
		return EXIT_FAIL;
	}
	struct tm_bm *bm;
	if (tm_bm_create(dev, 0, &bm)) {
		msg("out of memory");
		tm_dev_close(dev);
		return EXIT_FAIL;
	}

	struct tm_error err;
	struct tm_view view;
	struct tm_device *devs = NULL;
	uint64_t nr = 0, root1 = s1.v, root2 = s2.v;
	int status = EXIT_FAIL;

	tm_error_clear(&err);
	r = snap ? tm_view_snapshot(bm, 0, &view, &err) : tm_view_live(bm, &view, &err);
	if (!r)
		r = tm_read_devices(bm, &view, 0, &devs, &nr, &err);
	if (!r && !s1.is_root)
		r = find_root(devs, nr, s1.v, "snap1", &root1, &err);
	if (!r && !s2.is_root)
		r = find_root(devs, nr, s2.v, "snap2", &root2, &err);
	/* up to 16 MiB of XML is held back, so a failure usually prints none */
	if (!r && ob_open_fd(&w.ob, STDOUT_FILENO, 16u << 20))
		r = tm_fail(&err, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	if (r) {
		msg_error(input, &err);
		goto out;
	}
	write_head(&w, &view.sb, &s1, &s2);
	r = tm_delta(bm, root1, root2, 0, write_range, &w, NULL, &err);
	int wr = w.ob.err;
	if (!r) {
		write_tail(&w);
		wr = ob_flush(&w.ob);
	}
	if (wr) {
		if (wr != -EPIPE)
			msg("writing standard output: %s", strerror(-wr));
	} else if (r) {
		msg_error(input, &err);
	} else {
		status = EXIT_OK;
	}
	ob_free(&w.ob);
out:
	free(devs);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	return status;
}
