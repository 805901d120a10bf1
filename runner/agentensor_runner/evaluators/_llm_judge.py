"""``llm_judge``: a judge model grades the output against a rubric; its reason is the loss.

Options:
    rubric (required): what a good output is, in plain words.
    model: a key of ``spec.models`` (default ``judge``).
    includeInput / includeExpected: show the judge the case input / expected value (default
        true; expected is shown only when the case has one).
    parameters: sampling parameters of the judge (default ``{temperature: 0}``).

The judge is asked for one JSON object ``{"score": 0..1, "pass": bool, "reason": "..."}``.
``score`` is required (a bare ``pass`` counts as 1 or 0); ``passed`` is ``score >= threshold``
as for every evaluator. The reason is kept for passing cases too. A failed call scores 0 with
the reason saying why (the evaluator never raises).

Structured output (``spec.models.<judge>.structuredOutput``, ``openai:`` models only): the
request carries ``response_format`` as OpenAI's ``json_schema`` form or as
``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server, which constrains the
reply with a grammar and answers ``json_schema`` with HTTP 500). ``auto`` tries them in that
order and falls back to plain text when the server rejects a form (HTTP 4xx/5xx); the form
that worked is remembered per model for the rest of the run.

A reply that still does not parse is a **parse failure**, not a silent 0: the result's
``outcome`` is ``parseFailure`` (``score`` 0.0, not passed), it is left out of this evaluator's
mean and pass rate (:func:`~agentensor_runner.evaluators.aggregate`, the executor's means, the
objective) and counted under the evaluator's name in ``parseFailures`` (aggregates) and
``usage.parseFailures`` (case row, checkpoint, ``status.usage``, report). Its reason is
``"judge reply did not parse (<why>); the judge failed, not the output; raw reply: '<first
300 characters>'"``, so the loss the optimizer sees says the judge, not the output, failed.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from agentensor_api import EvaluatorSpec, ManifestError

from ..llm import LlmCallError, LlmRuntime, record_parse_failure, sampling_kwargs
from ._base import BaseEvaluator, Score, as_text
from ._options import Options
from ._result import EvaluatorConfigError

JUDGE_SYSTEM = """You are a strict evaluator. Grade the OUTPUT against the RUBRIC.
Answer with exactly one JSON object and nothing else:
{"score": <number from 0 to 1>, "pass": <true|false>, "reason": "<one or two sentences: what is wrong and what a \
good output would do>"}

RUBRIC:
"""

_OPTIONS = ("rubric", "model", "includeInput", "includeExpected", "parameters")
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
RAW_CHARS = 300
"""Characters of an unparsable reply kept in the reason."""
PARSE_FAILURE = "judge reply did not parse"

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}
FORMS = ("json_schema", "json_object", "none")
_REJECTED_BY_SERVER = re.compile(r"Error code: (400|404|422|500)\b")
"""HTTP statuses with which a server refuses a ``response_format`` form (the SDK's error text)."""


def response_format(form: str) -> dict[str, Any] | None:
    """The ``response_format`` body field of structured-output ``form`` (``None`` for ``none``)."""
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": VERDICT_SCHEMA}}
    if form == "json_object":
        return {"type": "json_object", "schema": VERDICT_SCHEMA}
    return None


def parse_verdict(text: str) -> Score:
    """The judge's JSON reply as a :class:`Score`.

    Raises:
        ValueError: no JSON object, or no usable ``score``/``pass``.
    """
    match = _OBJECT.search(text)
    if match is None:
        raise ValueError(f"judge reply has no JSON object: {text[:200]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as e:
        raise ValueError(f"judge reply is not valid JSON ({e.msg}): {text[:200]!r}") from e
    if not isinstance(data, dict):
        raise ValueError("judge reply is not a JSON object")
    passed = data.get("pass")
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        if not isinstance(passed, bool):
            raise ValueError(f"judge reply has neither a numeric score nor a boolean pass: {text[:200]!r}")
        score = 1.0 if passed else 0.0
    reason = data.get("reason")
    return Score(float(score), str(reason) if reason is not None else "")


class LlmJudgeEvaluator(BaseEvaluator):
    """See the module docstring.

    Raises:
        EvaluatorConfigError: missing ``rubric``, unknown options, an unknown model name, or no
            ``spec.models`` (``llm`` is ``None``).
    """

    type: ClassVar[str] = "llm_judge"
    keeps_reason_on_pass: ClassVar[bool] = True

    def __init__(self, spec: EvaluatorSpec, *, index: int, llm: LlmRuntime | None) -> None:
        super().__init__(spec, index=index)
        opts = Options(spec, index, _OPTIONS)
        rubric = opts.get_str("rubric", required=True)
        assert rubric is not None
        self.rubric = rubric
        self.include_input = opts.get_bool("includeInput", True)
        self.include_expected = opts.get_bool("includeExpected", True)
        if llm is None:
            raise EvaluatorConfigError(opts.field("model"), "llm_judge needs a model in spec.models")
        self.llm = llm
        try:
            self.model = llm.check(opts.get_raw("model") or "judge", opts.field("model"))
            params = opts.get_raw("parameters")
            if params is not None and not isinstance(params, dict):
                raise opts.error("parameters", "must be a mapping of sampling parameters")
            defaults = {"temperature": 0}
            self.kwargs = sampling_kwargs(params if params is not None else defaults, opts.field("parameters"))
        except ManifestError as e:
            raise EvaluatorConfigError(e.field, e.reason) from None
        self._system = JUDGE_SYSTEM + self.rubric

    def needs_expected(self) -> bool:
        return False

    def _forms(self) -> list[str]:
        spec = self.llm.specs[self.model]
        if not spec.model.startswith("openai:") or spec.structured_output == "none":
            return ["none"]
        known = self.llm.json_forms.get(self.model)
        if known is not None:
            return [known]
        if spec.structured_output != "auto":
            return [spec.structured_output]
        return list(FORMS)

    async def _ask(self, messages: list[Any]) -> str:
        """The judge's reply, trying the structured-output forms in order (module docstring)."""
        config: RunnableConfig = {"run_name": f"llm_judge:{self.name}", "tags": ["agentensor", "llm_judge"]}
        forms = self._forms()
        for i, form in enumerate(forms):
            fmt = response_format(form)
            extra = {"extra_body": {"response_format": fmt}} if fmt is not None else None
            try:
                text = await self.llm.ainvoke(self.model, "judge", self.kwargs, messages, config, extra)
            except LlmCallError as e:
                if i + 1 < len(forms) and _REJECTED_BY_SERVER.search(str(e)):
                    continue
                raise
            if len(forms) > 1:
                self.llm.json_forms.setdefault(self.model, form)
            return text
        raise AssertionError("unreachable: the last form re-raises")  # pragma: no cover

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        parts = []
        if self.include_input:
            parts.append(f"INPUT:\n{as_text(input)}")
        if self.include_expected and expected is not None:
            parts.append(f"EXPECTED (reference):\n{as_text(expected)}")
        parts.append(f"OUTPUT:\n{as_text(output)}")
        text = await self._ask([SystemMessage(self._system), HumanMessage("\n\n".join(parts))])
        try:
            return parse_verdict(text)
        except ValueError as e:
            record_parse_failure(self.llm.ledger, self.name)
            why = str(e).split(":", 1)[0]
            reason = f"{PARSE_FAILURE} ({why}); the judge failed, not the output; raw reply: {text[:RAW_CHARS]!r}"
            return Score(0.0, reason, passed=False, unscored=True)
