/*
 * sm_common.h - the low level of both writable space maps (internal to the
 * engine): bitmaps, the overflow ref-count tree, and the index (the
 * metadata space map's in-memory index block, or the data space map's
 * index btree behind a 64-entry cache), as Linux 6.1 dm-space-map-common.c
 * keeps them.  A struct tm_ll is a plain value: copying it (the view at
 * the last commit) copies the whole index of a metadata space map.
 */
#ifndef THINMETA_SM_COMMON_H
#define THINMETA_SM_COMMON_H

#include <stdint.h>

#include "thinmeta/btree_write.h"
#include "thinmeta/format.h"
#include "thinmeta/space_map.h"
#include "thinmeta/superblock.h"
#include "thinmeta/transaction.h"

#define LL_IE_CACHE_SIZE 64u

enum ll_kind { LL_METADATA, LL_DISK };

struct ll_ie_cache {
	int valid, dirty;
	uint64_t index;
	struct tm_index_entry ie;
};

struct tm_ll {
	struct tm_tm *tm;
	enum ll_kind kind;
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t bitmap_root;		/* index block, or index btree root */
	uint64_t ref_count_root;
	int bitmap_index_changed;
	struct tm_btree_info bitmap_info;	/* index btree (value 16) */
	struct tm_btree_info ref_count_info;	/* overflow tree (value 4) */
	uint32_t mi_padding;
	struct tm_index_entry mi[TM_META_INDEX_ENTRIES];
	struct ll_ie_cache iec[LL_IE_CACHE_SIZE];
};

int ll_new_metadata(struct tm_ll *ll, struct tm_tm *tm, struct tm_error *e);
int ll_open_metadata(struct tm_ll *ll, struct tm_tm *tm, const struct tm_sm_root *root,
		     struct tm_error *e);
int ll_new_disk(struct tm_ll *ll, struct tm_tm *tm, struct tm_error *e);
int ll_open_disk(struct tm_ll *ll, struct tm_tm *tm, const struct tm_sm_root *root,
		 struct tm_error *e);

int ll_extend(struct tm_ll *ll, uint64_t extra, struct tm_error *e);
int ll_lookup_bitmap(struct tm_ll *ll, uint64_t b, uint32_t *v, struct tm_error *e);
int ll_lookup(struct tm_ll *ll, uint64_t b, uint32_t *count, struct tm_error *e);
int ll_find_free(struct tm_ll *ll, uint64_t begin, uint64_t end, uint64_t *result,
		 struct tm_error *e);
int ll_find_common_free(struct tm_ll *old_ll, struct tm_ll *new_ll, uint64_t begin,
			uint64_t *b, struct tm_error *e);
/* *nr_allocations: how many blocks went from 0 to 1 (minus 1 to 0). */
int ll_inc(struct tm_ll *ll, uint64_t b, uint64_t end, int64_t *nr_allocations,
	   struct tm_error *e);
int ll_dec(struct tm_ll *ll, uint64_t b, uint64_t end, int64_t *nr_allocations,
	   struct tm_error *e);
int ll_commit(struct tm_ll *ll, struct tm_error *e);
void ll_root(const struct tm_ll *ll, struct tm_sm_root *root);

#endif
