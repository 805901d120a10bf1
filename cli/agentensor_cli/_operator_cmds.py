"""Cluster-facing commands: ``agentensor operator``, ``agentensor runner`` and ``agentensor promote``.

``runner`` is what a runner Job's Pod executes; ``operator`` runs the kopf control plane;
``promote`` (in :mod:`._promote`) edits a PromptConfig manifest in a Git checkout (GitOps promotion).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import err, outage_retry_seconds, run_id_option
from ._promote import promote

if TYPE_CHECKING:
    from agentensor_api import EvaluationRun, ManifestError, PromptConfig, RunStatus, TrainingRun
    from agentensor_operator import OperatorSettings, ServerSettings
    from agentensor_runner import DataRoots
    from agentensor_store import Store

ROOT_ENV = "AGENTENSOR_ROOT"
"""Test-harness hook: when set, absolute container paths (``--manifest``, ``--base-dir``) are
resolved beneath this folder. The test node agent runs Pods as local processes and mounts their
volumes under it; real Pods never set it."""

EXIT_INVALID = 2
"""An invalid flag, manifest or configuration; for ``agentensor runner`` the same code as
``agentensor_runner.execution.lifecycle.EXIT_INVALID`` (which documents every exit code of a runner),
repeated here so that a bad flag fails at once, before the runner's imports (seconds), and so that
``agentensor operator`` never imports the runner."""


def _container_path(path: Path) -> Path:
    root = os.environ.get(ROOT_ENV)
    if root and path.is_absolute():
        return Path(root) / path.relative_to(path.anchor)
    return path


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


_ManifestOption = Annotated[
    Path, typer.Option("--manifest", help="Multi-document YAML: the run and its resolved PromptConfig.")
]
_BaseDirOption = Annotated[
    Path | None,
    typer.Option("--base-dir", help="Where relative dataset paths resolve (default: the manifest's folder)."),
]
_DbOption = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (default: $AGENTENSOR_DATABASE_URL).")]
_ShardOption = Annotated[
    str | None, typer.Option("--shard", help="I/N: run only shard I of N of an EvaluationRun's cases.")
]
_RunIdOption = Annotated[
    str | None, run_id_option("Database run id, 1-64 characters (default: the run's metadata.uid).")
]


def runner(
    manifest: _ManifestOption = Path("/etc/agentensor/run/manifest.yaml"),
    base_dir: _BaseDirOption = None,
    db: _DbOption = None,
    shard: _ShardOption = None,
    run_id: _RunIdOption = None,
) -> None:
    """Execute the run in MANIFEST to completion (what an operator-created Job runs).

    The run id is the run's ``metadata.uid`` (``--run-id`` for a shard); started again (a
    retried Pod), the run resumes from its last checkpoint. With ``--shard I/N`` an
    EvaluationRun scores only the cases whose id hashes to shard I. Exit codes: 0 Succeeded,
    1 Failed (the verdict is in the database), 2 invalid manifest or configuration, 143 stopped by
    SIGTERM (see ``agentensor_runner.execution.lifecycle``).
    """
    shard_spec = _parse_shard(shard)
    path = _container_path(manifest)
    url = _database_url(db)
    run, configs = _load_run(path, sharded=shard_spec is not None)
    base = _container_path(base_dir) if base_dir is not None else path.parent
    rid = run_id or run.metadata.uid or ""
    from agentensor_runner import exit_at_once_after_sigterm, exit_code

    with exit_at_once_after_sigterm():
        status = _run_to_completion(run, configs, url, base, rid, shard_spec)
    _print_summary(run, rid, status)
    raise typer.Exit(exit_code(status))


def _database_url(db: str | None) -> str:
    """``--db``, else ``$AGENTENSOR_DATABASE_URL``; exits 2 when neither is set."""
    from agentensor_store import DATABASE_URL_ENV

    url = db or os.environ.get(DATABASE_URL_ENV)
    if not url:
        err.print(f"error: no database URL: set {DATABASE_URL_ENV} or pass --db", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    return url


def _load_run(path: Path, *, sharded: bool) -> tuple[TrainingRun | EvaluationRun, list[PromptConfig]]:
    """The one run in the manifest at ``path`` and the PromptConfigs beside it; exits 2 when invalid."""
    from agentensor_api import EvaluationRun, ManifestError, PromptConfig, TrainingRun, load_manifests

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
    if sharded and not isinstance(run, EvaluationRun):
        err.print(f"error: --shard applies to an EvaluationRun, not a {run.kind}", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    return run, configs


def _run_to_completion(
    run: TrainingRun | EvaluationRun,
    configs: list[PromptConfig],
    url: str,
    base: Path,
    run_id: str,
    shard: tuple[int, int] | None,
) -> RunStatus:
    """Execute ``run`` (or its shard) against the store at ``url``; exits 2 on an AgentensorError.

    Once started, the store rides out a database restart or fail-over instead of failing the Pod.
    """
    from agentensor_api import AgentensorError, ManifestError
    from agentensor_store import Store

    store = Store(url)
    try:
        store.upgrade()
        store.outage_retry_seconds = outage_retry_seconds()
        return _execute(store, run, configs, base, run_id, shard)
    except AgentensorError as e:
        err.print(f"error: {e}", highlight=False)
        if isinstance(e, ManifestError):
            _record_config_error(store, run, configs, run_id, e)
        raise typer.Exit(EXIT_INVALID) from e
    finally:
        store.close()


def _execute(
    store: Store,
    run: TrainingRun | EvaluationRun,
    configs: list[PromptConfig],
    base: Path,
    run_id: str,
    shard: tuple[int, int] | None,
) -> RunStatus:
    """Run ``run`` (or shard ``shard`` of it) until it ends or SIGTERM stops it.

    A shard that holds no case (more shards than cases) is recorded as Succeeded with zero cases.
    """
    from agentensor_api import EvaluationRun
    from agentensor_runner import (
        execute,
        find_prompt_config,
        record_empty_shard,
        run_until_sigterm,
        shard_run,
        tuned_gc,
    )

    pc = find_prompt_config(run, configs)
    roots = pod_data_roots(run)
    if shard is not None and isinstance(run, EvaluationRun):
        run = shard_run(run, base, shard, roots)
        if not run.spec.dataset.inline:
            return record_empty_shard(store, run, pc, run_id)
    with tuned_gc():
        return run_until_sigterm(execute(run, pc, store, base_dir=base, run_id=run_id, data_roots=roots), say=err.print)


def pod_data_roots(run: TrainingRun | EvaluationRun) -> DataRoots:
    """What a runner Pod's manifest may read besides ``--base-dir``: its declared data volumes.

    The mount paths of ``spec.runner.volumes`` that are ConfigMaps, PVCs or emptyDirs are roots;
    those of Secret volumes are denied (a Secret is a credential, not data, even under a root).
    """
    from agentensor_runner import DataRoots

    spec = run.spec.runner
    secrets = {v.name for v in (spec.volumes or []) if v.secret is not None} if spec else set()
    mounts = (spec.volume_mounts or []) if spec else []
    return DataRoots.of(
        extra=[_container_path(Path(m.mount_path)) for m in mounts if m.name not in secrets],
        denied=[_container_path(Path(m.mount_path)) for m in mounts if m.name in secrets],
    )


def _record_config_error(
    store: Store, run: TrainingRun | EvaluationRun, configs: list[PromptConfig], run_id: str, error: ManifestError
) -> None:
    """Record a spec or data error as the run's Failed verdict, so the operator fails it at once.

    A config error is not transient: a retried Pod would hit it again. The verdict (``Failed=True``,
    reason ``InvalidInput`` for ``spec.dataset.*`` fields, else ``InvalidSpec``, message
    ``<field>: <reason>``) goes to the store, where the operator reads it, marks the run Failed with
    that message and stops the Job's retries. A store that cannot take it is reported on stderr
    only: the exit code 2 still says what happened.
    """
    from agentensor_api import Reason, RunStatus, mark_failed
    from agentensor_store import StoreError

    reason = Reason.INVALID_INPUT if error.field.startswith("spec.dataset") else Reason.INVALID_SPEC
    status = mark_failed(RunStatus(run_id=run_id), reason, f"{error.field}: {error.reason}")
    workflow = next((c.spec.workflow for c in configs if c.name == run.spec.prompt_config_ref.name), None)
    try:
        store.record_verdict(
            run_id=run_id,
            kind=run.kind,
            namespace=run.namespace,
            name=run.name,
            workflow=workflow or run.spec.prompt_config_ref.name,
            spec=run.spec.to_wire(),
            seed=run.spec.dataset.seed,
            status=status,
        )
    except StoreError as e:
        err.print(f"error: could not record the verdict: {e}", highlight=False)


def _print_summary(run: TrainingRun | EvaluationRun, run_id: str, status: RunStatus) -> None:
    """The one-line JSON summary on stdout that the Pod's log ends with."""
    summary = {
        "run": f"{run.kind}/{run.namespace}/{run.name}",
        "runId": run_id,
        "phase": status.phase,
        "bestVersion": status.best_version,
        "bestScore": status.best_score,
        "casesTotal": status.cases_total,
        "message": status.message,
    }
    print(json.dumps(summary), flush=True)


