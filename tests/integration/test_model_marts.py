"""The forecasting marts, built by dbt and published by ``publish_model_output_marts`` on a tiny
warehouse: realised accuracy against known errors, idempotent rebuilds, absent model outputs, and a
publish that touches nothing else."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.config import Settings, load_settings
from pipelines.model_marts import ModelMartsError, publish_model_output_marts
from pipelines.transform import DbtError
from tests.integration.model_output_fixtures import (
    BAND,
    HORIZON,
    LAST_DAY,
    SKUS,
    actual_units,
    make_model_output_warehouse,
    order_quantity,
    run_dates,
    write_forecasts,
    write_input_marts,
    write_plans,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARTS = ["fct_demand_forecasts", "fct_replenishment_plans", "mart_forecast_accuracy"]
# Every family's marts publish together (the pricing ones built empty here).
PUBLISHED = sorted(
    [*MARTS, "fct_price_decisions", "fct_price_elasticities", "mart_price_position", "mart_pricing_replay"]
)
# Version 1 scored the first run dates perfectly; version 2 the later ones with these errors
# (units, by SKU): SKU 3 falls outside the +-3 band, SKUs 4-6 are exact.
PERFECT_DATES = run_dates(21)[:10]
ERROR_DATES = run_dates(21)[10:]
ERRORS = {1: 2.0, 2: -1.0, 3: 5.0}


def _error(sku: int, _day: dt.date) -> float:
    return ERRORS.get(sku, 0.0)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _snapshot(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path)) as con:
        return {t: con.execute(f"select * from marts.{t} order by all").fetchall() for t in MARTS}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Forecasts of two model versions and three days of plans, built and published once."""
    settings = load_settings({"ECOM_HOME": str(tmp_path_factory.mktemp("model_marts"))})
    make_model_output_warehouse(settings.warehouse_path, PERFECT_DATES)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        write_forecasts(con, ERROR_DATES, error=_error, model_version="2")
        write_plans(con, ERROR_DATES[-3:])
    assert publish_model_output_marts(settings, LAST_DAY) == PUBLISHED
    yield settings


def test_a_perfect_forecast_has_wape_zero_and_full_coverage(published: Settings) -> None:
    with duckdb.connect(str(published.warehouse_path)) as con:
        rows = _rows(con, "select * from marts.mart_forecast_accuracy where model_version = '1'")
        realised = con.execute(
            "select count(*), count(*) filter (where actual_units = p50) from marts.fct_demand_forecasts "
            "where model_version = '1' and actual_units is not null"
        ).fetchone()
    assert rows and {(r["wape"], r["bias"], r["coverage"]) for r in rows} == {(0.0, 0.0, 1.0)}
    # every target day up to LAST_DAY is realised, later ones are not
    expected = sum(
        len(SKUS) for d in PERFECT_DATES for h in range(1, HORIZON + 1) if d + dt.timedelta(h) <= LAST_DAY
    )
    assert realised == (expected, expected)
    assert sum(r["forecasts"] for r in rows) == expected


def _expected_sums(key: str) -> dict[Any, list[float]]:
    """|error|, error, actual, in band and forecasts of version 2, by ``key`` (horizon or week, horizon)."""
    want: dict[Any, list[float]] = {}
    for run_date in ERROR_DATES:
        for h in range(1, HORIZON + 1):
            target = run_date + dt.timedelta(days=h)
            if target > LAST_DAY:
                continue
            week = target - dt.timedelta(days=target.weekday())
            sums = want.setdefault(h if key == "horizon" else (week, h), [0.0] * 5)
            for sku in SKUS:
                error = _error(sku, target)
                for i, value in enumerate(
                    (abs(error), error, actual_units(sku, target), abs(error) <= BAND, 1)
                ):
                    sums[i] += value
    return want


def test_known_errors_give_the_known_wape_bias_and_coverage(published: Settings) -> None:
    want = _expected_sums("week")
    with duckdb.connect(str(published.warehouse_path)) as con:
        got = _rows(con, "select * from marts.mart_forecast_accuracy where model_version = '2'")
    assert sorted((r["target_week"], r["horizon"]) for r in got) == sorted(want)
    for r in got:
        abs_error, error, actual, in_band, n = want[(r["target_week"], r["horizon"])]
        assert (r["forecasts"], r["actual_units"], r["abs_error"]) == (n, actual, abs_error)
        assert r["wape"] == pytest.approx(abs_error / actual, rel=1e-12)
        assert r["bias"] == pytest.approx(error / actual, rel=1e-12)
        assert r["coverage"] == pytest.approx(in_band / n, rel=1e-12)


