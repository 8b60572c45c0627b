"""The dataset manifest as dmtrain reads it (train/dataset.cpp, Manifest::load): the format line, header
fields, the train/validation/test name arrays written compact, and "dumps" with one meta.json record a
line. make-dataset writes the same shape in bash; tools/lobo and tools/make-cut-set write it through here.
"""
import json


def manifest_text(header, splits, records):
    """header: (key, value) pairs after "format", each value as json.dumps writes it; splits: "train",
    "validation", "test" → dump names (a missing split is empty); records: the dumps' meta.json records."""
    lines = ['{', '  "format":"deepmem dataset manifest v1",']
    lines += [f'  "{key}":{json.dumps(value)},' for key, value in header]
    lines += [f'  "{split}":{json.dumps(list(splits.get(split, [])), separators=(",", ":"))},'
              for split in ("train", "validation", "test")]
    lines.append('  "dumps":[')
    if records:
        lines.append(",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in records))
    lines += ['  ]', '}']
    return "\n".join(lines) + "\n"
