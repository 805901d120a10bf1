"""The bad-input catalogue: every entry is run by test_bad_input.py and listed in docs/reliability.md.

An entry mutates a valid TrainingRun (and its PromptConfig / dataset) and says what must happen:
``rejected`` (a ManifestError naming ``field`` before anything runs), ``isolated`` (the run
completes; the bad rows are error rows whose message contains ``needle``), ``refused`` (a store
error naming the run id: another kind or spec reusing the reference run's id) or ``failed`` (the
run ends Failed with ``needle`` in its message, Running=False beside Failed=True).

``CLI_CATALOGUE`` holds what only the command line can be given (files, devices, databases,
``--out``): each entry is run through the real ``agentensor run`` and must exit 2 with a message
that contains ``needle``, never a traceback (tests/reliability/test_cli_bad_input.py).
"""

from __future__ import annotations

import copy
import os
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
    outcome: str  # "rejected" | "isolated" | "refused" | "failed"
    field: str  # the field named in the error (rejected) or the source of the error rows (isolated)
    needle: str
    run_id: str | None = None  # None: a fresh id per entry; "reference": the seeded run's id
    check: Callable[[Any, str], None] | None = None  # extra assertion on (store, run_id) afterwards


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


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


def _as_evaluation(docs: Docs) -> Docs:
    pc, tr = copy.deepcopy(docs)
    tr["kind"] = "EvaluationRun"
    tr["metadata"]["name"] = "synthetic-eval"
    for key in ("optimizer", "holdoutGuard", "checkpoint"):
        tr["spec"].pop(key, None)
    tr["spec"]["dataset"].pop("split", None)
    return pc, tr


def _other_kind(docs: Docs, tmp: Path) -> Docs:
    return _as_evaluation(docs)


def _redos(docs: Docs, tmp: Path) -> Docs:
    """An echo workflow scored by a catastrophic regex; 3 long inputs make it backtrack."""
    pc, tr = _as_evaluation(docs)
    tr["spec"]["workflow"] = {
        "entrypoint": "tests.runner.sample_workflows:build_echo",
        "options": {"template": "{{state.input}}"},
    }
    tr["spec"]["evaluators"] = [
        {"name": "accuracy", "type": "exact_match", "outputField": "answer"},
        {"name": "shape", "type": "regex", "outputField": "answer", "options": {"pattern": "^(a|aa)+$"}},
    ]
    rows = tr["spec"]["dataset"]["inline"]
    for r in rows[:3]:
        r["text"] = "a" * 5000 + "!"
    return pc, tr


def _nul_rows(docs: Docs, tmp: Path) -> Docs:
    pc, tr = copy.deepcopy(docs)
    for r in tr["spec"]["dataset"]["inline"][:2]:
        r["text"] = "refund\x00 please"
    return pc, tr


def _bom_csv_missing_label(docs: Docs, tmp: Path) -> Docs:
    """A CSV exported with a byte-order mark, two of whose lines lack their label cell."""
    pc, tr = copy.deepcopy(docs)
    rows = tr["spec"]["dataset"]["inline"]
    lines = [f"{r['id']},{r['text']},{r['label']}" for r in rows]
    lines[0] = lines[0].rsplit(",", 1)[0]
    lines[1] = lines[1].rsplit(",", 1)[0]
    (tmp / "bom.csv").write_bytes(b"\xef\xbb\xbf" + ("id,text,label\n" + "\n".join(lines) + "\n").encode())
    ds = tr["spec"]["dataset"]
    del ds["inline"]
    ds.update({"path": str(tmp / "bom.csv"), "format": "csv"})
    return pc, tr


def _ids_from_the_id_column(store: Any, run_id: str) -> None:
    ids = {r.case_id for r in store.list_cases(run_id)}
    assert ids and all(i.startswith("c") for i in ids), sorted(ids)[:5]  # "c<n>", not row numbers


def _all_blank(docs: Docs, tmp: Path) -> Docs:
    pc, tr = copy.deepcopy(docs)
    for r in tr["spec"]["dataset"]["inline"]:
        r["text"] = "   "
    return _as_evaluation((pc, tr))


def _conditions_settled(store: Any, run_id: str) -> None:
    run = store.get_run(run_id)
    conds = {c["type"]: c["status"] for c in run.status.get("conditions", [])}
    assert run.phase == "Failed" and conds.get("Failed") == "True", conds
    assert conds.get("Running") != "True", f"stale Running=True beside Failed: {conds}"


