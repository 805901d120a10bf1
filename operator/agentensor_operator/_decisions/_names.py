"""Names, labels and identities: how the operator names and marks what it creates for a run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentensor_api import (
    GROUP,
    VERSION,
)

JsonDict = dict[str, Any]

MANAGED_BY = "agentensor-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_RUN_UID = "agentensor.dev/run-uid"
LABEL_KIND = "agentensor.dev/kind"
LABEL_PROMPTCONFIG = "agentensor.dev/promptconfig"
LABEL_SHARD = "agentensor.dev/shard"
ANNOTATION_SHARDS = "agentensor.dev/shards"
ANNOTATION_RUN = "agentensor.dev/run"
RUNNER_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}=runner"
"""Label selector of every runner Job this operator created (what the cap counts)."""

MANIFEST_DIR = "/etc/agentensor/run"
MANIFEST_KEY = "manifest.yaml"
MANIFEST_PATH = f"{MANIFEST_DIR}/{MANIFEST_KEY}"
CONTAINER_NAME = "runner"
DATABASE_URL_ENV = "AGENTENSOR_DATABASE_URL"

IMMUTABLE_EXEMPT = frozenset({"suspend", "parallelism"})
"""Spec fields that may change after a run started (Kueue-style suspend, and parallelism,
which takes effect for Jobs created later)."""

GROUP_NAME = GROUP
API_VERSION_NAME = VERSION
PLURALS = {"TrainingRun": "trainingruns", "EvaluationRun": "evaluationruns", "PromptConfig": "promptconfigs"}
SHORT_KIND = {"TrainingRun": "tr", "EvaluationRun": "er"}


@dataclass(frozen=True, slots=True)
class RunRef:
    """Who a run is: enough to name, label and own its Job."""

    kind: str
    namespace: str
    name: str
    uid: str
    generation: int


def run_ref(body: Mapping[str, Any]) -> RunRef:
    """The identity of a TrainingRun/EvaluationRun body (``metadata.uid`` is the run id in the DB)."""
    meta = body.get("metadata") or {}
    return RunRef(
        kind=str(body.get("kind")),
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name")),
        uid=str(meta.get("uid")),
        generation=int(meta.get("generation") or 1),
    )


def job_name(ref: RunRef, shard: int | None = None) -> str:
    """Deterministic runner Job name: ``<name[:20]>-<tr|er>-<uid>`` (at most 60 characters).

    The uid makes it unique per run object and stable across operator restarts; the name
    prefix is only for humans reading ``kubectl get jobs``. The unsharded name is also the
    run's ConfigMap name. Shard ``i`` of a sharded EvaluationRun gets ``<name[:16]>-er-<uid>-s<i>``.
    """
    prefix = re.sub(r"[^a-z0-9-]+", "-", ref.name.lower())[:20].strip("-") or "run"
    short = SHORT_KIND.get(ref.kind, "run")
    if shard is None:
        return f"{prefix}-{short}-{ref.uid}"
    return f"{prefix[:16].strip('-') or 'run'}-{short}-{ref.uid}-s{shard}"


def shard_count(kind: str, parallelism: int, *, per_pod: int, cap: int) -> int:
    """Runner Pods for one run: ``ceil(parallelism / per_pod)`` for an EvaluationRun, at most ``cap``.

    A TrainingRun is one sequential loop, so always one Pod. Shards are admitted together (each
    takes a slot of the cap), hence at most ``cap`` of them or the run could never start.
    """
    if kind != "EvaluationRun":
        return 1
    return max(1, min(cap, -(-parallelism // per_pod)))


def shard_run_id(uid: str, shard: int | None) -> str:
    """Database run id of one shard (``<uid>-s<i>``); the run itself (and an unsharded run) is ``uid``."""
    return uid if shard is None else f"{uid}-s{shard}"


def labels(ref: RunRef) -> dict[str, str]:
    """Labels of everything created for a run (the selector of runner Jobs is a subset)."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_COMPONENT: "runner",
        LABEL_RUN_UID: ref.uid,
        LABEL_KIND: ref.kind,
    }


def owner_reference(*, api_version: str, kind: str, name: str, uid: str) -> JsonDict:
    """A controller ownerReference: the garbage collector deletes the child with its owner."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
