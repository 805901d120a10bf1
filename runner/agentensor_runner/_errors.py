"""The runner's exception tree (one place, in the manner of httpx's ``_exceptions.py``).

::

    AgentensorError                      agentensor_api: root of every error of this project
    ├── ManifestError                    agentensor_api: a manifest field is invalid (names it)
    │   └── EvaluatorConfigError         evaluators: bad evaluator options
    ├── StoreError                       agentensor_store: the database refused or is away
    └── RunnerError                      here: the data plane cannot do what a run asked
        ├── RunFailed                    the run cannot go on; becomes its Failed verdict (reason, message)
        ├── EntrypointRefused            a module:function outside the allow-list, or not loadable
        ├── OptimizerConfigError         bad spec.optimizer.options (also a ValueError)
        ├── LlmCallError                 a model call failed; message redacted (also a RuntimeError)
        └── RetrievalError               retrieval/: an index cannot be built or opened
            └── RetrievalQueryError      a search the index cannot answer (also a ValueError)

Errors of third-party code are chained (``raise ... from e``) except where the chained error could
carry a secret (a provider error may echo the request and its key): :class:`LlmCallError` is raised
``from None`` with a redacted message.
"""

from __future__ import annotations

from agentensor_api import AgentensorError


class RunnerError(AgentensorError):
    """Root of the errors the runner raises itself."""


class RunFailed(RunnerError):
    """The run cannot go on; ``reason`` is a :class:`~agentensor_api.Reason` constant.

    Raised inside a run and turned into its ``Failed`` verdict (reason and message kept) by
    :func:`agentensor_runner.execute`; never escapes it.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class EntrypointRefused(RunnerError):
    """An entrypoint is outside the allow-list, cannot be imported, or is not an allowed callable."""


class OptimizerConfigError(RunnerError, ValueError):
    """Bad ``spec.optimizer.options``; the message names the option."""


class LlmCallError(RunnerError, RuntimeError):
    """A model call failed; the message is redacted and the provider error is not chained
    (its text or request could contain the key)."""
