"""Demand features to model windows: load the mart, aggregate, prepare, build panels and a DataModule.

The pipeline from ``marts.mart_demand_features`` to tensors:

1. :func:`load_demand_features` reads the mart (one row per SKU per day) into polars.
2. :func:`prepare_features` types and names the columns the model uses (only ``date``, ``sku_id`` and
   ``units`` are required; any other mart column that is missing counts as unknown) and, for the
   weekly grain, aggregates to ISO weeks (:func:`aggregate_weekly`).
3. :func:`build_panel` lays the prepared rows on a dense SKU x period grid with every covariate
   filled (prices carried forward, promotions and clicks zero, calendar from the date) and cut into
   two groups: **known-future** covariates (price, promotion, competitor gap, calendar, holidays,
   events), which the network also reads for the forecast horizon, and **past-only** covariates
   (stock-outs, inventory, weather, social trends, clickstream, SKU age), which it reads for the
   lookback only.
4. :func:`gather_windows` cuts windows: ``lookback`` periods of history up to an origin, the
   ``horizon`` periods after it. Each window is scaled by its own history: ``scale = mean units over
   the observed lookback periods + 1`` (:func:`window_scale`), so new SKUs and drifting series need no
   stored per-SKU statistics; the forecast is multiplied back by the same scale.
5. :class:`DemandDataModule` splits windows by time (validation targets start after every training
   target ends) and samples at most ``max_train_windows`` training windows per epoch, seeded.

SKUs with a short history are kept: periods before their first row are zeros with ``observed = 0``
and the ``age`` feature says how new they are. Stock-out periods stay in the inputs (with their flag)
but are masked out of the loss and the metrics: units sold on a stock-out day are not demand.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import lightning.pytorch as pl_
import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipelines.ml.family import FamilyDataError
from pipelines.warehouse import connect_warehouse

if TYPE_CHECKING:
    from pipelines.config import ForecastParams, Settings

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


# ----------------------------------------------------------------------------------------- loading


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
    con = connect_warehouse(path)
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


def normalise_types(frame: pl.DataFrame) -> pl.DataFrame:
    """DuckDB's HUGEINT sums arrive as 128-bit decimals or integers: make them Float64 (pandas-safe)."""
    import polars.selectors as cs

    return frame.with_columns(cs.decimal().cast(pl.Float64), cs.by_dtype(pl.Int128).cast(pl.Float64))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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


# ------------------------------------------------------------------------------------------ panel


@dataclass
class Panel:
    """Prepared features on a dense SKU x period grid (arrays are float32 unless noted).

    Attributes:
        sku_ids: (S,) int64.
        periods: (T,) period start dates.
        units: (S, T) units sold, 0 where not observed.
        observed: (S, T) bool: units known (the SKU existed and the period is in the past).
        stockout: (S, T) stock-out flag (share of stock-out days for weekly).
        past: (S, T, len(PAST_FEATURES)), known: (S, T, len(KNOWN_FEATURES)), unstandardised.
        category: (S,) category_l1.

    ``valid`` (observed and in stock: the periods whose units count as demand) and ``promo`` (the
    promotion flag, a share of days for weekly) are derived.
    """

    grain: Grain
    sku_ids: np.ndarray
    periods: list[dt.date]
    units: np.ndarray
    observed: np.ndarray
    stockout: np.ndarray
    past: np.ndarray
    known: np.ndarray
    category: np.ndarray

    @property
    def n_series(self) -> int:
        return len(self.sku_ids)

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def valid(self) -> np.ndarray:
        """Periods whose units count as demand: observed and not (mostly) out of stock."""
        return self.observed & (self.stockout < 0.5)

    def index_of(self, day: dt.date) -> int:
        """Index of the period that starts on ``day``."""
        offset = (day - self.periods[0]).days
        step = period_days(self.grain)
        if offset % step or not 0 <= offset // step < self.n_periods:
            raise ForecastDataError(f"{day} is not a period start in {self.periods[0]} .. {self.periods[-1]}")
        return offset // step

    @property
    def promo(self) -> np.ndarray:
        return self.known[:, :, KNOWN_FEATURES.index("is_promo")]


