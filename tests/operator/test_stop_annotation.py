"""The ``agentensor.dev/stop=true`` handler: registered on TrainingRuns, filtered on the annotation,
and recording the stop in a real store (SQLite and PostgreSQL); its Event goes to kopf's own
posting queue. The end-to-end path (kubectl annotate -> runner stops) is tests/k8s/test_operator_stop.py."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from kopf._core.engines import posting

from agentensor_api import Reason
from agentensor_operator._runtime import build
from agentensor_operator._settings import OperatorSettings
from agentensor_operator.handlers.trainingrun import STOP_ANNOTATION, request_stop
from agentensor_store import Store


def _body(uid: str, phase: str | None = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "agentensor.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "r", "namespace": "default", "uid": uid, "annotations": {STOP_ANNOTATION: "true"}},
        "status": {"phase": phase} if phase else {},
    }


@pytest.mark.one_backend
def test_the_handler_is_registered_with_the_annotation_filter(store: Store) -> None:
    registry, _deps = build(OperatorSettings(), kube=object(), store=store)  # type: ignore[arg-type]
    handlers = [h for h in registry._watching.get_all_handlers() if h.id == "trainingruns_stop"]
    assert len(handlers) == 1
    assert handlers[0].annotations == {STOP_ANNOTATION: "true"}


@pytest.mark.one_backend
async def test_request_stop_records_once_and_posts_an_event(store: Store) -> None:
    _registry, deps = build(OperatorSettings(), kube=object(), store=store)  # type: ignore[arg-type]
    queue: asyncio.Queue[Any] = asyncio.Queue()
    posting.settings_var.set(kopf.OperatorSettings())
    posting.event_queue_var.set(queue)
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    requested: set[str] = set()

    await request_stop(deps, _body("u-missing"), requested)  # no run row yet: nothing to flag, try later
    assert requested == set() and queue.empty()

    store.create_run(run_id="u1", kind="TrainingRun", namespace="default", name="r", workflow="w", spec={})
    await request_stop(deps, _body("u1"), requested)
    assert store.stop_requested("u1") is not None and requested == {"u1"}
    event = queue.get_nowait()
    assert (event.type, event.reason) == ("Normal", Reason.STOP_REQUESTED)
    assert STOP_ANNOTATION in event.message

    first = store.stop_requested("u1")
    await request_stop(deps, _body("u1"), requested)  # a later watch event of the same run
    assert store.stop_requested("u1") == first and queue.empty()

    store.create_run(run_id="u2", kind="TrainingRun", namespace="default", name="r2", workflow="w", spec={})
    await request_stop(deps, _body("u2", phase="Succeeded"), requested)  # finished: nothing to stop
    assert store.stop_requested("u2") is None
