"""What must always hold for the pricing optimiser, whatever the inputs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.config import PricingParams
from pipelines.pricing.optimise import make_synthetic_inputs, optimise_prices


def _chosen(inputs: pl.DataFrame, params: PricingParams) -> np.ndarray:
    return optimise_prices(inputs, params).prices["new_price"].to_numpy()


def _one_sku_changed(inputs: pl.DataFrame, i: int, column: str, value: float) -> pl.DataFrame:
    return inputs.with_columns(
        pl.when(pl.int_range(pl.len()) == i).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


@pytest.mark.parametrize("objective", ["profit", "revenue"])
@pytest.mark.parametrize("share", [0.0, 0.8])
def test_a_higher_unit_cost_never_lowers_the_price(objective: str, share: float) -> None:
    params = PricingParams(objective=objective, price_advantage_share=share)
    inputs = make_synthetic_inputs(1_000, 21)
    before = _chosen(inputs, params)
    for i in np.random.default_rng(1).choice(inputs.height, 25, replace=False):
        cost = inputs["unit_cost"][int(i)]
        for bump in (1.05, 1.3, 1.8):
            after = _chosen(_one_sku_changed(inputs, int(i), "unit_cost", round(cost * bump, 2)), params)
            assert after[i] >= before[i] - 1e-9, (i, bump)
    # Every SKU's cost up at once, with no coupling row between them: no price falls.
    free = params.model_copy(update={"price_advantage_share": 0.0})
    dearer = inputs.with_columns((pl.col("unit_cost") * 1.2).round(2).alias("unit_cost"))
    assert (_chosen(dearer, free) >= _chosen(inputs, free) - 1e-9).all()


@pytest.mark.parametrize("objective", ["profit", "revenue"])
@pytest.mark.parametrize("share", [0.0, 0.8])
def test_a_more_elastic_sku_never_gets_a_higher_price(objective: str, share: float) -> None:
    params = PricingParams(objective=objective, price_advantage_share=share)
    inputs = make_synthetic_inputs(1_000, 22)
    before = _chosen(inputs, params)
    for i in np.random.default_rng(2).choice(inputs.height, 25, replace=False):
        elasticity = inputs["own_elasticity"][int(i)]
        for extra in (0.1, 0.5, 1.5):
            after = _chosen(_one_sku_changed(inputs, int(i), "own_elasticity", elasticity - extra), params)
            assert after[i] <= before[i] + 1e-9, (i, extra)
    free = params.model_copy(update={"price_advantage_share": 0.0})
    elastic = inputs.with_columns((pl.col("own_elasticity") - 0.5).alias("own_elasticity"))
    assert (_chosen(elastic, free) <= _chosen(inputs, free) + 1e-9).all()


def test_one_sku_at_a_time_all_else_equal() -> None:
    """Twin SKUs differing only in cost (or elasticity), side by side in one run."""
    n = 40
    rng = np.random.default_rng(5)
    base = pl.DataFrame(
        {
            "current_price": np.full(n, 50.0),
            "list_price": np.full(n, 50.0),
            "unit_cost": np.full(n, 25.0),
            "own_elasticity": np.full(n, -2.0),
            "baseline_units": np.full(n, 10.0),
        }
    )
    wide = PricingParams(max_change_per_step_pct=30, max_change_per_day_pct=30, price_advantage_share=0)
    costs = np.sort(rng.uniform(10, 45, n))
    by_cost = _chosen(
        base.with_columns(pl.Series("unit_cost", costs), pl.Series("sku_id", np.arange(n))), wide
    )
    assert (np.diff(by_cost) >= -1e-9).all() and by_cost[-1] > by_cost[0]
    elasticities = np.sort(rng.uniform(-5, -1.2, n))[::-1]  # ever more elastic
    by_elasticity = _chosen(
        base.with_columns(pl.Series("own_elasticity", elasticities), pl.Series("sku_id", np.arange(n))), wide
    )
    assert (np.diff(by_elasticity) <= 1e-9).all() and by_elasticity[-1] < by_elasticity[0]
