/*
 * unpack.c - fz_unpack IN OUT: write the metadata image a fuzz_image input
 * (the container of fuzz.h) describes, sealed as the target sees it, to
 * the file OUT (sparse), so that a crash can be replayed through the tools
 * themselves (thin_check OUT, thin_dump OUT, thin_explore OUT).  Also
 * prints the header's dump options.  Built by `make fuzz-unpack`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "thinmeta/format.h"

int main(int argc, char **argv)
{
	static uint8_t in[1 << 22];
	struct fz_image img;
	size_t len;
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: fz_unpack INPUT IMAGE\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	len = fread(in, 1, sizeof(in), f);
	fclose(f);
	if (fz_image_parse(in, len, &img)) {
		fprintf(stderr, "%s: not an image container (shorter than its header)\n", argv[1]);
		return 1;
	}
	f = fopen(argv[2], "wb");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	for (size_t i = 0; i < img.nr; i++)
		if (fseeko(f, (off_t)img.blocks[i] * TM_BLOCK_SIZE, SEEK_SET) ||
		    fwrite(img.data + i * TM_BLOCK_SIZE, TM_BLOCK_SIZE, 1, f) != 1) {
			perror(argv[2]);
			return 1;
		}
	if (fflush(f) || ftruncate(fileno(f), (off_t)img.nr_blocks * TM_BLOCK_SIZE) || fclose(f)) {
		perror(argv[2]);
		return 1;
	}
	printf("%" PRIu64 " blocks, %zu present; flags 0x%02x, cache %u, param %" PRIu64 " (0x%" PRIx64 ")\n",
	       img.nr_blocks, img.nr, img.flags, img.cache, img.param, img.param);
	fz_image_free(&img);
	return 0;
}
