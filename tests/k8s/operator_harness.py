"""Harness for operator tests on EnvTest: a fresh PostgreSQL database, a namespace with the DB
Secret, a NodeAgent running runner Pods as local ``agentensor`` processes, and the operator
itself as a subprocess (``python -m agentensor_cli operator``) so a test can SIGKILL it. The
module-scoped ``cluster`` and ``operator`` fixtures built from these are in tests/k8s/conftest.py."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests._wait import wait_for as wait_for  # re-exported: tests/k8s and tests/reliability import it from here
from tests.k8s.envtest import EnvTest, free_port
from tests.k8s.node_agent import NodeAgent
from tests.runner._synthetic import make_rows, manifests

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("AGENTENSOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AGENTENSOR = [sys.executable, "-m", "agentensor_cli"]


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database (dropped afterwards); yields its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(PG_URL).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    name = f"agentensor_op_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class OperatorProcess:
    """``agentensor operator`` in a subprocess (its own process group), logging to a file."""

    def __init__(
        self,
        env: EnvTest,
        *,
        namespace: str,
        db_url: str,
        log_path: Path,
        max_concurrent_jobs: int = 4,
        extra_env: dict[str, str] | None = None,
        verbose: bool = False,
    ) -> None:
        self.env = env
        self.verbose = verbose
        self.namespace = namespace
        self.db_url = db_url
        self.log_path = log_path
        self.max_concurrent_jobs = max_concurrent_jobs
        self.extra_env = dict(extra_env or {})
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, ready_timeout_seconds: float = 60.0) -> OperatorProcess:
        environ = {
            **os.environ,
            "KUBECONFIG": str(self.env.kubeconfig),
            "AGENTENSOR_DATABASE_URL": self.db_url,
            "AGENTENSOR_BIND_ADDRESS": "127.0.0.1",
            **self.extra_env,
        }
        argv = [
            *AGENTENSOR, "operator", "--namespace", self.namespace,
            "--max-concurrent-jobs", str(self.max_concurrent_jobs),
            "--metrics-port", str(self.metrics_port), "--liveness-port", str(self.liveness_port),
        ]  # fmt: skip
        if self.verbose:
            argv.append("--verbose")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, env=environ, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        wait_for(self._live, ready_timeout_seconds, f"operator /healthz (log: {self.log_path})", interval=0.25)
        return self

    def _live(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"operator exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        return self.get(self.liveness_port, "/healthz")[0] == 200

    @staticmethod
    def get(port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, ""

    def metrics(self) -> str:
        status, text = self.get(self.metrics_port, "/metrics")
        assert status == 200, f"/metrics answered {status}"
        return text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, as a crashed or OOM-killed Pod."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class Cluster:
    """One namespace on the session API server, wired for the operator (Secret, NodeAgent)."""

    def __init__(self, env: EnvTest, namespace: str, db_url: str, workdir: Path) -> None:
        self.env = env
        self.namespace = namespace
        self.db_url = db_url
        self.workdir = workdir
        self.agent: NodeAgent | None = None

    def __enter__(self) -> Cluster:
        self.env.kubectl("create", "namespace", self.namespace)
        wait_for(
            lambda: (
                self.env.kubectl("get", "serviceaccount", "default", "-n", self.namespace, check=False).returncode == 0
            ),
            60,
            f"ServiceAccount default in {self.namespace}",
        )
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "agentensor-db", "namespace": self.namespace},
            "data": {"url": base64.b64encode(self.db_url.encode()).decode()},
        }
        self.apply(secret)
        self.agent = NodeAgent(
            self.env.kubeconfig,
            namespace=self.namespace,
            command_map={"agentensor": AGENTENSOR},
            workdir=self.workdir / "pods",
            extra_env={"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.agent is not None:
            self.agent.stop()
        self.env.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)

    def operator(self, **kwargs: Any) -> OperatorProcess:
        log = self.workdir / f"operator-{time.monotonic_ns()}.log"
        return OperatorProcess(self.env, namespace=self.namespace, db_url=self.db_url, log_path=log, **kwargs)

    def apply(self, *docs: dict[str, Any]) -> None:
        for doc in docs:
            doc.setdefault("metadata", {})["namespace"] = self.namespace
        self.env.kubectl(
            "apply", "-f", "-", input=yaml.safe_dump_all(list(docs)), timeout_seconds=60.0 + 2.0 * len(docs)
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        done = self.env.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def items(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", self.namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        return list(json.loads(self.env.kubectl(*args).stdout)["items"])

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.items("events") if e["involvedObject"].get("name") == name]


def synthetic(name: str, pc_name: str, *, n_per_intent: int = 6, epochs: int = 1, **spec: Any) -> dict[str, Any]:
    """A fast TrainingRun on the synthetic dataset (hashing embedder: no torch)."""
    _, tr = manifests(make_rows(n_per_intent, seed=1), epochs=epochs, batch_size=16)
    tr["metadata"] = {"name": name}
    tr["spec"]["promptConfigRef"] = {"name": pc_name}
    tr["spec"]["parallelism"] = 2
    tr["spec"].update(spec)
    return tr


def synthetic_promptconfig(name: str, workflow: str, **spec: Any) -> dict[str, Any]:
    """A PromptConfig with the synthetic dataset's six intents, for ``workflow``."""
    pc, _ = manifests(make_rows(1))
    pc["metadata"] = {"name": name}
    pc["spec"]["workflow"] = workflow
    pc["spec"].update(spec)
    return pc


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def phase(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")
