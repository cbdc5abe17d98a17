# The front door: `make` (or `make help`) lists every task a contributor runs. Each target
# calls the script or command that does the work (scripts/*.sh, the README's commands); the
# scripts stay the implementation and run just as well without make.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The scripts' environment for direct cargo calls: the shared target dir outside the clone
# (CARGO_TARGET_DIR, default ~/.cache/shop-failover/target) and cargo-lambda on PATH.
WITH_ENV := source scripts/env.sh &&
# Release builds (zips, benchmarks, deploys) share their own target dir, as the scripts do.
export BENCH_TARGET_DIR ?= $(HOME)/.cache/shop-failover/target-release
INFRA_BIN = $${INFRA_VENV:-$(CURDIR)/.venv/infra}/bin

# make drill JSON=report.json    also write the report as JSON
JSON ?=
# make deploy CONFIG_ENV=primary  the samconfig.toml environment (secondary or primary)
CONFIG_ENV ?= secondary
# make deploy DEPLOY_FLAGS=       without --guided once samconfig.toml holds your answers
DEPLOY_FLAGS ?= --guided
# make deploy-function FUNCTION=env-rewriter ROLE=<role ARN> ENV_FILE=<file> [NAME=...]
FUNCTION ?=
ROLE ?=
ENV_FILE ?=
PREFIX ?= shop-failover
NAME ?= $(PREFIX)-$(FUNCTION)

.PHONY: help drill test lint bench build failoverctl deploy deploy-function venvs ssm-document clean-venvs

help: ## list the targets (this text)
	@echo "usage: make <target> [VAR=value]"
	@grep -E '^[a-z][a-z-]*:.*## ' $(firstword $(MAKEFILE_LIST)) \
	  | awk 'BEGIN { FS = ":.*## " } { printf "  %-16s %s\n", $$1, $$2 }'

drill: ## the local failover drill (scripts/drill.sh); JSON=FILE also writes the report
	bash scripts/drill.sh $(if $(JSON),--json $(JSON))

test: ## every check and test, what CI runs (scripts/test.sh)
	bash scripts/test.sh

failoverctl: ## the on-call CLI, release build (run it: $BENCH_TARGET_DIR/release/failoverctl --help)
	$(WITH_ENV) CARGO_TARGET_DIR=$(BENCH_TARGET_DIR) cargo build --release --locked -p failoverctl

lint: ## cargo fmt --check, clippy -D warnings, the templates' lint (scripts/lint-infra.sh)
	$(WITH_ENV) cargo fmt --all --check
	$(WITH_ENV) cargo clippy --workspace --all-targets --locked -- -D warnings
	bash scripts/lint-infra.sh

bench: ## function benchmark (scripts/bench-functions.sh), replicator vs boto3 peer (scripts/bench-replicator.sh), cargo bench -p stream-replicator
	bash scripts/bench-functions.sh
	bash scripts/bench-replicator.sh
	$(WITH_ENV) CARGO_TARGET_DIR="$(BENCH_TARGET_DIR)" cargo bench -p stream-replicator

build: ## the four arm64 release zips, cargo lambda build --release --arm64 (scripts/build.sh)
	bash scripts/build.sh

deploy: ## sam build + sam deploy of one stack in infra/; CONFIG_ENV=secondary|primary
	bash scripts/venv.sh tools infra
	$(WITH_ENV) cd infra && SAM_CLI_TELEMETRY=0 "$(INFRA_BIN)/sam" build --config-env $(CONFIG_ENV)
	$(WITH_ENV) cd infra && SAM_CLI_TELEMETRY=0 "$(INFRA_BIN)/sam" deploy $(DEPLOY_FLAGS) --config-env $(CONFIG_ENV)

deploy-function: ## replace one function's code: FUNCTION=… ROLE=<role ARN> ENV_FILE=… (cargo lambda deploy)
	@if [[ -z "$(FUNCTION)" || -z "$(ROLE)" || -z "$(ENV_FILE)" ]]; then \
	  echo "usage: make deploy-function FUNCTION=<crate in functions/> ROLE=<role ARN> ENV_FILE=<KEY=VALUE file> [NAME=$(PREFIX)-<function>]" >&2; \
	  exit 2; \
	fi
	bash scripts/venv.sh tools
	$(WITH_ENV) CARGO_TARGET_DIR="$(BENCH_TARGET_DIR)" cargo lambda build --release --arm64 -p $(FUNCTION)
	$(WITH_ENV) CARGO_TARGET_DIR="$(BENCH_TARGET_DIR)" cargo lambda deploy \
	  --manifest-path functions/$(FUNCTION)/Cargo.toml --lambda-dir "$(BENCH_TARGET_DIR)/lambda" --binary-name $(FUNCTION) \
	  --iam-role "$(ROLE)" --env-file "$(ENV_FILE)" $(NAME)

venvs: ## create or update every venv in .venv/ (scripts/venv.sh emulator tools infra peer)
	bash scripts/venv.sh emulator tools infra peer

ssm-document: ## regenerate infra/ssm/repoint-app-document.json and core.yaml's copy from repoint-app.sh
	$(WITH_ENV) cargo run --locked --quiet -p env-rewriter --example ssm_document -- --write

clean-venvs: ## delete .venv/ (the next command that needs a venv recreates it)
	rm -rf .venv
