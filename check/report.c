/*
 * report.c - thin_check's reporter (report.h).
 *
 * Findings are held until the check ends, then printed: so that a pool
 * that changed under us is reported as that alone, not as the damage its
 * torn reads would suggest, and so that a progress bar is not torn by them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

#define MAX_LINES_PER_CODE 50
#define MAX_DEVS_LISTED 32

struct reporter {
	int quiet, verbose, tty;
	char **lines;			/* held findings */
	size_t nr_lines, cap_lines;
	uint64_t shown[TM_PR__COUNT];	/* lines kept per code */
	uint64_t blocks[TM_PR__COUNT];	/* blocks covered per code */
	char **repairs;
	size_t nr_repairs, cap_repairs;
	uint64_t *devs;			/* devices named by fatal/non-fatal findings */
	size_t nr_devs, cap_devs;
	int changed;
	const struct tm_check_result *res;
	/* progress */
	const char *title, *subtitle;
	uint64_t done, total;
	struct timespec last;
	int bar_drawn;
};

static const char *phase_titles[] = {
	[TM_PHASE_START] = "Checking thin metadata",
	[TM_PHASE_DETAILS] = "device details tree",
	[TM_PHASE_MAPPINGS] = "mapping tree",
	[TM_PHASE_DATA_SM] = "data space map",
	[TM_PHASE_META_SM] = "metadata space map",
};

struct reporter *reporter_new(int quiet, int verbose)
{
	struct reporter *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->quiet = quiet;
	r->verbose = verbose;
	r->tty = !quiet && isatty(STDERR_FILENO);
	return r;
}

void reporter_free(struct reporter *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nr_lines; i++)
		free(r->lines[i]);
	for (size_t i = 0; i < r->nr_repairs; i++)
		free(r->repairs[i]);
	free(r->lines);
	free(r->repairs);
	free(r->devs);
	free(r);
}

static int push_str(char ***v, size_t *n, size_t *cap, const char *s)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		char **nv = realloc(*v, ncap * sizeof(*nv));
		if (!nv)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	char *d = strdup(s);
	if (!d)
		return -1;
	(*v)[(*n)++] = d;
	return 0;
}

static void add_dev(struct reporter *r, uint64_t dev)
{
	for (size_t i = 0; i < r->nr_devs; i++)
		if (r->devs[i] == dev)
			return;
	if (r->nr_devs == r->cap_devs) {
		size_t ncap = r->cap_devs ? r->cap_devs * 2 : 16;
		uint64_t *nv = realloc(r->devs, ncap * sizeof(*nv));
		if (!nv)
			return;
		r->devs = nv;
		r->cap_devs = ncap;
	}
	r->devs[r->nr_devs++] = dev;
}

/* ------------------------------------------------------------------ */
/* Progress: a bar on a terminal, titles as lines otherwise. */

static void clear_bar(struct reporter *r)
{
	if (r->bar_drawn) {
		fputs("\r\033[K", stderr);
		r->bar_drawn = 0;
	}
}

static void draw_bar(struct reporter *r, int force)
{
	struct timespec now;
	char bar[41];
	unsigned pct, fill;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!force && r->bar_drawn &&
	    (now.tv_sec - r->last.tv_sec) * 1000000000L + (now.tv_nsec - r->last.tv_nsec) <
		    100000000L)
		return;
	r->last = now;
	pct = r->total ? (unsigned)(r->done * 100 / r->total) : 0;
	if (pct > 100)
		pct = 100;
	fill = pct * 40 / 100;
	for (unsigned i = 0; i < 40; i++)
		bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
	bar[40] = '\0';
	fprintf(stderr, "\r\033[K%s [%s] %3u%%, %s", r->title ? r->title : "",
		bar, pct, r->subtitle ? r->subtitle : "");
	fflush(stderr);
	r->bar_drawn = 1;
}

static void cb_phase(void *ctx, enum tm_check_phase ph)
{
	struct reporter *r = ctx;

	if (r->quiet)
		return;
	if (ph == TM_PHASE_SUPERBLOCK) {
		/* 1.1.0 prints these as soon as the superblock is read */
		printf("TRANSACTION_ID=%llu\nMETADATA_FREE_BLOCKS=%llu\n",
		       (unsigned long long)r->res->transaction_id,
		       (unsigned long long)r->res->metadata_free);
		fflush(stdout);
		return;
	}
	if (ph == TM_PHASE_DONE || ph == TM_PHASE_REPAIR) {
		clear_bar(r);
		return;
	}
	const char *t = phase_titles[ph];
	if (ph == TM_PHASE_START)
		r->title = t;
	else
		r->subtitle = t;
	if (r->tty)
		draw_bar(r, 1);
	else
		fprintf(stderr, "%s\n", t);
}

static void cb_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct reporter *r = ctx;

	r->done = done;
	r->total = total;
	if (r->tty && r->title)
		draw_bar(r, 0);
}

