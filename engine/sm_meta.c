/*
 * sm_meta.c - the metadata space map, which allocates its own blocks:
 * count changes made while it is itself changing a bitmap or its overflow
 * tree are queued and applied when the outer change ends (Linux 6.1
 * dm-space-map-metadata.c).  sm_write.h has the contract.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sm_common.h"
#include "thinmeta/sm_write.h"

#define MAX_RECURSIVE_ALLOCATIONS 1024u

enum bop_type { BOP_INC, BOP_DEC };

struct bop {
	enum bop_type type;
	uint64_t b, e;
};

struct tm_msm {
	struct tm_tm *tm;
	struct tm_ll ll, old_ll;
	uint64_t begin;
	unsigned recursion_count;
	uint64_t allocated_this_transaction;
	int bootstrap;
	unsigned brb_begin, brb_end;
	struct bop bops[MAX_RECURSIVE_ALLOCATIONS + 1];
};

/* ------------------------------------------------------------------ */
/* The queue of deferred count changes (a ring buffer) */

static unsigned brb_next(unsigned i)
{
	return i + 1 >= MAX_RECURSIVE_ALLOCATIONS + 1 ? 0 : i + 1;
}

static int add_bop(struct tm_msm *sm, enum bop_type type, uint64_t b, uint64_t end,
		   struct tm_error *e)
{
	unsigned next = brb_next(sm->brb_end);

	if (next == sm->brb_begin)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, b,
			       "metadata space map: too many recursive allocations");
	sm->bops[sm->brb_end] = (struct bop){ type, b, end };
	sm->brb_end = next;
	return 0;
}

static int commit_bop(struct tm_msm *sm, const struct bop *op, struct tm_error *e)
{
	int64_t nr;

	if (op->type == BOP_INC)
		return ll_inc(&sm->ll, op->b, op->e, &nr, e);
	return ll_dec(&sm->ll, op->b, op->e, &nr, e);
}

static int apply_bops(struct tm_msm *sm, struct tm_error *e)
{
	while (sm->brb_begin != sm->brb_end) {
		struct bop op = sm->bops[sm->brb_begin];
		int r = commit_bop(sm, &op, e);
		if (r)
			return r;
		sm->brb_begin = brb_next(sm->brb_begin);
	}
	return 0;
}

static void in(struct tm_msm *sm)
{
	sm->recursion_count++;
}

static int out(struct tm_msm *sm, struct tm_error *e)
{
	int r = 0;

	if (!sm->recursion_count)
		return tm_fail(e, -EINVAL, TM_RULE_ARG, TM_NO_BLOCK,
			       "internal error: metadata space map lost track of recursion");
	if (sm->recursion_count == 1)
		r = apply_bops(sm, e);
	sm->recursion_count--;
	return r;
}

static int recursing(const struct tm_msm *sm)
{
	return sm->recursion_count != 0;
}

/* How queued changes affect @b (the kernel's arithmetic, wrapping). */
static uint32_t adjustment(const struct tm_msm *sm, uint64_t b)
{
	uint32_t adj = 0;

	for (unsigned i = sm->brb_begin; i != sm->brb_end; i = brb_next(i)) {
		const struct bop *op = &sm->bops[i];
		if (b < op->b || b >= op->e)
			continue;
		if (op->type == BOP_INC)
			adj++;
		else
			adj--;
	}
	return adj;
}

/* ------------------------------------------------------------------ */

uint64_t tm_msm_nr_blocks(const struct tm_msm *sm)
{
	return sm->ll.nr_blocks;
}

uint64_t tm_msm_nr_free(const struct tm_msm *sm)
{
	if (sm->bootstrap)
		return sm->ll.nr_blocks - sm->begin;
	return sm->old_ll.nr_blocks - sm->old_ll.nr_allocated -
	       sm->allocated_this_transaction;
}

int tm_msm_get_count(struct tm_msm *sm, uint64_t b, uint32_t *count, struct tm_error *e)
{
	int r;

	if (sm->bootstrap) {
		*count = b < sm->begin;
		return 0;
	}
	r = ll_lookup(&sm->ll, b, count, e);
	if (r)
		return r;
	*count += adjustment(sm, b);
	return 0;
}

int tm_msm_count_is_more_than_one(struct tm_msm *sm, uint64_t b, int *result,
				  struct tm_error *e)
{
	uint32_t adj, rc;
	int r;

	if (sm->bootstrap) {
		*result = 0;
		return 0;
	}
	adj = adjustment(sm, b);
	if ((int32_t)adj > 1) {
		*result = 1;
		return 0;
	}
	r = ll_lookup_bitmap(&sm->ll, b, &rc, e);
	if (r)
		return r;
	*result = rc == 3 ? 1 : (uint32_t)(rc + adj) > 1;
	return 0;
}

static int change(struct tm_msm *sm, enum bop_type type, uint64_t b, uint64_t end,
		  struct tm_error *e)
{
	int64_t nr;
	int r, r2;

	if (sm->bootstrap || recursing(sm))
		return add_bop(sm, type, b, end, e);
	in(sm);
	r = type == BOP_INC ? ll_inc(&sm->ll, b, end, &nr, e) : ll_dec(&sm->ll, b, end, &nr, e);
	r2 = out(sm, e);
	return r ? r : r2;
}

