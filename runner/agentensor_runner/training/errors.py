"""The training loop's error."""

from __future__ import annotations


class RunFailed(Exception):
    """The run cannot go on; ``reason`` is a :class:`~agentensor_api.Reason` constant."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
