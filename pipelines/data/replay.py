"""``ecom replay``: cut a batch for a date range out of a full set of contract files.

The simulator writes two years at once; production feeds arrive a day at a time. Replaying the
world as daily batches (or one history batch up to a date) exercises the same incremental path
real feeds take: backfills, daily runs and late updates. Rows that change after they are first
sent (a purchase order received later, a ticket resolved later) are sent again when they change,
so downstream sees upserts, as it would from a real source.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from pathlib import Path

import polars as pl

from pipelines.data.contract import TABLES
from pipelines.data.land import FACT_TABLES

# Columns filled in after a row is first sent: null until that day, and the row is sent again then.
LATE_COLUMNS = {"purchase_orders": "received_date", "service_tickets": "resolved_date"}
# Master data is sent in full, as of the batch's last day.
AS_OF_COLUMNS = {"customers": "signup_date"}


def replay_batch(source: Path, out_dir: Path, end: dt.date, start: dt.date | None = None) -> dict[str, int]:
    """Write the contract files for business dates ``start..end`` (all history when start is None).

    Returns rows written per table. A table with no rows in the window gets no file: the contract
    wants at least one row in every file and lets a batch hold any subset of the tables (on the
    tiny tier some days have no promotions or tickets, and landing rejected the header-only files).
    The folder is replaced atomically.

    Raises:
        ValueError: The window is empty, or the source has no facts (``daily_sales`` or
            ``order_lines`` rows) dated ``end``, such as a date past the end of the world; nothing
            is written then.
        FileNotFoundError: The source holds no contract files.
    """
    if start is not None and start > end:
        raise ValueError(f"replay window is empty: start {start} is after end {end}")
    files = {p.stem: p for p in sorted(source.glob("*.parquet")) if p.stem in TABLES}
    if not files:
        raise FileNotFoundError(f"no contract files in {source}; run `ecom generate` first")
    _require_facts(files, source, end)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    rows: dict[str, int] = {}
    try:
        for name, path in files.items():
            frame = _window(pl.scan_parquet(path), name, start, end)
            target = tmp / f"{name}.parquet"
            frame.sink_parquet(target)
            rows[name] = pl.scan_parquet(target).select(pl.len()).collect().item()
            if rows[name] == 0:
                target.unlink()
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _require_facts(files: dict[str, Path], source: Path, day: dt.date) -> None:
    """Refuse a batch for a day without facts: landing would refuse it too (pipelines.data.land)."""
    spans = []
    for name in FACT_TABLES:
        if name in files:
            column = pl.col(TABLES[name].date_column)
            on_day, first, last = (
                pl.scan_parquet(files[name])
                .select(
                    (column == day).sum().alias("on_day"),
                    column.min().alias("first"),
                    column.max().alias("last"),
                )
                .collect()
                .row(0)
            )
            if on_day:
                return
            if first is not None:
                spans.append((first, last))
    tables = " or ".join(FACT_TABLES)
    span = (
        f"its facts run from {min(s[0] for s in spans)} to {max(s[1] for s in spans)}"
        if spans
        else f"it has no {tables} rows"
    )
    raise ValueError(
        f"no facts for {day}: {source} has no {tables} rows dated {day} ({span}); nothing was written"
    )


def _window(lf: pl.LazyFrame, name: str, start: dt.date | None, end: dt.date) -> pl.LazyFrame:
    def within(col: str) -> pl.Expr:
        c = pl.col(col)
        return (c <= end) if start is None else c.is_between(start, end)

    table = TABLES[name]
    if name in AS_OF_COLUMNS:
        return lf.filter(pl.col(AS_OF_COLUMNS[name]) <= end)
    if table.date_column is None:
        return lf
    keep = within(table.date_column)
    if late := LATE_COLUMNS.get(name):
        keep = keep | (within(late) & (pl.col(table.date_column) <= end))
        lf = lf.with_columns(pl.when(pl.col(late) <= end).then(pl.col(late)).alias(late))
    return lf.filter(keep)
