#!/usr/bin/env bash
# Creates (or updates) the project-local venv with the pinned infrastructure lint tools
# (cfn-lint, SAM CLI, checkov) from infra/requirements-lint.txt. Idempotent: a marker file
# holding the installed requirements makes a second run a no-op until they change.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
venv="${INFRA_VENV:-$REPO_ROOT/.venv/infra}"
requirements="$REPO_ROOT/infra/requirements-lint.txt"
marker="$venv/.requirements-installed"
if [[ -x "$venv/bin/cfn-lint" && -x "$venv/bin/sam" && -x "$venv/bin/checkov" ]] && cmp -s "$requirements" "$marker"; then
  echo "infra tools venv up to date: $venv"
  exit 0
fi
started=$(date +%s)
mkdir -p "$(dirname "$venv")"
[[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$marker"
echo "infra tools venv ready in $(( $(date +%s) - started )) s: $("$venv/bin/cfn-lint" --version), $(SAM_CLI_TELEMETRY=0 "$venv/bin/sam" --version), checkov $("$venv/bin/checkov" --version)"
