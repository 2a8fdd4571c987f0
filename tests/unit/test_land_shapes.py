"""Landing a retailer's own shapes: string codes in id columns, weekly sales rows, and their errors."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import pipelines.data.land as land
from pipelines.config import load_settings
from pipelines.data.contract import TABLES, surrogate_id
from pipelines.data.land import ID_CODES, LandingError, land_batch, read_manifest

DAY = dt.date(2024, 1, 2)
THURSDAY = dt.date(2024, 1, 4)


def _coded(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The tiny frames with SKUs as codes: 1 -> 'OJ-TROP-64', 2 -> '0123' (not canonical), 3 -> '3'."""
    names = {1: "OJ-TROP-64", 2: "0123", 3: " 3 "}
    recode = pl.col("sku_id").replace_strict(names, return_dtype=pl.String)
    return {
        "products": frames["products"].with_columns(recode),
        "daily_sales": frames["daily_sales"].with_columns(recode),
    }


def test_surrogate_ids_are_the_documented_hash_and_fit_their_column() -> None:
    import hashlib

    digest = int.from_bytes(hashlib.blake2b(b"OJ-TROP-64", digest_size=8).digest(), "big")
    assert surrogate_id("OJ-TROP-64") == (digest & (2**62 - 1)) | 2**62
    assert 2**62 <= surrogate_id("C000123") < 2**63
    assert 2**30 <= surrogate_id("WH-NORTH", 32) < 2**31
    assert surrogate_id("OJ-TROP-64") == surrogate_id("OJ-TROP-64") != surrogate_id("OJ-TROP-65")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_string_codes_land_as_surrogate_ids_and_the_partition_keeps_them(settings, write_batch, frames, fmt):
    coded = _coded(frames)
    batch = write_batch(products=(coded["products"], fmt), daily_sales=(coded["daily_sales"], fmt))

    result = land_batch(str(batch), settings, DAY)

    sales = pl.read_parquet(result.partition / "daily_sales.parquet")
    assert sales.schema == pl.Schema(TABLES["daily_sales"].schema)
    # Every table gives a code the same id; a canonical integer ('3', whitespace aside) keeps its value.
    expected = [surrogate_id("OJ-TROP-64")] * 2 + [surrogate_id("0123"), surrogate_id("OJ-TROP-64"), 3]
    assert sales["sku_id"].to_list() == expected
    products = pl.read_parquet(result.partition / "products.parquet")
    assert products["sku_id"].to_list() == [surrogate_id("OJ-TROP-64"), surrogate_id("0123"), 3]
    codes = pl.read_parquet(result.partition / ID_CODES)
    assert codes.rows() == [
        ("sku_id", surrogate_id("0123"), "0123"),
        ("sku_id", surrogate_id("OJ-TROP-64"), "OJ-TROP-64"),
    ]
    assert read_manifest(result.partition)["id_codes"] == 2


def test_integer_ids_write_no_codes(settings, write_batch):
    result = land_batch(str(write_batch()), settings, DAY)
    assert not (result.partition / ID_CODES).exists()
    assert read_manifest(result.partition)["id_codes"] == 0


def test_duplicate_keys_show_the_code_the_file_has(settings, write_batch, frames):
    coded = _coded(frames)["daily_sales"]
    batch = write_batch(products="csv", daily_sales=(pl.concat([coded, coded.slice(0, 1)]), "csv"))
    with pytest.raises(LandingError) as caught:
        land_batch(str(batch), settings, DAY)
    [problem] = caught.value.problems
    assert problem.rule == "duplicate_key"
    assert "sku_id='OJ-TROP-64'" in problem.message


def test_a_blank_id_is_a_type_error(settings, write_batch, frames):
    sales = _coded(frames)["daily_sales"].with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("  ")).otherwise("sku_id").alias("sku_id")
    )
    with pytest.raises(LandingError) as caught:
        land_batch(str(write_batch(products="csv", daily_sales=(sales, "parquet"))), settings, DAY)
    [problem] = caught.value.problems
    assert (problem.rule, problem.column, problem.row) == ("type", "sku_id", 2)
    assert "expected Int64 (file has String), 1 bad value(s); first at row 2: '  '" in problem.message


