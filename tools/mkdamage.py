#!/usr/bin/env python3
"""mkdamage.py - make damaged dm-thin metadata images from clean ones.

  mkdamage.py RECIPE IN OUT     copy IN to OUT and apply RECIPE to OUT
  mkdamage.py --list            the recipes, one per line: NAME  description

One recipe per kind of damage thin_check must find (issue 4).  Each recipe
changes as little as it can: where it changes a reference count it keeps
the space map's hints (index nr_free, none_free_before, the root's
nr_allocated) consistent, so that only the intended finding appears.
Blocks are re-checksummed after an edit unless the damage IS the checksum.
What thin_check is expected to say about each recipe, and what 1.1.0 says,
is in fixtures/damage/recipes (read by tests/cli/t-check-damage.sh).

Recipes find their targets by walking the metadata (they work on images of
any layout: generated and restored by a reference thin_restore, or written
by the kernel); a recipe that needs something the image lacks (a two-level
mapping tree, a held metadata snapshot, a block with a count of 3) fails
with a message and exit status 3.

Python 3 standard library only.
"""

import struct
import sys

from thinfmt import BLOCK, SALT_BITMAP, SALT_INDEX, SALT_NODE, SALT_SB
from thinfmt import ENTRIES_PER_BITMAP as ENTRIES
from thinfmt import crc_register as crc

INTERNAL, LEAF = 1, 2


class Unsuitable(Exception):
    pass


class Node:
    def __init__(self, img, nr):
        b = img.blk(nr)
        self.nr = nr
        self.flags, self.blocknr, self.n, self.max, self.vsize = struct.unpack_from('<IQIII', b, 4)
        self.keys = list(struct.unpack_from('<%dQ' % self.n, b, 32))
        self.voff = 32 + 8 * self.max
        self.vals = [bytes(b[self.voff + i * self.vsize:self.voff + (i + 1) * self.vsize])
                     for i in range(self.n)]

    @property
    def leaf(self):
        return bool(self.flags & LEAF)

    def u64(self, i):
        return struct.unpack('<Q', self.vals[i])[0]


