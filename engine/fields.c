/*
 * fields.c - field tables of the on-disk structures (fields.h), and the
 * map from a byte of a block to the field that holds it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "thinmeta/fields.h"
#include "thinmeta/format.h"

#define NR(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* The tables */

static const struct tm_field sm_root_fields[] = {
	{ "nr_blocks", 0, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "number of blocks the space map tracks" },
	{ "nr_allocated", 8, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "blocks with a reference count above zero" },
	{ "bitmap_root", 16, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "metadata: the index block; data: root of the index tree" },
	{ "ref_count_root", 24, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "root of the overflow tree of counts >= 3" },
};
const struct tm_struct tm_struct_sm_root = {
	"space map root", 32, sm_root_fields, NR(sm_root_fields)
};

/* The two roots differ only in what their pointers name. */
static const struct tm_field data_sm_root_fields[] = {
	{ "nr_blocks", 0, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "number of data blocks the pool has" },
	{ "nr_allocated", 8, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "data blocks with a reference count above zero" },
	{ "bitmap_root", 16, 8, TM_FT_U64, 0, 0, TM_REF_DATA_INDEX_ROOT, NULL,
	  "root of the data space map's index tree (bitmap i -> index entry)" },
	{ "ref_count_root", 24, 8, TM_FT_U64, 0, 0, TM_REF_DATA_REFCOUNT, NULL,
	  "root of the data overflow tree (counts >= 3)" },
};
static const struct tm_struct data_sm_root = {
	"data space map root", 32, data_sm_root_fields, NR(data_sm_root_fields)
};

static const struct tm_field meta_sm_root_fields[] = {
	{ "nr_blocks", 0, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "number of metadata blocks the space map tracks" },
	{ "nr_allocated", 8, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "metadata blocks in use" },
	{ "bitmap_root", 16, 8, TM_FT_U64, 0, 0, TM_REF_META_INDEX, NULL,
	  "the metadata space map's index block (255 index entries)" },
	{ "ref_count_root", 24, 8, TM_FT_U64, 0, 0, TM_REF_META_REFCOUNT, NULL,
	  "root of the metadata overflow tree (counts >= 3)" },
};
static const struct tm_struct meta_sm_root = {
	"metadata space map root", 32, meta_sm_root_fields, NR(meta_sm_root_fields)
};

static const struct tm_field sb_fields[] = {
	{ "csum", TM_SB_OFF_CSUM, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "CRC-32C of bytes 4..4095 xor 160774" },
	{ "flags", TM_SB_OFF_FLAGS, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "bit 0: NEEDS_CHECK (the kernel refuses write mode until checked)" },
	{ "blocknr", TM_SB_OFF_BLOCKNR, 8, TM_FT_U64, 0, 0, TM_REF_SELF, NULL,
	  "this block's own location (0; a held snapshot copy: its block)" },
	{ "uuid", TM_SB_OFF_UUID, 16, TM_FT_BYTES, 0, 0, TM_REF_NONE, NULL,
	  "not interpreted; the kernel writes zeroes" },
	{ "magic", TM_SB_OFF_MAGIC, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "27022010" },
	{ "version", TM_SB_OFF_VERSION, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "format version, 1 or 2" },
	{ "time", TM_SB_OFF_TIME, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "snapshot time counter, stamped into new mappings" },
	{ "trans_id", TM_SB_OFF_TRANS_ID, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "transaction id set by userspace (lvm)" },
	{ "held_root", TM_SB_OFF_HELD_ROOT, 8, TM_FT_U64, 0, 0, TM_REF_SUPERBLOCK, NULL,
	  "the held metadata snapshot's superblock copy, 0 = none" },
	{ "data_space_map_root", TM_SB_OFF_DATA_SM, TM_SM_ROOT_AREA, TM_FT_STRUCT, 0, 0,
	  TM_REF_NONE, &data_sm_root, "root of the data space map (32 bytes used)" },
	{ "metadata_space_map_root", TM_SB_OFF_META_SM, TM_SM_ROOT_AREA, TM_FT_STRUCT, 0, 0,
	  TM_REF_NONE, &meta_sm_root, "root of the metadata space map (32 bytes used)" },
	{ "data_mapping_root", TM_SB_OFF_MAPPING_ROOT, 8, TM_FT_U64, 0, 0, TM_REF_TOP_ROOT, NULL,
	  "root of the mapping tree's top level (device id -> device root)" },
	{ "device_details_root", TM_SB_OFF_DETAILS_ROOT, 8, TM_FT_U64, 0, 0,
	  TM_REF_DETAILS_ROOT, NULL, "root of the device details tree" },
	{ "data_block_size", TM_SB_OFF_DATA_BLOCK_SIZE, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "data block size in 512-byte sectors" },
	{ "metadata_block_size", TM_SB_OFF_META_BLOCK_SIZE, 4, TM_FT_U32, 0, 0, TM_REF_NONE,
	  NULL, "metadata block size in sectors, always 8" },
	{ "metadata_nr_blocks", TM_SB_OFF_META_NR_BLOCKS, 8, TM_FT_U64, 0, 0, TM_REF_NONE,
	  NULL, "metadata blocks at format time" },
	{ "compat_flags", TM_SB_OFF_COMPAT, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "compatible features (none defined)" },
	{ "compat_ro_flags", TM_SB_OFF_COMPAT_RO, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "read-only compatible features (none defined)" },
	{ "incompat_flags", TM_SB_OFF_INCOMPAT, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "incompatible features (none defined)" },
};
const struct tm_struct tm_struct_superblock = {
	"superblock", TM_SB_SIZE, sb_fields, NR(sb_fields)
};

