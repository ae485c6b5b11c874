# One make vocabulary: demo, test, lint. Each bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint gpu-test image bench clean protos crds

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	@bash scripts/demo.sh

# Tools the tests drive for real and that pip cannot install as a dependency.
HELM := .tools/helm
$(HELM):
	$(BIN)/python scripts/fetch_helm.py

test: $(STAMP) $(HELM)
	$(BIN)/python -m pytest -q

gpu-test: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu tests/gpu

# The container image, built and smoke-tested (docker/smoke-test.sh runs inside it): with a
# Docker engine where one answers, else with buildah on a debootstrap base (root; see the script).
IMAGE ?= localhost/gpu-operator:dev
image:
	@if docker info >/dev/null 2>&1; then \
	  docker build -f docker/Dockerfile -t $(IMAGE) . && \
	  docker run --rm -v "$(CURDIR)/docker/smoke-test.sh:/smoke-test.sh:ro" $(IMAGE) sh /smoke-test.sh; \
	else sh docker/build-without-engine.sh $(IMAGE); fi

lint: $(STAMP) $(HELM)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/gpu-operator crds --check
	$(HELM) lint --strict deployments/gpu-operator

# Regenerate the ClusterPolicy CRD from the policy model (a test fails when they differ).
crds: $(STAMP)
	$(BIN)/gpu-operator crds

bench: $(STAMP)
	$(BIN)/python bench/bench_nvml_facade.py
	$(BIN)/python bench/exporter.py
	$(BIN)/python bench/mig.py
	$(BIN)/python bench/deviceplugin.py
	$(BIN)/python bench/apiserver.py
	$(BIN)/python bench/operator.py
	$(BIN)/python bench/sandbox.py

# Regenerate the kubelet API stubs from src/gpu_operator/protos/*.proto (checked in; a test
# fails when they differ from what this produces).
protos: $(STAMP)
	cd src && ../$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. \
		--pyi_out=. gpu_operator/protos/deviceplugin_v1beta1.proto gpu_operator/protos/podresources_v1.proto \
		gpu_operator/protos/pluginregistration_v1.proto gpu_operator/protos/dra_v1.proto

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
