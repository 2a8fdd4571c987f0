"""Rolling-origin backtest of the LSTM and the baselines, with the same metrics for every model.

Protocol: the last ``backtest_folds x holdout_days`` of history are cut into consecutive test
windows. Fold k's origin is the day before its window; every model is fitted (the LSTM and XGBoost)
or computed (seasonal naive, moving average) from data up to that origin only, forecasts the
window (``min(horizon, holdout)`` periods), and is scored against what happened. Fold LSTMs train
with the backtest budget (``backtest_epochs``, ``backtest_max_train_windows``; by default the
final fit's). Scored points are
observed, in-stock SKU-periods of SKUs with history at the origin; stock-out periods are masked
out because units sold there are censored demand. Nothing reads the simulator's ground truth.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from pipelines.forecast.baselines import (
    XGBoostForecaster,
    censored,
    mase_denominators,
    moving_average,
    seasonal_naive,
)
from pipelines.forecast.data import load_demand_features
from pipelines.forecast.features import (
    MART,
    ForecastDataError,
    period_days,
    periods_for_days,
    prepare_history,
)
from pipelines.forecast.metrics import calibration, metric_columns, quantile_name, summarise
from pipelines.forecast.panel import Panel, build_panel
from pipelines.forecast.train import TrainedForecaster, train_forecaster

if TYPE_CHECKING:
    from pipelines.config import ForecastParams, Settings

MODEL_KINDS = ("lstm", "seasonal_naive", "moving_average", "xgboost")


@dataclass
class BacktestResult:
    """Everything a backtest produced.

    Attributes:
        comparison: One row per model: ``model`` + :func:`metric_columns` (same names for all).
        per_fold: One row per model and fold, same metrics, plus ``origin``.
        per_category: One row per model and ``category_l1``: ``wape``, ``bias``, ``n_points``, units.
        calibration: Per model with quantiles and level: observed share below the forecast.
        samples: Forecast vs actual for a few sample SKUs of the last fold (and their history).
        points: Every scored point (model, fold, sku_id, target_date, actual, forecasts).
        origins: Fold origins (last day of data each fold saw), oldest first.
        lstm_models: The fold LSTMs, by fold number (fold 1 is the oldest origin).
        seconds: Fit/forecast seconds per model (summed over folds).
    """

    comparison: pl.DataFrame
    per_fold: pl.DataFrame
    per_category: pl.DataFrame
    calibration: pl.DataFrame
    samples: pl.DataFrame
    points: pl.DataFrame
    origins: list[dt.date]
    lstm_models: dict[int, TrainedForecaster] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def metric(self, model: str, name: str = "wape") -> float:
        row = self.comparison.filter(pl.col("model") == model)
        if row.is_empty():
            raise KeyError(f"model {model!r} is not in the backtest ({self.comparison['model'].to_list()})")
        value = row[name][0]
        return float("nan") if value is None else float(value)


def fold_origins(panel: Panel, folds: int, holdout_periods: int) -> list[int]:
    """Origin period indices, oldest first; fold k tests periods origin+1 .. origin+holdout."""
    last = panel.n_periods - 1
    origins = [last - k * holdout_periods for k in range(folds, 0, -1)]
    if origins[0] < 2 * holdout_periods:
        raise ForecastDataError(
            f"{_span(panel)} are too few for {folds} backtest folds of {holdout_periods} periods: "
            f"the first fold needs {2 * holdout_periods} periods before it. Lower "
            f"forecast.backtest_folds or forecast.holdout_days, or land more history"
        )
    return origins


def _span(panel: Panel) -> str:
    return (
        f"marts.{MART} holds {panel.n_periods} {panel.grain} periods of history "
        f"({panel.periods[0]} .. {panel.periods[-1]})"
    )


def check_backtest_history(panel: Panel, params: ForecastParams, models: Sequence[str]) -> None:
    """Refuse a history too short for the backtest, saying which settings to lower.

    The backtest tests ``backtest_folds x holdout`` periods; before its first fold it needs twice
    the holdout (the baselines), ``horizon + 1`` periods (one LSTM training window) and the lags
    plus the test horizon XGBoost trains on.

    Raises:
        ForecastDataError: The message names the rule and the settings.
    """
    holdout = periods_for_days(params.holdout_days, params.grain)
    tested = params.backtest_folds * holdout
    needs = {"twice the holdout for the baselines": 2 * holdout + 1}
    if "lstm" in models:
        needs["forecast.horizon + 1 for one LSTM training window"] = params.horizon + 1
    if "xgboost" in models:
        lags = 28 if params.grain == "daily" else 8
        needs[f"{lags} periods of lags + the holdout's horizon for XGBoost"] = (
            lags + min(params.horizon, holdout) + 1
        )
    reason, before = max(needs.items(), key=lambda item: item[1])
    needed = tested + before
    if panel.n_periods >= needed:
        return
    unit = "days" if params.grain == "daily" else "weeks"
    raise ForecastDataError(
        f"{_span(panel)}; the backtest needs at least {needed}: forecast.backtest_folds "
        f"({params.backtest_folds}) x {holdout} holdout {unit} (forecast.holdout_days "
        f"{params.holdout_days}) to test on, plus {before} before the first fold to fit on ({reason}). "
        f"Lower forecast.backtest_folds, forecast.holdout_days or forecast.horizon, or land more history"
    )


def _frame(
    model: str, fold: int, panel: Panel, origin: int, forecasts: np.ndarray, quantiles: Sequence[float] | None
) -> pl.DataFrame:
    """Long frame from (S, H) point or (S, H, Q) quantile forecasts."""
    n, horizon = forecasts.shape[:2]
    step = period_days(panel.grain)
    dates = [panel.periods[origin] + dt.timedelta(days=step * h) for h in range(1, horizon + 1)]
    data = {
        "model": [model] * (n * horizon),
        "fold": np.full(n * horizon, fold, np.int32),
        "sku_id": np.repeat(panel.sku_ids, horizon),
        "target_date": pl.Series(dates * n, dtype=pl.Date),
    }
    if forecasts.ndim == 2:
        data["p50"] = forecasts.reshape(-1).astype(np.float64)
    else:
        for j, q in enumerate(quantiles or ()):
            data[quantile_name(q)] = forecasts[:, :, j].reshape(-1).astype(np.float64)
    return pl.DataFrame(data)


def _actuals(panel: Panel, fold: int, origin: int, horizon: int, mase_scale: np.ndarray) -> pl.DataFrame:
    """The points of a fold that count: observed, in stock, SKU has history at the origin."""
    steps = np.arange(origin + 1, min(origin + horizon, panel.n_periods - 1) + 1)
    has_history = panel.observed[:, : origin + 1].any(axis=1)
    valid = panel.valid[:, steps] & has_history[:, None]
    s_idx, t_pos = np.nonzero(valid)
    t_idx = steps[t_pos]
    return pl.DataFrame(
        {
            "fold": np.full(len(s_idx), fold, np.int32),
            "sku_id": panel.sku_ids[s_idx],
            "target_date": pl.Series([panel.periods[t] for t in t_idx], dtype=pl.Date),
            "actual": panel.units[s_idx, t_idx].astype(np.float64),
            "promo": panel.promo[s_idx, t_idx].astype(np.float64),
            "category_l1": panel.category[s_idx],
            "mase_scale": mase_scale[s_idx].astype(np.float64),
        }
    )


def backtest(
    settings: Settings,
    features: pl.DataFrame | None = None,
    *,
    params: ForecastParams | None = None,
    models: Sequence[str] = MODEL_KINDS,
    moving_average_days: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of ``models`` over the last ``backtest_folds x holdout_days``.

    Args:
        settings: Configuration and warehouse.
        features: Mart-shaped daily rows (default: the whole ``marts.mart_demand_features``).
        params: Overrides ``settings.forecast``.
        models: Any of :data:`MODEL_KINDS`.
        moving_average_days: Window of the moving average (default: replenishment's traditional one).
        progress: Called with short messages.
    """
    say = progress or (lambda _m: None)
    params = params or settings.forecast
    unknown = sorted(set(models) - set(MODEL_KINDS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODEL_KINDS)}")
    if features is None:
        features = load_demand_features(settings)
    ma_days = moving_average_days or settings.replenishment.traditional_moving_average_days
    prepared = prepare_history(features, params.grain, params.week_start)
    panel = build_panel(prepared, params.grain)
    check_backtest_history(panel, params, models)
    holdout = periods_for_days(params.holdout_days, params.grain)
    horizon = min(params.horizon, holdout)
    origins = fold_origins(panel, params.backtest_folds, holdout)
    step = period_days(params.grain)
    quantiles = tuple(params.quantiles)
    frames, actuals = [], []
    seconds = dict.fromkeys(models, 0.0)
    lstm_models: dict[int, TrainedForecaster] = {}
    for fold, origin in enumerate(origins, start=1):
        origin_day = panel.periods[origin]
        cutoff = origin_day + dt.timedelta(days=step - 1)  # the last day of the origin period
        say(f"fold {fold}/{len(origins)}: origin {cutoff}, testing {horizon} {params.grain} periods")
        seen = censored(panel, origin)
        actuals.append(_actuals(panel, fold, origin, horizon, mase_denominators(seen, origin)))
        if "lstm" in models:
            started = time.perf_counter()
            model = train_forecaster(settings, features, cutoff=cutoff, params=params.for_backtest())
            lstm_models[fold] = model
            fc = model.predict(features, origin=cutoff, horizon=horizon)
            frames.append(
                fc.drop("step", "mean").with_columns(
                    pl.lit("lstm").alias("model"), pl.lit(fold, pl.Int32).alias("fold")
                )
            )
            seconds["lstm"] += time.perf_counter() - started
            say(
                f"  lstm: {model.metrics.get('epoch_seconds', 0):.1f}s/epoch, "
                f"val_wape {model.metrics.get('val_wape')}"
            )
        if "seasonal_naive" in models:
            started = time.perf_counter()
            frames.append(
                _frame("seasonal_naive", fold, panel, origin, seasonal_naive(seen, origin, horizon), None)
            )
            seconds["seasonal_naive"] += time.perf_counter() - started
        if "moving_average" in models:
            started = time.perf_counter()
            ma = moving_average(seen, origin, horizon, window_days=ma_days)
            frames.append(_frame("moving_average", fold, panel, origin, ma, None))
            seconds["moving_average"] += time.perf_counter() - started
        if "xgboost" in models:
            started = time.perf_counter()
            xgb = XGBoostForecaster(
                quantiles=quantiles,
                horizon=horizon,
                n_estimators=params.xgboost_rounds,
                max_rows=params.xgboost_max_rows,
                n_jobs=params.xgboost_threads,
                seed=params.seed,
            )
            xgb.fit(seen, last_origin=origin - horizon)
            frames.append(
                _frame("xgboost", fold, panel, origin, xgb.predict(seen, origin, horizon), quantiles)
            )
            seconds["xgboost"] += time.perf_counter() - started
            say(f"  xgboost: {xgb.train_rows:,} training rows")
    forecasts = pl.concat(frames, how="diagonal_relaxed")
    truth = pl.concat(actuals)
    if truth.is_empty():
        raise ForecastDataError(
            f"nothing to score in the backtest: no SKU of marts.{MART} has units (in stock) in a "
            f"fold's test window after having units before the fold's origin (data up to "
            f"{', '.join(str(panel.periods[o] + dt.timedelta(days=step - 1)) for o in origins)}); "
            f"missing periods and stock-outs "
            f"are not scored. Land more history or lower forecast.backtest_folds"
        )
    points = truth.join(forecasts, on=["fold", "sku_id", "target_date"], how="inner")
    comparison = summarise(points, ["model"], quantiles)
    comparison = comparison.join(
        pl.DataFrame({"model": list(seconds), "seconds": list(seconds.values())}), on="model", how="left"
    )
    order = {m: i for i, m in enumerate(MODEL_KINDS)}
    comparison = comparison.sort(pl.col("model").replace_strict(order, default=99))
    per_fold = summarise(points, ["model", "fold"], quantiles).join(
        pl.DataFrame(
            {"fold": list(range(1, len(origins) + 1)), "origin": [panel.periods[o] for o in origins]},
            schema={"fold": pl.Int32, "origin": pl.Date},
        ),
        on="fold",
        how="left",
    )
    per_category = (
        points.group_by("model", "category_l1")
        .agg(
            ((pl.col("p50") - pl.col("actual")).abs().sum() / pl.col("actual").sum()).alias("wape"),
            ((pl.col("p50") - pl.col("actual")).sum() / pl.col("actual").sum()).alias("bias"),
            pl.col("actual").sum().alias("actual_units"),
            pl.len().alias("n_points"),
        )
        .sort("category_l1", "model")
    )
    return BacktestResult(
        comparison=comparison,
        per_fold=per_fold,
        per_category=per_category,
        calibration=calibration(points, quantiles),
        samples=_samples(panel, points, origins[-1], len(origins), params.lookback),
        points=points,
        origins=[panel.periods[o] + dt.timedelta(days=step - 1) for o in origins],
        lstm_models=lstm_models,
        seconds=seconds,
    )


