#!/usr/bin/env bash
# Build (once) and cache the llama-cpp-python wheel that serves the local model (issue 11).
#
# Prints, as the last line of stdout, the path of the cached wheel. Everything else goes to stderr.
#
# llama-cpp-python is published as an sdist that compiles llama.cpp (about 12 CPU-minutes with
# the default options). The wheel is cached outside the clone, keyed by version and by the CPU's
# instruction-set flags, because it is built with GGML_NATIVE=ON (AVX2/AVX-512 where the CPU has
# them): a wheel built on one CPU may not run on another.
#
# AMX is turned off (-mno-amx-*): on this project's VMs the CPU advertises amx_tile but the
# first tile instruction (ldtilecfg in ggml_backend_amx_mul_mat) dies with a general protection
# fault, so a native build with AMX segfaults on its first completion. GCC keeps explicit
# -mno-* flags over what -march=native implies. The cache key includes the build options, so a
# wheel built with other options is never reused.
#
# Environment:
#   AGENTENSOR_WHEEL_CACHE  cache root (default: $HOME/.cache/agentensor/wheels)
#   PIP                     pip to build with (default: python3.11 -m pip)
set -euo pipefail

readonly VERSION="0.3.36"
log() { printf '[llama-wheel] %s\n' "$*" >&2; }

cpu_key=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|avx2|avx512[a-z_0-9]*|fma|f16c|sse4_2|amx[a-z_0-9]*)$' | sort | sha256sum | cut -c1-12)
# Only the library the Python server loads: no tests, examples, tools, HTTP server or curl.
readonly BUILD_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF \
-DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF -DGGML_OPENMP=ON"
readonly BUILD_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
opt_key=$(printf '%s|%s' "$BUILD_ARGS" "$BUILD_CFLAGS" | sha256sum | cut -c1-8)
CACHE="${AGENTENSOR_WHEEL_CACHE:-$HOME/.cache/agentensor/wheels}/llama-cpp-python-$VERSION-$cpu_key-$opt_key"
found=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -1 || true)
if [[ -n "$found" ]]; then
  printf '%s\n' "$found"
  exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE.lock"
flock 9
found=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -1 || true)
if [[ -z "$found" ]]; then
  tmp=$(mktemp -d "$CACHE.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "building llama-cpp-python $VERSION (native CPU flags, server-only parts; several minutes)"
  export CMAKE_ARGS="$BUILD_ARGS" CFLAGS="$BUILD_CFLAGS ${CFLAGS:-}" CXXFLAGS="$BUILD_CFLAGS ${CXXFLAGS:-}"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  ${PIP:-python3.11 -m pip} wheel --no-deps --no-cache-dir -w "$tmp" "llama-cpp-python==$VERSION" >&2
  mv "$tmp"/llama_cpp_python-*.whl "$CACHE"/
  found=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl | head -1)
fi
printf '%s\n' "$found"
