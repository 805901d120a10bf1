"""Wiring: build the registry and dependencies, configure kopf, run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from typing import Any

import kopf

from agentensor_store import DATABASE_URL_ENV, DatabaseUnavailableError, OperatorStore, Store

from . import _decisions as d
from ._deps import Deps
from ._errors import KubernetesApiError, OperatorError
from ._k8s import Kube
from ._metrics import Metrics
from ._settings import OperatorSettings
from .handlers import register_all
from .handlers._runs import register_job_watch

log = logging.getLogger("agentensor_operator")

FINALIZER = "agentensor.dev/operator"
ANNOTATION_PREFIX = "operator.agentensor.dev"

TIMER_EXIT_WAIT_SECONDS = 10.0
"""Seconds kopf waits, on deletion, for a timer pass already running to finish before it
releases the finalizer. A pass is a few database and API calls (well under a second when
healthy), so deletion waits for it instead of falling back to kopf's polling."""

TIMER_EXIT_POLL_SECONDS = 2.0
"""Seconds between kopf's re-checks of a timer that did not finish within
:data:`TIMER_EXIT_WAIT_SECONDS` (a pass stuck on a database outage). Kopf's default is 60 s,
which made ``kubectl delete`` hang for up to a minute."""


REPORTING_COMPONENT = "agentensor-operator"
"""The component named by the operator's Events (``kubectl describe``: ``From``); the instance is
the Pod's name (``$HOSTNAME``)."""

LOG_FORMATS = ("auto", "text", "json")
"""``--log-format``: ``auto`` is JSON when stderr is not a terminal (a Pod's log), text otherwise."""


class ConfigurationError(OperatorError):
    """The operator cannot start with these settings (the message names the setting)."""


def _check_grants(settings: OperatorSettings) -> None:
    """Refuse allowed Secrets that name the database Secret: the admin believes runs may read it, and they never may."""
    dsn = settings.database.secret_name
    listed = [s for s in settings.jobs.allowed_secrets if s.split("/", 1)[0] == dsn]
    if listed:
        raise ConfigurationError(
            f"AGENTENSOR_JOB_ALLOWED_SECRETS (chart runner.allowedSecrets) lists {', '.join(map(repr, listed))}, "
            f"the database Secret (AGENTENSOR_DB_SECRET_NAME={dsn}): no run may read the database URL; remove it"
        )


def build(
    settings: OperatorSettings, *, kube: Kube | None = None, store: OperatorStore | None = None
) -> tuple[kopf.OperatorRegistry, Deps]:
    """The kopf registry with every handler, and the dependencies they share.

    Raises:
        ConfigurationError: no database URL (``AGENTENSOR_DATABASE_URL`` / ``--db``), or the
            allowed Secrets list the database Secret (which no run may read).
    """
    _check_grants(settings)
    if store is None:
        store = _open_store(settings)
    deps = Deps(settings=settings, kube=kube or Kube(), store=store, metrics=Metrics())
    registry = kopf.OperatorRegistry()
    register_all(registry, deps)
    register_job_watch(registry, deps)
    _register_lifecycle(registry, deps)
    return registry, deps


def _open_store(settings: OperatorSettings) -> Store:
    """The store at ``settings.database.url``; ``ConfigurationError`` when there is none."""
    if settings.database.url is None:
        raise ConfigurationError("AGENTENSOR_DATABASE_URL is not set (or pass --db): the operator needs the DSN")
    return Store(settings.database.url.get_secret_value())


def _register_lifecycle(registry: kopf.OperatorRegistry, deps: Deps) -> None:
    """kopf's login (a bounded HTTP session), startup and cleanup handlers, all on ``deps``."""

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> Any:
        return bounded_session(kopf.login_via_client(**kwargs), namespaces=len(deps.settings.watch.namespaces))

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
        await _start(deps, settings, memo, kwargs)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        await _stop(deps, memo)


async def _start(deps: Deps, kopf_settings: kopf.OperatorSettings, memo: kopf.Memo, kwargs: dict[str, Any]) -> None:
    """Configure kopf, capture its indexes, migrate the schema, serve ``/metrics``, and start the
    background tasks kept in ``memo``: the census, the run-change listener and the Job resync."""
    _configure_kopf(kopf_settings, deps.settings)
    deps.capture_indexes(kwargs)
    await _upgrade_schema(deps)
    server = deps.settings.server
    if server.metrics_port:
        deps.metrics.serve(server.metrics_port, server.metrics_host or server.bind_address)
    memo["census"] = asyncio.create_task(_census_loop(deps))
    memo["listener"] = _start_listener(deps, asyncio.get_running_loop())
    memo["resync"] = asyncio.create_task(_resync_jobs(deps))
    log.info(
        "agentensor operator started: %s, maxConcurrentJobs=%d, database %s",
        ", ".join(deps.settings.watch.namespaces) or "cluster-wide",
        deps.settings.jobs.max_concurrent_jobs,
        deps.store.url,
    )