def _samples(panel: Panel, points: pl.DataFrame, origin: int, fold: int, lookback: int) -> pl.DataFrame:
    """Forecast vs actual for up to six SKUs of the last fold: top sellers, middling, intermittent, newest."""
    last = points.filter(pl.col("fold") == fold)
    if last.is_empty():
        return pl.DataFrame()
    volume = (
        last.filter(pl.col("model") == last["model"][0])
        .group_by("sku_id")
        .agg(pl.col("actual").sum().alias("units"), (pl.col("actual") == 0).mean().alias("zero_share"))
    )
    volume = volume.sort("units", descending=True)
    picks: list[int] = volume["sku_id"].head(2).to_list()
    middle = volume.height // 2
    picks += volume["sku_id"].slice(middle, 2).to_list()
    intermittent = volume.filter((pl.col("zero_share") > 0.6) & (pl.col("units") > 0))
    if not intermittent.is_empty():
        picks.append(intermittent["sku_id"][0])
    first_seen = panel.observed.argmax(axis=1)
    order = np.argsort(-first_seen)
    eligible = set(volume["sku_id"].to_list())
    newest = next((int(panel.sku_ids[i]) for i in order if int(panel.sku_ids[i]) in eligible), None)
    if newest is not None:
        picks.append(newest)
    picks = list(dict.fromkeys(picks))[:6]
    index = {int(s): i for i, s in enumerate(panel.sku_ids)}
    lo = max(0, origin - lookback + 1)
    history = pl.DataFrame(
        {
            "sku_id": np.repeat(picks, origin + 1 - lo),
            "target_date": pl.Series(
                [panel.periods[t] for t in range(lo, origin + 1)] * len(picks), dtype=pl.Date
            ),
            # missing periods stay missing (NaN: a break in the plotted line, not a zero)
            "actual": np.concatenate(
                [
                    np.where(
                        panel.observed[index[s], lo : origin + 1],
                        panel.units[index[s], lo : origin + 1],
                        np.nan,
                    )
                    for s in picks
                ]
            ).astype(np.float64),
            "model": "history",
        }
    )
    cols = [c for c in last.columns if c in ("sku_id", "target_date", "actual", "model") or c.startswith("p")]
    forecast = last.filter(pl.col("sku_id").is_in(picks)).select(cols)
    return pl.concat([history, forecast], how="diagonal_relaxed").sort("sku_id", "model", "target_date")


__all__ = [
    "MODEL_KINDS",
    "BacktestResult",
    "backtest",
    "fold_origins",
    "metric_columns",
]
