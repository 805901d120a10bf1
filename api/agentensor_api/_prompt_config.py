"""PromptConfig: a workflow's trainable prompts (TextTensors) and parameters."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ._base import ApiModel
from ._common import NAME_PATTERN
from ._limits import INT64_MAX

PROMPT_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_?!-]*(\.[A-Za-z0-9_][A-Za-z0-9_?!-]*)*$"
"""Dotted segments of word characters plus ``-?!`` (Banking77 has ``reverted_card_payment?``)."""


NO_NUL_PATTERN = r"^[^\x00]*$"
"""Text without U+0000: PostgreSQL ``text``/``jsonb`` refuse it, so the API server refuses it first."""


class PromptSpec(ApiModel):
    """One TextTensor: its text and whether the optimizer may change it."""

    text: str = Field(
        max_length=65_536,
        pattern=NO_NUL_PATTERN,
        description="Prompt text (at most 64 KiB; no NUL character, which PostgreSQL cannot store).",
    )
    requires_grad: bool = Field(default=True, description="false keeps this prompt fixed during training.")


class PromotionSpec(ApiModel):
    """How a finished TrainingRun's best version becomes active."""

    policy: Literal["Manual", "Auto"] = Field(
        default="Manual",
        description="Manual: promote by committing activeVersion (GitOps). "
        "Auto: a promotable TrainingRun sets the active version.",
    )


CHECKSUM_PATTERN = r"^[0-9a-f]{64}$"
"""A sha256 hex digest (lower case), as :func:`agentensor_api.config_checksum` writes it."""

PromptText = Annotated[str, Field(max_length=65_536, pattern=NO_NUL_PATTERN)]


class ActiveSnapshot(ApiModel):
    """The text that ``spec.activeVersion`` makes live, copied into the manifest by ``agentensor promote``.

    It exists for the reviewer: a promotion's Git diff then shows the prompts and parameters
    that go live, not one changed number. The operator still serves the stored version; it
    refuses (``Ready=False``, reason ``ChecksumMismatch``) a snapshot whose text does not hash to
    ``checksum`` (``config_checksum(prompts, parameters)``, sha256 of their canonical JSON) or
    whose ``checksum`` is not the stored version's, and then keeps the last good version live.
    """

    checksum: str = Field(
        pattern=CHECKSUM_PATTERN,
        description="sha256 (hex) of the canonical JSON of prompts and parameters; must be the stored "
        "version's checksum.",
    )
    prompts: dict[str, PromptText] = Field(description="Prompt name -> text of the active version.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters of the active version.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class PromptConfigSpec(ApiModel):
    """Spec of a PromptConfig."""

    workflow: str = Field(
        pattern=NAME_PATTERN,
        max_length=253,
        description="Workflow key; versions and checkpoints are numbered per workflow.",
    )
    prompts: dict[str, PromptSpec] = Field(description="Dotted prompt name -> TextTensor, e.g. `intent.card_arrival`.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Non-text parameters (temperature, thresholds...).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    active_version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="Stored version that is live; unset: the inline spec."
    )
    active: ActiveSnapshot | None = Field(
        default=None,
        description="Written by `agentensor promote`: the text and checksum of activeVersion, so a Git diff "
        "shows what goes live. Needs activeVersion; a text/checksum mismatch sets Ready=False.",
    )
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)

    @model_validator(mode="after")
    def _active_needs_version(self) -> PromptConfigSpec:
        if self.active is not None and self.active_version is None:
            raise ValueError("active: the snapshot of an active version needs spec.activeVersion")
        return self

    @field_validator("parameters")
    @classmethod
    def _json_parameters(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        import json

        try:
            json.dumps(parameters, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"must be JSON-serialisable (no NaN or infinity): {e}") from e
        return parameters

    @field_validator("prompts")
    @classmethod
    def _names(cls, prompts: dict[str, PromptSpec]) -> dict[str, PromptSpec]:
        import re

        bad = [k for k in prompts if not re.match(PROMPT_NAME_PATTERN, k)]
        if bad:
            raise ValueError(f"prompt names must be dotted identifiers, got {bad[:5]}")
        names = set(prompts)
        clash = sorted(k for k in prompts if any(o.startswith(k + ".") for o in names))
        if clash:
            raise ValueError(f"prompt name(s) {clash[:5]} are also prefixes of other prompt names")
        return prompts
