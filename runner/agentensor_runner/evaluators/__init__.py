"""Evaluators: score one workflow output against the dataset's expected value.

Each ``spec.evaluators[i]`` entry (:class:`agentensor_api.EvaluatorSpec`) becomes an
:class:`Evaluator` via :func:`build_evaluators`. ``await evaluator.evaluate(input=...,
output=..., expected=...)`` returns an :class:`EvalResult` with ``score`` in ``[0, 1]``,
``passed = score >= spec.threshold`` and a textual ``reason`` (the "loss" fed back to the
optimizer). Options are validated when building (:class:`EvaluatorConfigError` names the field,
e.g. ``spec.evaluators[2].options.pattern``); a bad case never raises but scores 0 with a
reason. A judge reply that does not parse is not a score: its result has ``outcome
"parseFailure"`` and :func:`aggregate` counts it in ``parseFailures``, outside the mean.

Types: ``exact_match``, ``contains``, ``regex``, ``json_schema``, ``numeric`` (all 0/1),
``embedding_similarity`` (graded cosine; use a threshold like 0.8) and ``python`` (an
allow-listed ``module:function``; see ``AGENTENSOR_EVALUATOR_ALLOWLIST``).
"""

from ._base import as_text
from ._build import build_evaluator, build_evaluators
from ._embedding import EmbeddingSimilarityEvaluator
from ._paths import FieldNotFoundError, resolve_path
from ._python import ALLOWLIST_ENV, PythonEvaluator, allowlist_from_env
from ._result import Aggregate, EvalResult, Evaluator, EvaluatorConfigError, Outcome, Tally, aggregate
from ._structured import JsonSchemaEvaluator, NumericEvaluator, parse_number
from ._text import ContainsEvaluator, ExactMatchEvaluator, RegexEvaluator

__all__ = [
    "ALLOWLIST_ENV",
    "Aggregate",
    "ContainsEvaluator",
    "EmbeddingSimilarityEvaluator",
    "EvalResult",
    "Evaluator",
    "EvaluatorConfigError",
    "ExactMatchEvaluator",
    "FieldNotFoundError",
    "JsonSchemaEvaluator",
    "NumericEvaluator",
    "Outcome",
    "PythonEvaluator",
    "RegexEvaluator",
    "Tally",
    "aggregate",
    "allowlist_from_env",
    "as_text",
    "build_evaluator",
    "build_evaluators",
    "parse_number",
    "resolve_path",
]
