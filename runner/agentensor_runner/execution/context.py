"""Everything a run needs, resolved from the manifests once (spec in, ready objects out)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentensor_api import (
    EvaluationRun,
    ManifestError,
    ObjectiveSpec,
    PromptConfig,
    RunStatus,
    TrainingRun,
)
from agentensor_store import CaseRow, Store, VersionRecord

from ..data import Case, DataRoots, load_cases
from ..evaluators import Evaluator, build_evaluators
from ..llm import LlmRuntime, build_runtime
from ..prompts import PromptSet, check_interpolation
from ..workflows import Workflow, load_workflow
from .executor import CaseWorkers
from .results import CaseResult, Evaluation, jsonable
from .runnable_config import resolve_run_config

StatusSink = Callable[[RunStatus], None]


@dataclass
class RunContext:
    """A run's resolved inputs and its dependencies (store, status sink)."""

    run_id: str
    resource: TrainingRun | EvaluationRun
    prompt_config: PromptConfig
    store: Store
    workflow: Workflow
    evaluators: list[Evaluator]
    objective: ObjectiveSpec
    base_config: dict[str, Any]
    cases: list[Case]
    start: PromptSet
    start_version: VersionRecord
    evaluator_fields: Mapping[str, str | None] = field(default_factory=dict)
    on_status: StatusSink | None = None
    on_progress: Callable[[str, int, int], None] | None = None
    """(stage, done, total) after every case; for a live progress bar."""
    pool: CaseWorkers | None = None
    """Worker processes the cases are spread over (None: this process)."""
    llm: LlmRuntime | None = None
    """Models of ``spec.models``, the usage ledger and the response cache (None: no models)."""

    def optimizer_deps(self) -> dict[str, Any]:
        """Dependencies offered to the optimizer (each takes the ones it lists in ``deps``)."""
        storage_url: str | None = None
        if self.store.dialect == "postgresql":
            # Optuna's RDBStorage needs the URL with its password; Store.url masks it.
            storage_url = self.store.url_with_password()
        return {
            "llm": self.llm,
            "direction": self.objective.direction,
            "seed": self.resource.spec.dataset.seed,
            "storage_url": storage_url,
            "study_name": f"agentensor-{self.run_id}",
        }

    @property
    def workflow_key(self) -> str:
        return self.prompt_config.spec.workflow

    @property
    def namespace(self) -> str:
        """The run's namespace: with :attr:`workflow_key`, the key of its prompt versions."""
        return self.resource.namespace

    def better(self, a: float, b: float, min_delta: float = 0.0) -> bool:
        """True if score ``a`` beats ``b`` by more than ``min_delta`` in the objective's direction."""
        if self.objective.direction == "maximize":
            return a > b + min_delta
        return a < b - min_delta

    def record(self, evaluation: Evaluation, *, epoch: int | None, version: int | None) -> None:
        """Write every case of an evaluation as a row (upsert: a resumed stage does not duplicate)."""
        self.store.record_cases(self.run_id, [self.case_row(r, epoch=epoch, version=version) for r in evaluation.cases])

    def case_row(self, r: CaseResult, *, epoch: int | None, version: int | None) -> CaseRow:
        """The store row of one case result.

        ``scores`` holds the scored evaluators only (a parse failure has no score);
        ``reasons`` is ``{evaluator: reason}`` of the results that did not pass, each clipped
        to :data:`REASON_CHARS` (``None`` when every result passed or the case errored);
        ``usage`` is the case's :class:`~agentensor_runner.llm.Usage` in ``UsageSummary``
        wire form when the run has models (``None`` otherwise).
        """
        reasons = {k: _clip(v.reason) for k, v in r.results.items() if not v.passed and v.reason}
        usage = r.usage.to_json() if self.llm is not None and r.usage is not None else None
        return CaseRow(
            stage=r.stage,
            case_id=r.case.case_id,
            thread_id=r.thread_id,
            input=jsonable(r.case.input),
            expected=jsonable(r.case.expected),
            output=jsonable(r.output),
            scores={k: v.score for k, v in r.results.items() if v.scored},
            passed=r.passed(self.objective.evaluator) if r.error is None else False,
            error=r.error,
            latency_seconds=r.latency_seconds,
            epoch=epoch,
            version=version,
            reasons=reasons or None,
            usage=usage,
        )


