"""Routing ceilings on Banking77 without training: mean prototypes vs nearest lines.

Usage:
    .venv/bin/python benchmarks/banking77_ceiling.py [--shared ../shared/data/banking77] [--lines 31]

Embeds the whole Banking77 train split once (all-MiniLM-L6-v2), splits it 60/20/20 per intent
(``random.Random(7)``, cut by rounding, like the trainer), and scores the last 20 % with
descriptions made of the intent name plus ``--lines`` random train utterances, or every train
utterance, under ``match: prototype`` and ``match: nearest`` with ``topK`` 1, 2, 3 and 5.
Prints a Markdown table. This is the reference the exemplar optimizer's lines are compared to.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runner"))

from agentensor_runner.llm import MiniLMEmbedder  # noqa: E402

Matrix = npt.NDArray[np.float32]


def accuracy(x: Matrix, y: list[int], groups: list[Matrix], mode: str, k: int) -> float:
    """Share of rows of ``x`` whose best-scoring group is ``y`` (``groups[i]``: intent i's line vectors)."""
    scores = np.zeros((len(x), len(groups)), dtype=np.float32)
    for i, g in enumerate(groups):
        if mode == "prototype":
            m = g.mean(axis=0)
            scores[:, i] = x @ (m / np.linalg.norm(m))
        else:
            sims = np.sort(x @ g.T, axis=1)[:, -min(k, len(g)) :]
            scores[:, i] = sims.mean(axis=1)
    return float(np.mean(scores.argmax(axis=1) == np.asarray(y)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data" / "banking77")
    ap.add_argument("--lines", type=int, default=31)
    args = ap.parse_args()
    rows = list(csv.DictReader((args.shared / "train.csv").open(encoding="utf-8")))
    intents = json.loads((args.shared / "categories.json").read_text(encoding="utf-8"))
    emb = MiniLMEmbedder()
    x = emb.embed([r["text"] for r in rows])
    names = emb.embed([i.replace("_", " ") for i in intents])
    index = {name: i for i, name in enumerate(intents)}
    by: dict[int, list[int]] = defaultdict(list)
    for n, r in enumerate(rows):
        by[index[r["category"]]].append(n)
    rng, train, test = random.Random(7), defaultdict(list), []
    for c in sorted(by):
        idx = by[c][:]
        rng.shuffle(idx)
        train[c] = idx[: round(len(idx) * 0.6)]
        test += idx[round(len(idx) * 0.8) :]
    pick = random.Random(1)
    variants = {
        f"name + {args.lines} random train utterances": {
            c: pick.sample(train[c], min(args.lines, len(train[c]))) for c in range(len(intents))
        },
        "name + every train utterance": {c: train[c] for c in range(len(intents))},
    }
    yt = [index[rows[n]["category"]] for n in test]
    print(f"| lines per intent | prototype | nearest topK 1 | topK 2 | topK 3 | topK 5 |  ({len(test)} rows)")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, chosen in variants.items():
        groups = [np.vstack([names[c : c + 1], x[chosen[c]]]) for c in range(len(intents))]
        cells = [accuracy(x[test], yt, groups, "prototype", 1)]
        cells += [accuracy(x[test], yt, groups, "nearest", k) for k in (1, 2, 3, 5)]
        print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in cells) + " |")


if __name__ == "__main__":
    main()
