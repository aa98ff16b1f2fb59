/*
 * thin_pool - drive a thin pool's metadata the way `dmsetup message` and
 * thin-device I/O drive the Linux 6.1 kernel: pool messages, writes and
 * discards of virtual blocks, resizes, commits, the status line; one
 * command, a script of them, or a random workload (docs/thin_pool.md).
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

static void usage(FILE *f)
{
	fprintf(f,
"Usage: thin_pool <METADATA> [--data <DATA>] <COMMAND> [ARGS]\n"
"       thin_pool <METADATA> [--data <DATA>] --script <FILE|->\n"
"       thin_pool <METADATA> [--data <DATA>] run --ops <N> --seed <S> [--seconds <T>]\n"
"                 [--keep-held] [--log <FILE>]\n"
"\n"
"Drive a thin pool's metadata (a file or block device) as the Linux kernel's\n"
"dm-thin target does: pool messages, writes and discards of virtual blocks.\n"
"With --data, DATA (a file or block device of at least nr_data_blocks blocks)\n"
"is the pool's data device: writes put bytes into the data blocks they\n"
"provision, copy-on-write copies them, and `read` reads thin devices.\n"
"\n"
"Commands:\n"
"  format --data-block-size <SECTORS> --nr-data-blocks <N>\n"
"                           format a zeroed device, as the kernel does, and\n"
"                           give the pool N data blocks\n"
"  create_thin <ID>         create_snap <ID> <ORIGIN>      delete <ID>\n"
"  set_transaction_id <OLD> <NEW>\n"
"  reserve_metadata_snap    release_metadata_snap\n"
"                           the pool messages (each one commits)\n"
"  write <ID> <BEGIN> [<COUNT>] [--tag <TAG>] [--offset <BYTES>] [--length <BYTES>]\n"
"                           write virtual blocks BEGIN.. of thin device ID; with\n"
"                           --data each block gets the line \"dev ID block B tag TAG\"\n"
"                           repeated (TAG default '-'), or only the bytes\n"
"                           OFFSET..OFFSET+LENGTH of it\n"
"  read <ID> <BEGIN> [<COUNT>] [--raw] [-o <FILE>]\n"
"                           print virtual blocks of thin device ID (needs --data):\n"
"                           as hexdump -C does, or raw (-o FILE: raw, to FILE)\n"
"  discard <ID> <BEGIN> [<COUNT>]\n"
"                           discard them\n"
"  resize_data <N>          grow the data device to N blocks (commits)\n"
"  commit                   commit the current transaction\n"
"  status                   commit, then print the kernel's thin-pool status\n"
"  set_needs_check | clear_needs_check\n"
"                           set or clear the superblock's needs_check flag\n"
"  run                      a deterministic random workload (see above)\n"
"\n"
"A script holds the same commands, one per line, without <METADATA>; '#'\n"
"starts a comment.  It runs in one process, like a running pool: the data\n"
"allocator's state carries from line to line.  Every message commits,\n"
"and so do `commit` lines and the end of the script.\n"
"\n"
"Options:\n"
"      --data <DATA>  the pool's data device: a file or block device of at\n"
"                 least nr_data_blocks blocks, flushed before every commit\n"
"  -o <FILE>      read: the raw bytes, to FILE\n"
"  -h, --help     Print help\n"
"  -V, --version  Print version\n"
"\n"
"Exit status: 0 success, 1 failure (a refused message, bad metadata, an I/O\n"
"error, a bad script line), 2 command-line misuse.\n");
}

/* ------------------------------------------------------------------ */

/* End of a run: commit what is pending unless the pool failed. */
static int finish(struct pctx *c, int status)
{
	struct tm_error e;

	/* after a data-file error the transaction maps blocks that hold no data */
	if (c->pool && !tm_pool_failed(c->pool) && tm_pool_changed(c->pool) && !pdata_failed(c)) {
		tm_error_clear(&e);
		if (tm_pool_commit(c->pool, &e)) {
			char where[300];
			snprintf(where, sizeof(where), "%s: ", c->path);
			report(where, &e);
			status = EXIT_FAIL;
		}
	}
	if (pdata_close(c))
		status = EXIT_FAIL;
	tm_pool_close(c->pool);
	tm_dev_close(c->dev);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	if (c->log && fclose(c->log)) {
		msg("error writing the log: %s", strerror(errno));
		status = EXIT_FAIL;
	}
	return status;
}

