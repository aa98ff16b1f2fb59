/*
 * thin_backup - back a thin device up into a sparse image file by copying
 * its mapped data blocks, in full or incrementally (only the blocks that
 * changed since the image's base), reading the mappings from the pool's
 * metadata - the held metadata snapshot with -m, the safe way on a live
 * pool.  The workflow and why the base is a thin snapshot:
 * docs/incremental-backup.md.
 *
 * The engine supplies the device list (tm_read_devices), the mapping tree
 * walk (tm_btree_walk) and the tree diff that skips shared subtrees
 * (tm_delta); this file moves the bytes and keeps the image's state file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>

#include "thinmeta/btree.h"
#include "thinmeta/delta.h"
#include "thinmeta/format.h"
#include "thinmeta/io.h"
#include "thinmeta/metadata.h"
#include "tool.h"

#define CHUNK (1u << 20)		/* bytes copied at a time */
#define STATE_SUFFIX ".thin_backup"

static void usage(FILE *f)
{
	fprintf(f,
"Back a thin device up into a sparse image file, in full or incrementally\n"
"\n"
"Usage: thin_backup full --metadata <META> --data <DATA> --dev-id <ID> [-m] -o <IMAGE>\n"
"       thin_backup incremental --metadata <META> --data <DATA> --base-id <BASE>\n"
"                   --dev-id <ID> [-m] -o <IMAGE>\n"
"\n"
"  full         copy the mapped blocks of thin device ID into a new IMAGE\n"
"               (unmapped blocks are holes); IMAGE" STATE_SUFFIX " records which\n"
"               device the image holds\n"
"  incremental  IMAGE holds device BASE: copy the blocks mapped differently in\n"
"               ID and BASE (thin_delta's different and right_only ranges)\n"
"               and punch holes where ID has none (left_only); IMAGE then\n"
"               holds device ID\n"
"\n"
"BASE and ID should be thin snapshots that nobody writes to: blocks a\n"
"device overwrites in place keep their data block, and no tree diff can\n"
"see that they changed (docs/incremental-backup.md).\n"
"\n"
"Options:\n"
"      --metadata <META>  the pool's metadata device or file (read only)\n"
"      --data <DATA>      the pool's data device or file (read only)\n"
"      --dev-id <ID>      the thin device to back up\n"
"      --base-id <BASE>   incremental: the device IMAGE holds now\n"
"  -m, --metadata-snap    read the held metadata snapshot (a live pool)\n"
"  -o, --output <IMAGE>   the image file\n"
"  -q, --quiet            print no summary line\n"
"  -h, --help             Print help\n"
"  -V, --version          Print version\n"
"\n"
"Exit status: 0 success, 1 failure, 2 command-line misuse.\n");
}

enum { OPT_METADATA = 256, OPT_DATA, OPT_DEV_ID, OPT_BASE_ID };

static const struct option long_opts[] = {
	{ "metadata", required_argument, NULL, OPT_METADATA },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "dev-id", required_argument, NULL, OPT_DEV_ID },
	{ "base-id", required_argument, NULL, OPT_BASE_ID },
	{ "metadata-snap", no_argument, NULL, 'm' },
	{ "output", required_argument, NULL, 'o' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	int incremental;
	const char *meta, *data, *out;
	uint64_t id, base;
	int have_id, have_base;
	int snap, quiet;
};

/* ------------------------------------------------------------------ */
/* Plain I/O */

static int all_zero(const uint8_t *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

/* fsync the directory holding @path, so a rename in it is durable. */
static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0 && errno != EINVAL)
		r = -errno;
	close(fd);
	return r;
}

/* ------------------------------------------------------------------ */
/* The source: metadata view, devices, data device */

struct src {
	const struct opts *o;
	struct tm_dev *dev;
	struct tm_bm *bm;
	struct tm_view view;
	struct tm_device *devs;
	uint64_t nr_devs;
	uint64_t nr_data;		/* data blocks (the live superblock's) */
	uint64_t bb;			/* data block size in bytes */
	int data_fd;
	struct stat meta_st, data_st;
	uint8_t *buf;
	size_t chunk;
};

