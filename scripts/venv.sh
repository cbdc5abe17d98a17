#!/usr/bin/env bash
# Creates (or updates) the project-local Python venvs, one per name, from the pinned
# requirements in tools/requirements/<name>.txt:
#   emulator  .venv/emulator  the moto server (tests, drill, benchmark); EMULATOR_VENV overrides the path
#   tools     .venv/tools     cargo-lambda with zig (builds, `cargo lambda watch`)
#   infra     .venv/infra     cfn-lint, SAM CLI, checkov (scripts/lint-infra.sh); INFRA_VENV overrides the path
#   peer      .venv/peer      boto3 alone, for the replicator benchmark's peer (tools/replicator_peer.py)
# Idempotent: a marker file in the venv holds the requirements it was installed from, so a
# second run is a no-op until they change (or a venv's tools are missing). Concurrent runs
# for one venv (test processes, scripts) wait on a lock file next to it (flock, util-linux).
# PYTHON names the interpreter that creates a venv (default python3).
# This is the only venv bootstrap: scripts/*.sh, .ci/run, the Makefile and the test kit
# (tests/testkit/src/venv.rs) all call it.
# Usage: scripts/venv.sh NAME...   e.g. scripts/venv.sh emulator tools infra
set -euo pipefail
# Not env.sh: the test kit runs this from inside `cargo test`, where env.sh's target-dir
# setup has no business.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  echo "usage: scripts/venv.sh NAME... (names: emulator, tools, infra, peer)" >&2
  exit 2
}

# The binaries each venv must provide, and how to report its versions.
binaries() {
  case "$1" in
    emulator) echo moto_server ;;
    tools) echo cargo-lambda ;;
    infra) echo cfn-lint sam checkov ;;
    peer) echo python ;;
    *) return 1 ;;
  esac
}

versions() {
  local name=$1 venv=$2
  case "$name" in
    emulator) "$venv/bin/moto_server" --version 2>/dev/null || echo "$venv" ;;
    tools) PATH="$venv/bin:$PATH" cargo lambda --version ;;
    infra) echo "$("$venv/bin/cfn-lint" --version), $(SAM_CLI_TELEMETRY=0 "$venv/bin/sam" --version), checkov $("$venv/bin/checkov" --version)" ;;
    peer) "$venv/bin/python" -c 'import boto3; print("boto3", boto3.__version__)' ;;
  esac
}

label() {
  case "$1" in
    infra) echo "infra tools venv" ;;
    *) echo "$1 venv" ;;
  esac
}

has_binaries() {
  local venv=$1 binary
  shift
  for binary in "$@"; do
    [[ -x "$venv/bin/$binary" ]] || return 1
  done
}

ensure() {
  local name=$1 venv requirements marker started
  local -a needed
  read -r -a needed <<< "$(binaries "$name")"
  case "$name" in
    emulator) venv="${EMULATOR_VENV:-$REPO_ROOT/.venv/emulator}" ;;
    infra) venv="${INFRA_VENV:-$REPO_ROOT/.venv/infra}" ;;
    *) venv="$REPO_ROOT/.venv/$name" ;;
  esac
  requirements="$REPO_ROOT/tools/requirements/$name.txt"
  marker="$venv/.requirements-installed"
  mkdir -p "$(dirname "$venv")"
  # Held until this function returns (the descriptor is closed below).
  exec 9> "$venv.lock"
  if command -v flock > /dev/null; then
    flock 9
  fi
  if has_binaries "$venv" "${needed[@]}" && cmp -s "$requirements" "$marker"; then
    echo "$(label "$name") up to date: $venv"
    exec 9>&-
    return 0
  fi
  started=$(date +%s)
  [[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  if ! has_binaries "$venv" "${needed[@]}"; then
    echo "$venv: installing $requirements did not provide ${needed[*]}" >&2
    exit 1
  fi
  cp "$requirements" "$marker"
  echo "$(label "$name") ready in $(( $(date +%s) - started )) s: $(versions "$name" "$venv")"
  exec 9>&-
}

(( $# )) || usage
for name in "$@"; do
  binaries "$name" > /dev/null || usage
done
for name in "$@"; do
  ensure "$name"
done
