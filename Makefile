# One command per task; .ci/run calls `make ci`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install example test check crds ci clean

$(BIN)/agentensor: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so the CPU wheel is used instead of a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[embeddings,llm,operator,dev]"
	touch $@

install: $(BIN)/agentensor

## Train the Banking77 router locally on SQLite (./agentensor.db), then write out/banking77/.
example: install
	$(BIN)/agentensor run -f examples/banking77/promptconfig.yaml -f examples/banking77/trainingrun.yaml --out out/banking77

test: install
	$(BIN)/python -m pytest

check: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/agentensor crds -o crds --check
	$(BIN)/agentensor crds -o charts/agentensor-operator/files/crds --check
	$(BIN)/agentensor docs -o docs/api.md --check
	$(BIN)/hadolint Dockerfile

crds: install
	$(BIN)/agentensor crds -o crds
	$(BIN)/agentensor crds -o charts/agentensor-operator/files/crds
	$(BIN)/agentensor docs -o docs/api.md

ci: check test

.PHONY: image image-example
## The operator + runner image (docs/install.md); needs a Docker engine. IMAGE=registry/name:tag to rename.
IMAGE ?= agentensor:0.1.0
image:
	docker build -t $(IMAGE) .

## The same image with the embeddings extra and the Banking77 data, for examples/banking77 in a cluster.
image-example:
	docker build -t $(IMAGE)-example --build-arg WITH_EXAMPLE=true .

clean:
	rm -rf $(VENV) out agentensor.db
