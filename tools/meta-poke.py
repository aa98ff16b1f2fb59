#!/usr/bin/env python3
"""meta-poke.py - inspect and deliberately damage dm-thin metadata images (tests only).

  meta-poke.py sb IMG [--at BLOCK]      superblock fields as key=value lines
                                        (--at: read a superblock copy, e.g. the
                                        held metadata snapshot)
  meta-poke.py leaves IMG [--snap]      one line per thin: "DEV_ID LEAF LEAF ...",
                                        the bottom-level mapping leaves in key
                                        order (--snap: trees of the held snapshot)
  meta-poke.py flip IMG BLOCK OFFSET [--fix-csum]
                                        xor the byte at OFFSET of metadata block
                                        BLOCK with 0xff, in place; --fix-csum
                                        reseals the block's checksum so that the
                                        damage is semantic, not a bad checksum
  meta-poke.py set IMG BLOCK OFFSET WIDTH VALUE [--fix-csum]
                                        store VALUE as a little-endian integer of
                                        WIDTH bytes (1, 2, 4, 8) at OFFSET of BLOCK,
                                        in place (e.g. needs_check: set IMG 0 4 4 1
                                        --fix-csum)
  meta-poke.py zero IMG BLOCK [--bytes N]
                                        zero the first N bytes (default 4096) of
                                        BLOCK, in place

Blocks are 4096 bytes. Checksum: crc32c (Castagnoli), register seeded with
0xffffffff, no final inversion, over bytes 4..4095, xor a per-type salt
(superblock 160774, btree node 121107). Btree node header: csum u32 @0,
flags u32 @4 (1 internal, 2 leaf), blocknr u64 @8, nr_entries u32 @16,
max_entries u32 @20, value_size u32 @24; keys (u64) from @32, values after
max_entries keys. Python 3 standard library only.
"""

import argparse
import struct
import sys

from thinfmt import BLOCK, SALT_NODE, SALT_SB, crc_register

MAGIC = 27022010


class Image:
    def __init__(self, path, writable=False):
        self.f = open(path, 'r+b' if writable else 'rb')

    def block(self, nr):
        self.f.seek(nr * BLOCK)
        data = self.f.read(BLOCK)
        if len(data) != BLOCK:
            sys.exit('meta-poke: block %d is beyond the end of the image' % nr)
        return bytearray(data)

    def write(self, nr, data):
        self.f.seek(nr * BLOCK)
        self.f.write(data)


def superblock(img, at=0):
    b = img.block(at)
    (csum, flags, blocknr) = struct.unpack_from('<IIQ', b, 0)
    (magic, version, time, trans, snap) = struct.unpack_from('<QIIQQ', b, 32)
    (data_nr_blocks, data_nr_alloc) = struct.unpack_from('<QQ', b, 64)
    (meta_nr_blocks, meta_nr_alloc) = struct.unpack_from('<QQ', b, 192)
    (mroot, droot, dbs, mbs, nr_meta) = struct.unpack_from('<QQIIQ', b, 320)
    return dict(csum_ok=int(csum == crc_register(b[4:]) ^ SALT_SB), flags=flags,
                blocknr=blocknr, magic=magic, version=version, time=time,
                transaction=trans, metadata_snap=snap, data_nr_blocks=data_nr_blocks,
                data_nr_allocated=data_nr_alloc, meta_sm_nr_blocks=meta_nr_blocks,
                meta_sm_nr_allocated=meta_nr_alloc, mapping_root=mroot, details_root=droot,
                data_block_size=dbs, metadata_block_size=mbs, nr_metadata_blocks=nr_meta)


def node(img, nr):
    b = img.block(nr)
    flags, _, nr_entries, max_entries, vsize = struct.unpack_from('<IQIII', b, 4)
    keys = struct.unpack_from('<%dQ' % nr_entries, b, 32)
    voff = 32 + 8 * max_entries
    if vsize == 8:
        vals = struct.unpack_from('<%dQ' % nr_entries, b, voff)
    else:
        vals = [bytes(b[voff + i * vsize:voff + (i + 1) * vsize]) for i in range(nr_entries)]
    return flags, keys, vals


def tree_leaves(img, root):
    """Leaf blocks of one btree, in key order."""
    out = []
    stack = [root]
    while stack:
        nr = stack.pop()
        flags, _, vals = node(img, nr)
        if flags & 1:
            stack.extend(reversed(vals))
        else:
            out.append(nr)
    return out


def device_roots(img, mapping_root):
    """(dev_id, bottom-level root) pairs of the top-level mapping tree."""
    pairs = []
    for leaf in tree_leaves(img, mapping_root):
        _, keys, vals = node(img, leaf)
        pairs.extend(zip(keys, vals))
    return pairs


def reseal(data, salt):
    struct.pack_into('<I', data, 0, crc_register(data[4:]) ^ salt)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('sb')
    p.add_argument('img')
    p.add_argument('--at', type=int, default=0)
    p = sub.add_parser('leaves')
    p.add_argument('img')
    p.add_argument('--snap', action='store_true')
    p = sub.add_parser('flip')
    p.add_argument('img')
    p.add_argument('block', type=int)
    p.add_argument('offset', type=int)
    p.add_argument('--fix-csum', action='store_true')
    p = sub.add_parser('set')
    p.add_argument('img')
    p.add_argument('block', type=int)
    p.add_argument('offset', type=int)
    p.add_argument('width', type=int, choices=(1, 2, 4, 8))
    p.add_argument('value', type=int)
    p.add_argument('--fix-csum', action='store_true')
    p = sub.add_parser('zero')
    p.add_argument('img')
    p.add_argument('block', type=int)
    p.add_argument('--bytes', type=int, default=BLOCK)
    a = ap.parse_args(argv)

    if a.cmd == 'sb':
        img = Image(a.img)
        for k, v in superblock(img, a.at).items():
            print('%s=%d' % (k, v))
    elif a.cmd == 'leaves':
        img = Image(a.img)
        sb = superblock(img)
        if a.snap:
            if not sb['metadata_snap']:
                sys.exit('meta-poke: no metadata snapshot held')
            sb = superblock(img, sb['metadata_snap'])
        for dev, root in device_roots(img, sb['mapping_root']):
            print(' '.join(str(x) for x in [dev] + tree_leaves(img, root)))
    elif a.cmd == 'flip':
        if not 0 <= a.offset < BLOCK:
            sys.exit('meta-poke: offset must be within the block')
        img = Image(a.img, writable=True)
        data = img.block(a.block)
        data[a.offset] ^= 0xFF
        if a.fix_csum:
            reseal(data, SALT_SB if a.block == 0 else SALT_NODE)
        img.write(a.block, data)
    elif a.cmd == 'set':
        if not 0 <= a.offset <= BLOCK - a.width:
            sys.exit('meta-poke: the field must be within the block')
        if not 0 <= a.value < 1 << (8 * a.width):
            sys.exit('meta-poke: value does not fit in %d bytes' % a.width)
        img = Image(a.img, writable=True)
        data = img.block(a.block)
        data[a.offset:a.offset + a.width] = a.value.to_bytes(a.width, 'little')
        if a.fix_csum:
            reseal(data, SALT_SB if a.block == 0 else SALT_NODE)
        img.write(a.block, data)
    elif a.cmd == 'zero':
        if not 0 < a.bytes <= BLOCK:
            sys.exit('meta-poke: --bytes must be within 1..4096')
        img = Image(a.img, writable=True)
        data = img.block(a.block)
        data[:a.bytes] = bytes(a.bytes)
        img.write(a.block, data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
