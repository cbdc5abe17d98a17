#!/usr/bin/env bash
# Creates (or updates) the project-local venv with the pinned moto server.
# The test harness does the same on first use; running it here makes CI logs clearer.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
venv="${EMULATOR_VENV:-$REPO_ROOT/.venv/emulator}"
requirements="$REPO_ROOT/tests/emulator-requirements.txt"
marker="$venv/.requirements-installed"
if [[ -x "$venv/bin/moto_server" ]] && cmp -s "$requirements" "$marker"; then
  echo "emulator venv up to date: $venv"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
[[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$marker"
echo "emulator venv ready: $("$venv/bin/moto_server" --version 2>/dev/null || echo "$venv")"
