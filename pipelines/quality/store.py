"""The warehouse tables quality writes: ``raw.<table>``, ``quarantine.rejected_rows``,
``quality.validation_results`` (schemas as in docs/warehouse.md)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from pipelines.data.contract import Table
from pipelines.quality.engine import Outcome, jsonable

__all__ = [
    "BATCH_COLUMNS",
    "QUARANTINE_SCHEMA",
    "create_quality_tables",
    "create_quarantine_table",
    "create_raw_table",
    "insert_frame",
    "insert_validation_results",
    "quote",
    "table_exists",
    "utc_now",
]

BATCH_COLUMNS = {"_batch_date": "DATE", "_batch_id": "VARCHAR", "_loaded_at": "TIMESTAMP"}

_DUCKDB_TYPES = {
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE",
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Boolean: "BOOLEAN",
}

QUARANTINE_SCHEMA: dict[str, Any] = {
    "run_id": pl.String,
    "batch_date": pl.Date,
    "table_name": pl.String,
    "rule": pl.String,
    "severity": pl.String,
    "reason": pl.String,
    "row_number": pl.Int64,
    "row_key": pl.String,
    "row_json": pl.String,
    "quarantined_at": pl.Datetime("us"),
}

_QUARANTINE_DDL = """
create table if not exists {name} (
    run_id varchar, batch_date date, table_name varchar, rule varchar, severity varchar,
    reason varchar, row_number bigint, row_key varchar, row_json varchar, quarantined_at timestamp
)"""

_RESULTS_DDL = """
create table if not exists quality.validation_results (
    run_id varchar, run_date date, stage varchar, table_name varchar, expectation varchar,
    dimension varchar, severity varchar, success boolean, unexpected_count bigint,
    element_count bigint, detail varchar, validated_at timestamp
)"""

_RESULTS_SCHEMA: dict[str, Any] = {
    "run_id": pl.String,
    "run_date": pl.Date,
    "stage": pl.String,
    "table_name": pl.String,
    "expectation": pl.String,
    "dimension": pl.String,
    "severity": pl.String,
    "success": pl.Boolean,
    "unexpected_count": pl.Int64,
    "element_count": pl.Int64,
    "detail": pl.String,
    "validated_at": pl.Datetime("us"),
}


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def utc_now() -> dt.datetime:
    """Now in UTC, naive (DuckDB TIMESTAMP columns hold UTC without a zone)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def table_exists(con: Any, schema: str, table: str) -> bool:
    # fetchall, not fetchone: DuckDB 2.0 keeps a result "unfinished" until a fetch returns nothing,
    # and refuses other work on the connection meanwhile.
    rows = con.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = current_database() and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(rows[0][0])


def create_raw_table(con: Any, table: Table) -> None:
    columns = [f"{quote(c.name)} {_DUCKDB_TYPES[type(c.dtype)]}" for c in table.columns]
    columns += [f"{quote(name)} {sql_type}" for name, sql_type in BATCH_COLUMNS.items()]
    con.execute("create schema if not exists raw")
    con.execute(f"create table if not exists raw.{quote(table.name)} ({', '.join(columns)})")


def create_quarantine_table(con: Any, name: str = "quarantine.rejected_rows", *, temp: bool = False) -> None:
    """``quarantine.rejected_rows``, or a temp table of the same shape (``temp=True``)."""
    if temp:
        con.execute(
            _QUARANTINE_DDL.format(name=name).replace(
                "create table if not exists", "create or replace temp table"
            )
        )
        return
    con.execute(f"create schema if not exists {name.split('.', 1)[0]}")
    con.execute(_QUARANTINE_DDL.format(name=name))


def create_quality_tables(con: Any) -> None:
    con.execute("create schema if not exists quality")
    con.execute(_RESULTS_DDL)


def insert_validation_results(
    con: Any,
    outcomes: Sequence[Outcome],
    *,
    run_id: str,
    run_date: dt.date,
    stage: str,
    validated_at: dt.datetime,
    extra_detail: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> int:
    """Append one row per outcome (combine slices first); returns the rows written."""
    create_quality_tables(con)
    rows = []
    for o in outcomes:
        detail: dict[str, Any] = {
            "description": o.rule.description,
            "kwargs": o.kwargs or jsonable(o.rule.kwargs),
        }
        if o.observed is not None:
            detail["observed_value"] = o.observed
        if o.samples:
            detail["samples"] = o.samples
        if o.error:
            detail["error"] = o.error
        if o.chunk == "*":
            detail["sliced"] = True
        detail.update((extra_detail or {}).get((o.table, o.rule.name), {}))
        rows.append(
            {
                "run_id": run_id,
                "run_date": run_date,
                "stage": stage,
                "table_name": o.table,
                "expectation": o.rule.name,
                "dimension": o.rule.dimension.value,
                "severity": o.rule.severity.value,
                "success": o.success,
                "unexpected_count": o.unexpected_count,
                "element_count": o.element_count,
                "detail": json.dumps(detail, default=str, ensure_ascii=False),
                "validated_at": validated_at,
            }
        )
    if not rows:
        return 0
    insert_frame(con, "quality.validation_results", pl.DataFrame(rows, schema=_RESULTS_SCHEMA))
    return len(rows)


def insert_frame(con: Any, target: str, frame: pl.DataFrame) -> None:
    """Append a polars frame whose columns match ``target``'s, in order."""
    view = "_ecom_quality_insert"
    con.register(view, frame.to_arrow())
    try:
        con.execute(f"insert into {target} select * from {view}")
    finally:
        con.unregister(view)
