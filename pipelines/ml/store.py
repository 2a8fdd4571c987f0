"""Writing model outputs: one run date's rows replaced atomically, for every family."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl


def replace_partition(
    con: Any,
    table: str,
    columns: dict[str, str],
    frame: pl.DataFrame,
    run_date: dt.date,
    *,
    within: Mapping[str, Any] | None = None,
) -> None:
    """In one transaction: create the table if needed, delete ``run_date``'s rows, insert ``frame``.

    Idempotent (running twice leaves one copy) and atomic (a failure leaves the old rows).
    ``within`` narrows the partition to rows with those column values as well (one crawl or one
    pricing step of the day, say), so the day's other rows stay.
    """
    within = dict(within or {})
    schema = table.split(".", 1)[0]
    ddl = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create table if not exists {table} ({ddl})")
    con.register("_partition_rows", frame.select(list(columns)).to_arrow())
    try:
        con.execute("begin transaction")
        try:
            narrow = "".join(f" and {name} = ?" for name in within)
            con.execute(f"delete from {table} where run_date = ?{narrow}", [run_date, *within.values()])
            con.execute(f"insert into {table} by name select * from _partition_rows")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.unregister("_partition_rows")
