/*
 * list-devices.c - an example program for libthinmeta's API
 * (<thinmeta/thinmeta.h>, libthinmeta(3)): list the thin devices of a pool's
 * metadata and what each one maps.
 *
 *   cc -o list-devices list-devices.c $(pkg-config --cflags --libs thinmeta)
 *   list-devices [-m] METADATA [DEV_ID DEV_ID]
 *
 * -m reads the held metadata snapshot (needed for an active pool: reserve
 * it first with `dmsetup message <pool>-tpool 0 reserve_metadata_snap`).
 * With two device ids it also prints what differs between the two devices
 * (e.g. a snapshot and its origin), as ranges of virtual blocks.
 *
 * Output, one line per device:
 *   device 0: 320 mapped blocks, 12 runs, highest block 1023, created at 0, snapshotted at 1
 * Exit status: 0 success, 1 failure (message on stderr), 2 bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <thinmeta/thinmeta.h>

struct tally {
	uint64_t runs, blocks, highest;
};

static int count_run(void *ctx, const struct thinmeta_run *run)
{
	struct tally *t = ctx;

	t->runs++;
	t->blocks += run->length;
	t->highest = run->thin_begin + run->length - 1;	/* runs come in order */
	return 0;
}

static int print_delta(void *ctx, const struct thinmeta_delta *d)
{
	static const char *const kind[] = { "left only", "right only", "different", "same" };

	(void)ctx;
	printf("  %" PRIu64 "..%" PRIu64 " %s\n", d->thin_begin,
	       d->thin_begin + d->length - 1, kind[d->kind & 3]);
	return 0;
}

static int parse_id(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	*v = strtoull(s, &end, 10);
	return *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct thinmeta *md;
	struct thinmeta_error err;
	struct thinmeta_info info;
	const struct thinmeta_device *devs;
	unsigned flags = 0;
	size_t nr;
	int a = 1;

	if (a < argc && !strcmp(argv[a], "-m")) {
		flags |= THINMETA_OPEN_SNAPSHOT;
		a++;
	}
	if (argc - a != 1 && argc - a != 3) {
		fprintf(stderr, "usage: %s [-m] METADATA [DEV_ID DEV_ID]\n", argv[0]);
		return 2;
	}
	if (thinmeta_open(argv[a], flags, &md, &err) < 0) {
		fprintf(stderr, "list-devices: %s\n", err.message);
		return 1;
	}
	thinmeta_get_info(md, &info);
	printf("libthinmeta %s; transaction %" PRIu64 ", %" PRIu64 " data blocks of %u sectors%s%s\n",
	       thinmeta_version(), info.transaction_id, info.nr_data_blocks,
	       info.data_block_size, info.is_snapshot ? ", metadata snapshot" : "",
	       info.flags & THINMETA_FLAG_NEEDS_CHECK ? ", needs_check" : "");

	if (thinmeta_devices(md, &devs, &nr, &err) < 0)
		goto fail;
	for (size_t i = 0; i < nr; i++) {
		struct tally t = { 0, 0, 0 };

		if (thinmeta_device_runs(md, devs[i].dev_id, count_run, &t, &err) < 0)
			goto fail;
		printf("device %" PRIu64 ": %" PRIu64 " mapped blocks, %" PRIu64 " runs",
		       devs[i].dev_id, t.blocks, t.runs);
		if (t.blocks)
			printf(", highest block %" PRIu64, t.highest);
		printf(", created at %u, snapshotted at %u\n", devs[i].creation_time,
		       devs[i].snapshotted_time);
	}

	if (argc - a == 3) {
		uint64_t left, right;

		if (parse_id(argv[a + 1], &left) || parse_id(argv[a + 2], &right)) {
			fprintf(stderr, "list-devices: device ids are numbers\n");
			thinmeta_close(md);
			return 2;
		}
		printf("delta %" PRIu64 " -> %" PRIu64 ":\n", left, right);
		if (thinmeta_delta_devices(md, left, right, THINMETA_DELTA_SKIP_SAME,
					   print_delta, NULL, &err) < 0)
			goto fail;
	}
	thinmeta_close(md);
	return 0;

fail:
	fprintf(stderr, "list-devices: %s\n", err.message);
	thinmeta_close(md);
	return 1;
}
