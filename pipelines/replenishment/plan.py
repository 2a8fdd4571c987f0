"""The day's replenishment plan: forecast, lead times and stock in, ``forecasts.replenishment_plan`` out."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from pipelines.capabilities import capability_status, table_rows
from pipelines.ml.store import replace_partition
from pipelines.replenishment.policy import order_quantity, quantile_policy, sigma_from_quantiles
from pipelines.warehouse import connect_warehouse

if TYPE_CHECKING:
    from pipelines.config import Settings

SCHEMA = "forecasts"
PLAN_TABLE = f"{SCHEMA}.replenishment_plan"
FORECAST_TABLE = f"{SCHEMA}.demand_forecast"

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


def lead_times(con: Any, as_of: dt.date | None = None, *, fallback_days: float = 7.0) -> pl.DataFrame:
    """Per SKU: ``lead_time_days`` (mean), ``lead_time_sd_days``, ``receipts``, ``lead_time_source``.

    From received purchase orders up to ``as_of`` in ``raw.purchase_orders`` (latest batch per
    ``po_id``); gaps filled as the package docstring says, and with ``fallback_days``
    (``replenishment.lead_time_fallback_days``) when no SKU has a lead time at all. Every SKU of
    ``marts.dim_products`` gets a row.
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
    median_mean = fallback_days if median_mean is None else float(median_mean)
    mean = pl.coalesce("mean_days", "mean_lead_time_days", pl.lit(median_mean))
    # DuckDB's parallel aggregates differ in the last bits from run to run: rounded, a rerun plans
    # the same rows.
    return out.select(
        "sku_id",
        mean.cast(pl.Float64).round(9).alias("lead_time_days"),
        pl.when(pl.col("receipts") >= 2)
        .then(pl.col("sd_days").fill_null(0.0))
        .otherwise(mean * cv)
        .cast(pl.Float64)
        .round(9)
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


def align_to_skus(skus: np.ndarray, *frames: pl.DataFrame) -> pl.DataFrame:
    """One row per SKU of ``skus``, in that order, with the columns of each frame (by ``sku_id``).

    The policy's arrays are positional (row i is ``skus[i]``), so the order is kept explicitly
    rather than left to the join, and checked.
    """
    out = pl.DataFrame({"sku_id": skus})
    for frame in frames:
        out = out.join(frame, on="sku_id", how="left", maintain_order="left")
    if out.height != len(skus) or not (out["sku_id"].to_numpy() == skus).all():
        raise ReplenishmentError("lead times or stock repeat a SKU: cannot align them with the forecast")
    return out


@dataclass
class ReplenishmentResult:
    run_date: dt.date
    skus: int
    orders: int
    units_ordered: int
    table: str = PLAN_TABLE
    seconds: float = 0.0
    skipped: str | None = None  # why nothing was planned (a capability the data does not have)


def plan_replenishment(settings: Settings, run_date: dt.date) -> ReplenishmentResult:
    """Plan orders for ``run_date`` from its scored forecast into ``forecasts.replenishment_plan``.

    Raises:
        ReplenishmentError: No warehouse, or no forecast scored for ``run_date``.
    """

    started = time.perf_counter()
    if not settings.warehouse_path.is_file():
        raise ReplenishmentError(f"no warehouse at {settings.warehouse_path}")
    params = settings.replenishment
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
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
        stock = capability_status(table_rows(con))["inventory"]
        if not stock.on:
            # Without stock on hand every SKU would look empty and be ordered up to its level.
            return ReplenishmentResult(
                run_date, 0, 0, 0, skipped=f"no inventory snapshots in the warehouse: {stock.fix}"
            )
        skus, mean, p50, upper = _daily(forecast, run_date + dt.timedelta(days=1))
        level = _upper_level(forecast)
        fallback = params.lead_time_fallback_days
        frame = align_to_skus(skus, lead_times(con, run_date, fallback_days=fallback), _stock(con, run_date))
        frame = frame.with_columns(pl.col("on_hand").fill_null(0.0), pl.col("on_order").fill_null(0.0))
        lead = frame["lead_time_days"].fill_null(frame["lead_time_days"].median() or fallback).to_numpy()
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
