#!/usr/bin/env python3
"""damage-matrix.py - damage every block of a metadata image in several ways
and check that the read-only tools cope (tests only; issue 9).

  damage-matrix.py reach IMG
        one line per block reachable from the superblock: "BLOCK KIND ROLES",
        KIND one of superblock, node, bitmap, index; ROLES a comma list of
          live  read by thin_dump (the live superblock's device trees)
          snap  read by thin_dump -m (the held metadata snapshot's trees)
          sm    a space map block (read by thin_check, not by thin_dump)

  damage-matrix.py run --bin DIR [options] IMG...
        for each image, each block (see --blocks) and each kind of damage
        (see --kinds), damage a scratch copy and run:
          thin_dump IMG        (and thin_dump -m IMG when a snapshot is held)
          thin_check IMG       (when DIR/thin_check exists)
          thin_explore -b BLOCK IMG  (when it exists: the browser opened at
                               the damaged block, under script(1), "q" typed;
                               its screen must show "block BLOCK")
        under a timeout and (except for sanitizer builds) an address-space
        limit.  Expected:
          - never a crash, a signal, a sanitizer report, a timeout;
          - thin_dump: a block it reads damaged -> exit 1 with a message on
            stderr (one line), since a checksum covers every byte; any other
            block -> exit 0, output identical to that of the intact image;
          - thin_check: a reachable block damaged -> exit 1; an unreachable
            one -> exit 0 (no false alarm);
          - thin_explore: exit 0 whatever the block holds, the block shown.
        Kinds: zero (the block zeroed), random (random bytes), bitflip (one
        bit flipped, at a random position), copy (another reachable block
        copied over it, as is: a valid block in the wrong place), resealed
        (the same, with block number and checksum fixed for the new place:
        semantic damage; thin_dump must not crash but may succeed, and
        thin_check's detection rate is only reported).
        Prints a summary per image and every violation; exit 1 if any.

  damage-matrix.py hostile KIND IMG
        make one hostile change to IMG in place, every block resealed so
        that only the rules behind the checksums can catch it (kinds: see
        `hostile --list`); needs a pool whose first device has a 2-level
        mapping tree (e.g. fixtures/kernel/02) for the tree kinds.

Options of run:
  --blocks all|used|quick   all blocks of the image; the reachable ones plus
                            16 others (used) or 8 others (quick, the
                            default), half of them stale (non-zero) blocks
  --kinds LIST              comma list (default zero,random,bitflip,copy)
  --seed N                  for the random choices (default 1)
  --timeout S               per command (default 20)
  --mem-mb M                address-space limit per command (default 1024)
  --jobs N                  parallel workers (default 2)
  --tools LIST              dump,check,explore (default: those in --bin)

Python 3 standard library only.
"""

import argparse
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading

from thinfmt import (BLOCK, ENTRIES_PER_BITMAP, SALT_BITMAP, SALT_INDEX, SALT_NODE,
                     SALT_SB, crc_register)

SALTS = {SALT_SB: 'superblock', SALT_NODE: 'node', SALT_BITMAP: 'bitmap', SALT_INDEX: 'index'}
SALT_OF = {v: k for k, v in SALTS.items()}


def block_kind(blk):
    """'superblock', 'node', 'bitmap', 'index' for an intact block, else None."""
    if not any(blk):
        return None
    (csum,) = struct.unpack_from('<I', blk, 0)
    return SALTS.get(crc_register(blk[4:]) ^ csum)


def seal(blk, nr, kind):
    """Set the block number and checksum of a bytearray block for location nr."""
    struct.pack_into('<Q', blk, 8, nr)
    struct.pack_into('<I', blk, 0, crc_register(blk[4:]) ^ SALT_OF[kind])


# ---------------------------------------------------------------- reachability

