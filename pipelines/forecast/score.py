"""Batch forecasts for a run date: what the forecasting family hands the shared scoring layer.

:func:`forecast_active_skus` forecasts every active SKU from the run date; the layer
(:func:`pipelines.ml.scoring.score_family`) stamps the rows with the model version and writes
``forecasts.demand_forecast``: one row per run date, SKU and target period, ``run_date, sku_id,
target_date, p10, p50, p90, mean, model_name, model_version, scored_at`` (for a weekly model
``target_date`` is the week's first day, ``land.week_start``, and values are weekly).

Active SKUs: a row with units in ``marts.mart_demand_features`` in the ``forecast.active_days``
days up to the run date (so launched and recently seen). Inputs: each SKU's lookback of features,
plus for the horizon the calendar from ``marts.dim_dates`` and the known-future prices and
promotions: the plans in ``marts.mart_demand_plans`` first, else what ``marts.fct_prices_daily``
holds for those days; without either, prices are carried forward and no promotion is assumed
(logged). SKUs are scored in chunks (``chunk_skus``), each read, forecast in large batches with
``forecast.score_threads`` torch threads, and collected before the write.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.forecast.features import (
    MART,
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT_COLUMNS,
    ForecastDataError,
    normalise_types,
    origin_period,
    period_days,
    row_weekday,
)
from pipelines.forecast.train import quantile_columns
from pipelines.ml.scoring import ScoringError

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.forecast.serving import Forecaster

logger = logging.getLogger(__name__)

PLANS = "mart_demand_plans"
# What the output table keeps of the forecast (the quantile levels must include these).
OUTPUT_QUANTILES = ("p10", "p50", "p90")
_CALENDAR = (
    "shopping_event",
    "event_phase",
    "days_to_event_peak",
    "is_public_holiday",
    "days_to_spring_festival",
    "days_from_spring_festival",
)
_PLANNED = (
    "shelf_price",
    "effective_price",
    "is_promo",
    "discount_pct",
    "promo_day_number",
    "competitor_gap_pct",
)
# What marts.mart_demand_plans holds for the periods after the last sales period.
_PLAN_COLUMNS = ("shelf_price", "effective_price", "is_promo", "discount_pct", "promo_day_number")


def _columns(con: Any, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def active_skus(con: Any, run_date: dt.date, days: int) -> list[int]:
    """SKUs with a row with units in the ``days`` days up to ``run_date``."""
    rows = con.execute(
        f"select distinct sku_id from marts.{MART} "
        "where date > ? and date <= ? and units is not null order by 1",
        [run_date - dt.timedelta(days=days), run_date],
    ).fetchall()
    return [r[0] for r in rows]


def _read_chunk(
    con: Any, skus: list[int], start: dt.date, run_date: dt.date, end: dt.date, week_start: int
) -> tuple[pl.DataFrame, int]:
    """History rows ``start .. run_date`` and horizon rows up to ``end`` for ``skus``.

    Horizon rows are one per SKU and day after the last period of history (after ``run_date`` for
    daily rows, after the last week known on ``run_date`` for weekly rows) with the calendar of
    ``marts.dim_dates`` and the planned prices and promotions (``marts.mart_demand_plans`` over
    ``marts.fct_prices_daily``). Any of those tables may be absent.

    Returns:
        The rows, and how many of ``skus`` have a plan row in the horizon.
    """
    mart_cols = _columns(con, "marts", MART)
    wanted = [
        c for c in dict.fromkeys((*REQUIRED_COLUMNS, *NUMERIC_COLUMNS, *TEXT_COLUMNS)) if c in mart_cols
    ]
    con.register("_score_skus", pl.DataFrame({"sku_id": skus}, schema={"sku_id": pl.Int64}).to_arrow())
    try:
        history = normalise_types(
            con.sql(
                f"select {', '.join(wanted)} from marts.{MART} "
                "where sku_id in (select sku_id from _score_skus) and date between ? and ?",
                params=[start, run_date],
            ).pl()
        )
        if row_weekday(history) is not None:  # weekly rows: the horizon starts after the last week
            first = origin_period(history, run_date, "weekly", week_start) + dt.timedelta(days=7)
        else:
            first = run_date + dt.timedelta(days=1)
        days = pl.date_range(first, max(first, end), "1d", eager=True).alias("date")
        con.register("_score_dates", days.to_frame().to_arrow())
        calendar = [c for c in _CALENDAR if c in _columns(con, "marts", "dim_dates")]
        prices = [c for c in _PLANNED if c in _columns(con, "marts", "fct_prices_daily")]
        plans = [c for c in _PLAN_COLUMNS if c in _columns(con, "marts", PLANS)]
        columns = ["s.sku_id", "d.date", *(f"c.{c}" for c in calendar)]
        for c in dict.fromkeys((*prices, *plans)):
            sources = [f"n.{c}"] * (c in plans) + [f"p.{c}"] * (c in prices)
            columns.append(f"coalesce({', '.join(sources)}) as {c}")
        joins = [
            "left join marts.dim_dates c on c.date = d.date" if calendar else "",
            "left join marts.fct_prices_daily p on p.sku_id = s.sku_id and p.date = d.date" if prices else "",
            f"left join marts.{PLANS} n on n.sku_id = s.sku_id and n.date = d.date" if plans else "",
        ]
        has_plan = "n.sku_id is not null" if plans else "false"
        future = con.sql(
            f"select {', '.join(columns)}, {has_plan} as _planned "
            f"from _score_skus s cross join _score_dates d {' '.join(joins)}"
        ).pl()
    finally:
        con.unregister("_score_skus")
        con.unregister("_score_dates")
    planned = future.filter(pl.col("_planned"))["sku_id"].n_unique()
    return pl.concat([history, future.drop("_planned")], how="diagonal_relaxed"), planned


def plans_note(con: Any, run_date: dt.date) -> str:
    """One line on the known future scoring read: how many SKUs have plans after ``run_date``."""
    if not {"sku_id", "date"} <= _columns(con, "marts", PLANS):
        return (
            f"no marts.{PLANS} in the warehouse: prices carried forward, no promotion assumed "
            f"(land planned prices and promotions, and rebuild the marts, to use them)"
        )
    skus, periods = con.execute(
        f"select count(distinct sku_id), count(distinct date) from marts.{PLANS} where date > ?", [run_date]
    ).fetchall()[0]
    if not skus:
        return f"no plan after {run_date} in marts.{PLANS}: prices carried forward, no promotion assumed"
    return f"planned prices and promotions from marts.{PLANS}: {skus:,} SKUs, {periods:,} periods"


def forecast_active_skus(
    settings: Settings,
    forecaster: Forecaster,
    run_date: dt.date,
    con: Any,
    *,
    horizon: int | None = None,
    chunk_skus: int = 10_000,
    batch_size: int = 8192,
) -> pl.DataFrame:
    """Forecast ``horizon`` periods from ``run_date + 1`` for every active SKU.

    Args:
        settings: Configuration (``forecast.active_days``, ``forecast.score_threads``).
        forecaster: The fitted model.
        run_date: Last day of data; forecasts start the day after.
        con: A warehouse connection with the published marts.
        horizon: Periods to forecast (default: the model's horizon).
        chunk_skus: SKUs read and forecast at a time (bounds memory).
        batch_size: Windows per forward pass.

    Returns:
        ``sku_id, target_date, p10, p50, p90, mean``.

    Raises:
        ScoringError: No active SKU for the date, a model without the output's quantiles, or
            features the model cannot read (the message says which).
    """
    horizon = horizon or forecaster.horizon
    missing = [q for q in OUTPUT_QUANTILES if q not in quantile_columns(forecaster.quantiles)]
    if missing:
        raise ScoringError(
            f"the model forecasts quantiles {list(forecaster.quantiles)}; the forecast table needs "
            f"{list(OUTPUT_QUANTILES)}: keep 0.1, 0.5 and 0.9 in forecast.quantiles"
        )
    step = period_days(forecaster.grain)  # type: ignore[arg-type]
    start = run_date - dt.timedelta(days=step * (forecaster.lookback + 1))
    end = run_date + dt.timedelta(days=step * (horizon + 1))
    days = settings.forecast.active_days
    skus = active_skus(con, run_date, days)
    if not skus:
        raise ScoringError(f"no active SKU on {run_date}: no units in marts.{MART} in the {days} days before")
    parts, planned = [], 0
    for i in range(0, len(skus), chunk_skus):
        frame, with_plans = _read_chunk(
            con, skus[i : i + chunk_skus], start, run_date, end, forecaster.week_start
        )
        planned += with_plans
        try:
            forecast = forecaster.predict(
                frame,
                origin=run_date,
                horizon=horizon,
                batch_size=batch_size,
                threads=settings.forecast.score_threads,
            )
        except ForecastDataError as exc:  # the data, not the code: a message, not a traceback
            raise ScoringError(f"cannot score {run_date}: {exc}") from exc
        parts.append(forecast)
    if planned:
        logger.info("planned prices or promotions from marts.%s for %d of %d SKUs", PLANS, planned, len(skus))
    else:
        logger.warning(
            "no planned prices or promotions in marts.%s for the horizon after %s: prices are carried "
            "forward (unless marts.fct_prices_daily holds them) and no promotion is assumed",
            PLANS,
            run_date,
        )
    return pl.concat(parts).select("sku_id", "target_date", *OUTPUT_QUANTILES, "mean")
