#!/usr/bin/env python3
"""Renders HTML reports in headless Chromium and checks the screenshots (stdlib only).

    python3 scripts/browser_check.py OUT_DIR PAGE.html[:RRGGBB,RRGGBB...] ...

For each page: a 1200x1600 screenshot (OUT_DIR/<name>.png), decoded here (PNG, 8-bit RGB/RGBA,
all five row filters), must be mostly drawn (at least 1 % of the pixels not white: a page that
failed to render or lost its styles is nearly blank) and must contain every listed colour (within
8 per channel: e.g. the tree's red root node b91c1c, the heat map's saturated green). Exit 1 with
the reason on the first failure."""
import os
import struct
import subprocess
import sys
import zlib

CHROMIUM = os.environ.get("CHROMIUM", "chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars", "--window-size=1200,1600"]


def decode_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"unsupported PNG (depth {depth}, colour type {ctype})"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def check(out_dir, spec):
    page, _, colours = spec.partition(":")
    name = os.path.splitext(os.path.basename(page))[0]
    shot = os.path.join(out_dir, name + ".png")
    if os.path.exists(shot):
        os.remove(shot)
    subprocess.run([CHROMIUM, *FLAGS, f"--screenshot={shot}", "file://" + os.path.abspath(page)],
                   check=True, capture_output=True, timeout=120)
    if not os.path.exists(shot):
        sys.exit(f"error: chromium wrote no screenshot of {page}")
    w, h, bpp, rows = decode_png(shot)
    want = [tuple(int(c[k:k + 2], 16) for k in (0, 2, 4)) for c in colours.split(",") if c]
    found = [False] * len(want)
    drawn = 0
    for r in rows:
        for x in range(0, w * bpp, bpp):
            px = r[x:x + 3]
            if px[0] < 245 or px[1] < 245 or px[2] < 245:
                drawn += 1
            for k, c in enumerate(want):
                if not found[k] and all(abs(px[j] - c[j]) <= 8 for j in range(3)):
                    found[k] = True
    frac = drawn / (w * h)
    print(f"{page}: {w}x{h} screenshot, {100 * frac:.1f} % drawn, colours {dict(zip(colours.split(','), found))}")
    if frac < 0.01:
        sys.exit(f"error: {page} rendered nearly blank ({100 * frac:.2f} % of the pixels drawn)")
    for c, ok in zip(colours.split(","), found):
        if c and not ok:
            sys.exit(f"error: colour #{c} not found in the rendering of {page}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for spec in sys.argv[2:]:
        check(sys.argv[1], spec)
