"""Prepared rows on a dense SKU x period grid, and the scaled windows the models read.

:func:`build_panel` lays the prepared rows on a dense SKU x period grid with every covariate filled
(prices carried forward, promotions and clicks zero, calendar from the date) and cut into two
groups: **known-future** covariates (price, promotion, competitor gap, calendar, holidays, events),
which the network also reads for the forecast horizon, and **past-only** covariates (stock-outs,
inventory, weather, social trends, clickstream, SKU age), which it reads for the lookback only.

:func:`gather_windows` cuts windows: ``lookback`` periods of history up to an origin, the
``horizon`` periods after it. Each window is scaled by its own history: ``scale = mean units over
the observed lookback periods + 1`` (:func:`window_scale`), so new SKUs and drifting series need no
stored per-SKU statistics; the forecast is multiplied back by the same scale.

SKUs with a short history are kept: periods before their first row are zeros with ``observed = 0``
and the ``age`` feature says how new they are. Stock-out periods stay in the inputs (with their flag)
but are masked out of the loss and the metrics: units sold on a stock-out day are not demand.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pipelines.forecast.features import (
    _CARRIED,
    _PAST_ONLY_SOURCE,
    _PER_DATE,
    KNOWN_FEATURES,
    MONOTONE_FEATURES,
    PAST_FEATURES,
    STANDARDISED_FEATURES,
    ForecastDataError,
    Grain,
    period_days,
)


@dataclass
class Panel:
    """Prepared features on a dense SKU x period grid (arrays are float32 unless noted).

    Attributes:
        sku_ids: (S,) int64.
        periods: (T,) period start dates.
        units: (S, T) units sold, 0 where not observed.
        observed: (S, T) bool: units known (the SKU existed, the period is in the past and it is not
            a missing period: no row, or ``units`` null). Unobserved periods are masked out of the
            loss and the metrics, never read as zero sales.
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
        # calendar from the period's own date (weekly: its first day)
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
    week_start: int = 0  # first day of a weekly period (0 = Monday); models saved before it: Monday

    @classmethod
    def fit(
        cls, panel: Panel, lookback: int, horizon: int, last: int | None = None, *, week_start: int = 0
    ) -> FeatureStats:
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
            week_start=week_start,
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
