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
 */
#ifndef THINMETA_XML_READ_H
#define THINMETA_XML_READ_H

#include <stdint.h>

#include "thinmeta/ir.h"

struct xml_error {
	unsigned long line, column;	/* 1-based; 0 when not about a position */
	int sink_err;		/* the sink's negative errno; 0: the XML itself */
	int io_err;		/* reading the input failed (negative errno) */
	char msg[320];		/* for XML and I/O errors */
};

struct xml_read_opts {
	/* Called after each chunk read, with the bytes read so far. */
	void (*progress)(void *ctx, uint64_t bytes);
	void *progress_ctx;
};

/* 0, or -1 with @err filled in.  @opts may be NULL. */
int xml_read(int fd, const struct tm_ir_sink *sink,
	     const struct xml_read_opts *opts, struct xml_error *err);

#endif
