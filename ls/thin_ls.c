/*
 * thin_ls - list the thin devices of a pool with their mapping counts;
 * command-line and output compatible with thin-provisioning-tools 1.1.0
 * (docs/design/read-tools.md).
 *
 * Output is a grid: every cell right-justified to its column's width and
 * followed by one space, a header row of field names unless --no-headers.
 * MAPPED, EXCLUSIVE, SHARED and HIGHEST_MAPPED are sizes in a short binary
 * unit ("320KiB"), the other fields plain integers.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "thinmeta/io.h"
#include "thinmeta/ls.h"
#include "thinmeta/metadata.h"
#include "tool.h"

/*
 * 1.1.0's help, byte for byte.  --json (docs/json.md, man/thin_ls.8) is
 * not listed: it is ours, and the help stays the reference's.
 */
static void usage(FILE *f)
{
	fprintf(f,
"List thin volumes within a pool\n"
"\n"
"Usage: thin_ls [OPTIONS] <INPUT>\n"
"\n"
"Arguments:\n"
"  <INPUT>  Specify the input device\n"
"\n"
"Options:\n"
"  -h, --help             Print help\n"
"  -m, --metadata-snap    Use metadata snapshot\n"
"      --no-headers       Don't output headers\n"
"  -o, --format <FIELDS>  Give a comma separated list of fields to be output\n"
"  -V, --version          Print version\n");
}

enum field {
	F_DEV,
	F_MAPPED_BLOCKS, F_EXCLUSIVE_BLOCKS, F_SHARED_BLOCKS, F_HIGHEST_BLOCK,
	F_MAPPED_SECTORS, F_EXCLUSIVE_SECTORS, F_SHARED_SECTORS, F_HIGHEST_SECTOR,
	F_MAPPED_BYTES, F_EXCLUSIVE_BYTES, F_SHARED_BYTES, F_HIGHEST_BYTE,
	F_MAPPED, F_EXCLUSIVE, F_SHARED, F_HIGHEST_MAPPED,
	F_TRANSACTION, F_CREATE_TIME, F_SNAP_TIME,
	F__COUNT
};

static const char *const field_names[F__COUNT] = {
	"DEV",
	"MAPPED_BLOCKS", "EXCLUSIVE_BLOCKS", "SHARED_BLOCKS", "HIGHEST_BLOCK",
	"MAPPED_SECTORS", "EXCLUSIVE_SECTORS", "SHARED_SECTORS", "HIGHEST_SECTOR",
	"MAPPED_BYTES", "EXCLUSIVE_BYTES", "SHARED_BYTES", "HIGHEST_BYTE",
	"MAPPED", "EXCLUSIVE", "SHARED", "HIGHEST_MAPPED",
	"TRANSACTION", "CREATE_TIME", "SNAP_TIME",
};

static const struct option long_opts[] = {
	{ "metadata-snap", no_argument, NULL, 'm' },
	{ "no-headers", no_argument, NULL, 'H' },
	{ "json", no_argument, NULL, 'J' },
	{ "format", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* The comma-separated field list @s; exits 2 on an unknown field. */
static size_t parse_fields(const char *s, enum field **out)
{
	size_t n = 1, k = 0;

	for (const char *p = s; *p; p++)
		n += *p == ',';
	*out = malloc(n * sizeof(**out));
	if (!*out) {
		msg("out of memory");
		exit(EXIT_FAIL);
	}
	for (const char *p = s;; ) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int f;
		for (f = 0; f < F__COUNT; f++)
			if (strlen(field_names[f]) == len && !strncmp(field_names[f], p, len))
				break;
		if (f == F__COUNT)
			usage_error("invalid value '%.*s' for '--format <FIELDS>': Unknown field",
				    (int)len, p);
		(*out)[k++] = (enum field)f;
		if (!end)
			break;
		p = end + 1;
	}
	return k;
}

static int counting(const enum field *fields, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fields[i] != F_DEV && fields[i] != F_TRANSACTION &&
		    fields[i] != F_CREATE_TIME && fields[i] != F_SNAP_TIME)
			return 1;
	return 0;
}

/*
 * 1.1.0's to_pretty_print_size: the unit that keeps the multiple at most
 * 8192, rounded half away from zero; "Tib" is 1.1.0's spelling.
 */
static void pretty_size(uint64_t bytes, char *out, size_t len)
{
	static const char *const units[] = { "b", "KiB", "MiB", "GiB", "Tib", "PiB", "EiB" };
	unsigned i = 0;

	if (bytes) {
		i = (unsigned)(63 - __builtin_clzll(bytes)) / 10;
		i = i ? i - 1 : 0;
	}
	uint64_t m = bytes >> (10 * i);
	if (m > 8192) {
		m = (m + 512) >> 10;
		i++;
	}
	snprintf(out, len, "%" PRIu64 "%s", m, units[i]);
}

