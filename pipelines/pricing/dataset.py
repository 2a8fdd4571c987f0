"""The price-elasticity dataset: one row per SKU and period from ``marts.mart_demand_features``.

:func:`load_pricing_dataset` is the one read (at the edge); :func:`prepare_pricing_frame` is the pure
transform every estimator shares: units summed over channels, log price paid and log cheapest rival
relative to the SKU's reference price, promotion, calendar and context controls, and the SKU's
category. Stock-out periods are dropped: their units are censored by stock, not chosen by buyers.

Nothing assumes the simulator's shape: a retailer without rival prices gets a null rival column
(the cross effect is then null, and :func:`describe_pricing_frame` says so), a weekly feed keeps its
weekly rows, and a SKU with few rows stays in (the estimators flag it and pool it).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.ml.family import FamilyDataError

if TYPE_CHECKING:
    from pipelines.config import Settings

MART = "mart_demand_features"
# What the estimators need from the mart; everything else is optional context.
REQUIRED = ("date", "sku_id", "units", "effective_price")
OPTIONAL = (
    "category_l1",
    "category_l2",
    "list_price",
    "shelf_price",
    "stockout",
    "is_promo",
    "promo_type",
    "discount_pct",
    "competitor_min_price",
    "day_of_week",
    "is_weekend",
    "month",
    "day_of_year",
    "shopping_event",
    "event_phase",
    "days_to_event_peak",
    "is_public_holiday",
    "days_to_spring_festival",
    "days_from_spring_festival",
    "temp_c",
    "precip_mm",
    "search_index",
    "days_of_cover",
    "days_since_launch",
)
# Numeric controls the nuisance and demand models see (those present and not all null).
CONTROLS = (
    "promo",
    "day_of_week",
    "is_weekend",
    "month",
    "day_of_year",
    "days_to_event_peak",
    "is_public_holiday",
    "days_to_spring_festival",
    "days_from_spring_festival",
    "temp_c",
    "precip_mm",
    "search_index",
    "log_cover_prev",
    "days_since_launch",
)
# Days since launch matter while a product ramps up; beyond that they would only name the day.
LAUNCH_DAYS = 120
# Labels the models encode with the vocabulary they were fitted on.
LABELS = ("category", "event", "event_phase")


def load_pricing_dataset(settings: Settings, run_date: dt.date) -> pl.DataFrame:
    """The prepared rows of the ``settings.pricing.estimation_days`` up to ``run_date`` (inclusive).

    Raises:
        FamilyDataError: No warehouse, no mart, a required column missing, or nothing to estimate.
    """
    start = run_date - dt.timedelta(days=settings.pricing.estimation_days - 1)
    raw = read_mart(settings, start, run_date)
    return prepare_pricing_frame(raw)


def read_mart(settings: Settings, start: dt.date, end: dt.date) -> pl.DataFrame:
    """The mart's columns the pricing family uses, rows ``start`` .. ``end`` (one connection, closed).

    Raises:
        FamilyDataError: No warehouse, no mart, or a required column missing.
    """
    from pipelines.warehouse import connect_warehouse

    path = settings.warehouse_path
    if not path.is_file():
        raise FamilyDataError(f"no warehouse at {path}: build and publish the marts first (ecom foundation)")
    con = connect_warehouse(path, settings.warehouse.memory_limit)
    try:
        return read_mart_from(con, start, end)
    finally:
        con.close()


def read_mart_from(con: Any, start: dt.date, end: dt.date) -> pl.DataFrame:
    """:func:`read_mart` over an open warehouse connection ``con``."""
    available = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = ?",
            [MART],
        ).fetchall()
    }
    if not available:
        raise FamilyDataError(f"marts.{MART} does not exist in the warehouse: run dbt and publish first")
    missing = [c for c in REQUIRED if c not in available]
    if missing:
        raise FamilyDataError(
            f"marts.{MART} lacks {', '.join(missing)}: the pricing family needs units and the price paid"
        )
    cols = [c for c in (*REQUIRED, *OPTIONAL) if c in available]
    quoted = ", ".join(f'"{c}"' for c in cols)
    sql = f"select {quoted} from marts.{MART} where date between ? and ?"
    return con.sql(sql, params=[start, end]).pl()


def _col(frame: pl.DataFrame, name: str, default: Any, dtype: pl.DataType) -> pl.Expr:
    if name in frame.columns:
        return pl.col(name).cast(dtype, strict=False)
    return pl.lit(default, dtype=dtype)


def prepare_pricing_frame(raw: pl.DataFrame) -> pl.DataFrame:
    """Mart rows as estimation rows (pure).

    Keeps in-stock periods with units and a positive price paid; adds ``log_price`` and
    ``log_rival`` (logs of the price paid and the cheapest rival price over the SKU's reference
    price: its median shelf or paid price; null rival where none was seen), ``promo``, coded
    calendar and context controls, ``log_cover_prev`` (the previous period's days of cover: today's
    own cover already reflects today's sales) and ``category``.

    Raises:
        FamilyDataError: No row left to estimate from (the message says why).
    """
    if raw.is_empty():
        raise FamilyDataError(f"marts.{MART} has no rows in the estimation window")
    f = raw.sort("sku_id", "date").with_columns(
        pl.col("sku_id").cast(pl.Int64),
        pl.col("effective_price").cast(pl.Float64),
        _col(raw, "stockout", False, pl.Boolean).fill_null(False).alias("stockout"),
        _col(raw, "days_of_cover", None, pl.Float64)
        .shift(1)
        .over("sku_id")
        .clip(0, 365)
        .log1p()
        .alias("log_cover_prev"),
    )
    priced = pl.col("effective_price").is_not_null() & (pl.col("effective_price") > 0)
    f = f.filter(pl.col("units").is_not_null() & priced & ~pl.col("stockout"))
    if f.is_empty():
        raise FamilyDataError(
            f"marts.{MART} has no in-stock rows with units and a positive effective_price in the window"
        )
    shelf = _col(f, "shelf_price", None, pl.Float64)
    reference = shelf.fill_null(pl.col("effective_price")).median().over("sku_id")
    category = pl.coalesce(
        _col(f, "category_l2", None, pl.Utf8), _col(f, "category_l1", None, pl.Utf8), pl.lit("all")
    )
    rival = _col(f, "competitor_min_price", None, pl.Float64)
    event = _col(f, "shopping_event", None, pl.Utf8)
    phase = _col(f, "event_phase", None, pl.Utf8)
    out = f.with_columns(
        pl.col("units").cast(pl.Float64),
        reference.alias("reference_price"),
        category.alias("category"),
        (pl.col("effective_price") / reference).log().alias("log_price"),
        pl.when(rival > 0).then((rival / reference).log()).alias("log_rival"),
        (
            _col(f, "is_promo", False, pl.Boolean).fill_null(False)
            | (_col(f, "discount_pct", 0.0, pl.Float64).fill_null(0.0) > 0)
        )
        .cast(pl.Float64)
        .alias("promo"),
        _col(f, "day_of_week", None, pl.Float64).alias("day_of_week"),
        _col(f, "is_weekend", None, pl.Float64).alias("is_weekend"),
        _col(f, "month", None, pl.Float64).alias("month"),
        _col(f, "day_of_year", None, pl.Float64).alias("day_of_year"),
        event.fill_null("").alias("event"),
        phase.fill_null("").alias("event_phase"),
        _col(f, "days_to_event_peak", None, pl.Float64).alias("days_to_event_peak"),
        _col(f, "is_public_holiday", None, pl.Float64).alias("is_public_holiday"),
        _col(f, "days_to_spring_festival", None, pl.Float64).alias("days_to_spring_festival"),
        _col(f, "days_from_spring_festival", None, pl.Float64).alias("days_from_spring_festival"),
        _col(f, "temp_c", None, pl.Float64).alias("temp_c"),
        _col(f, "precip_mm", None, pl.Float64).alias("precip_mm"),
        _col(f, "search_index", None, pl.Float64).alias("search_index"),
        _col(f, "days_since_launch", None, pl.Float64).clip(-1, LAUNCH_DAYS).alias("days_since_launch"),
    )
    keep = ["date", "sku_id", "units", "effective_price", "reference_price", "log_price", "log_rival"]
    return out.select(*keep, *LABELS, *CONTROLS).sort("sku_id", "date")


def present_controls(frame: pl.DataFrame) -> list[str]:
    """The controls that carry data here (a retailer's feed may lack weather, trends or stock)."""
    return [c for c in CONTROLS if c in frame.columns and frame[c].drop_nulls().n_unique() > 1]


def has_rivals(frame: pl.DataFrame) -> bool:
    """Whether any row has a rival price (else the cross effect is null)."""
    return "log_rival" in frame.columns and frame["log_rival"].drop_nulls().len() > 0


def split_holdout(frame: pl.DataFrame, holdout_days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Training rows and the last ``holdout_days`` days.

    Raises:
        FamilyDataError: Nothing left to train on before the held-out days.
    """
    last = frame["date"].max()
    cutoff = last - dt.timedelta(days=holdout_days)
    train, test = frame.filter(pl.col("date") <= cutoff), frame.filter(pl.col("date") > cutoff)
    if train.is_empty() or test.is_empty():
        span = f"{frame['date'].min()} .. {last}"
        raise FamilyDataError(
            f"the pricing data ({span}) is too short to hold out its last {holdout_days} days: "
            f"lower pricing.holdout_days or raise pricing.estimation_days"
        )
    return train, test


def describe_pricing_frame(frame: pl.DataFrame) -> dict[str, Any]:
    """Window, size and what the data allows (rival prices present, grain)."""
    gaps = frame.sort("sku_id", "date").select(pl.col("date").diff().over("sku_id").dt.total_days())
    step = gaps.to_series().drop_nulls().median()
    return {
        "source": f"marts.{MART}",
        "start": frame["date"].min(),
        "end": frame["date"].max(),
        "skus": frame["sku_id"].n_unique(),
        "rows": frame.height,
        "grain": "weekly" if step is not None and step >= 6 else "daily",
        "cross_effect": "estimated" if has_rivals(frame) else "null: no rival prices in the data",
        "controls": ", ".join(present_controls(frame)) or "none",
    }
