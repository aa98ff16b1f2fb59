/*
 * script.c - thin_pool's command interpreter: opening the pool, each
 * command (format, the pool messages, write/discard/read, resize_data,
 * commit, status, needs_check) with its arguments, and the parser of a
 * script line.  Split from thin_pool.c so that fuzz/fuzz_pool_script.c
 * runs the same code on an in-memory pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool_tool.h"
#include "script.h"
#include "thinmeta/format.h"
#include "tool.h"

/* ------------------------------------------------------------------ */

void report(const char *where, const struct tm_error *e)
{
	if (e->msg[0])
		msg("%s%s", where, e->msg);
	else
		msg("%s%s", where, strerror(-e->err));
}

static int open_dev(struct pctx *c)
{
	int r;

	if (c->dev)
		return 0;
	/* one writer at a time: another thin_pool on the same file waits for none */
	c->lock_fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (c->lock_fd >= 0 && flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		msg("%s: in use by another thin_pool", c->path);
		return -1;
	}
	r = tm_dev_open_file(c->path, TM_DEV_WRITE | TM_DEV_EXCL, &c->dev);
	if (r) {
		if (r == -ENOENT)
			msg("Couldn't find metadata file '%s'", c->path);
		else if (r == -ENOTBLK)
			msg("Not a block device or regular file '%s'.", c->path);
		else
			msg("%s: cannot open for writing: %s", c->path, strerror(-r));
		return -1;
	}
	return 0;
}

int pctx_pool(struct pctx *c)
{
	struct tm_error e;
	int r, grown;

	if (c->pool)
		return 0;
	if (open_dev(c))
		return -1;
	tm_error_clear(&e);
	r = tm_pool_open(c->dev, &c->pool, &e);
	if (r == -EILSEQ && e.rule == TM_RULE_ZEROED && e.block == 0) {
		msg("%s: no pool metadata here (block 0 is all zeroes): format it first", c->path);
		return -1;
	}
	if (!r) {
		/* the kernel's resume: grow the metadata space map to the device */
		r = tm_pool_grow_metadata_to_device(c->pool, &grown, &e);
		if (r) {
			tm_pool_close(c->pool);
			c->pool = NULL;
		}
	}
	if (r) {
		char where[300];
		snprintf(where, sizeof(where), "%s: ", c->path);
		report(where, &e);
		return -1;
	}
	return pdata_attach(c);
}

/* ------------------------------------------------------------------ */
/* Commands */

struct cmd_env {
	struct pctx *c;
	const char *where;	/* "PATH: " or "FILE:LINE: " */
	int script;
};

static int bad(const struct cmd_env *env, const char *fmt, const char *arg)
{
	char m[400];

	snprintf(m, sizeof(m), fmt, arg);
	if (env->script)
		msg("%s%s", env->where, m);
	else
		msg("%s", m);
	return CMD_USAGE;
}

static int num(const struct cmd_env *env, const char *what, const char *s, uint64_t *v)
{
	char m[200];

	if (!parse_u64(s, v))
		return 0;
	snprintf(m, sizeof(m), "invalid %s '%%s': not a non-negative decimal number", what);
	bad(env, m, s);
	return -1;
}

static int engine_failed(const struct cmd_env *env, const struct tm_error *e)
{
	report(env->where, e);
	return CMD_FAIL;
}

static int need_pool(const struct cmd_env *env)
{
	return pctx_pool(env->c) ? CMD_FAIL : CMD_OK;
}

static int need_data(const struct cmd_env *env, const char *what)
{
	if (env->c->data_path)
		return CMD_OK;
	return bad(env, "%s needs the pool's data file: thin_pool METADATA --data FILE ...", what);
}

static int commit(const struct cmd_env *env)
{
	struct tm_error e;

	tm_error_clear(&e);
	if (tm_pool_commit(env->c->pool, &e))
		return engine_failed(env, &e);
	return CMD_OK;
}

