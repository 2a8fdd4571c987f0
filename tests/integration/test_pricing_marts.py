"""The pricing marts, built by dbt and published by ``publish_model_output_marts`` on a tiny warehouse
with the pricing outputs: the latest elasticity run, the price position against the rivals, the
decisions' margins and the replay's intervals; and a warehouse without pricing outputs."""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.config import Settings, load_settings
from pipelines.model_marts import publish_model_output_marts
from pipelines.transform import DbtError
from tests.integration.model_output_fixtures import (
    BINDINGS,
    COMPETITORS,
    CRAWL_HOURS,
    LAST_DAY,
    NOT_IDENTIFIED,
    POLICY_REVENUE,
    SEEDS,
    SKUS,
    make_model_output_warehouse,
    own_elasticity,
    own_price,
    replay_value,
    rival_price,
    run_dates,
    write_decisions,
    write_forecasts,
    write_input_marts,
    write_pricing_outputs,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FORECAST_MARTS = ["fct_demand_forecasts", "fct_replenishment_plans", "mart_forecast_accuracy"]
PRICING_MARTS = [
    "fct_price_decisions",
    "fct_price_elasticities",
    "mart_price_position",
    "mart_pricing_replay",
]
ALL_MARTS = sorted(FORECAST_MARTS + PRICING_MARTS)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Forecasts, plans and every pricing output, built and published once."""
    settings = load_settings({"ECOM_HOME": str(tmp_path_factory.mktemp("pricing_marts"))})
    make_model_output_warehouse(settings.warehouse_path, run_dates(3))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        write_pricing_outputs(con)
    assert publish_model_output_marts(settings, LAST_DAY) == ALL_MARTS
    yield settings


def test_the_latest_elasticity_run_with_product_attributes(published: Settings) -> None:
    with duckdb.connect(str(published.warehouse_path)) as con:
        rows = _rows(con, "select * from marts.fct_price_elasticities order by sku_id")
    assert [r["sku_id"] for r in rows] == list(SKUS)
    for r in rows:
        sku = r["sku_id"]
        assert r["run_date"] == LAST_DAY  # not the runs a week and two before
        assert r["own_elasticity"] == pytest.approx(own_elasticity(sku, LAST_DAY))
        assert r["own_elasticity_width"] == pytest.approx(0.6)
        assert r["is_identified"] == (sku not in NOT_IDENTIFIED)
        assert (r["category_l1"], r["brand"], r["list_price"]) == (
            "home" if sku % 2 == 0 else "beauty",
            "Acme",
            4.0 * sku,
        )
        assert r["cross_elasticity"] == (None if sku == 5 else 0.4)


def test_an_earlier_run_date_publishes_the_elasticity_run_it_had(published: Settings, tmp_path: Path) -> None:
    settings = load_settings({"ECOM_HOME": str(tmp_path)})
    settings.warehouse_path.parent.mkdir(parents=True)
    shutil.copy(published.warehouse_path, settings.warehouse_path)
    day = LAST_DAY - dt.timedelta(days=3)  # between the weekly runs of LAST_DAY - 7 and LAST_DAY

    publish_model_output_marts(settings, day)

    with duckdb.connect(str(settings.warehouse_path)) as con:
        rows = _rows(con, "select run_date, sku_id, own_elasticity from marts.fct_price_elasticities")
    assert {r["run_date"] for r in rows} == {LAST_DAY - dt.timedelta(days=7)}
    assert {r["sku_id"]: r["own_elasticity"] for r in rows} == pytest.approx(
        {sku: own_elasticity(sku, LAST_DAY - dt.timedelta(days=7)) for sku in SKUS}
    )


def test_price_position_against_the_cheapest_and_the_mean_rival(published: Settings) -> None:
    with duckdb.connect(str(published.warehouse_path)) as con:
        rows = _rows(con, "select * from marts.mart_price_position order by date, sku_id")
    days = run_dates(3)
    assert [(r["date"], r["sku_id"]) for r in rows] == [(d, s) for d in days for s in SKUS]
    kept = []
    for r in rows:
        day, sku = r["date"], r["sku_id"]
        ours = own_price(sku, day)
        cheapest = min(rival_price(c, sku, day, h) for c in COMPETITORS for h in CRAWL_HOURS)
        # each rival once, at its last crawl of the day
        mean = statistics.mean(rival_price(c, sku, day, CRAWL_HOURS[-1]) for c in COMPETITORS)
        assert r["effective_price"] == ours
        assert r["rival_min_price"] == pytest.approx(cheapest)
        assert r["rival_mean_price"] == pytest.approx(mean)
        assert r["gap_to_min_pct"] == pytest.approx((ours / cheapest - 1) * 100)
        assert r["gap_to_mean_pct"] == pytest.approx((ours / mean - 1) * 100)
        assert r["kept_price_advantage"] == (round(ours, 2) <= round(cheapest, 2))
        # the unreadable rival_c rows are left out; rival_b's midday price was an image
        assert (r["competitors"], r["observations"], r["ocr_observations"]) == (2, 6, 1)
        kept.append(r["kept_price_advantage"])
    # SKU 1 (rivals 10% dearer), 5 (20%) and 6 (5%, less rival_a's 2% midday cut) keep it; SKU 3,
    # priced like rival_a, loses it to rival_a's midday cut
    assert {r["sku_id"] for r in rows if r["kept_price_advantage"]} == {1, 5, 6}
    assert any(kept) and not all(kept)


def test_every_decision_with_its_department_and_margin(published: Settings) -> None:
    with duckdb.connect(str(published.warehouse_path)) as con:
        rows = _rows(con, "select * from marts.fct_price_decisions")
    assert len(rows) == 3 * 3 * len(SKUS)  # three days of three steps
    for r in rows:
        sku = r["sku_id"]
        assert r["category_l1"] == ("home" if sku % 2 == 0 else "beauty")
        assert r["margin_pct"] == pytest.approx((r["new_price"] - 2.5 * sku) / r["new_price"] * 100)
        assert r["unit_margin"] == pytest.approx(r["new_price"] - 2.5 * sku, abs=0.006)
        assert r["price_change"] == pytest.approx(r["new_price"] - r["current_price"], abs=0.006)
        assert r["is_change"] == (r["new_price"] != r["current_price"])
        assert r["binding"] == BINDINGS[sku % len(BINDINGS)]
        assert r["is_rule_bound"] == (r["binding"] != "none")


def _interval(values: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    mean = statistics.mean(values)
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def test_replay_means_intervals_and_paired_lifts(published: Settings) -> None:
    with duckdb.connect(str(published.warehouse_path)) as con:
        rows = {
            (r["policy"], r["kpi"]): r
            for r in _rows(con, "select * from marts.mart_pricing_replay where run_date = ?", LAST_DAY)
        }
    assert {p for p, _ in rows} == set(POLICY_REVENUE)
    assert len(rows) == len(POLICY_REVENUE) * 8
    for (policy, kpi), r in rows.items():
        values = [replay_value(kpi, policy, s) for s in SEEDS]
        mean, low, high = _interval(values)
        assert r["seeds"] == len(SEEDS)
        assert (r["mean"], r["mean_low"], r["mean_high"]) == pytest.approx((mean, low, high), rel=1e-4)
    # levels: relative lifts (percent) paired by seed; rates: differences in their unit
    ai, static, rule = "ai", "static", "rule"
    revenue = _interval([
        (replay_value("revenue", ai, s) / replay_value("revenue", static, s) - 1) * 100 for s in SEEDS
    ])  # fmt: skip
    margin = _interval([
        replay_value("gross_margin_pct", ai, s) - replay_value("gross_margin_pct", rule, s) for s in SEEDS
    ])  # fmt: skip
    got_revenue = rows[(ai, "revenue")]
    got_margin = rows[(ai, "gross_margin_pct")]
    assert got_revenue["lift_kind"] == "relative" and got_margin["lift_kind"] == "difference"
    assert (
        got_revenue["lift_vs_static"],
        got_revenue["lift_vs_static_low"],
        got_revenue["lift_vs_static_high"],
    ) == (pytest.approx(revenue, rel=1e-4))
    assert (got_margin["lift_vs_rule"], got_margin["lift_vs_rule_low"], got_margin["lift_vs_rule_high"]) == (
        pytest.approx(margin, rel=1e-4)
    )
    assert got_margin["lift_vs_rule"] == pytest.approx(4.0)
    assert rows[(static, "revenue")]["lift_vs_static"] == 0.0


def test_an_unknown_binding_rule_fails_the_build_and_publishes_nothing(settings: Settings) -> None:
    make_model_output_warehouse(settings.warehouse_path, run_dates(2))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        write_decisions(con, [LAST_DAY], steps=1)
        con.execute("update pricing.price_decisions set binding = 'gut_feeling' where sku_id = 2")

    with pytest.raises(DbtError, match=r"failed(.|\n)*accepted_values_stg_pricing__price_decisions_binding"):
        publish_model_output_marts(settings, LAST_DAY)

    with duckdb.connect(str(settings.warehouse_path)) as con:
        published = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts'"
        ).fetchone()[0]
    assert published == 0


def _pricing_section(html: str) -> str:
    return html[html.index('<section id="pricing">') : html.index('<section id="coverage">')]


def test_without_pricing_outputs_the_marts_are_empty_and_the_report_says_so_in_one_line(
    settings: Settings,
) -> None:
    """The core stage alone (no pricing schema): the pricing marts are published empty and the report's
    section is one line; once the pricing outputs exist, the section shows them."""
    from pipelines.report import build_report
    from pipelines.report.pricing import ABSENT
    from tests.integration.test_report import make_warehouse

    make_warehouse(settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        write_input_marts(con)
        write_forecasts(con, run_dates(2))

    assert publish_model_output_marts(settings, LAST_DAY) == ALL_MARTS

    with duckdb.connect(str(settings.warehouse_path)) as con:
        counts = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in ALL_MARTS}
        position = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'mart_price_position'"
            ).fetchall()
        }
    assert counts["fct_demand_forecasts"] > 0
    assert {t: counts[t] for t in PRICING_MARTS} == dict.fromkeys(PRICING_MARTS, 0)
    assert {"date", "sku_id", "effective_price", "rival_min_price", "gap_to_min_pct"} <= position
    before = _pricing_section(build_report(settings).read_text(encoding="utf-8"))
    assert "<h2>Dynamic pricing</h2>" in before
    assert before.count('<p class="na">') == 1 and ABSENT.replace("'", "&#39;") in before
    assert "<svg" not in before and "<table" not in before

    with duckdb.connect(str(settings.warehouse_path)) as con:
        write_pricing_outputs(con)
    publish_model_output_marts(settings, LAST_DAY)
    html = build_report(settings).read_text(encoding="utf-8")

    section = _pricing_section(html)
    assert "Omitted" not in section
    # SKUs 1, 5 and 6 of 6 keep the price advantage on the last day (mart_price_position)
    assert '<div class="value">50.0%</div>' in section and "3 of 6 SKUs" in section
    assert section.count("<svg") == 2  # gap distribution, elasticity by category
    assert "Largest price moves" in section and '<span class="pill">' in section
    assert f"1 of\n    {len(SKUS)} were not identified" in section
    assert section.count("<tr><td>") >= 4 + 4  # policies of the replay, then the claims
    assert "Revenue +19%" in section and "Where the simulation falls short" in section
    # the rest of the page is as before: the forecasting section precedes it
    assert html.index('id="forecasting"') < html.index('id="pricing"')