def _prompt_nul(docs: Docs, tmp: Path) -> Docs:
    pc, tr = copy.deepcopy(docs)
    pc["spec"]["prompts"]["intent.lost_card"]["text"] = "lost\x00card"
    return pc, tr


def _dataset_device(docs: Docs, tmp: Path) -> Docs:
    return _set("spec.dataset", {"path": "/dev/zero", "format": "jsonl", "inputField": "text"})(docs, tmp)


def _dataset_dir(docs: Docs, tmp: Path) -> Docs:
    return _set("spec.dataset", {"path": str(tmp), "format": "csv", "inputField": "text"})(docs, tmp)


def _dataset_path(path: str | Callable[[Path], str]) -> Callable[[Docs, Path], Docs]:
    """``spec.dataset.path`` set to ``path`` (or ``path(tmp)``), CSV, columns of the base dataset."""

    def mutate(docs: Docs, tmp: Path) -> Docs:
        raw = path(tmp) if callable(path) else path
        ds = {"path": raw, "format": "csv", "inputField": "text", "expectedField": "label"}
        return _set("spec.dataset", ds)(docs, tmp)

    return mutate


def _symlink_to(target: Callable[[Path], Path]) -> Callable[[Path], str]:
    """A symlink in the granted ``tmp`` pointing at ``target(tmp)``: the path a manifest names."""

    def make(tmp: Path) -> str:
        link = tmp / "cases.csv"
        link.symlink_to(target(tmp))
        return str(link)

    return make


def _outside_file(tmp: Path) -> Path:
    """A real CSV beside the granted folder, not under it."""
    outside = tmp.parent / f"{tmp.name}-outside.csv"
    outside.write_text("id,text,label\n1,secret,a\n")
    return outside


def _with_model(model: dict[str, Any], **spec: Any) -> Callable[[Docs, Path], Docs]:
    """The run given ``spec.models.task`` (and other spec fields): checked before any model is built."""

    def mutate(docs: Docs, tmp: Path) -> Docs:
        pc, tr = copy.deepcopy(docs)
        tr["spec"]["models"] = {"task": {"model": "openai:gpt-4o-mini", **model}}
        tr["spec"].update(spec)
        return pc, tr

    return mutate


def _dataset_binary(docs: Docs, tmp: Path) -> Docs:
    (tmp / "cases.jsonl").write_bytes(b'{"text": "hi", "label": "a"}\n' + bytes(range(256)) * 4)
    return _set("spec.dataset", {"path": str(tmp / "cases.jsonl"), "inputField": "text", "expectedField": "label"})(
        docs, tmp
    )


DEEP = 40
DEEP_FIELD = "spec.workflow.options" + ".k" * 30
"""Where MAX_DEPTH (32) is crossed: spec(1).workflow(2).options(3) then 29 more levels of k."""


def _long_case_ids(docs: Docs, tmp: Path) -> Docs:
    """The first 3 inline rows get ids of 256, 10,000 and 300 (two-byte) characters."""
    out = copy.deepcopy(docs)
    for row, case_id in zip(out[1]["spec"]["dataset"]["inline"], ["L" * 256, "L" * 10_000, "é" * 300], strict=False):
        row["id"] = case_id
    return out


def _case_ids_fit(store: Any, run_id: str) -> None:
    rows = store.list_cases(run_id)
    assert all(len(r.case_id) <= 255 for r in rows)
    assert len([r for r in rows if r.error and "case id may hold" in r.error]) == 3


