"""Render the chart's Grafana dashboard to a PNG from a real run, without Grafana.

    .venv/bin/python hack/render_dashboard.py [-o docs/img/grafana-dashboard.png]

What is real: a Kubernetes API server (EnvTest, tests/k8s/envtest.py), PostgreSQL, the operator
(`agentensor operator`, cap 2), runner Pods run as local processes (tests/k8s/node_agent.py),
Prometheus (Debian's `prometheus` package: apt-get install prometheus) scraping the operator's
/metrics every second, and every panel's PromQL exactly as written in
charts/agentensor-operator/dashboards/agentensor-operator.json, evaluated by Prometheus through
its query_range API. What is not: Grafana itself. matplotlib draws each panel at its gridPos, so
the layout, titles, queries and legends are the dashboard's, the styling is not. `$namespace` is
"all" (`.*`) and `$__rate_interval` is 15 s (four 1 s scrapes and then some, as Grafana would pick).

Workload: six synthetic TrainingRuns (hashing embedder, no torch; different sizes, so the cap of 2
queues them), one EvaluationRun, and one run whose every case times out (Failed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository root: `tests.k8s` helpers import by package path
DASHBOARD = REPO / "charts" / "agentensor-operator" / "dashboards" / "agentensor-operator.json"
RATE_INTERVAL = "15s"
UNITS = {"ops": "per second", "s": "seconds", "percentunit": "score (0 to 1)"}
"""Grafana unit ids of the panels, as axis labels ("short" and currency: no label)."""
NS = "dashboard"


def _prometheus(workdir: Path, target: str, port: int) -> subprocess.Popen[bytes]:
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n- job_name: agentensor-operator\n  static_configs: [{{targets: ['{target}']}}]\n"
    )
    log = (workdir / "prometheus.log").open("wb")
    return subprocess.Popen(
        [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _query_range(port: int, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query_range?{query}", timeout=30) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _legend(fmt: str, labels: dict[str, str]) -> str:
    out = fmt
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out or ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"


def workload(cluster: Any) -> list[tuple[str, str]]:
    """Apply the runs; returns (kind, name) of each."""
    from tests.k8s.operator_harness import synthetic, synthetic_promptconfig

    docs: list[dict[str, Any]] = [synthetic_promptconfig("router", "dash-router")]
    runs = []
    for i, (n, epochs) in enumerate([(30, 3), (20, 2), (40, 3), (10, 1), (25, 2), (35, 3)]):
        docs.append(synthetic(f"train-{i}", "router", n_per_intent=n, epochs=epochs))
        runs.append(("trainingrun", f"train-{i}"))
    evaluation = synthetic("evaluate", "router", n_per_intent=30)
    evaluation["kind"] = "EvaluationRun"
    for key in ("optimizer", "holdoutGuard", "checkpoint"):
        del evaluation["spec"][key]
    del evaluation["spec"]["dataset"]["split"]
    docs.append(evaluation)
    runs.append(("evaluationrun", "evaluate"))
    docs.append(synthetic("doomed", "router", caseTimeoutSeconds=1e-9))
    runs.append(("trainingrun", "doomed"))
    cluster.apply(*docs)
    return runs


def render(
    results: list[tuple[dict[str, Any], list[tuple[str, list[dict[str, Any]]]]]], start: float, out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p, _ in results)
    fig = plt.figure(figsize=(18, rows * 0.6), dpi=110, facecolor="#111217")
    grid = fig.add_gridspec(rows, 24, hspace=0.0, wspace=0.9, top=0.95, bottom=0.04)
    for panel, series in results:
        g = panel["gridPos"]
        # one grid row of each panel is left for its title (Grafana draws it inside the panel)
        ax = fig.add_subplot(grid[g["y"] + 1 : g["y"] + g["h"], g["x"] : g["x"] + g["w"]])
        ax.set_facecolor("#181b1f")
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        ax.tick_params(colors="#9fa7b3", labelsize=7)
        ax.set_title(panel["title"], color="#ccccdc", fontsize=9, loc="left")
        if panel["type"] == "stat":
            values = [float(s["values"][-1][1]) for _, group in series for s in group if s["values"]]
            text = f"{sum(values):g}" if values else "No data"
            ax.text(0.5, 0.45, text, ha="center", va="center", fontsize=26, color="#73bf69", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        unit = UNITS.get(panel["fieldConfig"]["defaults"].get("unit", ""), "")
        for legend_format, group in series:
            for s in group:
                xs = [float(t) - start for t, _ in s["values"]]
                ys = [float(v) for _, v in s["values"]]
                ax.plot(xs, ys, linewidth=1.3, label=_legend(legend_format, s["metric"]))
        ax.set_xlabel("seconds since the first run was applied", color="#9fa7b3", fontsize=7)
        if unit:
            ax.set_ylabel(unit, color="#9fa7b3", fontsize=7)
        ax.grid(color="#2c3235", linewidth=0.5)
        if ax.lines:
            ax.legend(fontsize=6, ncol=3, facecolor="#181b1f", edgecolor="#2c3235", labelcolor="#ccccdc")
        else:
            ax.text(0.5, 0.5, "No data", ha="center", va="center", color="#9fa7b3", transform=ax.transAxes)
    fig.suptitle(
        "agentensor operator dashboard: every panel's PromQL evaluated by Prometheus 2.42 over a real run "
        "(EnvTest + operator + PostgreSQL); drawn by hack/render_dashboard.py, not by Grafana",
        color="#ccccdc", fontsize=10, y=0.985,
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, facecolor=fig.get_facecolor(), bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "img" / "grafana-dashboard.png")
    parser.add_argument("--tail-seconds", type=float, default=20.0, help="keep scraping after the last run ends")
    args = parser.parse_args()

    from tests.k8s.envtest import EnvTest, free_port
    from tests.k8s.operator_harness import Cluster, fresh_database, phase, wait_for

    dashboard = json.loads(DASHBOARD.read_text())
    with tempfile.TemporaryDirectory(prefix="agentensor-dashboard-") as tmp, EnvTest() as env, fresh_database() as url:
        workdir = Path(tmp)
        env.kubectl("apply", "-f", str(REPO / "crds"))
        for crd in ("promptconfigs", "trainingruns", "evaluationruns"):
            env.kubectl("wait", "--for=condition=Established", f"crd/{crd}.agentensor.dev", "--timeout=60s")
        with Cluster(env, NS, url, workdir) as cluster:
            operator = cluster.operator(max_concurrent_jobs=2).start()
            prom_port = free_port()
            prometheus = _prometheus(workdir, f"127.0.0.1:{operator.metrics_port}", prom_port)
            try:
                time.sleep(5)  # a few idle scrapes first
                start = time.time()
                runs = workload(cluster)
                for kind, name in runs:
                    wait_for(
                        lambda k=kind, n=name: phase(cluster.get(k, n)) in ("Succeeded", "Failed"),
                        900, f"{kind}/{name} to finish", interval=1.0,
                    )  # fmt: skip
                finished = time.time()
                time.sleep(args.tail_seconds)
                end = time.time()
                results = []
                for panel in dashboard["panels"]:
                    series = []
                    for target in panel["targets"]:
                        expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL).replace("$namespace", ".*")
                        series.append((target.get("legendFormat", ""), _query_range(prom_port, expr, start, end, 1.0)))
                    results.append((panel, series))
                render(results, start, args.output)
                summary = {f"{k}/{n}": phase(cluster.get(k, n)) for k, n in runs}
                print(json.dumps({"output": str(args.output), "seconds": round(finished - start, 1), "runs": summary}))
            finally:
                prometheus.terminate()
                prometheus.wait(timeout=30)
                operator.stop()


if __name__ == "__main__":
    main()