static const struct tm_field node_header_fields[] = {
	{ "csum", 0, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "CRC-32C of bytes 4..4095 xor 121107" },
	{ "flags", TM_NODE_OFF_FLAGS, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "1 = internal, 2 = leaf" },
	{ "blocknr", TM_NODE_OFF_BLOCKNR, 8, TM_FT_U64, 0, 0, TM_REF_SELF, NULL,
	  "this block's own location" },
	{ "nr_entries", TM_NODE_OFF_NR_ENTRIES, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "entries in use" },
	{ "max_entries", TM_NODE_OFF_MAX_ENTRIES, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "key slots; values start after max_entries keys" },
	{ "value_size", TM_NODE_OFF_VALUE_SIZE, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "bytes per value: 8 internal/mapping/top level, 24 details, 16 index, 4 ref count" },
	{ "padding", 28, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL, "unused" },
};
const struct tm_struct tm_struct_node_header = {
	"btree node header", TM_NODE_HEADER_SIZE, node_header_fields, NR(node_header_fields)
};

static const struct tm_field index_entry_fields[] = {
	{ "blocknr", 0, 8, TM_FT_U64, 0, 0, TM_REF_BITMAP, NULL,
	  "the bitmap block" },
	{ "nr_free", 8, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "free entries in the bitmap (a hint)" },
	{ "none_free_before", 12, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "no free entry below this one (a hint)" },
};
const struct tm_struct tm_struct_index_entry = {
	"index entry", TM_INDEX_ENTRY_SIZE, index_entry_fields, NR(index_entry_fields)
};

static const struct tm_field bitmap_header_fields[] = {
	{ "csum", 0, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "CRC-32C of bytes 4..4095 xor 240779" },
	{ "not_used", 4, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL, "unused" },
	{ "blocknr", 8, 8, TM_FT_U64, 0, 0, TM_REF_SELF, NULL, "this block's own location" },
};
const struct tm_struct tm_struct_bitmap_header = {
	"bitmap header", TM_BITMAP_HEADER_SIZE, bitmap_header_fields, NR(bitmap_header_fields)
};

static const struct tm_field index_block_header_fields[] = {
	{ "csum", 0, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "CRC-32C of bytes 4..4095 xor 160478" },
	{ "padding", 4, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL, "unused" },
	{ "blocknr", 8, 8, TM_FT_U64, 0, 0, TM_REF_SELF, NULL, "this block's own location" },
};
const struct tm_struct tm_struct_index_block_header = {
	"metadata index block header", 16, index_block_header_fields,
	NR(index_block_header_fields)
};

