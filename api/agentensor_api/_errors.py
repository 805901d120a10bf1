"""Exception tree of the API package.

AgentensorError
└── ManifestError          a manifest or one of its fields is invalid (``field`` names it)
    └── UnknownKindError   ``apiVersion``/``kind`` is not one of ours
"""

from __future__ import annotations


class AgentensorError(Exception):
    """Root of every error raised by agentensor packages."""


class ManifestError(AgentensorError):
    """A manifest field is invalid.

    Attributes:
        field: dotted path of the offending field, e.g. ``spec.dataset.inputField``.
        reason: why it is invalid and, where possible, how to fix it.
        source: the document it came from (``file.yaml#2``), if known.
        errors: every ``(field, reason)`` found when a document has several invalid fields
            (the first is ``field``/``reason``); ``((field, reason),)`` otherwise.
    """

    def __init__(
        self, field: str, reason: str, *, source: str | None = None, errors: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.field = field
        self.reason = reason
        self.source = source
        self.errors = errors or ((field, reason),)
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {reason}")


class UnknownKindError(ManifestError):
    """The document's ``apiVersion``/``kind`` pair is not served by agentensor."""