static void cb_problem(void *ctx, const struct tm_problem *p)
{
	struct reporter *r = ctx;
	const struct tm_problem_info *pi = tm_problem_info(p->code);
	char line[1024];
	size_t n;

	if (p->code == TM_PR_SB_CHANGED || p->code == TM_PR_SNAP_CHANGED)
		r->changed = 1;
	r->blocks[p->code] += p->nr_blocks ? p->nr_blocks : 1;
	if (p->severity >= TM_SEV_NONFATAL && p->dev_id != TM_NO_DEV)
		add_dev(r, p->dev_id);
	if (r->quiet || (p->severity == TM_SEV_NOTE && !r->verbose))
		return;
	if (++r->shown[p->code] > MAX_LINES_PER_CODE)
		return;
	n = (size_t)snprintf(line, sizeof(line), "[%s %s] ", tm_severity_name(p->severity),
			     pi->name);
	if (n < sizeof(line))
		tm_problem_format(p, line + n, sizeof(line) - n);
	push_str(&r->lines, &r->nr_lines, &r->cap_lines, line);
}

static void cb_repaired(void *ctx, const char *what)
{
	struct reporter *r = ctx;

	push_str(&r->repairs, &r->nr_repairs, &r->cap_repairs, what);
}

void reporter_callbacks(struct reporter *r, struct tm_check_callbacks *cb,
			const struct tm_check_result *res)
{
	memset(cb, 0, sizeof(*cb));
	r->res = res;
	cb->ctx = r;
	cb->phase = cb_phase;
	cb->progress = cb_progress;
	cb->problem = cb_problem;
	cb->repaired = cb_repaired;
}

void reporter_say(struct reporter *r, const char *fmt, ...)
{
	va_list ap;

	if (r->quiet)
		return;
	clear_bar(r);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void summary(struct reporter *r, const struct tm_check_result *res)
{
	const uint64_t *np = res->nr_problems;
	int first = 1;

	fprintf(stderr, "summary: %llu fatal, %llu non-fatal problem%s",
		(unsigned long long)np[TM_SEV_FATAL],
		(unsigned long long)np[TM_SEV_NONFATAL],
		np[TM_SEV_FATAL] + np[TM_SEV_NONFATAL] == 1 ? "" : "s");
	for (int c = 0; c < TM_PR__COUNT; c++) {
		const struct tm_problem_info *pi = tm_problem_info(c);
		if (!res->nr_by_code[c] || pi->severity < TM_SEV_NONFATAL)
			continue;
		fprintf(stderr, "%s %s %llu", first ? ":" : ",", pi->name,
			(unsigned long long)res->nr_by_code[c]);
		if (r->blocks[c] > res->nr_by_code[c])
			fprintf(stderr, " (%llu blocks)", (unsigned long long)r->blocks[c]);
		first = 0;
	}
	fputc('\n', stderr);
	if (r->nr_devs) {
		qsort(r->devs, r->nr_devs, sizeof(*r->devs), cmp_u64);
		fprintf(stderr, "devices affected:");
		for (size_t i = 0; i < r->nr_devs && i < MAX_DEVS_LISTED; i++)
			fprintf(stderr, " %llu", (unsigned long long)r->devs[i]);
		if (r->nr_devs > MAX_DEVS_LISTED)
			fprintf(stderr, " ... (%zu in all)", r->nr_devs);
		fputc('\n', stderr);
	}
}

void reporter_finish(struct reporter *r, const struct tm_check_result *res,
		     int ignore_non_fatal, int repair_asked)
{
	if (r->quiet)
		return;
	clear_bar(r);
	if (r->changed) {
		/* what we read may be torn: say only that it changed */
		for (size_t i = 0; i < r->nr_lines; i++)
			if (strstr(r->lines[i], "sb_changed]") || strstr(r->lines[i], "snap_changed]"))
				fprintf(stderr, "%s\n", r->lines[i]);
		return;
	}
	for (size_t i = 0; i < r->nr_lines; i++)
		fprintf(stderr, "%s\n", r->lines[i]);
	for (int c = 0; c < TM_PR__COUNT; c++)
		if (r->shown[c] > MAX_LINES_PER_CODE)
			fprintf(stderr, "... and %llu more %s findings\n",
				(unsigned long long)(r->shown[c] - MAX_LINES_PER_CODE),
				tm_problem_info(c)->name);
	for (size_t i = 0; i < r->nr_repairs; i++)
		fprintf(stderr, "repaired: %s\n", r->repairs[i]);

	const uint64_t *np = res->nr_problems;
	if (np[TM_SEV_FATAL] || np[TM_SEV_NONFATAL])
		summary(r, res);
	if (!res->repaired && !np[TM_SEV_FATAL] && np[TM_SEV_NONFATAL] && !ignore_non_fatal) {
		if (res->nr_fixable && !repair_asked)
			fprintf(stderr, "the space maps contain leaks: run with --auto-repair to fix them\n");
	}
	if (r->verbose && res->have_sb)
		fprintf(stderr, "%llu devices (%llu in the metadata snapshot), %llu btree nodes read, %llu mappings\n",
			(unsigned long long)res->nr_devices,
			(unsigned long long)res->nr_snap_devices,
			(unsigned long long)res->nr_nodes,
			(unsigned long long)res->nr_mappings);
	fflush(stderr);
}
