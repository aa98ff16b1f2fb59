/*
 * test_node_path.c - 1.1.0's base64 node paths: the ones its thin_check
 * printed on damaged kernel fixtures, round trips of its own test vectors,
 * and hostile text that must fail cleanly.
 */
#include <errno.h>

#include "unit_util.h"
#include "thinmeta/node_path.h"

static void expect_path(const char *text, const uint64_t *want, unsigned n)
{
	uint64_t path[TM_NODE_PATH_MAX + 1];
	unsigned len = 99;
	struct tm_error e;

	tm_error_clear(&e);
	ck_assert_msg(!tm_node_path_decode(text, path, TM_NODE_PATH_MAX + 1, &len, &e),
		      "%s: %s", text, e.msg);
	ck_assert_uint_eq(len, n);
	for (unsigned i = 0; i < n; i++)
		ck_assert_uint_eq(path[i], want[i]);
}

/*
 * Printed by thin-provisioning-tools 1.1.0's thin_check on
 * fixtures/kernel/02-thins-snaps with one byte of block 141 (the details
 * root) and of block 138 (the mapping root) flipped:
 *   "device details tree: node error: checksum error AgGN, effecting keys [..]"
 *   "mapping top-level: node error: checksum error AgGK, effecting keys [..]"
 */
START_TEST(paths_printed_by_1_1_0)
{
	static const uint64_t details[] = { 0, 141 }, top[] = { 0, 138 };
	char out[64];

	expect_path("AgGN", details, 2);
	expect_path("AgGK", top, 2);
	ck_assert_int_eq(tm_node_path_encode(details, 2, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "AgGN");
	ck_assert_int_eq(tm_node_path_encode(top, 2, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "AgGK");
	/* padding and white space are optional */
	expect_path("  AgGN\n", details, 2);
}
END_TEST

START_TEST(hand_encoded)
{
	/* count byte 3 = (1 << 1) | 1: one block, no implicit 0; SET width 2 = 0x1234 */
	static const uint64_t one[] = { 0x1234 };
	expect_path("AwI0Eg==", one, 1);
	/* count 0, implicit 0: the path [0] */
	static const uint64_t zero[] = { 0 };
	expect_path("AA==", zero, 1);
	/* [0, 5, 6, 7]: SET 5, then POS 1 twice */
	static const uint64_t run[] = { 0, 5, 6, 7 };
	char out[64];
	ck_assert_int_eq(tm_node_path_encode(run, 4, out, sizeof(out)), 0);
	expect_path(out, run, 4);
	/* the bytes: 06 (3 << 1), 01 05 (SET width 1: 5), 72 (COUNT 2), 11 (POS 1) */
	ck_assert_str_eq(out, "BgEFchE=");
}
END_TEST

START_TEST(round_trips)
{
	/* 1.1.0's own test vectors (src/pdata/btree_error.rs test_encode_path) */
	static const uint64_t v[][4] = {
		{ 1 }, { 1, 2 }, { 1, 2, 3, 4 }, { 0 }, { 0, 0 }, { 0, 1 }, { 0, 1, 2 },
		{ 0, 123, 201231, 3102983012ull },
	};
	static const unsigned n[] = { 1, 2, 4, 1, 2, 2, 3, 4 };
	char out[512];

	for (unsigned t = 0; t < sizeof(n) / sizeof(n[0]); t++) {
		ck_assert_int_eq(tm_node_path_encode(v[t], n[t], out, sizeof(out)), 0);
		expect_path(out, v[t], n[t]);
	}
	/* the empty path */
	uint64_t p[4];
	unsigned len = 9;
	ck_assert_int_eq(tm_node_path_encode(p, 0, out, sizeof(out)), 0);
	ck_assert_int_eq(tm_node_path_decode(out, p, 4, &len, NULL), 0);
	ck_assert_uint_eq(len, 0);

	/* long, descending, repeating and huge values */
	uint64_t big[TM_NODE_PATH_MAX];
	for (unsigned i = 0; i < TM_NODE_PATH_MAX; i++)
		big[i] = i % 7 == 3 ? big[i ? i - 1 : 0] :
			 i % 5 == 0 ? UINT64_MAX - i : (uint64_t)i * 977 % 5000;
	char huge[4096];
	ck_assert_int_eq(tm_node_path_encode(big, TM_NODE_PATH_MAX, huge, sizeof(huge)), 0);
	expect_path(huge, big, TM_NODE_PATH_MAX);
	ck_assert_int_eq(tm_node_path_encode(big, 2, huge, 4), -ENOSPC);
}
END_TEST

static void expect_bad(const char *text)
{
	uint64_t path[8];
	unsigned len;
	struct tm_error e;

	tm_error_clear(&e);
	ck_assert_msg(tm_node_path_decode(text, path, 8, &len, &e) == -EINVAL,
		      "'%s' was accepted", text);
	ck_assert_int_eq(e.rule, TM_RULE_ARG);
	ck_assert(strstr(e.msg, "bad node path") != NULL);
}

START_TEST(hostile_text)
{
	expect_bad("");
	expect_bad("   ");
	expect_bad("!!!!");
	expect_bad("A");		/* a lone 6 bits */
	expect_bad("AgG");		/* trailing bits set */
	expect_bad("AgGNAA==");		/* bytes after the list */
	expect_bad("Ag==");		/* one block promised, none given */
	expect_bad("AvA=");		/* unknown tag 15 */
	expect_bad("BFA=");		/* CONST with count 0 emits nothing */
	/* longer than the caller's room (8) */
	uint64_t p[20];
	char out[256];
	for (unsigned i = 0; i < 20; i++)
		p[i] = i * 3;
	ck_assert_int_eq(tm_node_path_encode(p, 20, out, sizeof(out)), 0);
	expect_bad(out);
	/* every short byte string decodes or fails, never crashes or hangs */
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b += 7) {
			static const char b64[] =
				"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			uint8_t raw[3] = { (uint8_t)a, (uint8_t)b, (uint8_t)(a ^ b) };
			char t[5] = {
				b64[raw[0] >> 2], b64[((raw[0] & 3) << 4) | (raw[1] >> 4)],
				b64[((raw[1] & 15) << 2) | (raw[2] >> 6)], b64[raw[2] & 63], 0
			};
			unsigned len;
			uint64_t q[8];
			int r = tm_node_path_decode(t, q, 8, &len, NULL);
			ck_assert(r == 0 || r == -EINVAL);
			ck_assert(r || len <= 8);
		}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("node_path");
	TCase *tc = tcase_create("node_path");

	tcase_add_test(tc, paths_printed_by_1_1_0);
	tcase_add_test(tc, hand_encoded);
	tcase_add_test(tc, round_trips);
	tcase_add_test(tc, hostile_text);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