async def _stop(deps: Deps, memo: kopf.Memo) -> None:
    """Cancel the census and the Job resync, stop the listener thread, close the store."""
    for key in ("census", "resync"):
        task = memo.get(key)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    listener = memo.get("listener")
    if listener is not None:
        listener.set()
    deps.store.close()


KOPF_CONNECTIONS = 32
"""Connections kopf's aiohttp client may hold to the API server for requests (finalizer and
annotation patches, Events), on top of its watches. kopf's own session is unbounded
(``TCPConnector(limit=0)``): a burst of new runs opened about two TLS connections per run, each
with asyncio's 256 KiB SSL read buffer, and they were still open when nothing changed (616 for
300 runs, under tracemalloc). Requests beyond the bound wait for a free connection."""

WATCH_CONNECTIONS_PER_NAMESPACE = 8
"""A watch holds a connection for as long as it streams: one per watched kind (4 today, room
for 8) in each namespace of ``AGENTENSOR_WATCH_NAMESPACES``; cluster-wide they fit in the base."""


def bounded_session(info: kopf.ConnectionInfo | None, *, namespaces: int = 0) -> kopf.AiohttpSession | None:
    """The credentials kopf found (kubeconfig or in-cluster), in an aiohttp session of our own
    (kopf's "custom HTTP sessions": a login handler may return ``kopf.AiohttpSession``) whose
    connector holds at most :data:`KOPF_CONNECTIONS` + :data:`WATCH_CONNECTIONS_PER_NAMESPACE` x
    ``namespaces`` connections (``namespaces``: how many are watched; 0 for cluster-wide). None
    when kopf found no credentials."""
    import aiohttp

    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=KOPF_CONNECTIONS + WATCH_CONNECTIONS_PER_NAMESPACE * namespaces, ssl=info.as_ssl_context()
        ),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
    )


def _configure_kopf(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings) -> None:
    watch = settings.watch
    kopf_settings.watching.server_timeout = watch.server_timeout_seconds
    kopf_settings.watching.client_timeout = watch.client_timeout_seconds
    kopf_settings.watching.connect_timeout = watch.connect_timeout_seconds
    kopf_settings.watching.inactivity_timeout = watch.inactivity_timeout_seconds
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.background.instant_exit_timeout = TIMER_EXIT_WAIT_SECONDS
    kopf_settings.background.cancellation_polling = TIMER_EXIT_POLL_SECONDS
    # Our CRDs' status schemas are structural: kopf's own status fields would be pruned.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    kopf_settings.posting.level = logging.INFO
    # Events say "From: agentensor-operator" (source.component and reportingComponent), not "kopf".
    kopf_settings.posting.reporting_component = REPORTING_COMPONENT
    kopf_settings.posting.reporting_instance = os.environ.get("HOSTNAME") or REPORTING_COMPONENT


