/*
 * bstream.c - a list of blocks read ahead in block order (see bstream.h).
 *
 * Window k covers list positions [k * BS_WINDOW, (k + 1) * BS_WINDOW) and
 * lives in slot k % nslots.  Filling a window: pair each position with
 * its block, sort the pairs by block, and read runs of them as spans - one
 * request per span - into the slot's buffer; a span grows while the next
 * wanted block is at most GAP_MAX blocks past the last one, the span stays
 * within SPAN_MAX blocks, and the gap blocks read so far fit the buffer's
 * spare room.  A failed span is read again block by block, so that only
 * the blocks that really fail are reported.
 *
 * With reader threads: R of them (1, or up to MAX_READERS when the device
 * serves several reads at once: dev->parallel_reads), reader r filling
 * windows r, r + R, r + 2R, ..., each no more than nslots = R + 2 windows
 * ahead of the consumer, so that up to R requests are in flight; the
 * consumer waits for the window it asks for and releases the ones before
 * it.  One mutex and one condition variable guard a counter (released) and
 * each slot's ready mark (the window it holds filled); a slot's contents
 * belong to its reader until the window is marked ready and to the
 * consumer until it is released, and window k + nslots is not begun
 * before window k is marked ready (the consumer may skip a window that is
 * still being filled).  With one reader the device sees its
 * calls in a fixed order (fault injection counts them).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bstream.h"
#include "thinmeta/block.h"
#include "thinmeta/crc32c.h"
#include "thinmeta/format.h"

#define MAX_READERS	3u
#define NR_SLOTS	(MAX_READERS + 2)	/* at most; R + 2 used */
#define SLOT_BLOCKS	(2 * BS_WINDOW)		/* room for gap blocks too */
#define SPAN_MAX	256u				/* blocks per request: 1 MiB */
#define GAP_MAX		16u				/* read through gaps this small */
#define NO_OFF		UINT32_MAX
#define HINT_AHEAD	2u		/* windows hinted ahead of the one read */

struct pair {
	uint64_t block;
	uint32_t pos;		/* position within the window */
};

struct slot {
	uint8_t *data;		/* SLOT_BLOCKS blocks, page aligned */
	uint32_t off[BS_WINDOW];	/* block offset in data, or NO_OFF */
	uint32_t crc[BS_WINDOW];
	int err[BS_WINDOW];
	struct pair sorted[BS_WINDOW];
	size_t ready;		/* the window filled here, or SIZE_MAX */
};

struct reader {
	struct bstream *s;
	unsigned idx;
	pthread_t thread;
};

struct bstream {
	struct tm_dev *dev;
	const uint64_t *blocks;
	size_t n, nr_windows;
	struct slot *slots[NR_SLOTS];
	unsigned nslots;
	size_t cur;		/* the window the consumer holds, or SIZE_MAX */

