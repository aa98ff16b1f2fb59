/*
 * test_fields.c - the field tables agree with the decoders and format.h,
 * and the byte -> field map stays inside the block whatever a header says.
 */
#include <errno.h>

#include "unit_util.h"
#include "thinmeta/fields.h"
#include "thinmeta/metadata.h"
#include "thinmeta/space_map.h"

static const struct tm_struct *const all[] = {
	&tm_struct_superblock, &tm_struct_sm_root, &tm_struct_node_header,
	&tm_struct_index_entry, &tm_struct_bitmap_header, &tm_struct_index_block_header,
	&tm_struct_device_details, &tm_struct_mapping_value, &tm_struct_block_value,
	&tm_struct_dev_root, &tm_struct_ref_count,
};

START_TEST(tables_are_well_formed)
{
	for (unsigned s = 0; s < sizeof(all) / sizeof(all[0]); s++) {
		const struct tm_struct *st = all[s];
		uint32_t covered = 0;
		for (unsigned i = 0; i < st->nr_fields; i++) {
			const struct tm_field *f = &st->fields[i];
			ck_assert_msg((uint32_t)f->offset + f->size <= st->size, "%s.%s", st->name,
				      f->name);
			ck_assert(f->doc && f->doc[0]);
			if (f->type == TM_FT_U32)
				ck_assert_uint_eq(f->size, 4);
			if (f->type == TM_FT_U64)
				ck_assert_uint_eq(f->size, 8);
			if (f->type == TM_FT_STRUCT)
				ck_assert(f->sub && f->sub->size <= f->size);
			/* fields follow each other; only bit fields share bytes */
			if (!f->bits) {
				ck_assert_msg(f->offset >= covered, "%s.%s overlaps", st->name,
					      f->name);
				covered = f->offset + f->size;
			}
		}
	}
	ck_assert_uint_eq(tm_struct_superblock.size, TM_SB_SIZE);
	ck_assert_uint_eq(tm_struct_device_details.size, TM_VSIZE_DETAILS);
	ck_assert_uint_eq(tm_struct_index_entry.size, TM_INDEX_ENTRY_SIZE);
	ck_assert_uint_eq(tm_struct_node_header.size, TM_NODE_HEADER_SIZE);
}
END_TEST

START_TEST(superblock_fields_match_the_decoder)
{
	uint8_t buf[TM_BLOCK_SIZE];
	struct tm_superblock sb;
	uint32_t off;

	/* distinct values everywhere */
	for (unsigned i = 0; i < TM_BLOCK_SIZE; i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	tm_sb_decode(buf, &sb);
	const struct tm_field *f;
#define CHECK(name, value) do { \
		f = tm_struct_find(&tm_struct_superblock, name, &off); \
		ck_assert_msg(f != NULL, "%s", name); \
		ck_assert_uint_eq(tm_field_get(f, buf + off - f->offset), (value)); \
	} while (0)
	CHECK("csum", sb.csum);
	CHECK("flags", sb.flags);
	CHECK("blocknr", sb.blocknr);
	CHECK("magic", sb.magic);
	CHECK("version", sb.version);
	CHECK("time", sb.time);
	CHECK("trans_id", sb.trans_id);
	CHECK("held_root", sb.held_root);
	CHECK("data_space_map_root.nr_blocks", sb.data_sm.nr_blocks);
	CHECK("data_space_map_root.nr_allocated", sb.data_sm.nr_allocated);
	CHECK("data_space_map_root.bitmap_root", sb.data_sm.bitmap_root);
	CHECK("data_space_map_root.ref_count_root", sb.data_sm.ref_count_root);
	CHECK("metadata_space_map_root.nr_blocks", sb.meta_sm.nr_blocks);
	CHECK("metadata_space_map_root.bitmap_root", sb.meta_sm.bitmap_root);
	CHECK("metadata_space_map_root.ref_count_root", sb.meta_sm.ref_count_root);
	CHECK("data_mapping_root", sb.mapping_root);
	CHECK("device_details_root", sb.details_root);
	CHECK("data_block_size", sb.data_block_size);
	CHECK("metadata_block_size", sb.metadata_block_size);
	CHECK("metadata_nr_blocks", sb.metadata_nr_blocks);
	CHECK("compat_flags", sb.compat_flags);
	CHECK("compat_ro_flags", sb.compat_ro_flags);
	CHECK("incompat_flags", sb.incompat_flags);
	ck_assert_ptr_null(tm_struct_find(&tm_struct_superblock, "nope", NULL));
	ck_assert_ptr_null(tm_struct_find(&tm_struct_superblock, "flags.x", NULL));

	struct tm_device_details d;
	tm_details_decode(buf, &d);
	f = tm_struct_find(&tm_struct_device_details, "mapped_blocks", &off);
	ck_assert_uint_eq(tm_field_get(f, buf), d.mapped_blocks);
	f = tm_struct_find(&tm_struct_device_details, "snapshotted_time", &off);
	ck_assert_uint_eq(tm_field_get(f, buf), d.snapshotted_time);

	uint64_t v = tm_bt_pack(123456789, 77);
	uint8_t m[8];
	tm_put_le64(m, v);
	ck_assert_uint_eq(tm_field_get(&tm_struct_mapping_value.fields[0], m), 123456789);
	ck_assert_uint_eq(tm_field_get(&tm_struct_mapping_value.fields[1], m), 77);
	ck_assert_int_eq(tm_struct_mapping_value.fields[0].ref, TM_REF_DATA_BLOCK);

	struct tm_index_entry ie;
	tm_index_entry_decode(buf + 16, &ie);
	ck_assert_uint_eq(tm_field_get(&tm_struct_index_entry.fields[0], buf + 16), ie.blocknr);
	ck_assert_uint_eq(tm_field_get(&tm_struct_index_entry.fields[2], buf + 16),
			  ie.none_free_before);
#undef CHECK
}
END_TEST

