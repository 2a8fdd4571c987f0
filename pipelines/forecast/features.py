"""From mart rows to typed model columns: names, grains, and the preparation both models share.

:func:`prepare_features` types and names the columns the models use (only ``date``, ``sku_id`` and
``units`` are required; any other mart column that is missing counts as unknown) and, for the
weekly grain, aggregates to weeks that start on ``forecast.week_start`` (``land.week_start``;
:func:`aggregate_weekly`). Mart rows that are already weekly (one row per SKU per week, dated on the
week's first day) map to themselves.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import polars as pl

from pipelines.config import WEEKDAYS
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


# Covariate groups by the tables that fill them: a group whose columns are absent, null or zero on
# every row is off (its inputs are constant), which the dataset description says.
FEATURE_GROUPS = {
    "prices": ("effective_price", "shelf_price", "list_price"),
    "promotions": ("is_promo", "discount_pct", "promo_day_number"),
    "competitor_prices": ("competitor_gap_pct",),
    "inventory": ("stockout", "on_hand_units", "days_of_cover"),
    "weather": ("temp_c", "precip_mm", "humidity_pct", "wind_kph", "aqi", "extreme_weather_share"),
    "social_trends": ("search_index", "mentions", "sentiment", "video_views"),
    "clickstream": ("views", "add_to_carts"),
    "events": ("shopping_event", "is_public_holiday", "days_to_spring_festival"),
}


class ForecastDataError(FamilyDataError):
    """The features cannot be turned into forecasting windows (the message says why)."""


def period_days(grain: Grain) -> int:
    return 7 if grain == "weekly" else 1


def periods_for_days(days: int, grain: Grain) -> int:
    """Whole periods in ``days`` days (at least one)."""
    return max(1, days // period_days(grain))


def period_start(day: dt.date, grain: Grain, week_start: int = 0) -> dt.date:
    """The first day of the period holding ``day`` (weekly: the last ``week_start`` weekday, 0 = Monday)."""
    if grain == "daily":
        return day
    return day - dt.timedelta(days=(day.weekday() - week_start) % 7)


def last_complete_period(day: dt.date, grain: Grain, week_start: int = 0) -> dt.date:
    """Start of the last period that ends on or before ``day`` (for weekly, a ``week_start`` weekday)."""
    if grain == "daily":
        return day
    return period_start(day + dt.timedelta(days=1), grain, week_start) - dt.timedelta(days=7)


def row_weekday(frame: pl.DataFrame) -> int | None:
    """The weekday (0 = Monday) of every row with units when the rows are weekly, else None.

    Rows are weekly when at least three dates with units all fall on the same weekday (one row per
    SKU per week, dated on the week's first day, as a weekly ``land.grain`` publishes them).
    """
    if "units" not in frame.columns or "date" not in frame.columns:
        return None
    dates = frame.filter(pl.col("units").is_not_null())["date"].cast(pl.Date).unique()
    if dates.len() < 3:
        return None
    weekdays = dates.dt.weekday().unique()
    return int(weekdays[0]) - 1 if weekdays.len() == 1 else None


def origin_period(frame: pl.DataFrame, day: dt.date, grain: Grain, week_start: int = 0) -> dt.date:
    """The last period a forecast made on ``day`` from ``frame`` knows in full.

    The last period that ends on or before ``day``; for weekly rows (dated on the week's first day,
    a row holds the whole week), also the week that starts on or before ``day`` once its row is in
    ``frame`` with units (so the run date may be the last row's date).
    """
    complete = last_complete_period(day, grain, week_start)
    if grain == "weekly" and row_weekday(frame) is not None:
        start = period_start(day, grain, week_start)
        dates = frame.filter(pl.col("units").is_not_null())["date"].cast(pl.Date)
        if (dates == start).any():
            return start
    return complete


def check_row_grain(frame: pl.DataFrame, grain: Grain, week_start: int = 0) -> None:
    """Refuse weekly rows with a daily grain, and weekly rows dated off the week's first day.

    Raises:
        ForecastDataError: The message names the settings to change.
    """
    weekday = row_weekday(frame)
    if weekday is None:
        return
    name, start = WEEKDAYS[weekday], WEEKDAYS[week_start]
    if grain == "daily":
        raise ForecastDataError(
            f"marts.{MART} holds one row per SKU per week (every date with units is a {name}), but "
            f"forecast.grain is daily: a daily model would read six missing days in every week. Set "
            f"land.grain: weekly and forecast.grain: weekly (and land.week_start: {name}), then train "
            f"again (ecom train forecast)"
        )
    if weekday != week_start:
        raise ForecastDataError(
            f"marts.{MART} holds one row per SKU per week dated on {name}s, but weeks start on "
            f"{start} (land.week_start, or the model's when scoring): set land.week_start: {name} and "
            f"train again, or date each weekly row by the week's first day"
        )


def feature_groups_off(frame: pl.DataFrame) -> list[str]:
    """The covariate groups (:data:`FEATURE_GROUPS`) that are absent, null or zero on every row."""

    def informative(name: str) -> pl.Expr:
        col = pl.col(name)
        if frame.schema[name] in (pl.String, pl.Categorical):
            return col.is_not_null().any()
        return (col.cast(pl.Float64).fill_null(0.0) != 0.0).any()

    off = []
    for group, columns in FEATURE_GROUPS.items():
        present = [c for c in columns if c in frame.columns]
        if frame.is_empty() or not present or not any(frame.select(informative(c) for c in present).row(0)):
            off.append(group)
    return off


def normalise_types(frame: pl.DataFrame) -> pl.DataFrame:
    """DuckDB's HUGEINT sums arrive as 128-bit decimals or integers: make them Float64 (pandas-safe)."""
    import polars.selectors as cs

    return frame.with_columns(cs.decimal().cast(pl.Float64), cs.by_dtype(pl.Int128).cast(pl.Float64))


# ------------------------------------------------------------------------------------- preparation


def prepare_features(frame: pl.DataFrame, grain: Grain = "daily", week_start: int = 0) -> pl.DataFrame:
    """Type and derive the base columns from a mart-shaped frame; aggregate to weeks for ``weekly``.

    Only ``date``, ``sku_id`` and ``units`` are required. Rows with ``units`` null are missing
    periods (gaps) or future rows: they may carry known covariates (planned prices and promotions,
    calendar) for the horizon.

    Args:
        frame: Mart-shaped rows, daily or weekly (dated on the week's first day).
        grain: The model's grain.
        week_start: First day of a week (0 = Monday) for the weekly grain.

    Raises:
        ForecastDataError: A required column is missing, ``(sku_id, date)`` repeats, or weekly rows
            meet a daily grain or another week start.
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
    check_row_grain(base, grain, week_start)
    dupes = base.group_by("sku_id", "date").len().filter(pl.col("len") > 1)
    if not dupes.is_empty():
        example = dupes.row(0, named=True)
        raise ForecastDataError(
            f"the features frame has {dupes.height} repeated (sku_id, date) pair(s), e.g. "
            f"sku_id={example['sku_id']} on {example['date']}: expected one row per SKU per day"
        )
    base = base.sort("sku_id", "date")
    price = pl.coalesce("effective_price", "shelf_price")
    # Future rows (plans) rarely carry the list price: compare them with the SKU's last one.
    reference = pl.coalesce(
        "list_price",
        pl.col("list_price").forward_fill().over("sku_id"),
        pl.col("shelf_price").drop_nulls().first().over("sku_id"),
    )
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
    return aggregate_weekly(base, week_start) if grain == "weekly" else base


def aggregate_weekly(daily: pl.DataFrame, week_start: int = 0) -> pl.DataFrame:
    """Aggregate prepared rows to weeks from ``week_start`` (0 = Monday): units summed, the rest averaged.

    A week is observed only when every day of it the SKU has a row for has units (a week that
    straddles the last data day is a future week); weeks starting before the first data day are
    dropped (they would be partial). Binary columns become the share of days (e.g. ``is_promo`` 3/7).
    Rows that are already weekly, dated on the week's first day, map to themselves.
    """
    first_day = daily["date"].min()
    offset = pl.duration(days=week_start)
    means = [
        c for c in daily.columns if c not in ("sku_id", "date", "units", "category_l1", "days_since_launch")
    ]
    weekly = (
        daily.with_columns(((pl.col("date") - offset).dt.truncate("1w") + offset).alias("_week"))
        .group_by("sku_id", "_week")
        .agg(
            pl.when(pl.col("units").null_count() == 0).then(pl.col("units").sum()).alias("units"),
            pl.col("category_l1").first(),
            pl.col("days_since_launch").max(),
            *(pl.col(c).mean() for c in means),
        )
        .rename({"_week": "date"})
        .filter(pl.col("date") >= period_start(first_day, "weekly", week_start))
    )
    if first_day != period_start(first_day, "weekly", week_start):
        weekly = weekly.filter(pl.col("date") > first_day)
    return weekly.select(daily.columns).sort("sku_id", "date")


def prepare_history(frame: pl.DataFrame, grain: Grain = "daily", week_start: int = 0) -> pl.DataFrame:
    """Prepared rows up to the last period with units: what a model may learn from.

    Rows after the last day with units (future rows) are dropped; missing periods inside the
    history stay missing (``units`` null: masked, never read as zero). For the weekly grain over
    daily rows, a last week that the data covers only in part is dropped too.

    Raises:
        ForecastDataError: No row has units, or (weekly grain over daily rows) no week has units on
            every day.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        prepare_features(frame, grain, week_start)  # raises with the columns it lacks
    frame = frame.with_columns(pl.col("date").cast(pl.Date))
    with_units = frame.filter(pl.col("units").is_not_null())
    if with_units.is_empty():
        raise ForecastDataError(
            f"marts.{MART} has no row with units ({frame.height:,} rows up to "
            f"{frame['date'].max() if frame.height else 'the run date'}): the column units is null on "
            f"every row. Land sales (raw.daily_sales), rebuild and publish the marts, or choose a later "
            f"--date"
        )
    last_day = with_units["date"].max()
    weekly_rows = row_weekday(frame) is not None
    prepared = prepare_features(frame.filter(pl.col("date") <= last_day), grain, week_start)
    if grain == "weekly" and not weekly_rows:
        prepared = prepared.filter(pl.col("date") <= last_complete_period(last_day, grain, week_start))
        if prepared["units"].is_not_null().sum() == 0:
            raise ForecastDataError(
                f"no complete week of units in marts.{MART} up to {last_day}: with forecast.grain weekly "
                f"and one row per day, a week (starting on {WEEKDAYS[week_start]}, land.week_start) "
                f"counts only when every day of it has units, and none does. Land the missing days, or "
                f"land one row per week (land.grain: weekly)"
            )
    return prepared
