/*
 * xml_par.c - xml_read() on several cores (xml_read.h).
 *
 * A regular file is cut into pieces of about piece_bytes, each ending just
 * before a line that starts (after blanks) with <device, <def,
 * <range_mapping or <single_mapping.  Each piece starts in the context its
 * first line implies: directly inside <superblock> before a <device or
 * <def line; inside the <device> or <def> whose opening line came last
 * before a mapping line.  Worker threads parse whole pieces: the lines
 * written exactly as thin_dump writes them with xml_lines(), without
 * expat, and from the first other line on with their own expat parser
 * (xml_piece_*) put in that line's context.  A worker turns the events
 * into compact records in chunks; the calling thread feeds the sink from
 * the chunks in document order while later pieces are still being parsed.
 * The prolog and <superblock> line are the first piece, read by expat
 * from the start as xml_read() reads them.
 *
 * A cut is a guess made from raw bytes (a comment or a CDATA section could
 * hold such a line).  It is confirmed when the piece before it ends in
 * exactly the context the next one assumed, and a synthetic suffix closing
 * that context is well-formed (after canonical lines the context is known
 * exactly: no suffix needed).  Any doubt - a piece that fails, that does
 * not end as assumed, an XML declaration naming another encoding, a sink
 * that refuses an event - ends the parallel run: xml_read() parses the
 * file again from its start, skips the N events already delivered (the
 * same ones: every piece before was confirmed) and goes on from there.  So
 * the events, and every error message with its line and column, are
 * xml_read()'s own; only failures and odd documents pay for a second parse.
 *
 * Memory: per worker, a piece's bytes (piece_bytes and a little) and at
 * most BUDGET_BYTES of records not yet consumed (a worker ahead of the
 * consumer waits; the one on the piece being consumed never does).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xml_read.h"

#define MAX_THREADS 4
#define CHUNK_BYTES (64u << 10)		/* records are published in these */
#define SLICE_BYTES (256u << 10)	/* bytes given to expat at a time */
#define BUDGET_BYTES (4u << 20)		/* records a worker may have waiting */
#define MIN_PARALLEL_BYTES (256u << 10)	/* smaller inputs: xml_read() */
#define MIN_PIECE (256u << 10)
#define MAX_PIECE (2u << 20)
#define LOOKAHEAD 64			/* bytes after a newline that decide a cut */
#define SLACK (64u << 10)		/* read past a piece's size to find its cut */

/* ------------------------------------------------------------------ */
/* Records: a header and a payload, 8-byte aligned. */

enum rec_type {
	R_SB_BEGIN = 1, R_SB_END, R_DEF_BEGIN, R_DEF_END,
	R_DEV_BEGIN, R_DEV_END, R_REF, R_RUN,
};

struct rec {
	uint32_t type;
	uint32_t len;		/* payload bytes */
};

static size_t rec_size(size_t len)
{
	return sizeof(struct rec) + ((len + 7) & ~(size_t)7);
}

struct chunk {
	struct chunk *next;
	size_t used, cap;	/* bytes of data */
	uint64_t end_off;	/* input parsed when it was published */
	unsigned owner;		/* the worker that filled it */
	uint64_t data[];
};

struct piece {
	size_t index;
	uint64_t start, end;	/* input bytes [start, end); end of the last: EOF */
	enum xml_ctx ctx;	/* the context it starts in */
	enum xml_ctx next_ctx;	/* the one the next piece starts in */
	int last;
	struct chunk *head, *tail;	/* published, not yet consumed */
	int done;		/* everything published */
	int clean;		/* ... and it ended as the next piece assumed */
};

struct par;

struct worker {
	struct par *par;
	pthread_t thread;
	int started;
	struct xml_piece *xp;
	struct tm_ir_sink rec_sink;
	struct piece *cur;
	struct chunk *chunk;		/* being filled */
	uint64_t fed;			/* input offset parsed so far */
	char *buf;			/* the piece's bytes */
	size_t buf_cap;
	size_t outstanding;		/* bytes of chunks published, not consumed */
};

struct par {
	int fd;
	uint64_t piece_bytes;
	unsigned nthreads;

	/* cutting: the next piece's start, taken in turn */
	pthread_mutex_t cut_lock;
	uint64_t next_start;
	enum xml_ctx next_ctx;
	int cut_done;

