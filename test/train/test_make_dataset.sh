#!/usr/bin/env bash
# tools/make-dataset without network or QEMU (--dry-run): argument handling, the private apt state
# (mirror taken from the machine's sources, sources.list of Debian 11/12/13, apt options that keep
# the machine's apt untouched) and each dump's build, CPUs and RAM from its seed.
set -euo pipefail
md=$1
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$t/etc-apt/sources.list.d"
cat > "$t/etc-apt/sources.list.d/debian.sources" <<'SRC'
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security/
Suites: bookworm-security
Components: main
SRC
echo 'deb https://other.example/apt stable main' > "$t/etc-apt/sources.list.d/other.list"
cp -r "$t/etc-apt" "$t/etc-apt.orig"
run() { "$md" --host-apt "$t/etc-apt" --cache "$t/cache" --dry-run "$@"; }

# --- the private apt state
run --kernel linux-image-6.1.0-47-amd64-unsigned > "$t/out" || fail "dry run failed"
src=$t/cache/apt/sources.list
[ -f "$src" ] || fail "no private sources.list"
for s in bullseye bullseye-updates bookworm bookworm-updates bookworm-backports trixie trixie-updates; do
  grep -qx "deb \[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg\] http://mirror.example/debian $s main" "$src" \
    || fail "sources.list lacks $s on the machine's mirror: $(cat "$src")"
done
for s in bullseye-security bookworm-security trixie-security; do
  grep -qx "deb .* http://mirror.example/debian-security $s main" "$src" || fail "sources.list lacks $s"
done
if grep -v mirror.example "$src"; then fail "a host the machine does not use"; fi
grep -q "^apt-get .*-o Dir::Etc::SourceList=$t/cache/apt/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$t/cache/apt/lists -o Dir::Cache=$t/cache/apt/cache .* update$" "$t/out" \
  || fail "apt-get update does not use the private state: $(grep update "$t/out")"
grep -q "^apt-get .*Dir::State::Lists=$t/cache/apt/lists.* download -q linux-image-6.1.0-47-amd64-unsigned$" "$t/out" || fail "no private apt-get download"
diff -r "$t/etc-apt" "$t/etc-apt.orig" >/dev/null || fail "the machine's apt sources were changed"
[ "$(cd "$t/cache" && find . -mindepth 1 -maxdepth 1)" = ./apt ] || fail "a dry run wrote outside CACHE/apt: $(ls "$t/cache")"
grep -qx 'dump-000 1 linux-image-6.1.0-47-amd64-unsigned 1 256' "$t/out" || fail "single build: 1 CPU, 256 MiB expected: $(tail -1 "$t/out")"

# one-line format, trailing slash; security mirror derived; --mirror wins
rm -r "$t/etc-apt/sources.list.d"; echo 'deb [arch=amd64] http://m2.example/debian/ bookworm main' > "$t/etc-apt/sources.list"
run > /dev/null || fail "one-line sources"
grep -q " http://m2.example/debian bookworm main$" "$src" && grep -q " http://m2.example/debian-security trixie-security main$" "$src" \
  || fail "mirror from a one-line sources.list: $(cat "$src")"
run --mirror http://m3.example/debian/ > /dev/null && grep -q " http://m3.example/debian bullseye main$" "$src" || fail "--mirror"
echo 'deb http://example.org/ubuntu jammy main' > "$t/etc-apt/sources.list"
if run 2> "$t/err" >/dev/null; then fail "no Debian mirror must be an error"; fi
grep -q -- "--mirror" "$t/err" || fail "the error must say what to do: $(cat "$t/err")"
echo 'deb http://m2.example/debian bookworm main' > "$t/etc-apt/sources.list"

# --- several builds: from a file, each dump's build by seed, CPUs 1-4, RAM varied
printf '# builds\nlinux-image-5.10.0-46-amd64-unsigned\n\nlinux-image-6.1.0-57-rt-amd64-unsigned  # PREEMPT_RT\nlinux-image-6.12.118+deb13-amd64-unsigned\n' > "$t/kernels.txt"
run --kernels "@$t/kernels.txt" --count 64 --seed 10 --ram vary > "$t/out" || fail "--kernels @FILE"
[ "$(grep -c ' download ' "$t/out")" = 3 ] || fail "three builds, three downloads"
awk '/^dump-/ { n++; k[$3]++; c[$4]++; kc[$3 " " $4]++; if ($5 < 256 || $5 > 5120) bad = 1; if ($5 > 3584) high++
               if ($2 % 3 == 0 && $3 != "linux-image-5.10.0-46-amd64-unsigned") bad = 1 }
     END { exit !(n == 64 && length(k) == 3 && length(c) == 4 && length(kc) >= 9 && high >= 1 && !bad) }' "$t/out" \
  || fail "builds by seed, CPUs 1-4 (not tied to the build) and RAM 256 MiB-5 GiB with some above 4 GiB expected: $(grep ^dump- "$t/out" | head)"
run --kernels "@$t/kernels.txt" --count 64 --seed 10 --ram vary | cmp -s - "$t/out" || fail "the plan must be a function of the seeds"
run --kernels linux-image-a-amd64,linux-image-b-amd64 --smp 2 --count 4 | awk '/^dump-/ && $4 != 2 { exit 1 }' || fail "--smp 2"
run --one "$t/one" --seed 7 --kernels linux-image-a-amd64,linux-image-b-amd64 | grep -qx 'one 7 linux-image-b-amd64 .*' || fail "--one: seed 7 mod 2 takes the second build"

# --- bad arguments: one line on stderr, non-zero exit
for bad in "--smp 0" "--smp 3-1" "--smp x" "--ram 10" "--ram lots" "--kernels foo" "--kernels @$t/absent" "--kernels ,"
do
  # shellcheck disable=SC2086
  if run $bad 2> "$t/err" >/dev/null; then fail "'$bad' accepted"; fi
  [ "$(wc -l < "$t/err")" = 1 ] && grep -q '^make-dataset: ' "$t/err" || fail "'$bad': not one clear line: $(cat "$t/err")"
done
if run --kernels linux-image-a-amd64,linux-image-b-amd64 --kernel-version 1 2>/dev/null; then fail "--kernel-version with two builds"; fi
if run --frobnicate 2>/dev/null; then fail "unknown option accepted"; fi
echo "make-dataset: ok"
