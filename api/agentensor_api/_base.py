"""Base model for every API object: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

GROUP = "agentensor.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Pydantic base for spec/status objects.

    Fields are snake_case in Python and camelCase in manifests (Kubernetes API conventions).
    Unknown fields are rejected so that a typo names itself instead of being silently ignored.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    def to_wire(self) -> dict[str, object]:
        """Return the manifest form (camelCase keys, ``None`` fields dropped)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
