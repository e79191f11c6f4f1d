# Spark + MLflow ops toolkit. `make` alone lists the targets. Every target accepts
# RUNTIME=auto|local|docker (auto: docker when a Docker engine answers, else local) and the variables of
# versions.env (e.g. `make up WORKERS=3`, `make submit EXPERIMENT=churn`).
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c

RUNTIME ?= auto
export RUNTIME

.PHONY: help setup lock up down status logs rebuild urls submit relog check-artifacts \
	backup restore clean-data doctor check-versions \
	test test-unit test-integration lint bench clean

help: ## Show this help
	@echo "Usage: make TARGET [RUNTIME=auto|local|docker] [VAR=value ...]"
	@echo
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

setup: ## Make .venv from the pins (reinstalls only when a pin changed)
	@scripts/setup.sh

lock: ## Regenerate constraints.txt from requirements.txt and versions.env, pinned for each of LOCK_PYTHONS
	@scripts/lock.sh

up: ## Start the stack (MLflow + Spark master + WORKERS workers) and wait until healthy
	@scripts/runtime.sh up

down: ## Stop the stack (work/mlflow is kept)
	@scripts/runtime.sh down

status: ## Health of every component; exit 0 only when all are healthy (ARGS=--json)
	@scripts/runtime.sh status $(ARGS)

logs: ## Show logs of all components, or one: make logs C=spark-worker-1 [FOLLOW=1] [TAIL=50]
	@scripts/runtime.sh logs $(C)

urls: ## Print the stack's URLs
	@scripts/runtime.sh urls

rebuild: ## Stop, reinstall/rebuild what changed, start, wait until healthy
	@scripts/runtime.sh rebuild

submit: ## Train the ML pipeline on the cluster and log it to MLflow (EXPERIMENT= DATA= LABEL= ARGS= JOB= CLASS=)
	@scripts/submit.sh

relog: ## Log a kept local copy to MLflow once the server is back: make relog DIR=work/output/EXP/RUN
	@scripts/relog.sh $(DIR)

check-artifacts: ## Prove every artifact is the same in every view (ARGS="--last 5 --checksum")
	@scripts/check-artifacts.sh $(ARGS)

doctor: ## Run every diagnostic of the current runtime; each failure names its runbook section (ARGS=--json)
	@scripts/doctor.sh $(ARGS)

check-versions: ## MLflow and Spark versions of server, venv, Spark UIs, containers vs versions.env (ARGS=--json)
	@scripts/check-versions.sh $(ARGS)

backup: ## Copy work/mlflow (SQLite online backup + artifacts) to work/backups/UTC-TIME, stack up or down (TO=dir)
	@scripts/backup.sh

restore: ## Bring a backup back, stack stopped, current data moved aside: make restore FROM=work/backups/...
	@scripts/restore.sh "$(FROM)"

clean-data: ## Delete work/mlflow (every run and artifact; the only target that does): asks, or CONFIRM=yes
	@scripts/clean-data.sh

test: ## Run every test: lint, unit, integration on the real stack
	@scripts/test.sh all

test-unit: ## Run the unit tests only
	@scripts/test.sh unit

test-integration: ## Run the integration tests only (starts its own stack)
	@scripts/test.sh integration

lint: ## shellcheck on every script, ruff on the Python, hadolint on the Dockerfiles, compose config
	@scripts/lint.sh

bench: ## Run the speed benchmarks in bench/ and print their ratios
	@scripts/bench.sh

clean: ## Remove caches, logs, pid files and outputs (never work/mlflow)
	@scripts/clean.sh
