#!/usr/bin/env bash
# Nightly campaign: a long randomized matrix on the default temp dir and on
# tmpfs, seed from the date (printed, recorded in each report).
# Exits non-zero on any model violation or unexpected verdict.
set -uo pipefail
cd "$(dirname "$0")/.."
date_tag=$(date -u +%Y-%m-%d)
seed=$(date -u +%Y%m%d)
out="reports/out/nightly-$date_tag"
mkdir -p "$out"
echo "nightly $date_tag: seed $seed"
cargo build --release -p crashlab || exit 2
status=0
run() {
  local name=$1; shift
  ./target/release/crashlab matrix --seed "$seed" --points random:2000 --trials 1 --out "$out/$name.json" "$@"
  local rc=$?
  [ "$rc" -gt "$status" ] && status=$rc
}
run default-tmp
[ -d /dev/shm ] && run tmpfs --dir /dev/shm
run large-file --size 16777216 --points random:200
exit "$status"
