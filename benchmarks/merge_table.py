"""GEPA-style merges on and off: the synthetic 6-intent router, pareto selection, several seeds.

    .venv/bin/python benchmarks/merge_table.py [--seeds 5] [--max-merges 3]

Each dataset seed (tests/runner/_synthetic.py: 6 intents x 30 rows, one trainable prompt per
intent) is trained twice with ``exemplar``, ``selection: pareto``, ``candidates: 2``, 3 epochs,
batch 16, on a SQLite store in a temporary directory: ``maxMerges: 0`` and ``maxMerges: N``.
Prints one JSON line per seed (best validation score, holdout score of the best config, case rows
and merges proposed/kept, for both) and a last line with the means. The figures are recorded in
docs/training.md ("Merge").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from statistics import mean
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one(seed: int, max_merges: int, tmp: Path) -> dict[str, Any]:
    from agentensor_api import parse_resource
    from agentensor_runner import execute
    from agentensor_store import Store
    from tests.runner._synthetic import make_rows, manifests

    pc, tr = manifests(make_rows(seed=seed), epochs=3, batch_size=16)
    tr["spec"]["optimizer"].update({"selection": "pareto", "candidates": 2, "maxMerges": max_merges})
    store = Store(f"sqlite:///{tmp / f'{seed}-{max_merges}.db'}")
    store.upgrade()
    try:
        status = asyncio.run(execute(parse_resource(tr), parse_resource(pc), store, base_dir=REPO, run_id="m"))  # type: ignore[arg-type]
        calls = [(c.extra or {}).get("calls", {}) for c in store.list_checkpoints(run_id="m")]
        rows = len(store.list_cases("m"))
    finally:
        store.close()
    assert status.holdout is not None and status.best_score is not None, status.message
    return {
        "validation": round(status.best_score, 4),
        "holdout": round(status.holdout.best or 0.0, 4),
        "caseRows": rows,
        "mergeProposals": sum(c.get("mergeProposals", 0) for c in calls),
        "mergesAccepted": sum(c.get("mergesAccepted", 0) for c in calls),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--max-merges", type=int, default=3)
    a = p.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as d:
        for seed in range(a.seeds):
            line = {"seed": seed, "off": one(seed, 0, Path(d)), "on": one(seed, a.max_merges, Path(d))}
            print(json.dumps(line), flush=True)
            lines.append(line)
    print(
        json.dumps(
            {
                way: {k: round(mean(x[way][k] for x in lines), 4) for k in ("validation", "holdout", "caseRows")}
                for way in ("off", "on")
            }
        )
    )


if __name__ == "__main__":
    main()
