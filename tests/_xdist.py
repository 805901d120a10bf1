"""How ``make test`` hands the suite to its pytest-xdist workers (``--dist loadscope``).

A work unit is a test module: its tests run on one worker, in file order, so a module-scoped
fixture (a namespace with a running operator, a trained run, a seeded store) is built once, and
modules whose tests build on each other's resources (tests/k8s/test_operator_e2e.py) keep their
order. The tests of tests/llm_real are one unit: one model server answers one completion at a
time, so a second server on another worker would only compete for the same cores.

Units are handed out longest-waiting tiers first (the API server, fault and load tests, the model
server, the chart install, then the CLI's subprocess tests), largest first within a tier, so that
no long module starts last and leaves the other workers idle at the end.

(pytest-xdist's own ``--dist loadgroup`` cannot be used: it marks a group by rewriting
``item._nodeid``, which pytest 9 no longer reads for the node id.)
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

LLM_REAL = "tests/llm_real/"
FIRST_TIERS = ("tests/k8s/", "tests/reliability/", LLM_REAL, "tests/helm/", "tests/cli/")
"""Path prefixes whose modules start first, in this order; everything else follows."""


class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no type hints
    """``loadscope`` with tests/llm_real as one unit and the units ordered by tier, then size."""

    _ordered = False

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return LLM_REAL if module.startswith(LLM_REAL) else module

    def _assign_work_unit(self, node: object) -> None:
        if not self._ordered:
            self._ordered = True
            units = sorted(self.workqueue.items(), key=lambda unit: (_tier(unit[0]), -len(unit[1])))
            self.workqueue.clear()
            self.workqueue.update(units)
        super()._assign_work_unit(node)


def _tier(scope: str) -> int:
    return next((i for i, prefix in enumerate(FIRST_TIERS) if scope.startswith(prefix)), len(FIRST_TIERS))