static int cmd_format(const struct cmd_env *env, int argc, char **argv)
{
	struct pctx *c = env->c;
	uint64_t bs = 0, n = 0;
	int have_bs = 0, have_n = 0;
	struct tm_error e;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--data-block-size") && i + 1 < argc) {
			if (num(env, "data block size", argv[++i], &bs))
				return CMD_USAGE;
			have_bs = 1;
		} else if (!strcmp(argv[i], "--nr-data-blocks") && i + 1 < argc) {
			if (num(env, "number of data blocks", argv[++i], &n))
				return CMD_USAGE;
			have_n = 1;
		} else {
			return bad(env, "format: unexpected argument '%s' (usage: format --data-block-size SECTORS --nr-data-blocks N)",
				   argv[i]);
		}
	}
	if (!have_bs || !have_n)
		return bad(env, "%susage: format --data-block-size SECTORS --nr-data-blocks N", "");
	if (bs < TM_DATA_BLOCK_SIZE_MIN || bs > TM_DATA_BLOCK_SIZE_MAX || bs % TM_DATA_BLOCK_SIZE_MIN) {
		char s[32];
		snprintf(s, sizeof(s), "%llu", (unsigned long long)bs);
		return bad(env, "invalid data block size %s: it must be a multiple of 128 sectors within 128..2097152", s);
	}
	if (c->pool) {
		msg("%sthe pool exists already: format needs a zeroed device", env->where);
		return CMD_FAIL;
	}
	if (pdata_check_format(c, (uint32_t)bs, n) || open_dev(c))
		return CMD_FAIL;
	tm_error_clear(&e);
	if (tm_pool_format(c->dev, (uint32_t)bs, n, &c->pool, &e))
		return engine_failed(env, &e);
	return pdata_attach(c) ? CMD_FAIL : CMD_OK;
}

static int get_ids(const struct cmd_env *env, int argc, char **argv, uint64_t *ids)
{
	for (int i = 1; i < argc; i++)
		if (num(env, "device id", argv[i], &ids[i - 1]))
			return -1;
	return 0;
}

/* create_thin, create_snap, delete, set_transaction_id, reserve/release */
static int cmd_message(const struct cmd_env *env, int argc, char **argv)
{
	struct tm_pool *p;
	uint64_t a[2] = { 0, 0 };
	struct tm_error e;
	int r;

	if (!strcmp(argv[0], "set_transaction_id")) {
		if (num(env, "transaction id", argv[1], &a[0]) ||
		    num(env, "transaction id", argv[2], &a[1]))
			return CMD_USAGE;
	} else if (get_ids(env, argc, argv, a)) {
		return CMD_USAGE;
	}
	if ((r = need_pool(env)))
		return r;
	p = env->c->pool;
	tm_error_clear(&e);
	if (!strcmp(argv[0], "create_thin"))
		r = tm_pool_create_thin(p, a[0], &e);
	else if (!strcmp(argv[0], "create_snap"))
		r = tm_pool_create_snap(p, a[0], a[1], &e);
	else if (!strcmp(argv[0], "delete"))
		r = tm_pool_delete(p, a[0], &e);
	else if (!strcmp(argv[0], "set_transaction_id"))
		r = tm_pool_set_transaction_id(p, a[0], a[1], &e);
	else if (!strcmp(argv[0], "reserve_metadata_snap"))
		r = tm_pool_reserve_metadata_snap(p, &e);
	else
		r = tm_pool_release_metadata_snap(p, &e);
	if (r)
		return engine_failed(env, &e);
	/* the kernel commits after every message */
	return commit(env);
}

/* The options of write and read, after ID BEGIN [COUNT]. */
struct io_opts {
	uint64_t id, begin, count;
	int npos;			/* positional arguments */
	const char *tag;
	uint64_t offset, length;
	int have_offset, have_length;
	int raw;
	const char *out;
};

static int valid_tag(const char *t)
{
	size_t n = strlen(t);

	if (!n || n > 64)
		return 0;
	for (; *t; t++)
		if (*t < 0x21 || *t > 0x7e)
			return 0;
	return 1;
}

static int io_args(const struct cmd_env *env, int argc, char **argv, struct io_opts *o)
{
	int is_write = !strcmp(argv[0], "write"), is_read = !strcmp(argv[0], "read");

	memset(o, 0, sizeof(*o));
	o->count = 1;
	o->tag = "-";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || !a[1]) {
			uint64_t *dst[3] = { &o->id, &o->begin, &o->count };
			static const char *const what[3] = { "device id", "block", "count" };
			if (o->npos == 3)
				return bad(env, "unexpected argument '%s'", a);
			if (num(env, what[o->npos], a, dst[o->npos]))
				return CMD_USAGE;
			o->npos++;
			continue;
		}
		if (is_read && !strcmp(a, "--raw")) {
			o->raw = 1;
			continue;
		}
		int has_value = (is_write && (!strcmp(a, "--tag") || !strcmp(a, "--offset") ||
					      !strcmp(a, "--length"))) ||
				(is_read && !strcmp(a, "-o"));
		if (!has_value)
			return bad(env, "unknown option '%s'", a);
		if (i + 1 >= argc)
			return bad(env, "option '%s' needs a value", a);
		const char *v = argv[++i];
		if (!strcmp(a, "--tag")) {
			if (!valid_tag(v))
				return bad(env, "invalid tag '%s': 1 to 64 printable characters, no spaces", v);
			o->tag = v;
		} else if (!strcmp(a, "--offset")) {
			if (num(env, "offset", v, &o->offset))
				return CMD_USAGE;
			o->have_offset = 1;
		} else if (!strcmp(a, "--length")) {
			if (num(env, "length", v, &o->length))
				return CMD_USAGE;
			o->have_length = 1;
		} else {
			o->out = v;
		}
	}
	if (o->npos < 2)
		return bad(env, "wrong number of arguments: usage: %s",
			   is_write ? "write ID BEGIN [COUNT] [--tag TAG] [--offset BYTES] [--length BYTES]"
			   : is_read ? "read ID BEGIN [COUNT] [--raw] [-o FILE]" : "discard ID BEGIN [COUNT]");
	if (is_write && (o->have_offset || o->have_length || strcmp(o->tag, "-")))
		return need_data(env, "write with --tag, --offset or --length");
	if (is_read)
		return need_data(env, "read");
	return CMD_OK;
}

