/*
 * json_report.h - thin_check --json: the check's result as one JSON
 * document on stdout (schema: docs/json.md), instead of the text report.
 * Findings are held until the end, as the text reporter holds them: if the
 * metadata changed during the check only that is reported.
 */
#ifndef THIN_CHECK_JSON_REPORT_H
#define THIN_CHECK_JSON_REPORT_H

#include "thinmeta/check.h"

struct json_report;

struct json_report *json_report_new(const char *input, const struct tm_check_opts *opts);
void json_report_free(struct json_report *j);
/* The engine's callbacks, bound to @j. */
void json_report_callbacks(struct json_report *j, struct tm_check_callbacks *cb,
			   const struct tm_check_result *res);
/*
 * Write the document: @res as the check left it (NULL if it never ran),
 * the exit @status thin_check returns, @error: why the check failed or
 * could not run (NULL if it ran to the end).  0, or -1 if stdout failed.
 */
int json_report_finish(struct json_report *j, const struct tm_check_result *res,
		       int status, const char *error);

#endif
