"""agentensor data plane: workflows, evaluation, the training loop and its outputs.

This module is the facade (what the CLI imports); :func:`execute` (in :mod:`.runs`) runs one
TrainingRun or EvaluationRun. The subpackages, lowest first:

- :mod:`.data`: datasets and the folders a manifest may read;
- :mod:`.llm`: chat models, usage, response caches and sentence embeddings;
- :mod:`.workflows`, :mod:`.evaluators`, :mod:`.optimizers`: what runs a case, scores it, edits prompts;
- :mod:`.execution`: running cases (in this process, over worker processes, as one shard Job) and
  the runner Pod's lifecycle (exit codes, SIGTERM);
- :mod:`.stats`: the pure rules the loop decides by; :mod:`.training`: the loop;
- :mod:`.report`: ``summary.json`` and ``report.html``.

Used by all of them: :mod:`._errors` (the exception tree), :mod:`._allowlist` (which code a manifest
may load) and :mod:`.prompts` (:class:`PromptSet`, :class:`TextTensor`).
"""

from ._errors import EntrypointRefused, LlmCallError, OptimizerConfigError, RunFailed, RunnerError
from .data import DATA_ROOTS_ENV, Case, DataRoots, Splits, load_cases, split_cases
from .execution import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_SUCCEEDED,
    EXIT_TERMINATED,
    CaseResult,
    Evaluation,
    case_config,
    case_thread_id,
    exit_at_once_after_sigterm,
    exit_code,
    merge_configs,
    record_empty_shard,
    resolve_run_config,
    run_cases,
    run_until_sigterm,
    shard_of,
    shard_run,
    tune_gc,
    tuned_gc,
)
from .prompts import PromptSet, TextTensor, interpolate
from .report import write_outputs
from .runs import execute, find_prompt_config
from .training import Trainer
from .workflows import Feedback, Workflow, load_workflow, render

__all__ = [
    "DATA_ROOTS_ENV",
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_SUCCEEDED",
    "EXIT_TERMINATED",
    "Case",
    "CaseResult",
    "DataRoots",
    "EntrypointRefused",
    "Evaluation",
    "Feedback",
    "LlmCallError",
    "OptimizerConfigError",
    "PromptSet",
    "RunFailed",
    "RunnerError",
    "Splits",
    "TextTensor",
    "Trainer",
    "Workflow",
    "case_config",
    "case_thread_id",
    "execute",
    "exit_at_once_after_sigterm",
    "exit_code",
    "find_prompt_config",
    "interpolate",
    "load_cases",
    "load_workflow",
    "merge_configs",
    "record_empty_shard",
    "render",
    "resolve_run_config",
    "run_cases",
    "run_until_sigterm",
    "shard_of",
    "shard_run",
    "split_cases",
    "tune_gc",
    "tuned_gc",
    "write_outputs",
]
