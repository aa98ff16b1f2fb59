/*
 * report.h - what thin_repair and thin_dump --repair say on stderr about a
 * salvage (thinmeta/repair.h): what was found, what was lost, what was
 * guessed; and, when nothing could be written, what was tried and what to
 * try next.  Linked into both tools (repair/module.mk).
 */
#ifndef THINMETA_REPAIR_REPORT_H
#define THINMETA_REPAIR_REPORT_H

#include <stdio.h>

#include "thinmeta/repair.h"

/* Anything lost, guessed or left out: worth a full report. */
int repair_report_eventful(const struct tm_repair_report *rep);

/* The full report, each line prefixed by the tool's name. */
void repair_report_print(FILE *f, const char *input, const struct tm_repair_report *rep);

/* One line: "N devices, M mappings: the metadata is intact". */
void repair_report_summary(FILE *f, const struct tm_repair_report *rep);

/*
 * tm_salvage() failed with @err (-EINVAL: a value is needed; -ENODATA:
 * nothing usable): say why, what was tried and what to do next.
 * @dump: thin_dump's wording (no output device).
 */
void repair_report_failure(FILE *f, const char *input, int err, const char *why,
			   const struct tm_repair_report *rep, int dump);

#endif
