#!/usr/bin/env bash
# Function benchmark: arm64 release zips (scripts/build.sh: cargo lambda build --release
# --arm64), then the native release binaries run against a local Lambda Runtime API with the
# emulator behind them. Prints `BENCH <function>.<figure> <value> <unit>` lines (see
# tools/lambda_bench.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/venv.sh emulator tools >/dev/null
bash scripts/build.sh
# Release builds get their own target dir (the one scripts/build.sh fills), so they never
# hold the debug build's lock.
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/shop-failover/target-release}"
packages=(-p rds-promoter -p env-rewriter -p stream-replicator -p health-monitor)
cargo build --release --locked "${packages[@]}"
python="${EMULATOR_VENV:-$REPO_ROOT/.venv/emulator}/bin/python"
exec "$python" tools/lambda_bench.py \
  --bin-dir "$CARGO_TARGET_DIR/release" \
  --zip-dir "$CARGO_TARGET_DIR/lambda" \
  --moto-python "$python" \
  --repo "$REPO_ROOT"