int tm_msm_inc(struct tm_msm *sm, uint64_t b, uint64_t end, struct tm_error *e)
{
	return change(sm, BOP_INC, b, end, e);
}

int tm_msm_dec(struct tm_msm *sm, uint64_t b, uint64_t end, struct tm_error *e)
{
	return change(sm, BOP_DEC, b, end, e);
}

static int no_space(struct tm_msm *sm, struct tm_error *e)
{
	return tm_fail(e, -ENOSPC, TM_RULE_TOO_SMALL, TM_NO_BLOCK,
		       "out of metadata space: no free block among the %llu blocks of the metadata device",
		       (unsigned long long)sm->ll.nr_blocks);
}

int tm_msm_new_block(struct tm_msm *sm, uint64_t *b, struct tm_error *e)
{
	int64_t nr;
	int r, r2 = 0;

	if (sm->bootstrap) {
		if (sm->begin == sm->ll.nr_blocks)
			return no_space(sm, e);
		*b = sm->begin++;
		return 0;
	}
	/* free in both the current state and the last commit */
	r = ll_find_common_free(&sm->old_ll, &sm->ll, sm->begin, b, e);
	if (r == -ENOSPC)
		/* nothing after the cursor: look before it */
		r = ll_find_common_free(&sm->old_ll, &sm->ll, 0, b, e);
	if (r == -ENOSPC)
		return no_space(sm, e);
	if (r)
		return r;
	sm->begin = *b + 1;
	if (recursing(sm)) {
		r = add_bop(sm, BOP_INC, *b, *b + 1, e);
	} else {
		in(sm);
		r = ll_inc(&sm->ll, *b, *b + 1, &nr, e);
		r2 = out(sm, e);
	}
	if (!r)
		sm->allocated_this_transaction++;
	return r ? r : r2;
}

int tm_msm_commit(struct tm_msm *sm, struct tm_error *e)
{
	int r = ll_commit(&sm->ll, e);

	if (r)
		return r;
	sm->old_ll = sm->ll;
	sm->allocated_this_transaction = 0;
	return 0;
}

void tm_msm_root(const struct tm_msm *sm, struct tm_sm_root *root)
{
	ll_root(&sm->ll, root);
}

/* ------------------------------------------------------------------ */

static struct tm_msm *msm_alloc(struct tm_tm *tm)
{
	struct tm_msm *sm = calloc(1, sizeof(*sm));

	if (sm)
		sm->tm = tm;
	return sm;
}

void tm_msm_destroy(struct tm_msm *sm)
{
	free(sm);
}

int tm_msm_create(struct tm_tm *tm, uint64_t nr_blocks, uint64_t superblock,
		  struct tm_msm **out, struct tm_error *e)
{
	struct tm_msm *sm = msm_alloc(tm);
	int r;

	*out = NULL;
	if (!sm)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	sm->begin = superblock + 1;
	sm->bootstrap = 1;
	tm_tm_set_sm(tm, sm);

	r = ll_new_metadata(&sm->ll, tm, e);
	if (!r) {
		if (nr_blocks > TM_MAX_METADATA_BLOCKS)
			nr_blocks = TM_MAX_METADATA_BLOCKS;
		r = ll_extend(&sm->ll, nr_blocks, e);
	}
	sm->bootstrap = 0;
	/* count the blocks the new structures were built from */
	if (!r)
		r = add_bop(sm, BOP_INC, superblock, sm->begin, e);
	if (!r)
		r = apply_bops(sm, e);
	if (!r)
		r = tm_msm_commit(sm, e);
	if (r) {
		tm_tm_set_sm(tm, NULL);
		free(sm);
		return r;
	}
	*out = sm;
	return 0;
}

int tm_msm_open(struct tm_tm *tm, const struct tm_sm_root *root, struct tm_msm **out,
		struct tm_error *e)
{
	struct tm_msm *sm = msm_alloc(tm);
	int r;

	*out = NULL;
	if (!sm)
		return tm_fail(e, -ENOMEM, TM_RULE_NOMEM, TM_NO_BLOCK, "out of memory");
	r = ll_open_metadata(&sm->ll, tm, root, e);
	if (r) {
		free(sm);
		return r;
	}
	sm->old_ll = sm->ll;
	tm_tm_set_sm(tm, sm);
	*out = sm;
	return 0;
}

int tm_msm_extend(struct tm_msm *sm, uint64_t extra, struct tm_error *e)
{
	uint64_t old_len = sm->ll.nr_blocks;
	int r;

	/* every block is allocated in the new area, counts are queued */
	sm->begin = old_len;
	sm->bootstrap = 1;
	r = ll_extend(&sm->ll, extra, e);
	/* increment then commit until the commit allocates nothing more */
	while (!r) {
		r = add_bop(sm, BOP_INC, old_len, sm->begin, e);
		if (r)
			break;
		old_len = sm->begin;
		r = apply_bops(sm, e);
		if (!r)
			r = ll_commit(&sm->ll, e);
		if (!r && old_len == sm->begin)
			break;
	}
	sm->bootstrap = 0;
	return r;
}
