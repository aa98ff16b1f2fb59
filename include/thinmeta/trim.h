/*
 * trim.h - the free data blocks of a pool, for thin_trim, after a check
 * that makes discarding them safe.
 *
 * The check (a structural walk until thin_check's engine is shared): the
 * live superblock, the device details and top-level mapping trees agree,
 * every device's mapping tree is sound (each shared node walked once, nodes
 * checked as in mtree/delta), and so are those of the held metadata
 * snapshot if there is one, the data space map's index and bitmaps are
 * sound, no mapping points past the data device, and no mapped data block
 * is free in the data space map (discarding it would destroy data).
 * Free runs are reported only when all of that holds.
 */
#ifndef THINMETA_TRIM_H
#define THINMETA_TRIM_H

#include <stdint.h>

#include "block.h"
#include "rmap.h"
#include "superblock.h"

/*
 * Check the metadata, then return the maximal runs of data blocks whose
 * count is 0 in the data space map, ascending, in *@free (malloc'd,
 * *@nr_free long).  @sb receives the live superblock.
 */
int tm_free_data_ranges(struct tm_bm *bm, struct tm_superblock *sb, struct tm_range **free,
			uint64_t *nr_free, struct tm_error *e);

#endif