/* One cell; sizes wrap as 1.1.0's u64 arithmetic does. */
static void cell(enum field f, const struct tm_device *d, const struct tm_ls_counts *c,
		 uint64_t bs, char *out, size_t len)
{
	uint64_t mapped = c ? c->mapped : 0, shared = c ? c->shared : 0;
	uint64_t highest = c ? c->highest : 0, ex = mapped - shared, v = 0;

	switch (f) {
	case F_DEV: v = d->dev_id; break;
	case F_TRANSACTION: v = d->details.transaction_id; break;
	case F_CREATE_TIME: v = d->details.creation_time; break;
	case F_SNAP_TIME: v = d->details.snapshotted_time; break;
	case F_MAPPED_BLOCKS: v = mapped; break;
	case F_MAPPED_SECTORS: v = mapped * bs; break;
	case F_MAPPED_BYTES: case F_MAPPED: v = (mapped * bs) << 9; break;
	case F_EXCLUSIVE_BLOCKS: v = ex; break;
	case F_EXCLUSIVE_SECTORS: v = ex * bs; break;
	case F_EXCLUSIVE_BYTES: case F_EXCLUSIVE: v = (ex * bs) << 9; break;
	case F_SHARED_BLOCKS: v = shared; break;
	case F_SHARED_SECTORS: v = shared * bs; break;
	case F_SHARED_BYTES: case F_SHARED: v = (shared * bs) << 9; break;
	case F_HIGHEST_BLOCK: v = highest; break;
	case F_HIGHEST_SECTOR: v = (highest + 1) * bs - 1; break;
	case F_HIGHEST_BYTE: case F_HIGHEST_MAPPED: v = (((highest + 1) * bs) << 9) - 1; break;
	case F__COUNT: break;
	}
	if (f == F_MAPPED || f == F_EXCLUSIVE || f == F_SHARED || f == F_HIGHEST_MAPPED)
		pretty_size(v, out, len);
	else
		snprintf(out, len, "%" PRIu64, v);
}

#define CELL 32

static int print_grid(const enum field *fields, size_t nf, int headers,
		      const struct tm_device *devs, const struct tm_ls_counts *counts,
		      uint64_t nr_devs, uint64_t bs)
{
	size_t *width = calloc(nf, sizeof(*width));
	char *cells = malloc((nr_devs ? nr_devs : 1) * nf * CELL);
	struct outbuf ob;
	int r;

	if (!width || !cells || ob_open_fd(&ob, STDOUT_FILENO, 1u << 16)) {
		free(width);
		free(cells);
		msg("out of memory");
		return -ENOMEM;
	}
	for (size_t j = 0; j < nf; j++)
		if (headers)
			width[j] = strlen(field_names[fields[j]]);
	for (uint64_t i = 0; i < nr_devs; i++)
		for (size_t j = 0; j < nf; j++) {
			char *s = cells + (i * nf + j) * CELL;
			cell(fields[j], &devs[i], counts ? &counts[i] : NULL, bs, s, CELL);
			size_t l = strlen(s);
			if (l > width[j])
				width[j] = l;
		}
	for (uint64_t i = headers ? 0 : 1; i <= nr_devs; i++) {
		for (size_t j = 0; j < nf; j++) {
			const char *s = i ? cells + ((i - 1) * nf + j) * CELL : field_names[fields[j]];
			for (size_t l = strlen(s); l < width[j]; l++)
				ob_write(&ob, " ", 1);
			ob_puts(&ob, s);
			ob_write(&ob, " ", 1);
		}
		ob_write(&ob, "\n", 1);
	}
	r = ob_flush(&ob);
	if (r && r != -EPIPE)
		msg("writing standard output: %s", strerror(-r));
	ob_free(&ob);
	free(width);
	free(cells);
	return r;
}

/*
 * --json: one object per device, a member per field (the field's name in
 * lower case); sizes with a unit as strings, everything else as numbers;
 * the HIGHEST_* fields null for a device with no mappings.
 */
