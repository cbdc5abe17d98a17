#!/usr/bin/env bash
# Creates (or updates) the project-local venv with cargo-lambda (and zig) from PyPI.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
venv="$REPO_ROOT/.venv/tools"
requirements="$REPO_ROOT/tests/tools-requirements.txt"
marker="$venv/.requirements-installed"
if [[ -x "$venv/bin/cargo-lambda" ]] && cmp -s "$requirements" "$marker"; then
  echo "tools venv up to date: $venv"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
[[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$marker"
echo "tools venv ready: $(PATH="$venv/bin:$PATH" cargo lambda --version)"
