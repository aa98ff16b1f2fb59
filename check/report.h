/*
 * report.h - thin_check's reporter: everything thin_check says goes
 * through here, driven by the engine's problem table.
 *
 *   stdout  TRANSACTION_ID= and METADATA_FREE_BLOCKS= (as 1.1.0)
 *   stderr  the phase titles, one per line as 1.1.0 prints them, or a
 *           progress bar when stderr is a terminal; then the findings,
 *           one line each ("[fatal block_checksum] where: what; cost
 *           (node path P)"), at most a screenful per kind; a summary.
 * Quiet: nothing at all.
 */
#ifndef THIN_CHECK_REPORT_H
#define THIN_CHECK_REPORT_H

#include <stdint.h>

#include "thinmeta/check.h"

struct reporter;

struct reporter *reporter_new(int quiet, int verbose);
void reporter_free(struct reporter *r);
/* The engine's callbacks, bound to @r. */
void reporter_callbacks(struct reporter *r, struct tm_check_callbacks *cb,
			const struct tm_check_result *res);
/* After tm_check: the findings, what was repaired, the summary. */
void reporter_finish(struct reporter *r, const struct tm_check_result *res,
		     int ignore_non_fatal, int repair_asked);
/* A line of our own on stderr (unless quiet). */
void reporter_say(struct reporter *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