def censor_after(frame: pl.DataFrame, origin: dt.date) -> pl.DataFrame:
    """Blank every past-only column of rows after ``origin``: what a forecast made then could not see."""
    cols = [c for c in _PAST_ONLY_SOURCE if c in frame.columns]
    late = pl.col("date") > origin
    return frame.with_columns(pl.when(late).then(None).otherwise(pl.col(c)).alias(c) for c in cols)


def build_panel(
    prepared: pl.DataFrame,
    grain: Grain,
    *,
    end: dt.date | None = None,
    start: dt.date | None = None,
    sku_ids: Sequence[int] | None = None,
) -> Panel:
    """Lay prepared rows on a dense SKU x period grid, filling covariate gaps.

    Args:
        prepared: Output of :func:`prepare_features` with the same grain.
        grain: daily or weekly.
        end: Last period start on the grid (default: the last row's); periods after the last row
            get calendar features from the date, prices carried forward and no promotion.
        start: First period start (default: the first row's).
        sku_ids: The SKUs (default: every SKU in ``prepared``); the panel holds them sorted.
    """
    if prepared.is_empty():
        raise ForecastDataError("no feature rows to build a panel from")
    step = period_days(grain)
    start = start or prepared["date"].min()
    end = end or prepared["date"].max()
    if end < start:
        raise ForecastDataError(f"panel end {end} is before its start {start}")
    periods = pl.date_range(start, end, f"{step}d", eager=True).alias("date")
    skus = (
        pl.Series("sku_id", list(sku_ids), dtype=pl.Int64).unique().sort()
        if sku_ids is not None
        else prepared["sku_id"].unique().sort()
    )
    rows = prepared.filter(pl.col("date").is_between(start, end) & pl.col("sku_id").is_in(skus.implode()))
    per_date = rows.group_by("date").agg(pl.col(c).mean().alias(f"_d_{c}") for c in _PER_DATE)
    per_sku = prepared.group_by("sku_id").agg(
        pl.col("category_l1").drop_nulls().last(),
        pl.col("date").min().alias("_first"),
        (pl.col("date") - pl.duration(days=pl.col("days_since_launch").cast(pl.Int64)))
        .drop_nulls()
        .min()
        .alias("_launch"),
    )
    grid = (
        skus.to_frame()
        .join(periods.to_frame(), how="cross")
        .join(rows.drop("category_l1"), on=["sku_id", "date"], how="left")
        .join(per_date, on="date", how="left")
        .join(per_sku, on="sku_id", how="left")
        .sort("sku_id", "date")
    )
    present = pl.col("date") >= pl.col("_first")
    launch = pl.coalesce("_launch", "_first")
    dow = pl.col("date").dt.weekday().cast(pl.Float64)  # 1 = Monday
    month = pl.col("date").dt.month().cast(pl.Float64)
    doy = pl.col("date").dt.ordinal_day().cast(pl.Float64)
    two_pi = 2 * math.pi
    grid = grid.with_columns(
        *(pl.coalesce(c, f"_d_{c}") for c in _PER_DATE),
        *(pl.col(c).forward_fill().over("sku_id") for c in _CARRIED),
    ).with_columns(
        pl.col("units").is_not_null().alias("_observed"),
        pl.col("units").fill_null(0.0),
        pl.col("stockout").fill_null(0.0),
        # calendar from the period's own date (weekly: its Monday)
        (dow * two_pi / 7).sin().alias("dow_sin"),
        (dow * two_pi / 7).cos().alias("dow_cos"),
        (dow >= 6).cast(pl.Float64).alias("is_weekend"),
        (month * two_pi / 12).sin().alias("month_sin"),
        (month * two_pi / 12).cos().alias("month_cos"),
        (doy * two_pi / 366).sin().alias("doy_sin"),
        (doy * two_pi / 366).cos().alias("doy_cos"),
        (pl.col("days_to_event_peak").clip(-14, 21) / 21).fill_null(0.0),
        (pl.col("days_to_spring_festival").clip(0, 60) / 60).fill_null(1.0),
        (pl.col("days_from_spring_festival").clip(0, 60) / 60).fill_null(1.0),
        (pl.col("days_of_cover").clip(0, 90) / 90).fill_null(1.0),
        pl.col("log_price").clip(-2.0, 2.0).fill_null(0.0),
        pl.col("competitor_gap").fill_null(0.0),
        (
            pl.when(present)
            .then(((pl.col("date") - launch).dt.total_days().cast(pl.Float64).clip(0, 365)) / 365)
            .otherwise(0.0)
            .alias("age")
        ),
        *(pl.col(c).log1p() for c in ("views", "add_to_carts", "on_hand_units", "mentions", "video_views")),
    )
    fill_zero = [c for c in (*PAST_FEATURES, *KNOWN_FEATURES) if c not in ("days_of_cover",)]
    grid = grid.with_columns(pl.col(c).fill_null(0.0) for c in fill_zero)
    n_s, n_t = skus.len(), periods.len()

    def cube(names: Sequence[str]) -> np.ndarray:
        return grid.select(pl.col(c).cast(pl.Float32) for c in names).to_numpy().reshape(n_s, n_t, len(names))

    return Panel(
        grain=grain,
        sku_ids=skus.to_numpy(),
        periods=periods.to_list(),
        units=grid["units"].cast(pl.Float32).to_numpy().reshape(n_s, n_t),
        observed=grid["_observed"].to_numpy().reshape(n_s, n_t),
        stockout=grid["stockout"].cast(pl.Float32).to_numpy().reshape(n_s, n_t),
        past=cube(PAST_FEATURES),
        known=cube(KNOWN_FEATURES),
        category=skus.to_frame()
        .join(per_sku, on="sku_id", how="left", maintain_order="left")["category_l1"]
        .fill_null("unknown")
        .to_numpy(),
    )


