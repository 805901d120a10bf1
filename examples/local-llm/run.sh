#!/usr/bin/env bash
# `make example-llm`: start SmolLM2-135M on llama-cpp-python's server, run the TrainingRun (and
# the EvaluationRun with RUN_EVAL=1) against it, stop the server. Writes out/local-llm/
# (summary.json, report.html) and uses its own SQLite file, out/local-llm/agentensor.db.
#
# Environment: LLM_PORT (default 8080; the manifests are rewritten to it when it differs),
# PYTHON / AGENTENSOR (default .venv/bin/python and .venv/bin/agentensor).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT="${LLM_PORT:-8080}"
OUT="${OUT:-out/local-llm}"
AGENTENSOR="${AGENTENSOR:-.venv/bin/agentensor}"
mkdir -p "$OUT"
rm -f "$OUT/agentensor.db"

LLM_PORT="$PORT" bash hack/llm-server.sh >"$OUT/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 240); do
  if curl -fsS "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "example-llm: the server exited; see $OUT/server.log" >&2; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/v1/models" >/dev/null

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r examples/local-llm/. "$work/"
sed -i "s|http://127.0.0.1:8080/v1|http://127.0.0.1:$PORT/v1|" "$work"/*.yaml
export LOCAL_LLM_API_KEY="${LOCAL_LLM_API_KEY:-local-no-key}"
# The manifests' apiKeyEnv is not a provider's well-known variable: grant it (docs/llm.md "API keys").
export AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST="${AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST:+$AGENTENSOR_MODEL_KEY_ENV_ALLOWLIST,}LOCAL_LLM_API_KEY"
export AGENTENSOR_LLM_CACHE="${AGENTENSOR_LLM_CACHE:-$OUT/llm-cache.sqlite}"
start=$(date +%s)
"$AGENTENSOR" run -f "$work/promptconfig.yaml" -f "$work/trainingrun.yaml" --db "sqlite:///$OUT/agentensor.db" --out "$OUT"
if [[ "${RUN_EVAL:-0}" == 1 ]]; then
  "$AGENTENSOR" run -f "$work/promptconfig.yaml" -f "$work/evaluationrun.yaml" --db "sqlite:///$OUT/agentensor.db" \
    --out "$OUT/eval"
fi
echo "example-llm: done in $(( $(date +%s) - start )) s; see $OUT/summary.json and $OUT/report.html" >&2
