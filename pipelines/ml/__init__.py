"""The shared model layer: one lifecycle for every model family.

- :mod:`~pipelines.ml.family`: what a family declares (:class:`ModelFamily`, :class:`Recipe`,
  :class:`OutputTable`, :class:`Evaluation`).
- :mod:`~pipelines.ml.lifecycle`: evaluate against baselines and the champion on the same data,
  fit, log, register, promote (:func:`train_family`).
- :mod:`~pipelines.ml.scoring`: batch-score with the champion's exact version (:func:`score_family`).
- :mod:`~pipelines.ml.registry`: MLflow tracking, registry, promotion rule.
- :mod:`~pipelines.ml.store`: atomic, idempotent output writes.
- :mod:`~pipelines.ml.families`: the families by name.
"""
