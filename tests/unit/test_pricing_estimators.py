"""The elasticity estimators on synthetic demand with known elasticities and an endogenous price.

The merchant cuts prices on days of high demand (a shock the data shows as ``search_index``, the
way a shop runs promotions on peak days): a regression of units on price alone then reads the
demand shock as price response and overstates the elasticity; the estimators that control for the
shock must not.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipelines.ml.family import FamilyDataError
from pipelines.pricing import estimators as est
from pipelines.pricing.dataset import describe_pricing_frame, prepare_pricing_frame, split_holdout

START = dt.date(2024, 1, 1)
PARAMS = {"seed": 3, "folds": 3, "min_price_variation": 0.03, "nuisance_rounds": 50, "rounds": 150}


def mart_rows(
    n_skus: int = 6,
    n_days: int = 200,
    level: float = 25.0,
    seed: int = 0,
    rivals: bool = True,
    flat_skus: tuple[int, ...] = (),
) -> tuple[pl.DataFrame, dict[int, float]]:
    """Mart-shaped rows and each SKU's true own elasticity (rival prices held fixed)."""
    rng = np.random.default_rng(seed)
    days = np.arange(n_days)
    rows, truth = [], {}
    shocks = {c: rng.normal(0, 0.4, n_days) for c in ("a", "b")}
    for s in range(1, n_skus + 1):
        category = "a" if s % 2 else "b"
        own = (-1.6 if category == "a" else -2.4) + rng.normal(0, 0.2)
        cross = 0.5
        truth[s] = own
        shock = shocks[category]
        # endogenous: deeper discounts when demand is high, plus the merchant's own moves
        log_price = -0.25 * shock + rng.normal(0, 0.08, n_days)
        if s in flat_skus:
            log_price = np.zeros(n_days)
        log_rival = rng.normal(0.05, 0.1, n_days) if rivals else np.full(n_days, np.nan)
        mean = level * np.exp(1.0 * shock + own * log_price + cross * np.nan_to_num(log_rival))
        units = rng.poisson(mean)
        list_price = 100.0
        rows.append(
            pl.DataFrame(
                {
                    "date": [START + dt.timedelta(days=int(d)) for d in days],
                    "sku_id": s,
                    "category_l2": category,
                    "units": units.astype(np.int64),
                    "shelf_price": list_price,
                    "effective_price": list_price * np.exp(log_price),
                    "competitor_min_price": list_price * np.exp(log_rival) if rivals else None,
                    "is_promo": False,
                    "search_index": 50 + 20 * shock,
                    "day_of_week": days % 7,
                    "stockout": False,
                },
                schema_overrides={"competitor_min_price": pl.Float64},
            )
        )
    return pl.concat(rows), truth


@pytest.fixture(scope="module")
def confounded() -> tuple[pl.DataFrame, dict[int, float]]:
    raw, truth = mart_rows()
    return prepare_pricing_frame(raw), truth


def errors(table: pl.DataFrame, truth: dict[int, float]) -> np.ndarray:
    return np.array([row["own_elasticity"] - truth[row["sku_id"]] for row in table.iter_rows(named=True)])


def test_dml_recovers_the_elasticities_that_naive_ols_overstates(confounded) -> None:
    frame, truth = confounded
    dml = est.elasticities(est.fit("dml", frame, PARAMS))
    ols = est.elasticities(est.fit("loglog_ols", frame, PARAMS))
    assert np.abs(errors(dml, truth)).mean() < 0.2
    assert (dml["own_elasticity"] < 0).all() and dml["identified"].all()
    assert (dml["own_elasticity_low"] < dml["own_elasticity"]).all()
    assert (dml["own_elasticity"] < dml["own_elasticity_high"]).all()
    assert dml["cross_elasticity"].is_not_null().all()
    # the naive slope reads the demand shock as price response: clearly more elastic than the truth
    assert errors(ols, truth).mean() < -0.5


def test_xgboost_elasticities_are_negative_and_near_the_truth(confounded) -> None:
    frame, truth = confounded
    table = est.elasticities(est.fit("xgboost", frame, PARAMS))
    assert (table["own_elasticity"] < 0).all()
    assert np.abs(errors(table, truth)).mean() < 0.6
    assert table.columns == list(est.ELASTICITY_COLUMNS)


def test_grouped_poisson_recovers_each_groups_slope() -> None:
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(3), 4000)
    z = rng.normal(0, 0.3, (len(g), 1))
    slopes = np.array([-1.0, -2.0, 0.5])
    y = rng.poisson(np.exp(1.0 + slopes[g] * z[:, 0]))
    beta, se = est.grouped_poisson(g, 3, z, y, np.zeros(len(g)))
    assert np.allclose(beta[:, 1], slopes, atol=4 * se[:, 1].max())
    assert np.allclose(beta[:, 0], 1.0, atol=0.05)


