"""Write-audit-publish on a hand-built warehouse: ``validate_marts`` audits ``build_marts`` for a
run date, ``publish_marts`` swaps every table into ``marts`` at once, and a failed, missing or stale
audit, or a failed copy, leaves ``marts`` exactly as it was."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.config import Settings
from pipelines.quality import (
    QualityError,
    QualityGateError,
    list_suites,
    publish_marts,
    validate_marts,
)

pytestmark = pytest.mark.integration

RUN = dt.date(2024, 12, 31)

# build_marts shaped as docs/warehouse.md describes, for two days (the run date and the day before)
# of three SKUs, two channels, two customers and two departments.
_DAYS = "(select unnest([date '2024-12-30', date '2024-12-31']) as date)"
_SKUS = "(select unnest([1, 2, 3]) as sku_id)"
BUILD = {
    "dim_dates": "select cast(d as date) as date, dayofweek(d) as day_of_week "
    "from range(date '2024-01-01', date '2025-12-31', interval 1 day) t(d)",
    "dim_products": "select sku_id, 'home' as category_l1, 10.0 * sku_id as list_price, "
    "date '2024-01-01' as launch_date, 1 as warehouse_id from " + _SKUS,
    "dim_customers": "select unnest([11, 12]) as customer_id, 'east' as region",
    "fct_sales_daily": "select date, sku_id, channel, sku_id % 2 as units, 10.0 * (sku_id % 2) as revenue, "
    "10.0 as price_paid, false as stockout, false as is_units_outlier, false as is_price_outlier "
    f"from {_DAYS}, {_SKUS}, (select unnest(['app', 'web']) as channel)",
    "fct_orders": "select 100 + row_number() over () as order_id, date as order_date, 11 as customer_id, "
    f"'app' as channel, 1 as lines, 1 as units, 10.0 as order_value from {_DAYS}",
    "fct_inventory_daily": "select date, sku_id, 1 as warehouse_id, 5 as on_hand_units, "
    f"50.0 as inventory_value from {_DAYS}, {_SKUS}",
    "fct_prices_daily": f"select date, sku_id, 10.0 as shelf_price from {_DAYS}, {_SKUS}",
    "mart_demand_features": f"select date, sku_id, 2 as units from {_DAYS}, {_SKUS}",
    "mart_customer_features": "select unnest([11, 12]) as customer_id, 3 as r_score",
    "rpt_kpi_daily": "select date, 20.0 as gmv, 2 as orders, 10.0 as aov, 2 as units, 3 as active_skus, "
    "0.0 as stockout_rate, 1.0 as fill_rate, 150.0 as inventory_value, 4.2 as inventory_turnover, "
    f"0.05 as return_rate from {_DAYS}",
    "rpt_category_daily": "select date, 'home' as category_l1, 20.0 as gmv, 2 as units, "
    f"0.0 as stockout_rate from {_DAYS}",
    "mart_demand_plans": "select date '2026-01-01' as date, sku_id, 10.0 as shelf_price, "
    "9.0 as effective_price, true as is_promo, 10.0 as discount_pct from " + _SKUS,
}


def _build(settings: Settings, *statements: str) -> None:
    """A warehouse whose build_marts holds every mart as BUILD makes it, then ``statements``."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute("create schema if not exists build_marts")
        for name, select in BUILD.items():
            con.execute(f"create or replace table build_marts.{name} as {select}")
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def _alter(settings: Settings, *statements: str) -> None:
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def _snapshot(settings: Settings, schema: str = "marts") -> dict[str, Any]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_type = 'BASE TABLE' order by 1",
                [schema],
            ).fetchall()
        ]
        return {t: sorted(map(str, con.execute(f"select * from {schema}.{t}").fetchall())) for t in tables}
    finally:
        con.close()


def _query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _audit_and_publish(settings: Settings, progress: Any = None) -> list[str]:
    """What a daily run does after dbt: audit the build, then publish it."""
    return publish_marts(settings, validate_marts(settings, RUN).run_id, progress=progress)


