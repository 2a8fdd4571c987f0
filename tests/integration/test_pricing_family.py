"""The pricing family through the shared model layer: train, register, promote, score, rescore.

A small warehouse is written directly with DuckDB: ``marts.mart_demand_features`` and
``marts.dim_products`` shaped rows for SKUs with known elasticities, whose merchant cuts prices on
days of high demand (the endogenous price the naive baseline falls for). Training runs on a real
SQLite MLflow store and registry; scoring writes ``pricing.price_elasticity``.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_DATE = dt.date(2024, 9, 30)
N_DAYS = 240
CATEGORIES = {"snacks": -1.5, "phones": -2.5}


def warehouse_rows(n_skus: int = 16, seed: int = 4) -> tuple[pl.DataFrame, pl.DataFrame, dict[int, float]]:
    """Mart and product rows, and each SKU's true own elasticity."""
    rng = np.random.default_rng(seed)
    days = [RUN_DATE - dt.timedelta(days=N_DAYS - 1 - d) for d in range(N_DAYS)]
    shocks = {c: rng.normal(0, 0.35, N_DAYS) for c in CATEGORIES}
    frames, products, truth = [], [], {}
    for s in range(1, n_skus + 1):
        category = list(CATEGORIES)[s % 2]
        own = CATEGORIES[category] + rng.normal(0, 0.15)
        truth[s] = own
        list_price = float(rng.choice([39.0, 2400.0]))
        promo = rng.random(N_DAYS) < 0.08 + 0.2 * (shocks[category] > 0.4)
        log_price = rng.normal(0, 0.06, N_DAYS) - 0.2 * promo
        rival = list_price * np.exp(rng.normal(0.03, 0.08, N_DAYS))
        mean = 12.0 * np.exp(
            shocks[category] + own * log_price + 0.5 * np.log(rival / list_price) + 0.3 * promo
        )
        units = rng.poisson(mean)
        app = rng.binomial(units, 0.6)
        frames.append(
            pl.DataFrame(
                {
                    "date": days,
                    "sku_id": s,
                    "category_l1": "food" if category == "snacks" else "electronics",
                    "category_l2": category,
                    "list_price": list_price,
                    "units": units,
                    "units_app": app,
                    "units_web": units - app,
                    "stockout": rng.random(N_DAYS) < 0.02,
                    "shelf_price": list_price,
                    "effective_price": np.round(list_price * np.exp(log_price), 2),
                    "is_promo": promo,
                    "discount_pct": np.where(promo, 20.0, 0.0),
                    "competitor_min_price": rival,
                    "day_of_week": [d.weekday() for d in days],
                    "search_index": 50 + 30 * shocks[category],
                    "days_of_cover": rng.uniform(5, 40, N_DAYS),
                }
            )
        )
        products.append(
            {"sku_id": s, "sku_code": f"SKU{s:04d}", "list_price": list_price, "category_l2": category}
        )
    return pl.concat(frames), pl.DataFrame(products), truth


def write_warehouse(settings: Settings, mart: pl.DataFrame, products: pl.DataFrame) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema if not exists marts")
    for name, frame in (("mart_demand_features", mart), ("dim_products", products)):
        con.register("_rows", frame.to_arrow())
        con.execute(f"create or replace table marts.{name} as select * from _rows")
        con.unregister("_rows")
    con.close()


def scored_rows(settings: Settings) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.sql(
            "select run_date, sku_id, own_elasticity, own_elasticity_low, own_elasticity_high, "
            "cross_elasticity, identified, n_days, price_variation, category, model_name, model_version "
            "from pricing.price_elasticity order by sku_id"
        ).fetchall()
    finally:
        con.close()


def test_pricing_trains_promotes_and_scores_idempotently(settings: Settings) -> None:
    from pipelines.ml.families import get_family
    from pipelines.ml.lifecycle import train_family
    from pipelines.ml.registry import tracking
    from pipelines.ml.scoring import score_family
    from pipelines.pricing.family import PRICING

    settings = settings.model_copy(
        update={"pricing": settings.pricing.model_copy(update={"holdout_days": 28, "xgboost_rounds": 60})}
    )
    mart, products, truth = warehouse_rows()
    write_warehouse(settings, mart, products)
    assert get_family("pricing") is PRICING
    assert PRICING.last_data_day(settings) == RUN_DATE

    result = train_family(PRICING, settings, RUN_DATE)
    comparison = result.evaluation.comparison
    assert comparison["model"].to_list() == ["dml", "xgboost", "loglog_ols"]
    assert "truth_mae" not in comparison.columns  # no simulator truth here: held-out data only
    assert result.promoted and result.model_version == 1, result.reason
    assert result.evaluation.metric("dml", "price_deviance") < result.evaluation.metric(
        "loglog_ols", "price_deviance"
    )
    client = tracking(settings)
    assert int(client.get_model_version_by_alias("price_elasticity", "champion").version) == 1
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "tables")}
    assert {"tables/comparison.csv", "tables/elasticities.csv"} <= artifacts

    scored = score_family(PRICING, settings, RUN_DATE)
    assert scored.table == "pricing.price_elasticity" and scored.rows == len(truth) == scored.entities
    first = scored_rows(settings)
    assert {r[0] for r in first} == {RUN_DATE} and {r[10:] for r in first} == {("price_elasticity", "1")}
    own = {r[1]: r[2] for r in first}
    assert all(own[s] < 0 for s in truth)
    assert all(r[3] <= r[2] <= r[4] for r in first)
    assert np.mean([abs(own[s] - truth[s]) for s in truth]) < 0.6
    assert all(r[5] is not None for r in first) and all(r[6] for r in first)

    score_family(PRICING, settings, RUN_DATE)
    assert scored_rows(settings) == first  # the run date's rows replaced, not appended


def test_an_empty_window_is_a_clear_error(settings: Settings) -> None:
    from pipelines.ml.family import FamilyDataError
    from pipelines.pricing.family import PRICING

    with pytest.raises(FamilyDataError, match="no warehouse"):
        PRICING.load_dataset(settings, RUN_DATE)
    mart, products, _ = warehouse_rows(n_skus=2)
    write_warehouse(settings, mart, products)
    with pytest.raises(FamilyDataError, match="no rows in the estimation window"):
        PRICING.load_dataset(settings, RUN_DATE - dt.timedelta(days=2 * N_DAYS))
