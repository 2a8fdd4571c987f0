"""Replenishment: order quantities from forecast quantiles, and a replay of two stocking policies.

Policy: periodic review every ``R = review_period_days`` with a reorder point ``s`` and an
order-up-to level ``S`` (an (R, s, S) policy), per SKU:

- lead time ``L`` (days): mean and standard deviation ``sd_L`` of ``received_date - order_date``
  over the SKU's received purchase orders (``raw.purchase_orders``, deduplicated on ``po_id``);
  SKUs with fewer than two receipts take the pooled coefficient of variation, SKUs with none
  ``marts.dim_products.mean_lead_time_days`` or the median over SKUs.
- protection period ``P = ceil(L) + R`` days: what an order placed now must cover until the order
  after it can arrive.
- expected demand ``mu_P = sum of the forecast mean over the first P days`` (the model's mean
  output; the sum of daily medians understates demand for slow movers, whose median day is 0).
- daily uncertainty from the quantile spread: ``sigma_d = (p90_d - p50_d) / z(0.9)`` (the upper
  quantile: stock-outs live in the right tail), ``sigma_P = sqrt(sum_d sigma_d^2 + (mu_P / P)^2 sd_L^2)``.
- safety stock ``SS = z(service_level) * sigma_P``; reorder point ``s = mu_P + SS``; order-up-to
  ``S = s + expected demand over one review period``.
- at a review, inventory position ``IP = on_hand + on_order``; order ``ceil(S - IP)`` when ``IP < s``.

The traditional policy the planners use: the mean of the last ``traditional_moving_average_days``
(28) days of units as the daily rate ``m``, ``SS = traditional_safety_days * m``, ``s = m * P + SS``,
``S = s + m * R``.

:func:`plan_replenishment` writes ``forecasts.replenishment_plan`` for a run date from the scored
``forecasts.demand_forecast``. :func:`simulate_policies` replays both policies over held-out history.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from pipelines.forecast.store import replace_partition
from pipelines.warehouse import connect_warehouse

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.forecast.train import TrainedForecaster

SCHEMA = "forecasts"
PLAN_TABLE = f"{SCHEMA}.replenishment_plan"
FORECAST_TABLE = f"{SCHEMA}.demand_forecast"
MAX_LEAD_DAYS = 90

PLAN_COLUMNS = {
    "run_date": "date",
    "sku_id": "bigint",
    "lead_time_days": "double",
    "lead_time_sd_days": "double",
    "review_period_days": "integer",
    "protection_days": "integer",
    "expected_demand": "double",
    "demand_sd": "double",
    "safety_stock": "double",
    "reorder_point": "double",
    "order_up_to": "double",
    "on_hand": "double",
    "on_order": "double",
    "inventory_position": "double",
    "order_quantity": "bigint",
    "service_level": "double",
    "model_version": "varchar",
    "planned_at": "timestamp",
}


class ReplenishmentError(RuntimeError):
    """Replenishment cannot be planned (the message says what is missing)."""


# ------------------------------------------------------------------------------------ the formulas


def _protection_days(lead_mean: np.ndarray, review_days: int) -> np.ndarray:
    return (np.ceil(np.clip(lead_mean, 0, MAX_LEAD_DAYS)) + review_days).astype(np.int64)


def _extend(daily: np.ndarray, days: int) -> np.ndarray:
    """Pad (S, D) daily values to ``days`` columns with each row's mean (forecasts past the horizon)."""
    if daily.shape[1] >= days:
        return daily[:, :days]
    fill = np.repeat(daily.mean(axis=1, keepdims=True), days - daily.shape[1], axis=1)
    return np.concatenate([daily, fill], axis=1)


def quantile_policy(
    mean_daily: np.ndarray,
    sigma_daily: np.ndarray,
    lead_mean: np.ndarray,
    lead_sd: np.ndarray,
    *,
    review_days: int,
    service_level: float,
) -> dict[str, np.ndarray]:
    """Safety stock, reorder point and order-up-to level from daily forecast means and spreads.

    Args:
        mean_daily: (S, D) expected units per day, from the first day after the decision.
        sigma_daily: (S, D) standard deviation of each day's units (from the quantile spread).
        lead_mean, lead_sd: (S,) lead time mean and standard deviation in days.
        review_days: Days between reviews.
        service_level: Target probability of no stock-out over a protection period.
    """
    z = NormalDist().inv_cdf(service_level)
    protection = _protection_days(lead_mean, review_days)
    horizon = int(protection.max()) + review_days
    mean = _extend(mean_daily, horizon)
    var = _extend(sigma_daily**2, horizon)
    days = np.arange(horizon)[None, :]
    in_p = days < protection[:, None]
    in_next = (days >= protection[:, None]) & (days < protection[:, None] + review_days)
    mu_p = (mean * in_p).sum(axis=1)
    rate = mu_p / protection
    sigma_p = np.sqrt((var * in_p).sum(axis=1) + (rate * lead_sd) ** 2)
    safety = z * sigma_p
    reorder = mu_p + safety
    return {
        "protection_days": protection,
        "expected_demand": mu_p,
        "demand_sd": sigma_p,
        "safety_stock": safety,
        "reorder_point": reorder,
        "order_up_to": reorder + (mean * in_next).sum(axis=1),
    }


