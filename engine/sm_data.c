/*
 * sm_data.c - the data space map: reference counts of data blocks, with
 * the kernel's allocator (Linux 6.1 dm-space-map-disk.c).  sm_write.h has
 * the contract.
 */
#include <errno.h>
#include <stdlib.h>

#include "sm_common.h"
#include "thinmeta/sm_write.h"

struct tm_dsm {
	struct tm_tm *tm;
	struct tm_ll ll, old_ll;
	uint64_t begin;
	uint64_t allocated_this_transaction;	/* wraps, like the kernel's */
};

uint64_t tm_dsm_nr_blocks(const struct tm_dsm *sm)
{
	return sm->old_ll.nr_blocks;
}

uint64_t tm_dsm_nr_blocks_now(const struct tm_dsm *sm)
{
	return sm->ll.nr_blocks;
}

uint64_t tm_dsm_nr_free(const struct tm_dsm *sm)
{
	return sm->old_ll.nr_blocks - sm->old_ll.nr_allocated - sm->allocated_this_transaction;
}

uint64_t tm_dsm_cursor(const struct tm_dsm *sm)
{
	return sm->begin;
}

int tm_dsm_get_count(struct tm_dsm *sm, uint64_t b, uint32_t *count, struct tm_error *e)
{
	return ll_lookup(&sm->ll, b, count, e);
}

int tm_dsm_inc(struct tm_dsm *sm, uint64_t b, uint64_t end, struct tm_error *e)
{
	int64_t nr;
	int r = ll_inc(&sm->ll, b, end, &nr, e);

	if (!r)
		sm->allocated_this_transaction += (uint64_t)nr;
	return r;
}

int tm_dsm_dec(struct tm_dsm *sm, uint64_t b, uint64_t end, struct tm_error *e)
{
	int64_t nr;
	int r = ll_dec(&sm->ll, b, end, &nr, e);

	if (!r)
		sm->allocated_this_transaction += (uint64_t)nr;
	return r;
}

int tm_dsm_new_block(struct tm_dsm *sm, uint64_t *b, struct tm_error *e)
{
	int64_t nr;
	int r;

	/* free in both the current state and the last commit */
	r = ll_find_common_free(&sm->old_ll, &sm->ll, sm->begin, b, e);
	if (r == -ENOSPC)
		/* nothing after the cursor: look before it */
		r = ll_find_common_free(&sm->old_ll, &sm->ll, 0, b, e);
	if (r == -ENOSPC)
		return tm_fail(e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
			       "out of data space: none of the %llu data blocks is free",
			       (unsigned long long)sm->ll.nr_blocks);
	if (r)
		return r;
	sm->begin = *b + 1;
	r = ll_inc(&sm->ll, *b, *b + 1, &nr, e);
	if (!r)
		sm->allocated_this_transaction += (uint64_t)nr;
	return r;
}

int tm_dsm_commit(struct tm_dsm *sm, struct tm_error *e)
{
	int r = ll_commit(&sm->ll, e);

	if (r)
		return r;
	sm->old_ll = sm->ll;
	sm->allocated_this_transaction = 0;
	return 0;
}

int tm_dsm_extend(struct tm_dsm *sm, uint64_t extra, struct tm_error *e)
{
	return ll_extend(&sm->ll, extra, e);
}

void tm_dsm_root(const struct tm_dsm *sm, struct tm_sm_root *root)
{
	ll_root(&sm->ll, root);
}

void tm_dsm_destroy(struct tm_dsm *sm)
{
	free(sm);
}

int tm_dsm_create(struct tm_tm *tm, uint64_t nr_blocks, struct tm_dsm **out,
		  struct tm_error *e)
{
	struct tm_dsm *sm = calloc(1, sizeof(*sm));
	int r;

	*out = NULL;
	if (!sm)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	sm->tm = tm;
	r = ll_new_disk(&sm->ll, tm, e);
	if (!r)
		r = ll_extend(&sm->ll, nr_blocks, e);
	if (!r)
		r = tm_dsm_commit(sm, e);
	if (r) {
		free(sm);
		return r;
	}
	*out = sm;
	return 0;
}

int tm_dsm_open(struct tm_tm *tm, const struct tm_sm_root *root, struct tm_dsm **out,
		struct tm_error *e)
{
	struct tm_dsm *sm = calloc(1, sizeof(*sm));
	int r;

	*out = NULL;
	if (!sm)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	sm->tm = tm;
	r = ll_open_disk(&sm->ll, tm, root, e);
	if (!r)
		r = tm_dsm_commit(sm, e);
	if (r) {
		free(sm);
		return r;
	}
	*out = sm;
	return 0;
}
