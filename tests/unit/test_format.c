/*
 * test_format.c - superblock encode/decode and field rules, bitmap entry
 * bit order, index entries, the u64 set, and error messages.
 */
#include <errno.h>

#include "unit_util.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"
#include "u64map.h"
#include "u64set.h"

static void sample_sb(struct tm_superblock *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->flags = TM_SB_FLAG_NEEDS_CHECK;
	sb->blocknr = 0;
	sb->uuid[3] = 7;
	sb->magic = TM_SB_MAGIC;
	sb->version = 2;
	sb->time = 0xabcdef;
	sb->trans_id = 0x1122334455667788ull;
	sb->held_root = 80;
	sb->data_sm = (struct tm_sm_root){ 4096, 300, 5, 6 };
	sb->meta_sm = (struct tm_sm_root){ 2048, 19, 1, 2 };
	sb->mapping_root = 9;
	sb->details_root = 10;
	sb->data_block_size = 128;
	sb->metadata_block_size = 8;
	sb->metadata_nr_blocks = 2048;
}

START_TEST(superblock_roundtrip)
{
	struct tm_superblock a, b;
	uint8_t buf[TM_BLOCK_SIZE];

	sample_sb(&a);
	tm_sb_encode(&a, buf);
	/* offsets of FORMAT.md §3 */
	ck_assert_uint_eq(tm_le64(buf + 32), TM_SB_MAGIC);
	ck_assert_uint_eq(tm_le64(buf + 56), 80);
	ck_assert_uint_eq(tm_le64(buf + 64), 4096);
	ck_assert_uint_eq(tm_le64(buf + 192 + 16), 1);
	ck_assert_uint_eq(tm_le64(buf + 320), 9);
	ck_assert_uint_eq(tm_le32(buf + 336), 128);
	ck_assert_uint_eq(buf[19], 7);
	for (unsigned i = TM_SB_SIZE; i < TM_BLOCK_SIZE; i++)
		ck_assert_uint_eq(buf[i], 0);
	tm_block_seal(buf, 0, TM_SALT_SUPERBLOCK);
	memset(&b, 0, sizeof(b));	/* padding too, for the memcmp */
	tm_sb_decode(buf, &b);
	a.csum = b.csum;
	ck_assert_mem_eq(&a, &b, sizeof(a));
}
END_TEST

START_TEST(superblock_rules)
{
	struct tm_superblock sb;
	struct tm_error e;

	sample_sb(&sb);
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), 0);
	sb.magic++;
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), -EUCLEAN);
	ck_assert_int_eq(e.rule, TM_RULE_MAGIC);
	sample_sb(&sb);
	sb.version = 3;
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), -EUCLEAN);
	ck_assert_int_eq(e.rule, TM_RULE_VERSION);
	sample_sb(&sb);
	sb.version = 1;
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), 0);
	sb.incompat_flags = 1;
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), -EUCLEAN);
	ck_assert_int_eq(e.rule, TM_RULE_FEATURE);
	sample_sb(&sb);
	sb.metadata_block_size = 16;
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), -EUCLEAN);
	ck_assert_int_eq(e.rule, TM_RULE_BLOCK_SIZE);
	sample_sb(&sb);
	sb.details_root = 5000;
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), -ERANGE);
	ck_assert_int_eq(e.rule, TM_RULE_OUT_OF_RANGE);
	ck_assert_ptr_nonnull(strstr(e.msg, "details root 5000"));
	sample_sb(&sb);
	sb.held_root = UINT64_MAX;
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 0, &e), -ERANGE);
	/* a snapshot copy's space-map roots are zero and not checked */
	sample_sb(&sb);
	memset(&sb.meta_sm, 0xff, sizeof(sb.meta_sm));
	ck_assert_int_eq(tm_sb_check_fields(&sb, 2048, 1, &e), 0);
}
END_TEST

START_TEST(bitmap_bit_order)
{
	uint8_t blk[TM_BLOCK_SIZE];

	memset(blk, 0, sizeof(blk));
	/* FORMAT.md §7.3: entry 0 count 1 -> byte 16 = 0x02, count 2 -> 0x01 */
	tm_bitmap_set(blk, 0, 1);
	ck_assert_uint_eq(blk[16], 0x02);
	tm_bitmap_set(blk, 0, 2);
	ck_assert_uint_eq(blk[16], 0x01);
	tm_bitmap_set(blk, 0, 3);
	ck_assert_uint_eq(blk[16], 0x03);
	for (uint32_t i = 0; i < TM_ENTRIES_PER_BITMAP; i++)
		tm_bitmap_set(blk, i, (i * 7) % 4);
	for (uint32_t i = 0; i < TM_ENTRIES_PER_BITMAP; i++)
		ck_assert_uint_eq(tm_bitmap_get(blk, i), (i * 7) % 4);
	/* the header is untouched */
	for (int i = 0; i < 16; i++)
		ck_assert_uint_eq(blk[i], 0);
}
END_TEST

