"""A tiny warehouse with model outputs: ``forecasts.*`` as scoring writes them, and the two marts the
forecasting marts read (``build_marts.dim_products``, ``build_marts.mart_demand_features``).

Actual units and forecast errors are simple functions of the SKU and day, so a test can work out
the accuracy it expects from the same functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

LAST_DAY = dt.date(2024, 11, 15)  # the last day with actual units
HORIZON = 28
SKUS = (1, 2, 3, 4, 5, 6)
HISTORY_DAYS = 60  # days of actual units up to LAST_DAY
BAND = 3.0  # p10 = p50 - BAND, p90 = p50 + BAND

FORECAST_COLUMNS = (
    "run_date date, sku_id bigint, target_date date, p10 double, p50 double, p90 double, mean double, "
    "model_name varchar, model_version varchar, scored_at timestamp"
)
PLAN_COLUMNS = (
    "run_date date, sku_id bigint, lead_time_days double, lead_time_sd_days double, "
    "review_period_days integer, protection_days integer, expected_demand double, demand_sd double, "
    "safety_stock double, reorder_point double, order_up_to double, on_hand double, on_order double, "
    "inventory_position double, order_quantity bigint, service_level double, model_version varchar, "
    "planned_at timestamp"
)


def actual_units(sku: int, day: dt.date) -> int:
    """Units SKU ``sku`` sold on ``day`` (every day up to LAST_DAY)."""
    return sku + day.day % 4


def no_error(_sku: int, _day: dt.date) -> float:
    return 0.0


def run_dates(n: int = 21, last: dt.date = LAST_DAY) -> list[dt.date]:
    """``n`` consecutive daily run dates ending on ``last``."""
    return [last - dt.timedelta(days=n - 1 - i) for i in range(n)]


def order_quantity(sku: int, run_date: dt.date) -> int:
    return (sku * 7 + run_date.day) % 30 if sku % 3 else 0


def write_input_marts(con: duckdb.DuckDBPyConnection, skus: Sequence[int] = SKUS) -> None:
    """``build_marts.dim_products`` and ``build_marts.mart_demand_features`` for ``skus``."""
    con.execute("create schema if not exists build_marts")
    con.execute(
        """create or replace table build_marts.dim_products as
        select sku_id, 'SKU-' || sku_id as sku_code, 'SKU <' || sku_id || '>' as sku_name,
            case when sku_id % 2 = 0 then 'home' else 'beauty' end as category_l1,
            'leaf' as category_l2, 'Acme' as brand, 1 as warehouse_id, 7 as supplier_id,
            cast(2.5 * sku_id as double) as unit_cost
        from unnest(?) as t(sku_id)""",
        [list(skus)],
    )
    days = [LAST_DAY - dt.timedelta(days=i) for i in range(HISTORY_DAYS)]
    con.execute(
        "create or replace table build_marts.mart_demand_features (date date, sku_id bigint, units bigint)"
    )
    con.executemany(
        "insert into build_marts.mart_demand_features values (?, ?, ?)",
        [(day, sku, actual_units(sku, day)) for day in days for sku in skus],
    )


def write_forecasts(
    con: duckdb.DuckDBPyConnection,
    dates: Sequence[dt.date],
    *,
    skus: Sequence[int] = SKUS,
    error: Callable[[int, dt.date], float] = no_error,
    model_version: str = "1",
    with_model_name: bool = True,
) -> None:
    """``forecasts.demand_forecast`` for ``dates``: p50 = actual + error (the actual pattern continued
    past LAST_DAY), a band of +-BAND around it; each run date's rows replaced as scoring does."""
    columns = FORECAST_COLUMNS if with_model_name else FORECAST_COLUMNS.replace("model_name varchar, ", "")
    con.execute("create schema if not exists forecasts")
    con.execute(f"create table if not exists forecasts.demand_forecast ({columns})")
    rows = []
    for run_date in dates:
        for sku in skus:
            for h in range(1, HORIZON + 1):
                target = run_date + dt.timedelta(days=h)
                p50 = actual_units(sku, target) + error(sku, target)
                named = ("demand_forecaster",) if with_model_name else ()
                rows.append(
                    (run_date, sku, target, p50 - BAND, p50, p50 + BAND, p50, *named, model_version,
                     dt.datetime(2024, 11, 16, 3))
                )  # fmt: skip
    con.executemany("delete from forecasts.demand_forecast where run_date = ?", [(d,) for d in dates])
    con.executemany(f"insert into forecasts.demand_forecast values ({', '.join('?' * len(rows[0]))})", rows)


def write_plans(con: duckdb.DuckDBPyConnection, dates: Sequence[dt.date], skus: Sequence[int] = SKUS) -> None:
    """``forecasts.replenishment_plan`` for ``dates`` (without model_name, as written before it)."""
    con.execute("create schema if not exists forecasts")
    con.execute(f"create table if not exists forecasts.replenishment_plan ({PLAN_COLUMNS})")
    con.executemany("delete from forecasts.replenishment_plan where run_date = ?", [(d,) for d in dates])
    con.executemany(
        "insert into forecasts.replenishment_plan values "
        "(?, ?, 5.0, 1.0, 7, 12, ?, 4.0, 6.6, ?, ?, 20.0, 0.0, 20.0, ?, 0.95, '1', ?)",
        [
            (d, sku, 12.0 * sku, 12.0 * sku + 6.6, 19.0 * sku + 6.6, order_quantity(sku, d),
             dt.datetime(2024, 11, 16, 3))
            for d in dates
            for sku in skus
        ],
    )  # fmt: skip


def make_model_output_warehouse(
    path: Path, dates: Sequence[dt.date] | None = None, **forecast_options
) -> None:
    """The input marts, forecasts for ``dates`` (default: run_dates()) and plans for the last of them."""
    dates = list(dates or run_dates())
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        write_input_marts(con)
        write_forecasts(con, dates, **forecast_options)
        write_plans(con, dates[-3:])
