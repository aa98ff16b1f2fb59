/* test_crc32c.c - CRC-32C against known vectors, and both paths agree. */
#include "unit_util.h"
#include "thinmeta/crc32c.h"

START_TEST(standard_vector)
{
	/* CRC-32C("123456789") = 0xe3069283 with pre- and post-inversion */
	ck_assert_uint_eq(tm_crc32c(0xffffffffu, "123456789", 9) ^ 0xffffffffu, 0xe3069283u);
	ck_assert_uint_eq(tm_crc32c_sw(0xffffffffu, "123456789", 9) ^ 0xffffffffu, 0xe3069283u);
	ck_assert_uint_eq(tm_crc32c_hw(0xffffffffu, "123456789", 9) ^ 0xffffffffu, 0xe3069283u);
}
END_TEST

START_TEST(rfc3720_vectors)
{
	/* iSCSI (RFC 3720 B.4): 32 bytes of zeroes -> 0x8a9136aa, of 0xff -> 0x62a8ab43 */
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(tm_crc32c(0xffffffffu, buf, 32) ^ 0xffffffffu, 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	ck_assert_uint_eq(tm_crc32c(0xffffffffu, buf, 32) ^ 0xffffffffu, 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(tm_crc32c(0xffffffffu, buf, 32) ^ 0xffffffffu, 0x46dd794eu);
}
END_TEST

START_TEST(paths_agree)
{
	uint8_t buf[8192 + 16];
	uint32_t seed = 12345;

	for (size_t i = 0; i < sizeof(buf); i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len < 300; len += 7)
			ck_assert_uint_eq(tm_crc32c_sw(0xffffffffu, buf + off, len),
					  tm_crc32c_hw(0xffffffffu, buf + off, len));
	ck_assert_uint_eq(tm_crc32c_sw(0, buf + 3, 8192), tm_crc32c_hw(0, buf + 3, 8192));
	/* incremental == one shot */
	uint32_t a = tm_crc32c(0xffffffffu, buf, 1000);
	a = tm_crc32c(a, buf + 1000, 3092);
	ck_assert_uint_eq(a, tm_crc32c(0xffffffffu, buf, 4092));
}
END_TEST

START_TEST(real_superblock)
{
	const char *path = fixture("02-thins-snaps.meta.img");
	uint8_t blk[TM_BLOCK_SIZE];

	if (!path) {
		fprintf(stderr, "real_superblock: THINMETA_FIXTURES not set, skipped\n");
		return;
	}
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(blk, 1, sizeof(blk), f), sizeof(blk));
	fclose(f);
	uint32_t reg = tm_crc32c_sw(0xffffffffu, blk + 4, TM_BLOCK_SIZE - 4);
	ck_assert_uint_eq(reg ^ TM_SALT_SUPERBLOCK, tm_le32(blk));
	ck_assert_uint_eq(tm_crc32c_hw(0xffffffffu, blk + 4, TM_BLOCK_SIZE - 4), reg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, standard_vector);
	tcase_add_test(tc, rfc3720_vectors);
	tcase_add_test(tc, paths_agree);
	tcase_add_test(tc, real_superblock);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
