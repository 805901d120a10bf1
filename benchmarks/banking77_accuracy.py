"""Measure the Banking77 example: baseline vs optimized accuracy, and wall time.

Usage:
    .venv/bin/python benchmarks/banking77_accuracy.py [--shared ../shared/data/banking77] [--out DIR]

Runs exactly what the README's first command runs (the example TrainingRun on a fresh SQLite
database), then exports the best version and scores baseline and best with an EvaluationRun on
every Banking77 train row the example does not ship (data the run never saw: not train, not
validation, not holdout). Prints a Markdown table for docs/results.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "banking77"


def agentensor(*args: str, cwd: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("AGENTENSOR_DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "-m", "agentensor_cli", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL
    )


def evaluation(pc: Path, data: Path, name: str, work: Path) -> float:
    doc = work / f"{name}.yaml"
    doc.write_text(f"""apiVersion: agentensor.dev/v1alpha1
kind: EvaluationRun
metadata: {{name: {name}}}
spec:
  workflow: {{template: embedding-router}}
  promptConfigRef: {{name: banking77-router}}
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
    args = ap.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="banking77-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    agentensor(
        "run",
        "-f",
        str(EXAMPLE / "promptconfig.yaml"),
        "-f",
        str(EXAMPLE / "trainingrun.yaml"),
        "--out",
        str(work / "train"),
        cwd=work,
    )
    train_seconds = time.perf_counter() - started
    s = json.loads((work / "train" / "summary.json").read_text())
    rows = [
        ("validation split", s["baselineScore"], s["bestScore"]),
        ("holdout split (never used for selection)", s["holdout"]["baseline"], s["holdout"]["best"]),
    ]
    if (args.shared / "train.csv").exists():
        unseen = work / "unseen.csv"
        subprocess.run(
            [sys.executable, str(EXAMPLE / "make_subset.py"), str(args.shared), "--unseen", str(unseen)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        agentensor(
            "checkpoints",
            "export",
            "banking77-router",
            "--best",
            "-o",
            str(work / "best.yaml"),
            "--name",
            "banking77-router",
            cwd=work,
        )
        n = sum(1 for _ in csv.DictReader(unseen.open(encoding="utf-8")))
        base = evaluation(EXAMPLE / "promptconfig.yaml", unseen, "unseen-baseline", work)
        best = evaluation(work / "best.yaml", unseen, "unseen-best", work)
        rows.append((f"{n} Banking77 train rows the example does not ship", base, best))
    print(f"| data | baseline (label names) | optimized (version {s['bestVersion']}) |")
    print("| --- | --- | --- |")
    for name, b, o in rows:
        print(f"| {name} | {b:.4f} | {o:.4f} |")
    print(
        f"\ntraining wall time: {train_seconds:.1f} s (epochs: {len(s['checkpoints']) - 1}, "
        f"case invocations: {s['casesCompleted']}); outputs in {work}"
    )


if __name__ == "__main__":
    main()
