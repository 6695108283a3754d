# The platform's entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
BOOTSTRAP := .cache/uv-bootstrap
UV := $(BOOTSTRAP)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

$(UV):
	$(PYTHON) -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --compile-bytecode --python $(PYTHON)
	@touch $@

.PHONY: help install demo test lint format compile serve clean stack-up stack-down stack-status image \
	cluster-up cluster-down cluster-status test-node images

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(STAMP) ## create or update the virtual environment from the lock file

demo: $(STAMP) ## generate data, run the whole pipeline locally, serve the champion and query it
	$(VENV)/bin/python -m pipelines.demo

test: $(STAMP) ## lint (Python, imports, SQL), then every test: the default tier and, beside it, the node tier
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo --cache-dir .cache/import-linter
	$(VENV)/bin/sqlfluff lint --disable-progress-bar dbt/models dbt/tests
	$(VENV)/bin/python -m tests.tiers

lint: $(STAMP) ## ruff lint and format check, the import rules of the layout, sqlfluff on the dbt project
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo --cache-dir .cache/import-linter
	$(VENV)/bin/sqlfluff lint --disable-progress-bar dbt/models dbt/tests

format: $(STAMP) ## format the code with ruff
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

compile: $(STAMP) ## compile the pipeline to pipelines/churn_training.yaml
	$(VENV)/bin/lakehouse compile

serve: $(STAMP) ## start the model server for the current champion
	$(VENV)/bin/lakehouse serve

stack-up: $(STAMP) ## start the stack services on loopback (PostgreSQL, Redis, S3, Trino, MLflow)
	infrastructure/local/stack.sh up

stack-down: ## stop the stack services
	infrastructure/local/stack.sh down

stack-status: ## health of the stack services
	infrastructure/local/stack.sh status

cluster-up: $(STAMP) ## start a single-node Kubernetes cluster here (root; state in .lakehouse/cluster)
	$(VENV)/bin/python -m infrastructure.node up

cluster-down: $(STAMP) ## stop the node and remove what it added to the host (WIPE=1: its state too)
	$(VENV)/bin/python -m infrastructure.node down $(if $(WIPE),--wipe)

cluster-status: $(STAMP) ## what of the node runs, and whether it is Ready
	$(VENV)/bin/python -m infrastructure.node status

test-node: $(STAMP) ## the single-node cluster tests (root; starts and removes a node of their own)
	$(VENV)/bin/pytest tests/node -m node -x

image: $(STAMP) ## build the platform image (name and tag: the `image` setting) with a Docker engine
	@image=$$($(VENV)/bin/python -c 'from components.core.settings import get_settings; print(get_settings("cluster").image)'); \
	if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then \
		echo "make image: no Docker engine here (docker info failed); build $$image on a machine with one"; exit 2; fi; \
	if [ ! -d data ]; then echo "make image: no data/ to put in the image: run \`lakehouse data generate\` first"; exit 2; fi; \
	docker build -t "$$image" .

images: $(STAMP) ## build the images here with BuildKit, no registry (IMAGES="platform postgres": some); import into a running node
	$(VENV)/bin/python -m infrastructure.images build $(IMAGES)

clean: ## remove the local state (.lakehouse/): catalog, warehouse, MLflow, Feast
	rm -rf .lakehouse
