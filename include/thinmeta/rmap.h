/*
 * rmap.h - the reverse map for thin_rmap: which thin blocks of which
 * devices map the data blocks of given regions, as thin-provisioning-tools
 * 1.1.0 reports it.
 *
 * The devices' mapping trees are walked in ascending device id; a tree node
 * already walked for an earlier device is not walked again (1.1.0's rule),
 * so a leaf shared by several devices is reported for the first of them
 * only.  Mappings whose data block lies in a region are gathered into runs
 * of consecutive thin and data blocks of one device; the runs are sorted by
 * data begin, data end, device id (taken as 32 bits, as 1.1.0 does) and
 * thin begin.  Nodes are checked as the other 1.1.0 walkers check them
 * (see delta.h).
 */
#ifndef THINMETA_RMAP_H
#define THINMETA_RMAP_H

#include <stddef.h>
#include <stdint.h>

#include "block.h"
#include "metadata.h"

/* Data blocks [begin, end). */
struct tm_range {
	uint64_t begin, end;
};

struct tm_rmap_run {
	uint64_t data_begin, data_end;	/* [data_begin, data_end) */
	uint32_t dev_id;
	uint64_t thin_begin;		/* thin blocks [thin_begin, +len) */
};

/*
 * The runs of view @v's devices that map into @regions (any order, may
 * overlap; each begin < end).  *@runs is malloc'd, *@nr_runs long.
 */
int tm_rmap(struct tm_bm *bm, const struct tm_view *v, const struct tm_range *regions,
	    size_t nr_regions, struct tm_rmap_run **runs, uint64_t *nr_runs,
	    struct tm_error *e);

#endif
