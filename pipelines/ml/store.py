"""Writing model outputs: one run date's rows replaced atomically, for every family."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl


def replace_partition(
    con: Any, table: str, columns: dict[str, str], frame: pl.DataFrame, run_date: dt.date
) -> None:
    """In one transaction: create the table if needed, delete ``run_date``'s rows, insert ``frame``.

    Idempotent (running twice leaves one copy) and atomic (a failure leaves the old rows).
    """
    schema = table.split(".", 1)[0]
    ddl = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create table if not exists {table} ({ddl})")
    con.register("_partition_rows", frame.select(list(columns)).to_arrow())
    try:
        con.execute("begin transaction")
        try:
            con.execute(f"delete from {table} where run_date = ?", [run_date])
            con.execute(f"insert into {table} by name select * from _partition_rows")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.unregister("_partition_rows")