def test_two_codes_with_one_surrogate_are_a_named_error(settings, write_batch, frames, monkeypatch):
    monkeypatch.setattr(land, "surrogate_id", lambda code, bits=64: 2**62 + len(code))
    sales = _coded(frames)["daily_sales"].with_columns(
        pl.col("sku_id").replace({"0123": "AB-1234567"})  # as long as 'OJ-TROP-64'
    )
    batch = write_batch(products=(_coded(frames)["products"], "csv"), daily_sales=(sales, "csv"))
    with pytest.raises(LandingError) as caught:
        land_batch(str(batch), settings, DAY)
    [problem] = [p for p in caught.value.problems if p.rule == "id_collision"]
    assert (problem.table, problem.column) == ("daily_sales", "sku_id")
    assert str(problem) == (
        "daily_sales.csv: column 'sku_id': rule id_collision: codes 'AB-1234567' and 'OJ-TROP-64' both "
        f"map to surrogate id {2**62 + 10}, so sku_id could not tell them apart; give one of them another "
        "code, or land integer ids for this column"
    )


# --- weekly grain ---------------------------------------------------------------------------------


def _weekly(settings, week_start: str = "thursday"):
    return load_settings(
        {
            "ECOM_HOME": str(settings.home),
            "ECOM_LAND__GRAIN": "weekly",
            "ECOM_LAND__WEEK_START": week_start,
            "ECOM_FORECAST__GRAIN": "weekly",
        }
    )


def _weekly_sales(frames: dict[str, pl.DataFrame], first: dt.date) -> pl.DataFrame:
    # The tiny sales' two days become two weeks starting on ``first``.
    return frames["daily_sales"].with_columns(
        pl.when(pl.col("date") == dt.date(2024, 1, 1))
        .then(first)
        .otherwise(first + dt.timedelta(7))
        .alias("date")
    )


def test_weekly_rows_dated_by_their_week_start_land(settings, write_batch, frames):
    weekly = _weekly(settings)
    batch = write_batch(products="csv", daily_sales=(_weekly_sales(frames, THURSDAY), "csv"))
    # The batch of any day of the last week holds that week's row.
    result = land_batch(str(batch), weekly, THURSDAY + dt.timedelta(days=9))
    assert result.tables["daily_sales"] == 5


def test_a_weekly_row_on_another_weekday_names_the_rule_and_the_fix(settings, write_batch, frames):
    weekly = _weekly(settings)
    batch = write_batch(
        products="csv", daily_sales=(_weekly_sales(frames, THURSDAY - dt.timedelta(3)), "csv")
    )
    with pytest.raises(LandingError) as caught:
        land_batch(str(batch), weekly, THURSDAY)
    [problem] = caught.value.problems
    assert (problem.table, problem.column, problem.rule, problem.row) == (
        "daily_sales",
        "date",
        "week_start",
        1,
    )
    assert str(problem) == (
        "daily_sales.csv: column 'date': rule week_start: land.grain is weekly with week_start thursday: "
        "dates must be Thursdays (a weekly row is dated by its week's first day); 5 row(s) are not, first "
        "at row 1 (line 2): 2024-01-01 (a Monday). Date each row by its week's first day, or set "
        "land.week_start to the weekday your weeks start on (land.grain: daily if the rows are days)"
    )
    assert not (weekly.raw_dir / f"dt={THURSDAY}").exists()


def test_a_weekly_batch_must_hold_the_week_of_its_date(settings, write_batch, frames):
    weekly = _weekly(settings)
    batch = write_batch(products="csv", daily_sales=(_weekly_sales(frames, THURSDAY), "csv"))
    with pytest.raises(LandingError) as caught:
        land_batch(str(batch), weekly, dt.date(2024, 1, 25))
    assert caught.value.message.endswith(
        "its daily_sales or order_lines rows end on 2024-01-11. A batch must hold that day's daily_sales or "
        "order_lines rows (land.grain is weekly: daily_sales rows of the week holding 2024-01-25, dated by "
        "its first day, a Thursday): is it another date's batch, or a replay past the end of the data?"
    )
