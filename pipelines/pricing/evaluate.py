"""Evaluate elasticity estimators on held-out days, and against the truth where a simulator wrote one.

Every estimator is fitted on the days before the last ``holdout_days`` and judged on those days:

- ``price_deviance`` (the primary metric, data only): mean Poisson deviance of held-out units
  predicted by one shared context model (the DML demand and price nuisances: what the controls say
  about units and prices) times ``exp(own * price residual + cross * rival residual)`` with each
  estimator's own per-SKU elasticities. Only the elasticities differ between estimators, so the
  metric rewards the elasticity that best predicts how held-out units move with held-out price
  deviations beyond what promotion, calendar, stock cover and context explain, and a baseline
  whose slope soaks up a promotion's display uplift or a peak day's demand (biased on endogenous
  prices) is penalised. A plain predictive metric would not do that: it mostly scores the
  controls, and at the prices actually charged it rewards a biased slope that tracks the
  confounders.
- ``deviance`` and ``wape``: each estimator's own demand predictions at the prices charged.
- ``truth_*`` (where ``truth`` is given): own-elasticity MAE, share with the right sign, Spearman
  rank correlation and mean bias on identified SKUs (``_all``: every SKU), cross-elasticity MAE,
  and a table by demand decile (sparse SKUs are the hard part).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipelines.ml.family import Evaluation, Progress, Recipe
from pipelines.pricing import estimators as est
from pipelines.pricing.dataset import split_holdout

DECILES = 10


def _silent(_message: str) -> None:
    return None


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Mean Poisson deviance of counts ``y`` against means ``mu``."""
    mu = np.maximum(mu, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(np.mean(2.0 * (term - (y - mu))))


def wape(y: np.ndarray, mu: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |y - mu| / sum y."""
    total = float(np.sum(y))
    return float(np.sum(np.abs(y - mu)) / total) if total > 0 else math.nan


def read_truth(truth_dir: Path) -> pl.DataFrame | None:
    """Per-SKU true ``true_own`` and ``true_cross`` elasticities from a simulator, or None.

    ``sku_params.parquet``'s ``own_price_elasticity`` and ``cross_price_elasticity`` where the
    simulator writes them; else its demand model's ``elasticity`` and ``cross_elasticity``, whose
    own effect at fixed rival prices is their difference.
    """
    path = Path(truth_dir) / "sku_params.parquet"
    if not path.is_file():
        return None
    params = pl.read_parquet(path)
    if "own_price_elasticity" in params.columns:
        own = pl.col("own_price_elasticity")
        cross = pl.col("cross_price_elasticity")
    elif {"elasticity", "cross_elasticity"} <= set(params.columns):
        own = pl.col("elasticity") - pl.col("cross_elasticity")
        cross = pl.col("cross_elasticity")
    else:
        return None
    return params.select(
        pl.col("sku_id").cast(pl.Int64),
        own.cast(pl.Float64).alias("true_own"),
        cross.cast(pl.Float64).alias("true_cross"),
    )


def truth_metrics(estimates: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Own-elasticity MAE, right-sign share, Spearman and bias on identified SKUs and all (``_all``)."""
    joined = estimates.join(truth, on="sku_id", how="inner").drop_nulls("own_elasticity")
    out: dict[str, float] = {}
    for suffix, rows in (("", joined.filter("identified")), ("_all", joined)):
        err = rows["own_elasticity"] - rows["true_own"]
        n = rows.height
        out[f"truth_mae{suffix}"] = float(err.abs().mean()) if n else math.nan
        out[f"truth_bias{suffix}"] = float(err.mean()) if n else math.nan
        right = (rows["own_elasticity"].sign() == rows["true_own"].sign()).mean() if n else None
        out[f"truth_sign_share{suffix}"] = float(right) if right is not None else math.nan
        rho = rows.select(pl.corr("own_elasticity", "true_own", method="spearman")).item() if n > 2 else None
        out[f"truth_spearman{suffix}"] = float(rho) if rho is not None else math.nan
        out[f"truth_skus{suffix}"] = float(n)
    cross = joined.drop_nulls("cross_elasticity")
    out["truth_cross_mae"] = (
        float((cross["cross_elasticity"] - cross["true_cross"]).abs().mean()) if cross.height else math.nan
    )
    return out


def by_demand_decile(
    label: str, estimates: pl.DataFrame, truth: pl.DataFrame, demand: pl.DataFrame
) -> pl.DataFrame:
    """Truth metrics per decile of the SKUs' mean units (1 = sparsest)."""
    rows = (
        estimates.join(truth, on="sku_id", how="inner")
        .join(demand, on="sku_id", how="left")
        .drop_nulls("own_elasticity")
        .with_columns(
            (pl.col("mean_units").rank("ordinal") * DECILES / pl.len())
            .ceil()
            .cast(pl.Int32)
            .alias("demand_decile")
        )
    )
    err = pl.col("own_elasticity") - pl.col("true_own")
    return (
        rows.group_by("demand_decile")
        .agg(
            pl.len().alias("skus"),
            pl.col("mean_units").mean(),
            pl.col("identified").mean().alias("identified_share"),
            err.abs().mean().alias("truth_mae"),
            err.mean().alias("truth_bias"),
            (pl.col("own_elasticity").sign() == pl.col("true_own").sign()).mean().alias("truth_sign_share"),
            pl.corr("own_elasticity", "true_own", method="spearman").alias("truth_spearman"),
        )
        .sort("demand_decile")
        .with_columns(pl.lit(label).alias("model"))
        .select("model", pl.exclude("model"))
    )


def _context(shared: est.Fitted, train: pl.DataFrame, test: pl.DataFrame) -> dict[str, Any]:
    """The shared context model's demand and treatment residuals on both periods."""
    out = {}
    for name, frame in (("train", train), ("test", test)):
        demand, m1, m2 = est.dml_nuisance(shared, frame)
        d1, d2, has2 = est.treatments(frame)
        out[name] = (frame.select("sku_id", "category"), demand, d1 - m1, np.where(has2, d2 - m2, 0.0))
    return out


def _price_response(fitted: est.Fitted, context: Mapping[str, Any], train_units: np.ndarray) -> np.ndarray:
    """Held-out units from the shared context and ``fitted``'s elasticities (levels set on training)."""

    def eta(part: str) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
        keys, demand, r1, r2 = context[part]
        effects = est.row_effects(fitted, keys)
        return keys, demand, effects["own"] * r1 + np.nan_to_num(effects["cross"]) * r2

    keys, demand, move = eta("train")
    base = demand * np.exp(np.clip(move, -20, 20))
    level = (
        pl.DataFrame({"sku_id": keys["sku_id"], "y": train_units, "p": base})
        .group_by("sku_id")
        .agg((pl.col("y").sum().clip(0.5) / pl.col("p").sum().clip(1e-9)).alias("scale"))
    )
    test_keys, test_demand, test_move = eta("test")
    scale = test_keys.join(level, on="sku_id", how="left")["scale"].fill_null(1.0).to_numpy()
    return test_demand * np.exp(np.clip(test_move, -20, 20)) * scale


def evaluate_estimators(
    frame: pl.DataFrame,
    recipes: Mapping[str, Recipe],
    *,
    holdout_days: int,
    truth: pl.DataFrame | None = None,
    progress: Progress | None = None,
    figures: bool = True,
) -> Evaluation:
    """Fit every recipe on the training days and compare them on the held-out days (and the truth).

    Raises:
        pipelines.ml.family.FamilyDataError: Too few days to hold any out.
    """
    say = progress or _silent
    train, test = split_holdout(frame, holdout_days)
    fits: dict[str, est.Fitted] = {}
    seconds: dict[str, float] = {}
    for label, recipe in recipes.items():
        say(f"fitting {label} ({recipe.kind}) on {train['date'].min()} .. {train['date'].max()}")
        started = time.perf_counter()
        fits[label] = est.fit(recipe.kind, train, recipe.params)
        seconds[label] = time.perf_counter() - started
    shared = next((f for f in fits.values() if f.kind == "dml"), None)
    if shared is None:
        say("fitting the shared context model (dml nuisances) for price_deviance")
        shared = est.fit("dml", train, next(iter(recipes.values())).params)
    context = _context(shared, train, test)
    y_train = train["units"].to_numpy().astype(np.float64)
    y = test["units"].to_numpy().astype(np.float64)
    demand = train.group_by("sku_id").agg(pl.col("units").mean().alias("mean_units"))
    rows, deciles, estimates = [], [], []
    for label, fitted in fits.items():
        table = est.elasticities(fitted)
        own_pred = est.predict_units(fitted, test)
        row: dict[str, Any] = {
            "model": label,
            "price_deviance": poisson_deviance(y, _price_response(fitted, context, y_train)),
            "deviance": poisson_deviance(y, own_pred),
            "wape": wape(y, own_pred),
            "median_own_elasticity": float(table["own_elasticity"].median() or math.nan),
            "identified_share": float(table["identified"].mean() or 0.0),
            "seconds": seconds[label],
        }
        if truth is not None:
            row |= truth_metrics(table, truth)
            deciles.append(by_demand_decile(label, table, truth, demand))
        row["n_points"] = test.height
        rows.append(row)
        estimates.append(table.with_columns(pl.lit(label).alias("model")))
    comparison = pl.DataFrame(rows)
    tables: dict[str, pl.DataFrame] = {"elasticities": pl.concat(estimates, how="diagonal_relaxed")}
    charts: dict[str, Any] = {}
    if truth is not None:
        tables["truth_by_decile"] = pl.concat(deciles, how="diagonal_relaxed")
        tables["elasticities"] = tables["elasticities"].join(truth, on="sku_id", how="left")
        if figures:
            charts["estimated_vs_true"] = _scatter(tables["elasticities"])
    return Evaluation(comparison=comparison, tables=tables, figures=charts, state=fits)


def _scatter(table: pl.DataFrame) -> Any:
    """Estimated against true own elasticity, one panel per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = table["model"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 4), squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        rows = table.filter(pl.col("model") == label).drop_nulls(["own_elasticity", "true_own"])
        colour = np.where(rows["identified"].to_numpy(), "tab:blue", "tab:grey")
        ax.scatter(rows["true_own"], rows["own_elasticity"], s=6, c=colour, alpha=0.6)
        lo = float(min(rows["true_own"].min() or -3, -3))
        ax.plot([lo, 0], [lo, 0], color="black", linewidth=0.8)
        ax.set_title(label)
        ax.set_xlabel("true own elasticity")
    axes[0][0].set_ylabel("estimated (grey: not identified)")
    fig.tight_layout()
    return fig
