"""Measure the Banking77 example: baseline vs optimized accuracy, and wall time.

Usage:
    .venv/bin/python benchmarks/banking77_accuracy.py [--shared ../shared/data/banking77] [--out DIR]
        [--example examples/banking77] [--training trainingrun.yaml]

Runs exactly what the example's README runs (its PromptConfig and TrainingRun on a fresh SQLite
database), then exports the best version and scores baseline and best with an EvaluationRun on
every Banking77 train row the run's dataset does not contain (data the run never saw: not train,
not validation, not holdout; none for ``examples/banking77-full``). Prints a Markdown table for
docs/results.md with the training wall time and the CPU time (user + system) of the training
process, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "banking77"


def children_cpu_seconds() -> float:
    """User + system CPU seconds of every finished child process so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def yaml_field(path: Path, key: str) -> str:
    """The first ``key: value`` of a manifest, unquoted (enough for ``name`` and ``path``)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith(f"{key}:"):
            return line.split(":", 1)[1].split("#", 1)[0].strip().strip("'\"")
    raise SystemExit(f"{path}: no {key!r} field")


def write_unseen(shared: Path, dataset: Path, out: Path) -> int:
    """Write the rows of ``shared/train.csv`` whose ``train-<index>`` id is not in ``dataset``."""
    used = {r["id"] for r in csv.DictReader(dataset.open(encoding="utf-8"))}
    rows = list(csv.DictReader((shared / "train.csv").open(encoding="utf-8")))
    n = 0
    with out.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "text", "category"])
        w.writeheader()
        for i, r in enumerate(rows):
            if f"train-{i}" not in used:
                w.writerow({"id": f"train-{i}", "text": r["text"], "category": r["category"]})
                n += 1
    return n


def agentensor(*args: str, cwd: Path) -> None:
    # examples/banking77-full/trainingrun-subset.yaml reads ../banking77/: grant examples/ as a data root
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AGENTENSOR_DATA_ROOTS": str(REPO / "examples")}
    env.pop("AGENTENSOR_DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "-m", "agentensor_cli", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL
    )


def evaluation(pc: Path, data: Path, name: str, work: Path, pc_name: str, workflow: str) -> float:
    doc = work / f"{name}.yaml"
    doc.write_text(f"""apiVersion: agentensor.dev/v1alpha1
kind: EvaluationRun
metadata: {{name: {name}}}
spec:
  workflow: {workflow}
  promptConfigRef: {{name: {pc_name}}}
  dataset: {{path: {data}, idField: id, inputField: text, expectedField: category}}
  evaluators: [{{name: accuracy, type: exact_match, outputField: intent}}]
  parallelism: 8
""")
    agentensor("run", "-f", str(pc), "-f", str(doc), "--out", str(work / name), cwd=work)
    return float(json.loads((work / name / "summary.json").read_text())["scores"]["accuracy"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data" / "banking77")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--example", type=Path, default=EXAMPLE, help="example folder with promptconfig.yaml")
    ap.add_argument("--training", default="trainingrun.yaml", help="TrainingRun file in --example")
    args = ap.parse_args()
    example = args.example.resolve()
    work = args.out or Path(tempfile.mkdtemp(prefix="banking77-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tr_doc = yaml.safe_load((example / args.training).read_text(encoding="utf-8"))["spec"]
    pc_name = tr_doc["promptConfigRef"]["name"]
    workflow = json.dumps(tr_doc["workflow"])
    started, cpu0 = time.perf_counter(), children_cpu_seconds()
    pc = example / "promptconfig.yaml"
    agentensor("run", "-f", str(pc), "-f", str(example / args.training), "--out", str(work / "train"), cwd=work)
    train_seconds, train_cpu = time.perf_counter() - started, children_cpu_seconds() - cpu0
    s = json.loads((work / "train" / "summary.json").read_text())
    rows = [
        ("validation split (selects candidates)", s["baselineScore"], s["bestScore"]),
        ("holdout split (never used for selection)", s["holdout"]["baseline"], s["holdout"]["best"]),
    ]
    unseen = work / "unseen.csv"
    n = write_unseen(args.shared, example / tr_doc["dataset"]["path"], unseen) if args.shared.exists() else 0
    if n:
        best_pc = work / "best.yaml"
        agentensor("checkpoints", "export", pc_name, "--best", "-o", str(best_pc), "--name", pc_name, cwd=work)
        base = evaluation(pc, unseen, "unseen-baseline", work, pc_name, workflow)
        best = evaluation(best_pc, unseen, "unseen-best", work, pc_name, workflow)
        rows.append((f"{n} Banking77 train rows the run never saw", base, best))
    print(f"| data | baseline (label names) | optimized (version {s['bestVersion']}) |")
    print("| --- | --- | --- |")
    for name, b, o in rows:
        print(f"| {name} | {b:.4f} | {o:.4f} |")
    print(
        f"\ntraining: wall {train_seconds:.1f} s, CPU {train_cpu:.1f} s (user+system; epochs: "
        f"{len(s['checkpoints']) - 1}, case invocations: {s['casesCompleted']}); outputs in {work}"
    )


if __name__ == "__main__":
    main()
