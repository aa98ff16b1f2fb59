/*
 * test_gather.c - leaf-run gathering gives 1.1.0's runs: the examples of
 * thin-provisioning-tools' own unit test, each as (lists -> runs).
 */
#include "unit_util.h"
#include "thinmeta/dump.h"

struct gcase {
	const char *lists;	/* "1 2|1 2 3" */
	const char *runs;	/* "1 2*|3" (* = shared) */
};

static const struct gcase cases[] = {
	{ "", "" },
	{ "1", "1" },
	{ "1 2 3", "1 2 3" },
	{ "1 2|1 2 3", "1 2*|3" },
	{ "2 3|1 2 3", "1|2 3*" },
	{ "1 2 3 4|2 3 4 5", "1|2 3 4*|5" },
	{ "2 3 4 5|1 2 3 4", "1|2 3 4*|5" },
	{ "1 2 3 4|2 3 4 5 6|3 4|5 6", "1|2*|3 4*|5 6*" },
	{ "2 3 4 5|2 3 4 6|1 3 4 5", "1|2*|3 4*|5*|6" },
	{ "1 2|2 1", "1*|2*" },
	{ "7|7", "7*" },
	{ "5 6|5 6|5 6", "5 6*" },
};

static size_t parse_lists(const char *s, uint64_t lists[8][16], uint64_t *lens)
{
	size_t n = 0;

	if (!*s)
		return 0;
	lens[0] = 0;
	for (const char *p = s; *p;) {
		if (*p == '|') {
			lens[++n] = 0;
			p++;
		} else if (*p == ' ') {
			p++;
		} else {
			lists[n][lens[n]++] = strtoull(p, (char **)&p, 10);
		}
	}
	return n + 1;
}

START_TEST(upstream_examples)
{
	const struct gcase *c = &cases[_i];
	uint64_t lists[8][16], lens[8];
	const uint64_t *lp[8];
	size_t n = parse_lists(c->lists, lists, lens);
	uint64_t *runs, *run_len, nr_runs;
	uint8_t *shared;
	char got[256] = "";

	for (size_t i = 0; i < n; i++)
		lp[i] = lists[i];
	ck_assert_int_eq(tm_gather_runs(lp, lens, n, 100, &runs, &run_len, &shared, &nr_runs), 0);
	for (uint64_t r = 0, pos = 0; r < nr_runs; r++) {
		if (r)
			strcat(got, "|");
		for (uint64_t k = 0; k < run_len[r]; k++) {
			char num[24];
			snprintf(num, sizeof(num), k ? " %llu" : "%llu",
				 (unsigned long long)runs[pos++]);
			strcat(got, num);
		}
		if (shared[r])
			strcat(got, "*");
	}
	ck_assert_str_eq(got, c->runs);
	free(runs);
	free(run_len);
	free(shared);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gather");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, upstream_examples, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, tc);
	return run_suite(s);
}
