"""The forecasting dataset: ``marts.mart_demand_features`` read from the warehouse (the one read).

The pipeline from the mart to tensors: :func:`load_demand_features` (here) reads the mart, one row
per SKU per day, into polars; :mod:`~pipelines.forecast.features` types and prepares the columns;
:mod:`~pipelines.forecast.panel` lays them on a SKU x period grid and cuts scaled windows;
:mod:`~pipelines.forecast.datamodule` feeds them to Lightning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.forecast.features import (
    MART,
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT_COLUMNS,
    ForecastDataError,
    normalise_types,
)
from pipelines.warehouse import connect_warehouse

if TYPE_CHECKING:
    from pipelines.config import Settings


def load_demand_features(
    settings: Settings,
    *,
    schema: str = "marts",
    start: dt.date | None = None,
    end: dt.date | None = None,
    sku_ids: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Read ``<schema>.mart_demand_features`` from the warehouse (rows ``start`` .. ``end``, inclusive).

    One connection with DuckDB's default configuration, closed before returning: another part of the
    process may hold the file open read-write, and DuckDB refuses a second connection to the same
    file with a different configuration (``read_only=True``).

    Raises:
        ForecastDataError: No warehouse, no such table, or no rows in the range.
    """
    con = _open_mart(settings, schema)
    try:
        available = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [schema, MART],
            ).fetchall()
        }
        wanted = [c for c in (*REQUIRED_COLUMNS, *NUMERIC_COLUMNS, *TEXT_COLUMNS) if c in available]
        wanted = list(dict.fromkeys(wanted))
        where, params = [], []
        if start is not None:
            where.append("date >= ?")
            params.append(start)
        if end is not None:
            where.append("date <= ?")
            params.append(end)
        if sku_ids is not None:
            con.register(
                "_forecast_skus", pl.DataFrame({"sku_id": list(sku_ids)}, schema={"sku_id": pl.Int64})
            )
            where.append("sku_id in (select sku_id from _forecast_skus)")
        sql = f"select {', '.join(_quote(c) for c in wanted)} from {schema}.{MART}"
        if where:
            sql += " where " + " and ".join(where)
        frame = normalise_types(con.sql(sql, params=params or None).pl())
    finally:
        con.close()
    if frame.is_empty():
        raise ForecastDataError(
            f"{schema}.{MART} has no rows between {start or 'the start'} and {end or 'the end'}"
        )
    return frame


def _open_mart(settings: Settings, schema: str) -> Any:
    """A connection to the warehouse, once it is known to hold ``<schema>.mart_demand_features``.

    Raises:
        ForecastDataError: No warehouse file, or no such table in it.
    """

    path = settings.warehouse_path
    if not path.is_file():
        raise ForecastDataError(f"no warehouse at {path}: build and publish the marts first")
    con = connect_warehouse(path, settings.warehouse.memory_limit)
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, MART],
    ).fetchall()[0][0]
    if not found:
        con.close()
        raise ForecastDataError(f"{schema}.{MART} does not exist in {path}: run dbt and publish")
    return con


def last_data_day(settings: Settings, *, schema: str = "marts") -> dt.date:
    """The last day with units in ``<schema>.mart_demand_features``: the default run date.

    Raises:
        ForecastDataError: No warehouse, no such table, or no row with units.
    """
    with _open_mart(settings, schema) as con:
        day = con.execute(f"select max(date) from {schema}.{MART} where units is not null").fetchall()[0][0]
    if day is None:
        raise ForecastDataError(f"{schema}.{MART} has no row with units")
    return day


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