@pytest.fixture
def published(settings: Settings) -> Settings:
    """A warehouse with the marts built, audited and published once; the build then moves on."""
    _build(settings)
    audit = validate_marts(settings, RUN)
    publish_marts(settings, audit.run_id)
    _alter(
        settings,
        "update build_marts.rpt_kpi_daily set gmv = gmv + 1",
        "update build_marts.fct_sales_daily set units = units + 1, revenue = revenue + 10",
    )
    return settings


def test_a_good_build_passes_the_audit_and_publishes_every_table(settings: Settings) -> None:
    _build(settings, "create table build_marts.tmp_scratch as select 1 as x")
    audit = validate_marts(settings, RUN)
    assert audit.validated["fct_sales_daily"] == 6  # the run date's rows only
    assert audit.validated["dim_dates"] == 730  # dimensions whole
    assert set(audit.validated) == set(list_suites("marts"))
    assert audit.unaudited == ["tmp_scratch"]
    assert audit.warnings == [
        "build_marts.tmp_scratch has no suite in expectations/marts/: published unaudited"
    ]
    assert audit.data_docs_index.is_file()
    rows = _query(
        settings,
        "select stage, run_date, count(*), bool_and(success) from quality.validation_results "
        "where run_id = ? group by all",
        audit.run_id,
    )
    assert rows == [("marts", RUN, rows[0][2], True)]

    published = publish_marts(settings, audit.run_id)
    assert published == sorted([*BUILD, "tmp_scratch"])
    assert _snapshot(settings) == _snapshot(settings, "build_marts")


def test_a_failed_audit_names_table_expectation_count_and_samples_and_publishes_nothing(
    published: Settings,
) -> None:
    before = _snapshot(published)
    _build(
        published, "update build_marts.rpt_kpi_daily set stockout_rate = 1.5 where date = date '2024-12-31'"
    )
    with pytest.raises(QualityGateError) as caught:
        validate_marts(published, RUN, run_id="audit-bad")
    [failure] = caught.value.failures
    assert failure.table == "rpt_kpi_daily"
    assert failure.expectation == "expect_column_values_to_be_between(stockout_rate)"
    assert failure.dimension == "accuracy"
    assert (failure.failing, failure.checked) == (1, 1)
    assert failure.samples[0]["stockout_rate"] == 1.5 and failure.samples[0]["date"] == "2024-12-31"
    text = str(caught.value)
    assert "rpt_kpi_daily: expect_column_values_to_be_between(stockout_rate)" in text
    assert "failed for 1 of 1 row(s)" in text and "sample:" in text and "nothing was published" in text
    assert _query(
        published,
        "select count(*) from quality.validation_results where run_id = 'audit-bad' and not success",
    ) == [(1,)]

    with pytest.raises(QualityError, match=r"marts audit audit-bad \(run date 2024-12-31, .* UTC\) failed 1"):
        publish_marts(published, "audit-bad")
    # Without a run id (`ecom publish`) the latest audit decides, though an earlier one passed.
    with pytest.raises(QualityError) as refused:
        publish_marts(published)
    assert "the latest marts audit audit-bad" in str(refused.value)
    assert (
        "failed 1 blocking expectation(s): rpt_kpi_daily: expect_column_values_to_be_between(stockout_rate)"
        in (str(refused.value))
    )
    assert "`ecom validate marts --date 2024-12-31`" in str(refused.value)
    assert _snapshot(published) == before


def test_a_mart_without_rows_for_the_run_date_fails_completeness_and_timeliness(settings: Settings) -> None:
    _build(settings, "delete from build_marts.fct_prices_daily where date = date '2024-12-31'")
    with pytest.raises(QualityGateError) as caught:
        validate_marts(settings, RUN)
    assert {(f.table, f.expectation, f.dimension) for f in caught.value.failures} == {
        ("fct_prices_daily", "expect_table_row_count_to_be_between", "completeness"),
        ("fct_prices_daily", "expect_column_max_to_be_between(date)", "timeliness"),
    }


