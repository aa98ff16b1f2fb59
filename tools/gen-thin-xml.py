#!/usr/bin/env python3
"""gen-thin-xml.py - deterministic thin_dump-style XML for dm-thin pool metadata.

thinmeta's own test-data generator (Python 3 standard library only). The same
arguments always give the same bytes, on any machine and Python 3 version
(only Random.random() is used, never randrange/choice, whose algorithms are
not promised to stay the same).

Pool model
----------
* --devices N origin thins, dev_id 0..N-1, created at time 0 with transaction
  = dev_id; each has --mappings-per-device M mappings written at time 0.
  Mapped extents have geometric lengths of mean --run-length L (L = 1: every
  mapping is a single_mapping) and are separated by unmapped gaps of
  1 + geometric(mean L) blocks, so no two emitted runs could be merged: the
  text is already in thin_dump's canonical run form.
* Origin data blocks come from one allocator that serves the origins in
  small random batches and now and then skips a few blocks.
* --snapshots S snapshots, dev_id N..N+S-1. Snapshot k (1-based) is taken of
  origin (k-1) mod N at pool time k (creation_time = snap_time = k, and the
  origin's snap_time becomes k). The origin's extents are grouped into
  "chunks" of consecutive extents holding at least --share-chunk C mappings
  (default 1: every extent is its own chunk). Per chunk the snapshot either
  still shares the origin's data (probability --share-fraction F; time 0) or
  has rewritten the whole chunk after the snapshot (fresh data, time k).
* --empty-devices E thins with no mapping, dev_id N+S..N+S+E-1, created at
  the superblock time.
* Superblock: time = --time (default S; must be >= S), transaction =
  --transaction (default: number of devices), data_block_size =
  --data-block-size, nr_data_blocks = --nr-data-blocks or the used blocks
  plus 1/8, rounded up to a multiple of 1024.

Dialects
--------
* --dialect 0.9 (default): what thin_dump 0.9.0 prints: flags="0"
  version="2" on the superblock, every device lists all of its mappings, a
  newline after every line.
* --dialect 1.x: what thin_dump 1.x prints: no flags attribute (needs_check
  clear), version="2", no newline after </superblock>, and runs of chunks
  shared by the same set of devices (an origin and some of its snapshots)
  are written once as <def name="K"> (K = 1, 2, ... in document order, all
  defs before the first device) and spliced into each sharing device with
  <ref name="K"/>. Stretches with fewer than --def-min-mappings mappings stay
  inline. With --share-empty the empty devices all <ref> one empty <def>.
  The logical content (mappings per device) is the same in both dialects:
  only the spelling differs.

thin_restore 1.1.0 copies small defs into the devices instead of sharing
their leaves (it depends on the def's size and on what precedes the <ref>);
with --share-chunk of a few hundred mappings or more (e.g. 600) the defs
come back as defs from a 1.1.0 dump of the restored image.
"""

import argparse
import math
import random
import sys


class Rng:
    """Seeded PRNG built on Random.random() only (stable across versions)."""

    def __init__(self, seed):
        self._r = random.Random(seed)
        self.random = self._r.random

    def below(self, n):
        """Uniform integer in [0, n)."""
        v = int(self._r.random() * n)
        return v if v < n else n - 1

    def geometric(self, mean):
        """Integer >= 0 with geometric distribution of the given mean."""
        if mean <= 0:
            return 0
        p = 1.0 / (mean + 1.0)          # success probability
        u = self._r.random()
        return int(math.log(1.0 - u) / math.log(1.0 - p))


class Extent:
    __slots__ = ('origin', 'length', 'data', 'time')

    def __init__(self, origin, length, data=0, time=0):
        self.origin = origin
        self.length = length
        self.data = data
        self.time = time


def origin_layout(rng, n_map, run_len):
    """Extents (origin, length) holding n_map mappings, never adjacent."""
    extents = []
    pos = rng.geometric(run_len)
    left = n_map
    while left > 0:
        ln = min(left, 1 + rng.geometric(run_len - 1.0))
        extents.append(Extent(pos, ln))
        left -= ln
        pos += ln + 1 + rng.geometric(run_len)
    return extents


def allocate_origins(rng, origins):
    """Give every origin extent its data blocks; return the next free block."""
    nxt = 0
    cursor = [0] * len(origins)
    live = [d for d, exts in enumerate(origins) if exts]
    while live:
        k = rng.below(len(live))
        d = live[k]
        exts = origins[d]
        i = cursor[d]
        end = min(len(exts), i + 1 + rng.below(8))
        while i < end:
            if rng.random() < 0.02:
                nxt += 1 + rng.below(16)
            exts[i].data = nxt
            nxt += exts[i].length
            i += 1
        cursor[d] = i
        if i == len(exts):
            live[k] = live[-1]
            live.pop()
    return nxt


def make_chunks(extents, chunk_mappings):
    """Split extent indexes into consecutive chunks of >= chunk_mappings mappings."""
    chunks = []
    start = 0
    total = 0
    for i, e in enumerate(extents):
        total += e.length
        if total >= chunk_mappings:
            chunks.append((start, i + 1))
            start = i + 1
            total = 0
    if start < len(extents):
        chunks.append((start, len(extents)))
    return chunks