def traditional_policy(
    rate: np.ndarray, lead_mean: np.ndarray, *, review_days: int, safety_days: float
) -> dict[str, np.ndarray]:
    """The planners' rule: moving-average rate ``m``, ``SS = safety_days * m``, ``s = m * P + SS``."""
    protection = _protection_days(lead_mean, review_days)
    safety = safety_days * rate
    reorder = rate * protection + safety
    return {
        "protection_days": protection,
        "expected_demand": rate * protection,
        "demand_sd": np.full_like(rate, np.nan),
        "safety_stock": safety,
        "reorder_point": reorder,
        "order_up_to": reorder + rate * review_days,
    }


def sigma_from_quantiles(p50: np.ndarray, upper: np.ndarray, level: float) -> np.ndarray:
    """Standard deviation implied by the distance from the median to an upper quantile."""
    return np.clip(upper - p50, 0.0, None) / NormalDist().inv_cdf(level)


def order_quantity(levels: dict[str, np.ndarray], position: np.ndarray) -> np.ndarray:
    """Units to order at a review: up to S when the inventory position is below s, else 0."""
    need = np.where(position < levels["reorder_point"], levels["order_up_to"] - position, 0.0)
    return np.ceil(np.clip(need, 0.0, None) - 1e-9).astype(np.int64)


# ------------------------------------------------------------------------------------ warehouse I/O


def lead_times(con: Any, as_of: dt.date | None = None) -> pl.DataFrame:
    """Per SKU: ``lead_time_days`` (mean), ``lead_time_sd_days``, ``receipts``, ``lead_time_source``.

    From received purchase orders up to ``as_of`` in ``raw.purchase_orders`` (latest batch per
    ``po_id``); gaps filled as the module docstring says. Every SKU of ``marts.dim_products`` gets a row.
    """
    products = con.sql("select sku_id, mean_lead_time_days from marts.dim_products").pl()
    tables = {
        r[0]
        for r in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    }
    if "raw.purchase_orders" in tables:
        stats = con.sql(
            """
            with po as (
                select *, row_number() over (partition by po_id order by _batch_date desc) as rn
                from raw.purchase_orders
            )
            select
                sku_id,
                avg(received_date - order_date)::double as mean_days,
                stddev_samp(received_date - order_date)::double as sd_days,
                count(*) as receipts
            from po
            where rn = 1 and received_date is not null and received_date >= order_date
              and (? is null or received_date <= ?)
            group by sku_id
            """,
            params=[as_of, as_of],
        ).pl()
    else:
        stats = pl.DataFrame(
            schema={"sku_id": pl.Int64, "mean_days": pl.Float64, "sd_days": pl.Float64, "receipts": pl.Int64}
        )
    out = products.join(stats, on="sku_id", how="left").with_columns(pl.col("receipts").fill_null(0))
    cv = out.filter(pl.col("receipts") >= 2).select((pl.col("sd_days") / pl.col("mean_days")).median()).item()
    cv = 0.3 if cv is None or not math.isfinite(cv) else float(cv)
    median_mean = out.select(pl.coalesce("mean_days", "mean_lead_time_days").median()).item()
    median_mean = 7.0 if median_mean is None else float(median_mean)
    mean = pl.coalesce("mean_days", "mean_lead_time_days", pl.lit(median_mean))
    return out.select(
        "sku_id",
        mean.cast(pl.Float64).alias("lead_time_days"),
        pl.when(pl.col("receipts") >= 2)
        .then(pl.col("sd_days").fill_null(0.0))
        .otherwise(mean * cv)
        .cast(pl.Float64)
        .alias("lead_time_sd_days"),
        "receipts",
        pl.when(pl.col("receipts") > 0)
        .then(pl.lit("purchase_orders"))
        .when(pl.col("mean_lead_time_days").is_not_null())
        .then(pl.lit("dim_products"))
        .otherwise(pl.lit("median"))
        .alias("lead_time_source"),
    )


def _stock(con: Any, run_date: dt.date) -> pl.DataFrame:
    return con.sql(
        """
        select sku_id, sum(on_hand_units)::double as on_hand, sum(on_order_units)::double as on_order
        from marts.fct_inventory_daily where date = ? group by sku_id
        """,
        params=[run_date],
    ).pl()


