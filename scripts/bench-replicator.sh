#!/usr/bin/env bash
# The stream-replicator benchmark against the boto3 peer (tools/replicator_bench.py): the
# release binary and tools/replicator_peer.py, each run as Lambda runs it, on 1,000-record
# and 6 MB batches, against loopback targets answering after 0, 10 and 50 ms and against the
# emulator. Prints BENCH lines for both and TARGET lines for the goals; extra arguments go
# to the script (e.g. --runs 5, --targets loopback-50, --workloads 6mb).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/venv.sh emulator peer >/dev/null
# Release builds get their own target dir (the one scripts/bench-functions.sh fills).
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/shop-failover/target-release}"
cargo build --release --locked -p stream-replicator
exec "${EMULATOR_VENV:-$REPO_ROOT/.venv/emulator}/bin/python" tools/replicator_bench.py \
  --bin "$CARGO_TARGET_DIR/release/stream-replicator" \
  --peer-python "$REPO_ROOT/.venv/peer/bin/python" \
  --moto-python "${EMULATOR_VENV:-$REPO_ROOT/.venv/emulator}/bin/python" \
  "$@"
