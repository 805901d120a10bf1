"""Greedy against Pareto selection, each with and without the minibatch gate, in one run.

Usage:
    .venv/bin/python benchmarks/selection_table.py [--shared ../shared/data/banking77] [--out DIR]
        [--example examples/banking77-full] [--training trainingrun-subset.yaml] [--candidates 2]
        [--variants greedy,greedy+gate,pareto,pareto+gate]

For each of the four variants (``selection: greedy|pareto`` x ``minibatchGate: false|true``, the
same ``candidates`` for all so the gate has something to refuse) the example's TrainingRun is run
on a fresh SQLite database in its own folder, the best version is exported and scored with an
EvaluationRun on every Banking77 train row the run's dataset does not contain (rows it never saw),
and the figures come from the run's own status: holdout accuracy (``status.holdout``), metric
calls (``status.budget.metricCalls.used``: case evaluations actually run), model calls
(``status.budget.modelCalls.used``), the gate's saved cases (checkpoint ``calls.gateSavedCases``)
and the wall and CPU (user + system) seconds of the training process. Prints a Markdown table for
docs/results.md. The variants run one after another on the same machine, so their times compare.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agentensor_store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from banking77_accuracy import REPO, agentensor, children_cpu_seconds, evaluation, write_unseen  # type: ignore[import-not-found]

VARIANTS = (("greedy", False), ("greedy", True), ("pareto", False), ("pareto", True))


def gate_saved(db: Path, run_id: str) -> int:
    """Sum of ``calls.gateSavedCases`` over the run's checkpoints."""
    with Store(f"sqlite:///{db}") as store:
        cps = store.list_checkpoints(run_id=run_id)
    return sum(int((c.extra.get("calls") or {}).get("gateSavedCases", 0)) for c in cps)


def train(example: Path, doc: dict[str, Any], selection: str, gated: bool, work: Path) -> dict[str, Any]:
    """Run one variant in ``work``; returns its summary with ``_wall``, ``_cpu`` and ``_saved`` added."""
    work.mkdir(parents=True, exist_ok=True)
    doc = json.loads(json.dumps(doc))
    doc["metadata"]["name"] = f"{doc['metadata']['name']}-{selection}{'-gate' if gated else ''}"
    doc["spec"]["optimizer"]["selection"] = selection
    doc["spec"]["optimizer"]["minibatchGate"] = gated
    doc["spec"]["dataset"]["path"] = str((example / doc["spec"]["dataset"]["path"]).resolve())
    tr = work / "trainingrun.yaml"
    tr.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    started, cpu0 = time.perf_counter(), children_cpu_seconds()
    agentensor("run", "-f", str(example / "promptconfig.yaml"), "-f", str(tr), "--out", str(work / "train"), cwd=work)
    summary: dict[str, Any] = json.loads((work / "train" / "summary.json").read_text())
    summary["_wall"], summary["_cpu"] = time.perf_counter() - started, children_cpu_seconds() - cpu0
    summary["_saved"] = gate_saved(work / "agentensor.db", summary["runId"])
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data" / "banking77")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--example", type=Path, default=REPO / "examples" / "banking77-full")
    ap.add_argument("--training", default="trainingrun-subset.yaml", help="TrainingRun file in --example")
    ap.add_argument("--candidates", type=int, default=2, help="optimizer.candidates for every variant")
    ap.add_argument(
        "--variants", default="greedy,greedy+gate,pareto,pareto+gate", help="comma-separated subset of the four"
    )
    args = ap.parse_args()
    wanted = set(args.variants.split(","))
    example = args.example.resolve()
    work = args.out or Path(tempfile.mkdtemp(prefix="selection-table-"))
    work.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load((example / args.training).read_text(encoding="utf-8"))
    doc["spec"]["optimizer"]["candidates"] = args.candidates
    pc_name, workflow = doc["spec"]["promptConfigRef"]["name"], json.dumps(doc["spec"]["workflow"])
    unseen = work / "unseen.csv"
    n = write_unseen(args.shared, example / doc["spec"]["dataset"]["path"], unseen) if args.shared.exists() else 0
    lines = []
    for selection, gated in [(sel, g) for sel, g in VARIANTS if f"{sel}{'+gate' if g else ''}" in wanted]:
        vwork = work / f"{selection}{'-gate' if gated else ''}"
        s = train(example, doc, selection, gated, vwork)
        unseen_best = "not measured"
        if n:
            best_pc = vwork / "best.yaml"
            agentensor("checkpoints", "export", pc_name, "--best", "-o", str(best_pc), "--name", pc_name, cwd=vwork)
            unseen_best = f"{evaluation(best_pc, unseen, 'unseen-best', vwork, pc_name, workflow):.4f}"
        budget = s.get("budget") or {}
        lines.append(
            f"| {selection}{' + gate' if gated else ''} | {s['bestScore']:.4f} | {s['holdout']['best']:.4f} | "
            f"{unseen_best} | {int(budget['metricCalls']['used']):,} | {int(budget['modelCalls']['used']):,} | "
            f"{s['_saved']:,} | {len(s['checkpoints']) - 1} | {s['_wall']:.0f} s / {s['_cpu']:.0f} s |"
        )
        print(lines[-1], flush=True)
    baseline = (
        f"{evaluation(example / 'promptconfig.yaml', unseen, 'unseen-base', work, pc_name, workflow):.4f}" if n else "-"
    )
    print(f"\n{args.training}, candidates {args.candidates}; baseline on the {n} unseen rows: {baseline}")
    print(f"outputs in {work}\n")
    print(
        "| selection | validation | holdout | unseen train rows | metric calls | model calls | gate saved | "
        "epochs | training wall / CPU |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
