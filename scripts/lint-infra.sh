#!/usr/bin/env bash
# Lints the deployment templates in infra/ offline: cfn-lint, plain `sam validate` (it
# catches SAM event errors cfn-lint misses), checkov (every skip carries its reason in the
# template, next to the resource), and the check that every AWS call of each function is
# allowed by its role (tools/iam_coverage.py). Installs the pinned tools first if needed
# (`scripts/venv.sh infra`). The SSM document in infra/core.yaml is not checked here: the
# env-rewriter unit test `document::tests::the_committed_document_is_rendered_from_the_script`
# (run by `cargo test`) compares it, and infra/ssm/repoint-app-document.json, with the
# document rendered from infra/ssm/repoint-app.sh; `make ssm-document` rewrites both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
venv="${INFRA_VENV:-$REPO_ROOT/.venv/infra}"
bash scripts/venv.sh infra
bin="$venv/bin"

# Offline and quiet: no telemetry, no update checks, no downloads.
export SAM_CLI_TELEMETRY=0 SAM_CLI_DISABLE_VERSION_CHECK=1
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-west-2}"
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

step() { echo "--- $1"; }

step "cfn-lint"
"$bin/cfn-lint" infra/template.yaml infra/core.yaml infra/witness.yaml
echo "cfn-lint: no findings"

step "sam validate"
(cd infra && "$bin/sam" validate --template-file template.yaml --region us-west-2 && "$bin/sam" validate --template-file witness.yaml --region us-east-2)

step "IAM coverage (every SDK call of each function allowed by its role)"
"$bin/python" tools/iam_coverage.py

step "IAM coverage fails on a role without an action the code or the plan needs (injected defect)"
broken=$(mktemp -d)
sed -e 's/Action: sns:Publish$/Action: sns:GetTopicAttributes/' \
  -e 's/Action: states:GetExecutionHistory$/Action: states:DescribeExecution/' infra/core.yaml > "$broken/core.yaml"
if "$bin/python" tools/iam_coverage.py --core "$broken/core.yaml" > "$broken/out" 2>&1; then
  echo "iam_coverage passed a core.yaml whose roles lack sns:Publish and states:GetExecutionHistory" >&2
  exit 1
fi
for missing in "RegionSwitchRole (infra/core.yaml) does not allow sns:Publish" \
  "RdsPromoterRole (infra/core.yaml) does not allow states:GetExecutionHistory"; do
  grep -qF "$missing" "$broken/out" || { echo "iam_coverage did not report: $missing" >&2; cat "$broken/out" >&2; exit 1; }
done
rm -rf "$broken"
echo "iam_coverage reported both missing actions"

# checkov resolves Conditions with parameter defaults, so besides the templates as written
# (the secondary stack) it scans copies whose defaults select the primary stack and every
# optional feature (see tools/checkov_variants.py).
variants=$(mktemp -d)
trap 'rm -rf "$variants"' EXIT
"$bin/python" tools/checkov_variants.py "$variants" > /dev/null
for dir in infra "$variants"/*; do
  step "checkov ${dir#"$variants"/}"
  "$bin/checkov" --directory "$dir" --framework cloudformation --skip-download --quiet --compact
done
echo "infra lint passed"
