"""``validate_raw`` on a retailer's own shapes: a few tables only, weekly rows, one channel of its
own, string SKU codes, gaps, late-starting and discontinued SKUs, planned prices and promotions."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from pipelines.config import Settings, load_settings
from pipelines.data.contract import TABLES, surrogate_id
from pipelines.data.land import land_batch
from pipelines.quality import QualityError, QualityGateError, validate_raw

pytestmark = pytest.mark.integration

W0 = dt.date(2024, 1, 4)  # a Thursday: the retailer's weeks start on Thursdays
WEEKS = 10
DAY = W0 + dt.timedelta(weeks=WEEKS - 1)  # the batch: the last week's first day
WEEKLY = {
    "ECOM_LAND__GRAIN": "weekly",
    "ECOM_LAND__WEEK_START": "thursday",
    "ECOM_FORECAST__GRAIN": "weekly",
    "ECOM_QUALITY__CHANNELS": "null",
}


GAP_ID = surrogate_id("OJ-GAP-3")


def _week(i: int) -> dt.date:
    return W0 + dt.timedelta(weeks=i)


# SKU code -> (launch date or None, weeks it has rows in)
SERIES: dict[str, tuple[dt.date | None, list[int]]] = {
    "OJ-TROP-64": (None, list(range(WEEKS))),
    "OJ-MM-12": (W0, list(range(WEEKS))),
    "OJ-NEW-1": (_week(5), list(range(5, WEEKS))),  # starts late
    "OJ-OLD-9": (None, list(range(5))),  # discontinued after week 4
    "OJ-GAP-3": (W0, [w for w in range(WEEKS) if w != 3]),  # week 3 missing
}


def _settings(home: Path, **overrides: str) -> Settings:
    return load_settings({"ECOM_HOME": str(home), **WEEKLY, **overrides})


def _frames() -> dict[str, pl.DataFrame]:
    codes = list(SERIES)
    products = pl.DataFrame(
        {
            "sku_id": codes,
            "sku_name": [f"Juice {c}" for c in codes],
            "category_l1": "Beverages",
            "category_l2": "juice",
            "brand": "Tropic",
            "unit_cost": 1.5,
            "list_price": 2.99,
            "launch_date": [SERIES[c][0] for c in codes],
            "warehouse_id": 1,
        }
    )
    sales = pl.DataFrame(
        [
            {
                "date": _week(w),
                "sku_id": c,
                "channel": "store",
                "units": 10 + w,
                "revenue": round((10 + w) * 2.5, 2),
                "price_paid": 2.5,
                "stockout": False,
            }
            for c, (_, weeks) in SERIES.items()
            for w in weeks
        ]
    )
    prices = pl.DataFrame(
        {
            "sku_id": ["OJ-TROP-64", "OJ-TROP-64", "OJ-MM-12"],
            # The last two are plans: shelf prices from after the batch date.
            "effective_date": [W0, DAY + dt.timedelta(days=7), DAY + dt.timedelta(days=14)],
            "price": [2.99, 2.49, 3.19],
        }
    )
    promotions = pl.DataFrame(
        {
            "promo_id": ["P-1", "P-2"],
            "sku_id": ["OJ-TROP-64", "OJ-MM-12"],
            "start_date": [_week(2), DAY + dt.timedelta(days=7)],
            "end_date": [_week(2) + dt.timedelta(days=6), DAY + dt.timedelta(days=13)],
            "promo_type": "discount",
            "discount_pct": 20.0,
        }
    )
    return {"products": products, "daily_sales": sales, "own_prices": prices, "promotions": promotions}


def _write(folder: Path, frames: dict[str, pl.DataFrame]) -> Path:
    folder.mkdir(parents=True)
    for name, df in frames.items():
        df.write_csv(folder / f"{name}.csv")
    return folder


def _query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def retailer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Any]:
    root = tmp_path_factory.mktemp("retailer")
    settings = _settings(root / "home", ECOM_QUALITY__MIN_GRID_COVERAGE="0.7")
    land_batch(str(_write(root / "batch", _frames())), settings, DAY)
    return settings, validate_raw(settings, DAY)


def test_every_contract_table_exists_in_raw_the_missing_ones_empty_and_typed(retailer) -> None:
    settings, result = retailer
    assert set(result.loaded) == {"products", "daily_sales", "own_prices", "promotions"}
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        for name, table in TABLES.items():
            described = [(r[0], r[1]) for r in con.execute(f"describe raw.{name}").fetchall()]
            assert [c for c, _ in described] == [
                *table.column_names,
                "_batch_date",
                "_batch_id",
                "_loaded_at",
            ]
            assert described[-3:] == [
                ("_batch_date", "DATE"),
                ("_batch_id", "VARCHAR"),
                ("_loaded_at", "TIMESTAMP"),
            ]
        assert con.execute("select count(*) from raw.weather").fetchall() == [(0,)]
        assert dict(con.execute("describe raw.weather").fetchall()[i][:2] for i in range(2)) == {
            "date": "DATE",
            "region": "VARCHAR",
        }
    finally:
        con.close()


def test_string_codes_are_kept_in_raw_id_codes(retailer) -> None:
    settings, _ = retailer
    rows = _query(
        settings, "select id_column, id, code, _batch_date from raw.id_codes order by id_column, code"
    )
    expected = [("promo_id", surrogate_id(c), c, DAY) for c in ("P-1", "P-2")]
    expected += [("sku_id", surrogate_id(c), c, DAY) for c in sorted(SERIES)]
    assert rows == expected
    assert _query(settings, "select count(distinct sku_id) from raw.daily_sales") == [(len(SERIES),)]


def test_rerunning_the_date_gives_the_same_rows_and_codes(retailer) -> None:
    settings, first = retailer
    before = _query(settings, "select * exclude (_loaded_at) from raw.id_codes order by all")
    again = validate_raw(settings, DAY)
    assert again.loaded == first.loaded
    assert _query(settings, "select * exclude (_loaded_at) from raw.id_codes order by all") == before
    assert _query(settings, "select count(*) from raw.daily_sales") == [(first.loaded["daily_sales"],)]


def test_planned_prices_and_promotions_load_as_plans(retailer) -> None:
    settings, result = retailer
    assert result.quarantined == {}
    assert _query(settings, "select count(*) from raw.own_prices where effective_date > _batch_date") == [
        (2,)
    ]
    assert _query(settings, "select count(*) from raw.promotions where start_date > _batch_date") == [(1,)]


def test_weekly_series_gaps_are_measured_per_week_and_channel(retailer) -> None:
    _, result = retailer
    # One series (OJ-GAP-3) misses one week; a late start and a discontinued SKU are no gaps; the
    # single channel 'store' came from the data.
    [note] = [w for w in result.warnings if w.startswith("daily_sales_grid")]
    assert note.startswith("daily_sales_grid: 1 missing series-weeks in 1 of 5 (sku_id, channel) series")
    assert f"sku_id={GAP_ID} ('OJ-GAP-3') channel='store': 1 of 10 weeks missing, e.g. 2024-01-25" in note
    # Not stale: the latest week (its first day is the batch date) covers six more days.
    assert not [w for w in result.warnings if "Stale" in w]


def test_a_gap_below_min_grid_coverage_blocks_naming_the_series_and_the_setting(retailer, tmp_path) -> None:
    settings = _settings(tmp_path / "home")  # min_grid_coverage 0.95: week 3 holds 3 of 4 series
    shutil.copytree(retailer[0].raw_dir, settings.raw_dir)
    with pytest.raises(QualityGateError) as caught:
        validate_raw(settings, DAY)
    [failure] = caught.value.failures
    assert failure.table == "daily_sales (check daily_sales_grid)"
    assert failure.samples == (
        {"date": "2024-01-25", "expected_cells": 4, "present_cells": 3, "coverage": 0.75},
    )
    assert (
        f"with the most missing weeks: sku_id={GAP_ID} ('OJ-GAP-3') channel='store': 1 of 10 weeks "
        "missing, e.g. 2024-01-25. A missing week is no row, not a zero: land the missing daily_sales "
        "rows, or set quality.min_grid_coverage (now 0.95) to the share of series a week must have"
    ) in failure.description


def test_a_weekly_table_is_stale_once_past_its_last_week(retailer, tmp_path) -> None:
    settings = _settings(tmp_path / "home", ECOM_QUALITY__MIN_GRID_COVERAGE="0.7")
    frames = _frames()
    later = DAY + dt.timedelta(days=9)  # the last week ended 3 days ago
    orders = pl.DataFrame(
        {
            "order_id": [1],
            "sku_id": ["OJ-MM-12"],
            "order_date": [later],
            "customer_id": [1],
            "channel": ["store"],
            "quantity": [1],
            "unit_price": [2.5],
        }
    )
    land_batch(str(_write(tmp_path / "batch", {**frames, "order_lines": orders})), settings, later)
    result = validate_raw(settings, later)
    [stale] = [w for w in result.warnings if "Stale" in w]
    assert '"table_name": "daily_sales"' in stale and '"days_behind": 3' in stale


def test_channels_outside_the_configured_list_are_quarantined_naming_the_list_and_the_fix(tmp_path) -> None:
    settings = _settings(
        tmp_path / "home", ECOM_QUALITY__CHANNELS="app,web", ECOM_QUALITY__MIN_GRID_COVERAGE="0"
    )
    frames = _frames()
    frames["daily_sales"] = frames["daily_sales"].with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("store")).otherwise(pl.lit("app")).alias("channel")
    )
    frames["daily_sales"] = frames["daily_sales"].with_columns(
        pl.when(pl.col("sku_id") == "OJ-MM-12").then(pl.lit("app ")).otherwise("channel").alias("channel")
    )
    land_batch(str(_write(tmp_path / "batch", frames)), settings, DAY)
    with pytest.raises(QualityGateError) as caught:  # 11 of 44 rows quarantined: over 5%
        validate_raw(settings, DAY)
    [failure] = caught.value.failures
    assert failure.table == "daily_sales (check quarantine_rate)"
    [sample] = failure.samples
    assert sample["top_rule"] == "expect_column_values_to_be_in_set(channel)"
    assert sample["top_reason"] == (
        "Channel is a non-empty label, one of quality.channels when that is set (channel=store); "
        "quality.channels is [app, web]: set quality.channels to your channels, or null to take them "
        "from the data"
    )


def test_a_blank_channel_is_quarantined_when_channels_come_from_the_data(tmp_path) -> None:
    settings = _settings(
        tmp_path / "home", ECOM_QUALITY__MIN_GRID_COVERAGE="0", ECOM_QUALITY__MAX_QUARANTINE_RATE="1"
    )
    frames = _frames()
    frames["daily_sales"] = frames["daily_sales"].with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(" ")).otherwise("channel").alias("channel")
    )
    land_batch(str(_write(tmp_path / "batch", frames)), settings, DAY)
    result = validate_raw(settings, DAY)
    assert result.quarantined == {"daily_sales": {"expect_column_values_to_be_in_set(channel)": 1}}
    [(reason,)] = _query(settings, "select reason from quarantine.rejected_rows")
    assert reason.endswith("(channel= ); quality.channels is null, so any non-empty label is a channel")


def test_a_quarantined_row_shows_its_code(tmp_path) -> None:
    settings = _settings(
        tmp_path / "home", ECOM_QUALITY__MIN_GRID_COVERAGE="0", ECOM_QUALITY__MAX_QUARANTINE_RATE="1"
    )
    frames = _frames()
    frames["daily_sales"] = pl.concat(
        [
            frames["daily_sales"],
            frames["daily_sales"].head(1).with_columns(pl.lit("NOT-A-SKU").alias("sku_id")),
        ]
    )
    land_batch(str(_write(tmp_path / "batch", frames)), settings, DAY)
    validate_raw(settings, DAY)
    [(reason,)] = _query(settings, "select reason from quarantine.rejected_rows")
    assert reason == (
        "sku_id exists in products (raw plus this batch) "
        f"(sku_id='NOT-A-SKU' (id {surrogate_id('NOT-A-SKU')}))"
    )


def test_a_code_sharing_an_id_with_one_already_in_raw_is_a_named_error(retailer, tmp_path) -> None:
    settings = _settings(tmp_path / "home", ECOM_QUALITY__MIN_GRID_COVERAGE="0.7")
    shutil.copytree(retailer[0].raw_dir, settings.raw_dir)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(retailer[0].warehouse_path, settings.warehouse_path)
    con = duckdb.connect(str(settings.warehouse_path))
    # As if an earlier batch had landed another code with OJ-MM-12's id.
    con.execute(
        "update raw.id_codes set code = 'XX-OTHER', _batch_date = date '2024-01-01' where code = 'OJ-MM-12'"
    )
    con.close()
    with pytest.raises(QualityError) as caught:
        validate_raw(settings, DAY)
    assert str(caught.value) == (
        f"raw batch {DAY}: rule id_collision: sku_id: code 'OJ-MM-12' and code 'XX-OTHER' (landed "
        f"2024-01-01) both map to surrogate id {surrogate_id('OJ-MM-12')}; the ids could not tell the codes "
        "apart. Give one of them another code in the source (or land integer ids for that column), land "
        "the batch again and validate it; nothing was loaded"
    )


def test_daily_order_lines_reconcile_with_weekly_sales_by_week(tmp_path) -> None:
    settings = _settings(tmp_path / "home", ECOM_QUALITY__MIN_GRID_COVERAGE="0.7")
    frames = _frames()
    last_weeks = frames["daily_sales"].filter(pl.col("date").is_between(_week(WEEKS - 3), _week(WEEKS - 2)))
    # Each weekly row's units as two order lines, on its week's first and third day.
    lines = [
        (i * 2 + part, sku, date + dt.timedelta(days=2 * part), units - units // 2 if part else units // 2)
        for i, (date, sku, units) in enumerate(last_weeks.select("date", "sku_id", "units").iter_rows())
        for part in (0, 1)
    ]
    orders = pl.DataFrame(
        lines, schema=["order_id", "sku_id", "order_date", "quantity"], orient="row"
    ).with_columns(customer_id=pl.lit(1), channel=pl.lit("store"), unit_price=pl.lit(2.5))
    orders = orders.select(TABLES["order_lines"].column_names)
    land_batch(str(_write(tmp_path / "batch", {**frames, "order_lines": orders})), settings, DAY)
    result = validate_raw(settings, DAY)
    assert result.loaded["order_lines"] == orders.height
    assert not [w for w in result.warnings if "reconciliation" in w]

    # One unit more on a line of the third-last week: that week does not reconcile.
    settings = _settings(tmp_path / "home2", ECOM_QUALITY__MIN_GRID_COVERAGE="0.7")
    bad = orders.with_columns(
        pl.when(pl.col("order_id") == 1).then(pl.col("quantity") + 1).otherwise("quantity")
    )
    land_batch(str(_write(tmp_path / "bad", {**frames, "order_lines": bad})), settings, DAY)
    with pytest.raises(QualityGateError) as caught:
        validate_raw(settings, DAY)
    days, keys = sorted(caught.value.failures, key=lambda f: f.table, reverse=True)
    assert days.table == "daily_sales vs order_lines (check sales_reconciliation_daily)"
    assert [s["date"] for s in days.samples] == [str(_week(WEEKS - 3))]
    [sample] = keys.samples
    assert (sample["date"], sample["units_order_lines"] - sample["units_daily_sales"]) == (
        str(_week(WEEKS - 3)),
        1,
    )
