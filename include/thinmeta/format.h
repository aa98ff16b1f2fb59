/*
 * format.h - the dm-thin metadata on-disk format: constants, little-endian
 * accessors and the layouts of each block type (docs/FORMAT-NOTES.md).
 *
 * Structures named *_disk are the bytes on disk, little-endian; they are
 * read and written only through the tm_le* helpers, never cast from
 * unaligned pointers.
 */
#ifndef THINMETA_FORMAT_H
#define THINMETA_FORMAT_H

#include <stdint.h>
#include <string.h>

#define TM_BLOCK_SIZE		4096u
#define TM_BLOCK_SECTORS	8u
#define TM_SECTOR_SIZE		512u

#define TM_SB_MAGIC		27022010ull
#define TM_SB_VERSION_MIN	1u
#define TM_SB_VERSION_MAX	2u
#define TM_SB_FLAG_NEEDS_CHECK	1u

/* Checksum salts, one per block type. */
#define TM_SALT_SUPERBLOCK	160774u
#define TM_SALT_BTREE_NODE	121107u
#define TM_SALT_BITMAP		240779u
#define TM_SALT_INDEX		160478u

/* Superblock field offsets. */
#define TM_SB_OFF_CSUM		0
#define TM_SB_OFF_FLAGS		4
#define TM_SB_OFF_BLOCKNR	8
#define TM_SB_OFF_UUID		16
#define TM_SB_OFF_MAGIC		32
#define TM_SB_OFF_VERSION	40
#define TM_SB_OFF_TIME		44
#define TM_SB_OFF_TRANS_ID	48
#define TM_SB_OFF_HELD_ROOT	56
#define TM_SB_OFF_DATA_SM	64
#define TM_SB_OFF_META_SM	192
#define TM_SB_OFF_MAPPING_ROOT	320
#define TM_SB_OFF_DETAILS_ROOT	328
#define TM_SB_OFF_DATA_BLOCK_SIZE 336
#define TM_SB_OFF_META_BLOCK_SIZE 340
#define TM_SB_OFF_META_NR_BLOCKS 344
#define TM_SB_OFF_COMPAT	352
#define TM_SB_OFF_COMPAT_RO	356
#define TM_SB_OFF_INCOMPAT	360
#define TM_SB_SIZE		364
#define TM_SM_ROOT_AREA		128

/* Btree node header. */
#define TM_NODE_INTERNAL	1u
#define TM_NODE_LEAF		2u
#define TM_NODE_HEADER_SIZE	32u
#define TM_NODE_OFF_FLAGS	4
#define TM_NODE_OFF_BLOCKNR	8
#define TM_NODE_OFF_NR_ENTRIES	16
#define TM_NODE_OFF_MAX_ENTRIES	20
#define TM_NODE_OFF_VALUE_SIZE	24

/* Value sizes of the trees. */
#define TM_VSIZE_REFCOUNT	4u	/* overflow ref-count tree */
#define TM_VSIZE_U64		8u	/* internal, mapping, top-level */
#define TM_VSIZE_INDEX		16u	/* data-sm index tree */
#define TM_VSIZE_DETAILS	24u	/* device details */

/* Space maps. */
#define TM_BITMAP_HEADER_SIZE	16u
#define TM_ENTRIES_PER_BITMAP	16320u	/* (4096 - 16) * 4 */
#define TM_META_INDEX_ENTRIES	255u
#define TM_INDEX_ENTRY_SIZE	16u
#define TM_MAX_METADATA_BLOCKS	(255ull * 16320ull)

/* Mapping values: 40-bit data block, 24-bit time. */
#define TM_TIME_BITS		24
#define TM_TIME_MASK		0xffffffull
#define TM_MAX_DATA_BLOCK	((1ull << 40) - 1)

/* Data block size bounds (sectors). */
#define TM_DATA_BLOCK_SIZE_MIN	128u
#define TM_DATA_BLOCK_SIZE_MAX	2097152u

/* Device id: 24 bits in the kernel's message interface. */
#define TM_MAX_DEV_ID		((1ull << 24) - 1)

static inline uint16_t tm_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t tm_le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t tm_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline void tm_put_le32(void *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	memcpy(p, &v, 4);
}

static inline void tm_put_le64(void *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, 8);
}

static inline uint64_t tm_bt_pack(uint64_t data_block, uint32_t time)
{
	return (data_block << TM_TIME_BITS) | (time & TM_TIME_MASK);
}

static inline uint64_t tm_bt_block(uint64_t v) { return v >> TM_TIME_BITS; }
static inline uint32_t tm_bt_time(uint64_t v) { return (uint32_t)(v & TM_TIME_MASK); }

/* max_entries of a new node for a value size (a multiple of 3). */
static inline uint32_t tm_node_max_entries(uint32_t value_size)
{
	uint32_t n = (TM_BLOCK_SIZE - TM_NODE_HEADER_SIZE) / (8 + value_size);
	return (n / 3) * 3;
}

#endif
