#!/usr/bin/env bash
# The test command: formatting, lints, the infrastructure templates' lint (cfn-lint,
# sam validate, checkov, document sync), every test (unit, aws-smithy-mocks, emulator),
# then a check that no emulator process of this checkout was left running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

phase() { echo "==> $1 ($(date -u +%H:%M:%S))"; }

phase "cargo fmt --check"
cargo fmt --all --check

phase "cargo clippy (target dir: $CARGO_TARGET_DIR)"
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "infra lint (cfn-lint, sam validate, checkov, document sync)"
bash scripts/lint-infra.sh

phase "cargo test"
cargo test --workspace --locked

phase "no emulator left running"
if leftover=$(pgrep -f "$REPO_ROOT/tests/moto/fidelity_server.py"); then
  echo "moto processes still running after the tests: $leftover" >&2
  exit 1
fi
echo "none"
