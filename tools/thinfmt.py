"""thinfmt.py - what the test scripts in tools/ share about the on-disk
format: the block size, the checksum salts, and CRC-32C as the format uses
it (a block's checksum is crc_register(block[4:]) ^ its type's salt)."""

BLOCK = 4096
SALT_SB = 160774
SALT_NODE = 121107
SALT_BITMAP = 240779
SALT_INDEX = 160478
ENTRIES_PER_BITMAP = 16320

_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc_register(data):
    """CRC-32C register (initial ~0, no final xor) over data."""
    crc = 0xFFFFFFFF
    t = _TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc
