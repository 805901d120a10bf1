"""The ``spec.config`` field: a LangChain ``RunnableConfig`` with its keys verbatim.

Limits follow Orcheo's hardening of agentensor: only LangChain's keys are accepted, ``callbacks``
(live objects) are refused, values must be JSON-serialisable, ``recursion_limit`` is at most
250 and ``max_concurrency`` at most 64.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._limits import bounded_value_schema, check_bounded

MAX_RECURSION_LIMIT = 250
"""Upper bound for ``recursion_limit``: LangGraph's default is 25; 10x leaves room for loops."""

MAX_CONCURRENCY = 64
"""Upper bound for ``max_concurrency``: the runner's own ``parallelism`` cap is the same."""

CONFIGURABLE_LEVELS = 4
"""Mappings/lists nest at most 4 levels below a ``configurable`` key (``configurable.a.b.c.d: 1``);
the CRD schema spells out each level (1.20 has no CEL), and its size doubles with each level."""

CONFIGURABLE_WIDTH = 64
"""At most 64 keys in ``configurable`` and in each mapping or list inside it."""

RUNNABLE_CONFIG_KEYS = frozenset(
    {"tags", "metadata", "callbacks", "run_name", "max_concurrency", "recursion_limit", "configurable", "run_id"}
)
"""Keys of ``langchain_core.runnables.RunnableConfig`` (checked against it in the tests)."""

_REFUSED = {
    "callbacks": "callbacks are live Python objects and cannot come from a manifest; use tags/metadata for tracing",
    "run_id": "run_id is set per case by the runner so that no two cases share a trace",
}


class RunnableConfigSpec(BaseModel):
    """Validated RunnableConfig from a manifest (keys are LangChain's, verbatim).

    Raises:
        pydantic.ValidationError: on an unknown key, a refused key (``callbacks``, ``run_id``),
            a non-JSON-serialisable value, or a limit exceeded; the error names the key.
    """

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list, description="Tags added to every node's run.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Metadata merged (deep) into every node's run.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    run_name: str | None = Field(default=None, description="Name of the root run in traces.")
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CONCURRENCY,
        description=f"Max parallel calls inside one case (1..{MAX_CONCURRENCY}).",
    )
    recursion_limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RECURSION_LIMIT,
        description=f"Max graph super-steps per case (1..{MAX_RECURSION_LIMIT}).",
    )
    configurable: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form values read by nodes; merged deep with workflow defaults. "
        "`thread_id` is set per case by the runner. At most "
        f"{CONFIGURABLE_WIDTH} keys or items per mapping or list, nested at most {CONFIGURABLE_LEVELS} levels.",
        json_schema_extra={
            "maxProperties": CONFIGURABLE_WIDTH,
            "additionalProperties": bounded_value_schema(CONFIGURABLE_LEVELS, CONFIGURABLE_WIDTH),
        },
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, why in _REFUSED.items():
                if key in data:
                    raise ValueError(f"config.{key} is not allowed: {why}")
            unknown = sorted(set(data) - RUNNABLE_CONFIG_KEYS)
            if unknown:
                raise ValueError(
                    f"config has unknown key(s) {unknown}; allowed RunnableConfig keys are "
                    f"{sorted(RUNNABLE_CONFIG_KEYS - set(_REFUSED))}"
                )
        return data

    @field_validator("metadata", "configurable")
    @classmethod
    def _json_serialisable(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"must be JSON-serialisable: {e}") from e
        return value

    @field_validator("configurable")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > CONFIGURABLE_WIDTH:
            raise ValueError(f"has {len(value)} keys, at most {CONFIGURABLE_WIDTH} allowed")
        for key, item in value.items():
            found = check_bounded(item, CONFIGURABLE_LEVELS, CONFIGURABLE_WIDTH, key)
            if found:
                where, why = found
                raise ValueError(
                    f"{where}: {why} (at most {CONFIGURABLE_WIDTH} keys or items per level, "
                    f"{CONFIGURABLE_LEVELS} levels of mappings/lists below a key; the CRD schema enforces the same)"
                )
        return value

    def to_runnable_config(self) -> dict[str, Any]:
        """Return a plain ``RunnableConfig`` dict with unset keys dropped."""
        return self.model_dump(exclude_none=True, exclude_defaults=False)
