#!/usr/bin/env bash
# tools/test-ledger: a test set is scored once for the models it is published for; other models on
# the same set, or a retired dataset's test split, are refused (evaluation hygiene).
set -euo pipefail
ledger_tool=$1
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$t/ds/d1" "$t/ds/d2" "$t/m1" "$t/m2"
echo '{"name":"d1","dump_elf_sha256":"aa11"}' > "$t/ds/d1/meta.json"
echo '{"name":"d2","dump_elf_sha256":"bb22"}' > "$t/ds/d2/meta.json"
echo '{"test":["d1","d2"]}' > "$t/ds/manifest.json"
echo model-a > "$t/m1/task_struct.cereal"; echo model-b > "$t/m2/task_struct.cereal"
L=(--ledger "$t/ledger.tsv")
"$ledger_tool" "${L[@]}" check "$t/ds" "$t/m1" d1 d2 || fail "a fresh set must pass"
"$ledger_tool" "${L[@]}" record "$t/ds" "$t/m1" d1 d2 >/dev/null
"$ledger_tool" "${L[@]}" record "$t/ds" "$t/m1" d2 d1 >/dev/null
[ "$(grep -vc '^#' "$t/ledger.tsv")" = 1 ] || fail "the same set recorded twice (order must not matter)"
"$ledger_tool" "${L[@]}" check "$t/ds" "$t/m1" d2 d1 || fail "reproducing with the published models must pass"
if "$ledger_tool" "${L[@]}" check "$t/ds" "$t/m2" d1 d2 2>"$t/err"; then fail "other models on a scored set must be refused"; fi
grep -q "already scored" "$t/err" || fail "refusal must say why: $(cat "$t/err")"
"$ledger_tool" "${L[@]}" check "$t/ds" "$t/m2" d1 || fail "a different set (d1 alone) is not the scored one"
printf 'retired\t%s\ttest\n' "$(sha256sum "$t/ds/manifest.json" | cut -c1-64)" >> "$t/ledger.tsv"
if "$ledger_tool" "${L[@]}" check "$t/ds" "$t/m1" d1 2>"$t/err"; then fail "a retired test split must be refused"; fi
grep -q retired "$t/err" || fail "refusal must name the retirement"
echo "test-ledger: ok"
