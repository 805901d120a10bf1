"""TextTensors and ``{{path.to.value}}`` interpolation.

A :class:`TextTensor` is a prompt whose text an optimizer may change (agentensor's idea). Nodes
get prompts through the RunnableConfig: ``config["configurable"]["prompts"]`` is a nested dict
built from the dotted names of the PromptConfig (``intent.card_arrival`` ->
``{"intent": {"card_arrival": TextTensor}}``) and ``config["configurable"]["parameters"]`` holds
the parameters.

Interpolation: a string that is exactly ``{{path}}`` resolves to the value itself (a TextTensor,
a dict of them, a number...); ``{{path}}`` inside a longer string is replaced by ``str(value)``
(a TextTensor's text). ``.text`` on a TextTensor resolves to its text. Every TextTensor read
through interpolation or ``.text`` is recorded on the active :class:`PromptTape`, which is how the
trainer knows which prompts took part in a case.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentensor_api import ManifestError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w\-?!]*(?:\.[\w\-?!]+)*)\s*\}\}")


class PromptTape:
    """Collects the names of TextTensors read while one case runs."""

    def __init__(self) -> None:
        self.used: set[str] = set()


_TAPE: contextvars.ContextVar[PromptTape | None] = contextvars.ContextVar("agentensor_tape", default=None)


@dataclass(eq=False)
class TextTensor:
    """A named prompt text that may be trainable.

    Attributes:
        name: dotted name from the PromptConfig (``intent.card_arrival``).
        requires_grad: False keeps the text fixed during training.
    """

    name: str
    _text: str
    requires_grad: bool = True
    feedback: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        tape = _TAPE.get()
        if tape is not None:
            tape.used.add(self.name)
        return self._text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"TextTensor({self.name!r}, {self._text[:40]!r}, requires_grad={self.requires_grad})"


def start_tape() -> tuple[PromptTape, contextvars.Token[PromptTape | None]]:
    """Activate a new tape in the current context; pass the token to :func:`stop_tape`."""
    tape = PromptTape()
    return tape, _TAPE.set(tape)


def stop_tape(token: contextvars.Token[PromptTape | None]) -> None:
    _TAPE.reset(token)


def nest_prompts(prompts: Mapping[str, TextTensor]) -> dict[str, Any]:
    """``{"a.b": t}`` -> ``{"a": {"b": t}}``."""
    root: dict[str, Any] = {}
    for name, tensor in prompts.items():
        node = root
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = tensor
    return root


def iter_tensors(value: Any) -> Iterator[TextTensor]:
    """All TextTensors inside a (nested) value."""
    if isinstance(value, TextTensor):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_tensors(v)


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """Resolve a dotted path in ``context``.

    Raises:
        KeyError: naming the first segment that does not exist.
    """
    node: Any = context
    walked: list[str] = []
    for part in path.split("."):
        if isinstance(node, TextTensor):
            if part != "text":
                raise KeyError(f"{'.'.join(walked)} is a TextTensor; only .text can follow it")
            node = node.text
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            where = ".".join(walked) or "<root>"
            raise KeyError(f"{{{{{path}}}}}: {where} has no {part!r}")
        walked.append(part)
    return node


def interpolate(value: Any, context: Mapping[str, Any]) -> Any:
    """Replace ``{{path}}`` placeholders in ``value`` (recursively through dicts and lists).

    Raises:
        KeyError: if a placeholder names nothing in ``context``.
    """
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return lookup(context, whole.group(1))
        return _PLACEHOLDER.sub(lambda m: str(lookup(context, m.group(1))), value)
    if isinstance(value, Mapping):
        return {k: interpolate(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, context) for v in value]
    return value


@dataclass(frozen=True)
class PromptSet:
    """An immutable config: prompt texts, which are trainable, and parameters.

    Candidates are new PromptSets (``with_texts``); a PromptSet never changes in place, so a
    score can always be attributed to exactly one config (Orcheo stored one config with the
    previous config's score).
    """

    texts: Mapping[str, str]
    trainable: frozenset[str]
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def with_texts(self, changes: Mapping[str, str]) -> PromptSet:
        frozen = set(changes) - self.trainable
        if frozen:
            raise ValueError(f"prompts {sorted(frozen)} have requiresGrad: false")
        return PromptSet({**self.texts, **changes}, self.trainable, dict(self.parameters))

    def tensors(self) -> dict[str, TextTensor]:
        return {n: TextTensor(n, t, n in self.trainable) for n, t in self.texts.items()}

    def configurable(self) -> dict[str, Any]:
        """The ``configurable`` entries nodes read: ``prompts`` (nested) and ``parameters``."""
        return {"prompts": nest_prompts(self.tensors()), "parameters": dict(self.parameters)}

    def checksum(self) -> str:
        from agentensor_api import config_checksum

        return config_checksum(dict(self.texts), dict(self.parameters))


class _AnyState(Mapping[str, Any]):
    """Stands for per-case values (``{{state.x}}``) that cannot be checked before a run."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return self

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __str__(self) -> str:
        return ""


def check_interpolation(options: Mapping[str, Any], prompts: PromptSet, field_name: str) -> None:
    """Fail early if ``options`` reference prompts/parameters that do not exist.

    Raises:
        ManifestError: naming ``field_name`` and the unresolved placeholder.
    """
    ctx: dict[str, Any] = {**prompts.configurable(), "state": _AnyState(), "configurable": _AnyState()}
    try:
        interpolate(dict(options), ctx)
    except KeyError as e:
        raise ManifestError(field_name, str(e.args[0])) from e
