"""Baselines evaluated next to the LSTM, on the same panel and origins.

- Seasonal naive: repeat the last season (daily: the value 7 days before, i.e. the last week
  repeated; weekly: 52 weeks before when that week is in the history, else the last value).
- Moving average: the mean of the last ``traditional_moving_average_days`` (28) days, flat over the
  horizon: the "traditional" method replenishment planners use.
- XGBoost: one global gradient-boosted model for all SKUs and horizon steps (direct multi-horizon,
  the step is a feature), trained with ``reg:quantileerror`` on the configured quantiles at once.
  Inputs: recent lags, rolling means, zero share and stock-out share (scaled by the SKU's recent
  mean + 1), the seasonal-naive value for the target period, the target period's known covariates
  (calendar, events, price and competitor-gap change, promotion), step, category and age.

Every function reads only periods up to the origin (apply them to :meth:`censored` panels in
backtests to make that structural).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipelines.forecast.features import KNOWN_FEATURES, MART, MONOTONE_FEATURES, ForecastDataError
from pipelines.forecast.panel import Panel

_SEASON = {"daily": 7, "weekly": 52}


def censored(panel: Panel, origin: int) -> Panel:
    """A copy of ``panel`` that knows nothing after ``origin`` except the known-future covariates."""
    keep = np.arange(panel.n_periods) <= origin
    return Panel(
        grain=panel.grain,
        sku_ids=panel.sku_ids,
        periods=panel.periods,
        units=np.where(keep, panel.units, 0.0).astype(np.float32),
        observed=panel.observed & keep,
        stockout=np.where(keep, panel.stockout, 0.0).astype(np.float32),
        past=panel.past * keep[None, :, None],
        known=panel.known,
        category=panel.category,
    )


def _last_observed(panel: Panel, origin: int) -> np.ndarray:
    """Per SKU, the units of the last observed period up to ``origin`` (0 if none)."""
    obs = panel.observed[:, : origin + 1]
    idx = np.where(obs, np.arange(origin + 1)[None, :], -1).max(axis=1)
    out = np.zeros(panel.n_series, np.float32)
    has = idx >= 0
    out[has] = panel.units[np.flatnonzero(has), idx[has]]
    return out


def seasonal_naive(panel: Panel, origin: int, horizon: int, *, season: int | None = None) -> np.ndarray:
    """(S, H) forecasts: the value one season before each target period, else the last value."""
    season = season or _SEASON[panel.grain]
    steps = np.arange(1, horizon + 1)
    source = origin + steps - season * np.ceil(steps / season).astype(int)
    out = np.repeat(_last_observed(panel, origin)[:, None], horizon, axis=1)
    ok = source >= 0
    src = np.clip(source, 0, None)
    seen = panel.observed[:, src] & ok[None, :]
    out = np.where(seen, panel.units[:, src], out)
    return out.astype(np.float32)


def moving_average(panel: Panel, origin: int, horizon: int, *, window_days: int = 28) -> np.ndarray:
    """(S, H) forecasts: mean units over the observed periods of the last ``window_days`` days."""
    window = max(1, window_days // (7 if panel.grain == "weekly" else 1))
    lo = max(0, origin - window + 1)
    obs = panel.observed[:, lo : origin + 1]
    units = panel.units[:, lo : origin + 1]
    mean = (units * obs).sum(axis=1) / np.maximum(obs.sum(axis=1), 1)
    return np.repeat(mean[:, None], horizon, axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------------- XGBoost

_LAGS = 7
_PRICE = KNOWN_FEATURES.index(MONOTONE_FEATURES[0])
_GAP = KNOWN_FEATURES.index(MONOTONE_FEATURES[1])


def _window_stats(panel: Panel, series: np.ndarray, origins: np.ndarray, width: int) -> dict[str, np.ndarray]:
    t = origins[:, None] + np.arange(-width + 1, 1)[None, :]
    inside = t >= 0
    tc = np.clip(t, 0, None)
    s = series[:, None]
    obs = panel.observed[s, tc] & inside
    units = np.where(obs, panel.units[s, tc], 0.0)
    n = np.maximum(obs.sum(axis=1), 1)
    mean = units.sum(axis=1) / n
    var = ((units - mean[:, None]) ** 2 * obs).sum(axis=1) / n
    return {
        "mean": mean,
        "std": np.sqrt(var),
        "zero_share": ((units == 0) & obs).sum(axis=1) / n,
        "stockout_share": (np.where(obs, panel.stockout[s, tc], 0.0)).sum(axis=1) / n,
        "observed": obs.sum(axis=1),
        "price_mean": (panel.known[s, tc, _PRICE] * obs).sum(axis=1) / n,
        "gap_mean": (panel.known[s, tc, _GAP] * obs).sum(axis=1) / n,
    }


def xgboost_features(
    panel: Panel, series: np.ndarray, origins: np.ndarray, steps: np.ndarray, categories: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix for (series, origin, step) triples and the per-row scale (recent mean + 1)."""
    season = _SEASON[panel.grain]
    long_w = 28 if panel.grain == "daily" else 8
    short_w = 7 if panel.grain == "daily" else 2
    long_stats = _window_stats(panel, series, origins, long_w)
    short_stats = _window_stats(panel, series, origins, short_w)
    scale = long_stats["mean"] + 1.0
    cols: list[np.ndarray] = []
    for k in range(_LAGS):
        t = origins - k
        ok = (t >= 0) & panel.observed[series, np.clip(t, 0, None)]
        cols.append(np.where(ok, panel.units[series, np.clip(t, 0, None)] / scale, np.nan))
    target = origins + steps
    src = target - season * np.ceil(steps / season).astype(int)
    ok = (src >= 0) & panel.observed[series, np.clip(src, 0, None)]
    cols.append(np.where(ok, panel.units[series, np.clip(src, 0, None)] / scale, np.nan))
    cols += [
        short_stats["mean"] / scale,
        long_stats["mean"] / scale,
        long_stats["std"] / scale,
        long_stats["zero_share"],
        short_stats["stockout_share"],
        long_stats["observed"] / long_w,
        np.log(scale),
        steps.astype(np.float64),
        panel.past[series, origins, 1],  # age
    ]
    cat_index = {c: i for i, c in enumerate(categories)}
    cols.append(np.array([cat_index.get(c, -1) for c in panel.category[series]], dtype=np.float64))
    tc = np.clip(target, 0, panel.n_periods - 1)
    known = panel.known[series, tc].astype(np.float64)
    known[:, _PRICE] -= long_stats["price_mean"]
    known[:, _GAP] -= long_stats["gap_mean"]
    features = np.column_stack([*cols, known]).astype(np.float32)
    return features, scale.astype(np.float32)


