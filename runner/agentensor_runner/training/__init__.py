"""The training loop: an engine of named steps over small strategies, and one saved loop state.

- :mod:`.engine`: :class:`Trainer`, the epoch loop;
- :mod:`.state`: :class:`LoopState`, saved whole in every checkpoint (``extra["loop"]``);
- :mod:`.selectors`: which config a step edits (``greedy``: the current best; ``pareto``: the front);
- :mod:`.acceptance`: which candidates a step keeps;
- :mod:`.gate`: the minibatch gate; :mod:`.merge`: GEPA's merge of two front members;
- :mod:`.stoppers`: the stop rules (epochs, goal, patience, budgets and stop requests);
- :mod:`.evaluation`: scoring with the memo and the evaluation cache;
- :mod:`.persistence`: every store call of the loop; :mod:`.holdout`: the holdout and overfitting guards;
- :mod:`.budget`: what the run has spent against ``spec.budget``, and the stop request;
- :mod:`.projection`: the calls a run plans, from its spec and split sizes, before the first call.

The pure rules these steps apply (significance, Pareto front, merge, gate, verbatim leaks) are in
:mod:`agentensor_runner.stats`.
"""

from .._errors import RunFailed
from .engine import Trainer
from .holdout import promotion_decision
from .persistence import EpochResult
from .state import LOOP_KEY, STALE_KEY, LoopState, Scored, stale_after

__all__ = [
    "LOOP_KEY",
    "STALE_KEY",
    "EpochResult",
    "LoopState",
    "RunFailed",
    "Scored",
    "Trainer",
    "promotion_decision",
    "stale_after",
]