static int open_meta(struct src *s)
{
	const struct opts *o = s->o;
	struct tm_superblock live;
	struct tm_error e;
	int r;

	if (check_input_file(o->meta, 1))
		return -1;
	r = tm_dev_open_file(o->meta, o->snap ? 0 : TM_DEV_EXCL, &s->dev);
	if (r) {
		if (r == -EBUSY)
			msg("%s: the device is in use (by an active pool?); reserve a metadata "
			    "snapshot and back up with -m", o->meta);
		else
			msg("%s: %s", o->meta, strerror(-r));
		return -1;
	}
	if (tm_bm_create(s->dev, 0, &s->bm)) {
		msg("out of memory");
		return -1;
	}
	tm_error_clear(&e);
	r = tm_read_superblock(s->bm, &live, &e);
	if (!r)
		r = o->snap ? tm_view_snapshot(s->bm, 0, &s->view, &e)
			    : tm_view_live(s->bm, &s->view, &e);
	if (!r)
		r = tm_read_devices(s->bm, &s->view, 0, &s->devs, &s->nr_devs, &e);
	if (r) {
		msg_error(o->meta, &e);
		return -1;
	}
	/* the held copy's space-map roots are zero: sizes come from the live one */
	s->nr_data = live.data_sm.nr_blocks;
	s->bb = (uint64_t)s->view.sb.data_block_size * TM_SECTOR_SIZE;
	if (!s->bb) {
		msg("%s: the superblock's data block size is 0", o->meta);
		return -1;
	}
	s->chunk = s->bb < CHUNK ? (size_t)s->bb : CHUNK;
	s->buf = malloc(s->chunk);
	if (!s->buf) {
		msg("out of memory");
		return -1;
	}
	if (stat(o->meta, &s->meta_st) < 0)
		memset(&s->meta_st, 0, sizeof(s->meta_st));
	return 0;
}

static int open_data(struct src *s)
{
	const char *path = s->o->data;
	uint64_t size;

	s->data_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->data_fd < 0) {
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(s->data_fd, &s->data_st) < 0) {
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISREG(s->data_st.st_mode)) {
		size = (uint64_t)s->data_st.st_size;
	} else if (S_ISBLK(s->data_st.st_mode)) {
		if (ioctl(s->data_fd, BLKGETSIZE64, &size) < 0) {
			msg("%s: cannot find its size: %s", path, strerror(errno));
			return -1;
		}
	} else {
		msg("%s: not a regular file or block device", path);
		return -1;
	}
	if (s->meta_st.st_ino && s->meta_st.st_dev == s->data_st.st_dev &&
	    s->meta_st.st_ino == s->data_st.st_ino) {
		msg("%s: the data device is the metadata device", path);
		return -1;
	}
	if (s->nr_data > size / s->bb) {
		msg("%s: %" PRIu64 " bytes, too small for the pool's %" PRIu64 " data blocks of %"
		    PRIu64 " bytes (is it the pool's data device?)", path, size, s->nr_data, s->bb);
		return -1;
	}
	return 0;
}

static void close_src(struct src *s)
{
	free(s->buf);
	free(s->devs);
	if (s->bm)
		tm_bm_destroy(s->bm);
	if (s->dev)
		tm_dev_close(s->dev);
	if (s->data_fd >= 0)
		close(s->data_fd);
}

static const struct tm_device *find_dev(const struct src *s, uint64_t id, const char *opt)
{
	for (uint64_t i = 0; i < s->nr_devs; i++)
		if (s->devs[i].dev_id == id)
			return &s->devs[i];
	msg("%s: %s %" PRIu64 ": no such thin device in the %s", s->o->meta, opt, id,
	    s->o->snap ? "held metadata snapshot" : "metadata");
	return NULL;
}

