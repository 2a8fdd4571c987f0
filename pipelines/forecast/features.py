"""From mart rows to typed model columns: names, grains, and the preparation both models share.

:func:`prepare_features` types and names the columns the models use (only ``date``, ``sku_id`` and
``units`` are required; any other mart column that is missing counts as unknown) and, for the
weekly grain, aggregates to ISO weeks (:func:`aggregate_weekly`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import polars as pl

from pipelines.ml.family import FamilyDataError

Grain = Literal["daily", "weekly"]

MART = "mart_demand_features"
REQUIRED_COLUMNS = ("date", "sku_id", "units")

# Mart columns read as numbers (booleans become 0/1). Everything else in the mart is not used.
NUMERIC_COLUMNS = (
    "units",
    "list_price",
    "days_since_launch",
    "stockout",
    "shelf_price",
    "effective_price",
    "is_promo",
    "discount_pct",
    "promo_day_number",
    "competitor_gap_pct",
    "days_to_event_peak",
    "is_public_holiday",
    "days_to_spring_festival",
    "days_from_spring_festival",
    "temp_c",
    "precip_mm",
    "humidity_pct",
    "wind_kph",
    "aqi",
    "extreme_weather_share",
    "search_index",
    "mentions",
    "sentiment",
    "video_views",
    "views",
    "add_to_carts",
    "on_hand_units",
    "days_of_cover",
)
TEXT_COLUMNS = ("category_l1", "shopping_event", "event_phase")
EVENTS = ("618", "singles_day", "double_12", "spring_festival")
PHASES = ("pre", "peak", "post")

# Known-future covariates. The last four reach the horizon only through the network's
# shape-constrained path (price and competitor gap can only lower demand, promotion only raise it).
CALENDAR_FEATURES = ("dow_sin", "dow_cos", "is_weekend", "month_sin", "month_cos", "doy_sin", "doy_cos")
EVENT_FEATURES = (
    "is_public_holiday",
    *(f"event_{e}" for e in EVENTS),
    *(f"phase_{p}" for p in PHASES),
    "days_to_event_peak",
    "days_to_spring_festival",
    "days_from_spring_festival",
)
MONOTONE_FEATURES = ("log_price", "competitor_gap", "is_promo", "discount")
KNOWN_FEATURES = (*CALENDAR_FEATURES, *EVENT_FEATURES, *MONOTONE_FEATURES)
# Past-only covariates; the standardised ones are scaled with statistics of the training rows.
STANDARDISED_FEATURES = (
    "temp_c",
    "precip_mm",
    "humidity_pct",
    "wind_kph",
    "aqi",
    "extreme_weather_share",
    "search_index",
    "mentions",
    "sentiment",
    "video_views",
    "views",
    "add_to_carts",
    "on_hand_units",
)
PAST_FEATURES = ("stockout", "age", "promo_day", "days_of_cover", *STANDARDISED_FEATURES)

# Per-date covariates (the same for every SKU on a day): gaps are filled from other SKUs' rows.
_PER_DATE = (
    "is_public_holiday",
    "event_618",
    "event_singles_day",
    "event_double_12",
    "event_spring_festival",
    "phase_pre",
    "phase_peak",
    "phase_post",
    "days_to_event_peak",
    "days_to_spring_festival",
    "days_from_spring_festival",
    "temp_c",
    "precip_mm",
    "humidity_pct",
    "wind_kph",
    "aqi",
    "extreme_weather_share",
)
# Per-SKU state carried forward into gaps (and into the future when not given).
_CARRIED = (
    "log_price",
    "competitor_gap",
    "search_index",
    "mentions",
    "sentiment",
    "video_views",
    "on_hand_units",
    "days_of_cover",
)
# Columns the mart's rows give only for the past: blanked after a forecast origin.
_PAST_ONLY_SOURCE = (
    "units",
    "stockout",
    "days_since_launch",
    "temp_c",
    "precip_mm",
    "humidity_pct",
    "wind_kph",
    "aqi",
    "extreme_weather_share",
    "search_index",
    "mentions",
    "sentiment",
    "video_views",
    "views",
    "add_to_carts",
    "on_hand_units",
    "days_of_cover",
)


class ForecastDataError(FamilyDataError):
    """The features cannot be turned into forecasting windows (the message says why)."""


def period_days(grain: Grain) -> int:
    return 7 if grain == "weekly" else 1


def periods_for_days(days: int, grain: Grain) -> int:
    """Whole periods in ``days`` days (at least one)."""
    return max(1, days // period_days(grain))


def period_start(day: dt.date, grain: Grain) -> dt.date:
    return day - dt.timedelta(days=day.weekday()) if grain == "weekly" else day


def last_complete_period(day: dt.date, grain: Grain) -> dt.date:
    """Start of the last period that ends on or before ``day`` (a Monday for weekly)."""
    if grain == "daily":
        return day
    return period_start(day + dt.timedelta(days=1), grain) - dt.timedelta(days=7)


def normalise_types(frame: pl.DataFrame) -> pl.DataFrame:
    """DuckDB's HUGEINT sums arrive as 128-bit decimals or integers: make them Float64 (pandas-safe)."""
    import polars.selectors as cs

    return frame.with_columns(cs.decimal().cast(pl.Float64), cs.by_dtype(pl.Int128).cast(pl.Float64))