class Device:
    def __init__(self, dev_id, trans, ctime, stime):
        self.dev_id = dev_id
        self.trans = trans
        self.ctime = ctime
        self.stime = stime
        self.body = []          # list of ('map', [Extent]) or ('ref', name)
        self.mapped = 0

    def add_extents(self, exts):
        if not exts:
            return
        if self.body and self.body[-1][0] == 'map':
            self.body[-1][1].extend(exts)
        else:
            self.body.append(('map', list(exts)))
        self.mapped += sum(e.length for e in exts)

    def add_ref(self, name, mapped):
        self.body.append(('ref', name))
        self.mapped += mapped


def parse_args(argv):
    ap = argparse.ArgumentParser(
        usage='%(prog)s [options]', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--devices', metavar='N', type=int, default=1, help='origin thins (default 1)')
    ap.add_argument('--mappings-per-device', metavar='M', type=int, default=1000,
                    help='mappings per origin thin (default 1000)')
    ap.add_argument('--run-length', metavar='L', type=float, default=4.0,
                    help='mean run length; 1 = singles only (default 4)')
    ap.add_argument('--snapshots', metavar='S', type=int, default=0,
                    help='snapshots, taken round-robin of the origins (default 0)')
    ap.add_argument('--share-fraction', metavar='F', type=float, default=0.5,
                    help='probability that a snapshot chunk is still shared (default 0.5)')
    ap.add_argument('--share-chunk', metavar='C', type=int, default=1,
                    help='minimum mappings per sharing decision (default 1 = per extent)')
    ap.add_argument('--empty-devices', metavar='E', type=int, default=0,
                    help='thins without any mapping (default 0)')
    ap.add_argument('--data-block-size', metavar='SECTORS', type=int, default=128,
                    help='data block size in 512-byte sectors (default 128)')
    ap.add_argument('--nr-data-blocks', metavar='N', type=int, default=None,
                    help='pool data blocks (default: used + 1/8, rounded up to 1024)')
    ap.add_argument('--time', metavar='T', type=int, default=None,
                    help='superblock time (default: number of snapshots)')
    ap.add_argument('--transaction', metavar='ID', type=int, default=None,
                    help='superblock transaction id (default: number of devices)')
    ap.add_argument('--dialect', choices=('0.9', '1.x'), default='0.9',
                    help='0.9: expanded, flags="0"; 1.x: <def>/<ref> for shared stretches')
    ap.add_argument('--def-min-mappings', metavar='M', type=int, default=1,
                    help='1.x: shared stretches smaller than this stay inline (default 1)')
    ap.add_argument('--share-empty', action='store_true',
                    help='1.x: empty devices all reference one empty <def>')
    ap.add_argument('--seed', metavar='N', type=int, default=1, help='PRNG seed (default 1)')
    ap.add_argument('-o', '--output', metavar='FILE', default='-', help='output file (default stdout)')
    a = ap.parse_args(argv)

    if min(a.devices, a.snapshots, a.mappings_per_device, a.empty_devices) < 0:
        ap.error('counts must be >= 0')
    if a.snapshots and not a.devices:
        ap.error('--snapshots needs at least one origin device')
    if a.run_length < 1:
        ap.error('--run-length must be >= 1')
    if not 0.0 <= a.share_fraction <= 1.0:
        ap.error('--share-fraction must be within [0, 1]')
    if a.share_chunk < 1 or a.def_min_mappings < 1:
        ap.error('--share-chunk and --def-min-mappings must be >= 1')
    if a.data_block_size < 128 or a.data_block_size % 128 or a.data_block_size > 2097152:
        ap.error('--data-block-size must be a multiple of 128 in [128, 2097152] sectors')
    if a.time is not None and not a.snapshots <= a.time < 1 << 24:
        ap.error('--time must be >= the number of snapshots and < 2^24')
    return ap, a


def build(a, ap):
    """Return (superblock attrs, defs [(name, [Extent])], devices [Device])."""
    rng = Rng(a.seed)
    n_org, n_snap = a.devices, a.snapshots
    origins = [origin_layout(rng, a.mappings_per_device, a.run_length) for _ in range(n_org)]
    nxt = allocate_origins(rng, origins)
    chunks = [make_chunks(exts, a.share_chunk) for exts in origins]

    # shares[k][c]: snapshot k (0-based) still shares chunk c of its origin;
    # otherwise its copy of the chunk (fresh data, time k+1) is in rewrites[k][c].
    shares = []
    rewrites = []
    org_stime = [0] * n_org
    for k in range(n_snap):
        o = k % n_org
        org_stime[o] = k + 1
        sh = []
        rw = {}
        for c, (b, e) in enumerate(chunks[o]):
            if rng.random() < a.share_fraction:
                sh.append(True)
            else:
                sh.append(False)
                copy = []
                for x in origins[o][b:e]:
                    copy.append(Extent(x.origin, x.length, nxt, k + 1))
                    nxt += x.length
                rw[c] = copy
        shares.append(sh)
        rewrites.append(rw)

    used = nxt
    if a.nr_data_blocks is None:
        nr_data = max(1024, -(-(used + used // 8) // 1024) * 1024)
    else:
        nr_data = a.nr_data_blocks
        if nr_data < used:
            ap.error('--nr-data-blocks %d is below the %d blocks the layout needs'
                     % (nr_data, used))
    sb_time = n_snap if a.time is None else a.time
    n_total = n_org + n_snap + a.empty_devices
    trans = n_total if a.transaction is None else a.transaction

    devs = [Device(d, d, 0, org_stime[d]) for d in range(n_org)]
    devs += [Device(n_org + k, n_org + k, k + 1, k + 1) for k in range(n_snap)]
    devs += [Device(n_org + n_snap + i, n_org + n_snap + i, sb_time, sb_time)
             for i in range(a.empty_devices)]
    defs = []
    use_defs = a.dialect == '1.x'

    for o in range(n_org):
        snaps = [k for k in range(o, n_snap, n_org)]
        # Group consecutive chunks with the same set of sharing snapshots.
        groups = []             # (first chunk, end chunk, frozenset of snapshots)
        for c in range(len(chunks[o])):
            who = frozenset(k for k in snaps if shares[k][c])
            if groups and groups[-1][2] == who:
                groups[-1] = (groups[-1][0], c + 1, who)
            else:
                groups.append((c, c + 1, who))
        for c0, c1, who in groups:
            b, e = chunks[o][c0][0], chunks[o][c1 - 1][1]
            exts = origins[o][b:e]
            mapped = sum(x.length for x in exts)
            as_def = use_defs and who and mapped >= a.def_min_mappings
            if as_def:
                name = str(len(defs) + 1)
                defs.append((name, exts))
                devs[o].add_ref(name, mapped)
            else:
                devs[o].add_extents(exts)
            for k in snaps:
                snap = devs[n_org + k]
                if k in who:
                    if as_def:
                        snap.add_ref(name, mapped)
                    else:
                        snap.add_extents(exts)
                else:
                    for c in range(c0, c1):
                        snap.add_extents(rewrites[k][c])

    if use_defs and a.share_empty and a.empty_devices:
        name = str(len(defs) + 1)
        defs.append((name, []))
        for d in devs[n_org + n_snap:]:
            d.add_ref(name, 0)

    sb = dict(time=sb_time, transaction=trans, data_block_size=a.data_block_size,
              nr_data_blocks=nr_data)
    return sb, defs, devs


class Writer:
    """Buffered line writer; the last line's terminator depends on the dialect."""

    def __init__(self, out):
        self.out = out
        self.lines = []

    def line(self, s):
        self.lines.append(s)
        if len(self.lines) >= 65536:
            self.flush()

    def flush(self):
        if self.lines:
            self.out.write('\n'.join(self.lines))
            self.out.write('\n')
            self.lines = []

    def finish(self, final_newline):
        last = self.lines.pop() if self.lines else ''
        self.flush()
        self.out.write(last + ('\n' if final_newline else ''))


def emit_extents(w, exts, indent):
    for x in exts:
        if x.length == 1:
            w.line('%s<single_mapping origin_block="%d" data_block="%d" time="%d"/>'
                   % (indent, x.origin, x.data, x.time))
        else:
            w.line('%s<range_mapping origin_begin="%d" data_begin="%d" length="%d" time="%d"/>'
                   % (indent, x.origin, x.data, x.length, x.time))


def emit(out, dialect, sb, defs, devs):
    w = Writer(out)
    flags = ' flags="0"' if dialect == '0.9' else ''
    w.line('<superblock uuid="" time="%d" transaction="%d"%s version="2" '
           'data_block_size="%d" nr_data_blocks="%d">'
           % (sb['time'], sb['transaction'], flags, sb['data_block_size'], sb['nr_data_blocks']))
    for name, exts in defs:
        w.line('  <def name="%s">' % name)
        emit_extents(w, exts, '    ')
        w.line('  </def>')
    for d in devs:
        w.line('  <device dev_id="%d" mapped_blocks="%d" transaction="%d" '
               'creation_time="%d" snap_time="%d">'
               % (d.dev_id, d.mapped, d.trans, d.ctime, d.stime))
        for kind, what in d.body:
            if kind == 'ref':
                w.line('    <ref name="%s"/>' % what)
            else:
                emit_extents(w, what, '    ')
        w.line('  </device>')
    w.line('</superblock>')
    w.finish(final_newline=(dialect == '0.9'))


def main(argv=None):
    ap, a = parse_args(argv)
    sb, defs, devs = build(a, ap)
    if a.output == '-':
        emit(sys.stdout, a.dialect, sb, defs, devs)
        sys.stdout.flush()
    else:
        with open(a.output, 'w', encoding='ascii', newline='\n') as out:
            emit(out, a.dialect, sb, defs, devs)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except BrokenPipeError:
        # Reader went away (e.g. | head): not an error worth a traceback.
        try:
            sys.stdout.close()
        except BrokenPipeError:
            pass
        sys.exit(1)
