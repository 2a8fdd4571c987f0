"""The simulated merchant prices from stock and demand, so a naive price regression is biased."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.data import world as w
from pipelines.data.simulation.signals import simulate_signals
from pipelines.data.simulation.skus import simulate_chunk

START = dt.date(2024, 1, 1)
PRICE_COLUMNS = {
    "date": pl.Date,
    "sku_id": pl.Int64,
    "shelf_price": pl.Float64,
    "discount_pct": pl.Float64,
    "price": pl.Float64,
    "competitor_min_price": pl.Float64,
    "expected_demand": pl.Float64,
    "on_hand_units": pl.Int64,
    "merchant_action": pl.String,
}


def _truth(world: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(world / "data" / "truth" / f"{name}.parquet")


def _landed(world: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(world / "data" / "generated" / f"{name}.parquet")


def _naive_slopes(frame: pl.DataFrame, y: pl.Expr, params: pl.DataFrame) -> pl.DataFrame:
    """Per-SKU OLS slope of ``y`` on log price paid, no controls, next to the true own-price elasticity."""
    return (
        frame.with_columns(x=pl.col("price").log(), y=y)
        .group_by("sku_id")
        .agg(
            slope=pl.cov("x", "y") / pl.col("x").var(),
            price_sd=pl.col("x").std(),
            units=pl.col("units").sum(),
        )
        .filter((pl.col("price_sd") > 0.02) & (pl.col("units") >= 50))
        .join(params.select("sku_id", "own_price_elasticity"), on="sku_id")
        .with_columns(error=pl.col("slope") - pl.col("own_price_elasticity"))
    )


def test_prices_truth_has_its_columns_and_matches_the_landed_prices(tiny_world: Path) -> None:
    prices = _truth(tiny_world, "prices")
    assert dict(prices.schema) == PRICE_COLUMNS
    assert prices.select("date", "sku_id").is_duplicated().sum() == 0
    assert set(prices["merchant_action"].unique()) <= {"none", "markdown", "markup"}
    sales = _landed(tiny_world, "daily_sales")
    joined = sales.join(prices, on=["date", "sku_id"], how="left")
    assert joined["price"].null_count() == 0 and sales.height == 2 * prices.height
    assert (joined["price_paid"] == joined["price"]).all()
    paid = prices["shelf_price"] * (1 - prices["discount_pct"] / 100)
    assert (paid - prices["price"]).abs().max() <= 0.005 + 1e-9  # rounded to the cent
    inventory = _landed(tiny_world, "inventory_snapshots").join(prices, on=["date", "sku_id"])
    assert inventory.height == prices.height
    assert (inventory["on_hand_units"] == inventory["on_hand_units_right"]).all()
    demand = _truth(tiny_world, "demand").group_by("date", "sku_id").agg(pl.col("expected_demand").sum())
    both = prices.join(demand, on=["date", "sku_id"])
    assert both.height == prices.height
    assert (both["expected_demand"] - both["expected_demand_right"]).abs().max() < 1e-4
    # Null only where no rival carries the SKU; otherwise the cheapest rival price that day.
    rivals = _landed(tiny_world, "competitor_prices")
    assert prices["competitor_min_price"].null_count() < prices.height
    assert prices["competitor_min_price"].drop_nulls().min() > 0
    assert rivals["sku_id"].n_unique() == prices["sku_id"].n_unique()
    params = _truth(tiny_world, "sku_params")
    assert np.allclose(params["own_price_elasticity"], params["elasticity"] - params["cross_elasticity"])
    assert (params["cross_price_elasticity"] == params["cross_elasticity"]).all()


def test_markdowns_follow_high_cover_and_markups_low_cover(tiny_world: Path) -> None:
    last_night = pl.col("on_hand_units").shift(1).over("sku_id")
    prices = (
        _truth(tiny_world, "prices")
        .sort("sku_id", "date")
        .with_columns(
            before=pl.col("merchant_action").shift(1).over("sku_id"),
            change=pl.col("shelf_price") / pl.col("shelf_price").shift(1).over("sku_id"),
            cover=last_night / pl.col("expected_demand").mean().over("sku_id"),
        )
    )
    starts = prices.filter(pl.col("before").is_not_null() & (pl.col("merchant_action") != pl.col("before")))
    cover = dict(
        starts.filter(pl.col("merchant_action") != "none")
        .group_by("merchant_action")
        .agg(pl.col("cover").median())
        .iter_rows()
    )
    counts = prices["merchant_action"].value_counts()
    days = dict(counts.iter_rows())
    assert days.get("markdown", 0) > 0 and days.get("markup", 0) > 0
    typical = prices["cover"].median()
    # Days of cover the evening before: a markdown starts on several times the usual stock, a
    # markup on a fraction of it.
    assert cover["markdown"] > 2 * typical
    assert cover["markup"] < 0.5 * typical
    # The shelf price moves with the action: 10-20% down for a markdown, 5-10% up for a markup.
    change = dict(starts.group_by("merchant_action").agg(pl.col("change").median()).iter_rows())
    assert change["markdown"] < 0.92 and change["markup"] > 1.04


def test_promotions_outside_festivals_start_on_high_demand_days() -> None:
    g, _, _ = simulate_signals(w.TIERS["tiny"], 7, START)
    chunk = simulate_chunk(g, np.arange(w.TIERS["tiny"].n_skus), np.random.default_rng([7, 1, 0]))
    sku, day, _dur, kind, _pct = (np.concatenate([r[j] for r in chunk.promotions]) for j in range(5))
    regular = kind != 2  # not a festival kick-off
    leaf = chunk.sku["leaf"]
    relative = g.context[leaf] / g.context[leaf].mean(1, keepdims=True)  # (sku, day) demand context
    ordinary = chunk.active & (g.festival_len == 0)[None, :]
    at_starts = relative[sku[regular], day[regular]]
    assert regular.sum() > 50
    # Started at random, promotions would meet the average context (1.0); placed on peak days, more.
    assert at_starts.mean() > 1.15 * relative[ordinary].mean()
    assert np.median(at_starts) > np.median(relative[ordinary])


def test_a_naive_price_regression_misses_the_true_elasticity(tiny_world: Path) -> None:
    params = _truth(tiny_world, "sku_params")
    prices = _truth(tiny_world, "prices")
    sales = (
        _landed(tiny_world, "daily_sales")
        .group_by("date", "sku_id")
        .agg(pl.col("units").sum(), pl.col("stockout").first())
        .join(prices, on=["date", "sku_id"])
        .filter(~pl.col("stockout"))
    )
    naive = _naive_slopes(sales, (pl.col("units") + 0.5).log(), params)
    assert naive.height >= 30
    assert naive["error"].abs().mean() > 0.5
    # Even without sampling noise (the true mean demand on the left), prices that follow demand
    # bias the slope: promotions placed on peak days make price look far more potent than it is.
    confounded = _naive_slopes(sales, pl.col("expected_demand").log(), params)
    assert confounded["error"].mean() < -0.3
