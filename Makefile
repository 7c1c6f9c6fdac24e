# Entry points for people and CI. Each target installs what it needs on first use:
# the virtualenv (.venv) and the control plane's Go-built binaries (~/.cache/kadence).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?=
PYTEST_ARGS ?=
# The supported Kubernetes range (docs/compatibility.md); KADENCE_K8S_VERSION picks the
# minor version the control plane is built and started at (default: the newest).
K8S_NEWEST := 1.36
K8S_OLDEST := 1.30
export KADENCE_K8S_VERSION

.PHONY: test lint unit e2e demo cluster-up cluster-down cluster-status install run binaries crds clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed

binaries:
	bash tests/cluster/build.sh

## test: everything CI runs: lint, unit tests, then the end-to-end tests on the local control
## plane at the newest supported Kubernetes, and those marked every_version at the oldest
test: $(BIN)/.installed binaries lint
	$(BIN)/pytest -ra $(PYTEST_ARGS) tests/unit
	KADENCE_K8S_VERSION=$(K8S_NEWEST) bash tests/cluster/build.sh >/dev/null
	KADENCE_K8S_VERSION=$(K8S_NEWEST) $(BIN)/pytest -ra $(PYTEST_ARGS) tests/e2e
	@if [ -n "$$KADENCE_TEST_KUBECONFIG" ]; then \
	  echo "KADENCE_TEST_KUBECONFIG names the cluster: no second pass at Kubernetes $(K8S_OLDEST)"; \
	else \
	  KADENCE_K8S_VERSION=$(K8S_OLDEST) bash tests/cluster/build.sh >/dev/null && \
	  KADENCE_K8S_VERSION=$(K8S_OLDEST) $(BIN)/pytest -ra -m every_version $(PYTEST_ARGS) tests/e2e; \
	fi

lint: $(BIN)/.installed
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/python -m kadence.crdgen --check

unit: $(BIN)/.installed
	$(BIN)/pytest -ra $(PYTEST_ARGS) tests/unit

## e2e: the end-to-end tests (KADENCE_K8S_VERSION=1.30: at that Kubernetes version)
e2e: $(BIN)/.installed binaries
	$(BIN)/pytest -ra $(PYTEST_ARGS) tests/e2e

## crds: regenerate crds/ from the models, and the chart's and kustomize's copies
crds: $(BIN)/.installed
	$(BIN)/python -m kadence.crdgen
	bash deploy/sync-crds.sh

## demo: control plane, CRDs, operator and examples, with a live view (Ctrl-C stops it all)
demo: $(BIN)/.installed binaries
	bash hack/demo.sh

## cluster-up: the local control plane in the background (state: $KADENCE_CLUSTER_DIR, else
## ~/.cache/kadence/cluster; KADENCE_K8S_VERSION=1.30: that Kubernetes version)
cluster-up: $(BIN)/.installed binaries
	@$(BIN)/python -m tests.cluster up

## cluster-down: stop it and delete its state, so the next cluster-up is empty (KEEP=1: keep it)
cluster-down: $(BIN)/.installed
	@$(BIN)/python -m tests.cluster down $(if $(filter-out 0 no false,$(KEEP)),--keep)

cluster-status: $(BIN)/.installed
	@$(BIN)/python -m tests.cluster status

## install: apply the CRDs to the current cluster
install: binaries
	"$$(bash tests/cluster/build.sh)/kubectl" apply --server-side -f crds/

## run: the operator in the foreground against the current kubeconfig (CONFIG=FILE)
run: $(BIN)/.installed
	$(BIN)/kadence run $(if $(CONFIG),--config $(CONFIG))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