	/* the rest, under lock */
	pthread_mutex_t lock;
	pthread_cond_t more;		/* for the consumer: a chunk, a piece */
	pthread_cond_t room;		/* for workers: budget, front, abort */
	struct piece **pieces;
	size_t npieces, pcap;
	size_t front;			/* the piece being consumed */
	int consumer_waiting, workers_waiting;
	int broken;			/* a worker could not go on */
	int abort;
	int fast;			/* canonical lines without expat */
	uint64_t fast_bytes;
	struct chunk *free_chunks;
	struct worker w[MAX_THREADS];
};

static int aborted(struct par *P)
{
	return __atomic_load_n(&P->abort, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Chunks */

static struct chunk *chunk_get(struct par *P, size_t need)
{
	size_t cap = need <= CHUNK_BYTES ? CHUNK_BYTES : need;
	struct chunk *c = NULL;

	if (cap == CHUNK_BYTES) {
		pthread_mutex_lock(&P->lock);
		if ((c = P->free_chunks))
			P->free_chunks = c->next;
		pthread_mutex_unlock(&P->lock);
	}
	if (!c) {
		if (!(c = malloc(sizeof(*c) + cap)))
			return NULL;
		c->cap = cap;
	}
	c->next = NULL;
	c->used = 0;
	return c;
}

/* Under lock. */
static void chunk_put(struct par *P, struct chunk *c)
{
	if (c->cap == CHUNK_BYTES) {
		c->next = P->free_chunks;
		P->free_chunks = c;
	} else {
		free(c);
	}
}

/* Hand the chunk being filled to the consumer; wait if too far ahead. */
static void publish(struct worker *w)
{
	struct par *P = w->par;
	struct chunk *c = w->chunk;
	struct piece *pc = w->cur;

	w->chunk = NULL;
	pthread_mutex_lock(&P->lock);
	if (c) {
		c->end_off = w->fed;
		c->owner = (unsigned)(w - P->w);
		if (pc->tail)
			pc->tail->next = c;
		else
			pc->head = c;
		pc->tail = c;
		w->outstanding += c->cap;
		if (P->consumer_waiting)
			pthread_cond_signal(&P->more);
	}
	while (!P->abort && w->outstanding > BUDGET_BYTES && pc->index != P->front) {
		P->workers_waiting++;
		pthread_cond_wait(&P->room, &P->lock);
		P->workers_waiting--;
	}
	pthread_mutex_unlock(&P->lock);
}

/* ------------------------------------------------------------------ */
/* The recording sink of a worker */

static int rec_put(struct worker *w, uint32_t type, const void *payload, size_t len)
{
	size_t need = rec_size(len);
	struct rec *h;

	if (aborted(w->par))
		return -ECANCELED;
	if (len > UINT32_MAX)
		return -E2BIG;
	if (w->chunk && w->chunk->used + need > w->chunk->cap)
		publish(w);
	if (!w->chunk && !(w->chunk = chunk_get(w->par, need)))
		return -ENOMEM;
	h = (struct rec *)((char *)w->chunk->data + w->chunk->used);
	h->type = type;
	h->len = (uint32_t)len;
	if (len)
		memcpy(h + 1, payload, len);
	w->chunk->used += need;
	return 0;
}

static int rec_sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	return rec_put(ctx, R_SB_BEGIN, sb, sizeof(*sb));
}

static int rec_sb_end(void *ctx)
{
	return rec_put(ctx, R_SB_END, NULL, 0);
}

static int rec_def_begin(void *ctx, const char *name)
{
	return rec_put(ctx, R_DEF_BEGIN, name, strlen(name) + 1);
}

static int rec_def_end(void *ctx)
{
	return rec_put(ctx, R_DEF_END, NULL, 0);
}

static int rec_dev_begin(void *ctx, const struct tm_ir_device *d)
{
	return rec_put(ctx, R_DEV_BEGIN, d, sizeof(*d));
}

static int rec_dev_end(void *ctx)
{
	return rec_put(ctx, R_DEV_END, NULL, 0);
}

static int rec_ref(void *ctx, const char *name)
{
	return rec_put(ctx, R_REF, name, strlen(name) + 1);
}

static int rec_run(void *ctx, const struct tm_ir_run *m)
{
	struct worker *w = ctx;
	struct rec *h;

	/* the common case, without the general path's checks */
	if (w->chunk && w->chunk->used + rec_size(sizeof(*m)) <= w->chunk->cap) {
		h = (struct rec *)((char *)w->chunk->data + w->chunk->used);
		h->type = R_RUN;
		h->len = sizeof(*m);
		memcpy(h + 1, m, sizeof(*m));
		w->chunk->used += rec_size(sizeof(*m));
		return 0;
	}
	return rec_put(w, R_RUN, m, sizeof(*m));
}

static void rec_sink_init(struct worker *w)
{
	struct tm_ir_sink *s = &w->rec_sink;

	s->ctx = w;
	s->superblock_begin = rec_sb_begin;
	s->superblock_end = rec_sb_end;
	s->def_begin = rec_def_begin;
	s->def_end = rec_def_end;
	s->device_begin = rec_dev_begin;
	s->device_end = rec_dev_end;
	s->ref = rec_ref;
	s->run = rec_run;
}

/* ------------------------------------------------------------------ */
/* Cutting */

enum line_kind { L_OTHER, L_DEVICE, L_DEF, L_MAPPING };

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int ends_name(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '>' || c == '/';
}

/* Is @name at @s (n bytes left), followed by the end of a name? */
static int name_at(const char *s, size_t n, const char *name)
{
	size_t len = strlen(name);

	return n > len && !memcmp(s, name, len) && ends_name(s[len]);
}

/*
 * What the line starting at @s (n bytes left) begins with, after blanks.
 * L_OTHER also when the bytes end too soon to tell.
 */
static enum line_kind line_kind(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && is_blank(s[i]))
		i++;
	if (i + 1 >= n || s[i] != '<')
		return L_OTHER;
	s += i + 1;
	n -= i + 1;
	if (name_at(s, n, "device"))
		return L_DEVICE;
	if (name_at(s, n, "def"))
		return L_DEF;
	if (name_at(s, n, "range_mapping") || name_at(s, n, "single_mapping"))
		return L_MAPPING;
	return L_OTHER;
}

