"""Pure functions over scores and cases that the training loop decides by (no store, no model, no run).

- :mod:`.significance`: is the best config better than the baseline on the same holdout cases?
  (McNemar's exact test for 0/1 scores, else a paired bootstrap), and the ``status.holdout`` fields;
- :mod:`.selection`: GEPA's per-case Pareto front, parent sampling, per-prompt merge and the minibatch gate;
- :mod:`.overfit`: does a prompt quote validation or holdout inputs verbatim?

Each module is used by :mod:`agentensor_runner.training` through a thin step (``selectors``, ``merge``,
``gate``, ``holdout``) and tested alone as tables of cases.
"""
