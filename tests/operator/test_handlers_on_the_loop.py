"""Every kopf handler of the operator is a coroutine, so kopf runs it on the event loop.

kopf runs a synchronous handler in a thread of its executor. The run passes read and write the
shared bookkeeping (``deps.changes``: reservations, the Job cache, the queue) on the event loop,
so a sync index handler that touched it raced them: at 2,000 runs admitted at once, a Job event
popped a reservation while a pass iterated the reservations ("dictionary changed size during
iteration"), and the two runs whose passes failed that way never got a Job.
"""

from __future__ import annotations

from kopf._core.actions.invocation import is_async_fn

from agentensor_operator import OperatorSettings, build
from agentensor_store import Store


def test_every_resource_handler_is_a_coroutine(store: Store) -> None:
    registry, _deps = build(OperatorSettings(), kube=object(), store=store)  # type: ignore[arg-type]
    handlers = [
        *registry._indexing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
        *registry._changing.get_all_handlers(),
    ]
    ids = {str(h.id) for h in handlers}
    assert {"trainingruns_census", "evaluationruns_census", "runner_jobs", "trainingruns_reconcile"} <= ids, ids
    assert [str(h.id) for h in handlers if not is_async_fn(h.fn)] == []