/*
 * The context a mapping line at @at of the piece in @buf is in: that of
 * the last <device or <def line before it in the piece, else the piece's
 * own; XML_CTX_DOC when unknown.
 */
static enum xml_ctx section_before(const char *buf, size_t at, enum xml_ctx own)
{
	/*
	 * Mapping lines hold no 'v' and no 'f', "device" and "def" do: jump
	 * back from one such letter to the next, testing the lines they are on.
	 */
	const char *v = memrchr(buf, 'v', at), *f = memrchr(buf, 'f', at);

	while (v || f) {
		const char *p = !f || (v && v > f) ? v : f;
		const char *nl = memrchr(buf, '\n', (size_t)(p - buf));
		size_t ls = nl ? (size_t)(nl - buf) + 1 : 0;

		switch (line_kind(buf + ls, at - ls)) {
		case L_DEVICE:
			return XML_CTX_DEV;
		case L_DEF:
			return XML_CTX_DEF;
		default:
			break;
		}
		/* the rest of that line is done with */
		if (v && v >= buf + ls)
			v = memrchr(buf, 'v', ls);
		if (f && f >= buf + ls)
			f = memrchr(buf, 'f', ls);
	}
	return own == XML_CTX_DEV || own == XML_CTX_DEF ? own : XML_CTX_DOC;
}

/*
 * The first cut at or after @from in @buf[0, n): *@at and the context of
 * the piece after it.  0 if found, 1 if more bytes are needed to say, -1
 * if there is none (at EOF).
 */
static int find_cut(const char *buf, size_t n, size_t from, int eof, enum xml_ctx own,
		    size_t *at, enum xml_ctx *next)
{
	size_t i = from ? from - 1 : 0;

	for (;;) {
		const char *nl = i < n ? memchr(buf + i, '\n', n - i) : NULL;
		size_t s;

		if (!nl)
			return eof ? -1 : 1;
		s = (size_t)(nl - buf) + 1;
		if (!eof && n - s < LOOKAHEAD)
			return 1;
		i = s;
		switch (line_kind(buf + s, n - s)) {
		case L_DEVICE:
		case L_DEF:
			*at = s;
			*next = XML_CTX_SB;
			return 0;
		case L_MAPPING:
			*next = section_before(buf, s, own);
			if (*next != XML_CTX_DOC) {
				*at = s;
				return 0;
			}
			break;
		default:
			break;
		}
	}
}

/* Read @len bytes at @off into @buf; fewer only at EOF.  -errno on error. */
static ssize_t read_at(int fd, char *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int buf_reserve(struct worker *w, size_t len)
{
	char *p;

	if (w->buf_cap >= len)
		return 0;
	if (!(p = realloc(w->buf, len)))
		return -1;
	w->buf = p;
	w->buf_cap = len;
	return 0;
}

/*
 * Take the next piece: read its bytes into w->buf (*@have of them) and
 * decide where it ends.  NULL when there is none left or on failure
 * (P->broken set).  Under cut_lock.
 */
static struct piece *cut_next(struct worker *w, size_t *have, int *eof)
{
	struct par *P = w->par;
	/* the prolog goes to expat: the first piece ends at the first cut */
	size_t target = P->next_start ? (size_t)P->piece_bytes : 1;
	size_t slack = SLACK, want = target + slack, n = 0, at = 0;
	size_t limit = target * 4 > (1u << 20) ? target * 4 : (1u << 20);
	enum xml_ctx next = XML_CTX_DOC;
	struct piece *pc;
	int found = 1;

	if (P->cut_done)
		return NULL;
	if (!(pc = calloc(1, sizeof(*pc))))
		goto broken;
	pc->start = P->next_start;
	pc->ctx = P->next_ctx;
	*eof = 0;
	for (;;) {
		ssize_t got;

		if (buf_reserve(w, want))
			goto broken;
		got = read_at(P->fd, w->buf + n, want - n, pc->start + n);
		if (got < 0)
			goto broken;
		n += (size_t)got;
		*eof = n < want;
		found = find_cut(w->buf, n, target, *eof, pc->ctx, &at, &next);
		if (found != 1 || want >= limit)
			break;
		/* no cut yet, a long line: look further, ever faster */
		want += slack;
		slack *= 2;
	}
	*have = n;
	if (found == 0) {
		pc->end = pc->start + at;
		pc->next_ctx = next;
		P->next_start = pc->end;
		P->next_ctx = next;
	} else {
		pc->last = 1;
		P->cut_done = 1;
	}

	pthread_mutex_lock(&P->lock);
	if (P->npieces == P->pcap) {
		size_t ncap = P->pcap ? 2 * P->pcap : 64;
		struct piece **pp = realloc(P->pieces, ncap * sizeof(*pp));
		if (!pp) {
			pthread_mutex_unlock(&P->lock);
			goto broken;
		}
		P->pieces = pp;
		P->pcap = ncap;
	}
	pc->index = P->npieces;
	P->pieces[P->npieces++] = pc;
	if (P->consumer_waiting)
		pthread_cond_signal(&P->more);
	pthread_mutex_unlock(&P->lock);
	return pc;

broken:
	free(pc);
	P->cut_done = 1;
	pthread_mutex_lock(&P->lock);
	P->broken = 1;
	pthread_cond_signal(&P->more);
	pthread_mutex_unlock(&P->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Workers */

static int feed(struct worker *w, const char *buf, size_t len)
{
	for (size_t off = 0; off < len && !aborted(w->par);) {
		size_t n = len - off < SLICE_BYTES ? len - off : SLICE_BYTES;
		if (xml_piece_feed(w->xp, buf + off, n, 0))
			return -1;
		off += n;
		w->fed += n;
	}
	return aborted(w->par) ? -1 : 0;
}

/* The first bytes of a file that xml_read() would not read as UTF-8. */
static int foreign_start(const char *buf, size_t n)
{
	const unsigned char *u = (const unsigned char *)buf;

	if (n >= 2 && ((u[0] == 0xfe && u[1] == 0xff) || (u[0] == 0xff && u[1] == 0xfe)))
		return 1;
	for (size_t i = 0; i < n && i < 4; i++)
		if (!u[i])
			return 1;
	return 0;
}

/*
 * Parse piece @pc, whose first @have bytes are in w->buf: canonical lines
 * first, expat from the first other line on.  0 if it ended as the next
 * piece assumed.
 */
static int parse_piece(struct worker *w, struct piece *pc, size_t have, int eof)
{
	struct par *P = w->par;
	size_t len = pc->last ? have : (size_t)(pc->end - pc->start), done = 0;
	enum xml_ctx ctx = pc->ctx;

	w->fed = pc->start;
	if (pc->start == 0 && foreign_start(w->buf, have))
		return -1;
	if (P->fast && ctx != XML_CTX_DOC) {
		int e;
		done = xml_lines(w->buf, len, &ctx, &w->rec_sink, &e);
		w->fed += done;
		__atomic_add_fetch(&P->fast_bytes, done, __ATOMIC_RELAXED);
		if (e)
			return -1;
		if (done == len && !pc->last)
			return ctx == pc->next_ctx ? 0 : -1;
	}
	if (xml_piece_begin(w->xp, ctx) || feed(w, w->buf + done, len - done))
		return -1;
	if (!pc->last)
		return xml_piece_end(w->xp, pc->next_ctx) ||
		       (pc->start == 0 && xml_piece_foreign_encoding(w->xp)) ? -1 : 0;
	/* the rest of the file, streamed */
	while (!eof) {
		ssize_t got = read_at(P->fd, w->buf, w->buf_cap, w->fed);
		if (got < 0)
			return -1;
		eof = (size_t)got < w->buf_cap;
		if (feed(w, w->buf, (size_t)got))
			return -1;
	}
	if (xml_piece_feed(w->xp, "", 0, 1) || xml_piece_done(w->xp))
		return -1;
	return pc->start == 0 && xml_piece_foreign_encoding(w->xp) ? -1 : 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct par *P = w->par;

	while (!aborted(P)) {
		struct piece *pc;
		size_t have = 0;
		int eof = 0, clean;

		pthread_mutex_lock(&P->cut_lock);
		pc = cut_next(w, &have, &eof);
		pthread_mutex_unlock(&P->cut_lock);
		if (!pc)
			break;
		w->cur = pc;
		clean = parse_piece(w, pc, have, eof) == 0;
		publish(w);
		pthread_mutex_lock(&P->lock);
		pc->clean = clean;
		pc->done = 1;
		w->cur = NULL;
		if (P->consumer_waiting)
			pthread_cond_signal(&P->more);
		pthread_mutex_unlock(&P->lock);
		if (!clean)
			break;		/* nothing after this piece will be used */
	}
	if (w->chunk) {
		pthread_mutex_lock(&P->lock);
		chunk_put(P, w->chunk);
		pthread_mutex_unlock(&P->lock);
		w->chunk = NULL;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The consumer */

struct feed_state {
	const struct tm_ir_sink *sink;
	uint64_t events;	/* delivered */
	uint64_t shape;		/* a hash of their types */
	int sink_err;		/* the sink's refusal of event number @events */
};

static uint64_t shape_add(uint64_t h, uint32_t type)
{
	return (h ^ type) * 1099511628211ull;
}

/* Deliver the records of @c.  0, or the sink's error. */
static int deliver(struct feed_state *f, const struct chunk *c)
{
	const struct tm_ir_sink *s = f->sink;
	size_t off = 0;

	while (off < c->used) {
		const struct rec *h = (const struct rec *)((const char *)c->data + off);
		const void *pl = h + 1;
		int e;

		switch (h->type) {
		case R_RUN:
			e = s->run(s->ctx, pl);
			break;
		case R_SB_BEGIN:
			e = s->superblock_begin(s->ctx, pl);
			break;
		case R_SB_END:
			e = s->superblock_end(s->ctx);
			break;
		case R_DEF_BEGIN:
			e = s->def_begin(s->ctx, pl);
			break;
		case R_DEF_END:
			e = s->def_end(s->ctx);
			break;
		case R_DEV_BEGIN:
			e = s->device_begin(s->ctx, pl);
			break;
		case R_DEV_END:
			e = s->device_end(s->ctx);
			break;
		case R_REF:
			e = s->ref(s->ctx, pl);
			break;
		default:
			e = -EPROTO;
			break;
		}
		f->shape = shape_add(f->shape, h->type);
		if (e) {
			f->sink_err = e;
			return e;
		}
		f->events++;
		off += rec_size(h->len);
	}
	return 0;
}

/* Consume every piece in order: 0 when the document was delivered whole. */
static int consume(struct par *P, struct feed_state *f, const struct xml_read_opts *opts,
		   uint64_t *pieces)
{
	for (size_t k = 0;; k++) {
		struct piece *pc;
		int clean, last;

		pthread_mutex_lock(&P->lock);
		P->front = k;
		if (P->workers_waiting)
			pthread_cond_broadcast(&P->room);
		while (k >= P->npieces && !P->broken) {
			P->consumer_waiting = 1;
			pthread_cond_wait(&P->more, &P->lock);
			P->consumer_waiting = 0;
		}
		if (k >= P->npieces) {
			pthread_mutex_unlock(&P->lock);
			return -1;
		}
		pc = P->pieces[k];
		for (;;) {
			struct chunk *c;
			int e;

			while (!pc->head && !pc->done) {
				P->consumer_waiting = 1;
				pthread_cond_wait(&P->more, &P->lock);
				P->consumer_waiting = 0;
			}
			if (!(c = pc->head))
				break;
			if (!(pc->head = c->next))
				pc->tail = NULL;
			pthread_mutex_unlock(&P->lock);

			e = deliver(f, c);
			if (!e && opts && opts->progress)
				opts->progress(opts->progress_ctx, c->end_off);

			pthread_mutex_lock(&P->lock);
			P->w[c->owner].outstanding -= c->cap;
			if (P->workers_waiting)
				pthread_cond_broadcast(&P->room);
			chunk_put(P, c);
			if (e) {
				pthread_mutex_unlock(&P->lock);
				return -1;
			}
		}
		clean = pc->clean;
		last = pc->last;
		P->pieces[k] = NULL;
		pthread_mutex_unlock(&P->lock);
		free(pc);
		*pieces = k + !!clean;
		if (!clean)
			return -1;
		if (last)
			return 0;
	}
}

/* ------------------------------------------------------------------ */
/*
 * The way back: xml_read() from the start, through a sink that skips the
 * events already delivered (checking they are the same kinds), gives the
 * sink's refusal again for the event it refused, and passes the rest on.
 */
struct skip {
	const struct tm_ir_sink *inner;
	struct tm_ir_sink sink;
	uint64_t skip, seen, shape, want_shape;
	int sink_err;
	int diverged;
};

/* 1: skip the event; 0: pass it on; < 0: return that. */
static int skip_event(struct skip *s, uint32_t type)
{
	if (s->seen < s->skip) {
		s->seen++;
		s->shape = shape_add(s->shape, type);
		return 1;
	}
	if (s->seen++ == s->skip) {
		if (s->sink_err)
			s->shape = shape_add(s->shape, type);
		if (s->shape != s->want_shape) {
			s->diverged = 1;
			return -EPROTO;
		}
		if (s->sink_err)
			return s->sink_err;
	}
	return 0;
}

#define SKIP_OR_PASS(s, type, call)			\
	do {						\
		int r_ = skip_event(s, type);		\
		if (r_)					\
			return r_ > 0 ? 0 : r_;		\
		return call;				\
	} while (0)

static int sk_sb_begin(void *ctx, const struct tm_ir_superblock *sb)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_SB_BEGIN, s->inner->superblock_begin(s->inner->ctx, sb));
}

static int sk_sb_end(void *ctx)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_SB_END, s->inner->superblock_end(s->inner->ctx));
}

static int sk_def_begin(void *ctx, const char *name)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_DEF_BEGIN, s->inner->def_begin(s->inner->ctx, name));
}