static const struct tm_field details_fields[] = {
	{ "mapped_blocks", 0, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "mappings in the device's tree" },
	{ "transaction_id", 8, 8, TM_FT_U64, 0, 0, TM_REF_NONE, NULL,
	  "pool transaction id when the device was created" },
	{ "creation_time", 16, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "pool time at creation" },
	{ "snapshotted_time", 20, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL,
	  "pool time when last snapshotted" },
};
const struct tm_struct tm_struct_device_details = {
	"device details", TM_VSIZE_DETAILS, details_fields, NR(details_fields)
};

static const struct tm_field mapping_fields[] = {
	{ "data_block", 0, 8, TM_FT_U64, TM_TIME_BITS, 40, TM_REF_DATA_BLOCK, NULL,
	  "the data block (bits 24..63)" },
	{ "time", 0, 8, TM_FT_U64, 0, TM_TIME_BITS, TM_REF_NONE, NULL,
	  "pool time when the mapping was written (bits 0..23)" },
};
const struct tm_struct tm_struct_mapping_value = {
	"mapping", 8, mapping_fields, NR(mapping_fields)
};

static const struct tm_field block_value_fields[] = {
	{ "block", 0, 8, TM_FT_U64, 0, 0, TM_REF_CHILD, NULL, "a child node" },
};
const struct tm_struct tm_struct_block_value = {
	"child", 8, block_value_fields, NR(block_value_fields)
};

static const struct tm_field dev_root_fields[] = {
	{ "root", 0, 8, TM_FT_U64, 0, 0, TM_REF_BOTTOM_ROOT, NULL,
	  "root of the device's mapping tree" },
};
const struct tm_struct tm_struct_dev_root = {
	"device root", 8, dev_root_fields, NR(dev_root_fields)
};

static const struct tm_field ref_count_fields[] = {
	{ "count", 0, 4, TM_FT_U32, 0, 0, TM_REF_NONE, NULL, "the block's reference count" },
};
const struct tm_struct tm_struct_ref_count = {
	"ref count", 4, ref_count_fields, NR(ref_count_fields)
};

/* ------------------------------------------------------------------ */

uint64_t tm_field_get(const struct tm_field *f, const void *base)
{
	const uint8_t *p = (const uint8_t *)base + f->offset;
	uint64_t v;

	switch (f->type) {
	case TM_FT_U32:
		v = tm_le32(p);
		break;
	case TM_FT_U64:
		v = tm_le64(p);
		break;
	default:
		return 0;
	}
	if (f->bits) {
		v >>= f->shift;
		if (f->bits < 64)
			v &= (1ull << f->bits) - 1;
	}
	return v;
}

const struct tm_field *tm_struct_find(const struct tm_struct *s, const char *name,
				      uint32_t *offset)
{
	uint32_t base = 0;

	while (s) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);
		const struct tm_field *hit = NULL;

		for (unsigned i = 0; i < s->nr_fields; i++)
			if (strlen(s->fields[i].name) == len &&
			    !strncmp(s->fields[i].name, name, len)) {
				hit = &s->fields[i];
				break;
			}
		if (!hit)
			return NULL;
		if (!dot) {
			if (offset)
				*offset = base + hit->offset;
			return hit;
		}
		if (hit->type != TM_FT_STRUCT)
			return NULL;
		base += hit->offset;
		s = hit->sub;
		name = dot + 1;
	}
	return NULL;
}

const char *tm_fref_name(enum tm_fref ref)
{
	static const char *const names[TM_REF__COUNT] = {
		[TM_REF_NONE] = "",
		[TM_REF_SUPERBLOCK] = "superblock copy",
		[TM_REF_TOP_ROOT] = "mapping tree top",
		[TM_REF_DETAILS_ROOT] = "details tree",
		[TM_REF_META_INDEX] = "meta index block",
		[TM_REF_DATA_INDEX_ROOT] = "data index tree",
		[TM_REF_META_REFCOUNT] = "meta overflow tree",
		[TM_REF_DATA_REFCOUNT] = "data overflow tree",
		[TM_REF_BITMAP] = "bitmap",
		[TM_REF_CHILD] = "child node",
		[TM_REF_BOTTOM_ROOT] = "device tree",
		[TM_REF_DATA_BLOCK] = "data block",
		[TM_REF_SELF] = "itself",
	};
	if ((unsigned)ref >= TM_REF__COUNT)
		return "";
	return names[ref];
}