class Image:
    def __init__(self, path):
        with open(path, 'rb') as f:
            self.d = bytearray(f.read())
        self.nr_blocks = len(self.d) // BLOCK
        self.read_sb()

    def save(self, path):
        with open(path, 'r+b') as f:
            f.write(self.d)

    def blk(self, nr):
        if nr >= self.nr_blocks:
            raise Unsuitable('block %d is past the end' % nr)
        return memoryview(self.d)[nr * BLOCK:(nr + 1) * BLOCK]

    def get(self, nr, off, fmt):
        return struct.unpack_from(fmt, self.d, nr * BLOCK + off)[0]

    def put(self, nr, off, fmt, v):
        struct.pack_into(fmt, self.d, nr * BLOCK + off, v)

    def reseal(self, nr, salt):
        b = self.blk(nr)
        struct.pack_into('<I', b, 0, crc(b[4:]) ^ salt)

    # ---- superblock

    def read_sb(self, at=0):
        g = lambda off, fmt: self.get(at, off, fmt)
        s = dict(flags=g(4, '<I'), blocknr=g(8, '<Q'), time=g(44, '<I'),
                 trans=g(48, '<Q'), held=g(56, '<Q'),
                 mapping_root=g(320, '<Q'), details_root=g(328, '<Q'))
        for name, off in (('data', 64), ('meta', 192)):
            s[name] = dict(zip(('nr_blocks', 'nr_allocated', 'bitmap_root', 'ref_count_root'),
                               struct.unpack_from('<QQQQ', self.d, at * BLOCK + off)))
            s[name]['off'] = off
        if at == 0:
            self.sb = s
        return s

    def set_sm_allocated(self, sm, v):
        self.put(0, self.sb[sm]['off'] + 8, '<Q', v)
        self.sb[sm]['nr_allocated'] = v
        self.reseal(0, SALT_SB)

    # ---- btrees

    def node(self, nr):
        return Node(self, nr)

    def walk(self, root):
        """(node, parent, slot) for every node of a tree, depth first."""
        out = []
        stack = [(root, None, None)]
        while stack:
            nr, parent, slot = stack.pop()
            n = self.node(nr)
            out.append((n, parent, slot))
            if not n.leaf:
                for i in reversed(range(n.n)):
                    stack.append((n.u64(i), n, i))
        return out

    def leaves(self, root):
        return [(n, p, s) for (n, p, s) in self.walk(root) if n.leaf]

    def devices(self, sb=None):
        """{dev_id: (root, top_leaf_node, slot)}"""
        sb = sb or self.sb
        d = {}
        for n, _, _ in self.leaves(sb['mapping_root']):
            for i, k in enumerate(n.keys):
                d[k] = (n.u64(i), n, i)
        return d

    def details(self, sb=None):
        """{dev_id: (leaf_node, slot)}"""
        sb = sb or self.sb
        d = {}
        for n, _, _ in self.leaves(sb['details_root']):
            for i, k in enumerate(n.keys):
                d[k] = (n, i)
        return d

    # ---- space maps

    def index(self, sm):
        """[(bitmap_block, nr_free, nfb, where)] where = (block, byte offset, salt)."""
        r = self.sb[sm]
        nbm = (r['nr_blocks'] + ENTRIES - 1) // ENTRIES
        out = []
        if sm == 'meta':
            ib = r['bitmap_root']
            for i in range(nbm):
                off = 16 + 16 * i
                b, nf, nfb = struct.unpack_from('<QII', self.d, ib * BLOCK + off)
                out.append((b, nf, nfb, (ib, off, SALT_INDEX)))
        else:
            for n, _, _ in self.leaves(r['bitmap_root']):
                for i, k in enumerate(n.keys):
                    b, nf, nfb = struct.unpack('<QII', n.vals[i])
                    out.append((b, nf, nfb, (n.nr, n.voff + 16 * i, SALT_NODE)))
        return out

    def bm_get(self, sm, blk):
        ie = self.index(sm)[blk // ENTRIES]
        j = blk % ENTRIES
        w = self.get(ie[0], 16 + 8 * (j // 32), '<Q')
        bit = 2 * (j % 32)
        return ((w >> bit) & 1) << 1 | ((w >> (bit + 1)) & 1)

    def bm_set(self, sm, blk, v, hints=True):
        """Set a bitmap entry; keep nr_free / none_free_before / nr_allocated."""
        ie = self.index(sm)[blk // ENTRIES]
        j = blk % ENTRIES
        old = self.bm_get(sm, blk)
        off = 16 + 8 * (j // 32)
        w = self.get(ie[0], off, '<Q')
        bit = 2 * (j % 32)
        w &= ~(3 << bit)
        w |= ((v >> 1) & 1) << bit | (v & 1) << (bit + 1)
        self.put(ie[0], off, '<Q', w)
        self.reseal(ie[0], SALT_BITMAP)
        if not hints or (old == 0) == (v == 0):
            return
        where_b, where_off, salt = ie[3]
        nf, nfb = ie[1], ie[2]
        if v == 0:
            nf += 1
            nfb = min(nfb, j)
            self.set_sm_allocated(sm, self.sb[sm]['nr_allocated'] - 1)
        else:
            nf -= 1
            if nfb == j:
                nfb = j + 1
            self.set_sm_allocated(sm, self.sb[sm]['nr_allocated'] + 1)
        self.put(where_b, where_off + 8, '<I', nf)
        self.put(where_b, where_off + 12, '<I', nfb)
        self.reseal(where_b, salt)

    def rc_entry(self, sm, blk):
        """(leaf node, slot) of blk's overflow entry, or None."""
        for n, _, _ in self.leaves(self.sb[sm]['ref_count_root']):
            for i, k in enumerate(n.keys):
                if k == blk:
                    return n, i
        return None

    def count(self, sm, blk):
        v = self.bm_get(sm, blk)
        if v < 3:
            return v
        e = self.rc_entry(sm, blk)
        return struct.unpack('<I', e[0].vals[e[1]])[0] if e else None

    def free_block(self, sm, after=1):
        for b in range(after, self.sb[sm]['nr_blocks']):
            if b < self.nr_blocks or sm == 'data':
                if self.bm_get(sm, b) == 0:
                    return b
        raise Unsuitable('no free %s block' % sm)

    def used_data_blocks(self):
        """{data block: [(leaf, slot)]} over the live trees."""
        out = {}
        seen = set()
        for dev, (root, _, _) in sorted(self.devices().items()):
            for n, _, _ in self.leaves(root):
                if n.nr in seen:
                    continue
                seen.add(n.nr)
                for i in range(n.n):
                    out.setdefault(n.u64(i) >> 24, []).append((n, i))
        return out


# ---------------------------------------------------------------- targets

def a_device(img, min_leaves=1, internal=False):
    """(dev_id, root, leaves) of the first device with a tree of that shape."""
    for dev, (root, _, _) in sorted(img.devices().items()):
        lv = img.leaves(root)
        if len(lv) >= min_leaves and (not internal or not img.node(root).leaf):
            if all(n.n for n, _, _ in lv):
                return dev, root, lv
    raise Unsuitable('no device with %d+ leaves%s' % (min_leaves, ' under an internal root' if internal else ''))


def a_leaf(img):
    """A bottom-level leaf that is not its tree's root nor its first leaf."""
    dev, root, lv = a_device(img, 2, True)
    return lv[1]


def flip(img, nr, off=None):
    off = off if off is not None else BLOCK - 1
    img.d[nr * BLOCK + off] ^= 0xA5


# ---------------------------------------------------------------- recipes

RECIPES = {}


def recipe(name, text):
    def reg(f):
        RECIPES[name] = (f, text)
        return f
    return reg


@recipe('none', 'no change (a clean image must pass)')
def r_none(img):
    pass


@recipe('csum-sb', 'bad checksum in the superblock')
def r_csum_sb(img):
    flip(img, 0, 300)


@recipe('csum-bottom-leaf', 'bad checksum in a bottom-level mapping leaf')
def r_csum_leaf(img):
    n, _, _ = a_leaf(img)
    flip(img, n.nr)


@recipe('csum-bottom-internal', 'bad checksum in an internal node of a bottom-level tree')
def r_csum_internal(img):
    dev, root, lv = a_device(img, 2, True)
    flip(img, root)


@recipe('csum-top', 'bad checksum in the top-level mapping tree root')
def r_csum_top(img):
    flip(img, img.sb['mapping_root'])


@recipe('csum-details', 'bad checksum in the device details tree root')
def r_csum_details(img):
    flip(img, img.sb['details_root'])


@recipe('csum-data-index', 'bad checksum in the data space map index tree root')
def r_csum_data_index(img):
    flip(img, img.sb['data']['bitmap_root'])


@recipe('csum-data-rc', 'bad checksum in the data space map ref-count tree root')
def r_csum_data_rc(img):
    flip(img, img.sb['data']['ref_count_root'])


@recipe('csum-meta-rc', 'bad checksum in the metadata space map ref-count tree root')
def r_csum_meta_rc(img):
    flip(img, img.sb['meta']['ref_count_root'])


@recipe('csum-meta-index', 'bad checksum in the metadata space map index block')
def r_csum_meta_index(img):
    flip(img, img.sb['meta']['bitmap_root'])


@recipe('csum-meta-bitmap', 'bad checksum in a metadata space map bitmap')
def r_csum_meta_bitmap(img):
    flip(img, img.index('meta')[0][0])


@recipe('csum-data-bitmap', 'bad checksum in a data space map bitmap')
def r_csum_data_bitmap(img):
    flip(img, img.index('data')[0][0])


@recipe('csum-snap-sb', "bad checksum in the held metadata snapshot's superblock")
def r_csum_snap(img):
    if not img.sb['held']:
        raise Unsuitable('no metadata snapshot held')
    flip(img, img.sb['held'], 300)


@recipe('blocknr-leaf', 'a bottom-level leaf says it is another block (checksum right)')
def r_blocknr_leaf(img):
    n, _, _ = a_leaf(img)
    img.put(n.nr, 8, '<Q', n.nr + 1)
    img.reseal(n.nr, SALT_NODE)


@recipe('blocknr-sb', 'the superblock says it is block 5 (checksum right)')
def r_blocknr_sb(img):
    img.put(0, 8, '<Q', 5)
    img.reseal(0, SALT_SB)


@recipe('keys-order', 'two keys of a bottom-level leaf swapped (checksum right)')
def r_keys_order(img):
    n, _, _ = a_leaf(img)
    if n.n < 2:
        raise Unsuitable('leaf too small')
    img.put(n.nr, 32, '<Q', n.keys[1])
    img.put(n.nr, 40, '<Q', n.keys[0])
    img.reseal(n.nr, SALT_NODE)


@recipe('key-range', "a leaf's first key below the range its parent gives it (checksum right)")
def r_key_range(img):
    n, parent, slot = a_leaf(img)
    lo = parent.keys[slot]
    if lo == 0:
        raise Unsuitable('parent range starts at 0')
    img.put(n.nr, 32, '<Q', lo - 1)
    img.reseal(n.nr, SALT_NODE)


@recipe('nr-entries', 'nr_entries > max_entries in a bottom-level leaf (checksum right)')
def r_nr_entries(img):
    n, _, _ = a_leaf(img)
    img.put(n.nr, 16, '<I', n.max + 1)
    img.reseal(n.nr, SALT_NODE)


@recipe('value-size', 'value_size 4 in a bottom-level leaf (checksum right)')
def r_value_size(img):
    n, _, _ = a_leaf(img)
    img.put(n.nr, 24, '<I', 4)
    img.reseal(n.nr, SALT_NODE)


@recipe('cycle', "an internal node's last child points back at the tree's root (checksum right)")
def r_cycle(img):
    dev, root, lv = a_device(img, 2, True)
    r = img.node(root)
    img.put(root, r.voff + 8 * (r.n - 1), '<Q', root)
    img.reseal(root, SALT_NODE)


@recipe('ptr-range', "an internal node's child points past the end of the metadata (checksum right)")
def r_ptr_range(img):
    dev, root, lv = a_device(img, 2, True)
    r = img.node(root)
    img.put(root, r.voff + 8 * (r.n - 1), '<Q', 1 << 40)
    img.reseal(root, SALT_NODE)


@recipe('sb-root-range', "the superblock's mapping root points past the end of the metadata")
def r_sb_root_range(img):
    img.put(0, 320, '<Q', img.nr_blocks + 1000)
    img.reseal(0, SALT_SB)


@recipe('map-data-range', 'a mapping to a data block past nr_data_blocks (checksum right)')
def r_map_data_range(img):
    n, _, _ = a_leaf(img)
    v = n.u64(0)
    img.put(n.nr, n.voff, '<Q', (img.sb['data']['nr_blocks'] + 7) << 24 | (v & 0xFFFFFF))
    img.reseal(n.nr, SALT_NODE)
    # the data block it mapped is still counted: drop that count
    old = v >> 24
    c = img.count('data', old)
    if c is None or c > 2:
        raise Unsuitable('data block %d has a count of 3 or more' % old)
    img.bm_set('data', old, c - 1)


@recipe('map-time', "a mapping's time later than the superblock's time (checksum right)")
def r_map_time(img):
    n, _, _ = a_leaf(img)
    v = n.u64(0)
    img.put(n.nr, n.voff, '<Q', (v >> 24) << 24 | min(img.sb['time'] + 5, 0xFFFFFF))
    img.reseal(n.nr, SALT_NODE)


@recipe('mapped-blocks', "a device's mapped_blocks one too high (checksum right)")
def r_mapped_blocks(img):
    det = img.details()
    dev = sorted(det)[0]
    n, i = det[dev]
    img.put(n.nr, n.voff + 24 * i, '<Q', struct.unpack_from('<Q', n.vals[i])[0] + 1)
    img.reseal(n.nr, SALT_NODE)


def _drop_last(img, n):
    img.put(n.nr, 16, '<I', n.n - 1)
    img.reseal(n.nr, SALT_NODE)


@recipe('dev-no-mapping', 'the last device removed from the top-level mapping tree only')
def r_dev_no_mapping(img):
    root = img.sb['mapping_root']
    n = img.node(root)
    if not n.leaf or n.n < 1:
        raise Unsuitable('top-level root is not a non-empty leaf')
    _drop_last(img, n)


@recipe('dev-no-details', 'the last device removed from the device details tree only')
def r_dev_no_details(img):
    n = img.node(img.sb['details_root'])
    if not n.leaf or n.n < 1:
        raise Unsuitable('details root is not a non-empty leaf')
    _drop_last(img, n)


@recipe('leak-meta', 'a free metadata block counted 1 (hints kept consistent)')
def r_leak_meta(img):
    img.bm_set('meta', img.free_block('meta'), 1)


@recipe('leak-data', 'a free data block counted 1 (hints kept consistent)')
def r_leak_data(img):
    img.bm_set('data', img.free_block('data', 0), 1)


@recipe('leak-data-2v1', 'a data block mapped once counted 2')
def r_leak_data_2v1(img):
    for b, refs in sorted(img.used_data_blocks().items()):
        if len(refs) == 1 and img.count('data', b) == 1:
            img.bm_set('data', b, 2)
            return
    raise Unsuitable('no data block with a count of 1')


@recipe('leak-meta-2v1', 'a metadata block referenced once counted 2')
def r_leak_meta_2v1(img):
    b = img.sb['details_root']
    if img.count('meta', b) != 1:
        raise Unsuitable('details root count is not 1')
    img.bm_set('meta', b, 2)


@recipe('under-meta', 'a metadata block in use counted 0 (hints kept consistent)')
def r_under_meta(img):
    b = img.sb['details_root']
    if img.count('meta', b) != 1:
        raise Unsuitable('details root count is not 1')
    img.bm_set('meta', b, 0)


@recipe('under-data', 'a data block in use counted 0 (hints kept consistent)')
def r_under_data(img):
    for b, refs in sorted(img.used_data_blocks().items()):
        if img.count('data', b) == 1:
            img.bm_set('data', b, 0)
            return
    raise Unsuitable('no data block with a count of 1')


@recipe('under-data-2v1', 'a data block in two leaves counted 1 (0.9.0 misses this)')
def r_under_data_2v1(img):
    for b, refs in sorted(img.used_data_blocks().items()):
        if img.count('data', b) == 2:
            img.bm_set('data', b, 1)
            return
    raise Unsuitable('no data block with a count of 2')


def _overflowed(img):
    for b, refs in sorted(img.used_data_blocks().items()):
        if img.bm_get('data', b) == 3:
            e = img.rc_entry('data', b)
            if e:
                return b, e
    raise Unsuitable('no data block with a count of 3 or more')


@recipe('rc-low', "a data block's overflow ref count one too low")
def r_rc_low(img):
    b, (n, i) = _overflowed(img)
    v = struct.unpack('<I', n.vals[i])[0]
    img.put(n.nr, n.voff + 4 * i, '<I', v - 1)
    img.reseal(n.nr, SALT_NODE)


@recipe('rc-high', "a data block's overflow ref count one too high (a leak above 3)")
def r_rc_high(img):
    b, (n, i) = _overflowed(img)
    v = struct.unpack('<I', n.vals[i])[0]
    img.put(n.nr, n.voff + 4 * i, '<I', v + 1)
    img.reseal(n.nr, SALT_NODE)


@recipe('index-data-garbage', 'a data space map index entry points at a garbage block')
def r_index_data_garbage(img):
    ie = img.index('data')[0]
    g = img.free_block('meta')
    blk = img.blk(g)
    for k in range(BLOCK):
        blk[k] = (k * 37 + 11) & 0xFF
    where_b, where_off, salt = ie[3]
    img.put(where_b, where_off, '<Q', g)
    img.reseal(where_b, salt)


@recipe('index-meta-range', 'a metadata space map index entry points past the end of the metadata')
def r_index_meta_range(img):
    ib = img.sb['meta']['bitmap_root']
    img.put(ib, 16, '<Q', 1 << 40)
    img.reseal(ib, SALT_INDEX)


@recipe('held-garbage', 'the superblock holds a metadata snapshot at a garbage block')
def r_held_garbage(img):
    g = img.free_block('meta')
    blk = img.blk(g)
    for k in range(BLOCK):
        blk[k] = (k * 53 + 7) & 0xFF
    img.put(0, 56, '<Q', g)
    img.reseal(0, SALT_SB)
    img.bm_set('meta', g, 1)


@recipe('needs-check', 'the needs_check flag set on otherwise clean metadata')
def r_needs_check(img):
    img.put(0, 4, '<I', img.sb['flags'] | 1)
    img.reseal(0, SALT_SB)


@recipe('reserve', 'a metadata snapshot reserved as the kernel does it (clean)')
def r_reserve(img):
    """Kernel __reserve_metadata_snap: copy block 0 to a free block, zero the
    copy's space map roots, +1 on its mapping and details roots, point the
    live superblock's held root at it."""
    if img.sb['held']:
        raise Unsuitable('a metadata snapshot is already held')
    c = img.free_block('meta')
    img.d[c * BLOCK:(c + 1) * BLOCK] = img.d[0:BLOCK]
    img.d[c * BLOCK + 64:c * BLOCK + 320] = bytes(256)
    img.put(c, 8, '<Q', c)
    img.reseal(c, SALT_SB)
    img.bm_set('meta', c, 1)
    for root in (img.sb['mapping_root'], img.sb['details_root']):
        cnt = img.count('meta', root)
        if cnt is None or cnt >= 2:
            raise Unsuitable('root %d is already shared' % root)
        img.bm_set('meta', root, cnt + 1)
    img.put(0, 56, '<Q', c)
    img.reseal(0, SALT_SB)


def main(argv):
    if len(argv) == 2 and argv[1] == '--list':
        for name, (_, text) in RECIPES.items():
            print('%-22s %s' % (name, text))
        return 0
    if len(argv) != 4 or argv[1] not in RECIPES:
        sys.stderr.write('usage: mkdamage.py RECIPE IN OUT | --list\n')
        return 2
    img = Image(argv[2])
    try:
        RECIPES[argv[1]][0](img)
    except Unsuitable as e:
        sys.stderr.write('mkdamage: %s: %s: %s\n' % (argv[1], argv[2], e))
        return 3
    with open(argv[3], 'wb') as f:
        f.write(img.d)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
