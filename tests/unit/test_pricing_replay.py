"""The pricing replay: common random numbers, the oracle's ceiling, the rule's prices, KPIs by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.config import PricingParams
from pipelines.pricing.replay import (
    KPIS,
    TRUTH_COLUMNS,
    format_replay,
    load_pricing_truth,
    replay_pricing,
    stand_in_elasticities,
)

START = dt.date(2024, 1, 1)


def synthetic_truth(
    n_skus: int = 30,
    n_days: int = 35,
    seed: int = 0,
    *,
    promo_share: float = 0.05,
    rival_share: float = 0.8,
    shelf_is_list: bool = False,
    stock_days: float = 30.0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A truth frame in the shape of data/truth/prices.parquet joined with sku_params, and products."""
    rng = np.random.default_rng(seed)
    list_price = np.round(rng.uniform(5, 80, n_skus), 2)
    cost = np.round(list_price * rng.uniform(0.45, 0.75, n_skus), 2)
    elasticity = -rng.uniform(0.8, 3.0, n_skus)
    cross = rng.uniform(0.2, 0.6, n_skus) * -elasticity
    base = rng.gamma(2.0, 3.0, n_skus)
    shelf = list_price if shelf_is_list else np.round(list_price * rng.uniform(0.9, 1.02, n_skus), 2)
    carried = rng.random(n_skus) < rival_share
    frames = []
    for d in range(n_days):
        disc = np.where(rng.random(n_skus) < promo_share, 20.0, 0.0)
        price = np.round(shelf * (1 - disc / 100), 2)
        rival = np.where(carried, np.round(list_price * np.exp(rng.normal(0.0, 0.06, n_skus)), 2), np.nan)
        cross_term = np.where(carried, (np.where(carried, rival, 1.0) / price) ** cross, 1.0)
        frames.append(
            pl.DataFrame(
                {
                    "date": [START + dt.timedelta(days=d)] * n_skus,
                    "sku_id": np.arange(1, n_skus + 1),
                    "shelf_price": shelf,
                    "discount_pct": disc,
                    "price": price,
                    "competitor_min_price": pl.Series(rival).fill_nan(None),
                    "expected_demand": base * (price / list_price) ** elasticity * cross_term,
                    "on_hand_units": np.round(base * stock_days),
                    "merchant_action": ["none"] * n_skus,
                    "own_price_elasticity": elasticity - cross,
                    "cross_price_elasticity": cross,
                }
            )
        )
    products = pl.DataFrame({"sku_id": np.arange(1, n_skus + 1), "list_price": list_price, "unit_cost": cost})
    return pl.concat(frames), products


def test_replay_runs_every_policy_with_intervals() -> None:
    truth, products = synthetic_truth()
    est = stand_in_elasticities(truth, 0.2, seed=0)
    result = replay_pricing(truth, products, est, PricingParams(), weeks=3, seeds=[1, 2, 3])
    assert result.per_seed["policy"].unique().sort().to_list() == [
        "ai",
        "merchant",
        "oracle",
        "rule",
        "static",
    ]
    assert result.per_seed.height == 15 and set(KPIS) <= set(result.per_seed.columns)
    assert result.start == START + dt.timedelta(days=14) and result.end == START + dt.timedelta(days=34)
    summary = result.summary.filter(pl.col("kpi") == "revenue")
    assert (summary["lo"] <= summary["mean"]).all() and (summary["mean"] <= summary["hi"]).all()
    lift = result.lifts.filter((pl.col("policy") == "oracle") & (pl.col("versus") == "static"))
    assert set(lift["metric"]) >= {"revenue_pct", "gross_margin_pts", "turnover_pct", "price_advantage_pts"}
    assert result.claims.filter(pl.col("claim").str.starts_with("revenue"))["source"].to_list() == [
        19.0,
        19.0,
    ]
    text = format_replay(result)
    assert "oracle" in text and "price changes per hour" in text
    without_ai = replay_pricing(truth, products, None, PricingParams(), weeks=3, seeds=[1])
    assert "ai" not in without_ai.per_seed["policy"].to_list()


