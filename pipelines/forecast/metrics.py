"""Forecast accuracy metrics, the same for every model (pure functions on polars frames).

Input rows are (model, fold, sku_id, target_date) points with ``actual``, ``p50`` and, for models
with quantiles, ``p10``/``p90`` (the configured levels), plus ``promo`` and ``mase_scale``. Only the
points that count are passed in: observed and in stock (sales on a stock-out day are censored demand,
not demand).

Definitions (sums over the points of one model):
- ``wape`` = sum |p50 - y| / sum y
- ``bias`` = sum (p50 - y) / sum y (negative: under-forecast)
- ``mase`` = mean over (fold, SKU) of mean |p50 - y| / the SKU's in-sample seasonal-naive MAE
  (SKUs whose in-sample MAE is 0 or unknown are left out)
- ``promo_accuracy`` = 1 - WAPE over promotion points
- ``pinball_pXX`` = mean pinball loss at level XX (units); ``coverage_80`` = share of points with
  p10 <= y <= p90 (the outer configured levels); quantile metrics are null for point forecasters
  except ``pinball_p50`` (= MAE / 2)
- ``calibration``: per level q, the share of points below the q forecast, counting ties at half
  (discrete, often-zero demand puts many points exactly on a forecast of 0)
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

METRICS = ("wape", "mase", "bias", "promo_accuracy")


def quantile_name(q: float) -> str:
    return f"p{round(q * 100):d}"


def _pinball(q: float) -> pl.Expr:
    err = pl.col("actual") - pl.col(quantile_name(q))
    return pl.max_horizontal(err * q, err * (q - 1)).mean()


def metric_columns(quantiles: Sequence[float]) -> list[str]:
    """The metric columns of every comparison table, in order."""
    width = round((max(quantiles) - min(quantiles)) * 100)
    return [*METRICS, *(f"pinball_{quantile_name(q)}" for q in quantiles), f"coverage_{width}", "n_points"]


def summarise(points: pl.DataFrame, by: Sequence[str], quantiles: Sequence[float]) -> pl.DataFrame:
    """One row per group of ``by`` with every metric (same columns for every model)."""
    lo, hi = quantile_name(min(quantiles)), quantile_name(max(quantiles))
    width = round((max(quantiles) - min(quantiles)) * 100)
    frame = points
    for q in quantiles:
        name = quantile_name(q)
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Float64).alias(name))
    abs_err = (pl.col("p50") - pl.col("actual")).abs()
    promo = pl.col("promo") > 0.5
    per_sku = (
        frame.group_by(*dict.fromkeys([*by, "fold", "sku_id"]))
        .agg(abs_err.mean().alias("_mae"), pl.col("mase_scale").first())
        .filter(pl.col("mase_scale").is_finite() & (pl.col("mase_scale") > 0))
        .group_by(*by)
        .agg((pl.col("_mae") / pl.col("mase_scale")).mean().alias("mase"))
    )
    has_q = pl.col(lo).is_not_null() & pl.col(hi).is_not_null()
    aggs = [
        (abs_err.sum() / pl.col("actual").sum()).alias("wape"),
        ((pl.col("p50") - pl.col("actual")).sum() / pl.col("actual").sum()).alias("bias"),
        (1 - abs_err.filter(promo).sum() / pl.col("actual").filter(promo).sum()).alias("promo_accuracy"),
        *(
            pl.when(pl.col(quantile_name(q)).is_not_null().all())
            .then(_pinball(q))
            .alias(f"pinball_{quantile_name(q)}")
            for q in quantiles
        ),
        pl.when(has_q.all())
        .then(((pl.col(lo) <= pl.col("actual")) & (pl.col("actual") <= pl.col(hi))).mean())
        .alias(f"coverage_{width}"),
        pl.len().alias("n_points"),
    ]
    out = frame.group_by(*by).agg(aggs).join(per_sku, on=list(by), how="left")
    return (
        out.select(*by, *metric_columns(quantiles))
        .with_columns(pl.col(pl.Float32).cast(pl.Float64))
        .sort(list(by))
    )


def calibration(points: pl.DataFrame, quantiles: Sequence[float]) -> pl.DataFrame:
    """Per model and level: observed share below the forecast quantile (ties count half)."""
    rows = []
    for q in quantiles:
        name = quantile_name(q)
        if name not in points.columns:
            continue
        rows.append(
            points.filter(pl.col(name).is_not_null())
            .group_by("model")
            .agg(
                (
                    (pl.col("actual") < pl.col(name)).cast(pl.Float64)
                    + 0.5 * (pl.col("actual") == pl.col(name)).cast(pl.Float64)
                )
                .mean()
                .alias("observed"),
                pl.len().alias("n_points"),
            )
            .with_columns(pl.lit(q).alias("quantile"))
        )
    if not rows:
        return pl.DataFrame(schema={"model": pl.String, "quantile": pl.Float64, "observed": pl.Float64})
    return pl.concat(rows).select("model", "quantile", "observed", "n_points").sort("model", "quantile")
