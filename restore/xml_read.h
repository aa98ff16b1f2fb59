/*
 * xml_read.h - read thin_dump XML (docs/thin-xml.rng) with libexpat,
 * streaming, and say what it holds as IR events (thinmeta/ir.h).
 *
 * Both dialects are read: 0.9.0's (flags, version and metadata_snap on the
 * superblock, every device expanded) and 1.x's (<def name>/<ref name>).
 * The reader checks the document's shape: elements and where they may
 * appear, attribute names, presence and number ranges.  What the numbers
 * mean (mapping order, data blocks within the pool, refs to known defs,
 * duplicate ids) is the sink's to check.  Document type declarations are
 * refused outright, so no entity is ever expanded.
 *
 * Two drivers share the reader:
 *   xml_read()           one expat parser, reading @fd from where it stands
 *                        (pipes too);
 *   xml_read_parallel()  (xml_par.c) a regular file cut into pieces parsed
 *                        on several threads - lines exactly as thin_dump
 *                        writes them without expat (xml_lines()), anything
 *                        else with expat - the sink fed in document order
 *                        from the calling thread; the events, and any error
 *                        with its line and column, are exactly xml_read()'s.
 */
#ifndef THINMETA_XML_READ_H
#define THINMETA_XML_READ_H

#include <stddef.h>
#include <stdint.h>

#include "thinmeta/ir.h"

struct xml_error {
	unsigned long line, column;	/* 1-based; 0 when not about a position */
	int sink_err;		/* the sink's negative errno; 0: the XML itself */
	int io_err;		/* reading the input failed (negative errno) */
	char msg[320];		/* for XML and I/O errors */
};

/* What xml_read_parallel() did (for tests and THIN_RESTORE_STATS). */
struct xml_read_stats {
	unsigned threads;	/* parser threads (1: xml_read() alone) */
	uint64_t pieces;	/* pieces delivered from the threads */
	uint64_t fast_bytes;	/* of them, read as canonical lines */
	int reread;		/* xml_read() took over from the start ... */
	uint64_t reread_skip;	/* ... skipping this many events */
};

struct xml_read_opts {
	/* Called now and then with the bytes of input read so far. */
	void (*progress)(void *ctx, uint64_t bytes);
	void *progress_ctx;
	/*
	 * xml_read_parallel() only: parser threads (0: one per online CPU,
	 * 2 to 4; 1: xml_read() alone), and the size pieces are cut to (0:
	 * from the input's size; inputs under 256 KiB are not cut).  Tests
	 * set both to force many pieces.
	 */
	unsigned threads;
	uint64_t piece_bytes;
	struct xml_read_stats *stats;	/* filled in when not NULL */
	int expat_only;		/* no canonical-line fast path (tests) */
};

/* 0, or -1 with @err filled in.  @opts may be NULL. */
int xml_read(int fd, const struct tm_ir_sink *sink,
	     const struct xml_read_opts *opts, struct xml_error *err);

/*
 * The same events and errors as xml_read(), from several parsers at once
 * when @fd is a regular file large enough to cut; otherwise xml_read().
 * Reads with pread from offset 0 (the file position is left undefined).
 */
int xml_read_parallel(int fd, const struct tm_ir_sink *sink,
		      const struct xml_read_opts *opts, struct xml_error *err);

/* ------------------------------------------------------------------ */
/*
 * Pieces (for xml_par.c): a parser that starts in the middle of a document,
 * in a context given by a synthetic prefix, is fed a piece's bytes and is
 * closed by a synthetic suffix.  Synthetic tags produce no events.  A piece
 * parser does not describe its failures: any failure, or a piece that does
 * not end in the context the next one starts in, sends the caller back to
 * xml_read() for the exact events and message.
 */
enum xml_ctx {
	XML_CTX_DOC,	/* the start of the document */
	XML_CTX_SB,	/* directly inside <superblock>, between elements */
	XML_CTX_DEV,	/* inside <device>, between its mappings */
	XML_CTX_DEF,	/* inside <def>, between its mappings */
};

struct xml_piece;

struct xml_piece *xml_piece_new(const struct tm_ir_sink *sink);
void xml_piece_free(struct xml_piece *p);
/* Start a piece in @ctx.  0, or -1 (out of memory). */
int xml_piece_begin(struct xml_piece *p, enum xml_ctx ctx);
/* 0, or -1 once anything went wrong in this piece. */
int xml_piece_feed(struct xml_piece *p, const char *buf, size_t len, int final);
/*
 * After the piece's bytes (not final): 0 if they ended in context @next, a
 * well-formed place to cut; -1 otherwise.  Consumes the parser's piece.
 */
int xml_piece_end(struct xml_piece *p, enum xml_ctx next);
/* After a final feed: 0 if the document was complete and accepted. */
int xml_piece_done(struct xml_piece *p);
/* An XML declaration naming an encoding other than UTF-8 was seen. */
int xml_piece_foreign_encoding(const struct xml_piece *p);

/*
 * The fast path: the whole lines at the start of @buf[0, len) that are
 * exactly as thin_dump writes them and valid in *@ctx, as events to @sink
 * (*@ctx follows them).  Returns the offset of the first line left for
 * expat: one of any other form, out of range, or incomplete.  A sink
 * error stops it after that line, in *@sink_err.
 */
size_t xml_lines(const char *buf, size_t len, enum xml_ctx *ctx,
		 const struct tm_ir_sink *sink, int *sink_err);

#endif
