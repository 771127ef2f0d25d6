#!/usr/bin/env python3
"""Seeded, deterministic file-tree generator for the ostree-gateway benchmarks (stdlib only).

    bench/gen_tree.py --seed 1 --preset default --out DIR            # the base tree
    bench/gen_tree.py --seed 1 --preset default --out DIR --incremental
                                                                     # base + the increment
    bench/gen_tree.py --seed 1 --mutate DIR                          # apply the increment in place

The same seed and preset always give the same bytes, paths and modes. A tree is a realistic
mix for an OSTree commit (an application or OS image):

- many small text files (sources, configs, docs, locale data) in nested directories: log-normal
  sizes, word-based text (compresses like real text, about 3-4x with gzip);
- binaries of a few KiB to tens of MiB: about half random (incompressible, like already
  compressed assets), half "compressible" (zero pages, repeated blocks and random runs, like
  ELF files and uncompressed data, about 2-3x with gzip); some executable;
- a few duplicate files (licenses: ostree stores one object for identical content) and a few
  symlinks.

Presets: `small` (about 1.5k files / 30 MB), `default` (about 11k files / 350 MB) and `load`
(about 150 files / 5 MB: one pusher's commit in the concurrency test; `--count N` writes N
such trees, OUT/0 ... OUT/N-1, with seeds SEED ... SEED+N-1, in one run).

The increment (--incremental or --mutate) changes 5 files (4 text files edited, 1 binary
rebuilt), adds 2 (one text, one binary) and deletes 1 text file, chosen by the seed. It prints
what it did on stderr. --mutate must be given the base tree of the same seed (it is not
idempotent: run it once).
"""

import argparse
import json
import os
import random
import sys

# name: (text files, text size median, binaries: list of (count, min, max) size bands)
PRESETS = {
    "small": {
        "text_files": 1420,
        "text_median": 2600,
        "bands": [(50, 4 << 10, 256 << 10), (10, 256 << 10, 2 << 20), (3, 4 << 20, 6 << 20)],
        "dirs": 120,
    },
    "default": {
        "text_files": 10500,
        "text_median": 2800,
        "bands": [(380, 4 << 10, 256 << 10), (90, 256 << 10, 2 << 20), (30, 2 << 20, 12 << 20)],
        "dirs": 800,
    },
    "load": {
        "text_files": 140,
        "text_median": 2400,
        "bands": [(8, 4 << 10, 256 << 10), (1, 3 << 20, 4 << 20)],
        "dirs": 16,
    },
}

TOP_DIRS = ["usr/bin", "usr/lib", "usr/share/doc", "usr/share/locale", "usr/include", "etc",
            "usr/share/app/data", "usr/lib/python3/site-packages", "usr/share/icons", "opt/tool"]
TEXT_EXTS = [".c", ".h", ".py", ".txt", ".md", ".conf", ".json", ".xml", ".po", ".sh", ".ini",
             ".css", ".js", ".html"]
BIN_EXTS = ["", ".so", ".bin", ".dat", ".pak", ".png", ".ttf", ".a", ".mo"]
LICENSE = ("Permission is hereby granted, free of charge, to any person obtaining a copy of "
           "this software and associated documentation files, to deal in the Software without "
           "restriction, subject to the following conditions.\n") * 30


def make_words(rng):
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    words = set()
    while len(words) < 6000:
        n = max(1, min(14, int(rng.gauss(6, 2.5))))
        words.add("".join(rng.choices(letters, weights, k=n)))
    words = sorted(words)
    words += ["int", "return", "if", "else", "for", "the", "and", "def", "self", "void",
              "static", "const", "import", "{", "}", "(", ")", ";", "=", "==", "0", "1"] * 40
    return words


class Gen:
    def __init__(self, seed):
        self.seed = seed
        rng = random.Random(seed * 7919 + 17)
        self.words = make_words(rng)
        # A text pool: files are slices of it with a unique header, so generation stays fast
        # while every file is distinct and compresses like text.
        lines = []
        total = 0
        while total < (3 << 20):
            k = max(1, int(rng.expovariate(1 / 9)))
            indent = "    " * rng.choice([0, 0, 1, 1, 2, 3])
            line = indent + " ".join(rng.choices(self.words, k=k)) + "\n"
            lines.append(line)
            total += len(line)
        self.pool = "".join(lines).encode()
        self.blocks = [rng.randbytes(512) for _ in range(64)]

    def text(self, rng, size, tag):
        header = f"# {tag} seed={self.seed} r={rng.getrandbits(64):016x}\n".encode()
        size = max(size, len(header) + 1)
        start = rng.randrange(0, len(self.pool) - size - 1)
        return header + self.pool[start:start + size - len(header)]

    def binary(self, rng, size, compressible):
        if not compressible:
            return rng.randbytes(size)
        parts = []
        n = 0
        while n < size:
            r = rng.random()
            if r < 0.30:
                chunk = bytes(4096)
            elif r < 0.70:
                chunk = b"".join(rng.choice(self.blocks) for _ in range(8))
            else:
                chunk = rng.randbytes(4096)
            parts.append(chunk)
            n += len(chunk)
        return b"".join(parts)[:size]