def test_expected_row_counts_come_from_raw(settings: Settings) -> None:
    # raw knows five SKUs, dim_products only three.
    _build(
        settings,
        "create schema raw",
        "create table raw.products as select unnest([1, 2, 3, 4, 5]) as sku_id, "
        "date '2024-01-01' as launch_date",
    )
    with pytest.raises(QualityGateError) as caught:
        validate_marts(settings, RUN)
    failures = {(f.table, f.expectation): f for f in caught.value.failures}
    assert set(failures) == {
        ("dim_products", "expect_table_row_count_to_be_between"),
        ("fct_prices_daily", "expect_table_row_count_to_be_between"),
        ("mart_demand_features", "expect_table_row_count_to_be_between"),
    }
    assert failures["dim_products", "expect_table_row_count_to_be_between"].samples == (
        {"observed_value": 3},
    )


def test_a_column_missing_from_a_mart_is_a_clear_error(settings: Settings) -> None:
    _build(
        settings,
        "alter table build_marts.fct_sales_daily drop column units",
        "drop table build_marts.fct_orders",
    )
    with pytest.raises(QualityGateError) as caught:
        validate_marts(settings, RUN)
    text = str(caught.value)
    assert "build_marts.fct_sales_daily: table_matches_suite" in text
    assert (
        "names column(s) ['units'] that build_marts.fct_sales_daily does not have (it has: date, sku_id"
        in text
    )
    assert "build_marts.fct_orders does not exist (dbt has not built it)" in text


def test_publishing_is_all_or_nothing(published: Settings) -> None:
    before = _snapshot(published)
    # A view whose table is gone: the last copy (views publish as tables too) fails mid-way.
    _alter(
        published,
        "create table build_marts.zz_gone as select 1 as x",
        "create view build_marts.zz_view as select * from build_marts.zz_gone",
        "drop table build_marts.zz_gone",
    )
    validate_marts(published, RUN)
    with pytest.raises(
        QualityError, match=r"(?s)publishing failed while copying build_marts.zz_view: .*marts is as it was"
    ):
        publish_marts(published)
    after = _snapshot(published)
    assert after == before
    assert after["rpt_kpi_daily"] != _snapshot(published, "build_marts")["rpt_kpi_daily"]


def test_publishing_needs_a_passed_audit_when_given_its_run_id(settings: Settings) -> None:
    _build(settings)
    with pytest.raises(QualityError, match="no marts audit nope recorded"):
        publish_marts(settings, "nope")
    assert _snapshot(settings) == {}


def test_publishing_without_any_audit_refuses(settings: Settings) -> None:
    _build(settings)
    with pytest.raises(
        QualityError,
        match=r"no marts audit recorded in quality.marts_audits: audit the build first \(`ecom validate",
    ):
        publish_marts(settings)
    assert _snapshot(settings) == {}


def test_publishing_takes_the_latest_audit_when_it_passed_this_build(settings: Settings) -> None:
    _build(settings)
    audit = validate_marts(settings, RUN)
    messages: list[str] = []
    assert publish_marts(settings, progress=messages.append) == sorted(BUILD)
    assert f"publishing the build audited by the latest marts audit {audit.run_id}" in messages[0]
    assert _snapshot(settings) == _snapshot(settings, "build_marts")


def test_a_build_changed_after_its_audit_is_not_published_until_audited_again(published: Settings) -> None:
    """The ``published`` build moved on after its audit: publishing refuses, with or without its run id."""
    before = _snapshot(published)
    [(run_id,)] = _query(published, "select run_id from quality.marts_audits")
    for given in (run_id, None):
        with pytest.raises(QualityError) as refused:
            publish_marts(published, given)
        assert f"build_marts changed after {'' if given else 'the latest '}marts audit {run_id}" in str(
            refused.value
        )
        assert "fct_sales_daily, rpt_kpi_daily rebuilt or dropped since" in str(refused.value)
    # Dropping an audited mart changes the build too.
    validate_marts(published, RUN)
    _alter(published, "drop table build_marts.rpt_category_daily")
    with pytest.raises(
        QualityError, match=r"build_marts changed after .*: rpt_category_daily rebuilt or dropped"
    ):
        publish_marts(published)
    assert _snapshot(published) == before

    # A mart without a suite is published unaudited, as the audit warned: adding one needs no new audit.
    _build(published)
    validate_marts(published, RUN)
    _alter(published, "create table build_marts.new_mart as select 1 as x")
    publish_marts(published)
    assert _snapshot(published) == _snapshot(published, "build_marts")
    assert "new_mart" in _snapshot(published)