class Walker:
    """Blocks reachable from the superblock of an (intact) image."""

    def __init__(self, data):
        self.data = data
        self.nr_blocks = len(data) // BLOCK
        self.found = {}           # block -> [kind, set(roles)]

    def block(self, nr):
        if nr >= self.nr_blocks:
            raise ValueError('block %d past the end' % nr)
        return self.data[nr * BLOCK:(nr + 1) * BLOCK]

    def mark(self, nr, kind, role):
        ent = self.found.setdefault(nr, [kind, set()])
        ent[1].add(role)

    def tree(self, root, role, leaf_fn=None, seen=None):
        """Walk a btree; leaf_fn(values, value_size) for each leaf."""
        seen = set() if seen is None else seen
        stack = [root]
        while stack:
            nr = stack.pop()
            if nr in seen:
                continue
            seen.add(nr)
            self.mark(nr, 'node', role)
            b = self.block(nr)
            flags, _, nr_entries, max_entries, vsize = struct.unpack_from('<IQIII', b, 4)
            voff = 32 + 8 * max_entries
            if flags & 1:
                stack.extend(struct.unpack_from('<%dQ' % nr_entries, b, voff))
            elif leaf_fn:
                leaf_fn([bytes(b[voff + i * vsize:voff + (i + 1) * vsize])
                         for i in range(nr_entries)])

    def mapping_trees(self, mapping_root, details_root, role):
        roots = []
        self.tree(mapping_root, role,
                  lambda vals: roots.extend(struct.unpack('<Q', v)[0] for v in vals))
        self.tree(details_root, role)
        seen = set()
        for r in roots:
            self.tree(r, role, seen=seen)

    def walk(self):
        sb = self.block(0)
        self.mark(0, 'superblock', 'live')
        self.found[0][1].update(('snap', 'sm'))
        (held,) = struct.unpack_from('<Q', sb, 56)
        mroot, droot = struct.unpack_from('<QQ', sb, 320)
        self.mapping_trees(mroot, droot, 'live')
        if held:
            self.mark(held, 'superblock', 'snap')
            hs = self.block(held)
            hm, hd = struct.unpack_from('<QQ', hs, 320)
            self.mapping_trees(hm, hd, 'snap')
        # data space map: index btree of (blocknr, nr_free, none_free_before)
        d_nr, _, d_index, d_refs = struct.unpack_from('<QQQQ', sb, 64)
        bitmaps = []
        self.tree(d_index, 'sm',
                  lambda vals: bitmaps.extend(struct.unpack_from('<Q', v)[0] for v in vals))
        self.tree(d_refs, 'sm')
        # metadata space map: one index block
        m_nr, _, m_index, m_refs = struct.unpack_from('<QQQQ', sb, 192)
        self.mark(m_index, 'index', 'sm')
        ib = self.block(m_index)
        for i in range((m_nr + ENTRIES_PER_BITMAP - 1) // ENTRIES_PER_BITMAP):
            bitmaps.append(struct.unpack_from('<Q', ib, 16 + 16 * i)[0])
        self.tree(m_refs, 'sm')
        for b in bitmaps:
            self.mark(b, 'bitmap', 'sm')
        return self.found


def reachable(data):
    """{block: (kind, frozenset(roles))} of an intact image's bytes."""
    return {b: (k, frozenset(r)) for b, (k, r) in Walker(data).walk().items()}


def held_root(data):
    return struct.unpack_from('<Q', data, 56)[0]


# ---------------------------------------------------------------- damage

def damaged(kind, nr, orig, rng, donors):
    """The damaged bytes of block nr (None: this kind does nothing here)."""
    if kind == 'zero':
        new = bytes(BLOCK)
    elif kind == 'random':
        new = rng.getrandbits(BLOCK * 8).to_bytes(BLOCK, 'little')
    elif kind == 'bitflip':
        pos = rng.randrange(BLOCK * 8)
        b = bytearray(orig)
        b[pos // 8] ^= 1 << (pos % 8)
        new = bytes(b)
    elif kind in ('copy', 'resealed'):
        choices = [d for d in donors if d[0] != nr]
        if not choices:
            return None
        # prefer a block of the same kind (a leaf over a leaf, ...)
        same = [d for d in choices if d[1] == donors_kind(donors, nr)]
        dnr, dkind, dbytes = rng.choice(same or choices)
        if kind == 'copy':
            new = dbytes
        else:
            b = bytearray(dbytes)
            seal(b, nr, dkind)
            new = bytes(b)
    else:
        raise ValueError(kind)
    return None if new == orig else new


def donors_kind(donors, nr):
    for d in donors:
        if d[0] == nr:
            return d[1]
    return None


# ---------------------------------------------------------------- running

def is_sanitized(path):
    try:
        with open(path, 'rb') as f:
            return b'__asan_init' in f.read()
    except OSError:
        return False


class Runner:
    def __init__(self, bindir, tools, timeout, mem_mb):
        self.bindir = bindir
        self.tools = tools
        self.timeout = timeout
        self.mem = mem_mb << 20
        self.sanitized = any(is_sanitized(os.path.join(bindir, t))
                             for t in ('thin_dump', 'thin_check'))
        self.env = dict(os.environ)
        # a sanitizer report must not look like a clean exit 1
        self.env['ASAN_OPTIONS'] = 'exitcode=86:detect_leaks=1'
        self.env['UBSAN_OPTIONS'] = 'exitcode=86:halt_on_error=1:print_stacktrace=1'
        self.env['TERM'] = 'xterm'

    def _limit(self):
        if not self.sanitized:
            resource.setrlimit(resource.RLIMIT_AS, (self.mem, self.mem))

    def run(self, args, stdin=None):
        """(rc, stdout bytes, stderr text); rc -1 on timeout."""
        try:
            p = subprocess.run(args, input=stdin,
                               stdin=None if stdin is not None else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=self.timeout, env=self.env, preexec_fn=self._limit)
        except subprocess.TimeoutExpired:
            return -1, b'', 'timeout'
        return p.returncode, p.stdout, p.stderr.decode('utf-8', 'replace')


def commands(runner, img, has_snap, nr):
    """(name, args, role, stdin) of each command to run on img, block nr damaged."""
    cmds = []
    if 'dump' in runner.tools:
        cmds.append(('dump', [os.path.join(runner.bindir, 'thin_dump'), img], 'live', None))
        if has_snap:
            cmds.append(('dump-m', [os.path.join(runner.bindir, 'thin_dump'), '-m', img],
                         'snap', None))
    if 'check' in runner.tools:
        cmds.append(('check', [os.path.join(runner.bindir, 'thin_check'), img], None, None))
    if 'explore' in runner.tools:
        # the browser opened at the damaged block, under a pseudo-terminal; "q" quits
        cmds.append(('explore', ['script', '-qec', '%s -b %d %s' % (
            os.path.join(runner.bindir, 'thin_explore'), nr, img), '/dev/null'], 'any', b'q'))
    return cmds


def crashed(rc, err):
    return rc < 0 or rc >= 126 or rc == 86 or 'Sanitizer' in err or 'runtime error' in err


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.cases = 0
        self.noop = 0
        self.runs = 0
        self.outcomes = {}     # (cmd, kind, reached?) -> {outcome: n}
        self.violations = []

    def add(self, cmd, kind, reached, outcome):
        with self.lock:
            d = self.outcomes.setdefault((cmd, kind, reached), {})
            d[outcome] = d.get(outcome, 0) + 1

    def violation(self, text):
        with self.lock:
            self.violations.append(text)


def judge(stats, cmd, kind, nr, reached, rc, out, err, baseline):
    where = 'block %d %s, %s' % (nr, kind, cmd)
    first = err.strip().splitlines()[:1]
    if rc == -1:
        stats.add(cmd, kind, reached, 'timeout')
        stats.violation('%s: timed out' % where)
        return
    if crashed(rc, err):
        stats.add(cmd, kind, reached, 'crash')
        stats.violation('%s: crashed (exit %d): %s' % (where, rc, ' | '.join(
            err.strip().splitlines()[:3])))
        return
    if rc not in (0, 1):
        stats.add(cmd, kind, reached, 'exit %d' % rc)
        stats.violation('%s: exit %d' % (where, rc))
        return
    semantic = kind == 'resealed'
    if cmd == 'explore':
        # the browser shows any block, damaged or not: it must work and
        # its screen must name the block it was opened at
        screen = re.sub(r'\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-B]|[=>])', '',
                        out.decode('utf-8', 'replace'))
        if 'Sanitizer' in screen or rc != 0:
            stats.add(cmd, kind, reached, 'failed')
            stats.violation('%s: exit %d' % (where, rc))
        elif not re.search(r'block %d\b' % nr, screen):
            stats.add(cmd, kind, reached, 'not shown')
            stats.violation('%s: the screen does not show block %d' % (where, nr))
        else:
            stats.add(cmd, kind, reached, 'shown')
        return
    if cmd.startswith('dump'):
        if rc == 1:
            nlines = len(err.strip().splitlines())
            if nlines != 1:
                stats.add(cmd, kind, reached, 'bad message')
                stats.violation('%s: exit 1 with %d lines on stderr' % (where, nlines))
                return
            stats.add(cmd, kind, reached, 'failed cleanly')
            if not reached:
                stats.violation('%s: failed although thin_dump does not read the block: %s'
                                % (where, first[0] if first else ''))
            return
        if reached and not semantic:
            # a checksum covers every byte of a block: damage must be noticed
            stats.add(cmd, kind, reached, 'not noticed')
            stats.violation('%s: exit 0 although a block thin_dump reads is damaged' % where)
            return
        if out == baseline:
            stats.add(cmd, kind, reached, 'same output')
            return
        stats.add(cmd, kind, reached, 'other output')
        if not semantic:
            stats.violation('%s: exit 0 with output different from the intact image' % where)
        return
    # check
    if rc == 1:
        stats.add(cmd, kind, reached, 'detected')
        if not reached:
            stats.violation('%s: damage reported in a block nothing reaches: %s'
                            % (where, first[0] if first else ''))
        return
    stats.add(cmd, kind, reached, 'passed')
    if reached and not semantic:
        stats.violation('%s: damage to a reachable block not detected' % where)


def run_image(runner, path, opts, stats, rng):
    data = open(path, 'rb').read()
    nr_blocks = len(data) // BLOCK
    reach = reachable(data)
    has_snap = held_root(data) != 0
    donors = [(b, k, data[b * BLOCK:(b + 1) * BLOCK]) for b, (k, _) in sorted(reach.items())]

    if opts.blocks == 'all':
        blocks = list(range(nr_blocks))
    else:
        extra = 16 if opts.blocks == 'used' else 8
        others = [b for b in range(nr_blocks) if b not in reach]
        # some unreachable blocks that hold something (stale copies) and some zero ones
        stale = [b for b in others if any(data[b * BLOCK:(b + 1) * BLOCK])]
        pick = rng.sample(stale, min(len(stale), extra // 2))
        rest = [b for b in others if b not in pick]
        pick += rng.sample(rest, min(len(rest), extra - len(pick)))
        blocks = sorted(set(reach) | set(pick))

    tmpdir = tempfile.mkdtemp(prefix='damage-matrix.')
    try:
        # the intact image's outputs
        base = {}
        probe = os.path.join(tmpdir, 'intact')
        shutil.copyfile(path, probe)
        for name, args, _, stdin in commands(runner, probe, has_snap, 0):
            rc, out, err = runner.run(args, stdin)
            if rc != 0:
                stats.violation('%s: the intact image fails %s (exit %d): %s'
                                % (path, name, rc, err.strip()[:200]))
                return
            base[name] = out

        cases = []
        for nr in blocks:
            orig = data[nr * BLOCK:(nr + 1) * BLOCK]
            for kind in opts.kinds:
                new = damaged(kind, nr, orig, rng, donors)
                if new is None:
                    stats.noop += 1
                    continue
                cases.append((nr, kind, new))
        stats.cases += len(cases)

        def worker(wid, mine):
            img = os.path.join(tmpdir, 'w%d.img' % wid)
            shutil.copyfile(path, img)
            with open(img, 'r+b') as f:
                for nr, kind, new in mine:
                    f.seek(nr * BLOCK)
                    f.write(new)
                    f.flush()
                    roles = reach.get(nr, (None, frozenset()))[1]
                    for name, args, role, stdin in commands(runner, img, has_snap, nr):
                        if role == 'any':
                            reached = bool(roles)
                        else:
                            reached = bool(roles) if role is None else role in roles
                        rc, out, err = runner.run(args, stdin)
                        with stats.lock:
                            stats.runs += 1
                        judge(stats, name, kind, nr, reached, rc, out, err, base[name])
                    f.seek(nr * BLOCK)
                    f.write(data[nr * BLOCK:(nr + 1) * BLOCK])
                    f.flush()

        n = max(1, opts.jobs)
        threads = [threading.Thread(target=worker, args=(i, cases[i::n])) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return len(blocks), nr_blocks, len(reach)


def cmd_run(a):
    tools = a.tools.split(',') if a.tools else [
        t for t, b in (('dump', 'thin_dump'), ('check', 'thin_check'),
                       ('explore', 'thin_explore'))
        if os.access(os.path.join(a.bin, b), os.X_OK)
        and (t != 'explore' or shutil.which('script'))]
    runner = Runner(a.bin, tools, a.timeout, a.mem_mb)
    a.kinds = a.kinds.split(',')
    total_bad = 0
    for path in a.images:
        stats = Stats()
        rng = random.Random('%s:%d' % (os.path.basename(path), a.seed))
        res = run_image(runner, path, a, stats, rng)
        if res:
            nb, nr_blocks, nreach = res
            print('%s: %d of %d blocks (%d reachable) x %s: %d cases (%d no-ops skipped), '
                  '%d runs of %s%s' % (os.path.basename(path), nb, nr_blocks, nreach,
                                       ','.join(a.kinds), stats.cases, stats.noop, stats.runs,
                                       ','.join(tools),
                                       ' (sanitized build: no memory limit)'
                                       if runner.sanitized else ''))
        for (cmd, kind, reached), d in sorted(stats.outcomes.items()):
            print('  %-7s %-9s %-11s %s' % (cmd, kind, 'reached' if reached else 'not reached',
                                             ', '.join('%s %d' % kv for kv in sorted(d.items()))))
        for v in stats.violations[:50]:
            print('  VIOLATION ' + v)
        if len(stats.violations) > 50:
            print('  ... %d violations in all' % len(stats.violations))
        total_bad += len(stats.violations)
    print('violations: %d' % total_bad)
    return 1 if total_bad else 0


# ---------------------------------------------------------------- hostile images

U64_TOP = 1 << 63


class Surgery:
    """In-place edits of an image file, each block resealed."""

    def __init__(self, path):
        self.f = open(path, 'r+b')
        self.f.seek(0, 2)
        self.nr_blocks = self.f.tell() // BLOCK

    def get(self, nr):
        self.f.seek(nr * BLOCK)
        return bytearray(self.f.read(BLOCK))

    def put(self, nr, blk, kind):
        seal(blk, nr, kind)
        self.f.seek(nr * BLOCK)
        self.f.write(blk)

    def node(self, nr):
        b = self.get(nr)
        flags, _, n, mx, vs = struct.unpack_from('<IQIII', b, 4)
        keys = list(struct.unpack_from('<%dQ' % n, b, 32))
        vals = list(struct.unpack_from('<%dQ' % n, b, 32 + 8 * mx)) if vs == 8 else None
        return b, flags, keys, vals, mx

    def set_sb(self, off, fmt, value):
        b = self.get(0)
        struct.pack_into(fmt, b, off, value)
        self.put(0, b, 'superblock')

    def two_level_device(self):
        """(root, [leaves]) of the first device whose mapping tree has 2 levels."""
        sb = self.get(0)
        mroot = struct.unpack_from('<Q', sb, 320)[0]
        _, flags, _, roots, _ = self.node(mroot)
        if flags & 1:
            raise SystemExit('damage-matrix: the top-level mapping tree is not one leaf')
        for r in roots:
            _, f, _, kids, _ = self.node(r)
            if f & 1 and len(kids) >= 2:
                return r, kids
        raise SystemExit('damage-matrix: no device with a 2-level mapping tree')

    def make_internal(self, nr, key, children):
        """Rewrite block nr as an internal node pointing at children."""
        blk = bytearray(BLOCK)
        mx = 252        # the kernel's max_entries for 8-byte values: a multiple of 3
        struct.pack_into('<IQIII', blk, 4, 1, nr, len(children), mx, 8)
        for i, c in enumerate(children):
            struct.pack_into('<Q', blk, 32 + 8 * i, key + i)
            struct.pack_into('<Q', blk, 32 + 8 * mx + 8 * i, c)
        self.put(nr, blk, 'node')

    def set_node_field(self, nr, off, value):
        b = self.get(nr)
        struct.pack_into('<I', b, off, value)
        self.put(nr, b, 'node')

    def free_blocks(self, count):
        """count blocks past the last non-zero one (unused in the fixtures)."""
        last = 0
        for nr in range(self.nr_blocks):
            self.f.seek(nr * BLOCK)
            if any(self.f.read(BLOCK)):
                last = nr
        if last + 1 + count > self.nr_blocks:
            raise SystemExit('damage-matrix: no room for %d new blocks' % count)
        return list(range(last + 1, last + 1 + count))


def h_nr_entries(s):
    _, leaves = s.two_level_device()
    s.set_node_field(leaves[0], 16, 0xFFFFFFFF)


def h_max_entries(s):
    _, leaves = s.two_level_device()
    s.set_node_field(leaves[0], 20, 0xFFFFFFFF)


def h_self_bottom(s):
    root, leaves = s.two_level_device()
    b, _, keys, vals, mx = s.node(root)
    struct.pack_into('<Q', b, 32 + 8 * mx, root)
    s.put(root, b, 'node')


def h_self_top(s):
    mroot = struct.unpack_from('<Q', s.get(0), 320)[0]
    s.make_internal(mroot, 0, [mroot])


def h_self_details(s):
    droot = struct.unpack_from('<Q', s.get(0), 328)[0]
    s.make_internal(droot, 0, [droot])


def h_cycle(s):
    """root -> leaf 1, leaf 1 rewritten as an internal node pointing back at root."""
    root, leaves = s.two_level_device()
    _, _, keys, _, _ = s.node(leaves[0])
    s.make_internal(leaves[0], keys[0] if keys else 0, [root])


def h_deep(s):
    """a chain of 40 internal nodes above the first leaf (limit: 16 levels)."""
    root, leaves = s.two_level_device()
    chain = s.free_blocks(40)
    for i, nr in enumerate(chain):
        s.make_internal(nr, 0, [chain[i + 1] if i + 1 < len(chain) else leaves[0]])
    b, _, keys, vals, mx = s.node(root)
    struct.pack_into('<Q', b, 32 + 8 * mx, chain[0])
    s.put(root, b, 'node')


def h_wide(s):
    """the root's first child repeated in every slot of a full internal node."""
    root, leaves = s.two_level_device()
    s.make_internal(root, 0, [leaves[0]] * 252)


def h_fanout(s):
    """every device's mapping root rewritten as a full internal node whose 252
    children are shared full internal nodes, all 63504 slots naming one leaf:
    a few hundred blocks that list 63504 leaves per device"""
    sb = s.get(0)
    mroot = struct.unpack_from('<Q', sb, 320)[0]
    roots, stack = [], [mroot]
    while stack:
        _, flags, _, vals, _ = s.node(stack.pop())
        if flags & 1:
            stack.extend(reversed(vals))
        else:
            roots.extend(vals)
    if len(roots) < 2:
        raise SystemExit('damage-matrix: fanout needs at least 2 devices')
    leaf = roots[0]
    shared = s.free_blocks(252)
    for j, nr in enumerate(shared):
        blk = bytearray(BLOCK)
        struct.pack_into('<IQIII', blk, 4, 1, nr, 252, 252, 8)
        for i in range(252):
            struct.pack_into('<Q', blk, 32 + 8 * i, j * 252 + i)
            struct.pack_into('<Q', blk, 32 + 8 * 252 + 8 * i, leaf)
        s.put(nr, blk, 'node')
    for r in roots[1:]:
        blk = bytearray(BLOCK)
        struct.pack_into('<IQIII', blk, 4, 1, r, 252, 252, 8)
        for i in range(252):
            struct.pack_into('<Q', blk, 32 + 8 * i, i * 252)
            struct.pack_into('<Q', blk, 32 + 8 * 252 + 8 * i, shared[i])
        s.put(r, blk, 'node')


def h_huge_values(s):
    _, leaves = s.two_level_device()
    b, _, keys, vals, mx = s.node(leaves[0])
    struct.pack_into('<Q', b, 32 + 8 * mx, ((1 << 40) - 1) << 24 | 0xFFFFFF)
    s.put(leaves[0], b, 'node')


HOSTILE = {
    'nr-entries': (h_nr_entries, 'a mapping leaf with nr_entries 2^32-1'),
    'max-entries': (h_max_entries, 'a mapping leaf with max_entries 2^32-1'),
    'self-bottom': (h_self_bottom, "a device's mapping tree root pointing at itself"),
    'self-top': (h_self_top, 'the top-level mapping tree root pointing at itself'),
    'self-details': (h_self_details, 'the device details tree root pointing at itself'),
    'cycle': (h_cycle, 'two nodes of a mapping tree pointing at each other'),
    'deep': (h_deep, 'a mapping tree 41 levels deep'),
    'wide': (h_wide, 'an internal node whose 252 children are one leaf'),
    'fanout': (h_fanout, 'every device: 63504 leaf slots naming one leaf, via 252 shared nodes'),
    'huge-values': (h_huge_values, 'a mapping to data block 2^40-1 at time 2^24-1'),
    'metadata-nr-blocks': (lambda s: s.set_sb(344, '<Q', U64_TOP),
                           'superblock metadata_nr_blocks 2^63'),
    'meta-sm-nr-blocks': (lambda s: s.set_sb(192, '<Q', U64_TOP),
                          'metadata space map nr_blocks 2^63'),
    'data-sm-nr-blocks': (lambda s: s.set_sb(64, '<Q', U64_TOP),
                          'data space map nr_blocks 2^63'),
    'data-sm-nr-blocks-dev': (lambda s: s.set_sb(64, '<Q', s.nr_blocks * ENTRIES_PER_BITMAP),
                              'data space map nr_blocks = one bitmap per metadata block'),
    'roots-out-of-range': (lambda s: (s.set_sb(320, '<Q', U64_TOP), s.set_sb(328, '<Q', U64_TOP)),
                           'mapping and details roots 2^63'),
    'held-root-node': (lambda s: s.set_sb(56, '<Q', struct.unpack_from('<Q', s.get(0), 320)[0]),
                       'a held metadata snapshot at a btree node'),
    'held-root-huge': (lambda s: s.set_sb(56, '<Q', U64_TOP), 'a held metadata snapshot at 2^63'),
}


def cmd_hostile(a):
    if a.list:
        for k, (_, doc) in HOSTILE.items():
            print('%-22s %s' % (k, doc))
        return 0
    if not a.kind or not a.img:
        raise SystemExit('damage-matrix: hostile KIND IMG')
    if a.kind not in HOSTILE:
        raise SystemExit('damage-matrix: unknown hostile kind %s' % a.kind)
    s = Surgery(a.img)
    HOSTILE[a.kind][0](s)
    s.f.close()
    return 0


def cmd_reach(a):
    data = open(a.img, 'rb').read()
    for b, (k, roles) in sorted(reachable(data).items()):
        print('%d %s %s' % (b, k, ','.join(sorted(roles))))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('reach')
    p.add_argument('img')
    p = sub.add_parser('hostile')
    p.add_argument('--list', action='store_true')
    p.add_argument('kind', nargs='?')
    p.add_argument('img', nargs='?')
    p = sub.add_parser('run')
    p.add_argument('--bin', required=True)
    p.add_argument('--blocks', choices=('all', 'used', 'quick'), default='quick')
    p.add_argument('--kinds', default='zero,random,bitflip,copy')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--timeout', type=float, default=20)
    p.add_argument('--mem-mb', type=int, default=1024)
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--tools', default='')
    p.add_argument('images', nargs='+')
    a = ap.parse_args(argv)
    return {'run': cmd_run, 'reach': cmd_reach, 'hostile': cmd_hostile}[a.cmd](a)


if __name__ == '__main__':
    sys.exit(main())
