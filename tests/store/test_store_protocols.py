"""The narrow store Protocols: ``Store`` satisfies each, statically (mypy) and at run time."""

from __future__ import annotations

import inspect

import pytest

from agentensor_store import EvalCacheStore, LlmResponseStore, OperatorStore, Store, TrainingStore

PROTOCOLS = [
    pytest.param(TrainingStore, id="training"),
    pytest.param(EvalCacheStore, id="eval-cache"),
    pytest.param(LlmResponseStore, id="llm-cache"),
    pytest.param(OperatorStore, id="operator"),
]


def _static_views(store: Store) -> tuple[TrainingStore, EvalCacheStore, LlmResponseStore, OperatorStore]:
    """mypy rejects this function if ``Store`` stops satisfying any of the Protocols."""
    return store, store, store, store


def test_store_satisfies_every_protocol_statically(store: Store) -> None:
    assert all(view is store for view in _static_views(store))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_store_is_an_instance_of_each_protocol(store: Store, protocol: type) -> None:
    assert isinstance(store, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_protocol_method_has_the_store_methods_parameters(protocol: type) -> None:
    """Same names, kinds and defaults-or-not as ``Store``'s method (the Protocol cannot drift)."""
    members = [n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert members
    for name in members:
        ours = inspect.signature(getattr(protocol, name)).parameters.values()
        theirs = inspect.signature(getattr(Store, name)).parameters.values()
        shape = [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in ours]
        assert shape == [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in theirs], name


def test_an_object_missing_a_method_is_not_a_training_store() -> None:
    class Partial:
        def update_run(self, run_id: str) -> None: ...

    assert not isinstance(Partial(), TrainingStore)
