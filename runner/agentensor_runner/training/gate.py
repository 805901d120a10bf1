"""The minibatch gate (``optimizer.minibatchGate``): a candidate reaches the validation split
only if its mean on the minibatch its feedback came from beats its parent's there
(:func:`agentensor_runner.stats.selection.gate`); a refused candidate costs ``batchSize`` case
evaluations instead of the validation split's.
"""

from __future__ import annotations

from ..execution import Evaluation
from ..stats.selection import gate


def passes(candidate: Evaluation, parent: Evaluation, objective: str, direction: str) -> bool:
    """Does ``candidate`` beat ``parent`` on the same minibatch (per-case ``objective`` scores, in ``direction``)?

    Raises:
        ValueError: the two evaluations do not have the same, non-empty number of cases.
    """
    sign = 1.0 if direction == "maximize" else -1.0
    return gate([sign * r.score(objective) for r in candidate.cases], [sign * r.score(objective) for r in parent.cases])