R, ISO, REF, FAIL = "rejected", "isolated", "refused", "failed"
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
        "allow-listed entrypoint module does not exist",
        _set("spec.workflow", {"entrypoint": "tests.no_such_pkg.graphs:build"}),
        R,
        "spec.workflow.entrypoint",
        "cannot import module 'tests.no_such_pkg.graphs'",
    ),
    Entry(
        "entrypoint-stdlib",
        "entrypoint subprocess:run (the standard library is never allowed by default)",
        _set("spec.workflow", {"entrypoint": "subprocess:run"}),
        R,
        "spec.workflow.entrypoint",
        "module 'subprocess' is not allow-listed for workflow entrypoints",
    ),
    Entry(
        "entrypoint-reexport",
        "entrypoint names os.system re-exported by an allowed module",
        _set("spec.workflow", {"entrypoint": "tests.reliability.hostile:system"}),
        R,
        "spec.workflow.entrypoint",
        "is defined in module 'posix', not in an allow-listed module",
    ),
    Entry(
        "entrypoint-not-graph",
        "entrypoint factory returns an int",
        _set("spec.workflow", {"entrypoint": "tests.runner.sample_workflows:build_broken"}),
        R,
        "spec.workflow.entrypoint",
        "factory returned int, expected a LangGraph StateGraph or compiled graph",
    ),
    Entry(
        "evaluator-reexport",
        "python evaluator names os.system re-exported by an allowed module",
        _set(
            "spec.evaluators.0",
            {"name": "accuracy", "type": "python", "options": {"entrypoint": "tests.reliability.hostile:system"}},
        ),
        R,
        "spec.evaluators[0].options.entrypoint",
        "is defined in module 'posix'",
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
        _dataset_path(lambda tmp: str(tmp / "nonexistent" / "cases.csv")),
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
        "regex-redos",
        "regex (a|aa)+$ on 3 outputs of 5001 characters (catastrophic backtracking)",
        _redos,
        ISO,
        "case rows",
        "ran longer than timeoutSeconds=1",
    ),
    Entry(
        "dataset-device",
        "dataset path /dev/zero",
        _dataset_device,
        R,
        "spec.dataset.path",
        "'/dev/zero' resolves to /dev/zero, under /dev, which a manifest may never read",
    ),
    Entry("dataset-directory", "dataset path is a directory", _dataset_dir, R, "spec.dataset.path", "is a directory"),
    Entry(
        "dataset-proc-environ",
        "dataset path /proc/self/environ (the runner's environment: the database URL)",
        _dataset_path("/proc/self/environ"),
        R,
        "spec.dataset.path",
        "under /proc, which a manifest may never read",
    ),
    Entry(
        "dataset-outside-roots",
        "an absolute dataset path outside the granted folders (/etc/passwd)",
        _dataset_path("/etc/passwd"),
        R,
        "spec.dataset.path",
        "outside the folders a manifest may read",
    ),
    Entry(
        "dataset-dotdot",
        "a relative dataset path climbing out with ..",
        _dataset_path("../" * 40 + "etc/hostname"),
        R,
        "spec.dataset.path",
        "resolves to /etc/hostname, outside the folders a manifest may read",
    ),
    Entry(
        "dataset-symlink-escape",
        "a symlink inside the granted folder to a file outside it",
        _dataset_path(_symlink_to(_outside_file)),
        R,
        "spec.dataset.path",
        "outside the folders a manifest may read",
    ),
    Entry(
        "dataset-symlink-proc",
        "a symlink inside the granted folder to /proc/self/environ",
        _dataset_path(_symlink_to(lambda tmp: Path("/proc/self/environ"))),
        R,
        "spec.dataset.path",
        "which a manifest may never read",
    ),
    Entry(
        "response-cache-outside",
        "spec.responseCache.path outside the granted folders",
        _with_model({"baseUrl": "http://127.0.0.1:9/v1"}, responseCache={"path": "/etc/agentensor-cache.sqlite"}),
        R,
        "spec.responseCache.path",
        "outside the folders a manifest may read",
    ),
    Entry(
        "model-key-dsn",
        "apiKeyEnv names AGENTENSOR_DATABASE_URL (the DSN with its password)",
        _with_model({"apiKeyEnv": "AGENTENSOR_DATABASE_URL"}),
        R,
        "spec.models.task.apiKeyEnv",
        "is never read as an API key",
    ),
    Entry(
        "model-key-ungranted",
        "apiKeyEnv names a variable nobody granted (GITHUB_TOKEN)",
        _with_model({"apiKeyEnv": "GITHUB_TOKEN"}),
        R,
        "spec.models.task.apiKeyEnv",
        "GITHUB_TOKEN is not a granted API key variable",
    ),
    Entry(
        "model-key-foreign-host",
        "a well-known key (OPENAI_API_KEY) bound for an unlisted baseUrl host",
        _with_model({"apiKeyEnv": "OPENAI_API_KEY", "baseUrl": "https://exfil.example/v1"}),
        R,
        "spec.models.task.baseUrl",
        "'exfil.example' is not one",
    ),
    Entry(
        "model-default-key-foreign-host",
        "no apiKeyEnv: the openai client's own OPENAI_API_KEY bound for an unlisted host",
        _with_model({"baseUrl": "https://exfil.example/v1"}),
        R,
        "spec.models.task.baseUrl",
        "the openai client's default key",
    ),
    Entry(
        "model-base-url-userinfo",
        "a baseUrl with user info that parsers read as different hosts",
        _with_model({"apiKeyEnv": "OPENAI_API_KEY", "baseUrl": "http://127.0.0.1:8080@exfil.example/v1"}),
        R,
        "spec.models.task.baseUrl",
        "holds user info",
    ),
    Entry(
        "dataset-binary",
        "dataset file with binary bytes",
        _dataset_binary,
        R,
        "spec.dataset.path",
        "is a binary file (it holds NUL bytes)",
    ),
    Entry(
        "deep-nesting",
        f"workflow.options nested {DEEP} deep",
        _set("spec.workflow.options", _nested(DEEP)),
        R,
        DEEP_FIELD,
        "nesting is deeper than 32 levels",
    ),
    Entry(
        "configurable-deep",
        "config.configurable nested 11 deep (the CRD schema allows 4 levels below a key)",
        _set("spec.config.configurable", {"a": _nested(10)}),
        R,
        "spec.config.configurable",
        "a.k.k.k.k: nested too deep",
    ),
    Entry(
        "seed-int64",
        "dataset.seed is 2**64",
        _set("spec.dataset.seed", 2**64),
        R,
        "spec.dataset.seed",
        "out of range (64-bit",
    ),
    Entry(
        "version-int64",
        "promptConfigRef.version is 2**63",
        _set("spec.promptConfigRef.version", 2**63),
        R,
        "spec.promptConfigRef.version",
        "out of range (64-bit",
    ),
    Entry(
        "strict-string-int",
        'parallelism is the string "8" (the API server refuses it too)',
        _set("spec.parallelism", "8"),
        R,
        "spec.parallelism",
        "valid integer",
    ),
    Entry(
        "strict-bool-int",
        "parallelism is true",
        _set("spec.parallelism", True),
        R,
        "spec.parallelism",
        "valid integer",
    ),
    Entry(
        "parameters-nan",
        "PromptConfig parameters hold NaN",
        _set("spec.parameters", {"temperature": float("nan")}, doc=0),
        R,
        "spec.parameters",
        "must be JSON-serialisable",
    ),
    Entry(
        "parameters-not-mapping",
        "PromptConfig parameters is a list",
        _set("spec.parameters", [1, 2], doc=0),
        R,
        "spec.parameters",
        "valid dictionary",
    ),
    Entry(
        "prompt-nul",
        "a prompt text holds NUL",
        _prompt_nul,
        R,
        "spec.prompts.intent.lost_card.text",
        "contains a NUL character",
    ),
    Entry(
        "prompt-name-nul",
        "a prompt name holds NUL",
        _set("spec.prompts", {"a\x00b": {"text": "x"}}, doc=0),
        R,
        "spec.prompts",
        "a key contains a NUL character",
    ),
    Entry(
        "resume-other-kind",
        "an EvaluationRun reusing the TrainingRun's run id",
        _other_kind,
        REF,
        "run id",
        "belongs to a TrainingRun with spec sha256",
        run_id="reference",
    ),
    Entry(
        "resume-other-spec",
        "the TrainingRun resumed with another dataset seed",
        _set("spec.dataset.seed", 4),
        REF,
        "run id",
        "a run id is resumed only by the same kind and spec",
        run_id="reference",
    ),
    Entry(
        "rows-nul",
        "2 inline rows whose text holds NUL (PostgreSQL cannot store it)",
        _nul_rows,
        ISO,
        "case rows",
        "holds a NUL character (U+0000)",
    ),
    Entry(
        "csv-bom-missing-label",
        "a CSV with a byte-order mark, 2 lines without their label cell",
        _bom_csv_missing_label,
        ISO,
        "case rows",
        "has no cell for ['label']",
        check=_ids_from_the_id_column,
    ),
    Entry(
        "all-cases-fail",
        "every input is blank: the run fails",
        _all_blank,
        FAIL,
        "status",
        "every case failed",
        check=_conditions_settled,
    ),
    Entry(
        "rows-empty-input",
        "5 cases whose input is blank (the workflow raises)",
        _empty_inputs,
        ISO,
        "case rows",
        "ValueError: input must be a non-empty string",
    ),
    # -- issue 20, metadata and backend parity (cli-hostile) --------------------------------------
    Entry(
        "namespace-not-a-label",
        "metadata.namespace holds [/x] (not a DNS-1123 label)",
        _set("metadata.namespace", "[/x]"),
        R,
        "metadata.namespace",
        "String should match pattern",
    ),
    Entry(
        "namespace-64",
        "metadata.namespace of 64 characters",
        _set("metadata.namespace", "n" * 64),
        R,
        "metadata.namespace",
        "at most 63 characters",
    ),
    Entry(
        "name-empty-label",
        "metadata.name a..b (an empty DNS label)",
        _set("metadata.name", "a..b"),
        R,
        "metadata.name",
        "String should match pattern",
    ),
    Entry(
        "uid-65",
        "metadata.uid of 65 characters (the run id column holds 64)",
        _set("metadata.uid", "u" * 65),
        R,
        "metadata.uid",
        "at most 64 characters",
    ),
    Entry(
        "case-id-over-255",
        "3 case ids over 255 characters (PostgreSQL's case_id column; SQLite stored them)",
        _long_case_ids,
        ISO,
        "case rows",
        "more than the 255 a case id may hold",
        check=_case_ids_fit,
    ),
    # issue 20: spec.runner reaching past what the admin granted (the API model's part; the
    # operator's part, Secrets, mount folders and Pod keys, is tests/k8s/test_operator_runner.py)
    *(
        Entry(
            f"runner-env-{name.lower().replace('_', '-')}",
            f"spec.runner.env sets {name} ({what})",
            _set("spec.runner", {"env": [{"name": name, "value": value}]}),
            R,
            "spec.runner.env[0]",
            f"{name}: a run may not set this variable",
        )
        for name, value, what in (
            ("PYTHONPATH", "/data/inject", "a sitecustomize.py on a ConfigMap volume would run"),
            ("PYTHONSTARTUP", "/data/x.py", "interpreter startup code"),
            ("LD_PRELOAD", "/data/evil.so", "the loader loads a library first"),
            ("GCONV_PATH", "/data", "glibc loads charset modules"),
            ("https_proxy", "http://evil:3128", "traffic, API keys included, through the author's proxy"),
            ("PGHOST", "evil.example.com", "libpq connects elsewhere"),
            ("PGPASSFILE", "/data/pgpass", "libpq reads another password file"),
            ("SSL_CERT_FILE", "/data/ca.pem", "the author's CA is trusted"),
            ("REQUESTS_CA_BUNDLE", "/data/ca.pem", "the author's CA is trusted"),
            ("HF_ENDPOINT", "http://evil", "models come from the author's hub"),
            ("OPENAI_BASE_URL", "http://evil/v1", "the API key goes to the author's server"),
            ("BASH_ENV", "/data/x.sh", "every bash runs a script"),
            ("PATH", "/data/bin", "other programs run"),
            ("AGENTENSOR_EVALUATOR_ALLOWLIST", "os", "the operator's variables"),
        )
    ),
    Entry(
        "runner-mount-dotdot",
        "spec.runner.volumeMounts[].mountPath is /x/../tmp (the operator's /tmp, compared as a string)",
        _set(
            "spec.runner",
            {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [{"name": "d", "mountPath": "/x/../tmp"}]},
        ),
        R,
        "spec.runner.volumeMounts[0].mountPath",
        "'..' part",
    ),
    Entry(
        "runner-mount-double-slash",
        "spec.runner.volumeMounts[].mountPath is //etc/agentensor/run (over the run's manifest)",
        _set(
            "spec.runner",
            {
                "volumes": [{"name": "d", "emptyDir": {}}],
                "volumeMounts": [{"name": "d", "mountPath": "//etc/agentensor/run"}],
            },
        ),
        R,
        "spec.runner.volumeMounts[0]",
        "overlaps /etc/agentensor",
    ),
    Entry(
        "runner-subpath-dotdot",
        "spec.runner.volumeMounts[].subPath climbs out of the volume",
        _set(
            "spec.runner",
            {
                "volumes": [{"name": "d", "emptyDir": {}}],
                "volumeMounts": [{"name": "d", "mountPath": "/data", "subPath": "../../etc"}],
            },
        ),
        R,
        "spec.runner.volumeMounts[0].subPath",
        "'..' part",
    ),
]


