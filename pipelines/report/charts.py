"""Report charts: pure functions from polars frames to inline SVG strings.

Figures are built with matplotlib's object API (``Figure``, never ``pyplot``), so no GUI backend
is selected and no global figure state is touched; style settings apply only inside each call.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import matplotlib as mpl
import matplotlib.dates as mdates
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from pipelines.report.metrics import currency_prefix

INK = "#1f2933"
MUTED = "#8a94a6"
GRID = "#e4e7eb"
ACCENT = "#2563eb"
SECOND = "#ea580c"
EVENT = "#f59e0b"
PALETTE = (
    "#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626",
    "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d",
)  # fmt: skip
OTHER = "#cbd5e1"
MAX_CATEGORIES = len(PALETTE)

_STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["Helvetica Neue", "Helvetica", "Arial", "DejaVu Sans"],
    "font.size": 9,
    "axes.edgecolor": GRID,
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlecolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "legend.frameon": False,
    "legend.fontsize": 8,
    # Text stays text (the page's fonts render it): files are smaller and labels selectable.
    "svg.fonttype": "none",
}


@contextmanager
def _style(name: str) -> Iterator[None]:
    # A fixed salt per chart keeps the SVG ids stable between runs and distinct between charts.
    with mpl.rc_context({**_STYLE, "svg.hashsalt": name}):
        yield


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    # Drop the XML prolog and DOCTYPE: the SVG is embedded in HTML.
    return text[text.index("<svg") :]


def _compact(prefix: str = "") -> Callable[[float, float], str]:
    def fmt(x: float, _pos: float) -> str:
        for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(x) >= size:
                return f"{prefix}{x / size:.3g}{suffix}"
        return f"{prefix}{x:.0f}"

    return fmt


def _values(frame: pl.DataFrame, column: str):  # type: ignore[no-untyped-def]
    # Floats with NaN for nulls: matplotlib leaves a gap instead of failing on None.
    return frame[column].cast(pl.Float64).to_numpy()


def _date_axis(ax) -> None:  # type: ignore[no-untyped-def]
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))


def trend_chart(
    daily: pl.DataFrame, events: pl.DataFrame | None = None, currency: str = "CNY", *, weekly: bool = False
) -> str:
    """Daily (or weekly) GMV and orders with their trailing means, shopping events shaded.

    Args:
        daily: ``date, gmv, orders, gmv_avg, orders_avg``, one row per day (``weekly``: per week).
        events: ``label, start, end, peak`` spans to shade, or None.
    """
    with _style("trend"):
        # No orders landed (order_lines is optional): GMV alone rather than an empty panel of zeros.
        orders = daily["orders"].is_not_null().any()
        fig = Figure(figsize=(10, 4.6 if orders else 2.6), layout="constrained")
        axes = list(fig.subplots(2, 1, sharex=True)) if orders else [fig.subplots(1, 1)]
        top = axes[0]
        dates = daily["date"].to_list()
        panels = [("gmv", f"GMV ({currency})", _compact(currency_prefix(currency)))]
        if orders:
            panels.append(("orders", "Orders", _compact()))
        for ax, (column, title, fmt) in zip(axes, panels, strict=True):
            ax.plot(
                dates,
                _values(daily, column),
                color=MUTED,
                linewidth=0.8,
                alpha=0.8,
                label="weekly" if weekly else "daily",
            )
            mean = "4-week mean" if weekly else "7-day mean"
            ax.plot(dates, _values(daily, f"{column}_avg"), color=ACCENT, linewidth=2, label=mean)
            ax.set_title(title)
            ax.yaxis.set_major_formatter(FuncFormatter(fmt))
            ax.set_ylim(bottom=0)
            ax.margins(x=0.01)
        if events is not None and dates:
            first, last = min(dates), max(dates)
            for span in events.iter_rows(named=True):
                if span["end"] < first or span["start"] > last:
                    continue
                for ax in axes:
                    ax.axvspan(span["start"], span["end"], color=EVENT, alpha=0.12, linewidth=0)
                    if span["peak"] is not None:
                        ax.axvline(span["peak"], color=EVENT, linewidth=1.2, alpha=0.9)
                top.annotate(
                    span["label"],
                    xy=(span["peak"] or span["start"], 1),
                    xycoords=("data", "axes fraction"),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color="#b45309",
                )
        top.legend(loc="upper left", ncols=2, bbox_to_anchor=(0, 1.0))
        _date_axis(axes[-1])
        return _svg(fig)


def category_mix_chart(mix: pl.DataFrame, weekly: pl.DataFrame) -> str:
    """GMV share per category over the mix window (bars) and its weekly trend (stacked areas).

    Args:
        mix: ``category_l1, share``, largest first.
        weekly: ``week, category_l1, share``.
    """
    top = mix["category_l1"].head(MAX_CATEGORIES - 1 if mix.height > MAX_CATEGORIES else MAX_CATEGORIES)
    colors = dict(zip(top.to_list(), PALETTE, strict=False))
    lump = pl.when(pl.col("category_l1").is_in(top.implode())).then("category_l1").otherwise(pl.lit("Other"))
    bars = mix.group_by(lump.alias("category_l1"), maintain_order=True).agg(pl.col("share").sum())
    order = [*top.to_list(), "Other"]
    stacked = (
        weekly.group_by("week", lump.alias("category_l1"))
        .agg(pl.col("share").sum())
        .pivot("category_l1", index="week", values="share")
        .sort("week")
        .fill_null(0.0)
    )
    layers = [c for c in order if c in stacked.columns]
    with _style("category_mix"):
        fig = Figure(figsize=(10, 3.4), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=(2, 3))
        names = bars["category_l1"].to_list()[::-1]
        shares = bars["share"].to_list()[::-1]
        left.barh(names, shares, color=[colors.get(n, OTHER) for n in names], height=0.7)
        for y, share in enumerate(shares):
            left.annotate(
                f"{share:.1%}", (share, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
            )
        left.set_title("GMV share, last 28 days")
        left.xaxis.set_major_formatter(PercentFormatter(1, decimals=0))
        left.grid(axis="y", visible=False)
        left.grid(axis="x", visible=True)
        left.set_xlim(0, max(shares, default=0) * 1.2 or 1)
        right.set_title("Weekly GMV share")
        if stacked.height:
            right.stackplot(
                stacked["week"].to_list(),
                [_values(stacked, c) for c in layers],
                labels=layers,
                colors=[colors.get(c, OTHER) for c in layers],
                alpha=0.9,
                linewidth=0,
            )
            right.legend(loc="center left", bbox_to_anchor=(1, 0.5), reverse=True)
            _date_axis(right)
        right.set_ylim(0, 1)
        right.margins(x=0)
        right.yaxis.set_major_formatter(PercentFormatter(1, decimals=0))
        return _svg(fig)


def inventory_chart(daily: pl.DataFrame) -> str:
    """Inventory turnover, stock-out rate and fill rate over time.

    Args:
        daily: ``date, inventory_turnover, stockout_rate, fill_rate``, one row per day.
    """
    with _style("inventory"):
        fig = Figure(figsize=(10, 2.6), layout="constrained")
        axes = fig.subplots(1, 3, sharex=True)
        dates = daily["date"].to_list()
        for ax, column, title, color, fmt in (
            (axes[0], "inventory_turnover", "Inventory turnover (annualised)", ACCENT, None),
            (axes[1], "stockout_rate", "Stock-out rate", SECOND, PercentFormatter(1, decimals=1)),
            (axes[2], "fill_rate", "Fill rate", "#16a34a", PercentFormatter(1, decimals=1)),
        ):
            ax.plot(dates, _values(daily, column), color=color, linewidth=1.6)
            ax.set_title(title)
            ax.margins(x=0.01)
            if fmt is not None:
                ax.yaxis.set_major_formatter(fmt)
            else:
                ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:.1f}×"))
            _date_axis(ax)
        return _svg(fig)


def forecast_band_chart(band: pl.DataFrame, skus: pl.DataFrame, run_date: dt.date) -> str:
    """Forecast against actual units for a few SKUs, one panel each, with the p10-p90 band.

    Args:
        band: ``sku_id, kind, date, units, p10, p50, p90``; ``kind`` is ``actual`` (units sold),
            ``next_day`` (each past day's forecast made the day before) or ``latest`` (the run's
            forecast ahead).
        skus: ``sku_id, label`` in panel order.
        run_date: The forecast run's date, marked on every panel.
    """
    n = skus.height
    cols = 2 if n > 1 else 1
    rows = max(1, -(-n // cols))
    with _style("forecast_band"):
        fig = Figure(figsize=(10, 2.3 * rows + 0.4), layout="constrained")
        axes = fig.subplots(rows, cols, sharex=True, squeeze=False).ravel()
        for ax, sku in zip(axes, skus.iter_rows(named=True), strict=False):
            frame = band.filter(pl.col("sku_id") == sku["sku_id"]).sort("date")
            for kind, color, alpha, label in (
                ("next_day", MUTED, 0.18, "forecast a day ahead"),
                ("latest", ACCENT, 0.22, f"forecast of {run_date}"),
            ):
                part = frame.filter(pl.col("kind") == kind)
                if part.height:
                    dates = part["date"].to_list()
                    ax.fill_between(
                        dates,
                        _values(part, "p10"),
                        _values(part, "p90"),
                        color=color,
                        alpha=alpha,
                        linewidth=0,
                    )
                    ax.plot(
                        dates,
                        _values(part, "p50"),
                        color=color,
                        linewidth=1.4,
                        label=f"{label} (p50, p10-p90)",
                    )
            actual = frame.filter(pl.col("kind") == "actual")
            if actual.height:
                ax.plot(
                    actual["date"].to_list(),
                    _values(actual, "units"),
                    color=INK,
                    linewidth=1.2,
                    label="units sold",
                )
            ax.axvline(run_date, color=SECOND, linewidth=1, linestyle="--")
            ax.set_title(sku["label"])
            ax.set_ylim(bottom=0)
            ax.margins(x=0.01)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            ax.yaxis.set_major_formatter(FuncFormatter(_compact()))
            _date_axis(ax)
        for ax in axes[n:]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside upper left", ncols=len(handles))
        return _svg(fig)


def forecast_accuracy_chart(
    weekly: pl.DataFrame, by_horizon: pl.DataFrame, horizon_unit: str = "days"
) -> str:
    """Realised accuracy: WAPE by target week, WAPE by horizon and p10-p90 coverage by horizon.

    Args:
        weekly: ``model, target_week, wape``.
        by_horizon: ``model, horizon, wape, coverage``.
        horizon_unit: What a horizon step is (``days``; ``periods`` when a weekly model is shown).
    """
    models = sorted({*weekly["model"].to_list(), *by_horizon["model"].to_list()})
    colors = dict(zip(models, PALETTE * (len(models) // len(PALETTE) + 1), strict=False))
    with _style("forecast_accuracy"):
        fig = Figure(figsize=(10, 2.8), layout="constrained")
        by_week_ax, wape_ax, coverage_ax = fig.subplots(1, 3, width_ratios=(4, 3, 3))
        for model in models:
            week = weekly.filter(pl.col("model") == model).sort("target_week")
            horizon = by_horizon.filter(pl.col("model") == model).sort("horizon")
            style = {"color": colors[model], "linewidth": 1.6, "marker": "o", "markersize": 3}
            by_week_ax.plot(week["target_week"].to_list(), _values(week, "wape"), label=model, **style)
            wape_ax.plot(horizon["horizon"].to_list(), _values(horizon, "wape"), **style)
            coverage_ax.plot(horizon["horizon"].to_list(), _values(horizon, "coverage"), **style)
        coverage_ax.axhline(0.8, color=MUTED, linewidth=1, linestyle="--")
        coverage_ax.annotate(
            "nominal 80%", (1, 0.8), xycoords=("axes fraction", "data"), xytext=(-2, 3),
            textcoords="offset points", ha="right", fontsize=8, color=MUTED,
        )  # fmt: skip
        by_week_ax.set_title("WAPE by target week")
        wape_ax.set_title("WAPE by horizon")
        coverage_ax.set_title("p10-p90 coverage by horizon")
        for ax in (by_week_ax, wape_ax, coverage_ax):
            ax.yaxis.set_major_formatter(PercentFormatter(1, decimals=0))
            ax.set_ylim(bottom=0)
        coverage_ax.set_ylim(0, 1.05)
        for ax in (wape_ax, coverage_ax):
            ax.set_xlabel(f"horizon ({horizon_unit} ahead)")
        if weekly.height:
            _date_axis(by_week_ax)
        if len(models) > 1:
            by_week_ax.legend(loc="upper left")
        return _svg(fig)


def price_gap_chart(gaps: pl.DataFrame, day: dt.date) -> str:
    """Distribution of our price's gap to the cheapest rival, one value per SKU on ``day``.

    Args:
        gaps: ``gap_to_min_pct`` (percent; > 0: dearer than the cheapest rival).
        day: The day the gaps are of, for the title.
    """
    values = gaps["gap_to_min_pct"].drop_nulls().cast(pl.Float64).to_numpy()
    with _style("price_gap"):
        fig = Figure(figsize=(10, 2.8), layout="constrained")
        ax = fig.subplots(1, 1)
        if len(values):
            low, high = float(min(values.min(), 0.0)), float(max(values.max(), 0.0))
            bins = max(10, min(40, len(values) // 3))
            edges = [low + (high - low) * i / bins for i in range(bins + 1)] if high > low else bins
            below = values[values <= 0]
            above = values[values > 0]
            ax.hist([below, above], bins=edges, stacked=True, color=[ACCENT, SECOND],
                    label=["at or below the cheapest rival", "dearer"])  # fmt: skip
            ax.legend(loc="upper right")
        ax.axvline(0, color=INK, linewidth=1)
        ax.set_title(f"Our price against the cheapest rival, {day} (SKUs)")
        ax.set_xlabel("gap to the cheapest rival's price")
        ax.xaxis.set_major_formatter(PercentFormatter(100, decimals=0))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        return _svg(fig)


def elasticity_chart(by_category: pl.DataFrame) -> str:
    """Own-price elasticity by category: the median with the interquartile range and the extremes.

    Args:
        by_category: ``category, skus, median, p25, p75, low, high``, one row per category.
    """
    frame = by_category.sort("median", descending=True)
    names = [f"{c} ({n})" for c, n in zip(frame["category"].to_list(), frame["skus"].to_list(), strict=True)]
    with _style("elasticity"):
        fig = Figure(figsize=(10, 0.5 + 0.32 * max(frame.height, 2)), layout="constrained")
        ax = fig.subplots(1, 1)
        ys = list(range(frame.height))
        ax.hlines(ys, _values(frame, "low"), _values(frame, "high"), color=OTHER, linewidth=1.2)
        ax.hlines(ys, _values(frame, "p25"), _values(frame, "p75"), color=ACCENT, linewidth=5, alpha=0.5)
        ax.plot(_values(frame, "median"), ys, "o", color=ACCENT, markersize=5)
        ax.set_yticks(ys, names)
        ax.axvline(-1, color=MUTED, linewidth=1, linestyle="--")
        ax.annotate(
            "unit elastic", (-1, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
            textcoords="offset points", fontsize=8, color=MUTED,
        )  # fmt: skip
        ax.set_title("Own-price elasticity by category, identified SKUs (median, quartiles, range)")
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", visible=True)
        return _svg(fig)
