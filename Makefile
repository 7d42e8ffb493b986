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
# Container images (`make images`): <IMAGE_REGISTRY>/lokistack and <IMAGE_REGISTRY>/lokistack-operator,
# tagged IMAGE_TAG (default: the chart's appVersion, which is the tag the chart deploys).
CHART := charts/lokistack-operator
DOCKER ?= docker
IMAGE_REGISTRY ?= localhost/lokistack
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' $(CHART)/Chart.yaml)

.PHONY: help run test test-unit test-integration tools cluster cluster-down lint bench proto system-deps clean images chart

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

images: ## build the lokistack and lokistack-operator images (IMAGE_REGISTRY, IMAGE_TAG; needs Docker)
	@command -v $(DOCKER) >/dev/null 2>&1 || { \
		echo "make images: '$(DOCKER)' is not installed; install Docker (or set DOCKER=podman) to build images"; exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { \
		echo "make images: '$(DOCKER)' cannot reach a container engine (is the daemon running? see '$(DOCKER) info')"; exit 1; }
	$(DOCKER) build -f components/Dockerfile -t $(IMAGE_REGISTRY)/lokistack:$(IMAGE_TAG) .
	$(DOCKER) build -f operator/Dockerfile -t $(IMAGE_REGISTRY)/lokistack-operator:$(IMAGE_TAG) .

chart: $(STAMP) ## helm lint and helm template the operator chart with each of its ci/ value sets
	@helm=$$(PYTHONPATH=tools $(VENV_PY) -c 'from testinfra import binaries; print(binaries.binary_path("helm"))') || exit 1; \
		for values in $(CHART)/ci/*-values.yaml; do \
			echo "== $$values"; \
			"$$helm" lint --strict $(CHART) --values "$$values" || exit 1; \
			"$$helm" template lokistack-operator $(CHART) --namespace lokistack-operator \
				--values "$$values" >/dev/null || exit 1; \
			echo "helm template: ok"; \
		done

clean: ## remove the virtualenv and caches (not the tools cache, not ./data)
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis
