"""Batch scoring: forecast every active SKU with the ``@champion`` model into the warehouse.

``forecasts.demand_forecast`` holds one row per run date, SKU and target period: ``run_date,
sku_id, target_date, p10, p50, p90, mean, model_version, scored_at`` (quantile columns follow the
model's levels; for a weekly model ``target_date`` is the week's Monday and values are weekly).
A run date's rows are replaced in one transaction (delete, then insert): scoring a date twice leaves
the same rows (only ``scored_at`` moves).

Active SKUs: a row with units in ``marts.mart_demand_features`` in the 56 days up to the run date
(so launched and recently seen). Inputs: each SKU's lookback of features, plus for the horizon the
calendar from ``marts.dim_dates`` and any planned prices and promotions ``marts.fct_prices_daily``
already holds for those days; prices without a plan are carried forward and no promotion assumed.
SKUs are scored in chunks (``chunk_skus``), each read, forecast under ``torch.inference_mode`` in
large batches with ``forecast.score_threads`` torch threads, and collected before the single write.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.forecast.data import (
    MART,
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT_COLUMNS,
    normalise_types,
    period_days,
)
from pipelines.forecast.serving import MODEL_NAME, unwrap
from pipelines.forecast.store import replace_partition
from pipelines.forecast.train import TrainedForecaster, quantile_columns
from pipelines.warehouse import connect_warehouse

if TYPE_CHECKING:
    from pipelines.config import Settings

FORECAST_TABLE = "forecasts.demand_forecast"
ACTIVE_DAYS = 56
_CALENDAR = (
    "event_name",
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


class ScoringError(RuntimeError):
    """Scoring cannot run (the message says what is missing)."""


@dataclass
class ScoreResult:
    """What a scoring run wrote."""

    run_date: dt.date
    rows: int
    skus: int
    horizon: int
    model_version: str
    seconds: float
    table: str = FORECAST_TABLE

    def summary(self) -> str:
        rate = self.skus / self.seconds if self.seconds else 0.0
        return (
            f"scored {self.skus:,} SKUs x {self.horizon} periods = {self.rows:,} rows into {self.table} for "
            f"{self.run_date} with {MODEL_NAME} v{self.model_version} in {self.seconds:.1f}s "
            f"({rate:,.0f} SKUs/s)"
        )


def _champion(settings: Settings) -> tuple[TrainedForecaster, str]:
    from pipelines.registry import CHAMPION, load_champion, tracking

    model = load_champion(settings, MODEL_NAME, "pyfunc")
    version = tracking(settings).get_model_version_by_alias(MODEL_NAME, CHAMPION).version
    return unwrap(model), str(version)


def _columns(con: Any, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def active_skus(con: Any, run_date: dt.date, days: int = ACTIVE_DAYS) -> list[int]:
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


def score_forecast(
    settings: Settings,
    run_date: dt.date,
    horizon: int | None = None,
    *,
    forecaster: TrainedForecaster | None = None,
    model_version: str | None = None,
    chunk_skus: int = 10_000,
    batch_size: int = 8192,
) -> ScoreResult:
    """Forecast ``horizon`` periods from ``run_date + 1`` for every active SKU; replace the run date's rows.

    Args:
        settings: Configuration, warehouse and MLflow store.
        run_date: Last day of data; forecasts start the day after.
        horizon: Periods to forecast (default: the model's horizon, 28).
        forecaster: A model to use instead of ``models:/demand_forecaster@champion`` (tests).
        model_version: Recorded with the rows (default: the champion's version).
        chunk_skus: SKUs read and forecast at a time (bounds memory).
        batch_size: Windows per forward pass.

    Raises:
        ScoringError: No warehouse or no active SKU for the date.
        pipelines.registry.NoChampionError: No champion model yet.
    """

    started = time.perf_counter()
    if not settings.warehouse_path.is_file():
        raise ScoringError(f"no warehouse at {settings.warehouse_path}: build and publish the marts first")
    if forecaster is None:
        forecaster, version = _champion(settings)
        model_version = model_version or version
    horizon = horizon or forecaster.horizon
    step = period_days(forecaster.grain)  # type: ignore[arg-type]
    start = run_date - dt.timedelta(days=step * (forecaster.stats.lookback + 1))
    end = run_date + dt.timedelta(days=step * (horizon + 1))
    qcols = quantile_columns(forecaster.quantiles)
    columns = {"run_date": "date", "sku_id": "bigint", "target_date": "date"}
    columns |= {c: "double" for c in (*qcols, "mean")} | {
        "model_version": "varchar",
        "scored_at": "timestamp",
    }
    con = connect_warehouse(settings.warehouse_path)
    try:
        skus = active_skus(con, run_date)
        if not skus:
            raise ScoringError(
                f"no active SKU on {run_date}: no units in marts.{MART} in the {ACTIVE_DAYS} days before"
            )
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
        forecast = pl.concat(parts)
        scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = forecast.select(
            pl.lit(run_date).alias("run_date"),
            "sku_id",
            "target_date",
            *qcols,
            "mean",
            pl.lit(str(model_version or "unregistered")).alias("model_version"),
            pl.lit(scored_at).alias("scored_at"),
        )
        replace_partition(con, FORECAST_TABLE, columns, rows, run_date)
    finally:
        con.close()
    return ScoreResult(
        run_date=run_date,
        rows=rows.height,
        skus=rows["sku_id"].n_unique(),
        horizon=horizon,
        model_version=str(model_version or "unregistered"),
        seconds=time.perf_counter() - started,
    )
