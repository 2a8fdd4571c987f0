"""The pricing replay run against the simulator's truth, and its KPIs written to the warehouse.

The replay (:mod:`pipelines.pricing.replay`) needs the true demand model, which only the simulated
world has (``data/truth``). Here it is read for the weeks up to a run date, the champion's scored
elasticities drive the AI policy, and the KPIs per policy and seed replace the run date's rows of
``pricing.replay_kpis`` for the report and the ``mart_pricing_replay`` mart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from pipelines.config import Settings

REPLAY_TABLE = "pricing.replay_kpis"
REPLAY_COLUMNS = {
    "run_date": "date",
    "policy": "varchar",
    "seed": "integer",
    "revenue": "double",
    "gross_profit": "double",
    "gross_margin_pct": "double",
    "price_advantage_share": "double",
    "turnover": "double",
    "stockout_share": "double",
    "price_changes_per_sku_day": "double",
    "mean_abs_change_pct": "double",
    "model_version": "varchar",
}


class ReplayUnavailable(LookupError):
    """The replay cannot run for a date: no simulator truth, or no elasticities scored (says which)."""


def replay_inputs(
    settings: Settings, con: Any, run_date: dt.date, weeks: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The truth of the ``weeks`` up to ``run_date`` (and the warm-up before), the products, and the
    elasticities scored for the date (with their ``model_version``).

    Raises:
        ReplayUnavailable: No simulator truth in ``settings.truth_dir``, or no scores for the date.
    """
    from pipelines.pricing.replay import WARMUP_DAYS, load_pricing_truth

    try:
        truth = load_pricing_truth(settings.truth_dir)
    except FileNotFoundError as exc:
        raise ReplayUnavailable(
            f"no simulator truth in {settings.truth_dir}: nothing to replay against"
        ) from exc
    start = run_date - dt.timedelta(days=7 * weeks + WARMUP_DAYS - 1)
    products = con.sql("select sku_id, list_price, unit_cost from marts.dim_products").pl()
    elasticities = con.sql(
        "select sku_id, own_elasticity, cross_elasticity, model_version "
        "from pricing.price_elasticity where run_date = ?",
        params=[run_date],
    ).pl()
    if elasticities.is_empty():
        raise ReplayUnavailable(f"no elasticities scored for {run_date}: run `ecom score pricing` first")
    return truth.filter(pl.col("date").is_between(start, run_date)), products, elasticities


def replay_kpis_for(
    settings: Settings, run_date: dt.date, *, weeks: int, seeds: Sequence[int]
) -> dict[str, Any]:
    """Replay the policies over the ``weeks`` up to ``run_date``; write their KPIs for the run date."""
    from pipelines.ml.store import replace_partition
    from pipelines.pricing.replay import replay_pricing
    from pipelines.warehouse import connect_warehouse

    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        try:
            truth, products, elasticities = replay_inputs(settings, con, run_date, weeks)
        except ReplayUnavailable as exc:
            return {"skipped": str(exc)}
        version = str(elasticities["model_version"][0])
        result = replay_pricing(
            truth, products, elasticities.drop("model_version"), settings.pricing, weeks=weeks, seeds=seeds
        )
        rows = result.per_seed.with_columns(
            pl.lit(run_date).alias("run_date"),
            pl.col("seed").cast(pl.Int32),
            pl.lit(version).alias("model_version"),
        )
        replace_partition(con, REPLAY_TABLE, REPLAY_COLUMNS, rows, run_date)
    finally:
        con.close()
    means = rows.group_by("policy").agg(pl.col("revenue", "gross_margin_pct").mean()).sort("policy")
    return {
        "weeks": weeks,
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "skus": result.skus,
        "seeds": len(seeds),
        "model_version": version,
        **{f"{r['policy']}_margin_pct": round(r["gross_margin_pct"], 2) for r in means.iter_rows(named=True)},
    }