def plan_tree(seed, preset):
    """The list of entries: (path, kind, size, mode, extra), deterministic for (seed, preset)."""
    p = PRESETS[preset]
    rng = random.Random(seed)
    dirs = []
    for i in range(p["dirs"]):
        top = rng.choice(TOP_DIRS)
        depth = rng.choice([0, 1, 1, 2, 2, 3, 4])
        parts = [top] + [f"{rng.choice(['core', 'mod', 'pkg', 'lib', 'data', 'x', 'res'])}{rng.randrange(100)}"
                         for _ in range(depth)]
        dirs.append("/".join(parts))
    dirs = sorted(set(dirs))
    entries = {}

    def unique(path):
        base, ext = os.path.splitext(path)
        n = 0
        while path in entries:
            n += 1
            path = f"{base}-{n}{ext}"
        return path

    for i in range(p["text_files"]):
        d = rng.choice(dirs)
        size = int(min(200_000, max(20, rng.lognormvariate(0, 1.1) * p["text_median"])))
        path = unique(f"{d}/f{i:05d}{rng.choice(TEXT_EXTS)}")
        mode = 0o755 if path.endswith(".sh") else 0o644
        entries[path] = ("text", size, mode, None)
    for band, (count, lo, hi) in enumerate(p["bands"]):
        for i in range(count):
            d = rng.choice(dirs)
            size = int(lo * (hi / lo) ** rng.random())
            compressible = rng.random() < 0.5
            path = unique(f"{d}/b{band}_{i:04d}{rng.choice(BIN_EXTS)}")
            mode = 0o755 if (d.startswith("usr/bin") or path.endswith(".so")) else 0o644
            entries[path] = ("bin", size, mode, compressible)
    n_dups = max(2, p["text_files"] // 150)
    for i in range(n_dups):
        path = unique(f"{rng.choice(dirs)}/LICENSE")
        entries[path] = ("license", len(LICENSE), 0o644, None)
    files = sorted(k for k, v in entries.items() if v[0] == "text")
    for i in range(max(2, p["text_files"] // 120)):
        target = rng.choice(files)
        d = rng.choice(dirs)
        link = unique(f"{d}/link{i:03d}")
        entries[link] = ("symlink", 0, 0o777, os.path.relpath(target, d))
    return entries


def write_entry(gen, root, path, entry, salt=0):
    kind, size, mode, extra = entry
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if kind == "symlink":
        if os.path.lexists(full):
            os.unlink(full)
        os.symlink(extra, full)
        return 0
    # Each file's bytes depend only on (seed, path, salt): stable whatever else changes.
    rng = random.Random(f"{gen.seed}:{path}:{salt}")
    if kind == "text":
        data = gen.text(rng, size, path)
    elif kind == "license":
        data = LICENSE.encode()
    else:
        data = gen.binary(rng, size, extra)
    with open(full, "wb") as f:
        f.write(data)
    os.chmod(full, mode)
    return len(data)


def generate(seed, preset, out, gen=None):
    gen = gen or Gen(seed)
    entries = plan_tree(seed, preset)
    os.makedirs(out, exist_ok=True)
    if os.listdir(out):
        sys.exit(f"gen_tree: {out} is not empty")
    total = 0
    for path in sorted(entries):
        total += write_entry(gen, out, path, entries[path])
    meta = {"seed": seed, "preset": preset, "files": len(entries), "bytes": total}
    print(json.dumps(meta), file=sys.stderr)
    return gen


def mutate(seed, root, gen=None):
    """The increment: 5 changed (4 text, 1 binary), 2 added, 1 deleted."""
    gen = gen or Gen(seed)
    rng = random.Random(seed * 31 + 5)
    texts, bins = [], []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or name == "LICENSE":
                continue
            rel = os.path.relpath(full, root)
            (bins if os.path.basename(rel).startswith("b") else texts).append(rel)
    texts.sort()
    bins.sort()
    # Keep symlink targets: never delete a file a link points to.
    linked = set()
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                linked.add(os.path.relpath(os.path.realpath(full), os.path.realpath(root)))
    changed_text = rng.sample(texts, 4)
    small_bins = [b for b in bins if os.path.getsize(os.path.join(root, b)) < (1 << 20)]
    changed_bin = rng.choice(small_bins or bins)
    deletable = [t for t in texts if t not in changed_text and t not in linked]
    deleted = rng.choice(deletable)
    log = {"changed": [], "added": [], "deleted": [deleted]}
    for rel in changed_text:
        full = os.path.join(root, rel)
        with open(full, "ab") as f:
            f.write(gen.text(random.Random(f"{seed}:{rel}:edit"), 200, f"edit {rel}"))
        log["changed"].append(rel)
    full = os.path.join(root, changed_bin)
    size = os.path.getsize(full)
    mode = os.stat(full).st_mode & 0o777
    write_entry(gen, root, changed_bin, ("bin", size, mode, True), salt=1)
    log["changed"].append(changed_bin)
    d = os.path.dirname(rng.choice(texts))
    for rel, entry in [(f"{d}/added-{seed}.txt", ("text", 3000, 0o644, None)),
                       (f"{d}/added-{seed}.bin", ("bin", 64 << 10, 0o644, False))]:
        write_entry(gen, root, rel, entry, salt=2)
        log["added"].append(rel)
    os.unlink(os.path.join(root, deleted))
    print(json.dumps(log), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--out", help="directory to create (must be absent or empty)")
    ap.add_argument("--incremental", action="store_true", help="write the base tree plus the increment")
    ap.add_argument("--count", type=int, help="write COUNT trees OUT/0..COUNT-1 (seeds SEED..SEED+COUNT-1)")
    ap.add_argument("--mutate", metavar="DIR", help="apply the increment to DIR (a base tree of --seed) in place")
    args = ap.parse_args()
    if args.mutate:
        mutate(args.seed, args.mutate)
    elif args.out and args.count:
        gen = Gen(args.seed)
        for i in range(args.count):
            gen.seed = args.seed + i
            generate(args.seed + i, args.preset, os.path.join(args.out, str(i)), gen)
    elif args.out:
        gen = generate(args.seed, args.preset, args.out)
        if args.incremental:
            mutate(args.seed, args.out, gen)
    else:
        ap.error("give --out DIR or --mutate DIR")


if __name__ == "__main__":
    main()
