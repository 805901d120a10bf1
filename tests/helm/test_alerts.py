"""The chart's alert rules, unit-tested with ``promtool test rules`` (Debian's prometheus package).

The rules live in charts/agentensor-operator/files/alerts/agentensor-operator.rules.yaml (the
chart's PrometheusRule and docs/observability.md use that file); tests/helm/alerts_test.yaml
holds the promtool cases: AgentensorRunFailed fires on the first failure counted by
``agentensor_run_completions_total`` and resolves after its window, an operator restart (a
counter reset) does not fire it, and the other alerts fire on their conditions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts" / "agentensor-operator" / "files" / "alerts" / "agentensor-operator.rules.yaml"
CASES = Path(__file__).with_name("alerts_test.yaml")

# CI installs promtool (.ci/run); locally the tests say how to get it.
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None and os.environ.get("CI") != "true",
    reason="promtool not installed (Debian: apt-get install prometheus)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


@needs_promtool
def test_alert_rules_pass_promtool_unit_tests(tmp_path: Path) -> None:
    cases = tmp_path / "alerts_test.yaml"
    cases.write_text(CASES.read_text().replace("  - RULES\n", f"  - {RULES}\n"))
    done = _promtool("test", "rules", str(cases))
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


@needs_promtool
def test_the_old_gauge_alert_fails_the_same_cases(tmp_path: Path) -> None:
    """The cases can tell: increase() on the phase gauge misses a run that appears already Failed."""
    rules = yaml.safe_load(RULES.read_text())
    for rule in rules["groups"][0]["rules"]:
        if rule["alert"] == "AgentensorRunFailed":
            rule["expr"] = 'sum by (kind) (increase(agentensor_runs{phase="Failed"}[15m])) > 0'
    old = tmp_path / "old.rules.yaml"
    old.write_text(yaml.safe_dump(rules, sort_keys=False))
    cases = tmp_path / "alerts_test.yaml"
    cases.write_text(CASES.read_text().replace("  - RULES\n", f"  - {old}\n"))
    done = _promtool("test", "rules", str(cases))
    assert done.returncode != 0 and "AgentensorRunFailed" in done.stdout + done.stderr, done.stdout + done.stderr


def test_run_failed_alert_counts_completions_not_a_gauge() -> None:
    rules = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    expr = rules["AgentensorRunFailed"]["expr"]
    assert "increase(agentensor_run_completions_total" in expr and 'outcome="Failed"' in expr
    for rule in rules.values():  # increase()/rate() only over counters
        for metric in re.findall(r"(?:increase|rate)\((\w+)", rule["expr"]):
            assert metric.endswith("_total"), (rule["alert"], metric)


def test_documented_alerts_are_the_chart_rules() -> None:
    text = (REPO / "docs" / "observability.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if b.startswith("groups:"))
    assert yaml.safe_load(block) == yaml.safe_load(RULES.read_text())


def test_chart_renders_the_rules_as_a_prometheusrule() -> None:
    from tests.helm.helm_support import render

    docs = render({"metrics": {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}}})
    rules = [d for d in docs if isinstance(d, dict) and d.get("kind") == "PrometheusRule"]
    assert len(rules) == 1 and rules[0]["metadata"]["labels"]["release"] == "kps"
    assert rules[0]["spec"] == yaml.safe_load(RULES.read_text())
    assert not [d for d in render({}) if isinstance(d, dict) and d.get("kind") == "PrometheusRule"]


def test_chart_passes_bind_addresses_and_log_format() -> None:
    from tests.helm.helm_support import render

    values = {"metrics": {"bindAddress": "127.0.0.1", "port": 9100}, "liveness": {"port": 8181}, "logFormat": "text"}
    (deployment,) = [d for d in render(values) if isinstance(d, dict) and d.get("kind") == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == [
        "operator",
        "--metrics-bind-address=127.0.0.1:9100",
        "--health-probe-bind-address=:8181",
        "--log-format=text",
    ], args
