"""The bad-input catalogue: every entry is run by test_bad_input.py and listed in docs/reliability.md.

An entry mutates a valid TrainingRun (and its PromptConfig / dataset) and says what must happen:
``rejected`` (a ManifestError naming ``field`` before anything runs) or ``isolated`` (the run
completes; the bad rows are error rows whose message contains ``needle``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.runner._synthetic import make_rows, manifests

Docs = tuple[dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    id: str
    what: str
    mutate: Callable[[Docs, Path], Docs]
    outcome: str  # "rejected" | "isolated"
    field: str  # the field named in the error (rejected) or the source of the error rows (isolated)
    needle: str


def base() -> Docs:
    pc, tr = manifests(make_rows(n_per_intent=12), epochs=1, batch_size=24)
    return pc, tr


def _set(path: str, value: Any, doc: int = 1) -> Callable[[Docs, Path], Docs]:
    def mutate(docs: Docs, tmp: Path) -> Docs:
        out = copy.deepcopy(docs)
        node: Any = out[doc]
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        key: Any = int(leaf) if isinstance(node, list) else leaf
        if value is _DEL:
            del node[key]
        else:
            node[key] = value
        return out

    return mutate


_DEL = object()


def _dataset_file(content: bytes, fmt: str, input_field: str = "text") -> Callable[[Docs, Path], Docs]:
    def mutate(docs: Docs, tmp: Path) -> Docs:
        pc, tr = copy.deepcopy(docs)
        rows = tr["spec"]["dataset"]["inline"]
        if fmt == "csv":
            body = "id,text,label\n" + "".join(f"{r['id']},{r['text']},{r['label']}\n" for r in rows)
            data = body.encode() + content
        else:
            import json

            data = "".join(json.dumps(r) + "\n" for r in rows).encode() + content
        (tmp / f"data.{fmt}").write_bytes(data)
        ds = tr["spec"]["dataset"]
        del ds["inline"]
        ds.update({"path": str(tmp / f"data.{fmt}"), "format": fmt, "inputField": input_field})
        return pc, tr

    return mutate


def _both(a: Callable[[Docs, Path], Docs], b: Callable[[Docs, Path], Docs]) -> Callable[[Docs, Path], Docs]:
    return lambda docs, tmp: b(a(docs, tmp), tmp)


def _oversized(docs: Docs, tmp: Path) -> Docs:
    pc, tr = copy.deepcopy(docs)
    tr["spec"]["dataset"]["inline"] = [{"text": f"x{i}", "label": "a", "id": str(i)} for i in range(10_001)]
    return pc, tr


def _empty_inputs(docs: Docs, tmp: Path) -> Docs:
    pc, tr = copy.deepcopy(docs)
    for r in tr["spec"]["dataset"]["inline"][:5]:
        r["text"] = "   "
    return pc, tr


def _missing_input_rows(docs: Docs, tmp: Path) -> Docs:
    pc, tr = copy.deepcopy(docs)
    for r in tr["spec"]["dataset"]["inline"][:3]:
        del r["text"]
    return pc, tr


R, ISO = "rejected", "isolated"
CATALOGUE: list[Entry] = [
    Entry(
        "wrong-type",
        "parallelism is a string",
        _set("spec.parallelism", "many"),
        R,
        "spec.parallelism",
        "valid integer",
    ),
    Entry(
        "missing-workflow", "spec.workflow missing", _set("spec.workflow", _DEL), R, "spec.workflow", "Field required"
    ),
    Entry(
        "missing-ref",
        "spec.promptConfigRef missing",
        _set("spec.promptConfigRef", _DEL),
        R,
        "spec.promptConfigRef",
        "Field required",
    ),
    Entry(
        "negative-limit",
        "dataset.limit is -1",
        _set("spec.dataset.limit", -1),
        R,
        "spec.dataset.limit",
        "greater than or equal to 1",
    ),
    Entry(
        "negative-guard",
        "holdoutGuard.maxRegression is negative",
        _set("spec.holdoutGuard.maxRegression", -0.1),
        R,
        "spec.holdoutGuard.maxRegression",
        "greater than or equal to 0",
    ),
    Entry(
        "zero-epochs",
        "optimizer.epochs is 0",
        _set("spec.optimizer.epochs", 0),
        R,
        "spec.optimizer.epochs",
        "greater than or equal to 1",
    ),
    Entry(
        "unknown-evaluator",
        "evaluator type bleu",
        _set("spec.evaluators.0.type", "bleu"),
        R,
        "spec.evaluators[0].type",
        "Input should be",
    ),
    Entry(
        "objective-unknown",
        "objective names no evaluator",
        _set("spec.objective", {"evaluator": "f1"}),
        R,
        "spec",
        "objective.evaluator 'f1' is not one of",
    ),
    Entry(
        "duplicate-evaluators",
        "two evaluators named accuracy",
        _set("spec.evaluators", [{"name": "accuracy", "type": "exact_match"}] * 2),
        R,
        "spec",
        "duplicate name(s) ['accuracy']",
    ),
    Entry(
        "unknown-template",
        "workflow.template chatbot",
        _set("spec.workflow", {"template": "chatbot"}),
        R,
        "spec.workflow.template",
        "Input should be",
    ),
    Entry(
        "entrypoint-syntax",
        "entrypoint is not module:factory",
        _set("spec.workflow", {"entrypoint": "a b"}),
        R,
        "spec.workflow.entrypoint",
        "should match pattern",
    ),
    Entry(
        "entrypoint-missing",
        "entrypoint module does not exist",
        _set("spec.workflow", {"entrypoint": "no_such_pkg.graphs:build"}),
        R,
        "spec.workflow.entrypoint",
        "cannot import module 'no_such_pkg.graphs'",
    ),
    Entry(
        "template-and-entrypoint",
        "both template and entrypoint",
        _set("spec.workflow", {"template": "embedding-router", "entrypoint": "a:b"}),
        R,
        "spec.workflow",
        "exactly one of workflow.template or workflow.entrypoint",
    ),
    Entry(
        "split-sum",
        "split fractions sum to 1.3",
        _set("spec.dataset.split", {"train": 0.9, "validation": 0.2, "holdout": 0.2}),
        R,
        "spec.dataset.split",
        "must sum to 1",
    ),
    Entry(
        "oversized-inline", "inline dataset of 10,001 rows", _oversized, R, "spec.dataset.inline", "at most 10000 items"
    ),
    Entry(
        "typo-field",
        "unknown field spec.datasett",
        _set("spec.datasett", {}),
        R,
        "spec.datasett",
        "Extra inputs are not permitted",
    ),
    Entry(
        "bad-name",
        "metadata.name with capitals",
        _set("metadata.name", "Bad_Name"),
        R,
        "metadata.name",
        "should match pattern",
    ),
    Entry(
        "wrong-api-version",
        "apiVersion v1",
        _set("apiVersion", "agentensor.dev/v1"),
        R,
        "apiVersion",
        "expected 'agentensor.dev/v1alpha1'",
    ),
    Entry(
        "config-callbacks",
        "RunnableConfig callbacks",
        _set("spec.config.callbacks", ["pkg.Handler"]),
        R,
        "spec.config",
        "config.callbacks is not allowed",
    ),
    Entry(
        "config-recursion",
        "recursion_limit 100000",
        _set("spec.config.recursion_limit", 100_000),
        R,
        "spec.config.recursion_limit",
        "less than or equal to 250",
    ),
    Entry(
        "config-concurrency",
        "max_concurrency 0",
        _set("spec.config.max_concurrency", 0),
        R,
        "spec.config.max_concurrency",
        "greater than or equal to 1",
    ),
    Entry(
        "config-nan",
        "configurable holds NaN",
        _set("spec.config.configurable", {"t": float("nan")}),
        R,
        "spec.config.configurable",
        "JSON-serialisable",
    ),
    Entry(
        "config-run-id",
        "RunnableConfig run_id",
        _set("spec.config.run_id", "x"),
        R,
        "spec.config",
        "run_id is set per case",
    ),
    Entry(
        "config-unknown-key",
        "RunnableConfig key 'temperature'",
        _set("spec.config.temperature", 0.1),
        R,
        "spec.config",
        "unknown key(s) ['temperature']",
    ),
    Entry(
        "evaluator-allowlist",
        "python evaluator outside the allow-list",
        _set("spec.evaluators.0", {"name": "accuracy", "type": "python", "options": {"entrypoint": "os:system"}}),
        R,
        "spec.evaluators[0].options.entrypoint",
        "AGENTENSOR_EVALUATOR_ALLOWLIST",
    ),
    Entry(
        "evaluator-regex",
        "regex evaluator with an invalid pattern",
        _set("spec.evaluators.0", {"name": "accuracy", "type": "regex", "options": {"pattern": "(["}}),
        R,
        "spec.evaluators[0].options.pattern",
        "invalid regular expression",
    ),
    Entry(
        "placeholder",
        "workflow option names a missing prompt",
        _set("spec.workflow.options.descriptions", "{{prompts.intents}}"),
        R,
        "spec.workflow.options",
        "prompts has no 'intents'",
    ),
    Entry(
        "input-column",
        "inputField names no column",
        _set("spec.dataset.inputField", "utterance"),
        R,
        "spec.dataset.inputField",
        "no row has a field 'utterance'",
    ),
    Entry(
        "expected-column",
        "expectedField names no column",
        _set("spec.dataset.expectedField", "intent"),
        R,
        "spec.dataset.expectedField",
        "no row has a field 'intent'",
    ),
    Entry(
        "dataset-missing",
        "dataset file does not exist",
        _set("spec.dataset", {"path": "/nonexistent/cases.csv", "inputField": "text", "expectedField": "label"}),
        R,
        "spec.dataset.path",
        "cannot read",
    ),
    Entry(
        "prompt-name",
        "prompt name with a space",
        _set("spec.prompts", {"bad name": {"text": "x"}}, doc=0),
        R,
        "spec.prompts",
        "dotted identifiers",
    ),
    Entry(
        "active-version",
        "activeVersion that was never stored",
        _set("spec.activeVersion", 99, doc=0),
        R,
        "spec.activeVersion",
        "has no stored version 99",
    ),
    Entry(
        "rows-missing-input",
        "3 inline rows without the input field",
        _missing_input_rows,
        ISO,
        "case rows",
        "has no field 'text' (spec.dataset.inputField)",
    ),
    Entry(
        "rows-non-utf8",
        "a CSV row with invalid UTF-8",
        _dataset_file(b"bad,\xff\xfe broken,billing_issue\n", "csv"),
        ISO,
        "case rows",
        "is not valid UTF-8",
    ),
    Entry(
        "rows-bad-json",
        "a JSONL line that is not JSON",
        _dataset_file(b"{not json\n", "jsonl"),
        ISO,
        "case rows",
        "is not valid JSON",
    ),
    Entry(
        "rows-json-array",
        "a JSONL line that is an array",
        _dataset_file(b"[1, 2]\n", "jsonl"),
        ISO,
        "case rows",
        "expected an object",
    ),
    Entry(
        "rows-empty-input",
        "5 cases whose input is blank (the workflow raises)",
        _empty_inputs,
        ISO,
        "case rows",
        "ValueError: input must be a non-empty string",
    ),
]