REASON_CHARS = 2000
"""Characters of one evaluator's reason kept in a case row."""


def _clip(text: str) -> str:
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def resolve_start(pc: PromptConfig, store: Store, version: int | None) -> tuple[PromptSet, VersionRecord]:
    """The config a run starts from: a stored version, else the PromptConfig's inline spec.

    Versions are those of the PromptConfig's namespace (the run's: ``find_prompt_config``
    matches them; locally ``metadata.namespace`` or ``"default"``). The inline spec is
    registered as a version (deduplicated by checksum) so that the baseline has a version
    number too.

    Raises:
        ManifestError: if the requested version does not exist for the workflow in the namespace.
    """
    trainable = frozenset(n for n, p in pc.spec.prompts.items() if p.requires_grad)
    wanted = version if version is not None else pc.spec.active_version
    if wanted is not None:
        rec = store.get_version(pc.spec.workflow, wanted, namespace=pc.namespace)
        if rec is None:
            field_name = "spec.promptConfigRef.version" if version is not None else "spec.activeVersion"
            where = f"workflow {pc.spec.workflow!r} in namespace {pc.namespace!r}"
            raise ManifestError(field_name, f"{where} has no stored version {wanted}")
        stored_trainable = frozenset(n for n in rec.prompts if n in trainable or n not in pc.spec.prompts)
        return PromptSet(dict(rec.prompts), stored_trainable, dict(rec.parameters)), rec
    rec = store.register_inline_version(pc)
    texts = {n: p.text for n, p in pc.spec.prompts.items()}
    return PromptSet(texts, trainable, dict(pc.spec.parameters)), rec


def _checked_start(
    resource: TrainingRun | EvaluationRun, pc: PromptConfig, store: Store
) -> tuple[PromptSet, VersionRecord]:
    """:func:`resolve_start` for the PromptConfig the run names, its placeholders checked against
    the workflow options.

    Raises:
        ManifestError: ``spec.promptConfigRef.name`` is not ``pc``'s, a missing version, or an
            unresolved placeholder in ``spec.workflow.options``.
    """
    spec = resource.spec
    if spec.prompt_config_ref.name != pc.name:
        raise ManifestError("spec.promptConfigRef.name", f"expected {pc.name!r}")
    start, version = resolve_start(pc, store, spec.prompt_config_ref.version)
    check_interpolation(spec.workflow.options, start, "spec.workflow.options")
    return start, version


def build_context(
    resource: TrainingRun | EvaluationRun,
    pc: PromptConfig,
    store: Store,
    *,
    run_id: str,
    base_dir: Path,
    workflow: Workflow | None = None,
    llm: LlmRuntime | None = None,
    roots: DataRoots | None = None,
) -> RunContext:
    """Resolve a run's manifest into a :class:`RunContext`.

    Raises:
        ManifestError: naming the field, for anything the manifests get wrong (a missing
            dataset field, an unknown evaluator, a bad entrypoint, an unresolved placeholder,
            an API key variable not granted or unset, a file outside the data roots).
    """
    spec = resource.spec
    start, version = _checked_start(resource, pc, store)
    llm = llm or build_runtime(spec, base_dir=base_dir, store=store, run_id=run_id, roots=roots)
    wf = workflow or load_workflow(spec.workflow, llm=llm)
    evaluators = build_evaluators(spec.evaluators, llm=llm)
    cases = load_cases(spec.dataset, base_dir=base_dir, roots=roots)
    fields = {e.name: e.expected_field for e in spec.evaluators if e.expected_field}
    return RunContext(
        run_id=run_id,
        resource=resource,
        prompt_config=pc,
        store=store,
        workflow=wf,
        evaluators=evaluators,
        objective=spec.resolved_objective(),
        base_config=resolve_run_config(spec.config, wf.defaults),
        cases=cases,
        start=start,
        start_version=version,
        evaluator_fields=fields,
        llm=llm,
    )
