# Sourced by the scripts: one persistent build directory outside the clone, so fresh
# clones and CI reuse compiled AWS SDK crates instead of spending 15+ minutes on them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shop-failover/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
# cargo-lambda (and zig) from the tools venv (`scripts/venv.sh tools` creates it).
export PATH="$REPO_ROOT/.venv/tools/bin:$PATH"
# Cargo reuses a workspace crate's artifacts from the shared target dir whenever its sources
# are older than them, even when they were built from another checkout, whose paths are
# compiled in (env!("CARGO_MANIFEST_DIR") in tests: the events/ files, the venvs). When the
# target dir was last used from another checkout, make this checkout's sources newer so its
# crates are rebuilt here; the SDK and other dependencies are still reused.
checkout_stamp="$CARGO_TARGET_DIR/.last-checkout"
if [ "$(cat "$checkout_stamp" 2>/dev/null)" != "$REPO_ROOT" ]; then
  find "$REPO_ROOT" -path "$REPO_ROOT/.venv" -prune -o -path "$REPO_ROOT/.git" -prune \
    -o -name '*.rs' -type f -exec touch {} +
  mkdir -p "$CARGO_TARGET_DIR"
  printf '%s\n' "$REPO_ROOT" > "$checkout_stamp"
fi