START_TEST(index_entry_and_details)
{
	uint8_t raw[24];
	struct tm_index_entry a = { 77, 16000, 12 }, b;
	struct tm_device_details d = { 320, 5, 1, 2 }, d2;

	memset(&d2, 0, sizeof(d2));

	tm_index_entry_encode(&a, raw);
	tm_index_entry_decode(raw, &b);
	ck_assert_uint_eq(b.blocknr, 77);
	ck_assert_uint_eq(b.nr_free, 16000);
	ck_assert_uint_eq(b.none_free_before, 12);
	tm_details_encode(&d, raw);
	ck_assert_uint_eq(tm_le64(raw), 320);
	ck_assert_uint_eq(tm_le32(raw + 20), 2);
	tm_details_decode(raw, &d2);
	ck_assert_mem_eq(&d, &d2, sizeof(d));
	/* mapping values: 40-bit block, 24-bit time */
	uint64_t v = tm_bt_pack(TM_MAX_DATA_BLOCK, 0xffffff);
	ck_assert_uint_eq(tm_bt_block(v), TM_MAX_DATA_BLOCK);
	ck_assert_uint_eq(tm_bt_time(v), 0xffffff);
	ck_assert_uint_eq(tm_node_max_entries(4), 336);
	ck_assert_uint_eq(tm_node_max_entries(8), 252);
	ck_assert_uint_eq(tm_node_max_entries(16), 168);
	ck_assert_uint_eq(tm_node_max_entries(24), 126);
}
END_TEST

START_TEST(set_of_u64)
{
	struct u64set s;

	u64set_init(&s);
	ck_assert(!u64set_has(&s, 5));
	for (uint64_t i = 0; i < 10000; i++)
		ck_assert_int_eq(u64set_add(&s, i * 4099), 1);
	ck_assert_int_eq(u64set_add(&s, 4099), 0);
	for (uint64_t i = 0; i < 10000; i++)
		ck_assert(u64set_has(&s, i * 4099));
	ck_assert(!u64set_has(&s, 4098));
	/* any value, the one the slots use for "empty" too (a hostile pointer) */
	ck_assert(!u64set_has(&s, UINT64_MAX));
	ck_assert_int_eq(u64set_add(&s, UINT64_MAX), 1);
	ck_assert_int_eq(u64set_add(&s, UINT64_MAX), 0);
	ck_assert(u64set_has(&s, UINT64_MAX));
	u64set_clear(&s);
	ck_assert(!u64set_has(&s, 4099));
	ck_assert(!u64set_has(&s, UINT64_MAX));
	ck_assert_int_eq(u64set_add(&s, 4099), 1);
	u64set_free(&s);
}
END_TEST

/* The map against a plain array, through inserts, updates and removals
 * that make the probe runs wrap and shift back. */
START_TEST(map_of_u64)
{
	enum { N = 5000 };
	static uint64_t want[N];	/* 0 = absent, else value + 1 */
	struct u64map m;
	uint64_t v, seed = 7;

	u64map_init(&m);
	ck_assert_ptr_null(u64map_find(&m, 3));
	ck_assert_int_eq(u64map_get(&m, 3, &v), -ENODATA);
	u64map_remove(&m, 3);
	for (unsigned round = 0; round < 60000; round++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t k = (seed >> 33) % N, key = k << 20;	/* keys that collide */
		switch ((seed >> 20) % 3) {
		case 0:
		case 1:
			ck_assert_int_eq(u64map_put(&m, key, round), 0);
			want[k] = (uint64_t)round + 1;
			break;
		default:
			u64map_remove(&m, key);
			want[k] = 0;
		}
	}
	size_t n = 0;
	for (uint64_t k = 0; k < N; k++) {
		uint64_t *p = u64map_find(&m, k << 20);
		if (!want[k]) {
			ck_assert_ptr_null(p);
			continue;
		}
		n++;
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(*p, want[k] - 1);
		(*p)++;		/* updated in place */
		ck_assert_int_eq(u64map_get(&m, k << 20, &v), 0);
		ck_assert_uint_eq(v, want[k]);
	}
	ck_assert_uint_eq(m.n, n);
	/* the empty-slot marker is the one key refused */
	ck_assert_int_eq(u64map_put(&m, UINT64_MAX, 1), -EINVAL);
	ck_assert_ptr_null(u64map_find(&m, UINT64_MAX));
	u64map_free(&m);
	ck_assert_uint_eq(m.cap, 0);
}
END_TEST

START_TEST(error_messages)
{
	struct tm_error e;
	char longer[300];

	tm_error_clear(&e);
	ck_assert_int_eq(tm_fail(&e, -EILSEQ, TM_RULE_CHECKSUM, 12, "block %d: bad", 12), -EILSEQ);
	tm_error_context(&e, "device %d mapping tree", 3);
	ck_assert_str_eq(e.msg, "device 3 mapping tree: block 12: bad");
	ck_assert_str_eq(tm_rule_name(e.rule), "checksum");
	ck_assert_str_eq(tm_rule_name((enum tm_rule)999), "unknown");
	/* context never overflows the message */
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	tm_error_context(&e, "%s", longer);
	ck_assert_uint_lt(strlen(e.msg), sizeof(e.msg));
	ck_assert_int_eq(tm_fail(NULL, -EIO, TM_RULE_IO, 0, "x"), -EIO);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("format");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, superblock_roundtrip);
	tcase_add_test(tc, superblock_rules);
	tcase_add_test(tc, bitmap_bit_order);
	tcase_add_test(tc, index_entry_and_details);
	tcase_add_test(tc, set_of_u64);
	tcase_add_test(tc, map_of_u64);
	tcase_add_test(tc, error_messages);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
