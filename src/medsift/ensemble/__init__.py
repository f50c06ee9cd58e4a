"""Ensemble runs: several runs (or outside probability files) as one, above the single-model kinds.

- :mod:`medsift.ensemble.members`: what a member is (a run, one seed of it, or val/calib probability files) and
  how its probabilities for new posts are computed (each member run loaded once).
- :mod:`medsift.ensemble.ade`: fit (weights, calibration, thresholds; the pure functions of
  :mod:`medsift.decision`), write and predict ADE ensemble runs; :class:`~medsift.ensemble.ade.EnsembleClassifier`
  has a single classifier's ``predict``.
- :mod:`medsift.ensemble.recipe`: ``method: ensemble`` configs (train the members, then the ensemble).
- :mod:`medsift.ensemble.teacher`: distillation of an ensemble (or any ADE run) into one student.
"""
