/*
 * fields.h - the on-disk structures described once, as field tables.
 *
 * One table per structure (superblock, space-map root, btree node header,
 * index entry, bitmap header, metadata index block header, device details,
 * mapping value, ref count): each field's name, byte offset, size, type and
 * what it points to.  Browsers decode and mark blocks from these tables,
 * checkers and fuzzers can walk them; nobody else needs to repeat an
 * offset.  The tables agree with format.h (a unit test holds them to it).
 *
 * tm_block_field_at() says which field of a whole block covers a byte:
 * header fields, then array slots (node keys and values, index entries,
 * bitmap entries), named like "values[3].mapped_blocks".
 */
#ifndef THINMETA_FIELDS_H
#define THINMETA_FIELDS_H

#include <stddef.h>
#include <stdint.h>

enum tm_ftype {
	TM_FT_U32,		/* little-endian u32 */
	TM_FT_U64,		/* little-endian u64 (maybe a bit field of it) */
	TM_FT_BYTES,		/* opaque bytes (uuid, padding) */
	TM_FT_STRUCT,		/* a nested structure: see sub */
};

/* What a field's value names. */
enum tm_fref {
	TM_REF_NONE = 0,
	TM_REF_SUPERBLOCK,	/* a superblock copy (held_root) */
	TM_REF_TOP_ROOT,	/* root of the mapping tree's top level */
	TM_REF_DETAILS_ROOT,	/* root of the device details tree */
	TM_REF_META_INDEX,	/* the metadata space map's index block */
	TM_REF_DATA_INDEX_ROOT,	/* root of the data space map's index tree */
	TM_REF_META_REFCOUNT,	/* root of the metadata overflow (ref-count) tree */
	TM_REF_DATA_REFCOUNT,	/* root of the data overflow (ref-count) tree */
	TM_REF_BITMAP,		/* a space-map bitmap block */
	TM_REF_CHILD,		/* a child node of the same tree */
	TM_REF_BOTTOM_ROOT,	/* root of one device's mapping tree */
	TM_REF_DATA_BLOCK,	/* a data block (not a metadata block) */
	TM_REF_SELF,		/* the block's own location */
	TM_REF__COUNT
};

struct tm_struct;

struct tm_field {
	const char *name;
	uint16_t offset;	/* bytes from the structure's start */
	uint16_t size;		/* bytes */
	enum tm_ftype type;
	uint8_t shift, bits;	/* a bit field of a u64: (v >> shift) & mask(bits); bits 0 = whole */
	enum tm_fref ref;
	const struct tm_struct *sub;	/* TM_FT_STRUCT */
	const char *doc;	/* one line: what the field means */
};

struct tm_struct {
	const char *name;
	uint16_t size;		/* bytes the structure occupies */
	const struct tm_field *fields;
	unsigned nr_fields;
};

extern const struct tm_struct tm_struct_superblock;
extern const struct tm_struct tm_struct_sm_root;
extern const struct tm_struct tm_struct_node_header;
extern const struct tm_struct tm_struct_index_entry;
extern const struct tm_struct tm_struct_bitmap_header;
extern const struct tm_struct tm_struct_index_block_header;
extern const struct tm_struct tm_struct_device_details;
extern const struct tm_struct tm_struct_mapping_value;	/* bottom-level leaf value */
extern const struct tm_struct tm_struct_block_value;	/* u64 child block (internal nodes) */
extern const struct tm_struct tm_struct_dev_root;	/* top-level leaf value: a device's root */
extern const struct tm_struct tm_struct_ref_count;	/* overflow tree value (u32) */

/* The value of a numeric field of the structure at @base (BYTES/STRUCT: 0). */
uint64_t tm_field_get(const struct tm_field *f, const void *base);

/* The field named @name ("data_space_map_root.nr_blocks" reaches into subs). */
const struct tm_field *tm_struct_find(const struct tm_struct *s, const char *name,
				      uint32_t *offset);

/* A short name (at most 18 characters) of what a reference points to. */
const char *tm_fref_name(enum tm_fref ref);

/* Block kinds a field map can be drawn for. */
enum tm_layout {
	TM_LAYOUT_UNKNOWN = 0,
	TM_LAYOUT_SUPERBLOCK,
	TM_LAYOUT_NODE,
	TM_LAYOUT_BITMAP,
	TM_LAYOUT_INDEX,		/* the metadata space map's index block */
};

const char *tm_layout_name(enum tm_layout k);

/* Where a byte of a block lies. */
struct tm_field_loc {
	char name[64];		/* "keys[3]", "values[3].mapped_blocks", "entries[64..67]" */
	uint32_t offset;	/* block offset of the field's first byte */
	uint32_t size;
	const struct tm_field *field;	/* the innermost table entry, NULL for array slots of plain u64 keys / bitmap bytes */
	const struct tm_struct *st;	/* the structure holding it (NULL with field) */
	uint32_t st_offset;	/* block offset of that structure's instance */
	int in_use;		/* 0: a slot past nr_entries, or an unused index entry */
	int slot;		/* array index, -1 for header fields */
};

/*
 * Which field of @buf, a whole block of kind @kind, covers byte @off.
 * For a node, @vstruct is the structure of one value (NULL: chosen by the
 * node's value_size).  Header values are not trusted: array bounds are
 * clipped to the block.  0, or -ENODATA for a byte no field covers
 * (padding, the unused tail of a superblock or node).
 */
int tm_block_field_at(enum tm_layout kind, const void *buf,
		      const struct tm_struct *vstruct, uint32_t off,
		      struct tm_field_loc *out);

/* The value structure a node's value_size suggests (NULL if none). */
const struct tm_struct *tm_node_value_struct(uint32_t value_size, int is_leaf);

#endif
