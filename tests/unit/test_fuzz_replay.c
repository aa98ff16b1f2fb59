/*
 * test_fuzz_replay.c - replay the fuzz targets' seed corpus and every saved
 * regression input (fuzz/corpus/TARGET/, fuzz/regressions/TARGET/) through
 * the targets' entry functions, compiled without libFuzzer (fuzz/module.mk
 * renames LLVMFuzzerTestOneInput to TARGET_one).  A target aborts on a
 * broken invariant and the sanitizers (make check SANITIZE=1) catch memory
 * errors, so each input must simply run to its end.
 *
 * As libFuzzer's -rss_limit_mb does, memory is limited (2 GiB of address
 * space, or 2 GiB per allocation under AddressSanitizer): the targets treat
 * running out of memory on their small inputs as a bug.
 */
#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifndef FUZZ_DIR
#error "FUZZ_DIR must name the fuzz/ directory (fuzz/module.mk defines it)"
#endif

#define MEM_LIMIT_MB 2048

const char *__asan_default_options(void);

/* Under AddressSanitizer: refuse (NULL) allocations above the limit. */
const char *__asan_default_options(void)
{
	return "max_allocation_size_mb=2048:allocator_may_return_null=1";
}

static void limit_memory(void)
{
#if !defined(__SANITIZE_ADDRESS__)
	struct rlimit rl = { (rlim_t)MEM_LIMIT_MB << 20, (rlim_t)MEM_LIMIT_MB << 20 };

	if (setrlimit(RLIMIT_AS, &rl))
		perror("setrlimit");
#endif
}

int fuzz_image_one(const uint8_t *data, size_t size);
int fuzz_xml_one(const uint8_t *data, size_t size);
int fuzz_pool_script_one(const uint8_t *data, size_t size);

struct target {
	const char *name;
	int (*fn)(const uint8_t *, size_t);
};

static const struct target targets[] = {
	{ "fuzz_image", fuzz_image_one },
	{ "fuzz_xml", fuzz_xml_one },
	{ "fuzz_pool_script", fuzz_pool_script_one },
};
#define NR_TARGETS (sizeof(targets) / sizeof(targets[0]))

struct input {
	const struct target *t;
	char *path;
};

static struct input *inputs;
static int nr_inputs;

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "out of memory\n");
		exit(EXIT_FAILURE);
	}
	return q;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the files of DIR/SUB/TARGET, in name order. */
static int add_dir(const struct target *t, const char *sub)
{
	char dir[4096];
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s/%s", FUZZ_DIR, sub, t->name);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		size_t len = strlen(dir) + strlen(de->d_name) + 2;
		names[n] = xrealloc(NULL, len);
		snprintf(names[n], len, "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	inputs = xrealloc(inputs, (nr_inputs + n + 1) * sizeof(*inputs));
	for (size_t i = 0; i < n; i++) {
		inputs[nr_inputs].t = t;
		inputs[nr_inputs].path = names[i];
		nr_inputs++;
	}
	free(names);
	return (int)n;
}

static uint8_t *slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*size = n;
	return buf;
}

START_TEST(replay_one)
{
	const struct input *in = &inputs[_i];
	size_t size;
	uint8_t *data = slurp(in->path, &size);

	ck_assert_int_eq(in->t->fn(data, size), 0);
	free(data);
}
END_TEST

START_TEST(corpus_present)
{
	/* the seed corpus is in the repository: an empty one means a broken path */
	int seeds[NR_TARGETS] = { 0 };

	for (int i = 0; i < nr_inputs; i++)
		if (strstr(inputs[i].path, "/corpus/"))
			seeds[inputs[i].t - targets]++;
	for (size_t t = 0; t < NR_TARGETS; t++)
		ck_assert_msg(seeds[t] > 0, "no seed inputs for %s under %s/corpus",
			      targets[t].name, FUZZ_DIR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fuzz_replay");
	TCase *tc = tcase_create("inputs");
	int regressions = 0;

	limit_memory();

	for (size_t t = 0; t < NR_TARGETS; t++) {
		add_dir(&targets[t], "corpus");
		regressions += add_dir(&targets[t], "regressions");
	}
	fprintf(stderr, "fuzz replay: %d inputs, %d of them regressions\n", nr_inputs,
		regressions);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, corpus_present);
	if (nr_inputs)
		tcase_add_loop_test(tc, replay_one, 0, nr_inputs);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (failed) {
		fprintf(stderr, "replay_one iterations (the number after the test name):\n");
		for (int i = 0; i < nr_inputs; i++)
			fprintf(stderr, "  %d: %s %s\n", i, inputs[i].t->name, inputs[i].path);
	}
	for (int i = 0; i < nr_inputs; i++)
		free(inputs[i].path);
	free(inputs);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
