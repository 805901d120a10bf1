"""Helpers for the chart tests: render with the real Helm SDK, pick objects, and run the operator
exactly as the chart's Deployment would (its command, its environment) as a local process."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from tests._wait import wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "agentensor-operator"
ARGOCD_HEALTH = REPO / "deploy" / "argocd" / "health"
AGENTENSOR = [sys.executable, "-m", "agentensor_cli"]
"""How ``agentensor`` (the image's console script) runs here: with this interpreter."""

JsonDict = dict[str, Any]


def parse_manifests(rendered: Mapping[str, str]) -> list[JsonDict]:
    """Every object of a rendered chart (template path -> text), NOTES.txt left out."""
    docs: list[JsonDict] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def render(
    values: Mapping[str, Any] | None = None, *, name: str = "ae", namespace: str = "agentensor-system"
) -> list[JsonDict]:
    """The chart's objects for ``values``, rendered offline by the Helm SDK (schema enforced)."""
    with helm.Chart.load(CHART) as chart:
        return parse_manifests(chart.render(dict(values or {}), name=name, namespace=namespace))


def render_notes(values: Mapping[str, Any] | None = None, *, name: str = "ae", namespace: str = "ns") -> str:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(dict(values or {}), name=name, namespace=namespace)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def objects(docs: list[JsonDict], kind: str, namespace: str | None = None) -> list[JsonDict]:
    return [d for d in docs if d["kind"] == kind and (namespace is None or d["metadata"].get("namespace") == namespace)]


def one(docs: list[JsonDict], kind: str, namespace: str | None = None) -> JsonDict:
    found = objects(docs, kind, namespace)
    assert len(found) == 1, f"expected one {kind}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def operator_container(docs: list[JsonDict]) -> JsonDict:
    deployment = one(docs, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    container: JsonDict = next(c for c in containers if c["name"] == "operator")
    return container


def plain_env(container: JsonDict) -> dict[str, str]:
    """The container's literal ``value`` env entries (``valueFrom`` ones left out)."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def rules_of(docs: list[JsonDict]) -> list[tuple[str, JsonDict]]:
    """(namespace or "" for cluster scope, rule) for every ClusterRole and Role rule."""
    out: list[tuple[str, JsonDict]] = []
    for d in docs:
        if d["kind"] in ("ClusterRole", "Role"):
            out.extend((d["metadata"].get("namespace", ""), r) for r in d.get("rules") or [])
    return out


# -- the operator as the Deployment runs it -----------------------------------------------------------


def sa_kubeconfig(server: str, ca_file: Path, token: str, namespace: str, path: Path) -> Path:
    """A kubeconfig that authenticates with a ServiceAccount token (what the in-cluster config does)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": namespace}}],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def resolve_env(container: JsonDict, read_secret: Any) -> dict[str, str]:
    """The container's environment as the kubelet would build it: literal values, and
    ``secretKeyRef`` values read with ``read_secret(name, key)``."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        assert ref is not None, f"unsupported env source in the chart: {entry}"
        env[entry["name"]] = read_secret(ref["name"], ref["key"])
    return env


def decode_secret(secret: JsonDict, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def http_get(port: int, path: str) -> tuple[int, str]:
    """``(status, body)`` of a GET on 127.0.0.1 (0 when nothing answers); the operator harness's probe."""
    from tests.k8s.operator_harness import OperatorProcess

    return OperatorProcess.get(port, path)


@contextlib.contextmanager
def deployment_process(
    container: JsonDict,
    env: Mapping[str, str],
    *,
    kubeconfig: Path,
    log_path: Path,
    metrics_port: int,
    liveness_port: int,
    ready_timeout_seconds: float = 90.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the Deployment's container ``command + args`` here, with its resolved ``env`` and the
    ServiceAccount ``kubeconfig`` (in place of the in-cluster credentials); wait for /healthz.

    The ports are the only overrides: the process shares this host's network, where the chart's
    fixed container ports may be taken. Stops it (SIGTERM, then SIGKILL) on exit.
    """
    # The chart passes the ports as bind-address flags, which win over the environment: move them.
    moved = {"--metrics-bind-address": metrics_port, "--health-probe-bind-address": liveness_port}
    argv = [
        f"{a.split('=', 1)[0]}=127.0.0.1:{moved[a.split('=', 1)[0]]}" if a.split("=", 1)[0] in moved else a
        for a in [*container["command"], *container.get("args", [])]
    ]
    assert argv[0] == "agentensor", argv
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    environ.update(env)
    environ.update(
        KUBECONFIG=str(kubeconfig),
        AGENTENSOR_BIND_ADDRESS="127.0.0.1",
        AGENTENSOR_METRICS_PORT=str(metrics_port),
        AGENTENSOR_LIVENESS_PORT=str(liveness_port),
    )
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*AGENTENSOR, *argv[1:]],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:

        def up() -> None:
            if proc.poll() is not None:
                raise AssertionError(f"operator exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")

        wait_for(
            lambda: http_get(liveness_port, "/healthz")[0] == 200,
            ready_timeout_seconds,
            f"operator /healthz (log: {log_path})",
            interval=0.25,
            alive=up,
        )
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# -- Argo CD health checks -------------------------------------------------------------------------


def argocd_health(obj: Mapping[str, Any]) -> dict[str, str]:
    """Run the Argo CD health script for ``obj``'s kind on Lua 5.1 (Argo CD's gopher-lua dialect),
    with ``obj`` as the global Argo CD provides; returns ``{"status", "message"}``."""
    from lupa.lua51 import LuaRuntime

    script = ARGOCD_HEALTH / ("promptconfig.lua" if obj["kind"] == "PromptConfig" else "run.lua")
    lua = LuaRuntime()
    lua.globals().obj = lua.table_from(json.loads(json.dumps(obj)), recursive=True)
    result = lua.execute(script.read_text())
    return {"status": str(result["status"]), "message": str(result["message"])}