# ------------------------------------------------------------------------------------- preparation


def prepare_features(frame: pl.DataFrame, grain: Grain = "daily") -> pl.DataFrame:
    """Type and derive the base columns from a mart-shaped frame; aggregate to weeks for ``weekly``.

    Only ``date``, ``sku_id`` and ``units`` are required. Rows with ``units`` null are future rows:
    they may carry known covariates (planned prices and promotions, calendar) for the horizon.

    Raises:
        ForecastDataError: A required column is missing or ``(sku_id, date)`` repeats.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ForecastDataError(
            f"the features frame lacks required column(s) {missing}; it needs one row per SKU and "
            f"day with at least {list(REQUIRED_COLUMNS)}"
        )
    if frame.is_empty():
        raise ForecastDataError("the features frame has no rows")
    cols: list[pl.Expr] = [
        pl.col("date").cast(pl.Date),
        pl.col("sku_id").cast(pl.Int64),
    ]
    for name in NUMERIC_COLUMNS:
        cols.append(
            pl.col(name).cast(pl.Float64) if name in frame.columns else pl.lit(None, pl.Float64).alias(name)
        )
    for name in TEXT_COLUMNS:
        cols.append(
            pl.col(name).cast(pl.String) if name in frame.columns else pl.lit(None, pl.String).alias(name)
        )
    base = frame.select(cols)
    dupes = base.group_by("sku_id", "date").len().filter(pl.col("len") > 1)
    if not dupes.is_empty():
        example = dupes.row(0, named=True)
        raise ForecastDataError(
            f"the features frame has {dupes.height} repeated (sku_id, date) pair(s), e.g. "
            f"sku_id={example['sku_id']} on {example['date']}: expected one row per SKU per day"
        )
    price = pl.coalesce("effective_price", "shelf_price")
    reference = pl.coalesce("list_price", pl.col("shelf_price").drop_nulls().first().over("sku_id"))
    base = base.with_columns(
        pl.when((price > 0) & (reference > 0)).then((price / reference).log()).alias("log_price"),
        pl.col("competitor_gap_pct").clip(-1.0, 1.0).alias("competitor_gap"),
        (pl.col("discount_pct") / 100.0).alias("discount"),
        (pl.col("promo_day_number").clip(0, 14) / 14.0).alias("promo_day"),
        *(
            pl.when(pl.col("shopping_event").is_not_null())
            .then((pl.col("shopping_event") == e).cast(pl.Float64))
            .alias(f"event_{e}")
            for e in EVENTS
        ),
        *(
            pl.when(pl.col("shopping_event").is_not_null())
            .then((pl.col("event_phase") == p).cast(pl.Float64))
            .alias(f"phase_{p}")
            for p in PHASES
        ),
        pl.col("category_l1").fill_null("unknown"),
    ).drop(
        "effective_price",
        "shelf_price",
        "competitor_gap_pct",
        "discount_pct",
        "promo_day_number",
        "shopping_event",
        "event_phase",
    )
    base = base.sort("sku_id", "date")
    return aggregate_weekly(base) if grain == "weekly" else base


def aggregate_weekly(daily: pl.DataFrame) -> pl.DataFrame:
    """Aggregate prepared daily rows to ISO weeks (Monday start): units summed, the rest averaged.

    A week is observed only when every day of it the SKU has a row for has units (a week that
    straddles the last data day is a future week); weeks starting before the first data day are
    dropped (they would be partial). Binary columns become the share of days (e.g. ``is_promo`` 3/7).
    """
    first_day = daily["date"].min()
    means = [
        c for c in daily.columns if c not in ("sku_id", "date", "units", "category_l1", "days_since_launch")
    ]
    weekly = (
        daily.with_columns(pl.col("date").dt.truncate("1w").alias("_week"))
        .group_by("sku_id", "_week")
        .agg(
            pl.when(pl.col("units").null_count() == 0).then(pl.col("units").sum()).alias("units"),
            pl.col("category_l1").first(),
            pl.col("days_since_launch").max(),
            *(pl.col(c).mean() for c in means),
        )
        .rename({"_week": "date"})
        .filter(pl.col("date") >= period_start(first_day, "weekly"))
    )
    if first_day != period_start(first_day, "weekly"):
        weekly = weekly.filter(pl.col("date") > first_day)
    return weekly.select(daily.columns).sort("sku_id", "date")
