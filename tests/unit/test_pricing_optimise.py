"""The pricing optimiser: every rule holds, the coupling row is met or reported, the objective wins."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.config import PricingParams
from pipelines.pricing.optimise import (
    BINDING_RULES,
    OUTPUT_SCHEMA,
    make_synthetic_inputs,
    optimise_prices,
)

TOL = 1e-9


def _ladder(params: PricingParams, list_price: float) -> set[float]:
    steps = np.arange(
        np.ceil(params.ladder_min_pct / params.ladder_step_pct - TOL),
        np.floor(params.ladder_max_pct / params.ladder_step_pct + TOL) + 1,
    )
    return {round(list_price * (1 + k * params.ladder_step_pct / 100), 2) for k in steps}


def _joined(inputs: pl.DataFrame, params: PricingParams, **kwargs: object) -> tuple[pl.DataFrame, object]:
    result = optimise_prices(inputs, params, **kwargs)
    return inputs.join(result.prices, on="sku_id"), result


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("objective", ["profit", "revenue"])
def test_every_rule_holds_on_random_instances(seed: int, objective: str) -> None:
    params = PricingParams(objective=objective)
    inputs = make_synthetic_inputs(3_000, seed)
    out, result = _joined(inputs, params)
    changed = (out["new_price"] - out["current_price"]).abs() > 0.005
    moved = out.filter(changed)
    assert result.skus_changed == int(changed.sum()) > 0

    # Ladder membership: a new price is a rung of the SKU's ladder, or the current price.
    for row in moved.head(500).iter_rows(named=True):
        assert round(row["new_price"], 2) in _ladder(params, row["list_price"])
    # Margin floor (a SKU already under it may only move up).
    floor = moved["unit_cost"] * (1 + params.min_margin_pct / 100)
    under = moved["current_price"] < floor - TOL
    assert (
        (moved["new_price"] >= floor - TOL) | (under & (moved["new_price"] > moved["current_price"]))
    ).all()
    # Per-step and per-day change limits.
    assert (
        (moved["new_price"] / moved["current_price"] - 1).abs() <= params.max_change_per_step_pct / 100 + TOL
    ).all()
    assert (
        (moved["new_price"] / moved["day_first_price"] - 1).abs() <= params.max_change_per_day_pct / 100 + TOL
    ).all()
    # Promotion lock, overstock (no rise), scarce stock (no cut).
    assert out.filter(pl.col("promo_locked"))["price_change_pct"].abs().max() == 0
    over = out.filter(pl.col("days_of_cover") > params.overstock_cover_days)
    assert (over["new_price"] <= over["current_price"] + TOL).all()
    scarce = out.filter(pl.col("days_of_cover") < params.scarce_cover_days)
    assert (scarce["new_price"] >= scarce["current_price"] - TOL).all()
    # Never plans to sell more than is on hand.
    assert (out["expected_units"] <= out["on_hand_units"] + TOL).all()
    assert set(out["binding"].unique()) <= set(BINDING_RULES)
    assert out.filter(pl.col("promo_locked"))["binding"].unique().to_list() == ["promo_lock"]
    assert {c: result.prices.schema[c] for c in OUTPUT_SCHEMA} == OUTPUT_SCHEMA


def test_advantage_share_is_met_when_feasible() -> None:
    inputs = make_synthetic_inputs(2_000, 5).with_columns(
        # Rivals within reach of every SKU's step limit: the target is feasible.
        (pl.col("current_price") * 0.98).round(2).alias("competitor_min_price"),
        pl.lit(False).alias("promo_locked"),
        pl.lit(30.0).alias("days_of_cover"),
        (pl.col("list_price") * 0.5).round(2).alias("unit_cost"),
    )
    loose = optimise_prices(inputs, PricingParams(price_advantage_share=0))
    assert loose.advantage_share is not None and loose.advantage_share < 0.9
    tight = optimise_prices(inputs, PricingParams(price_advantage_share=0.9))
    assert tight.advantage_met and tight.advantage_share >= 0.9
    # Exactly the SKUs needed move, at the least cost in objective.
    n_rival = inputs.height
    assert tight.advantage_share * n_rival == pytest.approx(np.ceil(0.9 * n_rival))
    assert tight.objective_value <= loose.objective_value
    counted = tight.prices["at_or_below_rival"].sum()
    assert counted == round(tight.advantage_share * n_rival)
    assert (tight.prices.filter(pl.col("binding") == "price_advantage")["at_or_below_rival"]).all()


def test_infeasible_share_is_reported_not_raised() -> None:
    inputs = make_synthetic_inputs(500, 6).with_columns(
        # Rivals 30% under: out of reach of a 5% step for every SKU.
        (pl.col("current_price") * 0.7).round(2).alias("competitor_min_price"),
    )
    params = PricingParams(price_advantage_share=0.92)
    result = optimise_prices(inputs, params)
    assert not result.advantage_met
    assert result.advantage_share == 0.0
    assert "infeasible" in result.solver_status
    # Out of reach this run: as many SKUs as are short step to their lowest allowed price.
    still = optimise_prices(inputs, params, step_toward_rival=False)
    assert still.advantage_share == 0.0 and "stepped" not in still.solver_status
    out = inputs.join(result.prices, on="sku_id").join(
        still.prices.select("sku_id", pl.col("new_price").alias("own_best")), on="sku_id"
    )
    stepped = out.filter(pl.col("new_price") < pl.col("own_best") - 0.005)
    short = int(np.ceil(0.92 * inputs["competitor_min_price"].count()))
    assert 0 < stepped.height <= short
    assert (stepped["binding"] == "price_advantage").all()
    # ... the lowest price its rules allow: within one rung of the tightest lower bound.
    bound = pl.max_horizontal(
        pl.col("current_price") * (1 - params.max_change_per_step_pct / 100),
        pl.col("day_first_price") * (1 - params.max_change_per_day_pct / 100),
        pl.col("unit_cost") * (1 + params.min_margin_pct / 100),
        pl.col("list_price") * (1 + params.ladder_min_pct / 100),
        pl.when(pl.col("days_of_cover") < params.scarce_cover_days)
        .then(pl.col("current_price"))
        .otherwise(0),
    )
    gap = stepped.select(pl.col("new_price") - bound - pl.col("list_price") * params.ladder_step_pct / 100)
    assert gap.to_series().max() <= 0.01
    assert result.objective_value < still.objective_value


def test_no_rival_means_no_share_and_null_flag() -> None:
    inputs = make_synthetic_inputs(50, 7).with_columns(
        pl.lit(None, dtype=pl.Float64).alias("competitor_min_price")
    )
    result = optimise_prices(inputs, PricingParams())
    assert result.advantage_share is None and result.advantage_met
    assert result.prices["at_or_below_rival"].null_count() == 50


@pytest.mark.parametrize("seed", range(4))
def test_reduced_solve_matches_the_full_milp(seed: int) -> None:
    inputs = make_synthetic_inputs(300, 10 + seed)
    params = PricingParams(price_advantage_share=0.8)
    reduced = optimise_prices(inputs, params, method="reduced")
    full = optimise_prices(inputs, params, method="milp")
    assert reduced.objective_value == pytest.approx(full.objective_value, rel=1e-7)
    assert reduced.advantage_share == pytest.approx(full.advantage_share)


def _brute_force(row: dict, params: PricingParams) -> float:
    """The best allowed price by enumeration over the ladder, in plain Python."""
    candidates = _ladder(params, row["list_price"]) | {row["current_price"]}
    best_price, best_value = row["current_price"], -np.inf
    for p in sorted(candidates, key=lambda p: (p != row["current_price"], p)):
        if abs(p / row["current_price"] - 1) > params.max_change_per_step_pct / 100 + TOL:
            continue
        if p < row["unit_cost"] * (1 + params.min_margin_pct / 100) - TOL:
            continue
        units = row["baseline_units"] * (p / row["current_price"]) ** row["own_elasticity"]
        value = (p - row["unit_cost"]) * units if params.objective == "profit" else p * units
        if value > best_value + 1e-9:
            best_price, best_value = p, value
    return best_price


@pytest.mark.parametrize("objective", ["profit", "revenue"])
def test_chosen_rung_is_the_brute_force_argmax_when_no_rule_binds(objective: str) -> None:
    params = PricingParams(objective=objective, price_advantage_share=0)
    rng = np.random.default_rng(3)
    n = 200
    list_price = np.round(rng.uniform(5, 100, n), 2)
    inputs = pl.DataFrame(
        {
            "sku_id": np.arange(n),
            "current_price": np.round(list_price * rng.uniform(0.9, 1.05, n), 2),
            "list_price": list_price,
            "unit_cost": np.round(list_price * rng.uniform(0.3, 0.7, n), 2),
            "own_elasticity": -rng.uniform(0.5, 4, n),
            "baseline_units": rng.uniform(1, 20, n),
        }
    )
    out, _ = _joined(inputs, params)
    for row in out.iter_rows(named=True):
        assert row["new_price"] == pytest.approx(_brute_force(row, params)), row


def test_revenue_objective_prices_elastic_skus_lower_than_profit() -> None:
    inputs = pl.DataFrame(
        {
            "sku_id": [1, 2],
            "current_price": [20.0, 20.0],
            "list_price": [20.0, 20.0],
            "unit_cost": [10.0, 10.0],
            "own_elasticity": [-2.5, -2.5],
            "baseline_units": [10.0, 10.0],
        }
    )
    wide = PricingParams(max_change_per_step_pct=50, max_change_per_day_pct=50, price_advantage_share=0)
    profit = optimise_prices(inputs, wide.model_copy(update={"objective": "profit"})).prices
    revenue = optimise_prices(inputs, wide.model_copy(update={"objective": "revenue"})).prices
    # Profit: p* = c e / (1 + e) = 16.67 (rungs every 0.20); revenue with |e| > 1 falls as the price rises.
    assert profit["new_price"][0] == pytest.approx(16.6)
    assert revenue["new_price"][0] == pytest.approx(14.0)  # the ladder's bottom, 30% off list
    assert revenue["binding"][0] == "ladder_edge"
    assert (revenue["new_price"] < profit["new_price"]).all()


def test_binding_labels_name_the_rule() -> None:
    base = {
        "current_price": 20.0,
        "day_first_price": 20.0,
        "list_price": 20.0,
        "unit_cost": 10.0,
        "baseline_units": 10.0,
        "own_elasticity": -2.5,  # wants 17.0: a cut of 15%
        "competitor_min_price": None,
        "days_of_cover": 30.0,
        "promo_locked": False,
    }
    cases = {
        "max_change": {},
        "promo_lock": {"promo_locked": True},
        "scarce_stock": {"days_of_cover": 3.0},
        "margin_floor": {"unit_cost": 18.0, "own_elasticity": -30.0},
        "overstock": {"days_of_cover": 90.0, "own_elasticity": -0.5},
        "none": {"own_elasticity": -2.5, "current_price": 17.0, "day_first_price": 17.0},
        "ladder_edge": {"own_elasticity": -0.5, "current_price": 22.5, "day_first_price": 22.5},
    }
    rows = [{"sku_id": i, **base, **change} for i, change in enumerate(cases.values())]
    inputs = pl.DataFrame(rows, schema_overrides={"competitor_min_price": pl.Float64})
    prices = optimise_prices(inputs, PricingParams()).prices
    assert dict(zip(cases, prices["binding"], strict=True)) == {k: k for k in cases}
    assert prices["new_price"].to_list()[:2] == [19.0, 20.0]


def test_missing_and_null_inputs_name_the_column() -> None:
    inputs = make_synthetic_inputs(5, 0)
    with pytest.raises(ValueError, match="baseline_units"):
        optimise_prices(inputs.drop("baseline_units"), PricingParams())
    nulled = inputs.with_columns(
        pl.when(pl.col("sku_id") == 3).then(None).otherwise(pl.col("own_elasticity")).alias("own_elasticity")
    )
    with pytest.raises(ValueError, match=r"own_elasticity is null for 1 SKU\(s\) \(e.g. 3\)"):
        optimise_prices(nulled, PricingParams())
    with pytest.raises(ValueError, match="current_price must be positive"):
        optimise_prices(inputs.with_columns(pl.lit(0.0).alias("current_price")), PricingParams())
    with pytest.raises(ValueError, match="repeat sku_id"):
        optimise_prices(pl.concat([inputs, inputs.head(1)]), PricingParams())


def test_the_current_price_is_kept_when_nothing_is_better() -> None:
    inputs = make_synthetic_inputs(200, 9).with_columns(pl.lit(0.0).alias("baseline_units"))
    result = optimise_prices(inputs, PricingParams(price_advantage_share=0))
    assert result.skus_changed == 0


def test_ladder_is_offsets_of_list_price() -> None:
    params = PricingParams(ladder_step_pct=2.5, ladder_min_pct=-10, ladder_max_pct=5)
    assert sorted(_ladder(params, 40.0)) == [36.0, 37.0, 38.0, 39.0, 40.0, 41.0, 42.0]
    inputs = pl.DataFrame(
        {
            "sku_id": list(range(7)),
            "current_price": [40.0] * 7,
            "list_price": [40.0] * 7,
            "unit_cost": [1.0] * 7,
            "own_elasticity": [-0.2, -0.5, -1.2, -3.0, -5.0, -8.0, -20.0],
            "baseline_units": [5.0] * 7,
        }
    )
    wide = params.model_copy(
        update={"max_change_per_step_pct": 50, "max_change_per_day_pct": 50, "objective": "revenue"}
    )
    out = optimise_prices(inputs, wide).prices
    assert set(out["new_price"].to_list()) <= set(_ladder(params, 40.0))
    prices = out["new_price"].to_list()
    assert prices[0] == 42.0 and prices[-1] == 36.0
    assert prices == sorted(prices, reverse=True)
