"""Backtest figures (matplotlib's object API: no pyplot, no global state)."""

from __future__ import annotations

import polars as pl
from matplotlib.figure import Figure

_COLOURS = {
    "lstm": "tab:blue",
    "seasonal_naive": "tab:gray",
    "moving_average": "tab:orange",
    "xgboost": "tab:green",
}


def forecast_vs_actual(samples: pl.DataFrame) -> Figure:
    """One panel per sample SKU: history, actuals and every model's p50 (LSTM with its p10-p90 band)."""
    skus = samples["sku_id"].unique().sort().to_list() if not samples.is_empty() else []
    n = max(len(skus), 1)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(6 * cols, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, sku in zip(axes, skus, strict=False):
        one = samples.filter(pl.col("sku_id") == sku)
        history = one.filter(pl.col("model") == "history")
        ax.plot(history["target_date"], history["actual"], color="black", lw=1, label="history")
        models = [m for m in one["model"].unique().sort().to_list() if m != "history"]
        if models:
            actual = one.filter(pl.col("model") == models[0])
            ax.plot(actual["target_date"], actual["actual"], color="black", lw=1, ls=":", label="actual")
        for model in models:
            part = one.filter(pl.col("model") == model)
            ax.plot(part["target_date"], part["p50"], color=_COLOURS.get(model), lw=1.2, label=model)
            if model == "lstm" and "p10" in part.columns and "p90" in part.columns:
                ax.fill_between(
                    part["target_date"], part["p10"], part["p90"], color=_COLOURS["lstm"], alpha=0.2
                )
        ax.set_title(f"SKU {sku}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(skus) :]:
        ax.set_visible(False)
    if skus:
        axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Forecast vs actual (last backtest fold, stock-out days included in the plot)")
    return fig


def error_by_category(per_category: pl.DataFrame) -> Figure:
    """WAPE per category_l1, one bar per model."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    categories = per_category["category_l1"].unique().sort().to_list()
    models = per_category["model"].unique().sort().to_list()
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        part = per_category.filter(pl.col("model") == model)
        lookup = dict(zip(part["category_l1"], part["wape"], strict=True))
        xs = [j + i * width for j in range(len(categories))]
        ax.bar(xs, [lookup.get(c) or 0.0 for c in categories], width, label=model, color=_COLOURS.get(model))
    ax.set_xticks(
        [j + width * (len(models) - 1) / 2 for j in range(len(categories))], categories, rotation=30
    )
    ax.set_ylabel("WAPE")
    ax.set_title("Backtest WAPE by category (lower is better)")
    ax.legend(fontsize=8)
    return fig


def quantile_calibration(calibration: pl.DataFrame) -> Figure:
    """Observed share below each forecast quantile vs its nominal level (the diagonal is perfect)."""
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="perfect")
    for model in calibration["model"].unique().sort().to_list() if not calibration.is_empty() else []:
        part = calibration.filter(pl.col("model") == model).sort("quantile")
        ax.plot(part["quantile"], part["observed"], marker="o", label=model, color=_COLOURS.get(model))
    ax.set_xlabel("nominal quantile")
    ax.set_ylabel("observed share below (ties count half)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Quantile calibration")
    ax.legend(fontsize=8)
    return fig