@dataclass
class XGBoostForecaster:
    """Global direct multi-horizon quantile model (``reg:quantileerror``, all quantiles in one model).

    Args:
        quantiles: Quantile levels.
        horizon: Steps forecast.
        n_estimators, max_depth, learning_rate: Boosting size.
        max_rows: Training rows sampled (seeded) from every (SKU, origin, step) available.
        origin_stride: Periods between training origins.
        seed: Sampling and boosting seed.
        n_jobs: XGBoost threads (one by default: spin-waiting threads on a busy machine are slower).
    """

    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    horizon: int = 28
    n_estimators: int = 300
    max_depth: int = 6
    learning_rate: float = 0.05
    max_rows: int = 300_000
    origin_stride: int = 7
    seed: int = 42
    n_jobs: int = 1
    categories: list[str] = field(default_factory=list)
    model: object | None = None
    train_rows: int = 0

    def fit(self, panel: Panel, *, last_origin: int) -> XGBoostForecaster:
        """Train on origins up to ``last_origin`` (their targets end by ``last_origin + horizon``)."""
        import xgboost as xgb

        self.categories = sorted(set(panel.category.tolist()))
        stride = self.origin_stride if panel.grain == "daily" else 1
        first = 28 if panel.grain == "daily" else 8
        last = min(last_origin, panel.n_periods - 1 - self.horizon)
        origins = np.arange(last, first - 1, -stride)[::-1]
        if len(origins) == 0:
            raise ForecastDataError(
                f"{panel.n_periods} {panel.grain} periods of history ({panel.periods[0]} .. "
                f"{panel.periods[-1]}) are too few to train XGBoost: it learns from origins with "
                f"{first} periods of lags before them and {self.horizon} target periods after "
                f"(forecast.horizon, at most the holdout in a backtest), so it needs at least "
                f"{first + self.horizon + 1} periods. Lower forecast.horizon or land more history"
            )
        s_grid, t_grid = np.meshgrid(np.arange(panel.n_series), origins, indexing="ij")
        s_all, t_all = s_grid.ravel(), t_grid.ravel()
        keep = panel.observed[s_all, t_all]
        s_all, t_all = s_all[keep], t_all[keep]
        n_total = len(s_all) * self.horizon
        rng = np.random.default_rng(self.seed)
        pick = rng.choice(n_total, size=min(self.max_rows, n_total), replace=False)
        series, origin_idx, steps = (
            s_all[pick // self.horizon],
            t_all[pick // self.horizon],
            pick % self.horizon + 1,
        )
        target_t = origin_idx + steps
        valid = panel.valid[series, target_t]
        series, origin_idx, steps, target_t = series[valid], origin_idx[valid], steps[valid], target_t[valid]
        if len(series) == 0:
            raise ForecastDataError(
                f"no XGBoost training rows: no SKU of marts.{MART} has units (in stock) within "
                f"{self.horizon} periods after a period with units from period {first} on; missing "
                f"periods and stock-outs are not targets. Land more history or lower forecast.horizon"
            )
        x, scale = xgboost_features(panel, series, origin_idx, steps, self.categories)
        y = panel.units[series, target_t] / scale
        self.model = xgb.XGBRegressor(
            tree_method="hist",
            n_jobs=self.n_jobs,
            objective="reg:quantileerror",
            quantile_alpha=np.asarray(self.quantiles),
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=0.8,
            colsample_bytree=0.8,
            min_child_weight=5.0,
            random_state=self.seed,
        )
        self.model.fit(x, y)
        self.train_rows = len(y)
        return self

    def predict(self, panel: Panel, origin: int, horizon: int | None = None) -> np.ndarray:
        """(S, H, Q) quantile forecasts in units, sorted along Q and non-negative."""
        if self.model is None:
            raise RuntimeError("fit the XGBoost baseline before predicting")
        horizon = horizon or self.horizon
        n = panel.n_series
        series = np.repeat(np.arange(n), horizon)
        steps = np.tile(np.arange(1, horizon + 1), n)
        x, scale = xgboost_features(panel, series, np.full(len(series), origin), steps, self.categories)
        pred = np.asarray(self.model.predict(x)).reshape(len(series), -1)
        pred = np.sort(np.clip(pred, 0.0, None), axis=1) * scale[:, None]
        return pred.reshape(n, horizon, -1).astype(np.float32)


def season_length(grain: str, n_periods: int) -> int:
    """Seasonal period for MASE denominators: 7 (daily) or 52 (weekly) when the history allows."""
    season = _SEASON.get(grain, 1)
    return season if n_periods > 2 * season else 1 if grain == "weekly" else season


def mase_denominators(panel: Panel, origin: int) -> np.ndarray:
    """Per SKU: in-sample MAE of the seasonal-naive forecast over the valid periods up to ``origin``."""
    m = season_length(panel.grain, origin + 1)
    if origin < m:
        return np.full(panel.n_series, math.nan)
    valid = panel.valid[:, : origin + 1]
    both = valid[:, m:] & valid[:, :-m]
    diff = np.abs(panel.units[:, m : origin + 1] - panel.units[:, : origin + 1 - m])
    n = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (diff * both).sum(axis=1) / n, np.nan)
