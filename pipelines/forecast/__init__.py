"""Demand forecasting: a Lightning LSTM with quantile outputs, baselines, backtests and batch scoring.

Modules: ``data`` (mart -> windows, DataModule), ``network`` (the nn.Module), ``module`` (the
LightningModule), ``train`` (fit and forecast), ``baselines``, ``evaluate`` (rolling-origin backtest),
``tracking`` (MLflow training run, registry, promotion), ``serving`` (the MLflow pyfunc model) and
``score`` (batch scoring into the warehouse). See docs/forecasting.md.
"""
