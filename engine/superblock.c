/* superblock.c - decoding, encoding and field rules of the superblock. */
#include <errno.h>
#include <string.h>

#include "thinmeta/format.h"
#include "thinmeta/superblock.h"

void tm_sm_root_decode(const void *p, struct tm_sm_root *r)
{
	const uint8_t *b = p;

	r->nr_blocks = tm_le64(b);
	r->nr_allocated = tm_le64(b + 8);
	r->bitmap_root = tm_le64(b + 16);
	r->ref_count_root = tm_le64(b + 24);
}

void tm_sm_root_encode(const struct tm_sm_root *r, void *p)
{
	uint8_t *b = p;

	memset(b, 0, TM_SM_ROOT_AREA);
	tm_put_le64(b, r->nr_blocks);
	tm_put_le64(b + 8, r->nr_allocated);
	tm_put_le64(b + 16, r->bitmap_root);
	tm_put_le64(b + 24, r->ref_count_root);
}

void tm_sb_decode(const void *buf, struct tm_superblock *sb)
{
	const uint8_t *p = buf;

	sb->csum = tm_le32(p + TM_SB_OFF_CSUM);
	sb->flags = tm_le32(p + TM_SB_OFF_FLAGS);
	sb->blocknr = tm_le64(p + TM_SB_OFF_BLOCKNR);
	memcpy(sb->uuid, p + TM_SB_OFF_UUID, 16);
	sb->magic = tm_le64(p + TM_SB_OFF_MAGIC);
	sb->version = tm_le32(p + TM_SB_OFF_VERSION);
	sb->time = tm_le32(p + TM_SB_OFF_TIME);
	sb->trans_id = tm_le64(p + TM_SB_OFF_TRANS_ID);
	sb->held_root = tm_le64(p + TM_SB_OFF_HELD_ROOT);
	tm_sm_root_decode(p + TM_SB_OFF_DATA_SM, &sb->data_sm);
	tm_sm_root_decode(p + TM_SB_OFF_META_SM, &sb->meta_sm);
	sb->mapping_root = tm_le64(p + TM_SB_OFF_MAPPING_ROOT);
	sb->details_root = tm_le64(p + TM_SB_OFF_DETAILS_ROOT);
	sb->data_block_size = tm_le32(p + TM_SB_OFF_DATA_BLOCK_SIZE);
	sb->metadata_block_size = tm_le32(p + TM_SB_OFF_META_BLOCK_SIZE);
	sb->metadata_nr_blocks = tm_le64(p + TM_SB_OFF_META_NR_BLOCKS);
	sb->compat_flags = tm_le32(p + TM_SB_OFF_COMPAT);
	sb->compat_ro_flags = tm_le32(p + TM_SB_OFF_COMPAT_RO);
	sb->incompat_flags = tm_le32(p + TM_SB_OFF_INCOMPAT);
}

void tm_sb_encode(const struct tm_superblock *sb, void *buf)
{
	uint8_t *p = buf;

	memset(p, 0, TM_BLOCK_SIZE);
	tm_put_le32(p + TM_SB_OFF_FLAGS, sb->flags);
	tm_put_le64(p + TM_SB_OFF_BLOCKNR, sb->blocknr);
	memcpy(p + TM_SB_OFF_UUID, sb->uuid, 16);
	tm_put_le64(p + TM_SB_OFF_MAGIC, sb->magic);
	tm_put_le32(p + TM_SB_OFF_VERSION, sb->version);
	tm_put_le32(p + TM_SB_OFF_TIME, sb->time);
	tm_put_le64(p + TM_SB_OFF_TRANS_ID, sb->trans_id);
	tm_put_le64(p + TM_SB_OFF_HELD_ROOT, sb->held_root);
	tm_sm_root_encode(&sb->data_sm, p + TM_SB_OFF_DATA_SM);
	tm_sm_root_encode(&sb->meta_sm, p + TM_SB_OFF_META_SM);
	tm_put_le64(p + TM_SB_OFF_MAPPING_ROOT, sb->mapping_root);
	tm_put_le64(p + TM_SB_OFF_DETAILS_ROOT, sb->details_root);
	tm_put_le32(p + TM_SB_OFF_DATA_BLOCK_SIZE, sb->data_block_size);
	tm_put_le32(p + TM_SB_OFF_META_BLOCK_SIZE, sb->metadata_block_size);
	tm_put_le64(p + TM_SB_OFF_META_NR_BLOCKS, sb->metadata_nr_blocks);
	tm_put_le32(p + TM_SB_OFF_COMPAT, sb->compat_flags);
	tm_put_le32(p + TM_SB_OFF_COMPAT_RO, sb->compat_ro_flags);
	tm_put_le32(p + TM_SB_OFF_INCOMPAT, sb->incompat_flags);
}

static int root_in_range(uint64_t root, uint64_t nr, const char *what,
			 uint64_t sb_block, struct tm_error *e)
{
	if (nr && root >= nr)
		return tm_fail(e, -ERANGE, TM_RULE_OUT_OF_RANGE, sb_block,
			       "superblock %s %llu is past the end of the metadata device (%llu blocks)",
			       what, (unsigned long long)root, (unsigned long long)nr);
	return 0;
}

int tm_sb_check_fields(const struct tm_superblock *sb, uint64_t nr_meta_blocks,
		       int is_copy, struct tm_error *e)
{
	uint64_t b = sb->blocknr;
	int r;

	if (sb->magic != TM_SB_MAGIC)
		return tm_fail(e, -EUCLEAN, TM_RULE_MAGIC, b,
			       "superblock at block %llu has magic %llu, not %llu",
			       (unsigned long long)b, (unsigned long long)sb->magic,
			       TM_SB_MAGIC);
	if (sb->version < TM_SB_VERSION_MIN || sb->version > TM_SB_VERSION_MAX)
		return tm_fail(e, -EUCLEAN, TM_RULE_VERSION, b,
			       "superblock at block %llu has unsupported version %u",
			       (unsigned long long)b, sb->version);
	if (sb->metadata_block_size != TM_BLOCK_SECTORS)
		return tm_fail(e, -EUCLEAN, TM_RULE_BLOCK_SIZE, b,
			       "superblock at block %llu has metadata block size %u sectors, not 8",
			       (unsigned long long)b, sb->metadata_block_size);
	if (sb->incompat_flags || sb->compat_ro_flags)
		return tm_fail(e, -EUCLEAN, TM_RULE_FEATURE, b,
			       "superblock at block %llu has unknown feature flags (incompat %#x, compat_ro %#x)",
			       (unsigned long long)b, sb->incompat_flags,
			       sb->compat_ro_flags);
	if ((r = root_in_range(sb->mapping_root, nr_meta_blocks, "mapping root", b, e)) ||
	    (r = root_in_range(sb->details_root, nr_meta_blocks, "details root", b, e)))
		return r;
	if (!is_copy) {
		if ((r = root_in_range(sb->held_root, nr_meta_blocks, "metadata snapshot", b, e)) ||
		    (r = root_in_range(sb->meta_sm.bitmap_root, nr_meta_blocks,
				       "metadata space map index", b, e)) ||
		    (r = root_in_range(sb->meta_sm.ref_count_root, nr_meta_blocks,
				       "metadata space map ref-count root", b, e)) ||
		    (r = root_in_range(sb->data_sm.bitmap_root, nr_meta_blocks,
				       "data space map root", b, e)) ||
		    (r = root_in_range(sb->data_sm.ref_count_root, nr_meta_blocks,
				       "data space map ref-count root", b, e)))
			return r;
	}
	return 0;
}
