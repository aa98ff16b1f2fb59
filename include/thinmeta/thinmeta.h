/*
 * thinmeta.h - libthinmeta's stable C API: read a dm-thin pool's metadata.
 *
 * For programs that read pool metadata without running a tool and parsing
 * its output: backup software that wants the blocks a thin device changed
 * since a snapshot, monitoring, inventory.  Read-only: nothing here writes.
 *
 *   #include <thinmeta/thinmeta.h>
 *   cc prog.c $(pkg-config --cflags --libs thinmeta)
 *
 * A typical session:
 *
 *   struct thinmeta *md;
 *   struct thinmeta_error err;
 *   if (thinmeta_open("/dev/mapper/vg-pool_tmeta", THINMETA_OPEN_SNAPSHOT,
 *                     &md, &err) < 0)
 *           fprintf(stderr, "%s\n", err.message);
 *   const struct thinmeta_device *devs;
 *   size_t n;
 *   thinmeta_devices(md, &devs, &n, &err);
 *   thinmeta_device_runs(md, devs[0].dev_id, my_run_cb, my_ctx, &err);
 *   thinmeta_close(md);
 *
 * Live pools.  The metadata of an active pool changes under a reader; only
 * the held metadata snapshot (`dmsetup message <pool>-tpool 0
 * reserve_metadata_snap`) stays still while it is held.  Open an active
 * pool's metadata with THINMETA_OPEN_SNAPSHOT; without it a block device
 * is opened exclusively (O_EXCL), which an active pool refuses (-EBUSY).
 *
 * Errors.  Every function that can fail returns 0 or a negative errno and,
 * when @err is not NULL, fills it with the errno and one line naming what
 * broke and where ("meta.img: device 0 mapping tree: block 114: bad
 * checksum in btree node").  The errnos:
 *
 *   -ENOENT, -EACCES, ...  the device could not be opened
 *   -EBUSY    a block device in use (an active pool): see above
 *   -EIO      a read failed
 *   -ENOMEM   out of memory
 *   -EILSEQ   a checksum did not match (damaged metadata)
 *   -EUCLEAN  a block breaks a format rule (damaged metadata)
 *   -ENOTBLK, -ERANGE, -ELOOP  more damage: a block at the wrong place, a
 *             pointer past the device's end, a tree that loops
 *   -ENODATA  no such device; no metadata snapshot held
 *   -EINVAL   a bad argument
 *
 * Every block is validated where it is read, and nothing read is trusted:
 * damaged or hostile metadata gives an error, never a crash or a loop.
 *
 * Threads: a handle may be used by one thread at a time; separate handles
 * are independent.
 *
 * Stability: this header is the whole API of libthinmeta.so (soname
 * libthinmeta.so.1; symbols versioned THINMETA_1.0).  Within major version
 * 1 functions are only added, and the structs below only grow into their
 * reserved fields, which are zero.  It is the only header `make install`
 * installs: the engine's other headers are internal (the tools' own), and
 * their symbols are not exported by the shared library.
 */
#ifndef THINMETA_THINMETA_H
#define THINMETA_THINMETA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define THINMETA_API __attribute__((visibility("default")))
#else
#define THINMETA_API
#endif

/*
 * The library version this header belongs to (the Makefile reads these
 * lines: the shared library is libthinmeta.so.MAJOR.MINOR.PATCH, soname
 * libthinmeta.so.MAJOR).
 */
#define THINMETA_VERSION_MAJOR 1
#define THINMETA_VERSION_MINOR 0
#define THINMETA_VERSION_PATCH 0

/* The version of the library actually loaded, "MAJOR.MINOR.PATCH". */
THINMETA_API const char *thinmeta_version(void);

/* ------------------------------------------------------------------ */
/* Errors */

struct thinmeta_error {
	int code;		/* 0, or the negative errno returned */
	char message[256];	/* one line, no trailing newline */
};

/* ------------------------------------------------------------------ */
/* Opening */

struct thinmeta;	/* an opened metadata device and one view of it */

/*
 * Open flags.  THINMETA_OPEN_SNAPSHOT: read the held metadata snapshot's
 * trees instead of the live ones (-ENODATA if none is held); the device
 * is then not opened exclusively.  THINMETA_OPEN_SHARED: do not open a
 * block device exclusively for the live view either (for metadata that
 * is known to be idle; an active pool's live trees may be torn).
 */
#define THINMETA_OPEN_SNAPSHOT	0x1u
#define THINMETA_OPEN_SHARED	0x2u

/*
 * Open the metadata device or file @path read-only and read its
 * superblock (and, with THINMETA_OPEN_SNAPSHOT, the snapshot's).
 * On success *@md is a new handle; close it with thinmeta_close().
 */
THINMETA_API int thinmeta_open(const char *path, unsigned flags,
			       struct thinmeta **md, struct thinmeta_error *err);

/* Close a handle (NULL is allowed). */
THINMETA_API void thinmeta_close(struct thinmeta *md);

/* ------------------------------------------------------------------ */
/* The superblock */

#define THINMETA_FLAG_NEEDS_CHECK 0x1u	/* the superblock's needs_check flag */

