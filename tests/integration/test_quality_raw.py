"""``validate_raw`` on the tiny world: a good batch loads, and every bad-input case of
docs/data-quality.md ends as documented (block, quarantine or warn), with the message it promises."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from pipelines.config import Settings, load_settings
from pipelines.data.contract import TABLES
from pipelines.data.land import LandingError, land_batch, read_manifest
from pipelines.quality import QualityError, QualityGateError, validate_raw
from pipelines.quality.suites import list_suites, read_suite

pytestmark = pytest.mark.integration

DAY = dt.date(2024, 12, 31)  # the tiny world's last day

Edit = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    manifest_rows: dict[str, int]
    result: Any
    snapshot: dict[str, Any]


def _settings(home: Path, **overrides: str) -> Settings:
    return load_settings({"ECOM_HOME": str(home), **overrides})


def _snapshot(settings: Settings) -> dict[str, Any]:
    """What a blocked run must not change: raw rows per table and batch, quarantine, marts."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_schema || '.' || table_name from information_schema.tables "
                "where table_schema in ('raw', 'quarantine', 'marts') order by 1"
            ).fetchall()
        ]
        out: dict[str, Any] = {"tables": tables}
        for t in tables:
            if t.startswith("raw."):
                out[t] = con.execute(
                    f"select _batch_date, _batch_id, _loaded_at, count(*) from {t} group by all order by all"
                ).fetchall()
            else:
                out[t] = sorted(map(str, con.execute(f"select * from {t}").fetchall()))
        return out
    finally:
        con.close()


def _query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _batch(tiny_world: Path, folder: Path, **edits: Edit) -> Path:
    """A copy of the tiny world's files with ``edits`` applied per table."""
    shutil.copytree(tiny_world / "data" / "generated", folder)
    for table, edit in edits.items():
        path = folder / f"{table}.parquet"
        edit(pl.read_parquet(path)).write_parquet(path)
    return folder


def _every(n: int, count: int) -> pl.Expr:
    """True on ``count`` rows spread through the frame: rows n, 2n, ... (0-based index)."""
    index = pl.int_range(pl.len())
    return (index % n == n - 1) & (index < n * count)


