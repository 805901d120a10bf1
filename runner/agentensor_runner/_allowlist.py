"""The entrypoint allow-list: which ``module:callable`` a manifest may name.

A manifest names code in two places: ``spec.workflow.entrypoint`` (a graph factory) and the
``entrypoint`` option of ``python`` evaluators. Both resolve through :func:`resolve_entrypoint`,
which refuses a module outside the allow-list *before importing it* (an import runs the module's
code), and refuses a callable that was defined elsewhere (``mypkg:system`` after
``from os import system`` in ``mypkg``).

The allow-list is a comma-separated list of module prefixes in the ``AGENTENSOR_EVALUATOR_ALLOWLIST``
environment variable, set by whoever starts the runner (the CLI user, or the operator on every
runner Job, from the chart value ``runner.allowedModules``). It is empty by default: no entrypoint
is allowed, and the standard library never is unless an operator lists it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import EntrypointRefused

ALLOWLIST_ENV = "AGENTENSOR_EVALUATOR_ALLOWLIST"
"""Environment variable: comma-separated module prefixes that workflow entrypoints and ``python``
evaluators may load (e.g. ``mycompany.agents,mycompany.scorers``)."""


def allowlist_from_env() -> tuple[str, ...]:
    """Module prefixes from :data:`ALLOWLIST_ENV` (blank entries dropped); ``()`` if unset."""
    raw = os.environ.get(ALLOWLIST_ENV, "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def is_allowed(module: str, allowed: Sequence[str]) -> bool:
    """True if ``module`` equals an allowed prefix or lies below it (``prefix + "."``)."""
    return any(module == p or module.startswith(p + ".") for p in allowed)


def _refusal(module: str, allowed: Sequence[str], what: str) -> str:
    listed = ", ".join(repr(p) for p in allowed) if allowed else "none"
    return (
        f"module {module!r} is not allow-listed for {what} (allowed prefixes: {listed}); to allow it, add "
        f"the module or a parent package to the {ALLOWLIST_ENV} environment variable (comma-separated "
        f"module prefixes), e.g. {ALLOWLIST_ENV}={module.split('.')[0]}"
    )


def resolve_entrypoint(entrypoint: str, allowed: Sequence[str], *, what: str) -> Callable[..., Any]:
    """The callable ``module:attr`` names, after checking it against the allow-list.

    Checks, in order, without calling anything: the module path is allowed (before it is
    imported); the module imports; the attribute exists and is callable; the callable's own
    ``__module__`` is allowed too (a re-exported ``os.system`` is refused).

    Args:
        entrypoint: ``package.module:attr`` (already matched against the syntax pattern).
        allowed: module prefixes.
        what: what the entrypoint is for, used in messages (``"workflow entrypoints"``).

    Raises:
        EntrypointRefused: with a message saying which check failed and how to allow it.
    """
    module_name, _, attr = entrypoint.partition(":")
    if not is_allowed(module_name, allowed):
        raise EntrypointRefused(_refusal(module_name, allowed, what))
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise EntrypointRefused(f"cannot import module {module_name!r}: {type(e).__name__}: {e}") from e
    target = getattr(module, attr, None)
    if target is None:
        raise EntrypointRefused(
            f"module {module_name!r} has no attribute {attr!r}, so it has no callable {attr!r} to load"
        )
    if not callable(target):
        raise EntrypointRefused(f"{entrypoint!r} is not callable (it is a {type(target).__name__})")
    defined_in = getattr(target, "__module__", None)
    if not isinstance(defined_in, str) or not is_allowed(defined_in, allowed):
        raise EntrypointRefused(
            f"{entrypoint!r} is defined in module {defined_in!r}, not in an allow-listed module; "
            + _refusal(str(defined_in), allowed, what)
        )
    return target  # type: ignore[no-any-return]
