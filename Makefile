# Lokistack: the two commands a user needs are `make run` and `make test`.
# Everything else here is for developers; `make help` lists it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests run on 2 cores; the infrastructure fixtures are session-scoped, so one worker.
PYTEST := $(VENV_PY) -m pytest
TOOLS := PYTHONPATH=tools $(VENV_PY) -m testinfra

.PHONY: help run test test-unit test-integration tools cluster cluster-down lint bench proto system-deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(VENV_PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

system-deps: ## install the Debian packages the tests need (openssl), if missing
	@bash tools/system-deps.sh

tools: system-deps $(STAMP) ## build or reuse etcd, Kubernetes, kwok, MinIO and helm (cache: ~/.cache/lokistack)
	$(TOOLS).build

run: $(STAMP) ## start Lokistack in one process on :3100 with the filesystem store under ./data
	$(VENV)/bin/lokistack --config.file=examples/local.yaml

test: tools ## everything: unit and integration tests against real MinIO and Kubernetes
	@LOKISTACK_FORBID_SKIPS=1 $(PYTEST); rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; failing"; exit 1; fi; \
		exit $$rc

test-unit: $(STAMP) ## the fast tests only (no infrastructure)
	@$(PYTEST) tests/unit; rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "make test-unit: pytest collected no tests; failing"; exit 1; fi; \
		exit $$rc

cluster: tools ## start a local control plane with three kwok nodes; kubeconfig in .cluster/
	$(TOOLS).cluster up --dir .cluster

cluster-down: ## stop every process `make cluster` started
	@$(PYTHON) -c 'import sys; sys.path.insert(0, "tools"); from testinfra import cluster; sys.exit(cluster.main(["down", "--dir", ".cluster"]))'

lint: $(STAMP) ## ruff, mypy --strict, import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP) ## run the benchmarks in bench/ and print their numbers
	$(VENV_PY) bench/run.py

proto: $(STAMP) ## regenerate the committed protobuf modules from components/lokistack/proto/*.proto
	$(VENV_PY) tools/protogen.py

clean: ## remove the virtualenv and caches (not the tools cache, not ./data)
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis
