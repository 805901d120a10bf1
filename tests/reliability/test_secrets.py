"""Secrets stay secret: a model API key and the database password, each held only in a Secret, are
used (the scripted OpenAI-compatible server refuses any other key; the runner connects with the
DSN) and then searched for everywhere the operator and the runner write: every object in the
namespace but the Secrets (status, spec, Jobs, Pods, ConfigMaps), all Events, the operator's
log, the runner Pods' logs and every file they wrote (summary, report, LLM cache), every row of
every table in the database, and the operator's /metrics text. Zero occurrences, in plain text
and in base64."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.k8s.operator_harness import Cluster, fresh_database, phase, wait_for
from tests.llm.scripted_server import ScriptedServer, user_of

pytestmark = [pytest.mark.k8s, pytest.mark.postgres, pytest.mark.slow]

CASES = [{"input": f"question {i}", "expected": f"answer {i}"} for i in range(4)]
KINDS = ("evaluationruns", "trainingruns", "promptconfigs", "jobs", "pods", "configmaps", "events", "serviceaccounts")


def _echo(body: dict[str, Any]) -> str:
    return "answer " + str(user_of(body)).split()[-1]


def _db_rows(url: str) -> tuple[str, dict[str, int]]:
    """Every row of every table, as JSON text, and the row count per table."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    texts, counts = [], {}
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            rows = [r[0] for r in conn.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')]
            counts[table] = len(rows)
            texts.extend(rows)
    return "\n".join(texts), counts


def test_api_key_and_db_password_appear_nowhere(k8s_with_crds: Any, tmp_path: Path, monkeypatch: Any) -> None:
    key = f"sk-canary-{uuid.uuid4().hex}"
    password = f"pw-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("AGENTENSOR_LLM_CACHE", str(tmp_path / "llm-cache.sqlite"))  # Pods inherit it
    with (
        ScriptedServer(require_key=key) as server,
        fresh_database() as plain_url,
        # The DSN with a password (trust auth ignores it): the operator's env and the runners' Secret.
        Cluster(
            k8s_with_crds, "rel-secrets", make_url(plain_url).set(password=password).render_as_string(False), tmp_path
        ) as cluster,
    ):
        server.add(reply=_echo)
        cluster.apply({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm"},
            "data": {"apiKey": base64.b64encode(key.encode()).decode()},
        })  # fmt: skip
        cluster.apply(
            {
                "apiVersion": "agentensor.dev/v1alpha1",
                "kind": "PromptConfig",
                "metadata": {"name": "secret-pc"},
                "spec": {"workflow": "secret-chat", "prompts": {"system": {"text": "Be exact."}}},
            },
            {
                "apiVersion": "agentensor.dev/v1alpha1",
                "kind": "EvaluationRun",
                "metadata": {"name": "secret-eval"},
                "spec": {
                    "promptConfigRef": {"name": "secret-pc"},
                    "workflow": {"template": "chat", "options": {"user": "Q: {{state.input}}"}},
                    "models": {
                        "task": {
                            "model": "openai:gpt-scripted",
                            "baseUrl": server.base_url,
                            "apiKeySecretRef": {"name": "llm", "key": "apiKey"},
                            "maxRetries": 0,
                        }
                    },
                    "dataset": {"inline": CASES},
                    "evaluators": [{"name": "exact", "type": "exact_match", "outputField": "output"}],
                    "parallelism": 2,
                },
            },
        )
        # DEBUG logging: the most it ever writes; the admin allows the one Secret key the run names
        op = cluster.operator(verbose=True, extra_env={"AGENTENSOR_JOB_ALLOWED_SECRETS": "llm/apiKey"}).start()
        try:
            wait_for(lambda: phase(cluster.get("evaluationrun", "secret-eval")) in ("Succeeded", "Failed"), 120, "done")
            run = cluster.get("evaluationrun", "secret-eval")
            assert run is not None
            metrics = op.metrics()
        finally:
            op.stop()
        assert phase(run) == "Succeeded", run["status"]
        assert run["status"]["scores"] == {"exact": 1.0}
        assert len(server.log) == len(CASES), "every case called the model with the key from the Secret"
        objects = {kind: json.dumps(cluster.items(kind)) for kind in KINDS}
        assert cluster.agent is not None
        # the runner records its verdict before its process exits: wait for the exit (and the whole log)
        assert all(r.finished.wait(30) for r in cluster.agent.runs()), "the runner Pod's process exits"
        pod_logs = "\n".join(cluster.agent.read_log(r.name, r.namespace) for r in cluster.agent.runs())
        assert [r.exit_code for r in cluster.agent.runs()] == [0], "one runner Pod, which succeeded"
        files = {
            str(p.relative_to(tmp_path)): p.read_bytes().decode("utf-8", errors="replace")
            for p in tmp_path.rglob("*")
            if p.is_file()
        }
        db_text, row_counts = _db_rows(plain_url)
    places: dict[str, str] = {
        **{f"API objects: {kind}": text for kind, text in objects.items()},
        "operator log": op.log(),
        "runner Pod logs": pod_logs,
        **{f"file {name}": text for name, text in files.items()},
        "database rows": db_text,
        "/metrics": metrics,
    }
    needles = {
        "API key": key,
        "API key (base64)": base64.b64encode(key.encode()).decode(),
        "DB password": password,
        "DB password (base64)": base64.b64encode(password.encode()).decode(),
    }
    found = [(what, where) for what, needle in needles.items() for where, text in places.items() if needle in text]
    print(
        f"searched {len(places)} places ({len(files)} files, {sum(row_counts.values())} rows in "
        f"{len(row_counts)} tables, {len(objects['events'])} bytes of Events, {len(op.log())} bytes of operator log): "
        f"found {found}"
    )
    assert sum(row_counts.values()) > len(CASES), row_counts  # the search covered the runner's rows
    assert any(name.startswith("operator-") for name in files)
    assert found == []
