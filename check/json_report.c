/*
 * json_report.c - thin_check --json (json_report.h, docs/json.md).
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_report.h"
#include "thinmeta/node_path.h"
#include "tool.h"

/* More findings of one code than this are counted, not listed. */
#define MAX_PER_CODE 1000

struct jproblem {
	struct tm_problem p;	/* text, text2 and path are not kept */
	char *line;		/* tm_problem_format() */
	char *message;		/* tm_problem_message() */
	char *path;		/* encoded node path, or NULL */
};

struct json_report {
	char *input;
	struct tm_check_opts opts;
	struct jproblem *probs;
	size_t nr, cap;
	uint64_t listed[TM_PR__COUNT];
	uint64_t omitted;
	char **repairs;
	size_t nr_repairs, cap_repairs;
	int changed;
	int oom;
};

struct json_report *json_report_new(const char *input, const struct tm_check_opts *opts)
{
	struct json_report *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->input = strdup(input);
	if (!j->input) {
		free(j);
		return NULL;
	}
	j->opts = *opts;
	return j;
}

void json_report_free(struct json_report *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->nr; i++) {
		free(j->probs[i].line);
		free(j->probs[i].message);
		free(j->probs[i].path);
	}
	for (size_t i = 0; i < j->nr_repairs; i++)
		free(j->repairs[i]);
	free(j->probs);
	free(j->repairs);
	free(j->input);
	free(j);
}

static char *format_dup(size_t (*fmt)(const struct tm_problem *, char *, size_t),
			const struct tm_problem *p)
{
	char small[1024];
	size_t n = fmt(p, small, sizeof(small));
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	if (n < sizeof(small))
		memcpy(s, small, n + 1);
	else
		fmt(p, s, n + 1);
	return s;
}

static void cb_problem(void *ctx, const struct tm_problem *p)
{
	struct json_report *j = ctx;
	struct jproblem *jp;

	if (p->code == TM_PR_SB_CHANGED || p->code == TM_PR_SNAP_CHANGED)
		j->changed = 1;
	if ((unsigned)p->code >= TM_PR__COUNT)
		return;
	if (j->listed[p->code] >= MAX_PER_CODE) {
		j->omitted++;
		return;
	}
	if (j->nr == j->cap) {
		size_t ncap = j->cap ? j->cap * 2 : 64;
		struct jproblem *n = realloc(j->probs, ncap * sizeof(*n));
		if (!n) {
			j->oom = 1;
			j->omitted++;
			return;
		}
		j->probs = n;
		j->cap = ncap;
	}
	jp = &j->probs[j->nr];
	memset(jp, 0, sizeof(*jp));
	jp->p = *p;
	jp->p.text = jp->p.text2 = NULL;
	jp->p.path = NULL;
	jp->p.path_len = 0;
	jp->line = format_dup(tm_problem_format, p);
	jp->message = format_dup(tm_problem_message, p);
	if (p->path_len) {
		char path[4 * ((2 + 9 * TM_NODE_PATH_MAX) / 3 + 1) + 1];
		if (tm_node_path_encode(p->path, p->path_len, path, sizeof(path)) == 0)
			jp->path = strdup(path);
	}
	if (!jp->line || !jp->message) {
		free(jp->line);
		free(jp->message);
		free(jp->path);
		j->oom = 1;
		j->omitted++;
		return;
	}
	j->nr++;
	j->listed[p->code]++;
}

static void cb_repaired(void *ctx, const char *what)
{
	struct json_report *j = ctx;

	if (j->nr_repairs == j->cap_repairs) {
		size_t ncap = j->cap_repairs ? j->cap_repairs * 2 : 16;
		char **n = realloc(j->repairs, ncap * sizeof(*n));
		if (!n) {
			j->oom = 1;
			return;
		}
		j->repairs = n;
		j->cap_repairs = ncap;
	}
	char *d = strdup(what);
	if (!d) {
		j->oom = 1;
		return;
	}
	j->repairs[j->nr_repairs++] = d;
}

void json_report_callbacks(struct json_report *j, struct tm_check_callbacks *cb,
			   const struct tm_check_result *res)
{
	(void)res;
	memset(cb, 0, sizeof(*cb));
	cb->ctx = j;
	cb->problem = cb_problem;
	cb->repaired = cb_repaired;
}

/* ------------------------------------------------------------------ */

static void put_problem(struct json_writer *w, const struct jproblem *jp)
{
	const struct tm_problem *p = &jp->p;
	const struct tm_problem_info *pi = tm_problem_info(p->code);

	jw_obj_begin(w, NULL);
	jw_str(w, "code", pi->name);
	jw_str(w, "severity", tm_severity_name(p->severity));
	jw_bool(w, "fixable", pi->fixable);
	jw_str(w, "message", jp->message);
	jw_str(w, "text", jp->line);
	if (p->kind != TM_KIND_NONE)
		jw_str(w, "block_kind", tm_kind_name(p->kind, p->tree));
	else
		jw_null(w, "block_kind");
	if (p->tree != TM_TREE_NONE)
		jw_str(w, "tree", tm_tree_name(p->tree));
	else
		jw_null(w, "tree");
	jw_bool(w, "in_snapshot", p->in_snapshot);
	if (p->block != TM_NO_BLOCK) {
		jw_u64(w, "block", p->block);
		jw_u64(w, "nr_blocks", p->nr_blocks ? p->nr_blocks : 1);
	} else {
		jw_null(w, "block");
		jw_null(w, "nr_blocks");
	}
	if (p->dev_id != TM_NO_DEV)
		jw_u64(w, "dev_id", p->dev_id);
	else
		jw_null(w, "dev_id");
	if (p->nr_devs)
		jw_u64(w, "nr_devs", p->nr_devs);
	else
		jw_null(w, "nr_devs");
	if (p->has_keys) {
		jw_obj_begin(w, "keys");
		jw_u64(w, "begin", p->key_lo);
		if (p->keys_open)
			jw_null(w, "end");
		else
			jw_u64(w, "end", p->key_hi);
		jw_obj_end(w);
	} else {
		jw_null(w, "keys");
	}
	jw_u64(w, "expected", p->expected);
	jw_u64(w, "actual", p->actual);
	jw_u64(w, "n", p->n);
	jw_str(w, "node_path", jp->path);
	jw_obj_end(w);
}