def test_rolled_up_by_horizon_the_sums_give_the_known_wape(published: Settings) -> None:
    want = _expected_sums("horizon")
    with duckdb.connect(str(published.warehouse_path)) as con:
        got = _rows(
            con,
            """select horizon, sum(abs_error) / sum(actual_units) as wape,
                sum(p50_units - actual_units) / sum(actual_units) as bias,
                sum(in_band) / sum(band_forecasts) as coverage
            from marts.mart_forecast_accuracy where model_version = '2' group by horizon order by horizon""",
        )
    # the first of the later runs is the oldest: its horizons 1 .. len - 1 have arrived
    assert [r["horizon"] for r in got] == sorted(want) == list(range(1, len(ERROR_DATES)))
    for r in got:
        abs_error, error, actual, in_band, n = want[r["horizon"]]
        assert r["wape"] == pytest.approx(abs_error / actual, rel=1e-12)
        assert r["bias"] == pytest.approx(error / actual, rel=1e-12)
        assert r["coverage"] == pytest.approx(in_band / n, rel=1e-12)


def test_horizon_is_days_ahead_and_later_targets_wait_for_their_actuals(published: Settings) -> None:
    with duckdb.connect(str(published.warehouse_path)) as con:
        rows = con.execute(
            """select count(*) filter (where horizon <> target_date - run_date),
                count(*) filter (where target_date <= ? and actual_units is null),
                count(*) filter (where target_date > ? and actual_units is not null),
                min(horizon), max(horizon), min(period_days), max(period_days)
            from marts.fct_demand_forecasts""",
            [LAST_DAY, LAST_DAY],
        ).fetchone()
    assert rows == (0, 0, 0, 1, HORIZON, 1, 1)


def test_the_plans_carry_product_attributes_and_order_values(published: Settings) -> None:
    with duckdb.connect(str(published.warehouse_path)) as con:
        rows = _rows(
            con, "select * from marts.fct_replenishment_plans where run_date = ? order by sku_id", LAST_DAY
        )
    assert [r["sku_id"] for r in rows] == list(SKUS)
    for r in rows:
        assert r["order_quantity"] == order_quantity(r["sku_id"], LAST_DAY)
        assert r["is_order"] == (r["order_quantity"] > 0)
        assert r["order_value"] == pytest.approx(r["order_quantity"] * 2.5 * r["sku_id"])
        assert r["sku_name"] == f"SKU <{r['sku_id']}>" and r["supplier_id"] == 7
        assert r["model_name"] == "demand_forecaster"  # not in the plan table: imputed


def test_publishing_again_gives_the_same_rows_and_touches_no_other_mart(
    published: Settings, tmp_path: Path
) -> None:
    settings = load_settings({"ECOM_HOME": str(tmp_path)})
    settings.warehouse_path.parent.mkdir(parents=True)
    shutil.copy(published.warehouse_path, settings.warehouse_path)
    before = _snapshot(settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        write_forecasts(con, ERROR_DATES, error=_error, model_version="2")  # a rescored day: same rows
        # a foundation build whose audit failed: in build_marts, never published
        con.execute("create table marts.rpt_kpi_daily as select date '2024-11-15' as date, 1.0 as gmv")
        con.execute("create table build_marts.rpt_kpi_daily as select date '2024-11-15' as date, 2.0 as gmv")

    assert publish_model_output_marts(settings, LAST_DAY) == PUBLISHED

    assert _snapshot(settings.warehouse_path) == before
    with duckdb.connect(str(settings.warehouse_path)) as con:
        assert con.execute("select gmv from marts.rpt_kpi_daily").fetchall() == [(1.0,)]


def test_without_model_outputs_the_marts_are_published_empty(settings: Settings) -> None:
    # A foundation-only rollout: no forecasts schema at all.
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        write_input_marts(con)

    assert publish_model_output_marts(settings, LAST_DAY) == PUBLISHED

    with duckdb.connect(str(settings.warehouse_path)) as con:
        counts = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in MARTS}
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'fct_demand_forecasts'"
            ).fetchall()
        }
    assert counts == dict.fromkeys(MARTS, 0)
    assert {
        "run_date",
        "sku_id",
        "target_date",
        "p10",
        "p50",
        "p90",
        "model_version",
        "actual_units",
    } <= columns


def test_a_failed_data_test_publishes_nothing(settings: Settings) -> None:
    # written before scoring recorded the model's name: the forecaster's name is imputed
    make_model_output_warehouse(settings.warehouse_path, run_dates(2), with_model_name=False)
    publish_model_output_marts(settings, LAST_DAY)
    before = _snapshot(settings.warehouse_path)
    assert {r[4] for r in before["fct_demand_forecasts"]} == {"demand_forecaster"}  # model_name
    with duckdb.connect(str(settings.warehouse_path)) as con:
        # a second copy of one run's rows: the forecast's grain no longer holds
        con.execute(
            "insert into forecasts.demand_forecast "
            "select * from forecasts.demand_forecast where run_date = ?",
            [LAST_DAY],
        )

    with pytest.raises(
        DbtError, match=r"dbt build --select tag:model_outputs .*failed(.|\n)*unique_combination"
    ):
        publish_model_output_marts(settings, LAST_DAY)

    assert _snapshot(settings.warehouse_path) == before


def test_no_warehouse(settings: Settings) -> None:
    with pytest.raises(ModelMartsError, match=r"no warehouse at .*: run the foundation"):
        publish_model_output_marts(settings, LAST_DAY)
    assert not settings.warehouse_path.exists()