# -- what only the command line can be given ------------------------------------------------------


@dataclass(frozen=True)
class CliEntry:
    """``setup(tmp, db_url)`` returns the arguments of ``agentensor run`` (``-f``/``--db``/``--out``...)."""

    id: str
    what: str
    setup: Callable[[Path, str], list[str]]
    needle: str
    tiny_fs: bool = False  # tmp is then a nearly full 4 MiB tmpfs
    command: tuple[str, ...] = ("run",)  # the subcommand setup's arguments follow


def _manifest(tmp: Path, docs: Docs | None = None) -> Path:
    import yaml

    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump_all(list(docs or base()), sort_keys=False))
    return path


def _cli_file(path: str) -> Callable[[Path, str], list[str]]:
    return lambda tmp, db: ["-f", path, "--db", db, "--out", str(tmp / "out")]


def _cli_text(text: str | bytes) -> Callable[[Path, str], list[str]]:
    def setup(tmp: Path, db: str) -> list[str]:
        p = tmp / "m.yaml"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["-f", str(p), "--db", db, "--out", str(tmp / "out")]

    return setup


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
"""9 levels of 9 aliases each: 9**9 (387 million) strings once expanded."""


def _cli_yaml_spec(key: str, value_yaml: str) -> Callable[[Path, str], list[str]]:
    """The base manifests with one ``spec`` line of the TrainingRun written as raw YAML."""

    def setup(tmp: Path, db: str) -> list[str]:
        import yaml

        pc, tr = base()
        tr["spec"].pop(key, None)
        run = yaml.safe_dump(tr, sort_keys=False).replace("\nspec:\n", f"\nspec:\n  {key}: {value_yaml}\n", 1)
        text = yaml.safe_dump(pc, sort_keys=False) + "---\n" + run
        p = tmp / "m.yaml"
        p.write_text(text)
        return ["-f", str(p), "--db", db, "--out", str(tmp / "out")]

    return setup