@pytest.fixture(scope="module")
def good(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """The tiny world landed and validated once; a marts table stands in for published marts."""
    settings = _settings(tmp_path_factory.mktemp("quality_good"))
    land_batch(str(tiny_world / "data" / "generated"), settings, DAY)
    result = validate_raw(settings, DAY)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema marts")
    con.execute("create table marts.rpt_kpi_daily as select date '2024-12-31' as date, 42.0 as gmv")
    con.close()
    manifest = read_manifest(settings.raw_dir / f"dt={DAY}")
    rows = {f["table"]: int(f["rows"]) for f in manifest["files"]}
    return Loaded(settings, rows, result, _snapshot(settings))


def _home_like(good: Loaded, home: Path) -> Settings:
    """A fresh ECOM_HOME whose warehouse is a copy of the good one (raw loaded, marts published)."""
    settings = _settings(home)
    settings.warehouse_path.parent.mkdir(parents=True)
    shutil.copy(good.settings.warehouse_path, settings.warehouse_path)
    return settings


def _blocked(good: Loaded, tmp_path: Path, tiny_world: Path, **edits: Edit) -> QualityGateError:
    settings = _home_like(good, tmp_path / "home")
    before = _snapshot(settings)
    land_batch(str(_batch(tiny_world, tmp_path / "batch", **edits)), settings, DAY)
    with pytest.raises(QualityGateError) as caught:
        validate_raw(settings, DAY)
    # Nothing of the partition was loaded: raw, quarantine and marts are exactly as before.
    assert _snapshot(settings) == before
    assert (settings.reports_dir / "data_docs" / "index.html").is_file()
    return caught.value


# --- the good batch ----------------------------------------------------------------------------


def test_a_good_batch_loads_every_table_with_its_batch_columns(good: Loaded) -> None:
    result = good.result
    assert set(result.loaded) == set(TABLES)
    assert result.loaded == good.manifest_rows
    assert result.quarantined == {} and result.total_quarantined == 0
    assert result.warnings == []
    assert result.data_docs_index.is_file()
    assert result.data_docs_index == good.settings.reports_dir / "data_docs" / "index.html"
    assert any(
        (good.settings.reports_dir / "data_docs" / "validations" / "raw" / "daily_sales").rglob("*.html")
    )

    con = duckdb.connect(str(good.settings.warehouse_path), read_only=True)
    try:
        for name, table in TABLES.items():
            columns = [r[0] for r in con.execute(f"describe raw.{name}").fetchall()]
            assert columns == [*table.column_names, "_batch_date", "_batch_id", "_loaded_at"]
            assert con.execute(
                "select count(*), min(_batch_date), max(_batch_date), count(distinct _batch_id) "
                f"from raw.{name}"
            ).fetchall() == [(good.manifest_rows[name], DAY, DAY, 1)]
    finally:
        con.close()


def test_every_expectation_is_recorded_with_its_dimension_and_severity(good: Loaded) -> None:
    rows = _query(
        good.settings,
        "select table_name, expectation, dimension, severity, success, stage, run_date "
        "from quality.validation_results where run_id = ?",
        good.result.run_id,
    )
    expected = {(t, r.name) for t in TABLES for r in read_suite("raw", t).rules}
    expected |= {(t, r.name) for t in list_suites("raw_batch") for r in read_suite("raw_batch", t).rules}
    assert {(r[0], r[1]) for r in rows} == expected
    assert all(r[4] for r in rows), [r for r in rows if not r[4]]
    assert {r[2] for r in rows} == {"accuracy", "completeness", "timeliness"}
    assert {r[3] for r in rows} == {"block", "quarantine", "warn"}
    assert {(r[5], r[6]) for r in rows} == {("raw", DAY)}


def test_rerunning_the_same_date_gives_identical_counts(good: Loaded) -> None:
    before = _query(good.settings, "select count(*) from raw.daily_sales")
    again = validate_raw(good.settings, DAY)
    assert again.loaded == good.result.loaded
    assert again.run_id != good.result.run_id
    assert _query(good.settings, "select count(*) from raw.daily_sales") == before
    for name, rows in good.manifest_rows.items():
        assert _query(good.settings, f"select count(*) from raw.{name}") == [(rows,)]


def test_a_big_table_is_validated_in_row_slices_with_the_same_outcome(
    good: Loaded, tiny_world: Path, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, ECOM_QUALITY__MAX_ROWS_PER_CHUNK="12000")
    land_batch(str(tiny_world / "data" / "generated"), settings, DAY)
    result = validate_raw(settings, DAY)
    assert result.loaded == good.result.loaded
    detail = _query(
        settings,
        "select detail from quality.validation_results where table_name = 'daily_sales' limit 1",
    )
    assert json.loads(detail[0][0]).get("sliced") is True  # 42k rows in slices of at most 12k


# --- bad input: landing blocks (schema drift, duplicate rows) ----------------------------------


def test_schema_drift_is_blocked_at_landing_and_nothing_reaches_raw(
    good: Loaded, tiny_world: Path, tmp_path: Path
) -> None:
    settings = _home_like(good, tmp_path / "home")
    before = _snapshot(settings)
    drifted = _batch(
        tiny_world, tmp_path / "batch", daily_sales=lambda df: df.with_columns(pl.lit(1).alias("units_v2"))
    )
    with pytest.raises(LandingError) as caught:
        land_batch(str(drifted), settings, DAY)
    assert [(p.table, p.rule, p.column) for p in caught.value.problems] == [
        ("daily_sales", "extra_column", "units_v2")
    ]
    with pytest.raises(QualityError, match="no landed partition for 2024-12-31"):
        validate_raw(settings, DAY)
    assert _snapshot(settings) == before


def test_duplicate_rows_in_a_batch_are_blocked_at_landing(
    good: Loaded, tiny_world: Path, tmp_path: Path
) -> None:
    settings = _home_like(good, tmp_path / "home")
    before = _snapshot(settings)
    dup = _batch(tiny_world, tmp_path / "batch", order_lines=lambda df: pl.concat([df, df.head(3)]))
    with pytest.raises(LandingError) as caught:
        land_batch(str(dup), settings, DAY)
    assert [(p.table, p.rule) for p in caught.value.problems] == [("order_lines", "duplicate_key")]
    assert "3 duplicated key(s)" in str(caught.value)
    assert _snapshot(settings) == before


def test_master_data_keeps_each_keys_latest_row_whatever_order_batches_land_in(
    tiny_world: Path, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    first, second = tmp_path / "b1", tmp_path / "b2"
    for folder in (first, second):
        folder.mkdir()
        for name in ("warehouses", "products"):
            shutil.copy(tiny_world / "data" / "generated" / f"{name}.parquet", folder / f"{name}.parquet")
    products = pl.read_parquet(first / "products.parquet")
    dropped = int(products["sku_id"][0])
    # The later batch doubles every price and no longer carries one SKU.
    later_products = products.filter(pl.col("sku_id") != dropped).with_columns(pl.col("list_price") * 2)
    later_products.write_parquet(second / "products.parquet")
    # Master data only: a batch without facts lands only when asked to (ecom land refuses it).
    land_batch(str(first), settings, DAY, require_facts=False)
    validate_raw(settings, DAY)
    land_batch(str(second), settings, DAY + dt.timedelta(days=1), require_facts=False)
    later = validate_raw(settings, DAY + dt.timedelta(days=1))
    assert later.loaded == {"warehouses": 2, "products": later_products.height}

    def rows_per_batch() -> list[tuple]:
        return _query(
            settings,
            "select _batch_date, count(*), sum(list_price) from raw.products group by all order by all",
        )

    # A key the later batch carries keeps only its later row; the dropped SKU keeps its first one.
    first_price = products.filter(pl.col("sku_id") == dropped)["list_price"].sum()
    expected = [
        (DAY, 1, pytest.approx(first_price)),
        (
            DAY + dt.timedelta(days=1),
            later_products.height,
            pytest.approx(later_products["list_price"].sum()),
        ),
    ]
    assert rows_per_batch() == expected
    assert _query(settings, "select count(*) from raw.warehouses") == [(2,)]
    # Re-validating the earlier date (a backfill) lands its rows again, and the later batch still wins.
    validate_raw(settings, DAY)
    assert rows_per_batch() == expected


# --- bad input: quarantine and warn (one batch holding several row-level defects) ---------------


@pytest.fixture(scope="module")
def defects(tiny_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """Null keys and negative quantities in order_lines, future dates in browsing_events, weather
    five days stale: all row-level or warn-level, so the batch loads without them."""
    root = tmp_path_factory.mktemp("quality_defects")
    batch = _batch(
        tiny_world,
        root / "batch",
        order_lines=lambda df: df.with_columns(
            pl.when(_every(500, 8)).then(None).otherwise(pl.col("sku_id")).alias("sku_id"),
            pl.when(_every(701, 6)).then(-1).otherwise(pl.col("quantity")).alias("quantity"),
        ),
        browsing_events=lambda df: df.with_columns(
            pl.when(_every(1000, 7))
            .then(dt.date(2025, 1, 5))
            .otherwise(pl.col("event_date"))
            .alias("event_date")
        ),
        weather=lambda df: df.filter(pl.col("date") <= DAY - dt.timedelta(days=5)),
    )
    settings = _settings(root / "home")
    land_batch(str(batch), settings, DAY)
    result = validate_raw(settings, DAY)
    rows = {f["table"]: int(f["rows"]) for f in read_manifest(settings.raw_dir / f"dt={DAY}")["files"]}
    return Loaded(settings, rows, result, {})


def _rejected(settings: Settings, table: str, rule: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        cur = con.execute(
            "select * from quarantine.rejected_rows where table_name = ? and rule = ? order by row_number",
            [table, rule],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def test_null_keys_are_quarantined_and_the_rest_loads(defects: Loaded) -> None:
    rule = "expect_column_values_to_not_be_null(sku_id)"
    assert defects.result.quarantined["order_lines"][rule] == 8
    rows = _rejected(defects.settings, "order_lines", rule)
    assert [r["row_number"] for r in rows] == [500 * (i + 1) for i in range(8)]
    first = rows[0]
    assert first["run_id"] == defects.result.run_id
    assert first["batch_date"] == DAY
    assert first["severity"] == "quarantine"
    assert "sku_id=null" in first["reason"]
    assert json.loads(first["row_key"])["sku_id"] is None
    assert set(json.loads(first["row_json"])) == set(TABLES["order_lines"].column_names)
    # 8 null keys + 6 negative quantities, all loaded but those rows; no reconciliation block.
    assert defects.result.quarantined_rows["order_lines"] == 14
    assert defects.result.loaded["order_lines"] == defects.manifest_rows["order_lines"] - 14
    assert _query(defects.settings, "select count(*) from raw.order_lines where sku_id is null") == [(0,)]


def test_negative_quantities_are_quarantined(defects: Loaded) -> None:
    rule = "expect_column_values_to_be_between(quantity)"
    assert defects.result.quarantined["order_lines"][rule] == 6
    rows = _rejected(defects.settings, "order_lines", rule)
    assert [r["row_number"] for r in rows] == [701 * (i + 1) for i in range(6)]
    assert all(
        "quantity=-1" in r["reason"] and r["reason"].startswith("Quantity is greater than 0") for r in rows
    )
    assert json.loads(rows[0]["row_json"])["quantity"] == -1
    assert _query(defects.settings, "select min(quantity) from raw.order_lines") == [(1,)]


def test_future_dates_are_quarantined(defects: Loaded) -> None:
    rule = "expect_column_values_to_be_between(event_date)"
    assert defects.result.quarantined == {
        "order_lines": {
            "expect_column_values_to_not_be_null(sku_id)": 8,
            "expect_column_values_to_be_between(quantity)": 6,
        },
        "browsing_events": {rule: 7},
    }
    rows = _rejected(defects.settings, "browsing_events", rule)
    assert all(json.loads(r["row_json"])["event_date"] == "2025-01-05" for r in rows)
    assert _query(defects.settings, "select max(event_date) from raw.browsing_events") == [(DAY,)]


def test_stale_data_is_a_warning_and_still_loads(defects: Loaded) -> None:
    [warning] = defects.result.warnings
    assert "weather" in warning and "Stale data" in warning and '"days_behind": 5' in warning
    assert defects.result.loaded["weather"] == defects.manifest_rows["weather"]
    assert _query(
        defects.settings,
        "select severity, success, unexpected_count from quality.validation_results "
        "where run_id = ? and table_name = 'timeliness'",
        defects.result.run_id,
    ) == [("warn", False, 1)]


def test_quarantine_is_replaced_when_the_date_is_validated_again(defects: Loaded) -> None:
    before = _query(defects.settings, "select count(*), count(distinct run_id) from quarantine.rejected_rows")
    again = validate_raw(defects.settings, DAY)
    assert again.quarantined == defects.result.quarantined
    assert again.loaded == defects.result.loaded
    after = _query(
        defects.settings, "select count(*), count(distinct run_id), min(run_id) from quarantine.rejected_rows"
    )
    assert after == [(before[0][0], 1, again.run_id)]


# --- bad input: blocking ------------------------------------------------------------------------


def test_a_reconciliation_mismatch_blocks_the_partition(
    good: Loaded, tiny_world: Path, tmp_path: Path
) -> None:
    error = _blocked(
        good,
        tmp_path,
        tiny_world,
        daily_sales=lambda df: df.with_columns(
            pl.when(_every(1000, 20)).then(pl.col("units") + 1).otherwise(pl.col("units")).alias("units")
        ),
    )
    # The days whose checksums differ, then the keys in them that do not reconcile.
    days, keys = sorted(error.failures, key=lambda f: f.table, reverse=True)
    assert days.table == "daily_sales vs order_lines (check sales_reconciliation_daily)"
    assert days.expectation == (
        "expect_column_pair_values_to_be_equal(checksum_daily_sales, checksum_order_lines)"
    )
    assert 0 < days.failing <= 20
    assert all(s["units_daily_sales"] > s["units_order_lines"] for s in days.samples)
    assert keys.table == "daily_sales vs order_lines (check sales_reconciliation)"
    assert keys.expectation == "expect_column_pair_values_to_be_equal(units_daily_sales, units_order_lines)"
    assert keys.failing == 20
    assert len(keys.samples) == 5
    assert all(s["units_daily_sales"] == s["units_order_lines"] + 1 for s in keys.samples)
    # Only the days that differ were compared key by key (the tiny world: 60 SKUs x 2 channels a day).
    assert keys.checked <= days.failing * 60 * 2
    text = str(error)
    assert "blocked" in text and "nothing of dt=2024-12-31 was loaded" in text
    assert "expect_column_pair_values_to_be_equal" in text and "failed for 20 of" in text
    assert text.count("sample:") == len(days.samples) + 5


def test_missing_daily_sales_rows_block_the_partition(good: Loaded, tiny_world: Path, tmp_path: Path) -> None:
    # 20% of the rows gone (only zero-sales rows, so order lines still reconcile): every day's
    # coverage of the launched SKU x channel grid falls to about 80%.
    def drop(df: pl.DataFrame) -> pl.DataFrame:
        zero = df.filter(pl.col("units") == 0)
        dropped = zero.sample(n=df.height // 5, seed=1)
        return df.join(
            dropped.select("date", "sku_id", "channel"), on=["date", "sku_id", "channel"], how="anti"
        )

    error = _blocked(good, tmp_path, tiny_world, daily_sales=drop)
    [failure] = error.failures
    assert failure.table == "daily_sales (check daily_sales_grid)"
    assert failure.expectation == "expect_column_values_to_be_between(coverage)"
    assert failure.dimension == "completeness"
    # A series ends at its last row in a batch of many days (a discontinued SKU is no gap), so the
    # last day, whose dropped rows end their series, may pass.
    assert failure.checked == 366 and failure.failing >= 365
    assert 0.7 < failure.samples[0]["coverage"] < 0.9
    # The message names the series with the most missing days, with counts and dates, and the setting.
    text = str(error)
    assert "Series ((sku_id, channel) pairs) with the most missing days: sku_id=" in text
    assert re.search(r"channel='(app|web)': \d+ of \d+ days missing, e\.g\. 2024-\d\d-\d\d, ", text)
    assert "and 1" in text and "more series with gaps" in text
    assert "set quality.min_grid_coverage (now 0.95) to the share of series a day must have" in text


def test_too_many_quarantined_rows_block_the_partition(
    good: Loaded, tiny_world: Path, tmp_path: Path
) -> None:
    error = _blocked(
        good,
        tmp_path,
        tiny_world,
        returns=lambda df: df.with_columns(
            pl.when(pl.int_range(pl.len()) % 10 == 0).then(0).otherwise(pl.col("quantity")).alias("quantity")
        ),
    )
    [failure] = error.failures
    assert failure.table == "returns (check quarantine_rate)"
    assert failure.expectation == "expect_column_values_to_be_between(quarantined_rate)"
    assert failure.failing == 1
    [sample] = failure.samples
    assert sample["table_name"] == "returns" and sample["quarantined_rate"] == pytest.approx(0.1, abs=0.002)
    # The threshold is a setting (quality.max_quarantine_rate): allow 15% and the same batch loads,
    # quarantining those rows.
    settings = _settings(tmp_path / "home", ECOM_QUALITY__MAX_QUARANTINE_RATE="0.15")
    loose = validate_raw(settings, DAY)
    assert loose.quarantined == {
        "returns": {"expect_column_values_to_be_between(quantity)": sample["quarantined_rows"]}
    }


def test_validating_a_date_that_was_never_landed_says_so(tmp_path: Path) -> None:
    with pytest.raises(
        QualityError, match=r"no landed partition for 2024-12-31 .*\(ecom land --date 2024-12-31\)"
    ):
        validate_raw(_settings(tmp_path), DAY)
