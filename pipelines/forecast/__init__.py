"""Demand forecasting, the first family of the shared model layer (:mod:`pipelines.ml`).

Modules: ``data`` (the mart read), ``features`` (typed model columns), ``panel`` (SKU x period grid,
scaled windows), ``datamodule`` (Lightning plumbing), ``network`` (the nn.Module), ``module`` (the
LightningModule), ``train`` (fit and forecast with the LSTM), ``boosted`` (the servable XGBoost),
``baselines``, ``evaluate`` (rolling-origin backtest), ``metrics``, ``plots``, ``serving`` (the
MLflow pyfunc model), ``score`` (the batch forecast for a run date) and ``family`` (the family's
declaration: what :func:`pipelines.ml.lifecycle.train_family` and scoring call). See
docs/forecasting.md.
"""