static int sk_def_end(void *ctx)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_DEF_END, s->inner->def_end(s->inner->ctx));
}

static int sk_dev_begin(void *ctx, const struct tm_ir_device *d)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_DEV_BEGIN, s->inner->device_begin(s->inner->ctx, d));
}

static int sk_dev_end(void *ctx)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_DEV_END, s->inner->device_end(s->inner->ctx));
}

static int sk_ref(void *ctx, const char *name)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_REF, s->inner->ref(s->inner->ctx, name));
}

static int sk_run(void *ctx, const struct tm_ir_run *m)
{
	struct skip *s = ctx;
	SKIP_OR_PASS(s, R_RUN, s->inner->run(s->inner->ctx, m));
}

static int read_again(int fd, const struct feed_state *f, const struct xml_read_opts *opts,
		      struct xml_error *err)
{
	struct skip s = {
		.inner = f->sink,
		.sink = { NULL, sk_sb_begin, sk_sb_end, sk_def_begin, sk_def_end,
			  sk_dev_begin, sk_dev_end, sk_ref, sk_run },
		.skip = f->events,
		.want_shape = f->shape,
		.sink_err = f->sink_err,
	};
	int r;

	s.sink.ctx = &s;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		memset(err, 0, sizeof(*err));
		err->io_err = -errno;
		snprintf(err->msg, sizeof(err->msg), "cannot read the input again: %s",
			 strerror(errno));
		return -1;
	}
	r = xml_read(fd, &s.sink, opts, err);
	if (r && err->io_err)
		return r;
	if (s.diverged || s.seen < s.skip || (s.sink_err && s.seen <= s.skip)) {
		/* a bug of ours: say so rather than build from a wrong reading */
		err->sink_err = 0;
		snprintf(err->msg, sizeof(err->msg),
			 "internal error: the parallel XML reader disagrees with the "
			 "sequential one after %llu events", (unsigned long long)s.skip);
		return -1;
	}
	return r;
}

