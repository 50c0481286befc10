#!/usr/bin/env bash
# The per-commit checks. Everything crashlab needs comes from crates.io via
# cargo; nothing else is installed. Keep under ~5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== environment"
uname -r
cargo --version
df -h "${TMPDIR:-/tmp}" /dev/shm 2>/dev/null || true

echo "== format"
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check
else
  echo "rustfmt not installed; skipped"
fi

echo "== lint"
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --workspace --all-targets -- -D warnings
else
  echo "clippy not installed; skipped"
fi

echo "== tests (the README's test command)"
cargo test --workspace

echo "== main job smoke run (the README's main command)"
cargo run --release -p crashlab -- matrix --seed 1 --out reports/out/ci.json --quiet
