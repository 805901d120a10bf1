"""Cluster-facing commands: ``agentensor operator``, ``agentensor runner`` and ``agentensor promote``.

``runner`` is what a runner Job's Pod executes; ``operator`` runs the kopf control plane;
``promote`` edits a PromptConfig manifest in a Git checkout (GitOps promotion).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import err, outage_retry_seconds

ROOT_ENV = "AGENTENSOR_ROOT"
"""Test-harness hook: when set, absolute container paths (``--manifest``, ``--base-dir``) are
resolved beneath this folder. The test node agent runs Pods as local processes and mounts their
volumes under it; real Pods never set it."""

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def _container_path(path: Path) -> Path:
    root = os.environ.get(ROOT_ENV)
    if root and path.is_absolute():
        return Path(root) / path.relative_to(path.anchor)
    return path


def shard_of(case_id: str, shards: int) -> int:
    """The shard a case belongs to: a stable hash of its id (sha256), modulo ``shards``."""
    digest = hashlib.sha256(case_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        index, count = (int(p) for p in value.split("/", 1))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        err.print(f"error: --shard must be I/N with 0 <= I < N, got {value!r}", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    return index, count


def _shard_run(run: Any, base_dir: Path, shard: tuple[int, int]) -> Any:
    """The EvaluationRun restricted to one shard's cases, as an inline dataset.

    Cases keep their ids (a ``_case`` column carries the original id when the dataset has no
    ``idField``), so shards' rows never collide and their union is the whole dataset.
    Concurrency per shard is ``ceil(parallelism / N)``.
    """
    from agentensor_runner import load_cases

    index, count = shard
    spec = run.spec
    id_field = spec.dataset.id_field or "_case"
    rows = []
    for case in load_cases(spec.dataset, base_dir=base_dir):
        if shard_of(case.case_id, count) == index:
            rows.append({**case.row, id_field: case.case_id})
    dataset = spec.dataset.model_copy(
        update={"path": None, "format": None, "inline": rows, "id_field": id_field, "limit": None}
    )
    parallelism = max(1, -(-spec.parallelism // count))
    return run.model_copy(update={"spec": spec.model_copy(update={"dataset": dataset, "parallelism": parallelism})})


def _empty_shard(store: Any, run: Any, pc: Any, run_id: str) -> Any:
    """Record a shard that holds no case as Succeeded with zero cases."""
    from datetime import UTC, datetime

    from agentensor_api import RunStatus, now_rfc3339, set_condition

    status = RunStatus(run_id=run_id, phase="Succeeded", cases_total=0, cases_completed=0, cases_failed=0)
    status.start_time = status.completion_time = now_rfc3339()
    status.conditions = set_condition([], "Succeeded", "True", "EmptyShard", "no case hashes to this shard")
    store.create_run(
        run_id=run_id, kind=run.kind, namespace=run.namespace, name=run.name, workflow=pc.spec.workflow,
        spec=run.spec.to_wire(),
    )  # fmt: skip
    store.update_run(run_id, phase="Succeeded", status=status.to_wire(), completed_at=datetime.now(UTC))
    return status


def runner(
    manifest: Annotated[
        Path, typer.Option("--manifest", help="Multi-document YAML: the run and its resolved PromptConfig.")
    ] = Path("/etc/agentensor/run/manifest.yaml"),
    base_dir: Annotated[
        Path | None,
        typer.Option("--base-dir", help="Where relative dataset paths resolve (default: the manifest's folder)."),
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (default: $AGENTENSOR_DATABASE_URL).")] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="I/N: run only shard I of N of an EvaluationRun's cases.")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Database run id (default: the run's metadata.uid).")
    ] = None,
) -> None:
    """Execute the run in MANIFEST to completion (what an operator-created Job runs).

    The run id is the run's ``metadata.uid`` (``--run-id`` for a shard); started again (a
    retried Pod), the run resumes from its last checkpoint. With ``--shard I/N`` an
    EvaluationRun scores only the cases whose id hashes to shard I. Exit codes: 0 Succeeded,
    1 Failed (the verdict is in the database), 2 invalid manifest or configuration.
    """
    from agentensor_api import AgentensorError, EvaluationRun, ManifestError, PromptConfig, TrainingRun, load_manifests
    from agentensor_runner import execute, find_prompt_config, tuned_gc
    from agentensor_store import DATABASE_URL_ENV, Store

    shard_spec = _parse_shard(shard)
    path = _container_path(manifest)
    url = db or os.environ.get(DATABASE_URL_ENV)
    if not url:
        err.print(f"error: no database URL: set {DATABASE_URL_ENV} or pass --db", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    try:
        resources = load_manifests([path])
    except ManifestError as e:
        err.print(f"error: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from e
    runs = [r for r in resources if isinstance(r, TrainingRun | EvaluationRun)]
    configs = [r for r in resources if isinstance(r, PromptConfig)]
    if len(runs) != 1:
        err.print(f"error: {path}: expected exactly one TrainingRun or EvaluationRun, found {len(runs)}")
        raise typer.Exit(EXIT_INVALID)
    run = runs[0]
    if not run.metadata.uid:
        err.print(f"error: {path}: metadata.uid is required (it is the run id in the database)")
        raise typer.Exit(EXIT_INVALID)
    if shard_spec is not None and not isinstance(run, EvaluationRun):
        err.print(f"error: --shard applies to an EvaluationRun, not a {run.kind}", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    base = _container_path(base_dir) if base_dir is not None else path.parent
    rid = run_id or run.metadata.uid
    store = Store(url)
    try:
        store.upgrade()
        # Once started, ride out a database restart or fail-over instead of failing the Pod.
        store.outage_retry_seconds = outage_retry_seconds()
        pc = find_prompt_config(run, configs)
        if shard_spec is not None:
            run = _shard_run(run, base, shard_spec)
        if shard_spec is not None and not run.spec.dataset.inline:
            status = _empty_shard(store, run, pc, rid)  # more shards than cases
        else:
            with tuned_gc():
                status = asyncio.run(execute(run, pc, store, base_dir=base, run_id=rid))
    except AgentensorError as e:
        err.print(f"error: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from e
    finally:
        store.close()
    summary = {
        "run": f"{run.kind}/{run.namespace}/{run.name}",
        "runId": rid,
        "phase": status.phase,
        "bestVersion": status.best_version,
        "bestScore": status.best_score,
        "casesTotal": status.cases_total,
        "message": status.message,
    }
    print(json.dumps(summary), flush=True)
    raise typer.Exit(EXIT_SUCCEEDED if status.phase == "Succeeded" else EXIT_FAILED)


def operator(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Serve this namespace (repeatable); default: cluster-wide."),
    ] = None,
    max_concurrent_jobs: Annotated[
        int | None, typer.Option("--max-concurrent-jobs", min=1, help="Active runner Jobs at most, operator-wide.")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (default: $AGENTENSOR_DATABASE_URL).")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Port of /metrics (0: off).")] = None,
    liveness_port: Annotated[int | None, typer.Option("--liveness-port", help="Port of /healthz (0: off).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every handler call.")] = False,
) -> None:
    """Run the Kubernetes operator (kopf) until interrupted.

    Settings come from AGENTENSOR_* environment variables (see docs/operator.md); flags override
    them. The kubeconfig is the in-cluster ServiceAccount, else $KUBECONFIG / ~/.kube/config.
    """
    from pydantic import SecretStr, ValidationError

    from agentensor_operator import ConfigurationError, OperatorSettings, run

    try:
        settings = OperatorSettings()
    except ValidationError as e:
        err.print(f"error: invalid operator settings: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from e
    if namespace:
        settings.watch.namespaces = list(namespace)
    if max_concurrent_jobs is not None:
        settings.jobs.max_concurrent_jobs = max_concurrent_jobs
    if db is not None:
        settings.database.url = SecretStr(db)
    if metrics_port is not None:
        settings.server.metrics_port = metrics_port
    if liveness_port is not None:
        settings.server.liveness_port = liveness_port
    try:
        run(settings, verbose=verbose)
    except ConfigurationError as e:
        err.print(f"error: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from e


def promote(
    name: Annotated[str, typer.Argument(help="metadata.name of the PromptConfig.")],
    version: Annotated[int, typer.Option("--version", min=1, help="Version number to make active.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Manifest file in a Git checkout.")],
) -> None:
    """Set spec.activeVersion of PromptConfig NAME in FILE, keeping comments and key order.

    Commit the change and let Argo CD or Flux apply it; the operator materializes the version.
    Rollback is the same command with an earlier version.
    """
    try:
        previous = set_active_version(file, name, version)
    except (OSError, ValueError) as e:
        err.print(f"error: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from e
    was = "inline spec" if previous is None else f"version {previous}"
    err.print(f"{file}: PromptConfig {name} activeVersion {version} (was {was})", highlight=False)


def set_active_version(path: Path, name: str, version: int) -> int | None:
    """Set ``spec.activeVersion`` of PromptConfig ``name`` in a (multi-document) YAML file.

    A ruamel.yaml round trip keeps comments, key order and quoting; a new ``activeVersion`` key
    goes right after ``spec.workflow``. Returns the previous activeVersion (``None``: inline).

    Raises:
        ValueError: no such PromptConfig in the file, or the YAML cannot be parsed.
        OSError: the file cannot be read or written.
    """
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    text = path.read_text(encoding="utf-8")
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long prompt texts
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.explicit_start = text.lstrip().startswith("---")
    try:
        docs = list(yaml.load_all(text))
    except YAMLError as e:
        raise ValueError(f"{path}: cannot parse YAML: {e}") from e
    target = next(
        (
            doc
            for doc in docs
            if isinstance(doc, dict)
            and doc.get("kind") == "PromptConfig"
            and (doc.get("metadata") or {}).get("name") == name
        ),
        None,
    )
    if target is None:
        raise ValueError(f"{path}: no PromptConfig named {name!r} (metadata.name)")
    spec = target.get("spec")
    if not isinstance(spec, CommentedMap):
        raise ValueError(f"{path}: PromptConfig {name!r} has no spec mapping")
    previous = spec.get("activeVersion")
    if "activeVersion" in spec:
        spec["activeVersion"] = version
    else:
        keys = list(spec.keys())
        position = keys.index("workflow") + 1 if "workflow" in keys else 0
        spec.insert(position, "activeVersion", version)
    out = io.StringIO()
    yaml.dump_all(docs, out)
    path.write_text(out.getvalue(), encoding="utf-8")
    return int(previous) if previous is not None else None


def register(app: typer.Typer) -> None:
    """Add the cluster-facing commands to the ``agentensor`` application."""
    app.command("runner")(runner)
    app.command("operator")(operator)
    app.command("promote")(promote)
