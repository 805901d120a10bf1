"""Running a run's cases: in this process, over worker processes, or as one shard Job of many.

- :mod:`.context`: :class:`RunContext`, everything a run needs resolved from its manifests once
  (:func:`build_context`), and how one case result becomes a stored row;
- :mod:`.executor`: :func:`run_cases`, the workflow over cases with bounded concurrency, a per-case
  timeout and scoring, keeping the results or streaming them (:class:`CaseStream`);
- :mod:`.results`: :class:`CaseResult`, :class:`Aggregator`, :class:`Evaluation` and ``status.results``;
- :mod:`.runnable_config`: the LangChain ``RunnableConfig`` of the run and of each case;
- :mod:`.workers`: :class:`WorkerPool`, one Job's cases spread over worker processes;
- :mod:`.shards`: one EvaluationRun's cases split over N runner Jobs (``--shard I/N``);
- :mod:`.evalcache`: :class:`EvalCache`, a scored (config, case) pair is never run again;
- :mod:`.gc_tuning`: garbage-collector settings for processes that run cases;
- :mod:`.lifecycle`: the runner process in a Pod: its exit codes, SIGTERM and the unwind's deadline.
"""

from .context import REASON_CHARS, RunContext, StatusSink, build_context, resolve_start
from .evalcache import EvalCache, scoring_checksum
from .executor import CaseStream, CaseWorkers, ProgressFn, run_cases
from .gc_tuning import THRESHOLDS, tune_gc, tuned_gc
from .lifecycle import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_SUCCEEDED,
    EXIT_TERMINATED,
    cancel_on_sigterm,
    exit_at_once_after_sigterm,
    exit_code,
    run_until_sigterm,
)
from .results import Aggregator, CaseResult, Evaluation, evaluation_of, jsonable, status_results, summarize
from .runnable_config import case_config, case_thread_id, deep_merge, merge_configs, resolve_run_config
from .shards import CASE_ID_COLUMN, record_empty_shard, shard_of, shard_run
from .workers import CASES_PER_WORKER, WORKERS_FROM, WORKERS_PER_CPU, WorkerPool, WorkerRecipe, workers_for

__all__ = [
    "CASES_PER_WORKER",
    "CASE_ID_COLUMN",
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_SUCCEEDED",
    "EXIT_TERMINATED",
    "REASON_CHARS",
    "THRESHOLDS",
    "WORKERS_FROM",
    "WORKERS_PER_CPU",
    "Aggregator",
    "CaseResult",
    "CaseStream",
    "CaseWorkers",
    "EvalCache",
    "Evaluation",
    "ProgressFn",
    "RunContext",
    "StatusSink",
    "WorkerPool",
    "WorkerRecipe",
    "build_context",
    "cancel_on_sigterm",
    "case_config",
    "case_thread_id",
    "deep_merge",
    "evaluation_of",
    "exit_at_once_after_sigterm",
    "exit_code",
    "jsonable",
    "merge_configs",
    "record_empty_shard",
    "resolve_run_config",
    "resolve_start",
    "run_cases",
    "run_until_sigterm",
    "scoring_checksum",
    "shard_of",
    "shard_run",
    "status_results",
    "summarize",
    "tune_gc",
    "tuned_gc",
    "workers_for",
]
