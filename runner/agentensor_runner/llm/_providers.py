"""Which package each ``provider:`` of ``spec.models`` needs, and the message when it is missing.

``init_chat_model("anthropic:...")`` imports the provider's LangChain integration
(``langchain_anthropic``) on first use; when it is not installed, LangChain raises an
``ImportError``. :func:`missing_integration` turns that into the reason of the run's config error
(``spec.models.<name>.model``): the provider, the package, and the way to install it, which for
the providers this project ships is an extra of ``agentensor-operator`` (``pip install
'agentensor-operator[anthropic]'``) and a package already in the image.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Integration:
    """A provider's LangChain integration: its distribution and the extra that installs it."""

    package: str
    """The PyPI distribution, e.g. ``langchain-anthropic``."""
    extra: str
    """The ``agentensor-operator`` extra that depends on it (``providers`` has them all but ``llm``)."""


INTEGRATIONS: dict[str, Integration] = {
    "openai": Integration("langchain-openai", "llm"),
    "anthropic": Integration("langchain-anthropic", "anthropic"),
    "ollama": Integration("langchain-ollama", "ollama"),
}
"""Providers with an extra of this project; their packages are in the agentensor image."""


def _missing_module(error: ImportError) -> str | None:
    """The top-level module an import failed on (``langchain_anthropic``), from ``error`` or its cause."""
    for e in (error, error.__cause__, error.__context__):
        name = getattr(e, "name", None)
        if isinstance(e, ImportError) and isinstance(name, str) and name:
            return name.split(".", 1)[0]
    return None


def missing_integration(model: str, error: ImportError) -> str:
    """The reason for a model whose provider's integration failed to import.

    Args:
        model: ``provider:name`` as in ``spec.models.<name>.model``.
        error: what ``init_chat_model`` raised.

    Returns:
        One sentence naming the provider, the package to install and how: the extra for the
        providers of :data:`INTEGRATIONS`, else the package itself (or an image built on ours).
    """
    provider = model.split(":", 1)[0]
    known = INTEGRATIONS.get(provider)
    module = _missing_module(error)
    found = module.replace("_", "-") if module else None
    if known is not None:
        detail = f" (module {module!r} is missing)" if found and found != known.package else ""
        return (
            f"provider {provider!r} needs the Python package {known.package}{detail}, which is not installed: "
            f"pip install 'agentensor-operator[{known.extra}]' (the agentensor image has it)"
        )
    package = found or f"langchain-{provider.replace('_', '-')}"
    return (
        f"provider {provider!r} needs the Python package {package}, which is not installed: "
        f"pip install {package}, or in a cluster an image built FROM agentensor with it (docs/install.md)"
    )