def test_partial_pooling_pulls_a_sparse_sku_toward_its_category() -> None:
    estimate = np.array([-2.0, -2.1, -1.9, -2.05, -0.2, -1.0, -1.1, -0.9])
    se = np.array([0.1, 0.1, 0.1, 0.1, 2.0, 0.1, 0.1, 0.1])
    category = np.array(["a"] * 5 + ["b"] * 3)
    shrunk, shrunk_se, by_category, _ = est.partial_pool(estimate, se, category)
    assert abs(shrunk[4] - by_category["a"][0]) < 0.1  # the sparse SKU borrows its category's figure
    assert abs(shrunk[0] - estimate[0]) < 0.1  # a precise SKU keeps its own
    assert shrunk_se[4] < se[4]
    assert -1.2 < by_category["b"][0] < -1.0  # its own SKUs, pulled a little toward the overall mean
    missing = est.partial_pool(
        np.array([np.nan, -1.0, -1.2]), np.array([np.nan, 0.1, 0.1]), np.array(["a"] * 3)
    )
    assert missing[0][0] == pytest.approx(missing[2]["a"][0])  # no estimate: the category's


def test_a_sku_whose_price_never_moves_is_flagged_and_pooled() -> None:
    raw, _ = mart_rows(n_skus=6, flat_skus=(3,))
    table = est.elasticities(est.fit("dml", prepare_pricing_frame(raw), PARAMS))
    flat = table.filter(pl.col("sku_id") == 3).row(0, named=True)
    assert not flat["identified"] and flat["price_variation"] == pytest.approx(0.0)
    assert table.filter(pl.col("sku_id") != 3)["identified"].all()
    category_mean = table.filter((pl.col("category") == "a") & (pl.col("sku_id") != 3))[
        "own_elasticity"
    ].mean()
    assert flat["own_elasticity"] == pytest.approx(category_mean, abs=0.4)


def test_without_rival_prices_the_cross_effect_is_null_and_said_so() -> None:
    raw, _ = mart_rows(n_skus=4, rivals=False)
    frame = prepare_pricing_frame(raw.drop("competitor_min_price"))
    assert describe_pricing_frame(frame)["cross_effect"].startswith("null")
    for kind in est.KINDS:
        table = est.elasticities(est.fit(kind, frame, PARAMS))
        assert table["cross_elasticity"].is_null().all(), kind
        assert table["own_elasticity"].is_not_null().all(), kind


def test_stock_out_days_are_dropped_and_weekly_rows_kept() -> None:
    raw, _ = mart_rows(n_skus=2, n_days=30)
    raw = raw.with_columns((pl.col("date").dt.day() == 1).alias("stockout"))
    frame = prepare_pricing_frame(raw)
    assert frame.height == raw.height - 2
    weekly = prepare_pricing_frame(raw.filter(pl.col("date").dt.weekday() == 1))
    assert describe_pricing_frame(weekly)["grain"] == "weekly"


def test_predictions_are_positive_and_cover_unseen_skus(confounded) -> None:
    frame, _ = confounded
    train, test = split_holdout(frame, 28)
    new = test.filter(pl.col("sku_id") == 1).with_columns(pl.lit(99, pl.Int64).alias("sku_id"))
    for kind in est.KINDS:
        fitted = est.fit(kind, train, PARAMS)
        predicted = est.predict_units(fitted, pl.concat([test, new]))
        assert np.isfinite(predicted).all() and (predicted > 0).all(), kind
        unseen = est.elasticities(fitted, new)
        assert not unseen["identified"][0] and unseen["own_elasticity"][0] is not None, kind


def test_errors_a_user_can_meet_say_what_to_do() -> None:
    raw, _ = mart_rows(n_skus=1, n_days=10)
    with pytest.raises(FamilyDataError, match="no in-stock rows"):
        prepare_pricing_frame(raw.with_columns(pl.lit(True).alias("stockout")))
    with pytest.raises(FamilyDataError, match="no rows in the estimation window"):
        prepare_pricing_frame(raw.clear())
    with pytest.raises(FamilyDataError, match=r"pricing\.holdout_days"):
        split_holdout(prepare_pricing_frame(raw), 56)
    with pytest.raises(ValueError, match="unknown elasticity estimator 'lasso'"):
        est.fit("lasso", prepare_pricing_frame(raw), PARAMS)
