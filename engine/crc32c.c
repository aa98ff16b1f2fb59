/*
 * crc32c.c - CRC-32C with the SSE4.2 instruction where the CPU has it and
 * a slicing-by-8 table otherwise.  Both update a raw register (no pre- or
 * post-inversion); see include/thinmeta/crc32c.h.
 */
#include <string.h>

#include "thinmeta/crc32c.h"

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static int table_ready;

static void build_table(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1)));
		table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
	table_ready = 1;
}

uint32_t tm_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!table_ready)
		build_table();
	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
uint32_t tm_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

/* Three streams at once: the instruction's latency (3 cycles) is hidden. */
__attribute__((target("sse4.2")))
static void crc32c_hw_x3(uint32_t reg, const void *a, const void *b, const void *c,
			 size_t len, uint32_t out[3])
{
	const uint8_t *p[3] = { a, b, c };
	uint64_t r0 = reg, r1 = reg, r2 = reg;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w0, w1, w2;
		memcpy(&w0, p[0] + i, 8);
		memcpy(&w1, p[1] + i, 8);
		memcpy(&w2, p[2] + i, 8);
		r0 = __builtin_ia32_crc32di(r0, w0);
		r1 = __builtin_ia32_crc32di(r1, w1);
		r2 = __builtin_ia32_crc32di(r2, w2);
	}
	for (; i < len; i++) {
		r0 = __builtin_ia32_crc32qi((uint32_t)r0, p[0][i]);
		r1 = __builtin_ia32_crc32qi((uint32_t)r1, p[1][i]);
		r2 = __builtin_ia32_crc32qi((uint32_t)r2, p[2][i]);
	}
	out[0] = (uint32_t)r0;
	out[1] = (uint32_t)r1;
	out[2] = (uint32_t)r2;
}

int tm_crc32c_have_hw(void)
{
	static int have = -1;	/* readers' threads ask too */
	int h = __atomic_load_n(&have, __ATOMIC_RELAXED);

	if (h < 0) {
		__builtin_cpu_init();
		h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&have, h, __ATOMIC_RELAXED);
	}
	return h;
}
#else
uint32_t tm_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return tm_crc32c_sw(crc, buf, len);
}

static void crc32c_hw_x3(uint32_t reg, const void *a, const void *b, const void *c,
			 size_t len, uint32_t out[3])
{
	out[0] = tm_crc32c_sw(reg, a, len);
	out[1] = tm_crc32c_sw(reg, b, len);
	out[2] = tm_crc32c_sw(reg, c, len);
}

int tm_crc32c_have_hw(void)
{
	return 0;
}
#endif

uint32_t tm_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (tm_crc32c_have_hw())
		return tm_crc32c_hw(crc, buf, len);
	return tm_crc32c_sw(crc, buf, len);
}

void tm_crc32c_x3(uint32_t reg, const void *a, const void *b, const void *c, size_t len,
		  uint32_t out[3])
{
	if (tm_crc32c_have_hw()) {
		crc32c_hw_x3(reg, a, b, c, len, out);
		return;
	}
	out[0] = tm_crc32c_sw(reg, a, len);
	out[1] = tm_crc32c_sw(reg, b, len);
	out[2] = tm_crc32c_sw(reg, c, len);
}
