# One make vocabulary: demo, test, lint. Each bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint gpu-test bench clean protos

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

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/bench_nvml_facade.py
	$(BIN)/python bench/exporter.py
	$(BIN)/python bench/mig.py

# Regenerate the kubelet API stubs from src/gpu_operator/protos/*.proto (checked in; a test
# fails when they differ from what this produces).
protos: $(STAMP)
	cd src && ../$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. \
		--pyi_out=. gpu_operator/protos/deviceplugin_v1beta1.proto gpu_operator/protos/podresources_v1.proto

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