/* [begin, begin + count) must lie within the largest possible thin device. */
static int in_device(const struct cmd_env *env, const struct io_opts *o, const char *begin)
{
	/* a thin device has at most 2^64 bytes */
	uint64_t limit = UINT64_MAX / ((uint64_t)tm_pool_data_block_size(env->c->pool) * TM_SECTOR_SIZE);

	if (o->begin > limit || o->count > limit - o->begin) {
		msg("%sblocks %s.. are past the largest possible thin device", env->where, begin);
		return -1;
	}
	return 0;
}

static int cmd_io(const struct cmd_env *env, int argc, char **argv)
{
	uint64_t id, begin, count, end;
	struct io_opts o;
	struct tm_pool *p;
	struct tm_error e;
	int r;

	if ((r = io_args(env, argc, argv, &o)))
		return r;
	id = o.id;
	begin = o.begin;
	count = o.count;
	if ((r = need_pool(env)))
		return r;
	p = env->c->pool;
	if (in_device(env, &o, argv[2]))
		return CMD_FAIL;
	end = begin + count;
	tm_error_clear(&e);
	if (!strcmp(argv[0], "write")) {
		uint64_t bb = (uint64_t)tm_pool_data_block_size(p) * TM_SECTOR_SIZE;
		struct wspec w = { o.tag, o.offset, o.have_length ? o.length : bb - o.offset };
		if (o.offset >= bb || !w.length || w.length > bb - o.offset) {
			char s[64];
			snprintf(s, sizeof(s), "%llu", (unsigned long long)bb);
			return bad(env, "--offset and --length must name bytes within a data block of %s bytes", s);
		}
		for (uint64_t b = begin; b < end; b++) {
			r = pool_write_block(env->c, id, b, &w, &e);
			if (r)
				return engine_failed(env, &e);
		}
	} else {
		uint64_t n;
		r = tm_pool_discard(p, id, begin, end, &n, &e);
		if (r)
			return engine_failed(env, &e);
	}
	return CMD_OK;
}

static int cmd_read(const struct cmd_env *env, int argc, char **argv)
{
	struct tm_pool_device_info *devs = NULL;
	uint64_t nr = 0;
	struct io_opts o;
	struct tm_error e;
	FILE *out = stdout;
	int r, found = 0;

	if ((r = io_args(env, argc, argv, &o)))
		return r;
	if ((r = need_pool(env)))
		return r;
	if (in_device(env, &o, argv[2]))
		return CMD_FAIL;
	tm_error_clear(&e);
	if (tm_pool_devices(env->c->pool, &devs, &nr, &e))
		return engine_failed(env, &e);
	for (uint64_t i = 0; i < nr; i++)
		found |= devs[i].id == o.id;
	free(devs);
	if (!found) {
		msg("%sread: thin device %llu does not exist", env->where, (unsigned long long)o.id);
		return CMD_FAIL;
	}
	if (o.out) {
		out = fopen(o.out, "w");
		if (!out) {
			msg("%s: %s", o.out, strerror(errno));
			return CMD_FAIL;
		}
	}
	errno = 0;
	r = pdata_read(env->c, o.id, o.begin, o.count, out, o.raw || o.out, &e);
	if (out != stdout && fclose(out) && !r)
		r = tm_fail(&e, -EIO, TM_RULE_IO, TM_NO_BLOCK, "%s: %s", o.out, strerror(errno));
	if (r == -EPIPE)
		return CMD_FAIL;	/* the reader went away */
	if (r)
		return engine_failed(env, &e);
	return CMD_OK;
}

static int cmd_resize_data(const struct cmd_env *env, int argc, char **argv)
{
	struct tm_error e;
	uint64_t n;
	int r;

	(void)argc;
	if (num(env, "number of data blocks", argv[1], &n))
		return CMD_USAGE;
	if ((r = need_pool(env)))
		return r;
	if (pdata_check_size(env->c, n))
		return CMD_FAIL;
	tm_error_clear(&e);
	if (tm_pool_resize_data(env->c->pool, n, &e))
		return engine_failed(env, &e);
	return commit(env);
}

