"""``build_report`` against a small hand-built warehouse in DuckDB."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import duckdb
import pytest

from pipelines.config import Settings
from pipelines.model_marts import publish_model_output_marts
from pipelines.report import ReportError, build_report
from tests.integration.model_output_fixtures import (
    SKUS,
    order_quantity,
    run_dates,
    write_forecasts,
    write_input_marts,
    write_plans,
)

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2024, 11, 15)
DAYS = 60
CATEGORIES = ("Electronics", "Home", "Beauty", "Fashion")
SECTIONS = (
    "Headline KPIs",
    "GMV and orders",
    "Category mix",
    "Inventory turnover and stock-outs",
    "Top movers",
    "Demand forecasts and replenishment",
    "Data quality",
)


def _days() -> list[dt.date]:
    return [RUN_DATE - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _kpi_row(day: dt.date, i: int) -> tuple:
    event = 2.5 if day == dt.date(2024, 11, 11) else 1.0
    orders = round((400 + 3 * i + (60 if day.weekday() >= 5 else 0)) * event)
    aov = 180.0 + (i % 5)
    return (
        day,
        orders * aov,
        orders,
        aov,
        orders * 2,
        300,
        0.03 + 0.01 * math.sin(i / 6),
        0.96 - 0.01 * math.sin(i / 6),
        2.0e6,
        8.0 + i / 30,
        0.05 + 0.002 * (i % 4),
    )


def make_warehouse(path: Path, *, optional: bool = True) -> None:
    """Publish a few dozen rows per mart; ``optional=False`` leaves out dim_dates, quality and quarantine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(
        """create table marts.rpt_kpi_daily (date date, gmv double, orders bigint, aov double,
        units bigint, active_skus bigint, stockout_rate double, fill_rate double,
        inventory_value double, inventory_turnover double, return_rate double)"""
    )
    rows = [_kpi_row(day, i) for i, day in enumerate(_days())]
    rows.append(_kpi_row(dt.date(2023, 11, 15), 0))  # the same day last year
    con.executemany("insert into marts.rpt_kpi_daily values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(
        """create table marts.rpt_category_daily (date date, category_l1 varchar, gmv double,
        units bigint, order_lines bigint, stockout_rate double)"""
    )
    con.executemany(
        "insert into marts.rpt_category_daily values (?, ?, ?, ?, ?, ?)",
        [
            (day, cat, gmv * (0.4 - 0.1 * k + 0.002 * i * (k - 1.5)), 100, 80, 0.02)
            for i, (day, gmv) in enumerate((r[0], r[1]) for r in rows[:DAYS])
            for k, cat in enumerate(CATEGORIES)
        ],
    )
    con.execute(
        """create table marts.dim_products (sku_id bigint, sku_name varchar, category_l1 varchar,
        category_l2 varchar, brand varchar, unit_cost double, list_price double)"""
    )
    con.executemany(
        "insert into marts.dim_products values (?, ?, ?, ?, ?, ?, ?)",
        [
            (sku, f"Product <{sku}>", CATEGORIES[sku % 4], "leaf", "Acme", 50.0, 100.0 + sku)
            for sku in range(1, 25)
        ],
    )
    con.execute(
        """create table marts.fct_sales_daily (date date, sku_id bigint, channel varchar, units bigint,
        revenue double, price_paid double, stockout boolean)"""
    )
    con.executemany(
        "insert into marts.fct_sales_daily values (?, ?, 'app', ?, ?, ?, false)",
        [
            (day, sku, units, units * (100.0 + sku), 100.0 + sku)
            for i, day in enumerate(_days()[-14:])
            for sku in range(1, 25)
            # SKUs 1-12 grow in the last week, 13-24 shrink.
            for units in [max(0, 10 + (sku % 12) * (1 if i >= 7 else -1) * (1 if sku <= 12 else -1))]
        ],
    )
    if not optional:
        con.close()
        return
    con.execute(
        """create table marts.dim_dates (date date, day_of_week integer, is_weekend boolean,
        shopping_event varchar, event_phase varchar)"""
    )
    phases = {dt.date(2024, 11, 11): "peak", dt.date(2024, 11, 12): "post", dt.date(2024, 11, 13): "post"}
    phases |= {dt.date(2024, 10, 21) + dt.timedelta(days=d): "pre" for d in range(21)}
    con.executemany(
        "insert into marts.dim_dates values (?, ?, ?, ?, ?)",
        [
            (d, d.isoweekday(), d.weekday() >= 5, "double_11" if d in phases else None, phases.get(d))
            for d in _days()
        ],
    )
    con.execute("create schema quality")
    con.execute(
        """create table quality.validation_results (run_id varchar, run_date date, stage varchar,
        table_name varchar, expectation varchar, dimension varchar, severity varchar, success boolean,
        unexpected_count bigint, element_count bigint, detail varchar, validated_at timestamp)"""
    )
    checks = [
        ("raw", "orders", "order_id_unique", "accuracy", "block", True, 0),
        ("raw", "orders", "order_value_positive", "accuracy", "quarantine", False, 4),
        ("raw", "daily_sales", "units_not_null", "completeness", "quarantine", True, 0),
        ("raw", "daily_sales", "fresh_batch", "timeliness", "warn", False, 1),
        ("marts", "fct_sales_daily", "pk_unique", "accuracy", "block", True, 0),
        ("marts", "rpt_kpi_daily", "gmv_not_null", "completeness", "block", True, 0),
    ]
    for run, hour, ok in (("old", 1, False), ("new", 2, True)):
        con.executemany(
            "insert into quality.validation_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, 1000, ?, ?)",
            [
                (f"{run}-{stage}", RUN_DATE, stage, table, exp, dim, sev, success and ok, n, "<script>",
                 dt.datetime(2024, 11, 16, hour))
                for stage, table, exp, dim, sev, success, n in checks
            ],
        )  # fmt: skip
    con.execute("create schema quarantine")
    con.execute(
        """create table quarantine.rejected_rows (run_id varchar, batch_date date, table_name varchar,
        rule varchar, severity varchar, reason varchar, row_number bigint, row_key varchar,
        row_json varchar, quarantined_at timestamp)"""
    )
    con.executemany(
        "insert into quarantine.rejected_rows values ('new-raw', ?, ?, ?, 'quarantine', 'bad', ?, ?, '', ?)",
        [
            (RUN_DATE, table, rule, n, str(n), dt.datetime(2024, 11, 16, 2))
            for table, rule, count in (
                ("orders", "order_value_positive", 4),
                ("daily_sales", "units_range", 2),
            )
            for n in range(count)
        ],
    )
    con.close()


