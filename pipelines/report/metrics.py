"""Pure computations on the report's frames: KPI deltas, rolling means, category shares, movers."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

import polars as pl

Unit = Literal["money", "count", "pct", "times"]
Direction = Literal["up", "down", "flat"]
Tone = Literal["good", "bad", "neutral"]

# Changes smaller than these read as flat: 0.5% relative for levels, 0.05 pp for rates.
FLAT_RELATIVE = 0.005
FLAT_POINTS = 0.0005

EVENT_NAMES = {
    "618": "618",
    "double_11": "Singles' Day",
    "singles_day": "Singles' Day",
    "double_12": "Double 12",
    "spring_festival": "Spring Festival",
}


@dataclass(frozen=True)
class Kpi:
    column: str
    label: str
    unit: Unit
    higher_is_better: bool
    # The capability (pipelines/capabilities.py) whose tables fill it; None: sales alone.
    needs: str | None = None


KPIS = (
    Kpi("gmv", "GMV", "money", True),
    Kpi("orders", "Orders", "count", True, needs="orders"),
    Kpi("aov", "AOV", "money", True, needs="orders"),
    Kpi("units", "Units", "count", True),
    Kpi("stockout_rate", "Stock-out rate", "pct", False),
    Kpi("fill_rate", "Fill rate", "pct", True),
    Kpi("inventory_turnover", "Inventory turnover", "times", True, needs="inventory"),
    Kpi("return_rate", "Return rate", "pct", False, needs="returns"),
)


@dataclass(frozen=True)
class Delta:
    """A KPI against a baseline: relative change for levels, percentage points for rates."""

    baseline: float
    change: float
    direction: Direction
    tone: Tone
    text: str


@dataclass(frozen=True)
class KpiTile:
    kpi: Kpi
    value: float | None
    text: str
    vs_week: Delta | None  # against the average of the 7 days before the run date
    vs_year: Delta | None  # against the same calendar day a year earlier


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


CURRENCY_SYMBOLS = {"CNY": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£"}


def currency_prefix(currency: str) -> str:
    """``¥`` for CNY, ``$`` for USD ...; other codes as ``CHF `` (``land.currency``)."""
    return CURRENCY_SYMBOLS.get(currency, f"{currency} ")


def format_value(x: float | None, unit: Unit, decimals: int | None = None, currency: str = "CNY") -> str:
    """A number as people read it: ``¥1,234,567``, ``12,345``, ``3.4%``, ``4.2×``."""
    if _missing(x):
        return "–"
    assert x is not None
    if unit == "money":
        sign = "-" if x < 0 else ""
        return f"{sign}{currency_prefix(currency)}{abs(x):,.{0 if decimals is None else decimals}f}"
    if unit == "count":
        return f"{x:,.{0 if decimals is None else decimals}f}"
    if unit == "pct":
        return f"{x * 100:.{1 if decimals is None else decimals}f}%"
    return f"{x:.{1 if decimals is None else decimals}f}×"


def compute_delta(value: float | None, baseline: float | None, kpi: Kpi) -> Delta | None:
    """``value`` against ``baseline``; None when either is missing or a level's baseline is zero."""
    if _missing(value) or _missing(baseline):
        return None
    assert value is not None and baseline is not None
    if kpi.unit == "pct":
        change = value - baseline
        flat = abs(change) < FLAT_POINTS
        text = f"{change * 100:+.1f} pp"
    else:
        if baseline == 0:
            return None
        change = value / baseline - 1
        flat = abs(change) < FLAT_RELATIVE
        text = f"{change * 100:+.1f}%"
    if flat:
        return Delta(baseline, change, "flat", "neutral", text)
    direction: Direction = "up" if change > 0 else "down"
    tone: Tone = "good" if (change > 0) == kpi.higher_is_better else "bad"
    return Delta(baseline, change, direction, tone, text)


def same_day_last_year(day: dt.date, grain: str = "daily") -> dt.date:
    """The same calendar day a year earlier (29 February maps to the 28th); weekly: 52 weeks earlier."""
    if grain == "weekly":
        return day - dt.timedelta(weeks=52)
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def build_kpi_tiles(
    kpi_daily: pl.DataFrame, run_date: dt.date, *, grain: str = "daily", currency: str = "CNY"
) -> list[KpiTile]:
    """Headline tiles for ``run_date`` from the KPI frame (one row per ``date``: a day, or a week).

    Against the average of the 7 days before (weekly: the week before) and a year earlier.
    """
    today = kpi_daily.filter(pl.col("date") == run_date)
    week = kpi_daily.filter(pl.col("date").is_between(run_date - dt.timedelta(days=7), run_date, "left"))
    year = kpi_daily.filter(pl.col("date") == same_day_last_year(run_date, grain))
    tiles = []
    for kpi in KPIS:
        value = today[kpi.column][0] if today.height else None
        week_mean = week[kpi.column].mean() if week.height else None
        last_year = year[kpi.column][0] if year.height else None
        decimals = 2 if kpi.column == "aov" else None
        tiles.append(
            KpiTile(
                kpi=kpi,
                value=value,
                text=format_value(value, kpi.unit, decimals, currency),
                vs_week=compute_delta(value, week_mean, kpi),  # type: ignore[arg-type]
                vs_year=compute_delta(value, last_year, kpi),
            )
        )
    return tiles


