"""Landing from S3 (a moto server): the same checks and outcomes as for a local folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import polars as pl
import pytest

from pipelines.config import load_settings
from pipelines.data.contract import TABLES
from pipelines.data.land import LandingError, batch_available, land_batch, list_partitions, read_manifest

pytestmark = pytest.mark.integration

DAY = dt.date(2024, 1, 2)
PREFIX = "batches/2024-01-02/"


def _frames() -> dict[str, pl.DataFrame]:
    frames = {
        "products": pl.DataFrame(
            {
                "sku_id": [1, 2],
                "sku_name": ["Kettle", "Toaster"],
                "category_l1": ["Home", "Home"],
                "category_l2": ["kettles", "toasters"],
                "brand": ["Acme", "Bolt"],
                "unit_cost": [50.0, 80.5],
                "list_price": [99.0, 149.0],
                "launch_date": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
                "warehouse_id": [1, 2],
            }
        ),
        "daily_sales": pl.DataFrame(
            {
                "date": [DAY] * 3,
                "sku_id": [1, 1, 2],
                "channel": ["app", "web", "app"],
                "units": [3, 1, 0],
                "revenue": [297.0, 99.0, 0.0],
                "price_paid": [99.0, 99.0, 149.0],
                "stockout": [False, False, True],
            }
        ),
    }
    return {name: df.cast(TABLES[name].schema) for name, df in frames.items()}  # type: ignore[arg-type]


def _csv(df: pl.DataFrame) -> bytes:
    return df.write_csv().encode()


def _parquet(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_parquet(buf)
    return buf.getvalue()


@pytest.fixture
def settings(tmp_path, s3_endpoint):
    return load_settings({"ECOM_HOME": str(tmp_path), "ECOM_STORAGE__S3_ENDPOINT_URL": s3_endpoint})


def test_good_batch_from_s3_lands_once(settings, s3_bucket, s3_upload):
    frames = _frames()
    bodies = {
        "products.csv": _csv(frames["products"]),
        "daily_sales.parquet": _parquet(frames["daily_sales"]),
    }
    for name, body in bodies.items():
        s3_upload(s3_bucket, PREFIX + name, body)
    # Not part of the batch: markers, nested "folders" and a sibling prefix sharing the name's start.
    s3_upload(s3_bucket, PREFIX + "_SUCCESS", b"")
    s3_upload(s3_bucket, PREFIX + "older/products.csv", b"not, a, batch file")
    s3_upload(s3_bucket, "batches/2024-01-02-retry/notes.txt", b"elsewhere")
    messages: list[str] = []

    result = land_batch(f"s3://{s3_bucket}/batches/2024-01-02", settings, DAY, progress=messages.append)

    assert not result.already_landed
    assert result.partition == settings.raw_dir / "dt=2024-01-02"
    assert result.tables == {"products": 2, "daily_sales": 3}
    for name, df in frames.items():
        assert pl.read_parquet(result.partition / f"{name}.parquet").equals(df)
    manifest = read_manifest(result.partition)
    assert {f["file"]: f["sha256"] for f in manifest["files"]} == {
        name: hashlib.sha256(body).hexdigest() for name, body in bodies.items()
    }
    assert f"downloading s3://{s3_bucket}/{PREFIX}products.csv" in messages
    assert not (settings.raw_dir / ".staging").exists()

    before = (result.partition / "_manifest.json").read_bytes()
    again = land_batch(f"s3://{s3_bucket}/{PREFIX}", settings, DAY)
    assert again.already_landed
    assert again.batch_id == result.batch_id
    assert (result.partition / "_manifest.json").read_bytes() == before


def test_bad_batch_from_s3_is_rejected_and_quarantined(settings, s3_bucket, s3_upload):
    frames = _frames()
    s3_upload(s3_bucket, PREFIX + "products.parquet", _parquet(frames["products"]))
    bad = _csv(frames["daily_sales"]).replace(b",3,", b",three,")
    s3_upload(s3_bucket, PREFIX + "daily_sales.csv", bad)

    with pytest.raises(LandingError) as info:
        land_batch(f"s3://{s3_bucket}/{PREFIX}", settings, DAY)

    err = info.value
    assert [(p.file, p.rule, p.column, p.row) for p in err.problems] == [
        ("daily_sales.csv", "type", "units", 1)
    ]
    assert "daily_sales.csv: column 'units': rule type: expected Int32" in str(err)
    assert "first at row 1 (line 2): 'three'" in str(err)
    assert (err.quarantine / "daily_sales.csv").read_bytes() == bad
    reason = json.loads((err.quarantine / "daily_sales.csv.reason.json").read_text())
    assert reason["source"] == f"s3://{s3_bucket}/{PREFIX}daily_sales.csv"
    assert reason["problems"][0]["rule"] == "type"
    assert not (err.quarantine / "products.parquet").exists()
    assert list_partitions(settings) == []
    assert not (settings.raw_dir / ".staging").exists()


def test_missing_bucket_is_a_clear_error(settings):
    with pytest.raises(LandingError, match=r"S3 bucket 'no-such-bucket-here' does not exist") as info:
        land_batch(f"s3://no-such-bucket-here/{PREFIX}", settings, DAY)
    assert info.value.problems == []
    assert list_partitions(settings) == []


def test_empty_prefix_is_a_clear_error(settings, s3_bucket, s3_upload):
    s3_upload(s3_bucket, "elsewhere/products.csv", b"sku_id\n1\n")

    with pytest.raises(LandingError, match=rf"no files to land under s3://{s3_bucket}/{PREFIX}"):
        land_batch(f"s3://{s3_bucket}/{PREFIX}", settings, DAY)


def test_a_batch_is_available_once_a_file_is_directly_under_its_dated_prefix(settings, s3_bucket, s3_upload):
    source = f"s3://{s3_bucket}/batches/{{date}}"
    assert not batch_available(settings, source, DAY)  # nothing there
    s3_upload(s3_bucket, PREFIX + "_SUCCESS", b"")
    s3_upload(s3_bucket, PREFIX + "older/products.csv", b"x")
    s3_upload(s3_bucket, "batches/2024-01-02-retry/products.csv", b"x")
    assert not batch_available(settings, source, DAY)  # a marker, a nested key, a sibling prefix
    s3_upload(s3_bucket, PREFIX + "products.csv", _csv(_frames()["products"]))
    assert batch_available(settings, source, DAY)
    assert not batch_available(settings, source, DAY + dt.timedelta(days=1))


def test_waiting_on_a_missing_bucket_is_an_error_not_a_wait(settings):
    with pytest.raises(LandingError, match=r"S3 bucket 'no-such-bucket-here' does not exist"):
        batch_available(settings, "s3://no-such-bucket-here/batches/{date}", DAY)
