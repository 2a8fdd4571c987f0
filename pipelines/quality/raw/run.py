"""The state of one raw validation run, which its gates, batch checks and load share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.config import QualityParams, Settings
from pipelines.data.contract import TABLES
from pipelines.data.land import ID_CODES, ID_CODES_SCHEMA
from pipelines.quality.engine import ROW, Outcome, SuiteRunner

# Master data first: their passing keys are the value sets the other tables' references check.
REFERENCE_TABLES = {"warehouses": "warehouse_id", "products": "sku_id", "customers": "customer_id"}
# Tables with a row for every day by contract ("... per day"): only these can be stale. Change logs
# (prices, promotions) and sparse events (tickets, returns) may rightly have quiet days.
DAILY_GRAIN_TABLES = tuple(n for n, t in TABLES.items() if t.date_column and "per day" in t.grain)
# The rows quarantined so far in this run, until the load decides (a temp table of the connection).
TEMP_REJECTED = "_ecom_rejected"


def suite_parameters(
    params: QualityParams, batch_date: dt.date, data_channels: Sequence[str] = ()
) -> dict[str, Any]:
    """The raw suites' run-time parameters: the batch date and the ``quality`` thresholds.

    Args:
        params: The ``quality`` settings.
        batch_date: The partition's date.
        data_channels: The non-empty channel labels of the validated frame: the channel value set
            when ``quality.channels`` is null (channels come from the data).
    """
    import pandas as pd

    return {
        # pandas holds dates as datetime64, so the comparison value must be a Timestamp too.
        "batch_date": pd.Timestamp(batch_date),
        "channels": list(params.channels) if params.channels is not None else sorted(data_channels),
        "max_days_behind": params.max_days_behind,
        "min_grid_coverage": params.min_grid_coverage,
        "max_quarantine_rate": params.max_quarantine_rate,
    }


@dataclass
class RawRun:
    """One validation of one partition: its inputs, the outcomes so far and the reference keys."""

    settings: Settings
    batch_date: dt.date
    batch_id: str
    run_id: str
    partition: Path
    runner: SuiteRunner
    con: Any
    say: Callable[[str], None]
    now: dt.datetime
    rows: dict[str, int]
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Reference keys: raw (other batch dates) plus this batch's passing rows.
    refs: dict[str, pl.Series] = field(default_factory=dict)
    products: pl.DataFrame | None = None
    # What the daily_sales grid found missing: the series with the most missing periods, a line
    # each (counts and dates), and how many series have gaps; for the gate's message and notes.
    grid_gaps: list[str] = field(default_factory=list)
    grid_gap_series: int = 0

    @property
    def params(self) -> QualityParams:
        """The thresholds and channels (``settings.quality``)."""
        return self.settings.quality

    def path(self, table: str) -> Path:
        return self.partition / f"{table}.parquet"

    @cached_property
    def id_codes(self) -> pl.DataFrame:
        """The string codes landing recorded for this partition's surrogate ids (``id_column, id, code``)."""
        path = self.partition / ID_CODES
        return pl.read_parquet(path) if path.is_file() else pl.DataFrame(schema=ID_CODES_SCHEMA)

    def scan(self, table: str) -> pl.LazyFrame:
        return pl.scan_parquet(self.path(table)).with_row_index(ROW, offset=1)

    def rejected(self, table: str) -> pl.DataFrame:
        """Distinct ``_row`` numbers quarantined so far in ``table``."""
        out = self.con.sql(
            f"select distinct row_number from {TEMP_REJECTED} where table_name = ?", params=[table]
        ).pl()
        return out.select(pl.col("row_number").cast(pl.get_index_type()).alias(ROW))

    def passing(self, table: str) -> pl.LazyFrame:
        """The rows of ``table`` that no quarantine rule rejected."""
        return self.scan(table).join(self.rejected(table).lazy(), on=ROW, how="anti")

    def quarantined(self, table: str) -> pl.LazyFrame:
        return self.scan(table).join(self.rejected(table).lazy(), on=ROW, how="semi")
