/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every metadata block.
 *
 * tm_crc32c() updates a raw CRC register: no inversion at either end.  The
 * metadata checksum is tm_crc32c(0xffffffff, block + 4, 4092) ^ salt.
 * SSE4.2 is used when the CPU has it (chosen once, at first call).
 */
#ifndef THINMETA_CRC32C_H
#define THINMETA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t tm_crc32c(uint32_t reg, const void *buf, size_t len);
/* tm_crc32c() of three buffers of @len bytes each, interleaved (faster). */
void tm_crc32c_x3(uint32_t reg, const void *a, const void *b, const void *c, size_t len,
		  uint32_t out[3]);

/* The portable and the hardware path, for tests. */
uint32_t tm_crc32c_sw(uint32_t reg, const void *buf, size_t len);
uint32_t tm_crc32c_hw(uint32_t reg, const void *buf, size_t len);
int tm_crc32c_have_hw(void);

#endif