struct thinmeta_info {
	uint64_t transaction_id;	/* of the view (the snapshot's own) */
	uint32_t time;			/* of the view: the pool's snapshot counter */
	uint32_t flags;			/* THINMETA_FLAG_*, of the live superblock */
	uint32_t version;		/* metadata format version, 1 or 2 */
	uint32_t data_block_size;	/* sectors of 512 bytes */
	uint64_t nr_data_blocks;	/* the pool's data blocks (live superblock) */
	uint64_t nr_metadata_blocks;	/* 4 KiB blocks the metadata space map tracks */
	uint64_t free_metadata_blocks;	/* of those, unallocated (live superblock) */
	uint64_t held_root;		/* block of the held snapshot, 0 = none */
	int is_snapshot;		/* this handle reads the held snapshot */
	uint8_t uuid[16];		/* all zero on Linux pools */
	uint64_t reserved[8];
};

THINMETA_API int thinmeta_get_info(struct thinmeta *md, struct thinmeta_info *info);

/* ------------------------------------------------------------------ */
/* Thin devices */

struct thinmeta_device {
	uint64_t dev_id;		/* the thin device id (dmsetup create_thin) */
	uint64_t mapped_blocks;		/* as its details record it */
	uint64_t transaction_id;	/* the pool's transaction when it was created */
	uint32_t creation_time;		/* the pool's time when it was created */
	uint32_t snapshotted_time;	/* ... when it was last snapshotted */
	uint64_t mapping_root;		/* block of its mapping tree's root */
	uint64_t reserved[4];
};

/*
 * The thin devices of the view, in ascending dev_id.  *@devs belongs to
 * the handle and stays valid until thinmeta_close(); it is read once.
 * -EUCLEAN if the device details and the mapping tree list different ids.
 */
THINMETA_API int thinmeta_devices(struct thinmeta *md,
				  const struct thinmeta_device **devs, size_t *nr,
				  struct thinmeta_error *err);

/* One device by id; -ENODATA if the view has no such device. */
THINMETA_API int thinmeta_find_device(struct thinmeta *md, uint64_t dev_id,
				      struct thinmeta_device *dev,
				      struct thinmeta_error *err);

/* ------------------------------------------------------------------ */
/* Mappings, as runs */

/*
 * A run: @length consecutive virtual blocks from @thin_begin mapped to
 * consecutive data blocks from @data_begin, all written at @time.  Runs
 * are maximal (thin_dump --expand-shared prints the same runs) and come in
 * ascending @thin_begin.  Blocks are data blocks of data_block_size
 * sectors.
 */
struct thinmeta_run {
	uint64_t thin_begin;
	uint64_t data_begin;
	uint64_t length;
	uint32_t time;
	uint32_t reserved;
};

/* Return 0 to go on; anything else stops the iteration and is returned. */
typedef int (*thinmeta_run_fn)(void *ctx, const struct thinmeta_run *run);

/* The runs of thin device @dev_id of the view. */
THINMETA_API int thinmeta_device_runs(struct thinmeta *md, uint64_t dev_id,
				      thinmeta_run_fn fn, void *ctx,
				      struct thinmeta_error *err);

/*
 * The runs of the mapping tree whose root is block @root (a device's
 * mapping_root, possibly one read through another handle on the same
 * device).
 */
THINMETA_API int thinmeta_tree_runs(struct thinmeta *md, uint64_t root,
				    thinmeta_run_fn fn, void *ctx,
				    struct thinmeta_error *err);

/* ------------------------------------------------------------------ */
/* Differences between two mapping trees */

/* Kinds of difference (int values, stable). */
#define THINMETA_DELTA_LEFT_ONLY	0	/* mapped on the left only */
#define THINMETA_DELTA_RIGHT_ONLY	1	/* mapped on the right only */
#define THINMETA_DELTA_DIFFERENT	2	/* mapped on both, to different data */
#define THINMETA_DELTA_SAME		3	/* mapped on both, to the same data */

/*
 * A maximal range of @length consecutive virtual blocks from @thin_begin of
 * one kind, as thin_delta reports it.  @left_data / @right_data: the data
 * block of @thin_begin on each side (unset, 0, on the side that has no
 * mapping); the data blocks of the rest of the range need not be
 * consecutive.  Ranges come in ascending @thin_begin.
 */
struct thinmeta_delta {
	int kind;			/* THINMETA_DELTA_* */
	uint32_t reserved0;
	uint64_t thin_begin;
	uint64_t length;
	uint64_t left_data;
	uint64_t right_data;
	uint64_t reserved[2];
};

typedef int (*thinmeta_delta_fn)(void *ctx, const struct thinmeta_delta *d);

/* Flags: no SAME ranges, and subtrees both sides share are not read. */
#define THINMETA_DELTA_SKIP_SAME 0x1u

/*
 * Compare thin device @left with thin device @right of the view (e.g. a
 * snapshot with its origin, or two snapshots of one origin: what changed
 * between them).  Subtrees the two devices share are not descended, so the
 * cost is what differs.  Returns 0, the callback's non-zero value, or a
 * negative errno.
 */
THINMETA_API int thinmeta_delta_devices(struct thinmeta *md, uint64_t left,
					uint64_t right, unsigned flags,
					thinmeta_delta_fn fn, void *ctx,
					struct thinmeta_error *err);

/* The same for two mapping trees given by their root blocks. */
THINMETA_API int thinmeta_delta_roots(struct thinmeta *md, uint64_t left_root,
				      uint64_t right_root, unsigned flags,
				      thinmeta_delta_fn fn, void *ctx,
				      struct thinmeta_error *err);

#ifdef __cplusplus
}
#endif

#endif
