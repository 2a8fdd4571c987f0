"""Batch forecasts for a run date: what the forecasting family hands the shared scoring layer.

:func:`forecast_active_skus` forecasts every active SKU from the run date; the layer
(:func:`pipelines.ml.scoring.score_family`) stamps the rows with the model version and writes
``forecasts.demand_forecast``: one row per run date, SKU and target period, ``run_date, sku_id,
target_date, p10, p50, p90, mean, model_name, model_version, scored_at`` (for a weekly model
``target_date`` is the week's Monday and values are weekly).

Active SKUs: a row with units in ``marts.mart_demand_features`` in the ``forecast.active_days``
days up to the run date (so launched and recently seen). Inputs: each SKU's lookback of features,
plus for the horizon the calendar from ``marts.dim_dates`` and any planned prices and promotions
``marts.fct_prices_daily`` already holds for those days; prices without a plan are carried
forward and no promotion assumed. SKUs are scored in chunks (``chunk_skus``), each read, forecast
in large batches with ``forecast.score_threads`` torch threads, and collected before the write.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.forecast.features import (
    MART,
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT_COLUMNS,
    normalise_types,
    period_days,
)
from pipelines.forecast.train import quantile_columns
from pipelines.ml.scoring import ScoringError

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.forecast.serving import Forecaster

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


def _read_chunk(con: Any, skus: list[int], start: dt.date, run_date: dt.date, end: dt.date) -> pl.DataFrame:
    """History rows ``start .. run_date`` and horizon rows ``run_date+1 .. end`` for ``skus``."""
    mart_cols = _columns(con, "marts", MART)
    wanted = [
        c for c in dict.fromkeys((*REQUIRED_COLUMNS, *NUMERIC_COLUMNS, *TEXT_COLUMNS)) if c in mart_cols
    ]
    con.register("_score_skus", pl.DataFrame({"sku_id": skus}, schema={"sku_id": pl.Int64}).to_arrow())
    try:
        history = con.sql(
            f"select {', '.join(wanted)} from marts.{MART} "
            "where sku_id in (select sku_id from _score_skus) and date between ? and ?",
            params=[start, run_date],
        ).pl()
        dates_cols = [c for c in _CALENDAR if c in _columns(con, "marts", "dim_dates")]
        price_cols = [c for c in _PLANNED if c in _columns(con, "marts", "fct_prices_daily")]
        select = ", ".join(
            ["s.sku_id", "d.date", *(f"d.{c}" for c in dates_cols), *(f"p.{c}" for c in price_cols)]
        )
        prices = "left join marts.fct_prices_daily p on p.sku_id = s.sku_id and p.date = d.date"
        future = con.sql(
            f"""
            select {select}
            from _score_skus s
            cross join marts.dim_dates d
            {prices if price_cols else ""}
            where d.date > ? and d.date <= ?
            """,
            params=[run_date, end],
        ).pl()
    finally:
        con.unregister("_score_skus")
    history = normalise_types(history)
    return pl.concat([history, future], how="diagonal_relaxed")


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
        ScoringError: No active SKU for the date, or a model without the output's quantiles.
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
    parts = []
    for i in range(0, len(skus), chunk_skus):
        frame = _read_chunk(con, skus[i : i + chunk_skus], start, run_date, end)
        parts.append(
            forecaster.predict(
                frame,
                origin=run_date,
                horizon=horizon,
                batch_size=batch_size,
                threads=settings.forecast.score_threads,
            )
        )
    return pl.concat(parts).select("sku_id", "target_date", *OUTPUT_QUANTILES, "mean")