START_TEST(field_at_names_bytes)
{
	uint8_t b[TM_BLOCK_SIZE] = { 0 };
	struct tm_field_loc fl;

	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_SUPERBLOCK, b, NULL, 60, &fl), 0);
	ck_assert_str_eq(fl.name, "held_root");
	ck_assert_uint_eq(fl.offset, 56);
	ck_assert_uint_eq(fl.size, 8);
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_SUPERBLOCK, b, NULL, 64 + 17, &fl), 0);
	ck_assert_str_eq(fl.name, "data_space_map_root.bitmap_root");
	ck_assert_uint_eq(fl.offset, 80);
	ck_assert_str_eq(fl.st->name, "data space map root");
	ck_assert_uint_eq(fl.st_offset, 64);
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_SUPERBLOCK, b, NULL, 64 + 100, &fl), 0);
	ck_assert_str_eq(fl.name, "data_space_map_root.unused");
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_SUPERBLOCK, b, NULL, 400, &fl), -ENODATA);

	/* a details leaf: 126 slots */
	tm_put_le32(b + TM_NODE_OFF_FLAGS, TM_NODE_LEAF);
	tm_put_le32(b + TM_NODE_OFF_NR_ENTRIES, 5);
	tm_put_le32(b + TM_NODE_OFF_MAX_ENTRIES, 126);
	tm_put_le32(b + TM_NODE_OFF_VALUE_SIZE, 24);
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_NODE, b, NULL, 17, &fl), 0);
	ck_assert_str_eq(fl.name, "nr_entries");
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_NODE, b, NULL, 32 + 8 * 3 + 2, &fl), 0);
	ck_assert_str_eq(fl.name, "keys[3]");
	ck_assert(fl.in_use);
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_NODE, b, NULL, 32 + 8 * 7, &fl), 0);
	ck_assert(!fl.in_use);
	uint32_t vals = 32 + 8 * 126;
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_NODE, b, NULL, vals + 24 * 2 + 9, &fl), 0);
	ck_assert_str_eq(fl.name, "values[2].transaction_id");
	ck_assert_uint_eq(fl.offset, vals + 48 + 8);
	ck_assert_uint_eq(fl.st_offset, vals + 48);
	/* a mapping leaf: the packed word is one field */
	tm_put_le32(b + TM_NODE_OFF_MAX_ENTRIES, 252);
	tm_put_le32(b + TM_NODE_OFF_VALUE_SIZE, 8);
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_NODE, b, NULL, 32 + 8 * 252 + 8 + 3, &fl), 0);
	ck_assert_str_eq(fl.name, "values[1]");
	ck_assert_ptr_eq(fl.st, &tm_struct_mapping_value);
	/* bitmap bytes: 4 entries each */
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_BITMAP, b, NULL, 16 + 9, &fl), 0);
	ck_assert_str_eq(fl.name, "entries[36..39]");
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_INDEX, b, NULL, 16 + 16 * 3 + 9, &fl), 0);
	ck_assert_str_eq(fl.name, "index[3].nr_free");
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_UNKNOWN, b, NULL, 0, &fl), -ENODATA);
}
END_TEST

/* Whatever a header claims, fields stay inside the block. */
START_TEST(hostile_headers)
{
	uint8_t b[TM_BLOCK_SIZE];
	static const uint32_t maxes[] = { 0, 1, 126, 509, 510, 1000, 0xffffffffu };
	static const uint32_t vsizes[] = { 0, 1, 4, 8, 24, 4064, 4096, 5000, 0xffffffffu };
	struct tm_field_loc fl;

	for (unsigned i = 0; i < TM_BLOCK_SIZE; i++)
		b[i] = (uint8_t)(i * 7);
	for (unsigned m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++)
		for (unsigned v = 0; v < sizeof(vsizes) / sizeof(vsizes[0]); v++) {
			tm_put_le32(b + TM_NODE_OFF_MAX_ENTRIES, maxes[m]);
			tm_put_le32(b + TM_NODE_OFF_VALUE_SIZE, vsizes[v]);
			tm_put_le32(b + TM_NODE_OFF_NR_ENTRIES, 0xffffffffu);
			for (uint32_t off = 0; off < TM_BLOCK_SIZE; off++) {
				if (tm_block_field_at(TM_LAYOUT_NODE, b, NULL, off, &fl))
					continue;
				ck_assert(fl.offset <= off && off < fl.offset + fl.size);
				ck_assert_uint_le(fl.offset + fl.size, TM_BLOCK_SIZE);
				if (fl.st)
					ck_assert_uint_le(fl.st_offset + fl.st->size, TM_BLOCK_SIZE);
			}
		}
	for (int k = TM_LAYOUT_SUPERBLOCK; k <= TM_LAYOUT_INDEX; k++)
		for (uint32_t off = 0; off < TM_BLOCK_SIZE; off++)
			if (!tm_block_field_at((enum tm_layout)k, b, NULL, off, &fl))
				ck_assert(fl.offset <= off && off < fl.offset + fl.size &&
					  fl.offset + fl.size <= TM_BLOCK_SIZE);
	ck_assert_int_eq(tm_block_field_at(TM_LAYOUT_NODE, b, NULL, TM_BLOCK_SIZE, &fl), -ENODATA);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fields");
	TCase *tc = tcase_create("fields");

	tcase_add_test(tc, tables_are_well_formed);
	tcase_add_test(tc, superblock_fields_match_the_decoder);
	tcase_add_test(tc, field_at_names_bytes);
	tcase_add_test(tc, hostile_headers);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