	unsigned threaded;	/* reader threads running: 0, 1 .. MAX_READERS */
	struct reader readers[MAX_READERS];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t released;	/* windows [0, released) are no longer used */
	int stop;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	if (x->block != y->block)
		return x->block < y->block ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The checksum registers (tm_block_crc) of the @n blocks at @off[] of the
 * slot, three at a time. */
static void crc_blocks(struct slot *sl, const uint32_t *pos, size_t n)
{
	size_t k = 0;

	for (; k + 3 <= n; k += 3) {
		uint32_t out[3];
		const uint8_t *b[3];
		for (int j = 0; j < 3; j++)
			b[j] = sl->data + (size_t)sl->off[pos[k + j]] * TM_BLOCK_SIZE + 4;
		tm_crc32c_x3(0xffffffffu, b[0], b[1], b[2], TM_BLOCK_SIZE - 4, out);
		for (int j = 0; j < 3; j++)
			sl->crc[pos[k + j]] = out[j];
	}
	for (; k < n; k++)
		sl->crc[pos[k]] = tm_block_crc(sl->data + (size_t)sl->off[pos[k]] * TM_BLOCK_SIZE);
}

/* Read blocks [first, first + count) to @buf; on failure block by block. */
static void read_span(struct tm_dev *dev, struct slot *sl, const struct pair *p,
		      size_t np, uint64_t first, unsigned count, uint32_t used)
{
	uint8_t *buf = sl->data + (size_t)used * TM_BLOCK_SIZE;
	int r = tm_dev_read(dev, first, count, buf);
	uint32_t todo[BS_WINDOW];	/* positions read, whose crc is wanted */
	size_t ntodo = 0;

	for (size_t k = 0; k < np; k++) {
		uint32_t rel = (uint32_t)(p[k].block - first);
		int dup = k && p[k].block == p[k - 1].block;
		int rk = r;
		if (r && count > 1) {
			/* a duplicate of the previous block shares its fate */
			if (dup)
				rk = sl->err[p[k - 1].pos];
			else
				rk = tm_dev_read(dev, p[k].block, 1,
						 buf + (size_t)rel * TM_BLOCK_SIZE);
		}
		sl->err[p[k].pos] = rk;
		if (rk) {
			sl->off[p[k].pos] = NO_OFF;
			continue;
		}
		sl->off[p[k].pos] = used + rel;
		if (!dup)
			todo[ntodo++] = p[k].pos;
	}
	crc_blocks(sl, todo, ntodo);
	for (size_t k = 1; k < np; k++)		/* duplicates: the same crc */
		if (p[k].block == p[k - 1].block && !sl->err[p[k].pos])
			sl->crc[p[k].pos] = sl->crc[p[k - 1].pos];
}

static struct slot *slot_of(const struct bstream *s, size_t k)
{
	return s->slots[s->threaded ? k % s->nslots : 0];
}

/*
 * Tell the device that window @k's blocks will be read soon (tm_dev_hint:
 * readahead on a regular file), runs of near blocks in list order as one
 * hint, so that many reads are in flight while earlier windows are read,
 * checksummed and used.  Reads nothing itself: the reads stay as they were.
 */
static void hint_window(struct bstream *s, size_t k)
{
	size_t first = k * BS_WINDOW;
	size_t end = s->n - first < BS_WINDOW ? s->n : first + BS_WINDOW;
	uint64_t start = 0, last = 0;
	int have = 0;

	for (size_t i = first; i < end; i++) {
		uint64_t b = s->blocks[i];
		if (b >= s->dev->nr_blocks)
			continue;
		if (have && b >= start && b <= last + 1 + GAP_MAX && b - start < SPAN_MAX) {
			if (b > last)
				last = b;
			continue;
		}
		if (have)
			tm_dev_hint(s->dev, start, (unsigned)(last - start + 1));
		start = last = b;
		have = 1;
	}
	if (have)
		tm_dev_hint(s->dev, start, (unsigned)(last - start + 1));
}

static void fill(struct bstream *s, size_t k)
{
	struct slot *sl = slot_of(s, k);
	size_t first = k * BS_WINDOW;
	size_t n = s->n - first < BS_WINDOW ? s->n - first : BS_WINDOW;
	uint64_t nr_blocks = s->dev->nr_blocks;
	uint32_t used = 0, spare = SLOT_BLOCKS - (uint32_t)n;
	int sorted = 1;

	if (s->dev->ops->hint) {
		/* window 0 and the next ones at the start, then one more each time */
		for (size_t h = k ? k + HINT_AHEAD : 0; h <= k + HINT_AHEAD && h < s->nr_windows; h++)
			hint_window(s, h);
	}
	for (size_t i = 0; i < n; i++) {
		sl->sorted[i].block = s->blocks[first + i];
		sl->sorted[i].pos = (uint32_t)i;
		if (i && sl->sorted[i].block < sl->sorted[i - 1].block)
			sorted = 0;
	}
	if (!sorted)
		qsort(sl->sorted, n, sizeof(sl->sorted[0]), cmp_pair);

	for (size_t i = 0; i < n;) {
		const struct pair *p = &sl->sorted[i];
		uint64_t start = p->block, last = start;
		size_t j = i + 1;

		if (start >= nr_blocks) {
			sl->err[p->pos] = -ERANGE;
			sl->off[p->pos] = NO_OFF;
			i++;
			continue;
		}
		while (j < n) {
			uint64_t b = sl->sorted[j].block;
			if (b == last) {
				j++;
				continue;
			}
			if (b >= nr_blocks || b - start >= SPAN_MAX || b - last - 1 > GAP_MAX ||
			    b - last - 1 > spare)
				break;
			spare -= (uint32_t)(b - last - 1);
			last = b;
			j++;
		}
		read_span(s->dev, sl, p, j - i, start, (unsigned)(last - start + 1), used);
		used += (uint32_t)(last - start + 1);
		i = j;
	}
}

static void *reader(void *arg)
{
	struct reader *rd = arg;
	struct bstream *s = rd->s;

	for (size_t k = rd->idx; k < s->nr_windows; k += s->threaded) {
		pthread_mutex_lock(&s->lock);
		/* the slot is free: its last window released, and filled (a
		 * window the consumer skipped may still be being filled) */
		while (!s->stop && (k >= s->released + s->nslots ||
				    (k >= s->nslots && slot_of(s, k)->ready != k - s->nslots)))
			pthread_cond_wait(&s->cond, &s->lock);
		int stop = s->stop;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		fill(s, k);
		pthread_mutex_lock(&s->lock);
		slot_of(s, k)->ready = k;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/* Stop and join the first @n readers (the lock and cond exist). */
static void stop_readers(struct bstream *s, unsigned n)
{
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(s->readers[i].thread, NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

/* Start @nr readers; none (s->threaded == 0) if one cannot start. */
static void start_readers(struct bstream *s, unsigned nr)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->threaded = nr;	/* before the readers look at it */
	for (unsigned i = 0; i < nr; i++) {
		s->readers[i].s = s;
		s->readers[i].idx = i;
		if (pthread_create(&s->readers[i].thread, NULL, reader, &s->readers[i])) {
			stop_readers(s, i);
			s->threaded = 0;
			s->stop = 0;
			return;
		}
	}
}

int bs_open(struct tm_dev *dev, const uint64_t *blocks, size_t n, struct bstream **out)
{
	struct bstream *s = calloc(1, sizeof(*s));
	unsigned nr = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->dev = dev;
	s->blocks = blocks;
	s->n = n;
	s->nr_windows = (n + BS_WINDOW - 1) / BS_WINDOW;
	s->cur = SIZE_MAX;
	if (s->nr_windows > 1) {
		nr = dev->parallel_reads > 1 ? dev->parallel_reads : 1;
		if (nr > MAX_READERS)
			nr = MAX_READERS;
		if (nr > s->nr_windows)
			nr = (unsigned)s->nr_windows;
	}
	s->nslots = nr ? nr + 2 : 1;
	for (unsigned i = 0; i < s->nslots; i++) {
		s->slots[i] = malloc(sizeof(struct slot));
		if (!s->slots[i] ||
		    posix_memalign((void **)&s->slots[i]->data, TM_BLOCK_SIZE,
				   (size_t)SLOT_BLOCKS * TM_BLOCK_SIZE)) {
			if (s->slots[i])
				s->slots[i]->data = NULL;
			bs_close(s);
			return -ENOMEM;
		}
		s->slots[i]->ready = SIZE_MAX;
	}
	if (nr)
		start_readers(s, nr);
	*out = s;
	return 0;
}

static void want_window(struct bstream *s, size_t k)
{
	if (!s->threaded) {
		fill(s, k);
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->released = k;		/* every window before k is done with */
	pthread_cond_broadcast(&s->cond);
	while (slot_of(s, k)->ready != k)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void bs_get(struct bstream *s, size_t i, struct bs_block *out)
{
	size_t k = i / BS_WINDOW;
	const struct slot *sl;
	size_t pos = i % BS_WINDOW;

	if (i >= s->n) {
		out->data = NULL;
		out->crc = 0;
		out->err = -EINVAL;
		return;
	}
	if (k != s->cur) {
		want_window(s, k);
		s->cur = k;
	}
	sl = slot_of(s, k);
	out->err = sl->err[pos];
	if (sl->off[pos] == NO_OFF) {
		out->data = NULL;
		out->crc = 0;
		if (!out->err)
			out->err = -EIO;
		return;
	}
	out->data = sl->data + (size_t)sl->off[pos] * TM_BLOCK_SIZE;
	out->crc = sl->crc[pos];
}

void bs_close(struct bstream *s)
{
	if (!s)
		return;
	if (s->threaded)
		stop_readers(s, s->threaded);
	for (unsigned i = 0; i < NR_SLOTS; i++) {
		if (s->slots[i])
			free(s->slots[i]->data);
		free(s->slots[i]);
	}
	free(s);
}

int bs_validate(const struct bs_block *blk, struct tm_dev *dev, uint64_t b,
		const struct tm_validator *v, struct tm_error *e)
{
	if (b >= dev->nr_blocks)
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, b,
			       "block %llu is past the end of the metadata device (%llu blocks)",
			       (unsigned long long)b, (unsigned long long)dev->nr_blocks);
	if (!blk->data)
		return tm_fail(e, blk->err, TM_RULE_IO, b, "block %llu: read failed: %s",
			       (unsigned long long)b, strerror(-blk->err));
	return tm_block_validate_crc(v, blk->data, b, blk->crc, e);
}