def test_common_random_numbers_across_policies() -> None:
    # No rivals and shelf = list: the rule prices at list, as static does, so on the same seed
    # the two policies face the same draws and sell exactly the same units.
    truth, products = synthetic_truth(rival_share=0.0, shelf_is_list=True)
    result = replay_pricing(truth, products, None, PricingParams(), weeks=3, seeds=[4, 5], record=True)
    per = result.per_seed
    for seed in (4, 5):
        static = per.filter((pl.col("policy") == "static") & (pl.col("seed") == seed)).row(0, named=True)
        rule = per.filter((pl.col("policy") == "rule") & (pl.col("seed") == seed)).row(0, named=True)
        assert static["units"] == rule["units"] and static["revenue"] == rule["revenue"]
    assert per.filter(pl.col("policy") == "static")["units"].n_unique() == 2  # seeds differ
    # Same seed, a lower price: never fewer units demanded on any SKU-day (one uniform per draw).
    steps = result.steps
    assert steps is not None
    pair = steps.filter(pl.col("policy") == "static").join(
        steps.filter(pl.col("policy") == "oracle"), on=["seed", "date", "step", "sku_id"], suffix="_o"
    )
    lower = pair.filter(pl.col("mean_units_o") > pl.col("mean_units") + 1e-9)
    assert lower.height > 0 and (lower["demand_o"] >= lower["demand"]).all()
    again = replay_pricing(truth, products, None, PricingParams(), weeks=3, seeds=[4])
    assert again.per_seed.sort("policy").equals(per.filter(pl.col("seed") == 4).sort("policy"))


@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_never_worse_than_static_on_expected_profit(seed: int) -> None:
    truth, products = synthetic_truth(40, 42, seed, shelf_is_list=True, stock_days=40)
    params = PricingParams(price_advantage_share=0)
    result = replay_pricing(truth, products, None, params, weeks=4, seeds=[1, 2, 3])
    per = result.per_seed.pivot(on="policy", index="seed", values="expected_gross_profit")
    assert (per["oracle"] >= per["static"] - 1e-6).all()
    assert (per["oracle"] > per["static"]).any()


def test_rule_prices_follow_its_definition() -> None:
    truth, products = synthetic_truth(25, 28, 3)
    params = PricingParams(min_margin_pct=12)
    result = replay_pricing(truth, products, None, params, weeks=2, seeds=[1], record=True)
    assert result.steps is not None
    rule = (
        result.steps.filter(pl.col("policy") == "rule")
        .join(
            truth.select("date", "sku_id", "discount_pct", "competitor_min_price", "price"),
            on=["date", "sku_id"],
        )
        .join(products, on="sku_id")
    )
    plain = rule.filter(pl.col("discount_pct") == 0)
    rival = plain["competitor_min_price"].fill_null(np.nan).to_numpy()
    list_price = plain["list_price"].to_numpy()
    target = np.where(np.isfinite(rival), np.round(rival * 0.99, 2), list_price)
    expected = np.maximum(plain["unit_cost"].to_numpy() * 1.12, np.minimum(list_price, target))
    assert np.abs(plain["price"].to_numpy() - expected).max() < 1e-9
    assert plain.filter(pl.col("competitor_min_price").is_null()).height > 0
    # Promoted SKU-days keep the promotion's price.
    promo = rule.filter(pl.col("discount_pct") > 0)
    assert promo.height > 0 and (promo["price"] == promo["price_right"]).all()


def test_kpis_on_a_hand_checkable_case() -> None:
    # One SKU, one week, no warm-up: list 10, cost 6; rival 9.60 on days 0-2 and 12 on days 3-6;
    # no stock at the start and 50 units a day of demand, so days 0-3 sell out before the weekly
    # order (placed on day 0) lands on day 4.
    days = 7
    rival = [9.6, 9.6, 9.6, 12.0, 12.0, 12.0, 12.0]
    truth = pl.DataFrame(
        {
            "date": [START + dt.timedelta(days=d) for d in range(days)],
            "sku_id": [1] * days,
            "shelf_price": [10.0] * days,
            "discount_pct": [0.0] * days,
            "price": [10.0] * days,
            "competitor_min_price": rival,
            "expected_demand": [50.0] * days,
            "on_hand_units": [0] * days,
            "merchant_action": ["none"] * days,
            "own_price_elasticity": [-2.0] * days,
            "cross_price_elasticity": [0.5] * days,
        }
    )
    products = pl.DataFrame({"sku_id": [1], "list_price": [10.0], "unit_cost": [6.0]})
    result = replay_pricing(truth, products, None, PricingParams(), weeks=1, seeds=[1], record=True)
    per = {r["policy"]: r for r in result.per_seed.iter_rows(named=True)}
    steps = result.steps
    assert steps is not None

    static = per["static"]
    assert static["price_advantage_share"] == pytest.approx(4 / 7)  # 10 <= 12 on days 3-6 only
    assert static["price_changes_per_sku_day"] == 0 and static["mean_abs_change_pct"] == 0
    assert static["stockout_share"] == pytest.approx(4 / 7)
    s = steps.filter(pl.col("policy") == "static")
    assert s.filter(pl.col("date") < START + dt.timedelta(days=4))["units"].sum() == 0
    assert static["units"] == s["units"].sum() > 0
    assert static["revenue"] == pytest.approx(10 * static["units"])
    assert static["gross_profit"] == pytest.approx(4 * static["units"])
    assert static["gross_margin_pct"] == pytest.approx(40.0)
    assert static["expected_gross_profit"] == pytest.approx(7 * 50 * 4)
    assert static["turnover"] == pytest.approx(static["units"] / s["on_hand_start"].mean())

    # The rule: 9.50 (9.60 less 1%) on days 0-2, then list (12 less 1% is over the list price).
    rule = per["rule"]
    assert steps.filter(pl.col("policy") == "rule")["price"].to_list() == [9.5] * 3 + [10.0] * 4
    assert rule["price_advantage_share"] == 1.0
    assert rule["price_changes_per_sku_day"] == pytest.approx(2 / 7)  # 10 -> 9.41, 9.41 -> 10
    assert rule["mean_abs_change_pct"] == pytest.approx((100 * 0.5 / 10 + 100 * 0.5 / 9.5) / 2)
    assert rule["price_changes_per_hour"] == pytest.approx(2 / (7 * 24))
    r = steps.filter(pl.col("policy") == "rule")
    assert rule["revenue"] == pytest.approx((r["units"] * r["price"]).sum())


