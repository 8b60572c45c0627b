#!/usr/bin/env python3
"""Writes the seeds of fuzz_graph (test/fuzz/corpus/graph/): byte 0 the paging scheme, bytes 1..8
the root, then a raw image whose page tables map it and whose pages hold pointer runs into mapped,
aliased, absent-but-mapped and unmapped kernel addresses. Deterministic (seeded).

    test/fuzz/make_graph_seeds.py test/fuzz/corpus/graph [build/tools/dm-dump-formats]

With dm-dump-formats, also x64-kdump: the x64 seed's image, two of its pages zeroed and 16 zero
pages after it, as a kdump.
"""
import random
import struct
import subprocess
import sys
import tempfile

P, RW, PS = 1, 2, 0x80


def x64(rng, pages=16):
    img = bytearray(pages * 4096)
    put = lambda at, v: struct.pack_into('<Q', img, at, v)
    direct, image = 0xffff800000000000, 0xffffffff80000000
    put(0x1000 + 256 * 8, 0x2000 | P | RW)     # PML4 → PDPT (direct map)
    put(0x1000 + 511 * 8, 0x3000 | P | RW)     # PML4 → PDPT (kernel image)
    put(0x2000, 0x4000 | P | RW)               # PDPT[0] → PD
    put(0x4000, 0x5000 | P | RW)               # PD[0] → PT: the image page by page
    put(0x4000 + 8, 0 | P | RW | PS)           # PD[1]: 2 MiB at 0, mostly absent
    for i in range(pages):
        put(0x5000 + 8 * i, (i * 4096) | P | RW)
    put(0x5000 + 8 * 40, 0x40000000 | P)       # mapped, absent
    put(0x3000 + 510 * 8, 0x6000 | P | RW)     # PDPT[510] → PD → PT: pages 8.. again (aliases)
    put(0x6000, 0x7000 | P | RW)
    for i in range(8):
        put(0x7000 + 8 * i, ((8 + i) * 4096) | P | RW)
    targets = [direct + rng.randrange(pages * 4096), image + rng.randrange(8 * 4096),
               direct + 40 * 4096 + 8, direct + 0x200000 + rng.randrange(0x200000), 0xffffc90000000000]
    for page in range(8, pages):
        at = page * 4096
        while at < (page + 1) * 4096:
            if rng.random() < 0.15:
                for _ in range(rng.randrange(1, 4)):
                    if at >= (page + 1) * 4096:
                        break
                    put(at, rng.choice(targets) & ~7 if rng.random() < 0.5 else rng.choice(targets))
                    at += 8
            else:
                put(at, rng.getrandbits(40))
                at += 8
    return bytes([2]) + struct.pack('<Q', 0x1000) + bytes(img)


def x86(rng, pages=16):
    img = bytearray(pages * 4096)
    put = lambda at, v: struct.pack_into('<I', img, at, v)
    put(0x1000 + 768 * 4, 0x2000 | P | RW)     # PD[768] → PT: 0xc0000000 maps the image
    put(0x1000 + 769 * 4, 0 | P | RW | PS)     # 4 MiB page at 0: aliases, mostly absent
    for i in range(pages):
        put(0x2000 + 4 * i, (i * 4096) | P | RW)
    put(0x2000 + 4 * 50, 0x3000000 | P)        # mapped, absent
    targets = [0xc0000000 + rng.randrange(pages * 4096), 0xc0400000 + rng.randrange(0x400000),
               0xc0000000 + 50 * 4096 + 4, 0xd0000000]
    for page in range(4, pages):
        at = page * 4096
        while at < (page + 1) * 4096:
            if rng.random() < 0.15:
                put(at, rng.choice(targets) & ~3)
            else:
                put(at, rng.getrandbits(24))
            at += 4
    return bytes([0]) + struct.pack('<Q', 0x1000) + bytes(img)


def kdump_of(seed, formats, cleared=(10, 13), zero_pages=16):
    """The seed's image with its pages `cleared` zeroed (between pages of pointers in the direct
    map: segments run into them) and `zero_pages` zero pages after it (mapped by its 2 MiB page), as
    a zlib kdump (dm-dump-formats: zero pages are not stored), behind the seed's first 9 bytes with
    bit 2 of byte 0 set."""
    img = bytearray(seed[9:])
    for page in cleared:
        img[page * 4096:(page + 1) * 4096] = bytes(4096)
    with tempfile.TemporaryDirectory() as d:
        with open(f'{d}/raw', 'wb') as f:
            f.write(bytes(img) + bytes(zero_pages * 4096))
        subprocess.run([formats, f'{d}/raw', '--format', 'raw', '--kdump', f'{d}/kdump',
                        '--kdump-compression', 'zlib'], check=True)
        with open(f'{d}/kdump', 'rb') as f:
            return bytes([seed[0] | 4]) + seed[1:9] + f.read()


def main():
    out = sys.argv[1]
    rng = random.Random(1)
    for name, make in (('x64', x64), ('x86', x86)):
        seed = make(rng)
        with open(f'{out}/{name}', 'wb') as f:
            f.write(seed)
        if name == 'x64' and len(sys.argv) > 2:
            with open(f'{out}/x64-kdump', 'wb') as f:
                f.write(kdump_of(seed, sys.argv[2]))


if __name__ == '__main__':
    main()
