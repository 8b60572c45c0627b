#!/usr/bin/env bash
# Issue 11, real-dumps suite: tools/make-cut-set on the dev dump (a one-dump dataset) cut to 96 MiB,
# then dmtrain --recalibrate --image-absent on it. Whether the cut keeps the kernel image depends on
# where KASLR put it in this dump: without it, the model gets a threshold for such dumps and
# dmdetect uses it; with it, dmtrain refuses, naming why. Exits 77 (skipped) without the dump.
# Args: tools/make-cut-set, dmtrain, dmdetect, the build dir, the source root.
set -euo pipefail
make_cut_set=$1 dmtrain=$2 dmdetect=$3 build=$4 src=$5
dev=${DEEPMEM_DUMPS:-/work/dumps}/dev
for f in DONE dump.elf labels.jsonl meta.json; do
  [ -e "$dev/$f" ] || { echo "skipped: no real dump ($dev/$f missing; set DEEPMEM_DUMPS)"; exit 77; }
done
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir "$t/data"; ln -s "$(cd "$dev" && pwd)" "$t/data/dev"
printf '{\n  "format":"deepmem dataset manifest v1",\n  "train":[],\n  "validation":["dev"],\n  "test":[],\n  "dumps":[\n    %s\n  ]\n}\n' \
  "$(tr -d '\n' < "$dev/meta.json")" > "$t/data/manifest.json"

"$make_cut_set" --from "$t/data" --split validation --cuts 96 --out "$t/cut" --build-dir "$build" 2> "$t/log" \
  || fail "make-cut-set: $(cat "$t/log")"
c=$t/cut/dev-cut96
for f in DONE dump.raw labels.jsonl meta.json; do [ -e "$c/$f" ] || fail "no $c/$f"; done
[ "$(stat -c %s "$c/dump.raw")" -eq $((96 << 20)) ] || fail "dump.raw is $(stat -c %s "$c/dump.raw") bytes, not 96 MiB"
"$build/tools/dm-dump-formats" "$dev/dump.elf" --raw "$t/full.raw" > /dev/null 2>&1 || fail "dm-dump-formats"
cmp -n $((96 << 20)) "$c/dump.raw" "$t/full.raw" || fail "dump.raw is not the first 96 MiB of the dump's raw image"
rm "$t/full.raw"
python3 - "$c/labels.jsonl" "$dev/labels.jsonl" <<'PY' || fail "labels"
import json, sys
kept = [json.loads(l) for l in open(sys.argv[1])]
whole = [json.loads(l) for l in open(sys.argv[2])]
below = [o for o in whole if o.get("paddr") and int(o["paddr"], 16) + o["size"] <= 96 << 20]
assert kept == below and 0 < len(kept) < len(whole), (len(kept), len(below), len(whole))
PY
grep -q '"validation":\["dev-cut96"\]' "$t/cut/manifest.json" || fail "manifest: $(cat "$t/cut/manifest.json")"
grep -q '"name":"dev-cut96",.*"cut_mib":96' "$c/meta.json" || fail "meta.json: $(cat "$c/meta.json")"
if "$make_cut_set" --from "$t/data" --split validation --cuts 96 --out "$t/cut" --build-dir "$build" 2> "$t/log"; then
  fail "an existing --out was written over"
fi
grep -q "exists" "$t/log" || fail "refusal of an existing --out: $(cat "$t/log")"

rc=0
"$dmtrain" "$src/data/configs/task_struct.ini" --recalibrate "$src/data/models/task_struct.cereal" --image-absent \
  --data.manifest "$t/cut/manifest.json" --run.output "$t/m.cereal" > "$t/out" 2> "$t/log" || rc=$?
cat "$t/log"
"$build/tools/dmgraph" build "$c/dump.raw" -o "$t/cut.dmg" --quiet > /dev/null 2>&1 || fail "dmgraph build of the cut"
if "$build/tools/dmgraph" info "$t/cut.dmg" | grep -q "^kernel image .*(the dump lacks it)"; then
  [ "$rc" -eq 0 ] || fail "dmtrain refused a cut that lacks the kernel image (rc $rc)"
  grep -q "threshold for dumps without the kernel image: " "$t/log" || fail "no threshold chosen"
  "$dmdetect" -w "$t/m.cereal" "$c/dump.raw" --addresses-only --format json -o "$t/det.jsonl" 2> "$t/det.err" \
    || fail "dmdetect: $(cat "$t/det.err")"
  grep -q "the dump lacks the kernel image: model task_struct detects at" "$t/det.err" || fail "dmdetect: $(cat "$t/det.err")"
  echo "the cut lacks the kernel image: $(grep -o 'threshold for dumps without the kernel image: [0-9.]*' "$t/log")"
else
  [ "$rc" -eq 1 ] || fail "dmtrain on a cut that keeps the kernel image: rc $rc"
  grep -q "holds the kernel image" "$t/log" || fail "the refusal does not say why"
  echo "the cut keeps the kernel image: refused"
fi
echo "ok"