def with_rolling_means(kpi_daily: pl.DataFrame, run_date: dt.date, days: int, window: int) -> pl.DataFrame:
    """The last ``days`` days up to ``run_date`` with ``<column>_avg`` trailing means for GMV and orders.

    The means are taken before the cut, so the first days of the window have a full trailing week.
    """
    return (
        kpi_daily.sort("date")
        .with_columns(
            pl.col(c).rolling_mean_by("date", window_size=f"{window}d").alias(f"{c}_avg")
            for c in ("gmv", "orders")
        )
        .filter(pl.col("date") > run_date - dt.timedelta(days=days), pl.col("date") <= run_date)
    )


def category_mix(category_daily: pl.DataFrame, run_date: dt.date, days: int) -> pl.DataFrame:
    """GMV and its share per category over the last ``days`` days; the share's change vs the days before."""
    start = run_date - dt.timedelta(days=days)
    period = pl.when(pl.col("date") > start).then(pl.lit("now")).otherwise(pl.lit("before"))
    totals = (
        category_daily.filter(pl.col("date") > start - dt.timedelta(days=days), pl.col("date") <= run_date)
        .group_by("category_l1", period.alias("period"))
        .agg(pl.col("gmv").sum())
    )
    now = totals.filter(pl.col("period") == "now").select("category_l1", "gmv")
    before = totals.filter(pl.col("period") == "before").select("category_l1", gmv_before="gmv")
    return (
        now.join(before, on="category_l1", how="full", coalesce=True)
        .with_columns(pl.col("gmv", "gmv_before").fill_null(0.0))
        .with_columns(
            share=pl.col("gmv") / pl.col("gmv").sum(),
            share_before=pl.col("gmv_before") / pl.col("gmv_before").sum(),
        )
        .with_columns(share_change=pl.col("share") - pl.col("share_before"))
        .sort("gmv", "category_l1", descending=[True, False])
        .select("category_l1", "gmv", "share", "share_change")
    )


def weekly_category_share(
    category_daily: pl.DataFrame, run_date: dt.date, *, weekly: bool = False
) -> pl.DataFrame:
    """GMV share per category and week: 7-day blocks ending on ``run_date``, partial ones dropped.

    With ``weekly`` rows (one per week, dated by its first day) every block holds one row and is whole.
    """
    age = (pl.lit(run_date) - pl.col("date")).dt.total_days()
    weeks = (
        category_daily.filter(pl.col("date") <= run_date)
        .with_columns(week=pl.lit(run_date) - pl.duration(days=(age // 7) * 7))
        .group_by("week", "category_l1")
        .agg(pl.col("gmv").sum(), pl.col("date").n_unique().alias("days"))
    )
    whole = 1 if weekly else 7
    full = weeks.group_by("week").agg(pl.col("days").max() == whole).filter(pl.col("days")).select("week")
    return (
        weeks.join(full, on="week")
        .with_columns(share=pl.col("gmv") / pl.col("gmv").sum().over("week"))
        .sort("week", "category_l1")
        .select("week", "category_l1", "share")
    )


def top_movers(sku_changes: pl.DataFrame, n: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``n`` SKUs whose GMV rose most and the ``n`` whose GMV fell most (ties broken by units)."""
    changes = sku_changes.with_columns(
        gmv_change=pl.col("gmv_now") - pl.col("gmv_before"),
        units_change=pl.col("units_now") - pl.col("units_before"),
        gmv_change_pct=pl.when(pl.col("gmv_before") > 0).then(pl.col("gmv_now") / pl.col("gmv_before") - 1),
    )
    up = changes.filter(pl.col("gmv_change") > 0).sort(
        "gmv_change", "units_change", "sku_id", descending=[True, True, False]
    )
    down = changes.filter(pl.col("gmv_change") < 0).sort(
        "gmv_change", "units_change", "sku_id", descending=[False, False, False]
    )
    return up.head(n), down.head(n)


def event_spans(event_days: pl.DataFrame) -> pl.DataFrame:
    """Contiguous runs of days of one shopping event: ``event, label, start, end, peak``."""
    if event_days.is_empty():
        return pl.DataFrame(
            schema={"event": pl.String, "label": pl.String, "start": pl.Date, "end": pl.Date, "peak": pl.Date}
        )
    days = event_days.sort("date").with_columns(
        span=(
            (pl.col("event") != pl.col("event").shift())
            | ((pl.col("date") - pl.col("date").shift()).dt.total_days() > 1)
        )
        .fill_null(True)
        .cum_sum()
    )
    return (
        days.group_by("span")
        .agg(
            pl.col("event").first(),
            pl.col("date").min().alias("start"),
            pl.col("date").max().alias("end"),
            pl.col("date").filter(pl.col("phase") == "peak").first().alias("peak"),
        )
        .sort("start")
        .with_columns(
            label=pl.col("event").replace_strict(
                EVENT_NAMES, default=pl.col("event").str.replace_all("_", " ").str.to_titlecase()
            )
        )
        .select("event", "label", "start", "end", "peak")
    )