static const char *outcome(const struct json_report *j, const struct tm_check_result *res,
			   int status, const char *error)
{
	if (error || !res)
		return "error";
	if (j->changed || res->changed)
		return "changed";
	if (status != EXIT_OK)
		return "problems";
	if (res->repaired)
		return "repaired";
	if (res->nr_problems[TM_SEV_NONFATAL] || res->nr_problems[TM_SEV_FATAL])
		return "ignored";
	return "clean";
}

int json_report_finish(struct json_report *j, const struct tm_check_result *res, int status,
		       const char *error)
{
	struct json_writer w;
	const struct tm_check_opts *o = &j->opts;

	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "schema", "thinmeta/thin_check/1");
	jw_str(&w, "tool", "thin_check");
	jw_str(&w, "version", THINMETA_VERSION);
	jw_str(&w, "input", j->input);

	jw_obj_begin(&w, "options");
	jw_bool(&w, "super_block_only", o->sb_only);
	jw_bool(&w, "skip_mappings", o->skip_mappings);
	jw_bool(&w, "metadata_snap", o->metadata_snap);
	jw_bool(&w, "ignore_non_fatal_errors", o->ignore_non_fatal);
	jw_bool(&w, "repair", o->repair);
	jw_bool(&w, "clear_needs_check", o->clear_needs_check);
	if (o->override_mapping_root)
		jw_u64(&w, "override_mapping_root", o->mapping_root);
	else
		jw_null(&w, "override_mapping_root");
	if (o->override_details_root)
		jw_u64(&w, "override_details_root", o->details_root);
	else
		jw_null(&w, "override_details_root");
	jw_obj_end(&w);

	jw_str(&w, "result", outcome(j, res, status, error));
	jw_u64(&w, "exit_status", (uint64_t)status);
	jw_str(&w, "error", error);

	if (res && res->have_sb) {
		const struct tm_superblock *sb = &res->sb;
		jw_obj_begin(&w, "superblock");
		jw_u64(&w, "transaction_id", res->transaction_id);
		jw_u64(&w, "metadata_free_blocks", res->metadata_free);
		jw_u64(&w, "metadata_blocks", sb->meta_sm.nr_blocks);
		jw_u64(&w, "data_blocks", sb->data_sm.nr_blocks);
		jw_u64(&w, "data_block_size", sb->data_block_size);
		jw_u64(&w, "time", sb->time);
		jw_u64(&w, "version", sb->version);
		jw_bool(&w, "needs_check", (sb->flags & 1u) != 0);
		if (sb->held_root)
			jw_u64(&w, "metadata_snap", sb->held_root);
		else
			jw_null(&w, "metadata_snap");
		jw_obj_end(&w);
	} else {
		jw_null(&w, "superblock");
	}

	jw_obj_begin(&w, "counts");
	jw_u64(&w, "fatal", res ? res->nr_problems[TM_SEV_FATAL] : 0);
	jw_u64(&w, "non_fatal", res ? res->nr_problems[TM_SEV_NONFATAL] : 0);
	jw_u64(&w, "info", res ? res->nr_problems[TM_SEV_INFO] : 0);
	jw_u64(&w, "note", res ? res->nr_problems[TM_SEV_NOTE] : 0);
	jw_obj_end(&w);

	int changed = j->changed || (res && res->changed);
	jw_arr_begin(&w, "problems");
	for (size_t i = 0; i < j->nr; i++) {
		int c = j->probs[i].p.code;
		/* what a torn read showed is not reported, only the change */
		if (changed && c != TM_PR_SB_CHANGED && c != TM_PR_SNAP_CHANGED)
			continue;
		put_problem(&w, &j->probs[i]);
	}
	jw_arr_end(&w);
	jw_u64(&w, "problems_omitted", j->omitted);

	jw_arr_begin(&w, "repairs");
	for (size_t i = 0; i < j->nr_repairs; i++)
		jw_str(&w, NULL, j->repairs[i]);
	jw_arr_end(&w);
	jw_bool(&w, "needs_check_cleared", res ? res->needs_check_cleared : 0);

	jw_obj_begin(&w, "stats");
	jw_bool(&w, "complete", res ? res->complete : 0);
	jw_u64(&w, "devices", res ? res->nr_devices : 0);
	jw_u64(&w, "snapshot_devices", res ? res->nr_snap_devices : 0);
	jw_u64(&w, "nodes", res ? res->nr_nodes : 0);
	jw_u64(&w, "mappings", res ? res->nr_mappings : 0);
	jw_u64(&w, "data_blocks_leaked", res ? res->data_leaked : 0);
	jw_u64(&w, "metadata_blocks_leaked", res ? res->meta_leaked : 0);
	jw_obj_end(&w);

	jw_obj_end(&w);
	jw_end(&w);
	return fflush(stdout) || ferror(stdout) ? -1 : 0;
}
