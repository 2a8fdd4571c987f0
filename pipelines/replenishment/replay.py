"""Replay both stocking policies over held-out history: the evidence that the forecast's policy pays."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from pipelines.replenishment.plan import ReplenishmentError, lead_times
from pipelines.replenishment.policy import (
    MAX_LEAD_DAYS,
    order_quantity,
    quantile_policy,
    sigma_from_quantiles,
    traditional_policy,
)
from pipelines.warehouse import connect_warehouse

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.forecast.train import TrainedForecaster


@dataclass
class SimulationResult:
    """Both policies replayed over the same days, demand and lead times.

    Attributes:
        table: One row per policy: ``policy, safety_days, fill_rate, stockout_rate,
            average_stock_units, average_stock_value, average_safety_stock_units,
            inventory_turnover, orders, units_sold, lost_units``.
        start, end: The days replayed.
        note: How the comparison was made fair.
    """

    table: pl.DataFrame
    start: dt.date
    end: dt.date
    note: str
    daily: pl.DataFrame = field(default_factory=pl.DataFrame)


def _replay(
    demand: np.ndarray,
    on_hand0: np.ndarray,
    unit_cost: np.ndarray,
    levels_at: Callable[[int], dict[str, np.ndarray]],
    leads: np.ndarray,
    review_days: int,
) -> dict[str, float]:
    """Run one policy over (S, D) demand; reviews on day 0, R, 2R, ... before that day's demand."""
    n, days = demand.shape
    arrivals = np.zeros((n, days + MAX_LEAD_DAYS + 2))
    on_hand = on_hand0.astype(np.float64).copy()
    sold_total = lost_total = 0.0
    stock_units = stock_value = cogs = 0.0
    stockout_days = 0
    safety, orders = [], 0
    for d in range(days):
        on_hand += arrivals[:, d]
        if d % review_days == 0:
            levels = levels_at(d)
            position = on_hand + arrivals[:, d + 1 :].sum(axis=1)
            qty = order_quantity(levels, position)
            review = d // review_days
            lead = leads[:, review]
            arrivals[np.arange(n), d + lead] += qty
            orders += int((qty > 0).sum())
            safety.append(levels["safety_stock"])
        sold = np.minimum(on_hand, demand[:, d])
        on_hand -= sold
        sold_total += sold.sum()
        lost_total += (demand[:, d] - sold).sum()
        cogs += (sold * unit_cost).sum()
        stock_units += on_hand.sum()
        stock_value += (on_hand * unit_cost).sum()
        stockout_days += int((on_hand <= 0).sum())
    demand_total = sold_total + lost_total
    mean_value = stock_value / days
    mean_safety = np.mean(safety, axis=0)
    return {
        "fill_rate": sold_total / demand_total if demand_total else math.nan,
        "stockout_rate": stockout_days / (n * days),
        "average_stock_units": stock_units / (n * days),
        "average_stock_value": mean_value,
        "average_safety_stock_units": float(mean_safety.mean()),
        "average_safety_stock_value": float((mean_safety * unit_cost).sum()),
        "inventory_turnover": cogs * 365 / days / mean_value if mean_value else math.nan,
        "orders": float(orders),
        "units_sold": sold_total,
        "lost_units": lost_total,
    }


