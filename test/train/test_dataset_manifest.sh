#!/usr/bin/env bash
# tools/dataset_manifest.py, the one writer of the dataset manifest: what it writes dmtrain reads
# (train/dataset.cpp), and what dmtrain's reader would read otherwise than Python's json it refuses
# (attacker 18: a header key "train" beside the split, a dump listed twice, a split naming a dump
# without a record, a bad name in a --build list).
set -euo pipefail
writer=$1
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$t"
echo '{"name":"dev","kernel_release":"6.1.0-47-amd64","note":{"kernel_release":"x"}}' > m1.json
echo '{"name":"b612","kernel_release":"6.12.118+deb13-amd64"}' > m2.json
python3 "$writer" ok.json --field kernel_package=p --split train=dev --split validation=b612 --meta m1.json --meta m2.json \
  || fail "a good manifest was refused"
python3 - ok.json <<'PY' || fail "the manifest is not what was asked"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["format"] == "deepmem dataset manifest v1" and m["train"] == ["dev"] and m["validation"] == ["b612"]
assert m["test"] == [] and [d["name"] for d in m["dumps"]] == ["dev", "b612"] and m["kernel_package"] == "p"
PY
refused() {   # refused OUT WHAT ARGS...: exit 1, one error line saying WHAT, no OUT
  local out=$1 what=$2; shift 2
  if python3 "$writer" "$out" "$@" 2> err.txt; then fail "$out written: $*"; fi
  [ "$(wc -l < err.txt)" = 1 ] || fail "$out: not one error line: $(cat err.txt)"
  grep -q -- "$what" err.txt || fail "$out: expected '$what', got: $(cat err.txt)"
  [ ! -e "$out" ] || fail "$out exists"
}
refused o1.json "header key 'train' is reserved" --object 'train=["b612"]' --split train=dev --meta m1.json
refused o2.json "has no record" --split train=a --meta m1.json
refused o3.json "dump 'dev' has two records" --split train=dev --meta m1.json --meta m1.json
refused o4.json "bad dump name" --build 6.1 p v m 'e\u0301,x' --split train=dev --meta m1.json
refused o5.json "bad dump name" --split 'train=d"x' --meta m1.json
refused o6.json "given twice" --field a=1 --field a=2
ls -A | grep -q '^\.manifest\.' && fail "a temporary file was left behind"
echo "dataset_manifest.py: ok"
