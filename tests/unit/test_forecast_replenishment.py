"""Replenishment formulas from forecast quantiles, and the policy replay, on hand examples."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest

from pipelines.replenishment import order_quantity, quantile_policy, sigma_from_quantiles, traditional_policy
from pipelines.replenishment.plan import ReplenishmentError, align_to_skus
from pipelines.replenishment.replay import _replay


def test_quantile_policy_on_a_hand_example() -> None:
    # 2 units a day with sd 1, lead time exactly 3 days, review every 7: protection 10 days
    levels = quantile_policy(
        np.full((1, 28), 2.0),
        np.full((1, 28), 1.0),
        np.array([3.0]),
        np.array([0.0]),
        review_days=7,
        service_level=0.95,
    )
    z = NormalDist().inv_cdf(0.95)
    assert levels["protection_days"][0] == 10
    assert levels["expected_demand"][0] == pytest.approx(20.0)
    assert levels["demand_sd"][0] == pytest.approx(math.sqrt(10))
    assert levels["safety_stock"][0] == pytest.approx(z * math.sqrt(10))
    assert levels["reorder_point"][0] == pytest.approx(20 + z * math.sqrt(10))
    assert levels["order_up_to"][0] == pytest.approx(20 + z * math.sqrt(10) + 14)
    # below the reorder point: order up to S (rounded up); above it: nothing
    qty = order_quantity(levels, np.array([10.0]))
    assert qty[0] == math.ceil(levels["order_up_to"][0] - 10)
    assert order_quantity(levels, np.array([30.0]))[0] == 0


def test_lead_time_variability_and_long_lead_times_raise_safety_stock() -> None:
    args = (np.full((1, 28), 2.0), np.full((1, 28), 1.0))
    fixed = quantile_policy(*args, np.array([3.0]), np.array([0.0]), review_days=7, service_level=0.95)
    varied = quantile_policy(*args, np.array([3.0]), np.array([2.0]), review_days=7, service_level=0.95)
    # sigma_P^2 = 10 * 1 + (20 / 10)^2 * 2^2
    assert varied["demand_sd"][0] == pytest.approx(math.sqrt(10 + 16))
    assert varied["safety_stock"][0] > fixed["safety_stock"][0]
    # a lead time past the forecast horizon uses the horizon's mean for the extra days
    long = quantile_policy(*args, np.array([40.0]), np.array([0.0]), review_days=7, service_level=0.95)
    assert long["expected_demand"][0] == pytest.approx(2.0 * 47)


def test_sigma_from_the_upper_quantile_spread() -> None:
    z90 = NormalDist().inv_cdf(0.9)
    np.testing.assert_allclose(
        sigma_from_quantiles(np.array([5.0, 3.0]), np.array([5.0 + z90, 2.0]), 0.9), [1, 0]
    )


def test_traditional_policy_uses_fixed_safety_days() -> None:
    levels = traditional_policy(np.array([2.0]), np.array([3.0]), review_days=7, safety_days=7.0)
    assert levels["safety_stock"][0] == 14.0
    assert levels["reorder_point"][0] == 2.0 * 10 + 14.0
    assert levels["order_up_to"][0] == 34.0 + 14.0


def test_replay_counts_fill_rate_stockouts_and_turnover() -> None:
    demand = np.array([[1.0] * 7, [5.0] * 7])
    # SKU 1 holds plenty and never orders; SKU 2 runs dry on day 2 and orders 50 arriving 3 days later
    levels = {
        "safety_stock": np.array([0.0, 0.0]),
        "reorder_point": np.array([0.0, 20.0]),
        "order_up_to": np.array([0.0, 60.0]),
    }
    out = _replay(
        demand, np.array([100.0, 10.0]), np.array([1.0, 2.0]), lambda d: levels, np.full((2, 1), 3), 7
    )
    # SKU 2 sells 10 (days 0-1), orders 50 on day 0, receives them on day 3: loses day 2 (5 units)
    assert out["lost_units"] == pytest.approx(5.0)
    assert out["fill_rate"] == pytest.approx(1 - 5 / 42)
    assert out["orders"] == 1.0
    assert 0 < out["stockout_rate"] < 1 and out["inventory_turnover"] > 0


def test_plan_inputs_are_aligned_to_the_forecast_order_whatever_the_join_returns() -> None:
    skus = np.array([30, 10, 20])
    leads = pl.DataFrame({"sku_id": [10, 20, 30], "lead_time_days": [1.0, 2.0, 3.0]})
    stock = pl.DataFrame({"sku_id": [20, 30], "on_hand": [5.0, 6.0]})
    frame = align_to_skus(skus, leads, stock)
    assert frame["sku_id"].to_list() == [30, 10, 20]
    assert frame["lead_time_days"].to_list() == [3.0, 1.0, 2.0]
    assert frame["on_hand"].to_list() == [6.0, None, 5.0]


def test_plan_inputs_that_repeat_a_sku_are_refused() -> None:
    leads = pl.DataFrame({"sku_id": [1, 1, 2], "lead_time_days": [1.0, 2.0, 3.0]})
    with pytest.raises(ReplenishmentError, match="repeat a SKU"):
        align_to_skus(np.array([1, 2]), leads)