static int run_script(struct pctx *c, const char *file)
{
	FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	char *line = NULL, where[600];
	size_t cap = 0;
	uint64_t lineno = 0;
	int status = EXIT_OK;

	if (!f) {
		msg("%s: %s", file, strerror(errno));
		return finish(c, EXIT_FAIL);
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		snprintf(where, sizeof(where), "%s:%llu: ", strcmp(file, "-") ? file : "<stdin>",
			 (unsigned long long)lineno);
		if (script_line(c, where, line) != CMD_OK) {
			status = EXIT_FAIL;
			break;
		}
	}
	if (status == EXIT_OK && ferror(f)) {
		msg("%s: read error: %s", file, strerror(errno));
		status = EXIT_FAIL;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return finish(c, status);
}

static int run_cmd(struct pctx *c, int argc, char **argv)
{
	struct run_opts o = { 0, 0, 0, 0 };
	int have_ops = 0, have_seed = 0;
	const char *log = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--keep-held")) {
			o.keep_held = 1;
		} else if (!strcmp(a, "--ops") || !strcmp(a, "--seed") || !strcmp(a, "--seconds") ||
			   !strcmp(a, "--log")) {
			if (i + 1 >= argc)
				usage_error("option '%s' needs a value", a);
			const char *v = argv[++i];
			if (!strcmp(a, "--ops")) {
				o.ops = opt_u64(a, v);
				have_ops = 1;
			} else if (!strcmp(a, "--seed")) {
				o.seed = opt_u64(a, v);
				have_seed = 1;
			} else if (!strcmp(a, "--seconds")) {
				o.seconds = opt_u64(a, v);
			} else {
				log = v;
			}
		} else {
			usage_error("run: unexpected argument '%s'", a);
		}
	}
	if (!have_ops || !have_seed)
		usage_error("usage: run --ops N --seed S [--seconds T] [--keep-held] [--log FILE]");
	if (log) {
		c->log = fopen(log, "a");
		if (!c->log) {
			msg("%s: %s", log, strerror(errno));
			return EXIT_FAIL;
		}
	}
	if (pctx_pool(c))
		return finish(c, EXIT_FAIL);
	return finish(c, run_workload(c, &o) ? EXIT_FAIL : EXIT_OK);
}

int main(int argc, char **argv)
{
	struct pctx c;

	tool_init("thin_pool");
	memset(&c, 0, sizeof(c));
	c.lock_fd = -1;
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return EXIT_OK;
	}
	if (argc >= 2 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
		printf("%s\n", THINMETA_VERSION);
		return EXIT_OK;
	}
	if (argc < 3) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (argv[1][0] == '-' && argv[1][1])
		usage_error("unknown option '%s'", argv[1]);
	c.path = argv[1];
	if (!strcmp(argv[2], "--data")) {
		if (argc < 5)
			usage_error("usage: thin_pool METADATA --data FILE COMMAND [ARGS]");
		c.data_path = argv[3];
		argv += 2;
		argc -= 2;
	}

	if (!strcmp(argv[2], "--script")) {
		if (argc != 4)
			usage_error("usage: thin_pool METADATA --script FILE|-");
		return run_script(&c, argv[3]);
	}
	if (!strcmp(argv[2], "run"))
		return run_cmd(&c, argc - 2, argv + 2);

	char where[300];
	snprintf(where, sizeof(where), "%s: ", c.path);
	int r = pool_exec(&c, where, 0, argc - 2, argv + 2);
	if (r == CMD_USAGE) {
		fprintf(stderr, "Try 'thin_pool --help' for more information.\n");
		finish(&c, EXIT_USAGE);
		return EXIT_USAGE;
	}
	return finish(&c, r == CMD_OK ? EXIT_OK : EXIT_FAIL);
}
