#!/usr/bin/env bash
# The local failover drill: sets up its tools, builds the four functions, then runs a
# two-region shop through a regional failure and an approved failback on the emulator.
# Usage: scripts/drill.sh [--scenario region-outage|flapping|server-failure|partition|chaos] [--no-failback] [--json FILE] [--html FILE]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/venv.sh emulator tools >/dev/null
export PATH="$REPO_ROOT/.venv/tools/bin:$PATH"
echo "==> building the functions and the drill (target dir: $CARGO_TARGET_DIR)"
cargo build --locked --quiet -p rds-promoter -p env-rewriter -p stream-replicator -p health-monitor -p shop-drill --bins
exec "$CARGO_TARGET_DIR/debug/drill" "$@"
