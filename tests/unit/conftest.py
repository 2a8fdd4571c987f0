"""Fixtures for unit tests: settings rooted in a temporary ECOM_HOME and tiny contract-shaped batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pipelines.data.contract import TABLES


def contract_frames() -> dict[str, pl.DataFrame]:
    """A few rows each of products, daily_sales and warehouses, typed exactly as the contract says."""
    day = dt.date(2024, 1, 1)
    frames = {
        "products": pl.DataFrame(
            {
                "sku_id": [1, 2, 3],
                "sku_name": ["Kettle", "Toaster", "Blender"],
                "category_l1": ["Home", "Home", "Home"],
                "category_l2": ["kettles", "toasters", "blenders"],
                "brand": ["Acme", "Acme", "Bolt"],
                "unit_cost": [50.0, 80.5, 120.0],
                "list_price": [99.0, 149.0, 259.9],
                "launch_date": [day, day, dt.date(2024, 1, 2)],
                "warehouse_id": [1, 1, 2],
            }
        ),
        "daily_sales": pl.DataFrame(
            {
                "date": [day, day, day, dt.date(2024, 1, 2), dt.date(2024, 1, 2)],
                "sku_id": [1, 1, 2, 1, 3],
                "channel": ["app", "web", "app", "app", "web"],
                "units": [3, 1, 0, 5, 2],
                "revenue": [297.0, 99.0, 0.0, 445.0, 519.8],
                "price_paid": [99.0, 99.0, 149.0, 89.0, 259.9],
                "stockout": [False, False, True, False, False],
            }
        ),
        "warehouses": pl.DataFrame(
            {
                "warehouse_id": [1, 2],
                "name": ["North", "South"],
                "region": ["north", "south"],
                "capacity_units": [100_000, 250_000],
            }
        ),
    }
    return {name: df.cast(TABLES[name].schema) for name, df in frames.items()}  # type: ignore[arg-type]


def write_frame(df: pl.DataFrame, path: Path) -> Path:
    """Write a frame as CSV or Parquet, going by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        df.write_csv(path)
    else:
        df.write_parquet(path)
    return path


BatchWriter = Callable[..., Path]


@pytest.fixture
def frames() -> dict[str, pl.DataFrame]:
    """Fresh copies of the tiny contract frames, free to modify."""
    return contract_frames()


@pytest.fixture
def write_batch(tmp_path: Path) -> BatchWriter:
    """Write a batch folder: ``write_batch("a", products="csv", daily_sales=df_or_fmt, ...)``.

    A table given as a format string gets the default tiny frame; one given as ``(frame, fmt)``
    gets that frame. With no tables the default batch is products.csv, daily_sales.parquet and
    warehouses.csv.
    """

    def write(folder: str = "batch", **tables: str | tuple[pl.DataFrame, str]) -> Path:
        out = tmp_path / folder
        out.mkdir(parents=True, exist_ok=True)
        frames = contract_frames()
        tables = tables or {"products": "csv", "daily_sales": "parquet", "warehouses": "csv"}
        for name, spec in tables.items():
            df, fmt = (frames[name], spec) if isinstance(spec, str) else spec
            write_frame(df, out / f"{name}.{fmt}")
        return out

    return write
