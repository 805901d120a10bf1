"""A stand-in kubelet for `EnvTest`: runs each Pod's first container as a local process.

`EnvTest` has no scheduler and no kubelet, so Pods created by the Job controller stay Pending.
`NodeAgent` watches Pods and, for every Pending Pod it has not started yet:

1. resolves the first container's environment: literal ``value``s, ``valueFrom`` with
   ``secretKeyRef``, ``configMapKeyRef`` and ``fieldRef`` (metadata.name, metadata.namespace,
   metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.serviceAccountName,
   spec.nodeName, status.podIP), and ``envFrom`` of ConfigMaps and Secrets; a referenced object
   that does not exist yet is retried for `config_timeout_seconds` (like the kubelet), then the
   Pod fails with reason CreateContainerConfigError;
2. materializes ConfigMap, Secret and emptyDir volumes under a per-Pod root folder: a container
   path ``/etc/agentensor`` becomes ``<root>/etc/agentensor`` (``subPath`` is honoured), and the
   process gets ``AGENTENSOR_ROOT=<root>`` so code under test can find its mounts there;
3. runs ``command + args`` (``$(VAR)`` references expanded like the kubelet does) with the Pod
   root as working directory, stdout and stderr going to ``<root>.log``;
4. patches the Pod's status subresource: ``Running`` with a running container status and
   ``startTime``, then ``Succeeded`` or ``Failed`` with the container's ``exitCode``, so the Job
   controller counts it.

Executable lookup: ``command_map`` rewrites ``command[0]`` (e.g. ``{"agentensor": [sys.executable,
"-m", "agentensor_cli"]}``; matched on the exact string, then on its basename), and
``entrypoint_map`` supplies the argv prefix for a container without ``command``, keyed by image
(exact, then without its tag). Environment precedence, lowest first: this process's environment (if
``inherit_env``), ``envFrom``, ``env``, ``AGENTENSOR_ROOT``, then ``extra_env`` (so a test can point
an address the Pod spec names at a local service).

Simplifications: only the first container runs; init containers are ignored; ``restartPolicy``
OnFailure behaves like Never; nothing reports readiness probes. Deleting a Pod kills its process
group with SIGKILL; `stop()` kills all of them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import urllib3
from kubernetes import client, config, watch
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

__all__ = ["NodeAgent", "PodRun"]

JsonDict = dict[str, Any]


class _ConfigError(Exception):
    """The Pod references configuration that is missing (kubelet: CreateContainerConfigError)."""


class _NotFoundYet(_ConfigError):
    """A referenced ConfigMap or Secret (or key) does not exist yet; worth retrying."""


@dataclass
class PodRun:
    """What the agent did with one Pod; `exit_code` is None while running (or if it never ran)."""

    namespace: str
    name: str
    uid: str
    root: Path
    """The Pod's root folder: container paths are mapped beneath it; also the working directory."""
    log_path: Path
    """The process's combined stdout and stderr."""
    argv: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    error: str | None = None
    """Why the Pod failed before its process could start, if it did."""
    deleted: bool = False
    finished: threading.Event = field(default_factory=threading.Event)
    """Set once the agent is done with the Pod (process exited, setup failed, or Pod deleted)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decode_b64(value: str) -> str:
    try:
        return base64.b64decode(value).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise _ConfigError(f"cannot decode secret data: {e}") from e


STATUS_RETRY_SECONDS = 60.0
"""How long a Pod status patch is retried while the API server cannot be reached."""

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` from `env` and ``$$`` to ``$``; unknown references stay (as in k8s)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


class NodeAgent:
    """Run Pods' first containers as local processes and report their status; see the module doc."""

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        *,
        namespace: str | None = None,
        command_map: Mapping[str, Sequence[str]] | None = None,
        entrypoint_map: Mapping[str, Sequence[str]] | None = None,
        extra_env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        workdir: Path | None = None,
        config_timeout_seconds: float = 30.0,
        watch_timeout_seconds: int = 5,
        request_timeout_seconds: float = 10.0,
    ) -> None:
        """Configure, without starting the watch.

        Args:
            kubeconfig: kubeconfig file with rights to read Pods, ConfigMaps and Secrets and to
                patch ``pods/status`` (e.g. `EnvTest.kubeconfig`).
            namespace: watch only this namespace; default: all namespaces.
            command_map: rewrites ``command[0]`` to an argv prefix.
            entrypoint_map: argv prefix for containers without ``command``, keyed by image.
            extra_env: environment added to every process, overriding the Pod's own.
            inherit_env: start from this process's environment (PATH, virtualenv, ...).
            workdir: where Pod roots and logs go; default: a temporary folder removed by `stop()`.
            config_timeout_seconds: how long to retry a missing ConfigMap or Secret before failing
                the Pod; 30 s covers an operator that creates them just after the Job.
            watch_timeout_seconds: server-side timeout of each watch request; bounds how long
                `stop()` may wait for the watch thread (the watch restarts immediately).
            request_timeout_seconds: timeout of every other API request.
        """
        self._kubeconfig = str(kubeconfig)
        self._namespace = namespace
        self._command_map = {k: list(v) for k, v in (command_map or {}).items()}
        self._entrypoint_map = {k: list(v) for k, v in (entrypoint_map or {}).items()}
        self._extra_env = dict(extra_env or {})
        self._inherit_env = inherit_env
        self._given_workdir = workdir
        self._config_timeout_seconds = config_timeout_seconds
        self._watch_timeout_seconds = watch_timeout_seconds
        self._request_timeout_seconds = request_timeout_seconds

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._runs: dict[str, PodRun] = {}  # by Pod UID
        self._threads: list[threading.Thread] = []
        self._watch: watch.Watch | None = None
        self._api_client: client.ApiClient | None = None
        self._core: client.CoreV1Api | None = None
        self._workdir: Path | None = None
        self.errors: list[str] = []
        """Unexpected errors of the background threads (watch failures, rejected patches)."""

    # ------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> NodeAgent:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> NodeAgent:
        """Start watching Pods in a background thread."""
        if self._core is not None:
            raise RuntimeError("NodeAgent is already started")
        self._stopping.clear()
        self._workdir = self._given_workdir or Path(tempfile.mkdtemp(prefix="agentensor-node-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=self._kubeconfig
        )
        self._core = client.CoreV1Api(self._api_client)
        self._spawn_thread(self._watch_loop, "node-agent-watch")
        return self

    def stop(self) -> None:
        """Stop watching, SIGKILL every process still running, and remove the temporary workdir."""
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            self._kill(run)
        for thread in self._threads:
            thread.join(timeout=self._watch_timeout_seconds + self._request_timeout_seconds)
        self._threads.clear()
        if self._api_client is not None:
            self._api_client.close()  # type: ignore[no-untyped-call]
        self._api_client = self._core = None
        if self._workdir is not None and self._given_workdir is None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None

    # ------------------------------------------------------------------------------- queries

    def runs(self) -> list[PodRun]:
        """Every Pod the agent took, in the order it took them."""
        with self._lock:
            return list(self._runs.values())

    def run_for(self, name: str, namespace: str = "default") -> PodRun:
        """The latest run of the Pod called `name`; KeyError if the agent never took such a Pod."""
        with self._lock:
            matches = [r for r in self._runs.values() if (r.namespace, r.name) == (namespace, name)]
        if not matches:
            raise KeyError(f"NodeAgent has not run a Pod {namespace}/{name}")
        return matches[-1]

    def read_log(self, name: str, namespace: str = "default") -> str:
        """The combined stdout and stderr of the Pod's process so far ("" if it has not started)."""
        path = self.run_for(name, namespace).log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_exit(self, name: str, namespace: str = "default", timeout_seconds: float = 60.0) -> int | None:
        """Wait until the agent is done with the Pod; return its exit code (None: never ran)."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                run = self.run_for(name, namespace)
                break
            except KeyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        if not run.finished.wait(max(0.0, deadline - time.monotonic())):
            raise TimeoutError(f"Pod {namespace}/{name} still running after {timeout_seconds} s")
        return run.exit_code

    # ------------------------------------------------------------------------------ watching

    def _spawn_thread(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _watch_loop(self) -> None:
        core = self._core
        assert core is not None
        while not self._stopping.is_set():
            w = watch.Watch()  # type: ignore[no-untyped-call]
            self._watch = w
            if self._stopping.is_set():  # stop() ran between the loop test and the assignment
                break
            try:
                if self._namespace is None:
                    events = w.stream(  # type: ignore[no-untyped-call]
                        core.list_pod_for_all_namespaces,
                        timeout_seconds=self._watch_timeout_seconds,
                        deserialize=False,
                    )
                else:
                    events = w.stream(  # type: ignore[no-untyped-call]
                        core.list_namespaced_pod,
                        self._namespace,
                        timeout_seconds=self._watch_timeout_seconds,
                        deserialize=False,
                    )
                # Each request starts without a resourceVersion, so it first replays every
                # existing Pod as ADDED; handling is idempotent by Pod UID.
                for event in events:
                    if self._stopping.is_set():
                        break
                    self._handle(str(event.get("type")), event.get("object") or {})
            except Exception as e:  # a watch may break in many ways: retry
                if not self._stopping.is_set():
                    self.errors.append(f"watch: {e!r}")
                    time.sleep(1.0)

    def _handle(self, event_type: str, pod: JsonDict) -> None:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        if not uid or event_type not in ("ADDED", "MODIFIED", "DELETED"):
            return
        with self._lock:
            run = self._runs.get(uid)
        if event_type == "DELETED" or meta.get("deletionTimestamp"):
            if run is not None and not run.deleted:
                run.deleted = True
                self._kill(run)
            return
        phase = (pod.get("status") or {}).get("phase", "Pending")
        if run is not None or phase != "Pending" or self._stopping.is_set():
            return
        assert self._workdir is not None
        base = self._workdir / f"{meta['namespace']}_{meta['name']}_{uid[:8]}"
        run = PodRun(
            namespace=meta["namespace"], name=meta["name"], uid=uid, root=base,
            log_path=base.with_name(base.name + ".log"),
        )  # fmt: skip
        with self._lock:
            self._runs[uid] = run
        self._spawn_thread(self._run_pod, f"node-agent-{run.name}", run, pod)

    # -------------------------------------------------------------------------------- running

    def _run_pod(self, run: PodRun, pod: JsonDict) -> None:
        try:
            self._run_pod_unsafe(run, pod)
        except Exception as e:  # reported via .errors, not lost in a thread
            self.errors.append(f"{run.namespace}/{run.name}: {e!r}")
        finally:
            run.finished.set()

    def _run_pod_unsafe(self, run: PodRun, pod: JsonDict) -> None:
        spec = pod.get("spec") or {}
        container: JsonDict = (spec.get("containers") or [{}])[0]
        started_at = _now()
        try:
            run.root.mkdir(parents=True, exist_ok=True)
            env, argv = self._prepare(run, pod, container)
        except _ConfigError as e:
            run.error = str(e)
            run.log_path.write_text(f"node-agent: {e}\n")
            self._patch_terminated(run, container, started_at, 128, "CreateContainerConfigError", str(e))
            return
        run.argv = argv
        if self._stopping.is_set() or run.deleted:
            return
        self._patch_status(
            run,
            {
                "phase": "Running",
                "startTime": started_at,
                "containerStatuses": [self._container_status(container, True, {"running": {"startedAt": started_at}})],
            },
        )
        with run.log_path.open("wb") as log:
            try:
                with self._lock:  # so stop() either sees the process or it is never started
                    if self._stopping.is_set() or run.deleted:
                        return
                    run.process = subprocess.Popen(
                        argv,
                        env=env,
                        cwd=run.root,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group, killed as a whole
                    )
            except OSError as e:
                run.error = f"cannot start {argv[0]!r}: {e}"
                log.write(f"node-agent: {run.error}\n".encode())
                log.flush()
                self._patch_terminated(run, container, started_at, 127, "StartError", run.error)
                return
            code = run.process.wait()
        # Like the kubelet: death by signal N is reported as exit code 128 + N.
        run.exit_code = code if code >= 0 else 128 - code
        if self._stopping.is_set() or run.deleted:
            return
        reason = "Completed" if run.exit_code == 0 else "Error"
        self._patch_terminated(run, container, started_at, run.exit_code, reason, None)

    def _prepare(self, run: PodRun, pod: JsonDict, container: JsonDict) -> tuple[dict[str, str], list[str]]:
        """Resolve environment and volumes, retrying missing references; return (env, argv)."""
        deadline = time.monotonic() + self._config_timeout_seconds
        while True:
            try:
                container_env = self._container_env(run.namespace, pod, container)
                self._materialize_volumes(run, pod, container)
                break
            except _NotFoundYet:
                if time.monotonic() > deadline or self._stopping.is_set() or run.deleted:
                    raise
                time.sleep(0.5)
        env = dict(os.environ) if self._inherit_env else {}
        env.update(container_env)
        env["AGENTENSOR_ROOT"] = str(run.root)
        env.update(self._extra_env)

        command = [_expand(a, container_env) for a in container.get("command") or []]
        args = [_expand(a, container_env) for a in container.get("args") or []]
        if command:
            head = command[0]
            prefix = self._command_map.get(head) or self._command_map.get(os.path.basename(head))
            argv = [*prefix, *command[1:], *args] if prefix else [*command, *args]
        else:
            image = str(container.get("image", ""))
            prefix = self._entrypoint_map.get(image) or self._entrypoint_map.get(image.rsplit(":", 1)[0])
            if not prefix:
                raise _ConfigError(
                    f"container {container.get('name')!r} has no command and image {image!r} is "
                    "not in entrypoint_map; NodeAgent cannot know the image's entrypoint"
                )
            argv = [*prefix, *args]
        return env, argv

    # ------------------------------------------------------------------------ configuration

    def _read(self, kind: str, namespace: str, name: str) -> JsonDict:
        core = self._core
        assert core is not None
        reader = core.read_namespaced_secret if kind == "Secret" else core.read_namespaced_config_map
        try:
            response: Any = reader(
                name,
                namespace,
                _preload_content=False,
                _request_timeout=self._request_timeout_seconds,
            )
        except client.ApiException as e:
            if e.status == 404:
                raise _NotFoundYet(f"{kind} {namespace}/{name} not found") from e
            raise
        except urllib3.exceptions.HTTPError as e:  # the API server is restarting: try again, as for a 404
            raise _NotFoundYet(f"{kind} {namespace}/{name}: API server unreachable ({e})") from e
        result: JsonDict = json.loads(response.data)
        return result

    def _object_data(self, kind: str, namespace: str, name: str) -> dict[str, str]:
        """A ConfigMap's data (binaryData decoded) or a Secret's data (decoded), as text."""
        obj = self._read(kind, namespace, name)
        if kind == "Secret":
            data = {k: _decode_b64(v) for k, v in (obj.get("data") or {}).items()}
            data.update(obj.get("stringData") or {})
            return data
        data = dict(obj.get("data") or {})
        data.update({k: _decode_b64(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    def _key_ref(self, kind: str, namespace: str, ref: JsonDict) -> str | None:
        optional = bool(ref.get("optional"))
        try:
            data = self._object_data(kind, namespace, ref["name"])
        except _NotFoundYet:
            if optional:
                return None
            raise
        if ref["key"] not in data:
            if optional:
                return None
            raise _NotFoundYet(f"key {ref['key']!r} not in {kind} {namespace}/{ref['name']}")
        return data[ref["key"]]

    def _container_env(self, namespace: str, pod: JsonDict, container: JsonDict) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            kind, ref = (
                ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
            )
            try:
                data = self._object_data(kind, namespace, ref["name"])
            except _NotFoundYet:
                if ref.get("optional"):
                    continue
                raise
            prefix = source.get("prefix", "")
            env.update({prefix + k: v for k, v in data.items()})
        for var in container.get("env") or []:
            name = var["name"]
            value_from = var.get("valueFrom")
            if value_from is None:
                env[name] = _expand(var.get("value", ""), env)
                continue
            value: str | None
            if "secretKeyRef" in value_from:
                value = self._key_ref("Secret", namespace, value_from["secretKeyRef"])
            elif "configMapKeyRef" in value_from:
                value = self._key_ref("ConfigMap", namespace, value_from["configMapKeyRef"])
            elif "fieldRef" in value_from:
                value = self._field_ref(pod, value_from["fieldRef"]["fieldPath"])
            else:
                value = None  # resourceFieldRef: no resources to report here
            if value is not None:
                env[name] = value
        return env

    @staticmethod
    def _field_ref(pod: JsonDict, path: str) -> str:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        simple = {
            "metadata.name": meta.get("name"),
            "metadata.namespace": meta.get("namespace"),
            "metadata.uid": meta.get("uid"),
            "spec.nodeName": spec.get("nodeName", "localhost"),
            "spec.serviceAccountName": spec.get("serviceAccountName"),
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
        }
        if path in simple:
            return str(simple[path] or "")
        m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
        raise _ConfigError(f"unsupported fieldRef {path!r}")

    def _materialize_volumes(self, run: PodRun, pod: JsonDict, container: JsonDict) -> None:
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                continue
            target = run.root / mount["mountPath"].lstrip("/")
            sub_path = mount.get("subPath")
            if "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
                continue
            if "configMap" in volume:
                kind, source = "ConfigMap", volume["configMap"]
            elif "secret" in volume:
                kind, source = (
                    "Secret",
                    {**volume["secret"], "name": volume["secret"].get("secretName")},
                )
            else:
                continue  # hostPath, projected, ...: nothing sensible to materialize locally
            try:
                data = self._object_data(kind, run.namespace, source["name"])
            except _NotFoundYet:
                if source.get("optional"):
                    continue
                raise
            items = source.get("items")
            files = {i["path"]: data[i["key"]] for i in items if i["key"] in data} if items else dict(data)
            _write_files(target, files, sub_path)

    # --------------------------------------------------------------------------------- status

    @staticmethod
    def _container_status(container: JsonDict, running: bool, state: JsonDict) -> JsonDict:
        return {
            "name": container.get("name", "main"),
            "image": container.get("image", ""),
            "imageID": "",
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": state,
        }

    def _patch_terminated(
        self,
        run: PodRun,
        container: JsonDict,
        started_at: str,
        exit_code: int,
        reason: str,
        message: str | None,
    ) -> None:
        run.exit_code = exit_code
        terminated: JsonDict = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": _now(),
        }
        if message:
            terminated["message"] = message
        self._patch_status(
            run,
            {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "startTime": started_at,
                "containerStatuses": [self._container_status(container, False, {"terminated": terminated})],
            },
        )

    def _patch_status(self, run: PodRun, status: JsonDict) -> None:
        core = self._core
        if core is None:
            return
        # Like the kubelet, outlive an API server restart: retry unreachable-server errors for a
        # minute (a refused connection would otherwise end this Pod's thread before it starts).
        retrying = Retrying(
            retry=retry_if_exception_type(urllib3.exceptions.HTTPError),
            stop=stop_after_delay(STATUS_RETRY_SECONDS),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    core.patch_namespaced_pod_status(
                        run.name,
                        run.namespace,
                        {"status": status},
                        _content_type="application/merge-patch+json",
                        _preload_content=False,
                        _request_timeout=self._request_timeout_seconds,
                    )
        except client.ApiException as e:
            if e.status == 404:  # deleted meanwhile
                run.deleted = True
                return
            self.errors.append(f"{run.namespace}/{run.name}: status patch refused: {e.status} {e.body}")

    def _kill(self, run: PodRun) -> None:
        with self._lock:
            proc = run.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # pgid == pid: started with start_new_session


def _write_files(target: Path, files: dict[str, str], sub_path: str | None) -> None:
    """Write a volume's files under ``target`` (or the one ``sub_path`` file as ``target``), as the kubelet would."""
    if sub_path:
        if sub_path in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[sub_path])
        return
    for rel, content in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