/* ------------------------------------------------------------------ */

/*
 * One per CPU, at least two: with canonical lines the workers are light,
 * and even on one CPU cutting beats a single expat parser.
 */
static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 2 ? 2 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static void par_stop(struct par *P)
{
	pthread_mutex_lock(&P->lock);
	__atomic_store_n(&P->abort, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&P->room);
	pthread_mutex_unlock(&P->lock);
	for (unsigned i = 0; i < P->nthreads; i++)
		if (P->w[i].started)
			pthread_join(P->w[i].thread, NULL);
}

static void par_free(struct par *P)
{
	for (size_t k = 0; k < P->npieces; k++) {
		struct piece *pc = P->pieces[k];
		if (!pc)
			continue;
		while (pc->head) {
			struct chunk *c = pc->head;
			pc->head = c->next;
			free(c);
		}
		free(pc);
	}
	free(P->pieces);
	while (P->free_chunks) {
		struct chunk *c = P->free_chunks;
		P->free_chunks = c->next;
		free(c);
	}
	for (unsigned i = 0; i < P->nthreads; i++) {
		xml_piece_free(P->w[i].xp);
		free(P->w[i].buf);
	}
	pthread_mutex_destroy(&P->cut_lock);
	pthread_mutex_destroy(&P->lock);
	pthread_cond_destroy(&P->more);
	pthread_cond_destroy(&P->room);
}

int xml_read_parallel(int fd, const struct tm_ir_sink *sink,
		      const struct xml_read_opts *opts, struct xml_error *err)
{
	struct xml_read_stats dummy, *stats = opts && opts->stats ? opts->stats : &dummy;
	struct feed_state f = { sink, 0, 0, 0 };
	unsigned threads = opts && opts->threads ? opts->threads : default_threads();
	uint64_t piece = opts ? opts->piece_bytes : 0;
	struct par P;
	struct stat st;
	int r;

	memset(stats, 0, sizeof(*stats));
	stats->threads = 1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || lseek(fd, 0, SEEK_SET) < 0)
		return xml_read(fd, sink, opts, err);
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if (!piece) {
		piece = (uint64_t)st.st_size / (8u * threads);
		piece = piece < MIN_PIECE ? MIN_PIECE : piece > MAX_PIECE ? MAX_PIECE : piece;
		if ((uint64_t)st.st_size < MIN_PARALLEL_BYTES)
			threads = 1;
	}
	if (threads < 2)
		return xml_read(fd, sink, opts, err);

	memset(&P, 0, sizeof(P));
	P.fd = fd;
	P.piece_bytes = piece > SIZE_MAX / 8 ? SIZE_MAX / 8 : piece;
	P.nthreads = threads;
	P.next_ctx = XML_CTX_DOC;
	P.fast = !(opts && opts->expat_only);
	pthread_mutex_init(&P.cut_lock, NULL);
	pthread_mutex_init(&P.lock, NULL);
	pthread_cond_init(&P.more, NULL);
	pthread_cond_init(&P.room, NULL);
	for (unsigned i = 0; i < threads; i++) {
		struct worker *w = &P.w[i];
		w->par = &P;
		rec_sink_init(w);
		if (!(w->xp = xml_piece_new(&w->rec_sink)) ||
		    pthread_create(&w->thread, NULL, worker_main, w))
			break;
		w->started = 1;
		stats->threads = i + 1;
	}
	r = P.w[0].started ? consume(&P, &f, opts, &stats->pieces) : -1;
	par_stop(&P);
	stats->fast_bytes = P.fast_bytes;
	par_free(&P);
	if (r == 0) {
		memset(err, 0, sizeof(*err));
		return 0;
	}
	stats->reread = 1;
	stats->reread_skip = f.events;
	return read_again(fd, &f, opts, err);
}