_MaxJobsOption = Annotated[
    int | None,
    typer.Option("--max-concurrent-jobs", min=1, max=1_000_000, help="Active runner Jobs at most, operator-wide."),
]
_MetricsPortOption = Annotated[
    int | None, typer.Option("--metrics-port", min=0, max=65535, help="Port of /metrics (0: off).")
]
_LivenessPortOption = Annotated[
    int | None, typer.Option("--liveness-port", min=0, max=65535, help="Port of /healthz (0: off).")
]

_MetricsBindOption = Annotated[
    str | None,
    typer.Option("--metrics-bind-address", help="[HOST]:PORT of /metrics, e.g. :9090 or 127.0.0.1:9090 (0: off)."),
]
_HealthBindOption = Annotated[
    str | None,
    typer.Option("--health-probe-bind-address", help="[HOST]:PORT of /healthz, e.g. :8080 (0: off)."),
]
_LogFormatOption = Annotated[
    str, typer.Option("--log-format", help="auto (JSON when stderr is not a terminal), text or json.")
]


def operator(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Serve this namespace (repeatable); default: cluster-wide."),
    ] = None,
    max_concurrent_jobs: _MaxJobsOption = None,
    db: _DbOption = None,
    metrics_port: _MetricsPortOption = None,
    liveness_port: _LivenessPortOption = None,
    metrics_bind_address: _MetricsBindOption = None,
    health_probe_bind_address: _HealthBindOption = None,
    log_format: _LogFormatOption = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every handler call.")] = False,
) -> None:
    """Run the Kubernetes operator (kopf) until interrupted.

    Settings come from AGENTENSOR_* environment variables (see docs/operator.md); flags override
    them. The kubeconfig is the in-cluster ServiceAccount, else $KUBECONFIG / ~/.kube/config.
    The bind-address flags follow controller-runtime's (``--metrics-bind-address``,
    ``--health-probe-bind-address``): an empty HOST means every interface, ``0`` turns it off.
    """
    from pydantic import ValidationError

    from agentensor_operator import ConfigurationError, OperatorSettings, describe_settings_error, run

    try:
        settings = OperatorSettings()
    except ValidationError as e:
        err.print(f"error: invalid operator settings: {describe_settings_error(e)}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from e
    _apply_flags(settings, namespace, max_concurrent_jobs, db, metrics_port, liveness_port)
    _apply_bind_addresses(settings.server, metrics_bind_address, health_probe_bind_address)
    try:
        run(settings, verbose=verbose, log_format=log_format)
    except ConfigurationError as e:
        err.print(f"error: {e}", highlight=False)
        raise typer.Exit(EXIT_INVALID) from e


def _apply_flags(
    settings: OperatorSettings,
    namespace: list[str] | None,
    max_concurrent_jobs: int | None,
    db: str | None,
    metrics_port: int | None,
    liveness_port: int | None,
) -> None:
    """Override ``settings`` with the flags given (``None``: not given)."""
    from pydantic import SecretStr

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


def _apply_bind_addresses(server: ServerSettings, metrics: str | None, health: str | None) -> None:
    """Set host and port of /metrics and /healthz from the bind-address flags given."""
    if metrics is not None:
        host, server.metrics_port = _bind_address("--metrics-bind-address", metrics)
        server.metrics_host = host or server.bind_address
    if health is not None:
        host, server.liveness_port = _bind_address("--health-probe-bind-address", health)
        server.liveness_host = host or server.bind_address


def _bind_address(flag: str, value: str) -> tuple[str, int]:
    """``(host, port)`` of ``[HOST]:PORT`` (IPv6 as ``[::1]:9090``); ``0`` is ``("", 0)``, off.

    Exits 2 naming ``flag`` when ``value`` is neither.
    """
    if value == "0":
        return "", 0
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        err.print(
            f"error: {flag} must be [HOST]:PORT with PORT in 1..65535, or 0 (off); got {value!r}", highlight=False
        )
        raise typer.Exit(EXIT_INVALID)
    return host.removeprefix("[").removesuffix("]"), int(port)


def register(app: typer.Typer) -> None:
    """Add the cluster-facing commands to the ``agentensor`` application."""
    app.command("runner")(runner)
    app.command("operator")(operator)
    app.command("promote")(promote)