/* The image must not be the pool's own metadata or data. */
static int check_image_path(const struct src *s, const char *path, int must_exist)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		msg("%s: %s", path, strerror(errno));
		return -1;
	}
	if ((st.st_dev == s->meta_st.st_dev && st.st_ino == s->meta_st.st_ino) ||
	    (st.st_dev == s->data_st.st_dev && st.st_ino == s->data_st.st_ino)) {
		msg("%s: the image would overwrite the pool's metadata or data", path);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		msg("%s: not a regular file (the image is a sparse file)", path);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Copying blocks */

struct copy {
	struct src *s;
	const struct tm_device *dev;
	int out_fd;
	const char *out;
	int fresh;			/* a new file: zeroes stay holes */
	uint64_t copied, discarded, bytes;
	uint64_t highest;		/* highest virtual block mapped, +1 */
	char err[512];
};

/* Is data block @db of virtual block @vb within the data device and image? */
static int check_mapping(struct copy *c, uint64_t vb, uint64_t db)
{
	const struct src *s = c->s;

	if (db >= s->nr_data) {
		snprintf(c->err, sizeof(c->err),
			 "%s: device %" PRIu64 " maps block %" PRIu64 " to data block %" PRIu64
			 ", past the end of the data device (%" PRIu64 " blocks)",
			 s->o->meta, c->dev->dev_id, vb, db, s->nr_data);
		return -1;
	}
	if (vb >= (uint64_t)INT64_MAX / s->bb) {
		snprintf(c->err, sizeof(c->err),
			 "%s: device %" PRIu64 " maps block %" PRIu64
			 ", past the largest possible image file", s->o->meta, c->dev->dev_id, vb);
		return -1;
	}
	return 0;
}

static int copy_block(struct copy *c, uint64_t vb, uint64_t db)
{
	struct src *s = c->s;
	int r;

	if (check_mapping(c, vb, db))
		return -1;
	for (uint64_t pos = 0; pos < s->bb; pos += s->chunk) {
		size_t n = (size_t)(s->bb - pos < s->chunk ? s->bb - pos : s->chunk);
		r = tm_pread_full(s->data_fd, s->buf, n, db * s->bb + pos);
		if (r) {
			snprintf(c->err, sizeof(c->err), "%s: cannot read data block %" PRIu64 ": %s",
				 s->o->data, db, strerror(-r));
			return -1;
		}
		if (c->fresh && all_zero(s->buf, n))
			continue;	/* a hole reads as zeroes */
		r = tm_pwrite_full(c->out_fd, s->buf, n, vb * s->bb + pos);
		if (r) {
			snprintf(c->err, sizeof(c->err), "%s: cannot write block %" PRIu64 ": %s",
				 c->out, vb, strerror(-r));
			return -1;
		}
	}
	c->copied++;
	c->bytes += s->bb;
	if (vb + 1 > c->highest)
		c->highest = vb + 1;
	return 0;
}

/* Virtual blocks [@begin, @end) read as zeroes: punch a hole (or write zeroes). */
static int zero_blocks(struct copy *c, uint64_t begin, uint64_t end)
{
	struct src *s = c->s;
	struct stat st;
	uint64_t lo, hi;

	if (fstat(c->out_fd, &st) < 0)
		goto bad;
	c->discarded += end - begin;
	/* beyond the image's end everything reads as zeroes already */
	if (begin >= (uint64_t)st.st_size / s->bb)
		return 0;
	lo = begin * s->bb;
	hi = end > (uint64_t)st.st_size / s->bb ? (uint64_t)st.st_size : end * s->bb;
	if (!fallocate(c->out_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)lo,
		       (off_t)(hi - lo)))
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		goto bad;
	memset(s->buf, 0, s->chunk);
	for (uint64_t pos = lo; pos < hi; pos += s->chunk) {
		size_t n = (size_t)(hi - pos < s->chunk ? hi - pos : s->chunk);
		int r = tm_pwrite_full(c->out_fd, s->buf, n, pos);
		if (r) {
			errno = -r;
			goto bad;
		}
	}
	return 0;
bad:
	snprintf(c->err, sizeof(c->err), "%s: cannot zero blocks %" PRIu64 "..%" PRIu64 ": %s",
		 c->out, begin, end - 1, strerror(errno));
	return -1;
}