def _out_is_a_file(tmp: Path, db: str) -> list[str]:
    (tmp / "results").write_text("keep me\n")
    return ["-f", str(_manifest(tmp)), "--db", db, "--out", str(tmp / "results")]


def _read_only_db(tmp: Path, db: str) -> list[str]:
    from agentensor_store import Store

    path = tmp / "ro.db"
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    store.close()
    return ["-f", str(_manifest(tmp)), "--db", f"sqlite:///file:{path}?mode=ro&uri=true", "--out", str(tmp / "out")]


def fill(directory: Path) -> None:
    """Fill the file system of ``directory`` to the last byte (unbuffered writes until ENOSPC)."""
    for name, size in (("filler", 65536), ("filler2", 1)):
        with (directory / name).open("wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                pass


def _db_on_full_disk(tmp: Path, db: str) -> list[str]:
    from agentensor_store import Store

    manifest = _manifest(tmp)
    store = Store(f"sqlite:///{tmp / 'full.db'}")
    store.upgrade()
    store.close()
    fill(tmp)
    import tempfile

    return ["-f", str(manifest), "--db", f"sqlite:///{tmp / 'full.db'}", "--out", tempfile.mkdtemp()]


def _out_on_full_disk(tmp: Path, db: str) -> list[str]:
    import tempfile

    manifest = _manifest(Path(tempfile.mkdtemp()))
    (tmp / "out").mkdir()
    fill(tmp)
    return ["-f", str(manifest), "--db", db, "--out", str(tmp / "out")]


def _resume_as_evaluation(tmp: Path, db: str) -> list[str]:
    """Runs the TrainingRun as run id ``shared`` first, then returns the EvaluationRun's arguments."""
    import subprocess
    import sys

    first = ["-f", str(_manifest(tmp)), "--db", db, "--out", str(tmp / "out1"), "--run-id", "shared"]
    done = subprocess.run([sys.executable, "-m", "agentensor_cli", "run", *first], capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    (tmp / "eval").mkdir()
    ev = _manifest(tmp / "eval", _as_evaluation(base()))
    return ["-f", str(ev), "--db", db, "--out", str(tmp / "out2"), "--run-id", "shared"]


CLI_CATALOGUE: list[CliEntry] = [
    CliEntry(
        "manifest-dev-zero", "-f /dev/zero", _cli_file("/dev/zero"), "/dev/zero is a device, expected a regular file"
    ),
    CliEntry(
        "manifest-directory", "-f names a directory", lambda tmp, db: ["-f", str(tmp), "--db", db], "is a directory"
    ),
    CliEntry(
        "manifest-missing", "-f names no file", _cli_file("/nonexistent/run.yaml"), "cannot read /nonexistent/run.yaml"
    ),
    CliEntry(
        "yaml-billion-laughs",
        "a billion-laughs YAML document",
        _cli_text(BILLION_LAUGHS),
        "expands to more than 1000000 values through aliases",
    ),
    CliEntry(
        "yaml-deep",
        "YAML nested 200 deep",
        _cli_text("a: " + "[" * 200 + "]" * 200 + "\n"),
        "nesting deeper than 32 levels",
    ),
    CliEntry("yaml-huge-int", "an integer of 5000 digits", _cli_text("a: " + "9" * 5000 + "\n"), "cannot read YAML"),
    CliEntry("manifest-binary", "a manifest that is not UTF-8", _cli_text(b"\xff\xfe\x00a: 1\n"), "not UTF-8 text"),
    CliEntry(
        "yaml-string-int",
        'parallelism: "8" in YAML',
        _cli_yaml_spec("parallelism", '"8"'),
        "spec.parallelism: Input should be a valid integer",
    ),
    CliEntry(
        "yaml-bool-int",
        "parallelism: true in YAML",
        _cli_yaml_spec("parallelism", "true"),
        "spec.parallelism: Input should be a valid integer",
    ),
    CliEntry(
        "yaml-seed-int64",
        "dataset.seed of 2**70 in YAML",
        lambda tmp, db: ["-f", str(_manifest(tmp, _set("spec.dataset.seed", 2**70)(base(), tmp))), "--db", db],
        "spec.dataset.seed: integer of 71 bits is out of range (64-bit",
    ),
    CliEntry("out-is-a-file", "--out names an existing file", _out_is_a_file, "is an existing file, not a directory"),
    CliEntry("db-read-only", "--db is a read-only SQLite database", _read_only_db, "readonly database"),
    CliEntry(
        "db-disk-full",
        "the SQLite database's disk is full",
        _db_on_full_disk,
        "the database cannot be written",
        tiny_fs=True,
    ),
    CliEntry(
        "out-disk-full",
        "--out on a full disk",
        _out_on_full_disk,
        "cannot write the results (No space left on device)",
        tiny_fs=True,
    ),
    CliEntry(
        "dataset-proc-environ",
        "a manifest whose dataset is /proc/self/environ",
        lambda tmp, db: ["-f", str(_manifest(tmp, _dataset_path("/proc/self/environ")(base(), tmp))), "--db", db],
        "spec.dataset.path: '/proc/self/environ' resolves to",
    ),
    CliEntry(
        "dataset-outside-roots",
        "a manifest whose dataset is outside its folder (~/.ssh/id_rsa stands as /etc/passwd)",
        lambda tmp, db: ["-f", str(_manifest(tmp, _dataset_path("/etc/passwd")(base(), tmp))), "--db", db],
        "outside the folders a manifest may read",
    ),
    CliEntry(
        "model-key-dsn",
        "a manifest whose apiKeyEnv is AGENTENSOR_DATABASE_URL",
        lambda tmp, db: [
            "-f",
            str(_manifest(tmp, _with_model({"apiKeyEnv": "AGENTENSOR_DATABASE_URL"})(base(), tmp))),
            "--db",
            db,
        ],
        "spec.models.task.apiKeyEnv: AGENTENSOR_DATABASE_URL is never read as an API key",
    ),
    CliEntry(
        "resume-other-kind",
        "--run-id of a TrainingRun given to an EvaluationRun",
        _resume_as_evaluation,
        "belongs to a TrainingRun with spec sha256",
    ),
    # -- issue 20: hostile strings and numbers through every command (cli-hostile) ----------------
    CliEntry(
        "markup-in-path",
        "-f names a missing file whose path holds Rich markup [/x]",
        lambda tmp, db: ["-f", str(tmp / "m[/x][bold].yaml"), "--db", db, "--out", str(tmp / "out")],
        "m[/x][bold].yaml",
    ),
    CliEntry(
        "run-id-65",
        "--run-id of 65 characters with markup (the run id column holds 64)",
        lambda tmp, db: ["-f", str(_manifest(tmp)), "--db", db, "--run-id", "[/x]" + "r" * 61],
        "65 characters, at most 64",
    ),
    CliEntry(
        "run-id-not-utf8",
        "--run-id of bytes that are not UTF-8",
        lambda tmp, db: ["-f", str(_manifest(tmp)), "--db", db, "--run-id", os.fsdecode(b"\xff\xfe")],
        "is not valid UTF-8",
    ),
    CliEntry(
        "namespace-markup",
        "metadata.namespace [/x] in the run's manifest",
        lambda tmp, db: ["-f", str(_manifest(tmp, _set("metadata.namespace", "[/x]")(base(), tmp))), "--db", db],
        "metadata.namespace: String should match pattern",
    ),
    CliEntry(
        "export-version-huge",
        "--version of 23 digits (OverflowError before)",
        lambda tmp, db: ["wf", "--version", "99999999999999999999999", "-o", str(tmp / "pc.yaml"), "--db", db],
        "--version",
        command=("checkpoints", "export"),
    ),
    CliEntry(
        "export-output-directory",
        "-o names a directory",
        lambda tmp, db: ["wf", "--version", "1", "-o", str(tmp), "--db", db],
        "is a directory; name the manifest file to write",
        command=("checkpoints", "export"),
    ),
    CliEntry(
        "report-diff-huge",
        "--diff 1 and a number of 23 digits",
        lambda tmp, db: ["[/x]", "--diff", "1", "99999999999999999999999", "--db", db],
        "--diff",
        command=("report",),
    ),
    CliEntry(
        "report-missing-db",
        "--db names no SQLite file (none is created)",
        lambda tmp, db: ["[/x]", "--db", f"sqlite:///{tmp / 'typo.db'}"],
        "typo.db does not exist; this command only reads and creates nothing",
        command=("report",),
    ),
    CliEntry(
        "checkpoints-list-missing-db",
        "--db names no SQLite file (none is created)",
        lambda tmp, db: ["[/x]", "--db", f"sqlite:///{tmp / 'typo.db'}"],
        "typo.db does not exist; this command only reads and creates nothing",
        command=("checkpoints", "list"),
    ),
    CliEntry(
        "db-upgrade-nonsense",
        "--db nonsense",
        lambda tmp, db: ["--db", "nonsense"],
        "--db: cannot parse the database URL",
        command=("db", "upgrade"),
    ),
    CliEntry(
        "db-upgrade-no-dir",
        "--db sqlite:////nonexistent/dir/x.db",
        lambda tmp, db: ["--db", "sqlite:////nonexistent/dir/x.db"],
        "the directory /nonexistent/dir of the SQLite database does not exist",
        command=("db", "upgrade"),
    ),
    CliEntry(
        "db-upgrade-unknown-host",
        "--db postgresql+psycopg://nohost.invalid/x",
        lambda tmp, db: ["--db", "postgresql+psycopg://nohost.invalid/x"],
        "--db: ",
        command=("db", "upgrade"),
    ),
    CliEntry(
        "crds-output-device",
        "-o /dev/null (not a directory)",
        lambda tmp, db: ["-o", "/dev/null"],
        "-o /dev/null: is not a directory",
        command=("crds",),
    ),
    CliEntry(
        "runner-shard-huge",
        "--shard 1/N with N of 5,000 digits",
        lambda tmp, db: ["--manifest", str(_manifest(tmp)), "--db", db, "--shard", "1/" + "9" * 5000],
        "--shard must be I/N",
        command=("runner",),
    ),
    # -- issue 20, promote (the GitOps edit) ------------------------------------------------------
    CliEntry(
        "promote-dev-zero",
        "promote --file /dev/zero (read unbounded before)",
        lambda tmp, db: ["router", "--version", "1", "--file", "/dev/zero", "--db", db],
        "/dev/zero is a device, expected a regular file",
        command=("promote",),
    ),
    CliEntry(
        "promote-fifo",
        "promote --file naming a FIFO nobody writes (hung before)",
        lambda tmp, db: ["router", "--version", "1", "--file", _fifo(tmp), "--db", db],
        "is a FIFO, expected a regular file",
        command=("promote",),
    ),
    CliEntry(
        "promote-two-namespaces",
        "promote of a name found in two namespaces of one file (the first was edited, exit 0)",
        lambda tmp, db: ["router", "--version", "1", "--file", _two_namespaces(tmp), "--db", db],
        "choose one with -n/--namespace",
        command=("promote",),
    ),
    CliEntry(
        "promote-version-huge",
        "promote --version 10^20 (an OverflowError or a version written on PostgreSQL)",
        lambda tmp, db: ["router", "--version", "9" * 20, "--file", _two_namespaces(tmp), "--db", db],
        "is larger than any stored version can be",
        command=("promote",),
    ),
    CliEntry(
        "promote-markup-path",
        "promote with Rich markup in the name and the path",
        lambda tmp, db: ["r[/x]", "--version", "1", "--file", str(tmp / "p[/x].yaml"), "--db", db],
        "p[/x].yaml",
        command=("promote",),
    ),
]


def _fifo(tmp: Path) -> str:
    import os

    path = tmp / "fifo.yaml"
    os.mkfifo(path)
    return str(path)


def _two_namespaces(tmp: Path) -> str:
    import yaml

    pc = base()[0]
    docs = []
    for ns in ("team-a", "team-b"):
        doc = copy.deepcopy(pc)
        doc["metadata"] = {"name": "router", "namespace": ns}
        docs.append(doc)
    path = tmp / "two.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)