def simulate_policies(
    settings: Settings,
    features: pl.DataFrame | None = None,
    *,
    forecaster: TrainedForecaster | None = None,
    start: dt.date | None = None,
    days: int | None = None,
    match_fill_rate: bool = True,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Replay the LSTM-quantile policy and the traditional policy over held-out history.

    Demand is the units actually sold each day (stock-outs censor it: true demand on those days was
    higher, which flatters both policies alike). Both policies start from the real on-hand stock on
    the day before ``start``, see the same demand and draw the same lead times (one draw per SKU and
    review from the SKU's lead-time mean and sd, seeded), and review every ``review_period_days``.
    The LSTM policy re-forecasts at every review from the data up to the day before (the model must
    be trained on data before ``start``); the traditional policy re-computes its moving average.

    To compare at the same achieved service, the traditional policy is also run with the safety days
    found by bisection so that its fill rate matches the LSTM policy's (``traditional_matched``); the
    configured ``traditional_safety_days`` run is reported as ``traditional``.

    Args:
        settings: Configuration and warehouse.
        features: Mart-shaped daily rows (default: the published mart).
        forecaster: A model trained on data before ``start`` (default: trained here with cutoff
            ``start - 1``).
        start: First replayed day (default: ``backtest_folds x holdout_days`` before the last day + 1).
        days: Days replayed (default: up to the last day of data).
        match_fill_rate: Also run the calibrated traditional policy.
        seed: Lead-time draws (default: ``forecast.seed``).
        progress: Called with short messages.
    """

    from pipelines.forecast.data import load_demand_features
    from pipelines.forecast.train import train_forecaster

    say = progress or (lambda _m: None)
    params, fparams = settings.replenishment, settings.forecast
    if features is None:
        features = load_demand_features(settings)
    history = features.filter(pl.col("units").is_not_null())
    last_day = history["date"].max()
    start = start or last_day - dt.timedelta(days=fparams.backtest_folds * fparams.holdout_days - 1)
    end = min(last_day, start + dt.timedelta(days=(days or (last_day - start).days + 1) - 1))
    n_days = (end - start).days + 1
    if n_days < params.review_period_days:
        raise ReplenishmentError(f"replay window {start} .. {end} is shorter than one review period")
    if forecaster is None:
        say(f"training the forecaster on data up to {start - dt.timedelta(days=1)}")
        forecaster = train_forecaster(settings, features, cutoff=start - dt.timedelta(days=1))
    if forecaster.grain != "daily":
        raise ReplenishmentError("the simulation replays days: use a daily-grain forecaster")

    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        leads_frame = lead_times(
            con, start - dt.timedelta(days=1), fallback_days=params.lead_time_fallback_days
        )
        costs = con.sql("select sku_id, unit_cost from marts.dim_products").pl()
    finally:
        con.close()
    opening = history.filter(pl.col("date") == start - dt.timedelta(days=1))
    skus = opening["sku_id"].unique().sort()
    base = (
        skus.to_frame()
        .join(leads_frame, on="sku_id", how="left")
        .join(costs, on="sku_id", how="left")
        .join(
            opening.select("sku_id", pl.col("on_hand_units").cast(pl.Float64))
            if "on_hand_units" in opening.columns
            else skus.to_frame().with_columns(pl.lit(0.0).alias("on_hand_units")),
            on="sku_id",
            how="left",
        )
        .sort("sku_id")
    )
    n = base.height
    lead_mean = base["lead_time_days"].fill_null(params.lead_time_fallback_days).to_numpy()
    lead_sd = base["lead_time_sd_days"].fill_null(0.0).to_numpy()
    unit_cost = base["unit_cost"].fill_null(0.0).to_numpy()
    on_hand0 = base["on_hand_units"].fill_null(0.0).to_numpy()
    window = history.filter(
        pl.col("date").is_between(start - dt.timedelta(days=params.traditional_moving_average_days), end)
    )
    grid = (
        skus.to_frame()
        .join(
            pl.date_range(
                start - dt.timedelta(days=params.traditional_moving_average_days), end, "1d", eager=True
            )
            .alias("date")
            .to_frame(),
            how="cross",
        )
        .join(
            window.select("sku_id", "date", pl.col("units").cast(pl.Float64)),
            on=["sku_id", "date"],
            how="left",
        )
        .sort("sku_id", "date")
    )
    units = grid["units"].fill_null(0.0).to_numpy().reshape(n, -1)
    offset = params.traditional_moving_average_days
    demand = units[:, offset:]
    reviews = math.ceil(n_days / params.review_period_days)
    rng = np.random.default_rng(fparams.seed if seed is None else seed)
    draws = rng.normal(lead_mean[:, None], lead_sd[:, None], size=(n, reviews))
    leads = np.clip(np.rint(draws), 1, MAX_LEAD_DAYS).astype(np.int64)

    level_q = max(q for q in forecaster.quantiles)
    upper_name, p50_name = f"p{round(level_q * 100)}", "p50"
    lstm_levels: dict[int, dict[str, np.ndarray]] = {}
    index = {int(s): i for i, s in enumerate(skus.to_list())}
    for d in range(0, n_days, params.review_period_days):
        origin = start + dt.timedelta(days=d - 1)
        fc = forecaster.predict(features, origin=origin)
        mean = np.zeros((n, forecaster.horizon))
        p50 = np.zeros_like(mean)
        upper = np.zeros_like(mean)
        rows = np.array([index.get(int(s), -1) for s in fc["sku_id"].to_list()])
        ok = rows >= 0
        steps = fc["step"].to_numpy() - 1
        mean[rows[ok], steps[ok]] = fc["mean"].to_numpy()[ok]
        p50[rows[ok], steps[ok]] = fc[p50_name].to_numpy()[ok]
        upper[rows[ok], steps[ok]] = fc[upper_name].to_numpy()[ok]
        lstm_levels[d] = quantile_policy(
            mean,
            sigma_from_quantiles(p50, upper, level_q),
            lead_mean,
            lead_sd,
            review_days=params.review_period_days,
            service_level=params.service_level,
        )
    say(f"replaying {n:,} SKUs over {n_days} days ({start} .. {end})")

    def moving_rate(d: int) -> np.ndarray:
        return units[:, offset + d - params.traditional_moving_average_days : offset + d].mean(axis=1)

    def traditional(safety_days: float) -> dict[str, float]:
        return _replay(
            demand,
            on_hand0,
            unit_cost,
            lambda d: traditional_policy(
                moving_rate(d), lead_mean, review_days=params.review_period_days, safety_days=safety_days
            ),
            leads,
            params.review_period_days,
        )

    rows_out = [
        {"policy": "lstm_quantile", "safety_days": None}
        | _replay(demand, on_hand0, unit_cost, lambda d: lstm_levels[d], leads, params.review_period_days),
        {"policy": "traditional", "safety_days": params.traditional_safety_days}
        | traditional(params.traditional_safety_days),
    ]
    note = (
        f"same {n:,} SKUs, {n_days} days from {start}, demand = units sold (censored on stock-out days), "
        f"same lead-time draws, review every {params.review_period_days} days, target service level "
        f"{params.service_level}"
    )
    if match_fill_rate:
        target = rows_out[0]["fill_rate"]
        lo, hi = 0.0, 60.0
        if traditional(hi)["fill_rate"] < target:
            note += "; the traditional policy cannot reach the LSTM policy's fill rate within 60 safety days"
        else:
            for _ in range(14):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if traditional(mid)["fill_rate"] < target else (lo, mid)
            rows_out.append({"policy": "traditional_matched", "safety_days": hi} | traditional(hi))
            note += (
                f"; traditional_matched = the traditional policy with the safety days ({hi:.2f}) that give "
                f"the LSTM policy's fill rate ({target:.3f}), found by bisection"
            )
    table = pl.DataFrame(rows_out).with_columns(pl.col("safety_days").cast(pl.Float64))
    return SimulationResult(table=table, start=start, end=end, note=note)