@pytest.fixture
def warehouse(settings: Settings) -> Settings:
    make_warehouse(settings.warehouse_path)
    return settings


def _external_links(html: str) -> list[str]:
    """src/href attributes and CSS url() that point outside the page (anything but #fragment or relative)."""
    attributes = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]*""", html, flags=re.I)
    css = re.findall(r"""url\(\s*["']?(?!#)[^)]*\)""", html, flags=re.I)
    return attributes + css


def test_build_report_writes_a_self_contained_page(warehouse: Settings) -> None:
    out = build_report(warehouse)

    assert out == warehouse.reports_dir / f"kpi_report_{RUN_DATE}.html"
    html = out.read_text(encoding="utf-8")
    assert (warehouse.reports_dir / "index.html").read_text(encoding="utf-8") == html
    assert _external_links(html) == []
    assert "<link" not in html and "@import" not in html and "<img" not in html
    for title in SECTIONS:
        assert title in html
    assert str(RUN_DATE) in html
    assert html.count("<svg") == 3
    # a foundation-only warehouse: the forecasting section says why it is empty
    assert "Omitted: marts.fct_demand_forecasts is not published yet" in html
    assert "Singles' Day" in html or "Singles&#39; Day" in html
    assert "not available" not in html.replace("Data Docs not available", "")
    assert "Product &lt;5&gt;" in html  # names are escaped
    assert "<script>" not in html
    assert "data_docs/index.html" not in html
    assert len(html.encode()) < 2_000_000
    assert not list(warehouse.reports_dir.glob(".*.tmp"))


def test_build_report_shows_the_headline_numbers(warehouse: Settings) -> None:
    html = build_report(warehouse).read_text(encoding="utf-8")

    gmv = _kpi_row(RUN_DATE, DAYS - 1)[1]
    assert f"¥{gmv:,.0f}" in html
    assert "vs 7-day avg" in html and "vs last year" in html
    assert "▲" in html


def test_quality_section_uses_the_latest_run(warehouse: Settings) -> None:
    html = build_report(warehouse).read_text(encoding="utf-8")

    section = html[html.index('id="quality"') :]
    assert "6 expectations, 2 failed (0 blocking)" in section
    assert "order_value_positive" in section and "fresh_batch" in section
    assert "units_range" in section


def test_data_docs_link_when_the_docs_exist(warehouse: Settings) -> None:
    docs = warehouse.reports_dir / "data_docs" / "index.html"
    docs.parent.mkdir(parents=True)
    docs.write_text("<html></html>")

    html = build_report(warehouse).read_text(encoding="utf-8")

    assert 'href="data_docs/index.html"' in html


def test_earlier_run_date(warehouse: Settings) -> None:
    day = RUN_DATE - dt.timedelta(days=10)

    out = build_report(warehouse, day)

    assert out.name == f"kpi_report_{day}.html"
    html = out.read_text(encoding="utf-8")
    assert f"KPI report &middot; {day}" in html
    assert f"No validation results for {day} (the latest are for {RUN_DATE})" in html


def test_missing_optional_tables_say_not_available(settings: Settings) -> None:
    make_warehouse(settings.warehouse_path, optional=False)

    html = build_report(settings).read_text(encoding="utf-8")

    assert "Shopping events: not available" in html
    assert "Validation results not available" in html
    assert "Quarantine not available" in html
    assert "Data Docs not available" in html


def test_run_date_without_kpis(warehouse: Settings) -> None:
    with pytest.raises(ReportError, match=r"no KPIs for 2030-01-01 in marts.rpt_kpi_daily \(it covers"):
        build_report(warehouse, dt.date(2030, 1, 1))


def test_no_warehouse_file(settings: Settings) -> None:
    with pytest.raises(ReportError, match=r"no published marts in .*: run the foundation stage first"):
        build_report(settings)
    assert not settings.reports_dir.exists()


@pytest.mark.parametrize("setup", ["", "create schema marts", "create schema marts; "
                                   "create table marts.rpt_kpi_daily (date date, gmv double)"])  # fmt: skip
def test_empty_warehouse(settings: Settings, setup: str) -> None:
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        if setup:
            con.execute(setup)

    with pytest.raises(ReportError, match=re.escape(f"no published marts in {settings.warehouse_path}")):
        build_report(settings)


def test_kpi_mart_without_a_kpi_column(settings: Settings) -> None:
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "create schema marts; create table marts.rpt_kpi_daily as select current_date as date, 1.0 as gmv"
        )
        con.execute("insert into marts.rpt_kpi_daily values (current_date, 2.0)")

    with pytest.raises(ReportError, match=r"marts\.rpt_kpi_daily in .* lacks column\(s\) aov, fill_rate"):
        build_report(settings)