/* ------------------------------------------------------------------ */
/* The state file: which device the image holds */

struct ident {
	uint64_t dev_id;
	uint32_t creation_time;
	uint64_t mapped_blocks;
};

static struct ident ident_of(const struct tm_device *d)
{
	struct ident i = { d->dev_id, d->details.creation_time, d->details.mapped_blocks };

	return i;
}

static int same_ident(const struct ident *a, const struct ident *b)
{
	return a->dev_id == b->dev_id && a->creation_time == b->creation_time &&
	       a->mapped_blocks == b->mapped_blocks;
}

static void ident_text(char *buf, size_t n, const struct ident *i)
{
	snprintf(buf, n, "device %" PRIu64 " (created at time %" PRIu32 ", %" PRIu64
		 " mapped blocks)", i->dev_id, i->creation_time, i->mapped_blocks);
}

struct state {
	uint32_t data_block_size;	/* sectors */
	struct ident image;
	int updating;
	struct ident target;
};

static char *state_path(const char *image)
{
	size_t n = strlen(image) + sizeof(STATE_SUFFIX);
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s", image, STATE_SUFFIX);
	return p;
}

/* Written to a temporary file, synced, renamed into place. */
static int write_state(const char *image, const struct state *st)
{
	char *path = state_path(image), *tmp = NULL;
	FILE *f = NULL;
	int fd = -1, r = -1;

	if (!path || asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		tmp = NULL;
		msg("out of memory");
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		msg("%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	fprintf(f, "thin_backup 1\ndata_block_size %" PRIu32 "\n", st->data_block_size);
	fprintf(f, "image dev_id %" PRIu64 " creation_time %" PRIu32 " mapped_blocks %" PRIu64 "\n",
		st->image.dev_id, st->image.creation_time, st->image.mapped_blocks);
	if (st->updating)
		fprintf(f, "updating dev_id %" PRIu64 " creation_time %" PRIu32
			" mapped_blocks %" PRIu64 "\n",
			st->target.dev_id, st->target.creation_time, st->target.mapped_blocks);
	if (fflush(f) || fsync(fileno(f)) < 0) {
		msg("%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f)) {
		f = NULL;
		msg("%s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) < 0) {
		msg("%s: cannot rename to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (sync_dir(path) < 0) {
		msg("%s: cannot sync its directory", path);
		goto out;
	}
	r = 0;
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(path);
	return r;
}

static int remove_state(const char *image)
{
	char *path = state_path(image);
	int r = 0;

	if (!path) {
		msg("out of memory");
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		msg("%s: cannot remove: %s", path, strerror(errno));
		r = -1;
	}
	free(path);
	return r;
}

static int parse_ident(const char *line, const char *key, struct ident *i)
{
	char word[16];
	unsigned long long id, mapped;
	unsigned ct;
	int end = 0;

	if (sscanf(line, "%15s dev_id %llu creation_time %u mapped_blocks %llu%n", word, &id, &ct,
		   &mapped, &end) != 4 || strcmp(word, key) || line[end] != '\n')
		return -1;
	i->dev_id = id;
	i->creation_time = ct;
	i->mapped_blocks = mapped;
	return 0;
}

static int read_state(const char *image, struct state *st)
{
	char *path = state_path(image), line[256];
	FILE *f;
	int r = -1, n = 0;

	if (!path) {
		msg("out of memory");
		return -1;
	}
	memset(st, 0, sizeof(*st));
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			msg("%s: no state file %s: make the image with thin_backup full first",
			    image, path);
		else
			msg("%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (n == 1 && !strcmp(line, "thin_backup 1\n"))
			continue;
		if (n == 2 && sscanf(line, "data_block_size %" SCNu32, &st->data_block_size) == 1)
			continue;
		if (n == 3 && !parse_ident(line, "image", &st->image))
			continue;
		if (n == 4 && !parse_ident(line, "updating", &st->target)) {
			st->updating = 1;
			continue;
		}
		break;
	}
	if (!ferror(f) && feof(f) && n >= 3)
		r = 0;
	else
		msg("%s: not a thin_backup state file (line %d)", path, n ? n : 1);
	fclose(f);
	free(path);
	return r;
}

/* ------------------------------------------------------------------ */
/* full */

static int full_leaf(void *ctx, const struct tm_node *leaf)
{
	struct copy *c = ctx;

	for (uint32_t i = 0; i < leaf->nr_entries; i++)
		if (copy_block(c, tm_node_key(leaf, i), tm_bt_block(tm_node_value64(leaf, i))))
			return 1;
	return 0;
}

static int do_full(struct src *s)
{
	const struct opts *o = s->o;
	const struct tm_device *d = find_dev(s, o->id, "--dev-id");
	struct copy c;
	struct tm_error e;
	char *tmp = NULL;
	int r, status = EXIT_FAIL;

	if (!d || check_image_path(s, o->out, 0))
		return EXIT_FAIL;
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.dev = d;
	c.out = o->out;
	c.fresh = 1;
	if (asprintf(&tmp, "%s.XXXXXX", o->out) < 0) {
		msg("out of memory");
		return EXIT_FAIL;
	}
	c.out_fd = mkstemp(tmp);
	if (c.out_fd < 0) {
		msg("%s: cannot create: %s", tmp, strerror(errno));
		free(tmp);
		return EXIT_FAIL;
	}
	tm_error_clear(&e);
	r = tm_btree_walk(s->bm, d->mapping_root, 8, full_leaf, &c, &e);
	if (r > 0) {
		msg("%s", c.err);
		goto out;
	}
	if (r) {
		char where[400];
		snprintf(where, sizeof(where), "%s: device %" PRIu64, o->meta, d->dev_id);
		msg_error(where, &e);
		goto out;
	}
	if (ftruncate(c.out_fd, (off_t)(c.highest * s->bb)) < 0 || fsync(c.out_fd) < 0) {
		msg("%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* no state file may name the image's old content */
	if (remove_state(o->out))
		goto out;
	if (rename(tmp, o->out) < 0) {
		msg("%s: cannot rename to %s: %s", tmp, o->out, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	struct state st = { s->view.sb.data_block_size, ident_of(d), 0, { 0, 0, 0 } };
	if (write_state(o->out, &st))
		goto out;
	if (!o->quiet)
		printf("full backup of device %" PRIu64 ": %" PRIu64 " blocks copied (%" PRIu64
		       " bytes)\n", d->dev_id, c.copied, c.bytes);
	status = EXIT_OK;
out:
	close(c.out_fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return status;
}

/* ------------------------------------------------------------------ */
/* incremental */

struct ranges {
	struct tm_delta_range *v;
	size_t n, cap;
};

static int collect(void *ctx, const struct tm_delta_range *r)
{
	struct ranges *rs = ctx;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 256;
		struct tm_delta_range *v = realloc(rs->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n++] = *r;
	return 0;
}

/* The highest key of the mapping tree at @root, +1 (0 when empty). */
static int tree_end(struct src *s, uint64_t root, uint64_t *end, struct tm_error *e)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_node n;
	uint64_t b = root;
	int r;

	for (int depth = 0; depth < TM_BTREE_MAX_DEPTH; depth++) {
		r = tm_bm_read(s->bm, b, &tm_node_validator, buf, e);
		if (r)
			return r;
		tm_node_view(buf, b, &n);
		if (n.value_size != 8)
			return tm_fail(e, -EUCLEAN, TM_RULE_VALUE_SIZE, b,
				       "btree node %" PRIu64 ": value size %" PRIu32 ", not 8", b,
				       n.value_size);
		if (!n.nr_entries) {
			if (tm_node_is_leaf(&n) && b == root) {
				*end = 0;
				return 0;
			}
			return tm_fail(e, -EUCLEAN, TM_RULE_EMPTY_INTERNAL, b,
				       "btree node %" PRIu64 " below the root is empty", b);
		}
		if (tm_node_is_leaf(&n)) {
			uint64_t k = tm_node_key(&n, n.nr_entries - 1);
			if (k == UINT64_MAX)
				return tm_fail(e, -EUCLEAN, TM_RULE_BAD_VALUE, b,
					       "btree node %" PRIu64 ": key %" PRIu64 " is too large", b, k);
			*end = k + 1;
			return 0;
		}
		b = tm_node_value64(&n, n.nr_entries - 1);
	}
	return tm_fail(e, -EUCLEAN, TM_RULE_DEPTH, root,
		       "the mapping tree at block %" PRIu64 " is deeper than %d levels", root,
		       TM_BTREE_MAX_DEPTH);
}

/*
 * Copy the changed blocks, zero the ones that went.  With @check, only
 * look every changed block up and check its mapping: a first pass, so that
 * bad metadata is found before the image changes.
 */
static int apply(struct copy *c, const struct ranges *rs, int check, struct tm_error *e)
{
	struct src *s = c->s;
	uint8_t v[8];
	int r;

	for (size_t i = 0; i < rs->n; i++) {
		const struct tm_delta_range *d = &rs->v[i];
		if (d->kind == TM_DELTA_SAME)
			continue;
		if (d->kind == TM_DELTA_LEFT_ONLY) {
			if (!check && zero_blocks(c, d->begin, d->begin + d->length))
				return 1;
			continue;
		}
		for (uint64_t vb = d->begin; vb < d->begin + d->length; vb++) {
			uint64_t db = d->right_data;
			if (vb != d->begin) {
				/* a range's data blocks need not follow each other */
				r = tm_btree_lookup(s->bm, c->dev->mapping_root, 8, vb, v, e);
				if (r)
					return r;
				db = tm_bt_block(tm_le64(v));
			}
			if (check ? check_mapping(c, vb, db) : copy_block(c, vb, db))
				return 1;
		}
	}
	return 0;
}

static int do_incremental(struct src *s)
{
	const struct opts *o = s->o;
	const struct tm_device *base = find_dev(s, o->base, "--base-id");
	const struct tm_device *target = base ? find_dev(s, o->id, "--dev-id") : NULL;
	struct ranges rs = { NULL, 0, 0 };
	struct state st;
	struct ident bi, ti;
	struct copy c;
	struct tm_error e;
	struct stat ost;
	uint64_t end = 0;
	char t1[128], t2[128];
	int r, status = EXIT_FAIL;

	memset(&c, 0, sizeof(c));
	c.out_fd = -1;
	if (!target || check_image_path(s, o->out, 1) || read_state(o->out, &st))
		return EXIT_FAIL;
	bi = ident_of(base);
	ti = ident_of(target);
	if (st.data_block_size != s->view.sb.data_block_size) {
		msg("%s: the image was made from a pool with data blocks of %" PRIu32
		    " sectors, this one has %" PRIu32, o->out, st.data_block_size,
		    s->view.sb.data_block_size);
		return EXIT_FAIL;
	}
	if (!same_ident(&st.image, &bi)) {
		ident_text(t1, sizeof(t1), &st.image);
		ident_text(t2, sizeof(t2), &bi);
		msg("%s holds %s, but --base-id is %s: not this image's base", o->out, t1, t2);
		return EXIT_FAIL;
	}
	if (st.updating && !same_ident(&st.target, &ti)) {
		ident_text(t1, sizeof(t1), &st.target);
		msg("%s: an incremental backup to %s broke off part way: run it again "
		    "(same --base-id and --dev-id), or make a new full backup", o->out, t1);
		return EXIT_FAIL;
	}

	/* every metadata read before the image changes */
	tm_error_clear(&e);
	r = tm_delta(s->bm, base->mapping_root, target->mapping_root, TM_DELTA_SKIP_SAME, collect,
		     &rs, NULL, &e);
	if (r == -ENOMEM && !e.msg[0])
		msg("out of memory");
	if (!r)
		r = tree_end(s, target->mapping_root, &end, &e);
	if (r) {
		if (e.msg[0])
			msg_error(o->meta, &e);
		goto out;
	}
	if (end > (uint64_t)INT64_MAX / s->bb) {
		msg("%s: device %" PRIu64 " maps block %" PRIu64 ", past the largest possible image file",
		    o->meta, target->dev_id, end - 1);
		goto out;
	}
	c.s = s;
	c.dev = target;
	c.out = o->out;
	tm_error_clear(&e);
	r = apply(&c, &rs, 1, &e);		/* the whole delta checked first */
	if (!r) {
		c.out_fd = open(o->out, O_RDWR | O_CLOEXEC);
		if (c.out_fd < 0) {
			msg("%s: %s", o->out, strerror(errno));
			goto out;
		}
		st.updating = 1;
		st.target = ti;
		if (write_state(o->out, &st))
			goto out;
		r = apply(&c, &rs, 0, &e);
	}
	if (r > 0) {
		msg("%s", c.err);
		goto out;
	}
	if (r) {
		char where[400];
		snprintf(where, sizeof(where), "%s: device %" PRIu64, o->meta, target->dev_id);
		msg_error(where, &e);
		goto out;
	}
	/* the image covers the device's mapped blocks; it never shrinks */
	if (fstat(c.out_fd, &ost) < 0 ||
	    ((uint64_t)ost.st_size < end * s->bb && ftruncate(c.out_fd, (off_t)(end * s->bb)) < 0) ||
	    fsync(c.out_fd) < 0) {
		msg("%s: %s", o->out, strerror(errno));
		goto out;
	}
	st.image = ti;
	st.updating = 0;
	if (write_state(o->out, &st))
		goto out;
	if (!o->quiet)
		printf("incremental backup of device %" PRIu64 " over device %" PRIu64 ": %" PRIu64
		       " blocks copied, %" PRIu64 " blocks discarded (%" PRIu64 " bytes)\n",
		       target->dev_id, base->dev_id, c.copied, c.discarded, c.bytes);
	status = EXIT_OK;
out:
	if (c.out_fd >= 0)
		close(c.out_fd);
	free(rs.v);
	return status;
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	struct opts o;
	struct src s;
	int c, status;

	tool_init("thin_backup");
	memset(&o, 0, sizeof(o));
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc >= 2 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
		printf("%s\n", THINMETA_VERSION);
		return EXIT_OK;
	}
	if (argc < 2)
		usage_error("no command given (full or incremental)");
	if (!strcmp(argv[1], "incremental"))
		o.incremental = 1;
	else if (strcmp(argv[1], "full"))
		usage_error("unknown command '%s' (full or incremental)", argv[1]);
	argv++;
	argc--;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":mo:qhV", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_METADATA:
			o.meta = optarg;
			break;
		case OPT_DATA:
			o.data = optarg;
			break;
		case OPT_DEV_ID:
			o.id = opt_u64("--dev-id", optarg);
			o.have_id = 1;
			break;
		case OPT_BASE_ID:
			if (!o.incremental)
				usage_error("--base-id is for incremental backups");
			o.base = opt_u64("--base-id", optarg);
			o.have_base = 1;
			break;
		case 'm':
			o.snap = 1;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 'q':
			o.quiet = 1;
			break;
		default:	/* -h, -V, a missing value, an unknown option */
			tool_std_option(c, argv, usage);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!o.meta)
		usage_error("--metadata not given");
	if (!o.data)
		usage_error("--data not given");
	if (!o.have_id)
		usage_error("--dev-id not given");
	if (o.incremental && !o.have_base)
		usage_error("--base-id not given");
	if (!o.out)
		usage_error("-o (the image file) not given");

	memset(&s, 0, sizeof(s));
	s.o = &o;
	s.data_fd = -1;
	if (open_meta(&s) || open_data(&s))
		status = EXIT_FAIL;
	else
		status = o.incremental ? do_incremental(&s) : do_full(&s);
	close_src(&s);
	if (status == EXIT_OK && fflush(stdout)) {
		msg("error writing to stdout: %s", strerror(errno));
		status = EXIT_FAIL;
	}
	return status;
}
