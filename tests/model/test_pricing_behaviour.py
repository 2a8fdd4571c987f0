"""What the price-elasticity models must always do, whatever the data.

- The XGBoost demand model never predicts more units after a price rise for the same SKU and day
  (a grid of SKUs, days and price multipliers, with and without a rival price).
- Elasticities are negative wherever a SKU is identified (its price moved enough to tell).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipelines.pricing import estimators as est
from pipelines.pricing.dataset import prepare_pricing_frame

START = dt.date(2024, 1, 1)
PARAMS = {"seed": 5, "folds": 2, "min_price_variation": 0.03, "nuisance_rounds": 50, "rounds": 120}
MULTIPLIERS = np.array([0.7, 0.8, 0.9, 0.95, 1.0, 1.02, 1.05, 1.1, 1.25, 1.5])


def demand_rows(n_skus: int = 6, n_days: int = 200, seed: int = 11) -> pl.DataFrame:
    """Mart-shaped rows: noisy prices, promotions, a rival on some days, demand falling in price."""
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(1, n_skus + 1):
        promo = rng.random(n_days) < 0.1
        log_price = rng.normal(0, 0.08, n_days) - np.where(promo, 0.2, 0.0)
        rival = np.where(rng.random(n_days) < 0.7, 50.0 * np.exp(rng.normal(0, 0.1, n_days)), np.nan)
        elasticity = -1.2 - 0.2 * s
        mean = 8.0 * np.exp(elasticity * log_price + 0.4 * promo) * (1 + 0.3 * (np.arange(n_days) % 7 >= 5))
        frames.append(
            pl.DataFrame(
                {
                    "date": [START + dt.timedelta(days=d) for d in range(n_days)],
                    "sku_id": s,
                    "category_l2": "a" if s <= n_skus // 2 else "b",
                    "units": rng.poisson(mean),
                    "shelf_price": 50.0,
                    "effective_price": 50.0 * np.exp(log_price),
                    "competitor_min_price": rival,
                    "is_promo": promo,
                    "day_of_week": np.arange(n_days) % 7,
                    "stockout": False,
                }
            ).with_columns(pl.col("competitor_min_price").fill_nan(None))
        )
    return prepare_pricing_frame(pl.concat(frames))


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return demand_rows()


def test_a_price_rise_never_raises_predicted_units_for_the_same_sku_and_day(frame) -> None:
    fitted = est.fit("xgboost", frame, PARAMS)
    days = frame.filter(pl.col("date").dt.day().is_in([1, 9, 17, 25]))  # promotion and rival mixes
    assert days["log_rival"].null_count() > 0 and days["log_rival"].is_not_null().any()
    grid = pl.concat(
        [
            days.with_columns(
                (pl.col("log_price") + np.log(m)).alias("log_price"),
                (pl.col("effective_price") * m).alias("effective_price"),
                pl.lit(i).alias("step"),
            )
            for i, m in enumerate(MULTIPLIERS)
        ]
    )
    predicted = grid.with_columns(pl.Series("units_hat", est.predict_units(fitted, grid)))
    by_row = predicted.sort("step").group_by("sku_id", "date").agg(pl.col("units_hat"))
    curves = np.array(by_row["units_hat"].to_list())
    assert curves.shape == (days.height, len(MULTIPLIERS))
    assert (np.diff(curves, axis=1) <= 1e-9).all()
    assert (curves[:, 0] > curves[:, -1]).mean() > 0.9  # and it does respond to price


@pytest.mark.parametrize("kind", est.KINDS)
def test_elasticities_are_negative_where_identified(frame, kind: str) -> None:
    table = est.elasticities(est.fit(kind, frame, PARAMS))
    identified = table.filter("identified")
    assert identified.height == table.height
    assert (identified["own_elasticity"] < 0).all()


@pytest.mark.parametrize("kind", est.KINDS)
def test_every_estimate_lies_inside_its_own_band(frame, kind: str) -> None:
    """The warehouse's data tests (and analysts) read low <= estimate <= high on every row."""
    table = est.elasticities(est.fit(kind, frame, PARAMS))
    banded = table.drop_nulls(["own_elasticity_low", "own_elasticity_high"])
    assert banded.height == table.height
    assert (banded["own_elasticity_low"] <= banded["own_elasticity"]).all()
    assert (banded["own_elasticity"] <= banded["own_elasticity_high"]).all()
