"""Run specs: validation, the small facts a reconcile needs, the runner manifest, spec-change policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from agentensor_api import (
    API_VERSION,
    EvaluationRun,
    ManifestError,
    PromptConfig,
    RunnerSpec,
    TrainingRun,
    api_key_env_name,
    canonical_json,
    parse_resource,
)

from ._names import IMMUTABLE_EXEMPT, SHORT_KIND, JsonDict
from ._trust import Grants, grants


def _document(body: Mapping[str, Any]) -> JsonDict:
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion", API_VERSION),
        "kind": body.get("kind"),
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace") or "default"},
        "spec": dict(body.get("spec") or {}),
    }


def validate_run(body: Mapping[str, Any]) -> TrainingRun | EvaluationRun:
    """Parse a run body with the API models (the same checks ``agentensor run`` makes).

    Raises:
        ManifestError: naming the first invalid field (``spec.dataset.inputField: ...``).
    """
    res = parse_resource(_document(body), source=None)
    if not isinstance(res, TrainingRun | EvaluationRun):
        raise ManifestError("kind", f"expected TrainingRun or EvaluationRun, got {res.kind}")
    return res


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What reconciling needs from a validated run spec (small: no inline dataset)."""

    suspend: bool
    prompt_config: str
    image: str | None
    secret_env: tuple[JsonDict, ...]
    parallelism: int = 1
    runner: RunnerSpec | None = None
    """``spec.runner``: placement and resources of the runner Pods."""
    grants: Grants = field(default_factory=Grants)
    """The Secrets and model env names the run asks for (checked by ``check_grants``)."""


def run_facts(body: Mapping[str, Any]) -> RunFacts:
    """Validate a run body and keep only what the reconcile uses. Raises ManifestError."""
    run = validate_run(body)
    return RunFacts(
        suspend=run.spec.suspend,
        prompt_config=run.spec.prompt_config_ref.name,
        image=run.spec.workflow.image,
        secret_env=tuple(model_secret_env(run)),
        parallelism=run.spec.parallelism,
        runner=run.spec.runner,
        grants=grants(run),
    )


def validate_promptconfig(body: Mapping[str, Any]) -> PromptConfig:
    """Parse a PromptConfig body. Raises ManifestError naming the invalid field."""
    res = parse_resource(_document(body), source=None)
    if not isinstance(res, PromptConfig):
        raise ManifestError("kind", f"expected PromptConfig, got {res.kind}")
    return res


def runner_manifest(run_body: Mapping[str, Any], pc_body: Mapping[str, Any]) -> str:
    """The multi-document YAML a runner Job reads: the run (with its uid) and its PromptConfig.

    The run keeps ``metadata.uid`` so the runner writes its rows under that id.
    """
    run_doc = _document(run_body)
    run_doc["metadata"]["uid"] = (run_body.get("metadata") or {}).get("uid")
    run_doc["metadata"]["generation"] = (run_body.get("metadata") or {}).get("generation")
    pc_doc = _document(pc_body)
    return yaml.safe_dump_all([run_doc, pc_doc], sort_keys=False, allow_unicode=True)


def accepted_spec(manifest: str) -> JsonDict | None:
    """The run spec stored in a runner ConfigMap's manifest (``None`` if unreadable)."""
    try:
        docs = [d for d in yaml.safe_load_all(manifest) if isinstance(d, dict)]
    except yaml.YAMLError:
        return None
    for doc in docs:
        if doc.get("kind") in SHORT_KIND:
            spec = doc.get("spec")
            return dict(spec) if isinstance(spec, dict) else None
    return None


def model_secret_env(run: TrainingRun | EvaluationRun) -> list[JsonDict]:
    """Env entries exposing each ``spec.models[*].apiKeySecretRef`` to the runner.

    The variable is the one the runner reads (``api_key_env_name``: ``apiKeyEnv``, else
    ``AGENTENSOR_MODEL_<NAME>_API_KEY``); the value stays in the Secret (``secretKeyRef``).
    """
    out: list[JsonDict] = []
    for model_name, model in sorted(run.spec.models.items()):
        ref = model.api_key_secret_ref
        env_name = api_key_env_name(model_name, model)
        if ref is None or env_name is None:  # env_name is set whenever ref is
            continue
        out.append({"name": env_name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    return out


def rejected_changes(accepted: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "spec") -> list[str]:
    """Dotted paths where ``current`` differs from the spec a started run accepted.

    ``suspend`` and ``parallelism`` (top level) are exempt. Lists compare as wholes.
    """
    out: list[str] = []
    for key in sorted(set(accepted) | set(current)):
        if prefix == "spec" and key in IMMUTABLE_EXEMPT:
            continue
        a, c = accepted.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(c, Mapping):
            out.extend(rejected_changes(a, c, f"{prefix}.{key}"))
        elif canonical_json(a) != canonical_json(c):
            out.append(f"{prefix}.{key}")
    return out
