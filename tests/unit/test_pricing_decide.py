"""A pricing step against a small warehouse written here: inputs, publishing, freshness, reruns."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from pipelines.config import Settings
from pipelines.pricing.decide import (
    DECISIONS_TABLE,
    PricingInputError,
    StaleCompetitorPrices,
    decide_prices,
)

DAY = dt.date(2024, 6, 30)
NOW = dt.datetime(2026, 12, 4, 10, 0)
SKUS = range(1, 7)


def _warehouse(settings: Settings, *, crawled_at: dt.datetime | None = NOW - dt.timedelta(minutes=5)) -> None:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema marts; create schema pricing")
    con.execute("create table marts.dim_products (sku_id bigint, list_price double, unit_cost double)")
    con.executemany("insert into marts.dim_products values (?, 100, 60)", [(s,) for s in SKUS])
    con.execute(
        "create table marts.fct_prices_daily (date date, sku_id bigint, shelf_price double, "
        "effective_price double, is_promo boolean)"
    )
    # SKU 6 is on promotion at 80 today.
    con.executemany(
        "insert into marts.fct_prices_daily values (?, ?, 100, ?, ?)",
        [(DAY, s, 80.0 if s == 6 else 100.0, s == 6) for s in SKUS],
    )
    con.execute(
        "create table marts.fct_inventory_daily (date date, sku_id bigint, on_hand_units bigint, "
        "days_of_cover double)"
    )
    con.executemany("insert into marts.fct_inventory_daily values (?, ?, 300, 30)", [(DAY, s) for s in SKUS])
    con.execute(
        "create table marts.mart_demand_features (date date, sku_id bigint, units double, "
        "effective_price double, stockout boolean)"
    )
    con.executemany(
        "insert into marts.mart_demand_features values (?, ?, 10, 100, false)",
        [(DAY - dt.timedelta(days=d), s) for d in range(28) for s in SKUS],
    )
    con.execute(
        "create table pricing.price_elasticity (run_date date, sku_id bigint, own_elasticity double, "
        "cross_elasticity double, model_version varchar)"
    )
    # SKU 1 is very elastic (a cut pays), SKU 2 barely elastic (a rise pays).
    elasticity = {1: -4.0, 2: -0.3}
    con.executemany(
        "insert into pricing.price_elasticity values (?, ?, ?, 0.5, '3')",
        [(DAY, s, elasticity.get(s, -1.8)) for s in SKUS],
    )
    if crawled_at is not None:
        con.execute(
            "create table pricing.competitor_observations (run_date date, crawl_id varchar, "
            "competitor varchar, sku_id bigint, sku_code varchar, price double, observed_at timestamp, "
            "method varchar, ocr_confidence double, url varchar)"
        )
        # The rival undercuts us by 3% on every SKU but SKU 2, where it is dearer.
        con.executemany(
            "insert into pricing.competitor_observations values (?, 'c1', 'rival_a', ?, ?, ?, ?, 'html', "
            "null, 'http://127.0.0.1/p')",
            [(DAY, s, str(s), 120.0 if s == 2 else 97.0, crawled_at) for s in SKUS],
        )
    con.close()


def _decisions(settings: Settings) -> pl.DataFrame:
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        return con.sql(f"select * from {DECISIONS_TABLE} order by step_at, sku_id").pl()
    finally:
        con.close()


def test_a_step_publishes_one_decision_per_sku_within_the_rules(settings: Settings) -> None:
    _warehouse(settings)
    step = dt.datetime.combine(DAY, dt.time(10, 0))
    result = decide_prices(settings, DAY, step, now=NOW)
    rows = _decisions(settings)
    assert rows.height == len(SKUS) == result.skus
    assert rows["step_at"].unique().to_list() == [step]
    assert set(rows["model_version"]) == {"3"}
    by_sku = {r["sku_id"]: r for r in rows.iter_rows(named=True)}
    assert by_sku[1]["new_price"] < 100 < by_sku[2]["new_price"]  # elastic: cut; inelastic: rise
    assert by_sku[6]["new_price"] == 80 and by_sku[6]["binding"] == "promo_lock"
    step_limit = settings.pricing.max_change_per_step_pct
    assert (rows["price_change_pct"].abs() <= step_limit + 1e-9).all()
    assert (rows["new_price"] >= rows["unit_cost"] * (1 + settings.pricing.min_margin_pct / 100) - 1e-9).all()
    assert rows["competitor_age_minutes"].to_list() == pytest.approx([5.0] * len(SKUS))


def test_a_rerun_of_a_step_replaces_it_and_the_next_step_starts_from_its_prices(settings: Settings) -> None:
    _warehouse(settings)
    first = dt.datetime.combine(DAY, dt.time(10, 0))
    decide_prices(settings, DAY, first, now=NOW)
    decide_prices(settings, DAY, first, now=NOW)
    once = _decisions(settings)
    assert once.height == len(SKUS)

    decide_prices(settings, DAY, first + dt.timedelta(minutes=20), now=NOW + dt.timedelta(minutes=2))
    both = _decisions(settings)
    second = both.filter(pl.col("step_at") == first + dt.timedelta(minutes=20)).sort("sku_id")
    assert second["current_price"].to_list() == once.sort("sku_id")["new_price"].to_list()
    day_limit = settings.pricing.max_change_per_day_pct
    unlocked = second.filter(pl.col("binding") != "promo_lock")
    assert (100 * (unlocked["new_price"] / 100 - 1)).abs().max() <= day_limit + 1e-9


def test_stale_or_missing_rival_prices_block_publishing_by_name(settings: Settings) -> None:
    _warehouse(settings, crawled_at=NOW - dt.timedelta(hours=3))
    step = dt.datetime.combine(DAY, dt.time(10, 0))
    with pytest.raises(StaleCompetitorPrices, match=r"180 min old .*max_competitor_age_minutes \(60\)"):
        decide_prices(settings, DAY, step, now=NOW)
    con = duckdb.connect(str(settings.warehouse_path))
    written = con.execute(
        "select count(*) from information_schema.tables where table_name = 'price_decisions'"
    ).fetchone()[0]
    con.close()
    assert written == 0

    no_rule = settings.model_copy(
        update={"pricing": settings.pricing.model_copy(update={"price_advantage_share": 0.0})}
    )
    decide_prices(no_rule, DAY, step, now=NOW)  # without the rule, old rival prices do not matter
    assert _decisions(settings).height == len(SKUS)


def test_a_step_without_rival_prices_or_elasticities_says_what_to_run(settings: Settings) -> None:
    _warehouse(settings, crawled_at=None)
    step = dt.datetime.combine(DAY, dt.time(10, 0))
    with pytest.raises(StaleCompetitorPrices, match="ecom crawl --date 2024-06-30"):
        decide_prices(settings, DAY, step, now=NOW)
    with pytest.raises(PricingInputError, match="ecom score pricing --date 2024-07-01"):
        decide_prices(settings, DAY + dt.timedelta(days=1), step, now=NOW)