static int cmd_commit(const struct cmd_env *env, int argc, char **argv)
{
	int r;

	(void)argc;
	(void)argv;
	if ((r = need_pool(env)))
		return r;
	return commit(env);
}

static int cmd_status(const struct cmd_env *env, int argc, char **argv)
{
	struct tm_pool_status st;
	struct tm_error e;
	char held[24];
	int r;

	(void)argc;
	(void)argv;
	if ((r = need_pool(env)))
		return r;
	tm_error_clear(&e);
	if (tm_pool_status(env->c->pool, &st, &e))
		return engine_failed(env, &e);
	if (st.held_root)
		snprintf(held, sizeof(held), "%llu", (unsigned long long)st.held_root);
	else
		strcpy(held, "-");
	/* dmsetup's text: the kernel ends the line with a space */
	printf("%llu %llu/%llu %llu/%llu %s %s discard_passdown queue_if_no_space %s %llu \n",
	       (unsigned long long)st.transaction_id, (unsigned long long)st.meta_used,
	       (unsigned long long)st.meta_total, (unsigned long long)st.data_used,
	       (unsigned long long)st.data_total, held, st.read_only ? "ro" : "rw",
	       st.needs_check ? "needs_check" : "-", (unsigned long long)st.meta_low_water);
	if (fflush(stdout)) {
		msg("error writing to stdout: %s", strerror(errno));
		return CMD_FAIL;
	}
	return CMD_OK;
}

static int cmd_needs_check(const struct cmd_env *env, int argc, char **argv)
{
	struct tm_error e;
	int r;

	(void)argc;
	if ((r = need_pool(env)))
		return r;
	tm_error_clear(&e);
	if (tm_pool_set_needs_check(env->c->pool, !strcmp(argv[0], "set_needs_check"), &e))
		return engine_failed(env, &e);
	return CMD_OK;
}

struct cmd {
	const char *name;
	int min_args, max_args;		/* after the command word */
	const char *syntax;
	int (*fn)(const struct cmd_env *env, int argc, char **argv);
};

static const struct cmd cmds[] = {
	{ "format", 4, 4, "format --data-block-size SECTORS --nr-data-blocks N", cmd_format },
	{ "create_thin", 1, 1, "create_thin ID", cmd_message },
	{ "create_snap", 2, 2, "create_snap ID ORIGIN", cmd_message },
	{ "delete", 1, 1, "delete ID", cmd_message },
	{ "set_transaction_id", 2, 2, "set_transaction_id OLD NEW", cmd_message },
	{ "reserve_metadata_snap", 0, 0, "reserve_metadata_snap", cmd_message },
	{ "release_metadata_snap", 0, 0, "release_metadata_snap", cmd_message },
	{ "write", 2, 9, "write ID BEGIN [COUNT] [--tag TAG] [--offset BYTES] [--length BYTES]", cmd_io },
	{ "read", 2, 6, "read ID BEGIN [COUNT] [--raw] [-o FILE]", cmd_read },
	{ "discard", 2, 3, "discard ID BEGIN [COUNT]", cmd_io },
	{ "resize_data", 1, 1, "resize_data N", cmd_resize_data },
	{ "commit", 0, 0, "commit", cmd_commit },
	{ "status", 0, 0, "status", cmd_status },
	{ "set_needs_check", 0, 0, "set_needs_check", cmd_needs_check },
	{ "clear_needs_check", 0, 0, "clear_needs_check", cmd_needs_check },
};

static int exec_cmd(const struct cmd_env *env, int argc, char **argv)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct cmd *k = &cmds[i];
		if (strcmp(argv[0], k->name))
			continue;
		if (argc - 1 < k->min_args || argc - 1 > k->max_args)
			return bad(env, "wrong number of arguments: usage: %s", k->syntax);
		return k->fn(env, argc, argv);
	}
	return bad(env, "unknown command '%s'", argv[0]);
}

int pool_exec(struct pctx *c, const char *where, int script, int argc, char **argv)
{
	struct cmd_env env = { c, where, script };

	return exec_cmd(&env, argc, argv);
}

int script_line(struct pctx *c, const char *where, char *line)
{
	char *words[SCRIPT_MAX_WORDS + 1], *save = NULL, *w;
	int n = 0;

	line[strcspn(line, "#")] = '\0';
	for (w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == SCRIPT_MAX_WORDS)
			break;
		words[n++] = w;
	}
	if (!n)
		return CMD_OK;
	if (n == SCRIPT_MAX_WORDS) {
		msg("%stoo many words on the line", where);
		return CMD_FAIL;
	}
	return pool_exec(c, where, 1, n, words);
}
