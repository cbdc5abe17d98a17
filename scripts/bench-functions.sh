#!/usr/bin/env bash
# Function benchmark: arm64 release zips (cargo lambda build --release --arm64), then the
# native release binaries run against a local Lambda Runtime API with the emulator behind
# them. Prints `BENCH <function>.<figure> <value> <unit>` lines (see bench/lambda_bench.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/setup-emulator.sh >/dev/null
bash scripts/setup-tools.sh >/dev/null
# Release builds get their own target dir, so they never hold the debug build's lock.
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/shop-failover/target-release}"
packages=(-p rds-promoter -p env-rewriter -p stream-replicator -p health-monitor)
cargo lambda build --release --arm64 --output-format zip "${packages[@]}"
cargo build --release --locked "${packages[@]}"
exec "$REPO_ROOT/.venv/emulator/bin/python" bench/lambda_bench.py \
  --bin-dir "$CARGO_TARGET_DIR/release" \
  --zip-dir "$CARGO_TARGET_DIR/lambda" \
  --moto-python "$REPO_ROOT/.venv/emulator/bin/python" \
  --repo "$REPO_ROOT"