def _forecasting_section(html: str) -> str:
    return html[html.index('id="forecasting"') : html.index('id="quality"')]


@pytest.mark.slow
def test_forecasting_section_from_the_published_model_output_marts(warehouse: Settings) -> None:
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        write_input_marts(con)
        write_forecasts(con, run_dates(21)[:10])
        write_forecasts(
            con, run_dates(21)[10:], error=lambda sku, _day: 2.0 if sku == 1 else 0.0, model_version="2"
        )
        write_plans(con, run_dates(3))
    publish_model_output_marts(warehouse, RUN_DATE)

    html = build_report(warehouse).read_text(encoding="utf-8")

    section = _forecasting_section(html)
    assert html.count("<svg") == 5 and section.count("<svg") == 2
    assert "Forecast of 2024-11-15 by demand_forecaster v2:" in section
    assert "6 SKUs, 28 days ahead" in section
    # the top SKUs by forecast volume, named from marts.dim_products and escaped
    assert "Product &lt;6&gt;" in section and "Product &lt;5&gt;" in section
    assert section.count("Product &lt;") == 4 and "Product &lt;2&gt;" not in section
    # version 1 was exact, version 2 off by 2 units on SKU 1: WAPE 0% and above 0%
    cells = {
        version: re.findall(r'<td class="num">([^<]*)</td>', row)
        for version, row in re.findall(r"<tr><td>demand_forecaster v(\d)</td>(.*?)</tr>", section, flags=re.S)
    }
    assert cells["1"][2] == "0.0%" and cells["2"][2] not in ("0.0%", "–"), cells  # forecasts, units, WAPE
    orders = [sku for sku in SKUS if order_quantity(sku, RUN_DATE)]
    assert f"Plan of {RUN_DATE}: {len(orders)} orders for {len(SKUS)} SKUs" in section
    assert "not published" not in section and "not available" not in section


def _forecast_mart(con: duckdb.DuckDBPyConnection, run_date: dt.date) -> None:
    """marts.fct_demand_forecasts alone, hand-built: SKUs 1-3, 28 days from ``run_date``."""
    con.execute(
        """create table marts.fct_demand_forecasts as
        select ?::date as run_date, sku_id, ?::date + h::integer as target_date,
            'demand_forecaster' as model_name, '7' as model_version, 1 as period_days, h as horizon,
            1.0 * sku_id as p10, 2.0 * sku_id as p50, 3.0 * sku_id as p90, null::bigint as actual_units
        from range(1, 4) as s(sku_id), range(1, 29) as t(h)""",
        [run_date, run_date],
    )


def test_forecasting_section_without_accuracy_or_plans_says_so(warehouse: Settings) -> None:
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        _forecast_mart(con, RUN_DATE)

    section = _forecasting_section(build_report(warehouse).read_text(encoding="utf-8"))

    assert "Forecast of 2024-11-15 by demand_forecaster v7:" in section
    assert section.count("<svg") == 1
    assert "Omitted: marts.mart_forecast_accuracy is not published." in section
    assert "Omitted: marts.fct_replenishment_plans is not published." in section


def test_forecasting_section_before_the_first_forecast(warehouse: Settings) -> None:
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        _forecast_mart(con, RUN_DATE)
    day = RUN_DATE - dt.timedelta(days=10)

    section = _forecasting_section(build_report(warehouse, day).read_text(encoding="utf-8"))

    assert f"No forecast scored on or before {day}." in section
    assert "<svg" not in section