def test_an_incremental_mart_rewritten_after_the_audit_is_a_changed_build(settings: Settings) -> None:
    """Incremental marts are checked by row count and latest ``_written_at``, not by hashing them."""
    _build(
        settings,
        "create or replace table build_marts.mart_demand_features as select date, sku_id, 2 as units, "
        f"timestamp '2024-12-31 01:00:00' as _written_at from {_DAYS}, {_SKUS}",
    )
    validate_marts(settings, RUN)
    # dbt rewrites the run date's rows with the same values, stamped by the new run.
    _alter(
        settings,
        "update build_marts.mart_demand_features set _written_at = timestamp '2025-01-01 01:00:00' "
        "where date = date '2024-12-31'",
    )
    with pytest.raises(QualityError, match="mart_demand_features rebuilt or dropped since"):
        publish_marts(settings)
    assert _snapshot(settings) == {}


def test_nothing_to_audit_or_publish_without_a_warehouse(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(QualityError, match="no warehouse at"):
        validate_marts(settings, RUN)
    with pytest.raises(QualityError, match="no warehouse at"):
        publish_marts(settings)


def test_publishing_copies_only_the_dates_written_since_the_last_publish(settings: Settings) -> None:
    stamp = "timestamp '2024-12-31 01:00:00' as _written_at"
    _build(
        settings,
        f"create or replace table build_marts.mart_demand_features as "
        f"select date, sku_id, 2 as units, {stamp} from {_DAYS}, {_SKUS}",
    )
    messages: list[str] = []
    _audit_and_publish(settings, messages.append)
    assert "publishing marts.mart_demand_features: copied whole" in messages
    # A daily run rewrites 2024-12-31 (new stamp) and adds 2025-01-01; an untouched day keeps its
    # old stamp. Marking the published old day shows it is not copied again.
    _alter(
        settings,
        "delete from build_marts.mart_demand_features where date = date '2024-12-31'",
        "insert into build_marts.mart_demand_features select d, sku_id, 5, timestamp '2025-01-01 01:00:00' "
        f"from (select unnest([date '2024-12-31', date '2025-01-01']) as d), {_SKUS}",
        "update marts.mart_demand_features set units = -1 where date = date '2024-12-30'",
    )
    messages.clear()
    _audit_and_publish(settings, messages.append)
    assert "publishing marts.mart_demand_features: date 2024-12-31..2025-01-01 replaced" in messages
    assert "publishing marts.fct_sales_daily: copied whole" in messages  # no _written_at
    rows = _query(
        settings,
        "select date, min(units), max(units), count(*) from marts.mart_demand_features group by 1 order by 1",
    )
    assert rows == [
        (dt.date(2024, 12, 30), -1, -1, 3),
        (dt.date(2024, 12, 31), 5, 5, 3),
        (dt.date(2025, 1, 1), 5, 5, 3),
    ]
    messages.clear()
    _audit_and_publish(settings, messages.append)
    assert "publishing marts.mart_demand_features: unchanged" in messages
    # A full rebuild stamps every row anew: every date is replaced, the marked day included.
    _alter(
        settings, "update build_marts.mart_demand_features set _written_at = timestamp '2025-01-02 01:00:00'"
    )
    _audit_and_publish(settings)
    mart = "mart_demand_features"
    assert _snapshot(settings)[mart] == _snapshot(settings, "build_marts")[mart]
    # A column whose type changed (a model now casting a sum to bigint) is copied whole, type included.
    _alter(
        settings,
        "alter table build_marts.mart_demand_features alter units type bigint",
        "update build_marts.mart_demand_features set _written_at = timestamp '2025-01-03 01:00:00' "
        "where date = date '2025-01-01'",
    )
    messages.clear()
    _audit_and_publish(settings, messages.append)
    assert "publishing marts.mart_demand_features: copied whole" in messages
    types = _query(
        settings,
        "select data_type from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'mart_demand_features' and column_name = 'units'",
    )
    assert types == [("BIGINT",)]


def _without(settings: Settings, **changes: dict[str, Any]) -> Settings:
    """``settings`` with some fields of its sections replaced (``quality={"channels": None}``)."""
    return settings.model_copy(
        update={name: getattr(settings, name).model_copy(update=fields) for name, fields in changes.items()}
    )


def test_channels_come_from_the_data_when_none_are_configured(settings: Settings) -> None:
    one_channel = (
        "update build_marts.fct_sales_daily set channel = 'store' where channel = 'app'",
        "delete from build_marts.fct_sales_daily where channel = 'web'",
        "create schema raw",
        "create table raw.daily_sales as select date '2024-12-31' as date, 1 as sku_id, ' Store' as channel",
    )
    _build(settings, *one_channel)
    with pytest.raises(QualityGateError) as caught:
        validate_marts(settings, RUN)  # quality.channels: app, web
    assert {(f.table, f.expectation) for f in caught.value.failures} == {
        ("fct_sales_daily", "expect_column_values_to_be_in_set(channel)")
    }
    audit = validate_marts(_without(settings, quality={"channels": None}), RUN)
    assert audit.validated["fct_sales_daily"] == 3


def test_marts_of_an_optional_table_never_landed_are_not_audited_and_say_so(settings: Settings) -> None:
    _build(
        settings,
        "delete from build_marts.dim_customers",
        "delete from build_marts.mart_customer_features",
        "delete from build_marts.fct_inventory_daily",
        "create schema raw",
        "create table raw.customers (customer_id bigint)",
        "create table raw.inventory_snapshots (date date, sku_id bigint, warehouse_id integer)",
    )
    audit = validate_marts(settings, RUN)
    assert not {"dim_customers", "mart_customer_features", "fct_inventory_daily"} & set(audit.validated)
    assert (
        "build_marts.fct_inventory_daily not audited: raw.inventory_snapshots holds no rows "
        "(an optional table never landed)"
    ) in audit.warnings
    # Landed, but the marts are empty: a failed audit, as before.
    _alter(settings, "insert into raw.customers values (11)")
    with pytest.raises(QualityGateError) as caught:
        validate_marts(settings, RUN)
    assert {f.table for f in caught.value.failures} == {"dim_customers", "mart_customer_features"}


def test_weekly_marts_are_audited_on_the_latest_week_up_to_the_run_date(settings: Settings) -> None:
    weekly = _without(settings, land={"grain": "weekly", "week_start": "monday"})
    period_marts = (
        "fct_sales_daily",
        "fct_prices_daily",
        "mart_demand_features",
        "rpt_kpi_daily",
        "rpt_category_daily",
    )
    _build(
        settings,
        *(f"delete from build_marts.{m} where date = date '2024-12-31'" for m in period_marts),
        "create schema raw",
        "create table raw.daily_sales as select date '2024-12-30' as date, 1 as sku_id, 'app' as channel",
    )
    audit = validate_marts(weekly, RUN)
    assert audit.validated["fct_sales_daily"] == 6 and audit.validated["rpt_kpi_daily"] == 1
    # Daily-grained marts (orders, inventory) are still audited on the run date itself.
    assert audit.validated["fct_orders"] == 1
    with pytest.raises(QualityGateError, match="fct_prices_daily"):
        validate_marts(settings, RUN)  # the daily grain wants the run date's rows
