"""``llm_judge``: a judge model grades the output against a rubric; its reason is the loss.

Options:
    rubric (required): what a good output is, in plain words.
    model: a key of ``spec.models`` (default ``judge``).
    includeInput / includeExpected: show the judge the case input / expected value (default
        true; expected is shown only when the case has one).
    parameters: sampling parameters of the judge (default ``{temperature: 0}``).

The judge is asked for one JSON object ``{"score": 0..1, "pass": bool, "reason": "..."}``.
``score`` is required (a bare ``pass`` counts as 1 or 0); ``passed`` is ``score >= threshold``
as for every evaluator. The reason is kept for passing cases too. An unparsable reply or a
failed call scores 0 with the reason saying why (the evaluator never raises).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from langchain_core.messages import HumanMessage, SystemMessage

from agentensor_api import EvaluatorSpec, ManifestError

from ..llm import LlmRuntime, ainvoke_text, sampling_kwargs
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

    async def score(self, *, input: Any, output: Any, expected: Any) -> Score:
        parts = []
        if self.include_input:
            parts.append(f"INPUT:\n{as_text(input)}")
        if self.include_expected and expected is not None:
            parts.append(f"EXPECTED (reference):\n{as_text(expected)}")
        parts.append(f"OUTPUT:\n{as_text(output)}")
        model = self.llm.chat(self.model, "judge", self.kwargs)
        text = await ainvoke_text(
            model,
            [SystemMessage(self._system), HumanMessage("\n\n".join(parts))],
            {"run_name": f"llm_judge:{self.name}", "tags": ["agentensor", "llm_judge"]},
            self.llm.redact,
        )
        return parse_verdict(text)