# ----------------------------------------------------------------------------- statistics, scaling


@dataclass
class FeatureStats:
    """What turns a panel into network inputs, fitted on training rows and saved with the model."""

    grain: Grain
    lookback: int
    horizon: int
    means: list[float]
    stds: list[float]
    categories: list[str]
    past_features: list[str] = field(default_factory=lambda: list(PAST_FEATURES))
    known_features: list[str] = field(default_factory=lambda: list(KNOWN_FEATURES))

    @classmethod
    def fit(cls, panel: Panel, lookback: int, horizon: int, last: int | None = None) -> FeatureStats:
        """Mean and sd of the standardised past features over observed periods up to ``last``."""
        upto = panel.n_periods if last is None else last + 1
        rows = panel.past[:, :upto][panel.observed[:, :upto]]
        idx = [PAST_FEATURES.index(c) for c in STANDARDISED_FEATURES]
        if len(rows):
            means = rows[:, idx].mean(axis=0).astype(float)
            stds = rows[:, idx].std(axis=0).astype(float)
        else:
            means, stds = np.zeros(len(idx)), np.ones(len(idx))
        stds = np.where(stds > 1e-6, stds, 1.0)
        return cls(
            grain=panel.grain,
            lookback=lookback,
            horizon=horizon,
            means=means.tolist(),
            stds=stds.tolist(),
            categories=sorted(set(panel.category.tolist())),
        )

    @property
    def n_past_inputs(self) -> int:
        # scaled units, observed flag, past-only covariates, known covariates
        return 2 + len(self.past_features) + len(self.known_features)

    @property
    def n_known_free(self) -> int:
        return len(self.known_features) - len(MONOTONE_FEATURES)

    @property
    def n_static(self) -> int:
        return 1 + len(self.categories)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureStats:
        return cls(**data)


