/* metadata_size.c - 1.1.0's metadata size estimate (metadata_size.h). */
#include "thinmeta/format.h"
#include "thinmeta/metadata_size.h"

const char *tm_data_block_bytes_problem(uint64_t bytes)
{
	if (bytes == 0 || (bytes & (TM_DATA_BLOCK_SIZE_MIN_BYTES - 1)))
		return "block size must be a multiple of 64 KiB";
	if (bytes > TM_DATA_BLOCK_SIZE_MAX_BYTES)
		return "maximum block size is 1 GiB";
	return 0;
}

uint64_t tm_metadata_size_estimate(uint64_t nr_data_blocks, uint64_t max_thins)
{
	/* a mapping leaf half full */
	uint64_t per_leaf = tm_node_max_entries(TM_VSIZE_U64) / 2;
	uint64_t leaves = nr_data_blocks / per_leaf + (nr_data_blocks % per_leaf != 0);
	uint64_t blocks = 1 + leaves + max_thins;	/* wraps, as 1.1.0's does */

	if (blocks > TM_MAX_METADATA_BLOCKS)
		blocks = TM_MAX_METADATA_BLOCKS;
	return blocks * TM_BLOCK_SIZE;
}
