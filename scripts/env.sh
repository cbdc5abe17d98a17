# Sourced by the scripts: one persistent build directory outside the clone, so fresh
# clones and CI reuse compiled AWS SDK crates instead of spending 15+ minutes on them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shop-failover/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
# cargo-lambda (and zig) from the tools venv (scripts/setup-tools.sh creates it).
export PATH="$REPO_ROOT/.venv/tools/bin:$PATH"
