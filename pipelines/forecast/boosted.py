"""The XGBoost forecaster as a servable model: fit on the whole history, forecast from a frame.

The backtest's :class:`~pipelines.forecast.baselines.XGBoostForecaster` works on panels; this
wraps it with what serving needs (the same ``predict(features, origin=, horizon=)`` as the LSTM's
:class:`~pipelines.forecast.train.TrainedForecaster`, save and load), so the forecasting family can
put XGBoost forward when it wins the backtest.

XGBoost forecasts quantiles only. The ``mean`` column, which replenishment sums over lead times,
is Swanson's rule ``0.3 p10 + 0.4 p50 + 0.3 p90`` when those levels are trained (the median alone
understates slow movers, whose median day sells nothing), else the median.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from pipelines.forecast.baselines import XGBoostForecaster, censored
from pipelines.forecast.features import prepare_history
from pipelines.forecast.panel import build_panel
from pipelines.forecast.train import (
    _empty_forecast,
    check_horizon,
    forecast_frame,
    origin_panel,
    quantile_columns,
)

if TYPE_CHECKING:
    from pipelines.config import ForecastParams

META_FILE, BOOSTER_FILE = "boosted.json", "booster.json"
_SWANSON = {0.1: 0.3, 0.5: 0.4, 0.9: 0.3}


def mean_from_quantiles(forecasts: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """(S, H) mean estimate from (S, H, Q) quantile forecasts (Swanson's rule, else the median)."""
    levels = [round(q, 6) for q in quantiles]
    if all(q in levels for q in _SWANSON):
        return sum(w * forecasts[:, :, levels.index(q)] for q, w in _SWANSON.items())
    if 0.5 in levels:
        return forecasts[:, :, levels.index(0.5)]
    return forecasts.mean(axis=2)


@dataclass
class TrainedBoostedForecaster:
    """A fitted :class:`XGBoostForecaster` with what is needed to forecast from a features frame."""

    booster: XGBoostForecaster
    grain: str
    lookback: int
    metrics: dict[str, float] = field(default_factory=dict)
    week_start: int = 0  # first day of a weekly period (0 = Monday)

    @property
    def horizon(self) -> int:
        return self.booster.horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return tuple(self.booster.quantiles)

    @classmethod
    def fit(cls, features: pl.DataFrame, params: ForecastParams) -> TrainedBoostedForecaster:
        """Train on every origin of the history (targets up to its last day)."""
        import time

        started = time.perf_counter()
        prepared = prepare_history(features, params.grain, params.week_start)
        panel = build_panel(prepared, params.grain)
        booster = XGBoostForecaster(
            quantiles=tuple(params.quantiles),
            horizon=params.horizon,
            n_estimators=params.xgboost_rounds,
            max_rows=params.xgboost_max_rows,
            n_jobs=params.xgboost_threads,
            seed=params.seed,
        )
        last = panel.n_periods - 1
        booster.fit(censored(panel, last), last_origin=last - params.horizon)
        metrics = {"train_rows": float(booster.train_rows), "fit_seconds": time.perf_counter() - started}
        return cls(
            booster=booster,
            grain=params.grain,
            lookback=params.lookback,
            metrics=metrics,
            week_start=params.week_start,
        )

    def predict(
        self,
        features: pl.DataFrame,
        *,
        origin: dt.date | None = None,
        horizon: int | None = None,
        batch_size: int = 8192,
        threads: int | None = None,
    ) -> pl.DataFrame:
        """Same contract as :meth:`TrainedForecaster.predict` (``batch_size`` and ``threads`` unused)."""
        horizon = check_horizon(horizon, self.horizon)
        panel, t0, first_period, series = origin_panel(
            features, origin, self.grain, self.lookback, horizon, self.week_start
        )
        qcols = quantile_columns(self.quantiles)
        if len(series) == 0:
            return _empty_forecast(qcols)
        quantiles = self.booster.predict(censored(panel, t0), t0, horizon)[series]
        mean = mean_from_quantiles(quantiles, self.quantiles)
        return forecast_frame(panel, series, first_period, quantiles, mean, qcols)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.booster.model.save_model(path / BOOSTER_FILE)  # type: ignore[union-attr]
        meta: dict[str, Any] = {
            "grain": self.grain,
            "lookback": self.lookback,
            "week_start": self.week_start,
            "metrics": self.metrics,
            "booster": {
                "quantiles": list(self.booster.quantiles),
                "horizon": self.booster.horizon,
                "categories": self.booster.categories,
                "train_rows": self.booster.train_rows,
            },
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TrainedBoostedForecaster:
        import xgboost as xgb

        path = Path(directory)
        meta = json.loads((path / META_FILE).read_text())
        model = xgb.XGBRegressor()
        model.load_model(path / BOOSTER_FILE)
        spec = meta["booster"]
        booster = XGBoostForecaster(
            quantiles=tuple(spec["quantiles"]),
            horizon=int(spec["horizon"]),
            categories=list(spec["categories"]),
            model=model,
            train_rows=int(spec["train_rows"]),
        )
        return cls(
            booster=booster,
            grain=meta["grain"],
            lookback=int(meta["lookback"]),
            metrics=meta["metrics"],
            week_start=int(meta.get("week_start", 0)),
        )

    @staticmethod
    def is_saved_in(directory: str | Path) -> bool:
        return (Path(directory) / META_FILE).is_file()
