#!/usr/bin/env bash
# The arm64 release zips of the four functions, as Lambda runs them:
# `cargo lambda build --release --arm64 --output-format zip`, written to
# <release target dir>/lambda/<function>/bootstrap.zip. The release target dir
# (BENCH_TARGET_DIR, default ~/.cache/shop-failover/target-release) is separate from the
# debug one, so a release build never holds the tests' build lock; the function benchmark
# (scripts/bench-functions.sh) builds through this script into the same dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/venv.sh tools >/dev/null
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/shop-failover/target-release}"
cargo lambda build --release --arm64 --output-format zip \
  -p rds-promoter -p env-rewriter -p stream-replicator -p health-monitor
echo "zips: $CARGO_TARGET_DIR/lambda/<function>/bootstrap.zip"