static int print_json(const enum field *fields, size_t nf, const char *input, int snap,
		      const struct tm_superblock *view_sb, const struct tm_superblock *live,
		      const struct tm_device *devs, const struct tm_ls_counts *counts,
		      uint64_t nr_devs)
{
	struct json_writer w;
	char name[32], val[CELL];
	uint64_t bs = view_sb->data_block_size;

	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "schema", "thinmeta/thin_ls/1");
	jw_str(&w, "tool", "thin_ls");
	jw_str(&w, "version", THINMETA_VERSION);
	jw_str(&w, "input", input);
	jw_bool(&w, "metadata_snap", snap);
	jw_obj_begin(&w, "superblock");
	jw_u64(&w, "transaction_id", view_sb->trans_id);
	jw_u64(&w, "time", view_sb->time);
	jw_u64(&w, "data_block_size", bs);
	jw_u64(&w, "data_blocks", live->data_sm.nr_blocks);
	jw_obj_end(&w);
	jw_arr_begin(&w, "fields");
	for (size_t j = 0; j < nf; j++)
		jw_str(&w, NULL, field_names[fields[j]]);
	jw_arr_end(&w);
	jw_arr_begin(&w, "devices");
	for (uint64_t i = 0; i < nr_devs; i++) {
		const struct tm_ls_counts *c = counts ? &counts[i] : NULL;
		jw_obj_begin(&w, NULL);
		for (size_t j = 0; j < nf; j++) {
			enum field f = fields[j];
			size_t k;
			for (k = 0; field_names[f][k] && k + 1 < sizeof(name); k++)
				name[k] = (char)(field_names[f][k] >= 'A' && field_names[f][k] <= 'Z'
						 ? field_names[f][k] + ('a' - 'A') : field_names[f][k]);
			name[k] = '\0';
			if ((f == F_HIGHEST_BLOCK || f == F_HIGHEST_SECTOR || f == F_HIGHEST_BYTE ||
			     f == F_HIGHEST_MAPPED) && (!c || !c->mapped)) {
				jw_null(&w, name);
				continue;
			}
			cell(f, &devs[i], c, bs, val, sizeof(val));
			if (f == F_MAPPED || f == F_EXCLUSIVE || f == F_SHARED || f == F_HIGHEST_MAPPED)
				jw_str(&w, name, val);
			else
				jw_u64(&w, name, strtoull(val, NULL, 10));
		}
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_end(&w);
	if (fflush(stdout) || ferror(stdout)) {
		if (errno != EPIPE)
			msg("writing standard output: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum field *fields = NULL;
	size_t nf = 0;
	int snap = 0, headers = 1, have_format = 0, json = 0, c;

	tool_init("thin_ls");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":mo:hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			snap = 1;
			break;
		case 'H':
			headers = 0;
			break;
		case 'J':
			json = 1;
			break;
		case 'o':
			if (have_format)
				usage_error("the argument '--format <FIELDS>' cannot be used multiple times");
			have_format = 1;
			nf = parse_fields(optarg, &fields);
			break;
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (optind >= argc)
		usage_error("no input file given");
	if (optind + 1 < argc)
		usage_error("unexpected argument '%s'", argv[optind + 1]);
	const char *input = argv[optind];
	if (!have_format && json) {
		nf = F__COUNT;
		fields = malloc(nf * sizeof(*fields));
		if (!fields) {
			msg("out of memory");
			return EXIT_FAIL;
		}
		for (size_t j = 0; j < nf; j++)
			fields[j] = (enum field)j;
	} else if (!have_format) {
		static const enum field def[] = { F_DEV, F_MAPPED, F_CREATE_TIME, F_SNAP_TIME };
		nf = sizeof(def) / sizeof(def[0]);
		fields = malloc(sizeof(def));
		if (!fields) {
			msg("out of memory");
			return EXIT_FAIL;
		}
		memcpy(fields, def, sizeof(def));
	}

	if (check_input_file(input, 1)) {
		free(fields);
		return EXIT_FAIL;
	}
	struct tm_dev *dev;
	int r = tm_dev_open_file(input, snap ? 0 : TM_DEV_EXCL, &dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?); reserve a metadata "
			    "snapshot and list it with -m", input);
		else
			msg("%s: %s", input, strerror(-r));
		free(fields);
		return EXIT_FAIL;
	}
	struct tm_bm *bm;
	if (tm_bm_create(dev, 0, &bm)) {
		msg("out of memory");
		tm_dev_close(dev);
		free(fields);
		return EXIT_FAIL;
	}

	struct tm_error err;
	struct tm_view view;
	struct tm_superblock live;
	struct tm_device *devs = NULL;
	struct tm_ls_counts *counts = NULL;
	uint64_t nr = 0;
	int status = EXIT_FAIL;

	tm_error_clear(&err);
	r = snap ? tm_view_snapshot(bm, 0, &view, &err) : tm_view_live(bm, &view, &err);
	if (!r)
		r = tm_read_devices(bm, &view, 0, &devs, &nr, &err);
	if (!r && (counting(fields, nf) || json)) {
		/* 1.1.0 sizes the data-block counts from the live superblock */
		r = tm_read_superblock(bm, &live, &err);
		if (!r && counting(fields, nf)) {
			counts = calloc(nr ? nr : 1, sizeof(*counts));
			if (!counts)
				r = tm_fail(&err, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
		}
		if (!r && counts)
			r = tm_ls_count(bm, devs, nr, live.data_sm.nr_blocks, counts, &err);
	}
	if (r)
		msg_error(input, &err);
	else if (json ? !print_json(fields, nf, input, snap, &view.sb, &live, devs, counts, nr)
		      : !print_grid(fields, nf, headers, devs, counts, nr, view.sb.data_block_size))
		status = EXIT_OK;

	free(counts);
	free(devs);
	free(fields);
	tm_bm_destroy(bm);
	tm_dev_close(dev);
	return status;
}