def window_scale(units: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per-window scale: mean units over the observed history periods + 1 (>= 1, so never zero)."""
    n = observed.sum(axis=-1)
    total = (units * observed).sum(axis=-1)
    return (total / np.maximum(n, 1) + 1.0).astype(np.float32)


def scale_units(units: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return units / scale[..., None]


def unscale_units(scaled: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return scaled * scale.reshape(scale.shape + (1,) * (scaled.ndim - scale.ndim))


def gather_windows(
    panel: Panel, stats: FeatureStats, series: np.ndarray, origins: np.ndarray, *, horizon: int | None = None
) -> dict[str, np.ndarray]:
    """Network inputs (and targets where known) for windows ending at ``origins`` (period indices).

    Returns arrays: ``past`` (B, L, F_past), ``known`` (B, H, F_free), ``monotone`` (B, H, 4): the
    horizon's price and competitor-gap change against the lookback's mean, promotion flag and
    discount; ``static`` (B, 1 + categories), ``scale`` (B,), ``target`` (B, H) scaled units and
    ``mask`` (B, H) which target periods count (0 beyond the panel's end).
    """
    lookback, horizon = stats.lookback, horizon or stats.horizon
    series = np.asarray(series, dtype=np.int64)
    origins = np.asarray(origins, dtype=np.int64)
    past_t = origins[:, None] + np.arange(-lookback + 1, 1)[None, :]
    fut_t = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    inside_past = past_t >= 0
    inside_fut = fut_t < panel.n_periods
    pt = np.clip(past_t, 0, panel.n_periods - 1)
    ft = np.clip(fut_t, 0, panel.n_periods - 1)
    s = series[:, None]

    observed = panel.observed[s, pt] & inside_past
    units = np.where(observed, panel.units[s, pt], 0.0).astype(np.float32)
    scale = window_scale(units, observed)
    past = panel.past[s, pt] * inside_past[..., None]
    idx = [PAST_FEATURES.index(c) for c in STANDARDISED_FEATURES]
    past[..., idx] = (past[..., idx] - np.asarray(stats.means, np.float32)) / np.asarray(
        stats.stds, np.float32
    )
    past[..., idx] *= observed[..., None]
    known_past = panel.known[s, pt] * inside_past[..., None]
    enc = np.concatenate(
        [scale_units(units, scale)[..., None], observed[..., None].astype(np.float32), past, known_past],
        axis=-1,
    )

    n_free = stats.n_known_free
    known_fut = panel.known[s, ft]
    mono_fut = known_fut[..., n_free:].copy()
    mono_past = known_past[..., n_free:]
    w = observed.astype(np.float32)[..., None]
    ref = (mono_past[..., :2] * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1.0)
    mono_fut[..., :2] -= ref[:, None, :]

    categories = {c: i for i, c in enumerate(stats.categories)}
    static = np.zeros((len(series), stats.n_static), np.float32)
    static[:, 0] = np.log(scale)
    cat_idx = np.array([categories.get(c, -1) for c in panel.category[series]], dtype=np.int64)
    has_cat = cat_idx >= 0
    static[np.flatnonzero(has_cat), 1 + cat_idx[has_cat]] = 1.0

    fut_valid = panel.valid[s, ft] & inside_fut
    target = np.where(fut_valid, panel.units[s, ft], 0.0) / scale[:, None]
    return {
        "past": enc.astype(np.float32),
        "known": known_fut[..., :n_free].astype(np.float32),
        "monotone": mono_fut.astype(np.float32),
        "static": static,
        "scale": scale,
        "target": target.astype(np.float32),
        "mask": fut_valid.astype(np.float32),
    }


def window_origins(
    panel: Panel, lookback: int, horizon: int, *, first: int, last: int
) -> tuple[np.ndarray, np.ndarray]:
    """(series, origin) pairs with origins in ``first .. last`` whose windows can teach something.

    Kept: the SKU has at least one observed period in the lookback (new SKUs with short history
    count) and at least one valid (observed, in-stock) target period in the horizon. Intermittent
    series with all-zero targets are kept: zero is a valid target.
    """
    first = max(first, 0)
    last = min(last, panel.n_periods - 1 - horizon)
    if last < first:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    obs = panel.observed.astype(np.int32)
    valid = panel.valid.astype(np.int32)
    zero = np.zeros((panel.n_series, 1), np.int32)
    c_obs = np.concatenate([zero, np.cumsum(obs, axis=1)], axis=1)
    c_val = np.concatenate([zero, np.cumsum(valid, axis=1)], axis=1)
    t = np.arange(first, last + 1)
    lo = np.maximum(t - lookback + 1, 0)
    has_history = (c_obs[:, t + 1] - c_obs[:, lo]) > 0
    has_target = (c_val[:, t + horizon + 1] - c_val[:, t + 1]) > 0
    s_idx, t_pos = np.nonzero(has_history & has_target)
    return s_idx.astype(np.int64), t[t_pos].astype(np.int64)


# ----------------------------------------------------------------------------------- torch plumbing


class WindowDataset(Dataset):
    """Windows addressed by position; indexed with an array of positions, it returns a whole batch."""

    def __init__(self, panel: Panel, stats: FeatureStats, series: np.ndarray, origins: np.ndarray) -> None:
        self.panel, self.stats = panel, stats
        self.series, self.origins = series, origins

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        positions = np.sort(np.atleast_1d(positions))
        arrays = gather_windows(self.panel, self.stats, self.series[positions], self.origins[positions])
        return {k: torch.from_numpy(v) for k, v in arrays.items()}


class EpochBatchSampler(Sampler):
    """Yields batches of positions: a seeded sample of at most ``per_epoch`` windows, new each epoch."""

    def __init__(
        self, n: int, batch_size: int, per_epoch: int | None, seed: int, *, shuffle: bool = True
    ) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.per_epoch = n if per_epoch is None else min(n, per_epoch)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.per_epoch / self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(self.n)[: self.per_epoch]
        else:
            order = np.arange(self.per_epoch)
        for i in range(0, len(order), self.batch_size):
            yield order[i : i + self.batch_size]


def _loader(dataset: WindowDataset, sampler: EpochBatchSampler, num_workers: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


class DemandDataModule(pl_.LightningDataModule):
    """Training and validation windows from a features frame, split by time.

    With ``validate``, the validation windows are every SKU's window whose horizon is the last
    ``horizon`` periods up to the cutoff; training windows are those whose targets end on or before
    the validation origin, so no training target falls in the validation period. Without it, every
    window up to the cutoff trains (the final fit).

    Args:
        features: Mart-shaped daily rows (see :func:`prepare_features`).
        params: The ``forecast`` configuration.
        cutoff: Last day whose data may be used (default: the last row's date).
        validate: Hold out the last horizon for ``val/wape``.
        num_workers: DataLoader workers (0: in-process, deterministic, the default).
    """

    def __init__(
        self,
        features: pl.DataFrame,
        params: ForecastParams,
        *,
        cutoff: dt.date | None = None,
        validate: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.features, self.params, self.cutoff = features, params, cutoff
        self.validate, self.num_workers = validate, num_workers
        self.panel: Panel | None = None
        self.stats: FeatureStats | None = None
        self.train_windows: tuple[np.ndarray, np.ndarray] | None = None
        self.val_windows: tuple[np.ndarray, np.ndarray] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.panel is not None:
            return
        p = self.params
        frame = self.features
        if self.cutoff is not None:
            frame = frame.filter(pl.col("date") <= self.cutoff)
        if frame.is_empty():
            raise ForecastDataError(f"no feature rows on or before the cutoff {self.cutoff}")
        prepared = prepare_features(frame, p.grain)
        prepared = prepared.filter(pl.col("units").is_not_null())
        if prepared.is_empty():
            raise ForecastDataError("no feature rows with units to train on")
        last_day = prepared["date"].max()
        self.panel = panel = build_panel(prepared, p.grain, end=last_day)
        last = panel.n_periods - 1
        if self.validate and panel.n_periods > 2 * p.horizon + 1:
            val_origin = last - p.horizon
            self.val_windows = window_origins(panel, p.lookback, p.horizon, first=val_origin, last=val_origin)
            self.train_windows = window_origins(
                panel, p.lookback, p.horizon, first=0, last=val_origin - p.horizon
            )
            stats_upto = val_origin
        else:
            self.val_windows = None
            self.train_windows = window_origins(panel, p.lookback, p.horizon, first=0, last=last)
            stats_upto = last
        if len(self.train_windows[0]) == 0:
            raise ForecastDataError(
                f"no training windows: {panel.n_periods} {p.grain} periods of history are too few for a "
                f"horizon of {p.horizon} (need more than {p.horizon + 1} periods"
                f"{', twice that with validation' if self.validate else ''})"
            )
        self.stats = FeatureStats.fit(panel, p.lookback, p.horizon, last=stats_upto)

    @property
    def n_train_windows(self) -> int:
        return 0 if self.train_windows is None else len(self.train_windows[0])

    def train_dataloader(self) -> DataLoader:
        assert self.panel is not None and self.stats is not None and self.train_windows is not None
        dataset = WindowDataset(self.panel, self.stats, *self.train_windows)
        sampler = EpochBatchSampler(
            len(dataset), self.params.batch_size, self.params.max_train_windows, self.params.seed
        )
        return _loader(dataset, sampler, self.num_workers)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_windows is None or len(self.val_windows[0]) == 0:
            return []
        assert self.panel is not None and self.stats is not None
        dataset = WindowDataset(self.panel, self.stats, *self.val_windows)
        sampler = EpochBatchSampler(len(dataset), max(self.params.batch_size, 1024), None, 0, shuffle=False)
        return _loader(dataset, sampler, self.num_workers)
