"""A small synthetic intent dataset: each intent has its own vocabulary, unrelated to its name."""

from __future__ import annotations

import random
from typing import Any

INTENTS = {
    "billing_issue": ["invoice", "charged twice", "refund", "receipt", "overcharge"],
    "lost_card": ["wallet stolen", "misplaced", "can't find", "someone took", "dropped"],
    "change_address": ["moved house", "new flat", "relocating", "street", "postcode"],
    "open_account": ["sign up", "register", "new customer", "start banking", "join"],
    "close_account": ["leave", "cancel membership", "goodbye", "shut down", "terminate"],
    "travel_notice": ["abroad", "holiday", "vacation", "flying to", "overseas"],
}
FILLERS = ["hi", "please help", "quick question", "urgent", "thanks", "hello there", "so", "today"]


def make_rows(n_per_intent: int = 30, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for intent, words in INTENTS.items():
        for _ in range(n_per_intent):
            a, b = rng.sample(words, 2)
            rows.append({"text": f"{rng.choice(FILLERS)} {a} {rng.choice(FILLERS)} {b}", "label": intent})
    rng.shuffle(rows)
    for i, r in enumerate(rows):
        r["id"] = f"c{i}"
    return rows


def manifests(
    rows: list[dict[str, Any]],
    *,
    epochs: int = 2,
    every: int = 1,
    frozen: tuple[str, ...] = (),
    max_regression: float = 0.02,
    batch_size: int = 32,
) -> tuple[dict[str, Any], dict[str, Any]]:
    pc = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "PromptConfig",
        "metadata": {"name": "synthetic"},
        "spec": {
            "workflow": "synthetic-router",
            "prompts": {f"intent.{k}": {"text": k.replace("_", " "), "requiresGrad": k not in frozen} for k in INTENTS},
        },
    }
    tr = {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "synthetic-train"},
        "spec": {
            "workflow": {"template": "embedding-router", "options": {"embedder": "hashing"}},
            "promptConfigRef": {"name": "synthetic"},
            "config": {"tags": ["test"]},
            "dataset": {
                "inline": rows,
                "inputField": "text",
                "expectedField": "label",
                "idField": "id",
                "seed": 3,
                "split": {"train": 0.5, "validation": 0.25, "holdout": 0.25},
            },
            "evaluators": [{"name": "accuracy", "type": "exact_match", "outputField": "intent"}],
            "optimizer": {"type": "exemplar", "epochs": epochs, "batchSize": batch_size},
            "holdoutGuard": {"maxRegression": max_regression},
            "checkpoint": {"every": every},
            "parallelism": 4,
        },
    }
    return pc, tr
