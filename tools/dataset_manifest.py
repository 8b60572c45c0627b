"""The dataset manifest as dmtrain reads it (train/dataset.cpp, Manifest::load): the format line, header
fields, the train/validation/test name arrays written compact, and "dumps" with one meta.json record a
line. The one writer of it: tools/lobo and tools/make-cut-set import write_manifest; tools/make-dataset
(bash) runs this file:

  python3 tools/dataset_manifest.py OUT [--field KEY=VALUE]... [--object KEY=JSON]...
      [--split NAME=DUMP,DUMP...]... [--build RELEASE PACKAGE VERSION MODULES DUMP,DUMP...]... [--meta FILE]...

--field: a number when VALUE is an unsigned integer, else a string; --object: a JSON value as given;
--build: one entry of the "builds" object (after the other fields); --meta: a dump's meta.json, in order.
OUT is written atomically (a temporary file beside it, then renamed).
A dump name is one directory name in the POSIX portable filename set (letters, digits, '.', '_', '-';
not "." or ".."), the rule dmtrain's reader applies: bad_dump_name says what is wrong with one.
"""
import argparse
import json
import os
import re
import sys
import tempfile
from collections import Counter

_PORTABLE_NAME = re.compile(r"[A-Za-z0-9._-]+")
# Keys manifest_text writes itself; "builds" is the one header key with its own meaning (--build).
RESERVED_KEYS = ("format", "train", "validation", "test", "dumps")


def bad_dump_name(name):
    """Why `name` cannot name a dump (train/dataset.cpp, Manifest::load), or None when it can."""
    if not isinstance(name, str) or not _PORTABLE_NAME.fullmatch(name) or name in (".", ".."):
        return f"bad dump name {name!r}: a dump name is letters, digits, '.', '_' and '-' (not . or ..)"
    return None


def manifest_text(header, splits, records):
    """header: (key, value) pairs after "format", each value as json.dumps writes it; splits: "train",
    "validation", "test" → dump names (a missing split is empty); records: the dumps' meta.json records."""
    lines = ['{', '  "format":"deepmem dataset manifest v1",']
    lines += [f'  {json.dumps(key)}:{json.dumps(value, allow_nan=False)},' for key, value in header]
    lines += [f'  "{split}":{json.dumps(list(splits.get(split, [])), separators=(",", ":"))},'
              for split in ("train", "validation", "test")]
    lines.append('  "dumps":[')
    if records:
        lines.append(",\n".join("    " + json.dumps(r, separators=(",", ":"), allow_nan=False) for r in records))
    lines += ['  ]', '}']
    return "\n".join(lines) + "\n"


def write_manifest(path, header, splits, records):
    """manifest_text written to `path` atomically: a temporary file beside it (mode 0666 less the umask,
    as open() would make it), then renamed over it. ValueError when a header key is reserved or
    repeated, a dump is named badly (bad_dump_name), has two records or, with records, a split names a
    dump without one, or a value is NaN or infinite."""
    keys = Counter(key for key, _ in header)
    for key, n in keys.items():
        if key in RESERVED_KEYS or n > 1:
            raise ValueError(f"header key {key!r} is {'reserved' if key in RESERVED_KEYS else 'given twice'}"
                             " (a JSON reader would take one of two values)")
    builds = dict(header).get("builds", {})
    for name in ([n for names in splits.values() for n in names] + [r.get("name") for r in records] +
                 [n for b in (builds.values() if isinstance(builds, dict) else []) for n in b.get("dumps", [])]):
        if why := bad_dump_name(name):
            raise ValueError(why)
    names = Counter(r["name"] for r in records)
    for name, n in names.items():
        if n > 1:
            raise ValueError(f"dump {name!r} has two records")
    for split, listed in splits.items():
        for name in listed:
            if records and name not in names:
                raise ValueError(f"the {split} split names dump {name!r}, which has no record")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w") as f:
            f.write(manifest_text(header, splits, records))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def main(argv):
    p = argparse.ArgumentParser(prog="dataset_manifest.py", description="write a deepmem dataset manifest, as dmtrain reads it")
    p.add_argument("out", help="the manifest to write (atomically)")
    p.add_argument("--field", action="append", default=[], metavar="KEY=VALUE",
                   help="a header field: a number when VALUE is an unsigned integer, else a string")
    p.add_argument("--object", action="append", default=[], metavar="KEY=JSON", help="a header field given as JSON")
    p.add_argument("--split", action="append", default=[], metavar="NAME=DUMP,DUMP...",
                   help="the dumps of split NAME (train, validation or test); a missing split is empty")
    p.add_argument("--build", action="append", nargs=5, default=[],
                   metavar=("RELEASE", "PACKAGE", "VERSION", "MODULES", "DUMPS"), help="one entry of \"builds\"")
    p.add_argument("--meta", action="append", default=[], metavar="FILE", help="a dump's meta.json, its record in \"dumps\"")
    a = p.parse_args(argv)

    def pair(text, what):
        key, sep, value = text.partition("=")
        if not sep or not key:
            p.error(f"{what} '{text}': expected KEY=VALUE")
        return key, value

    header = []
    for text in a.field:
        key, value = pair(text, "--field")
        header.append((key, int(value) if value.isascii() and value.isdigit() else value))
    for text in a.object:
        key, value = pair(text, "--object")
        try:
            header.append((key, json.loads(value)))
        except ValueError as e:
            p.error(f"--object {key}: not JSON ({e})")
    if a.build:
        header.append(("builds", {release: {"kernel_package": package, "kernel_version": version, "modules": modules,
                                            "dumps": [d for d in dumps.split(",") if d]}
                                  for release, package, version, modules, dumps in a.build}))
    splits = {}
    for text in a.split:
        name, dumps = pair(text, "--split")
        if name not in ("train", "validation", "test"):
            p.error(f"--split {name}: expected train, validation or test")
        splits[name] = [d for d in dumps.split(",") if d]
    records = []
    for path in a.meta:
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError) as e:
            print(f"dataset_manifest.py: error: {path}: {e}", file=sys.stderr)
            return 1
        if not isinstance(record, dict) or not isinstance(record.get("name"), str):
            print(f"dataset_manifest.py: error: {path}: not a dump's meta.json (an object with a \"name\")",
                  file=sys.stderr)
            return 1
        records.append(record)
    try:
        write_manifest(a.out, header, splits, records)
    except (OSError, ValueError) as e:   # ValueError: a bad dump name, NaN or infinity
        print(f"dataset_manifest.py: error: cannot write {a.out}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
