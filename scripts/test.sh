#!/usr/bin/env bash
# The test command: formatting, lints, the infrastructure templates' lint (cfn-lint,
# sam validate, checkov, IAM coverage), every test (unit, among them the SSM document sync
# check; aws-smithy-mocks, emulator, sample events replayed through cargo lambda), the
# failover drill, then a check that no emulator or cargo lambda process of this checkout was
# left running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/venv.sh emulator tools peer >/dev/null

phase() { echo "==> $1 ($(date -u +%H:%M:%S))"; }

phase "cargo fmt --check"
cargo fmt --all --check

phase "cargo clippy (target dir: $CARGO_TARGET_DIR)"
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "infra lint (cfn-lint, sam validate, checkov, IAM coverage)"
bash scripts/lint-infra.sh

phase "cargo test"
cargo test --workspace --locked

phase "replicator benchmark harness (one small run, debug binary; its equality check fails on a lossy target)"
bench=(.venv/emulator/bin/python tools/replicator_bench.py --bin "$CARGO_TARGET_DIR/debug/stream-replicator"
  --peer-python .venv/peer/bin/python --runs 1 --targets loopback-0 --workloads 1000-repeated)
"${bench[@]}" | grep -E "mismatched_items|speedup"
# Test-only defect: the target loses every 7th put. The run must fail and say so.
if lossy=$("${bench[@]}" --drop-every 7 2>&1); then
  echo "the benchmark passed against a target that lost writes" >&2
  exit 1
fi
grep -E "FAILED .*items of the target differ" <<< "$lossy"

phase "failover drill (scripts/drill.sh)"
bash scripts/drill.sh --json "$CARGO_TARGET_DIR/drill-report.json" --html "$CARGO_TARGET_DIR/drill-report.html"

phase "failover drill, flapping primary (scripts/drill.sh --scenario flapping): nothing may switch"
bash scripts/drill.sh --scenario flapping --json "$CARGO_TARGET_DIR/drill-flapping.json"

phase "failover drill, one app server fails (scripts/drill.sh --scenario server-failure): reported, the others repointed"
bash scripts/drill.sh --scenario server-failure --json "$CARGO_TARGET_DIR/drill-server-failure.json"

phase "failover drill, partition between the regions (scripts/drill.sh --scenario partition): nothing may switch, checkout never stops"
bash scripts/drill.sh --scenario partition --json "$CARGO_TARGET_DIR/drill-partition.json"

phase "failover drill under chaos (scripts/drill.sh --scenario chaos): 20% of every AWS call fails throughout"
bash scripts/drill.sh --scenario chaos --json "$CARGO_TARGET_DIR/drill-chaos.json"

phase "the drill's report page, rendered by headless Chromium"
page=(.venv/emulator/bin/python tools/check_report_page.py --json "$CARGO_TARGET_DIR/drill-report.json")
"${page[@]}" --html "$CARGO_TARGET_DIR/drill-report.html" --png "$CARGO_TARGET_DIR/drill-report.png"
# Test-only defect: the page without its checks table. The check must fail and say so.
sed 's|<table id="checks">.*</table>||' "$CARGO_TARGET_DIR/drill-report.html" > "$CARGO_TARGET_DIR/drill-report-broken.html"
if broken=$("${page[@]}" --html "$CARGO_TARGET_DIR/drill-report-broken.html" --png "$CARGO_TARGET_DIR/drill-report-broken.png" 2>&1); then
  echo "the report page check passed a page without its checks" >&2
  exit 1
fi
grep -E "the page shows 0 checks" <<< "$broken"

phase "no emulator, MariaDB, cargo lambda watch, nginx or PHP-FPM left running"
# pgrep exits 1 for "none found"; without pgrep the check would pass silently.
command -v pgrep >/dev/null || { echo "pgrep (procps) is needed for the leftover-process check" >&2; exit 1; }
# The emulators' MariaDB servers keep their data under their state dirs (failover-*emulator-*),
# and the drill's nginx and PHP-FPM masters their configuration (in the managed nodes' trees).
# A server killed with its owner (the parent-death signal) can take a moment to exit, so
# each pattern gets up to 15 s to disappear; whatever is still there then was left behind.
for pattern in "$REPO_ROOT/tools/moto_fidelity_server.py" "$REPO_ROOT/.venv/tools/bin/cargo-lambda lambda watch" \
  "mariadbd --no-defaults --user=root --datadir=${TMPDIR:-/tmp}/failover-" \
  "nginx -c ${TMPDIR:-/tmp}/failover-" "php-fpm: master process .${TMPDIR:-/tmp}/failover-"; do
  for _ in $(seq 30); do
    leftover=$(pgrep -f "$pattern") || break
    sleep 0.5
  done
  if leftover=$(pgrep -f "$pattern"); then
    echo "processes still running 15 s after the tests ($pattern): $leftover" >&2
    ps -o pid,ppid,etime,args -p "${leftover//$'\n'/,}" >&2 || true
    exit 1
  fi
done
echo "none"