def _daily(forecast: pl.DataFrame, start: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sku_ids, mean, p50, upper) as (S, D) daily arrays from ``start``.

    Weekly rows are spread over their 7 days: mean and median / 7, the upper quantile's distance
    from the median / sqrt(7) (so the 7 days' variances add back up to the week's).
    """
    dates = forecast["target_date"].unique().sort()
    step = (dates[1] - dates[0]).days if len(dates) > 1 else 1
    skus = forecast["sku_id"].unique().sort()
    upper_col = max(
        (c for c in forecast.columns if c.startswith("p") and c[1:].isdigit()), key=lambda c: int(c[1:])
    )
    wide = {}
    for col in ("mean", "p50", upper_col):
        pivot = (
            forecast.select("sku_id", "target_date", col)
            .pivot(on="target_date", index="sku_id", values=col, sort_columns=True)
            .sort("sku_id")
        )
        wide[col] = np.nan_to_num(pivot.drop("sku_id").to_numpy().astype(np.float64), nan=0.0)
    mean, p50, upper = wide["mean"], wide["p50"], wide[upper_col]
    if step > 1:
        spread = (upper - p50) / math.sqrt(step)
        mean, p50 = np.repeat(mean / step, step, axis=1), np.repeat(p50 / step, step, axis=1)
        upper = p50 + np.repeat(spread, step, axis=1)
    skip = max(0, (start - dates[0]).days)
    return skus.to_numpy(), mean[:, skip:], p50[:, skip:], upper[:, skip:]


@dataclass
class ReplenishmentResult:
    run_date: dt.date
    skus: int
    orders: int
    units_ordered: int
    table: str = PLAN_TABLE
    seconds: float = 0.0


def plan_replenishment(settings: Settings, run_date: dt.date) -> ReplenishmentResult:
    """Plan orders for ``run_date`` from its scored forecast into ``forecasts.replenishment_plan``.

    Raises:
        ReplenishmentError: No warehouse, or no forecast scored for ``run_date``.
    """

    started = time.perf_counter()
    if not settings.warehouse_path.is_file():
        raise ReplenishmentError(f"no warehouse at {settings.warehouse_path}")
    params = settings.replenishment
    con = connect_warehouse(settings.warehouse_path)
    try:
        has_forecast = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = 'demand_forecast'",
            [SCHEMA],
        ).fetchall()[0][0]
        forecast = (
            con.sql(f"select * from {FORECAST_TABLE} where run_date = ?", params=[run_date]).pl()
            if has_forecast
            else pl.DataFrame()
        )
        if forecast.is_empty():
            raise ReplenishmentError(
                f"no forecast for {run_date} in {FORECAST_TABLE}: run the scoring step for that date first"
            )
        skus, mean, p50, upper = _daily(forecast, run_date + dt.timedelta(days=1))
        level = _upper_level(forecast)
        frame = pl.DataFrame({"sku_id": skus}).join(lead_times(con, run_date), on="sku_id", how="left")
        frame = frame.join(_stock(con, run_date), on="sku_id", how="left").with_columns(
            pl.col("on_hand").fill_null(0.0), pl.col("on_order").fill_null(0.0)
        )
        lead = frame["lead_time_days"].fill_null(frame["lead_time_days"].median() or 7.0).to_numpy()
        lead_sd = frame["lead_time_sd_days"].fill_null(0.0).to_numpy()
        levels = quantile_policy(
            mean,
            sigma_from_quantiles(p50, upper, level),
            lead,
            lead_sd,
            review_days=params.review_period_days,
            service_level=params.service_level,
        )
        position = (frame["on_hand"] + frame["on_order"]).to_numpy()
        qty = order_quantity(levels, position)
        version = forecast["model_version"][0] if "model_version" in forecast.columns else None
        plan = pl.DataFrame(
            {
                "run_date": pl.Series([run_date] * len(skus), dtype=pl.Date),
                "sku_id": skus,
                "lead_time_days": lead,
                "lead_time_sd_days": lead_sd,
                "review_period_days": np.full(len(skus), params.review_period_days, np.int32),
                "protection_days": levels["protection_days"].astype(np.int32),
                "expected_demand": levels["expected_demand"],
                "demand_sd": levels["demand_sd"],
                "safety_stock": levels["safety_stock"],
                "reorder_point": levels["reorder_point"],
                "order_up_to": levels["order_up_to"],
                "on_hand": frame["on_hand"].to_numpy(),
                "on_order": frame["on_order"].to_numpy(),
                "inventory_position": position,
                "order_quantity": qty,
                "service_level": np.full(len(skus), params.service_level),
                "model_version": [str(version) if version is not None else None] * len(skus),
                "planned_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)] * len(skus),
            }
        )
        replace_partition(con, PLAN_TABLE, PLAN_COLUMNS, plan, run_date)
    finally:
        con.close()
    return ReplenishmentResult(
        run_date=run_date,
        skus=len(skus),
        orders=int((qty > 0).sum()),
        units_ordered=int(qty.sum()),
        seconds=time.perf_counter() - started,
    )


def _upper_level(forecast: pl.DataFrame) -> float:
    levels = [int(c[1:]) for c in forecast.columns if c.startswith("p") and c[1:].isdigit()]
    upper = max(levels) if levels else 90
    if upper <= 50:
        raise ReplenishmentError("the forecast has no quantile above the median to size safety stock from")
    return upper / 100


# ----------------------------------------------------------------------------------- the simulation


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

    con = connect_warehouse(settings.warehouse_path)
    try:
        leads_frame = lead_times(con, start - dt.timedelta(days=1))
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
    lead_mean = base["lead_time_days"].fill_null(7.0).to_numpy()
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
