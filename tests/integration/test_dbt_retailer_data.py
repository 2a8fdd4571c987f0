"""The dbt project on a retailer's own data: only products, weekly sales and prices, nothing else.

The warehouse is what `ecom validate raw` leaves for such an export: every contract table exists,
those never landed are empty; SKUs landed as string codes (surrogate ids, ``raw.id_codes``); one
sales channel ("store"); weekly rows dated on Thursdays (``land.week_start: thursday``) from
November 2017, before the shopping calendar's first year; a gap week; a late-starting SKU without
a launch date; and plans: a shelf price and a promotion dated after the last sales week.

1. First build (weekly grain): every test passes; features of tables never landed are null, never
   0; a gap is null units; the calendar reaches back to 2017 with unknown events there; codes show
   in the marts; the plans mart holds the planned weeks and the facts marts none of them.
2. Weather lands later, for the last two weeks only: the incremental build picks it up for those
   weeks and equals a full refresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.data.contract import TABLES, surrogate_id
from tests.integration.warehouse_fixtures import copy_schema, count_differences, run_dbt, warehouse_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THURSDAY = 3  # land.week_start_index
SHAPE_ENV = {"ECOM_LAND_GRAIN": "weekly", "ECOM_WEEK_START": str(THURSDAY), "ECOM_CHANNELS": ""}
FIRST_WEEK = dt.date(2017, 11, 2)  # a Thursday
WEEKS = 12
LAST_WEEK = FIRST_WEEK + dt.timedelta(weeks=WEEKS - 1)  # 2018-01-18
BATCH = LAST_WEEK + dt.timedelta(days=7)  # the export lands the day after its last week ends
GAP_WEEK = FIRST_WEEK + dt.timedelta(weeks=4)
SPIKE_WEEK, SPIKE_UNITS = 10, 1000  # the 11th week sells ten times the usual: an outlier
LATE_START = FIRST_WEEK + dt.timedelta(weeks=3)
PLANNED_PRICE_DAY = LAST_WEEK + dt.timedelta(weeks=2, days=2)  # a Saturday, two weeks ahead
PLANNED_PROMO = (LAST_WEEK + dt.timedelta(weeks=3, days=1), LAST_WEEK + dt.timedelta(weeks=4, days=3))
CODES = {"OJ-TROP-64": "orange juice", "OJ-MM-12": "late starter"}
OJ, LATE = (surrogate_id(code) for code in CODES)
MARTS = (
    "dim_dates",
    "dim_products",
    "fct_sales_daily",
    "fct_prices_daily",
    "mart_demand_features",
    "rpt_kpi_daily",
    "rpt_category_daily",
    "mart_demand_plans",
)


@dataclass
class RetailerWarehouse:
    home: Path
    con_path: Path


def _create_empty_raw(con: duckdb.DuckDBPyConnection) -> None:
    """Every contract table, empty and typed, with the audit columns, as `ecom validate raw` leaves it."""
    con.execute("create schema if not exists raw")
    for name, table in TABLES.items():
        frame = pl.DataFrame(schema=table.schema)  # noqa: F841 (read by DuckDB below)
        con.execute(
            f"create table raw.{name} as select *, cast(null as date) as _batch_date, "
            "cast(null as varchar) as _batch_id, cast(null as timestamp) as _loaded_at from frame limit 0"
        )
    con.execute(
        "create table raw.id_codes (id_column varchar, id bigint, code varchar, "
        "_batch_date date, _batch_id varchar, _loaded_at timestamp)"
    )


ID_CODES_SCHEMA = {"id_column": pl.String(), "id": pl.Int64(), "code": pl.String()}


def _land(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict], batch: dt.date) -> None:
    schema = TABLES[name].schema if name in TABLES else ID_CODES_SCHEMA
    frame = pl.DataFrame([{c: row.get(c) for c in schema} for row in rows], schema=schema).with_columns(  # noqa: F841
        _batch_date=pl.lit(batch), _batch_id=pl.lit(f"b{batch:%Y%m%d}"), _loaded_at=pl.lit(dt.datetime.now())
    )
    con.execute(f"insert into raw.{name} by name select * from frame")


def _weeks(first: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(weeks=k) for k in range((LAST_WEEK - first).days // 7 + 1)]


def _build(home: Path, *extra: str, run_date: dt.date = BATCH) -> None:
    # Unit tests fix their own vars and run on the default (daily) shape in test_dbt.py.
    run_dbt(home, ["build", "--exclude-resource-type", "unit_test", *extra], run_date=run_date, env=SHAPE_ENV)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RetailerWarehouse]:
    home = tmp_path_factory.mktemp("retailer_home")
    path = warehouse_path(home)
    path.parent.mkdir(parents=True)
    con = duckdb.connect(str(path))
    _create_empty_raw(con)
    _land(
        con,
        "products",
        [
            {
                "sku_id": OJ,
                "sku_name": "Tropicana 64oz",
                "category_l1": "beverages",
                "category_l2": "juice",
                "brand": "tropicana",
                "unit_cost": 2.0,
                "list_price": 3.5,
                "launch_date": FIRST_WEEK - dt.timedelta(days=90),
            },
            {
                "sku_id": LATE,
                "sku_name": "Minute Maid 12oz",
                "category_l1": "beverages",
                "category_l2": "juice",
                "brand": "minute maid",
                "unit_cost": 1.0,
                "list_price": 2.0,
                "launch_date": None,
            },
        ],
        BATCH,
    )
    sales = [
        {
            "date": week,
            "sku_id": OJ,
            "channel": "store",
            "units": SPIKE_UNITS if k == SPIKE_WEEK else 100 + k,
            "revenue": round((SPIKE_UNITS if k == SPIKE_WEEK else 100 + k) * 3.5, 2),
            "price_paid": 3.5,
            "stockout": None,
        }
        for k, week in enumerate(_weeks(FIRST_WEEK))
        if week != GAP_WEEK
    ] + [
        {
            "date": week,
            "sku_id": LATE,
            "channel": "store",
            "units": 10,
            "revenue": 20.0,
            "price_paid": 2.0,
            "stockout": None,
        }
        for week in _weeks(LATE_START)
    ]
    _land(con, "daily_sales", sales, BATCH)
    _land(
        con,
        "own_prices",
        [
            {"sku_id": OJ, "effective_date": FIRST_WEEK, "price": 3.5},
            {"sku_id": LATE, "effective_date": LATE_START, "price": 2.0},
            {"sku_id": OJ, "effective_date": PLANNED_PRICE_DAY, "price": 4.0},  # a plan
        ],
        BATCH,
    )
    _land(
        con,
        "promotions",
        [
            {
                "promo_id": 1,
                "sku_id": OJ,
                "start_date": FIRST_WEEK + dt.timedelta(weeks=1),
                "end_date": FIRST_WEEK + dt.timedelta(weeks=1, days=6),
                "promo_type": "discount",
                "discount_pct": 20.0,
            },
            {
                "promo_id": 2,
                "sku_id": LATE,
                "start_date": PLANNED_PROMO[0],
                "end_date": PLANNED_PROMO[1],
                "promo_type": "discount",
                "discount_pct": 25.0,
            },  # a plan starting on a Friday
        ],
        BATCH,
    )
    _land(con, "id_codes", [{"id_column": "sku_id", "id": surrogate_id(c), "code": c} for c in CODES], BATCH)
    con.close()

    _build(home, "--full-refresh")
    yield RetailerWarehouse(home, path)


def _query(w: RetailerWarehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(w.con_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_one_row_per_sku_and_week_from_its_first_week(warehouse: RetailerWarehouse) -> None:
    rows = _query(
        warehouse,
        "select sku_id, min(date), max(date), count(*), count(distinct dayofweek(date)) "
        "from build_marts.mart_demand_features group by sku_id order by sku_id",
    )
    got = {sku: (first, last, n, weekdays) for sku, first, last, n, weekdays in rows}
    assert got[OJ] == (FIRST_WEEK, LAST_WEEK, WEEKS, 1)
    # no launch date: the SKU starts with its first sales week, not the data's
    assert got[LATE] == (LATE_START, LAST_WEEK, WEEKS - 3, 1)
    assert {
        r[0] for r in _query(warehouse, "select distinct isodow(date) from build_marts.fct_prices_daily")
    } == {4}


def test_a_missing_week_is_unknown_not_zero(warehouse: RetailerWarehouse) -> None:
    units = dict(
        _query(warehouse, f"select date, units from build_marts.mart_demand_features where sku_id = {OJ}")
    )
    assert units[GAP_WEEK] is None
    assert units[GAP_WEEK - dt.timedelta(weeks=1)] == 103
    # lags count weeks: the week after the gap sees the gap as its last week
    lag = _query(
        warehouse,
        "select units_lag_1, units_lag_7 from build_marts.mart_demand_features "
        f"where sku_id = {OJ} and date = '{GAP_WEEK + dt.timedelta(weeks=1)}'",
    )
    assert lag == [(None, None)]
    lag = _query(
        warehouse,
        "select units_lag_1, units_lag_7 from build_marts.mart_demand_features "
        f"where sku_id = {OJ} and date = '{FIRST_WEEK + dt.timedelta(weeks=8)}'",
    )
    assert lag == [(107, 101)]


def test_features_of_tables_never_landed_are_null(warehouse: RetailerWarehouse) -> None:
    nulls = _query(
        warehouse,
        """
        select
            count(*),
            count(units_app) + count(units_web),
            count(views) + count(views_app) + count(add_to_carts),
            count(temp_c) + count(search_index) + count(on_hand_units) + count(competitor_min_price),
            count(stockout) + count(lost_units) + count(stockout_days_last_7)
        from build_marts.mart_demand_features""",
    )
    assert nulls[0][0] > 0
    assert nulls[0][1:] == (0, 0, 0, 0)
    kpis = _query(
        warehouse,
        "select count(*), count(orders), count(inventory_value), count(return_rate), "
        "count(stockout_rate), count(gmv) from build_marts.rpt_kpi_daily",
    )
    assert kpis == [(WEEKS, 0, 0, 0, 0, WEEKS)]
    assert _query(
        warehouse, "select count(orders), count(order_lines) from build_marts.rpt_category_daily"
    ) == [(0, 0)]
    assert _query(warehouse, "select purchase_orders from build_marts.dim_products") == [(None,), (None,)]


def test_codes_show_in_the_marts(warehouse: RetailerWarehouse) -> None:
    codes = dict(_query(warehouse, "select sku_id, sku_code from build_marts.dim_products"))
    assert codes == {OJ: "OJ-TROP-64", LATE: "OJ-MM-12"}
    plans = _query(warehouse, "select distinct sku_code from build_marts.mart_demand_plans order by 1")
    assert plans == [("OJ-MM-12",), ("OJ-TROP-64",)]


def test_the_calendar_spans_the_data_and_does_not_invent_events(warehouse: RetailerWarehouse) -> None:
    first, last = _query(warehouse, "select min(date), max(date) from build_marts.dim_dates")[0]
    assert first == dt.date(2017, 1, 1) and last == dt.date(2030, 12, 31)
    known = dict(
        _query(
            warehouse,
            "select year, bool_and(has_known_events) from build_marts.dim_dates "
            "where year in (2017, 2018) group by year",
        )
    )
    assert known == {2017: False, 2018: True}
    holiday = _query(
        warehouse,
        "select is_public_holiday, is_singles_day_peak, shopping_event "
        "from build_marts.dim_dates where date in ('2017-11-11', '2017-01-01') ",
    )
    assert holiday == [(None, None, None), (None, None, None)]
    assert _query(
        warehouse, "select is_public_holiday from build_marts.dim_dates where date = '2018-01-01'"
    ) == [(True,)]


def test_plans_fill_the_plans_mart_and_no_fact_mart(warehouse: RetailerWarehouse) -> None:
    for mart in ("fct_sales_daily", "fct_prices_daily", "mart_demand_features", "rpt_kpi_daily"):
        assert _query(warehouse, f"select max(date) from build_marts.{mart}") == [(LAST_WEEK,)], mart
    plans = _query(
        warehouse,
        """
        select date, sku_id, shelf_price, effective_price, is_promo, promo_type, discount_pct,
            promo_day_number
        from build_marts.mart_demand_plans order by date, sku_id""",
    )
    weeks = sorted({r[0] for r in plans})
    # weekly periods after the last sales week, up to the one holding the last planned day
    assert weeks == [LAST_WEEK + dt.timedelta(weeks=k) for k in range(1, 5)]
    by_key = {(r[0], r[1]): r[2:] for r in plans}
    assert len(by_key) == len(plans) == 8
    # the planned price holds from the week after its Saturday (a week is priced on its first day)
    assert by_key[(LAST_WEEK + dt.timedelta(weeks=2), OJ)][0] == 3.5
    assert by_key[(LAST_WEEK + dt.timedelta(weeks=3), OJ)][0] == 4.0
    # the promotion starting on the Friday of week 3 promotes weeks 3 and 4, from its day 1
    assert by_key[(LAST_WEEK + dt.timedelta(weeks=3), LATE)] == (2.0, 1.5, True, "discount", 25.0, 1)
    assert by_key[(LAST_WEEK + dt.timedelta(weeks=4), LATE)][2:] == (True, "discount", 25.0, 7)
    assert by_key[(LAST_WEEK + dt.timedelta(weeks=2), LATE)] == (2.0, 2.0, False, None, 0.0, None)


def test_weather_landed_later_is_picked_up_and_equals_a_full_refresh(warehouse: RetailerWarehouse) -> None:
    later = BATCH + dt.timedelta(days=1)
    days = [LAST_WEEK - dt.timedelta(weeks=1) + dt.timedelta(days=d) for d in range(14)]
    with duckdb.connect(str(warehouse.con_path)) as con:
        _land(
            con,
            "weather",
            [
                {
                    "date": d,
                    "region": "north",
                    "temp_c": float(i),
                    "precip_mm": 0.0,
                    "humidity_pct": 50.0,
                    "wind_kph": 5.0,
                    "aqi": 40.0,
                    "is_extreme": False,
                }
                for i, d in enumerate(days)
            ],
            later,
        )
    _build(warehouse.home, run_date=later)
    temps = dict(
        _query(
            warehouse,
            "select date, temp_c from build_marts.mart_demand_features "
            f"where sku_id = {OJ} and date >= '{LAST_WEEK - dt.timedelta(weeks=2)}'",
        )
    )
    # the week's mean of its daily weather (no customer master: regions weigh the same); none
    # before weather was landed
    assert temps == {
        LAST_WEEK - dt.timedelta(weeks=2): None,
        LAST_WEEK - dt.timedelta(weeks=1): 3.0,
        LAST_WEEK: 10.0,
    }
    with duckdb.connect(str(warehouse.con_path)) as con:
        copy_schema(con, "build_marts", "incremental_marts", MARTS)
    _build(warehouse.home, "--full-refresh")
    with duckdb.connect(str(warehouse.con_path)) as con:
        differences = {m: count_differences(con, ("incremental_marts", m), ("build_marts", m)) for m in MARTS}
    assert differences == dict.fromkeys(MARTS, 0)


def test_a_configured_channel_list_is_checked_and_names_the_channel(warehouse: RetailerWarehouse) -> None:
    result = run_dbt(
        warehouse.home,
        ["test", "--select", "fct_sales_daily,test_name:accepted_channels"],
        run_date=BATCH,
        env={**SHAPE_ENV, "ECOM_CHANNELS": "app,web"},
        check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "accepted_channels_fct_sales_daily_channel" in result.stdout


def test_weekly_rows_off_the_configured_week_start_fail_a_named_test(warehouse: RetailerWarehouse) -> None:
    # The same Thursday-dated weeks, but the project told weeks start on Monday.
    result = run_dbt(
        warehouse.home,
        ["test", "--select", "fct_sales_daily,test_name:dated_on_period_start"],
        run_date=BATCH,
        env={**SHAPE_ENV, "ECOM_WEEK_START": "0"},
        check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "dated_on_period_start_fct_sales_daily_date" in result.stdout


def test_daily_sales_and_products_alone_build_with_every_optional_feature_null(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The minimum on the daily grain: products and daily sales, no prices, two channels one of which
    (web) a SKU never sells in."""
    home = tmp_path_factory.mktemp("minimum_home")
    path = warehouse_path(home)
    path.parent.mkdir(parents=True)
    first = dt.date(2024, 3, 1)
    days = [first + dt.timedelta(days=d) for d in range(21)]
    with duckdb.connect(str(path)) as con:
        _create_empty_raw(con)
        _land(
            con,
            "products",
            [{"sku_id": 1, "category_l1": "home", "list_price": 9.0, "launch_date": first}],
            days[-1],
        )
        _land(
            con,
            "daily_sales",
            [
                {"date": d, "sku_id": 1, "channel": "app", "units": 2, "revenue": 18.0, "price_paid": 9.0}
                for d in days
                if d != days[10]
            ],
            days[-1],
        )
    run_dbt(
        home,
        ["build", "--exclude-resource-type", "unit_test"],
        run_date=days[-1],
        env={"ECOM_LAND_GRAIN": "daily", "ECOM_WEEK_START": "0", "ECOM_CHANNELS": "app,web"},
    )
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select count(*), count(units), count(units_app), count(units_web), count(views), "
            "count(temp_c), count(on_hand_units), min(shelf_price), bool_or(is_promo) "
            "from build_marts.mart_demand_features"
        ).fetchall()
        kpis = con.execute(
            "select count(*), count(orders), count(fill_rate) from build_marts.rpt_kpi_daily"
        ).fetchall()
    # a day without a row is missing (21 days, 20 with units); no web rows: units_web null, not 0;
    # without own prices the SKU sells at its list price, never on promotion
    assert rows == [(21, 20, 20, 0, 0, 0, 0, 9.0, False)]
    assert kpis == [(20, 0, 0)]


def test_weekly_outliers_are_judged_against_weeks_of_history(warehouse: RetailerWarehouse) -> None:
    flagged = _query(
        warehouse,
        "select date from build_marts.fct_sales_daily where is_units_outlier or is_price_outlier",
    )
    # 13 weeks of baseline and at least 8 weekly values: only the spike, not the first weeks
    assert flagged == [(FIRST_WEEK + dt.timedelta(weeks=SPIKE_WEEK),)]