async def _upgrade_schema(deps: Deps) -> None:
    """Apply migrations in a short-lived child process (``agentensor db upgrade``).

    Alembic then never loads into the long-lived operator (about 8 MB of RSS). The DSN goes to
    the child through its environment, never its argv. Safe next to runners doing the same
    (the store serialises upgrades with an advisory lock).

    Raises:
        ConfigurationError: the upgrade failed (the message holds the command's last lines).
    """
    url = deps.settings.database.url
    env = {**os.environ, DATABASE_URL_ENV: url.get_secret_value() if url is not None else ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentensor_cli", "db", "upgrade",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await proc.communicate()
    if proc.returncode != 0:
        tail = output.decode(errors="replace").strip().splitlines()[-5:]
        raise ConfigurationError(f"database migration failed (exit {proc.returncode}): {' / '.join(tail)}")


async def _census_loop(deps: Deps) -> None:
    """Refresh the fleet gauges (runs by phase, active and queued Jobs) every poll interval.

    In memory only: the runs from kopf's census index, the active Jobs from the Job cache."""
    while True:
        runs = deps.census()
        deps.metrics.set_census(runs, deps.changes.jobs.active())
        if deps.indexes:  # before the first handler call the indexes are not captured yet
            deps.metrics.prune_runs((r.kind, r.namespace, r.name) for r in runs)
            live = {r.uid for r in runs}
            for key in [k for k in deps.validated if k[0] not in live]:
                deps.validated.pop(key, None)
        await asyncio.sleep(deps.settings.status.poll_interval_seconds)


async def _resync_jobs(deps: Deps) -> None:
    """The Job cache's safety resync: one cached list of the runner Jobs every
    ``settings.status.resync_seconds``, waking the runs whose Jobs the
    watch got wrong (and the queue's head, in case a phantom Job held a slot)."""
    while True:
        await asyncio.sleep(deps.settings.status.resync_seconds)
        try:
            jobs = await deps.kube.list_jobs(deps.settings.watch.namespaces, d.RUNNER_SELECTOR, cached=True)
        except KubernetesApiError as e:
            log.warning("Job resync: %s", e)
            continue
        changed = deps.changes.jobs.resync(jobs)
        if changed:
            log.info("Job resync: the watch had missed changes to the Jobs of %d run(s)", len(changed))
        for uid in changed:
            deps.changes.wake(uid)
        deps.changes.wake_queue_head(deps.settings.jobs.max_concurrent_jobs)


LISTEN_POLL_SECONDS = 1.0
"""How long one LISTEN poll blocks before checking whether the operator is stopping."""

LISTEN_RECONNECT_SECONDS = 2.0
"""Pause before reopening a lost LISTEN connection (the database restarting, say)."""


def _start_listener(deps: Deps, loop: asyncio.AbstractEventLoop) -> threading.Event | None:
    """Start the thread that turns the store's run-change NOTIFYs into wake-ups; its stop flag.

    ``None`` on SQLite (no NOTIFY: runs are then reflected at the safety resync only). The
    thread owns one database connection. When it loses it, every run is woken (each pass then
    finds the database down, says so in its status and retries every few seconds); after
    reconnecting, every run is woken again, since notifications sent meanwhile are lost.
    """
    if deps.store.dialect != "postgresql":
        log.warning("database %s has no LISTEN/NOTIFY: runs are reflected at the safety resync only", deps.store.url)
        return None
    stop = threading.Event()
    threading.Thread(target=_listen, args=(deps, loop, stop), name="agentensor-listen", daemon=True).start()
    return stop


def _listen(deps: Deps, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
    first = True
    while not stop.is_set():
        try:
            listener = deps.store.listen_run_changes()
        except DatabaseUnavailableError as e:
            log.warning("run-change listener: %s; retrying in %.0f s", e, LISTEN_RECONNECT_SECONDS)
            stop.wait(LISTEN_RECONNECT_SECONDS)
            continue
        if listener is None:
            return
        if not first:
            loop.call_soon_threadsafe(deps.changes.wake_all)
        first = False
        try:
            while not stop.is_set():
                ids = listener.poll(LISTEN_POLL_SECONDS)
                if ids:
                    loop.call_soon_threadsafe(deps.changes.notified, ids)
        except DatabaseUnavailableError as e:
            log.warning("run-change listener: %s; reconnecting", e)
            loop.call_soon_threadsafe(deps.changes.wake_all)  # each run finds out (and says so)
        finally:
            listener.close()


def configure_logging(log_format: str = "auto", *, verbose: bool = False) -> None:
    """Send logs to stderr, one record per line: JSON or text (kopf's formatters, never wrapped).

    ``auto`` picks JSON when stderr is not a terminal. The JSON lines carry each record's
    ``extra`` fields as keys (a milestone's ``run``, ``namespace``, ``kind``, ``reason``) and,
    for kopf's per-object records, the object under ``object``.

    Raises:
        ConfigurationError: ``log_format`` is not one of :data:`LOG_FORMATS`.
    """
    if log_format not in LOG_FORMATS:
        raise ConfigurationError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if as_json else kopf.LogFormat.FULL,
        log_prefix=None,  # text: "[namespace/name]" before per-object records; JSON: the object key
        log_refkey="object",
    )
    # One line per timer tick and per handler is noise at INFO; warnings and errors stay visible.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets in a URL


def run(settings: OperatorSettings, *, verbose: bool = False, log_format: str = "auto") -> None:
    """Run the operator in this process until SIGINT/SIGTERM.

    Liveness: kopf's ``/healthz`` on ``server.liveness_host`` (else ``bind_address``) and
    ``server.liveness_port``; metrics likewise on ``metrics_host`` and ``metrics_port``. Logs:
    see :func:`configure_logging`.

    Raises:
        ConfigurationError: see :func:`build` and :func:`configure_logging`.
    """
    configure_logging(log_format, verbose=verbose)
    registry, _deps = build(settings)
    server = settings.server
    host = _url_host(server.liveness_host or server.bind_address)
    liveness = f"http://{host}:{server.liveness_port}/healthz" if server.liveness_port else None
    namespaces = settings.watch.namespaces
    kopf.run(
        registry=registry,
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )
