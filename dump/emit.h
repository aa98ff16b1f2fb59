/*
 * emit.h - thin_dump's output formats, as IR sinks writing to an outbuf:
 * XML (byte-identical to thin-provisioning-tools 1.1.0) and the
 * human-readable form.
 */
#ifndef THINMETA_DUMP_EMIT_H
#define THINMETA_DUMP_EMIT_H

#include "thinmeta/ir.h"
#include "tool.h"

struct emitter {
	struct outbuf *ob;
	int lines;		/* XML: lines written so far */
};

void emit_xml_sink(struct emitter *em, struct tm_ir_sink *sink);
void emit_human_sink(struct emitter *em, struct tm_ir_sink *sink);

#endif