def test_load_pricing_truth_joins_the_elasticities(tmp_path: Path) -> None:
    truth, _ = synthetic_truth(5, 3)
    truth.drop("own_price_elasticity", "cross_price_elasticity").write_parquet(tmp_path / "prices.parquet")
    pl.DataFrame(
        {
            "sku_id": [1, 2, 3, 4, 5],
            "elasticity": [-2.0] * 5,
            "cross_elasticity": [0.5] * 5,
            "dispersion": [3.0] * 5,
        }
    ).write_parquet(tmp_path / "sku_params.parquet")
    loaded = load_pricing_truth(tmp_path)
    assert set(TRUTH_COLUMNS) <= set(loaded.columns)
    assert loaded["own_price_elasticity"].unique().to_list() == [-2.5]
    with pytest.raises(FileNotFoundError, match=r"prices.parquet not found; run `ecom generate`"):
        load_pricing_truth(tmp_path / "nowhere")


def test_errors_name_the_problem() -> None:
    truth, products = synthetic_truth(5, 14)
    with pytest.raises(ValueError, match="covers 14 days; 3 weeks need 21"):
        replay_pricing(truth, products, None, PricingParams(), weeks=3, seeds=[1])
    with pytest.raises(ValueError, match="lacks column"):
        replay_pricing(truth.drop("expected_demand"), products, None, PricingParams(), weeks=1, seeds=[1])
    with pytest.raises(ValueError, match="no list_price/unit_cost for 1 SKU"):
        replay_pricing(
            truth, products.filter(pl.col("sku_id") != 2), None, PricingParams(), weeks=1, seeds=[1]
        )
    with pytest.raises(ValueError, match="at least one seed"):
        replay_pricing(truth, products, None, PricingParams(), weeks=1, seeds=[])


def test_several_steps_a_day() -> None:
    truth, products = synthetic_truth(20, 28, 2)
    est = stand_in_elasticities(truth, 0.2, seed=1)
    one = replay_pricing(truth, products, est, PricingParams(), weeks=2, seeds=[1])
    three = replay_pricing(
        truth, products, est, PricingParams(), weeks=2, seeds=[1], steps_per_day=3, record=True
    )
    assert three.steps is not None and three.steps["step"].unique().sort().to_list() == [0, 1, 2]
    ai = {r.per_seed.filter(pl.col("policy") == "ai")["price_changes_per_hour"].item() for r in (one, three)}
    assert len(ai) == 2
    # The per-day limit holds across a day's steps.
    day = (
        three.steps.filter(pl.col("policy") == "ai")
        .group_by("sku_id", "date")
        .agg(pl.col("regular_price").max().alias("hi"), pl.col("regular_price").min().alias("lo"))
    )
    assert (day["hi"] / day["lo"] - 1).max() <= 0.2 + 1e-9


@pytest.mark.integration
def test_replay_on_the_generated_tiny_world(tiny_world: Path) -> None:
    truth = load_pricing_truth(tiny_world / "data" / "truth")
    products = pl.read_parquet(tiny_world / "data" / "generated" / "products.parquet")
    est = stand_in_elasticities(truth, 0.3, seed=0)
    result = replay_pricing(truth, products, est, PricingParams(), weeks=4, seeds=[1, 2])
    per = result.per_seed.pivot(on="policy", index="seed", values="price_advantage_share")
    assert (per["rule"] >= per["static"]).all() and (per["ai"] > per["static"]).all()
    assert result.per_seed.filter(pl.col("policy") == "static")["price_changes_per_sku_day"].max() == 0
    assert result.skus == truth["sku_id"].n_unique()