const char *tm_layout_name(enum tm_layout k)
{
	switch (k) {
	case TM_LAYOUT_SUPERBLOCK: return "superblock";
	case TM_LAYOUT_NODE: return "btree node";
	case TM_LAYOUT_BITMAP: return "space map bitmap";
	case TM_LAYOUT_INDEX: return "metadata index block";
	default: return "unknown";
	}
}

const struct tm_struct *tm_node_value_struct(uint32_t value_size, int is_leaf)
{
	if (!is_leaf)
		return value_size == 8 ? &tm_struct_block_value : NULL;
	switch (value_size) {
	case 4: return &tm_struct_ref_count;
	case 8: return &tm_struct_mapping_value;
	case TM_INDEX_ENTRY_SIZE: return &tm_struct_index_entry;
	case TM_VSIZE_DETAILS: return &tm_struct_device_details;
	default: return NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Field at a byte */

/* Find the innermost field of @s covering @off (relative to @s). */
static int struct_field_at(const struct tm_struct *s, uint32_t off, char *name,
			   size_t name_len, uint32_t *foff, uint32_t *fsize,
			   const struct tm_field **field, const struct tm_struct **st,
			   uint32_t *st_off)
{
	for (unsigned i = 0; i < s->nr_fields; i++) {
		const struct tm_field *f = &s->fields[i];
		if (off < f->offset || off >= (uint32_t)f->offset + f->size)
			continue;
		size_t used = strlen(name);
		snprintf(name + used, name_len - used, "%s%s", used ? "." : "", f->name);
		if (f->type == TM_FT_STRUCT) {
			uint32_t sub_off;
			if (!struct_field_at(f->sub, off - f->offset, name, name_len,
					     &sub_off, fsize, field, st, st_off)) {
				*foff = f->offset + sub_off;
				*st_off += f->offset;
				return 0;
			}
			/* the unused tail of the sub-structure's area */
			snprintf(name + strlen(name), name_len - strlen(name), ".unused");
			*foff = f->offset + f->sub->size;
			*fsize = f->size - f->sub->size;
			*field = f;
			*st = s;
			*st_off = 0;
			return 0;
		}
		if (f->bits) {
			/* a bit field: the whole word carries the structure's name */
			name[used] = '\0';
			if (!used)
				snprintf(name, name_len, "%s", s->name);
		}
		*foff = f->offset;
		*fsize = f->size;
		*field = f;
		*st = s;
		*st_off = 0;
		return 0;
	}
	return -ENODATA;
}

static void loc_init(struct tm_field_loc *out)
{
	memset(out, 0, sizeof(*out));
	out->in_use = 1;
	out->slot = -1;
}

static int header_at(const struct tm_struct *s, uint32_t off, struct tm_field_loc *out)
{
	uint32_t foff, fsize;
	const struct tm_field *f;

	if (struct_field_at(s, off, out->name, sizeof(out->name), &foff, &fsize, &f,
			    &out->st, &out->st_offset))
		return -ENODATA;
	out->offset = foff;
	out->size = fsize;
	out->field = f;
	return 0;
}

/* Slot @i of an array of @elem-byte @s structures at @base named @array. */
static int array_at(const char *array, uint32_t base, uint32_t elem, uint32_t i,
		    const struct tm_struct *s, uint32_t off, struct tm_field_loc *out)
{
	uint32_t rel = off - base - i * elem, foff, fsize;
	const struct tm_field *f;

	out->slot = (int)i;
	snprintf(out->name, sizeof(out->name), "%s[%u]", array, i);
	if (s && !struct_field_at(s, rel, out->name, sizeof(out->name), &foff, &fsize, &f,
				  &out->st, &out->st_offset)) {
		out->st_offset += base + i * elem;
		out->offset = base + i * elem + foff;
		out->size = fsize;
		out->field = f;
		return 0;
	}
	out->offset = base + i * elem;
	out->size = elem;
	return 0;
}

static int node_at(const uint8_t *p, const struct tm_struct *vs, uint32_t off,
		   struct tm_field_loc *out)
{
	uint32_t flags = tm_le32(p + TM_NODE_OFF_FLAGS);
	uint32_t nr = tm_le32(p + TM_NODE_OFF_NR_ENTRIES);
	uint32_t max = tm_le32(p + TM_NODE_OFF_MAX_ENTRIES);
	uint32_t vsize = tm_le32(p + TM_NODE_OFF_VALUE_SIZE);
	uint64_t keys_end, vals_end;

	if (off < TM_NODE_HEADER_SIZE)
		return header_at(&tm_struct_node_header, off, out);
	/* bound what the header claims by the block */
	if (max > (TM_BLOCK_SIZE - TM_NODE_HEADER_SIZE) / 8)
		max = (TM_BLOCK_SIZE - TM_NODE_HEADER_SIZE) / 8;
	keys_end = TM_NODE_HEADER_SIZE + 8ull * max;
	if (off < keys_end) {
		uint32_t i = (off - TM_NODE_HEADER_SIZE) / 8;
		out->slot = (int)i;
		out->in_use = i < nr;
		snprintf(out->name, sizeof(out->name), "keys[%u]", i);
		out->offset = TM_NODE_HEADER_SIZE + 8 * i;
		out->size = 8;
		return 0;
	}
	if (vsize == 0 || vsize > TM_BLOCK_SIZE)
		return -ENODATA;
	vals_end = keys_end + (uint64_t)vsize * max;
	if (vals_end > TM_BLOCK_SIZE)
		vals_end = TM_BLOCK_SIZE;
	if (off >= vals_end)
		return -ENODATA;
	uint32_t i = (uint32_t)((off - keys_end) / vsize);
	if (keys_end + (uint64_t)(i + 1) * vsize > TM_BLOCK_SIZE)
		return -ENODATA;	/* a partial slot at the end */
	if (!vs)
		vs = tm_node_value_struct(vsize, (flags & TM_NODE_LEAF) != 0);
	if (vs && vs->size != vsize)
		vs = NULL;
	out->in_use = i < nr;
	return array_at("values", (uint32_t)keys_end, vsize, i, vs, off, out);
}

int tm_block_field_at(enum tm_layout kind, const void *buf,
		      const struct tm_struct *vstruct, uint32_t off,
		      struct tm_field_loc *out)
{
	const uint8_t *p = buf;

	loc_init(out);
	if (off >= TM_BLOCK_SIZE)
		return -ENODATA;
	switch (kind) {
	case TM_LAYOUT_SUPERBLOCK:
		return header_at(&tm_struct_superblock, off, out);
	case TM_LAYOUT_NODE:
		return node_at(p, vstruct, off, out);
	case TM_LAYOUT_BITMAP: {
		if (off < TM_BITMAP_HEADER_SIZE)
			return header_at(&tm_struct_bitmap_header, off, out);
		/* a byte holds 4 two-bit entries of a little-endian u64 word */
		uint32_t rel = off - TM_BITMAP_HEADER_SIZE;
		uint32_t first = (rel / 8) * 32 + (rel % 8) * 4;
		out->slot = (int)first;
		snprintf(out->name, sizeof(out->name), "entries[%u..%u]", first, first + 3);
		out->offset = off;
		out->size = 1;
		return 0;
	}
	case TM_LAYOUT_INDEX: {
		if (off < 16)
			return header_at(&tm_struct_index_block_header, off, out);
		uint32_t i = (off - 16) / TM_INDEX_ENTRY_SIZE;
		const uint8_t *e = p + 16 + TM_INDEX_ENTRY_SIZE * i;
		int r = array_at("index", 16, TM_INDEX_ENTRY_SIZE, i, &tm_struct_index_entry,
				 off, out);
		out->in_use = tm_le64(e) != 0;
		return r;
	}
	default:
		return -ENODATA;
	}
}
