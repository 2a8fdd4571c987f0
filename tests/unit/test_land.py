"""Landing: good batches publish atomically and idempotently; every bad input is caught and quarantined."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.config import Settings
from pipelines.data.contract import CONTRACT_VERSION, TABLES
from pipelines.data.land import (
    LandingError,
    batch_available,
    land_batch,
    last_sales_date,
    list_partitions,
    read_manifest,
)

DAY = dt.date(2024, 1, 2)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def _assert_nothing_landed(settings: Settings) -> None:
    raw = settings.raw_dir
    assert list_partitions(settings) == []
    assert not list(raw.glob("dt=*"))
    assert not list(raw.glob(".trash-*"))
    assert not (raw / ".staging").exists() or not any((raw / ".staging").iterdir())


def _reject(
    settings: Settings, batch: Path, bad_file: str, rule: str, column: str | None, *snippets: str
) -> LandingError:
    """Land a batch that must fail on ``bad_file``; check the error, the quarantine and the raw folder."""
    with pytest.raises(LandingError) as info:
        land_batch(str(batch), settings, DAY)
    err = info.value
    mine = [p for p in err.problems if p.file == bad_file and p.rule == rule]
    assert mine, f"no {rule} problem for {bad_file} in:\n{err}"
    assert any(p.column == column for p in mine)
    text = str(err)
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{bad_file}: ") and f"rule {rule}" in ln)
    if column is not None:
        assert f"column '{column}'" in line
    for snippet in snippets:
        assert snippet in line, f"{snippet!r} not in {line!r}"

    qdir = settings.quarantine_dir / f"{DAY.isoformat()}_{_batch_id_of(batch)}"
    assert err.quarantine == qdir
    assert (qdir / bad_file).read_bytes() == (batch / bad_file).read_bytes()
    reason = json.loads((qdir / f"{bad_file}.reason.json").read_text())
    assert reason["file"] == bad_file
    assert reason["batch_date"] == DAY.isoformat()
    assert reason["source"] == str(batch / bad_file)
    assert reason["quarantined_at"]
    assert {p["rule"] for p in reason["problems"]} >= {rule}
    assert all({"file", "table", "rule", "column", "row", "message"} <= set(p) for p in reason["problems"])
    # Good files of a rejected batch stay out of both quarantine and raw.
    bad_files = {p.file for p in err.problems}
    for good in (p.name for p in batch.iterdir() if p.name not in bad_files):
        assert not (qdir / good).exists()
    _assert_nothing_landed(settings)
    return err


def _batch_id_of(batch: Path) -> str:
    pairs = sorted((p.name, _sha256(p)) for p in batch.iterdir() if not p.name.startswith((".", "_")))
    return hashlib.sha256("".join(f"{n}\t{s}\n" for n, s in pairs).encode()).hexdigest()[:16]


# --- good batches -----------------------------------------------------------------------------


def test_good_batch_lands_with_contract_schema_and_manifest(settings, write_batch, frames):
    batch = write_batch()
    (batch / ".DS_Store").write_text("ignored")
    (batch / "_SUCCESS").write_text("")
    messages: list[str] = []

    result = land_batch(str(batch), settings, DAY, progress=messages.append)

    partition = settings.raw_dir / "dt=2024-01-02"
    assert result.partition == partition
    assert not result.already_landed
    assert result.tables == {"products": 3, "daily_sales": 5, "warehouses": 2}
    assert sorted(p.name for p in partition.iterdir()) == [
        "_manifest.json",
        "daily_sales.parquet",
        "products.parquet",
        "warehouses.parquet",
    ]
    for name, df in frames.items():
        landed = pl.read_parquet(partition / f"{name}.parquet")
        assert landed.schema == pl.Schema(TABLES[name].schema)
        assert landed.equals(df)

    manifest = read_manifest(partition)
    assert manifest["batch_id"] == result.batch_id == _batch_id_of(batch)
    assert manifest["batch_date"] == "2024-01-02"
    assert manifest["source"] == str(batch)
    assert manifest["contract_version"] == CONTRACT_VERSION
    assert dt.datetime.fromisoformat(manifest["landed_at"]).utcoffset() == dt.timedelta(0)
    files = {f["file"]: f for f in manifest["files"]}
    assert set(files) == {"products.csv", "daily_sales.parquet", "warehouses.csv"}
    for name, entry in files.items():
        assert entry["sha256"] == _sha256(batch / name)
        assert entry["rows"] == frames[entry["table"]].height
        assert entry["format"] == name.rsplit(".", 1)[1]

    assert list_partitions(settings) == [partition]
    assert not (settings.raw_dir / ".staging").exists()
    assert "checking daily_sales.parquet (5 rows)" in messages
    assert messages[-1] == "published data/raw/dt=2024-01-02"


def test_parquet_types_that_cast_cleanly_are_accepted(settings, write_batch, frames):
    narrow = frames["daily_sales"].with_columns(
        pl.col("sku_id").cast(pl.Int32), pl.col("units").cast(pl.Int64)
    )
    batch = write_batch(daily_sales=(narrow, "parquet"))

    land_batch(str(batch), settings, DAY)

    landed = pl.read_parquet(settings.raw_dir / "dt=2024-01-02" / "daily_sales.parquet")
    assert landed.schema == pl.Schema(TABLES["daily_sales"].schema)
    assert landed.equals(frames["daily_sales"])


def test_parquet_already_in_the_contract_is_landed_as_it_is(settings, write_batch, frames):
    batch = write_batch(daily_sales=(frames["daily_sales"], "parquet"))

    land_batch(str(batch), settings, DAY)

    landed = settings.raw_dir / "dt=2024-01-02" / "daily_sales.parquet"
    assert landed.read_bytes() == (batch / "daily_sales.parquet").read_bytes()


def test_csv_booleans_accept_words_and_digits(settings, write_batch, frames):
    batch = write_batch(daily_sales="csv")
    text = (batch / "daily_sales.csv").read_text().splitlines()
    # The five stockout values become TRUE, 0, 1, False, <empty>.
    values = ["TRUE", "0", "1", "False", ""]
    rows = [line.rsplit(",", 1)[0] + "," + v for line, v in zip(text[1:], values, strict=True)]
    (batch / "daily_sales.csv").write_text("\n".join([text[0], *rows]) + "\n")

    land_batch(str(batch), settings, DAY)

    landed = pl.read_parquet(settings.raw_dir / "dt=2024-01-02" / "daily_sales.parquet")
    assert landed["stockout"].to_list() == [True, False, True, False, None]


def test_relative_source_is_under_ecom_home(settings, frames):
    batch = settings.home / "incoming" / "day1"
    batch.mkdir(parents=True)
    frames["warehouses"].write_csv(batch / "warehouses.csv")
    frames["daily_sales"].write_csv(batch / "daily_sales.csv")

    result = land_batch("incoming/day1", settings, DAY)

    assert result.tables == {"warehouses": 2, "daily_sales": 5}


def test_landing_the_same_batch_twice_changes_nothing(settings, write_batch):
    batch = write_batch()
    first = land_batch(str(batch), settings, DAY)
    before = _snapshot(first.partition)
    messages: list[str] = []

    # The same bytes from another folder are the same batch.
    copy = shutil.copytree(batch, batch.parent / "copy")
    again = land_batch(str(copy), settings, DAY, progress=messages.append)

    assert again.already_landed
    assert again.partition == first.partition
    assert again.batch_id == first.batch_id
    assert again.tables == first.tables
    assert _snapshot(first.partition) == before
    assert list_partitions(settings) == [first.partition]
    assert any("already landed" in m for m in messages)


def test_relanding_a_date_with_another_batch_replaces_it(settings, write_batch, frames):
    first = land_batch(str(write_batch("one")), settings, DAY)
    changed = frames["daily_sales"].with_columns(pl.col("units") + 1).tail(3)
    second = land_batch(str(write_batch("two", daily_sales=(changed, "csv"))), settings, DAY)

    assert not second.already_landed
    assert second.batch_id != first.batch_id
    assert second.partition == first.partition
    assert sorted(p.name for p in second.partition.iterdir()) == ["_manifest.json", "daily_sales.parquet"]
    landed = pl.read_parquet(second.partition / "daily_sales.parquet")
    assert landed.equals(changed)
    assert read_manifest(second.partition)["batch_id"] == second.batch_id
    assert list_partitions(settings) == [second.partition]
    assert not list(settings.raw_dir.glob(".trash-*"))


def test_other_dates_are_separate_partitions(settings, write_batch, frames):
    land_batch(str(write_batch("one")), settings, DAY)
    next_day = frames["daily_sales"].with_columns(pl.col("date") + dt.timedelta(days=1))
    land_batch(str(write_batch("two", daily_sales=(next_day, "csv"))), settings, DAY + dt.timedelta(days=1))

    assert [p.name for p in list_partitions(settings)] == ["dt=2024-01-02", "dt=2024-01-03"]


def test_crash_between_publish_renames_is_recovered(settings, write_batch):
    batch = write_batch()
    first = land_batch(str(batch), settings, DAY)
    # What a crash after "old partition aside" and before "new partition in place" leaves behind.
    trash = settings.raw_dir / ".trash-dt=2024-01-02-0123456789abcdef"
    os.rename(first.partition, trash)
    leftover = settings.raw_dir / ".staging" / "deadbeef"
    leftover.mkdir(parents=True)
    messages: list[str] = []

    again = land_batch(str(batch), settings, DAY, progress=messages.append)

    assert again.already_landed
    assert again.partition.is_dir()
    assert not trash.exists()
    assert not (settings.raw_dir / ".staging").exists()
    assert any("restored data/raw/dt=2024-01-02" in m for m in messages)


# --- one batch, one date ----------------------------------------------------------------------


def test_a_batch_landed_for_one_date_is_refused_for_another(settings, write_batch):
    batch = write_batch()
    first = land_batch(str(batch), settings, DAY)
    before = _snapshot(first.partition)
    other = DAY + dt.timedelta(days=1)

    with pytest.raises(LandingError) as info:
        land_batch(str(batch), settings, other)

    message = str(info.value)
    assert f"batch {first.batch_id} from {batch} is already landed for 2024-01-02" in message
    assert "data/raw/dt=2024-01-02" in message
    assert "so it is not the batch for 2024-01-03" in message
    assert "--date 2024-01-02" in message
    # Nothing is handed back or written for the other date; the first partition is untouched.
    assert list_partitions(settings) == [first.partition]
    assert _snapshot(first.partition) == before
    # The same batch for its own date is still a no-op.
    assert land_batch(str(batch), settings, DAY).already_landed


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_batch_whose_facts_end_before_its_date_is_refused(settings, write_batch, fmt):
    batch = write_batch(products="csv", daily_sales=fmt)
    late = dt.date(2024, 1, 5)

    with pytest.raises(LandingError) as info:
        land_batch(str(batch), settings, late)

    assert str(info.value).startswith(
        "no facts for 2024-01-05 in batch "
        f"{_batch_id_of(batch)} from {batch}: its daily_sales or order_lines rows end on 2024-01-02."
    )
    assert info.value.problems == []
    _assert_nothing_landed(settings)


def test_a_batch_with_facts_on_other_days_only_is_refused(settings, write_batch, frames):
    later = frames["daily_sales"].with_columns(pl.col("date") + dt.timedelta(days=7))
    batch = write_batch(daily_sales=(later, "parquet"))

    with pytest.raises(LandingError, match=r"no facts for 2024-01-02 in batch .*: none of its daily_sales"):
        land_batch(str(batch), settings, DAY)
    _assert_nothing_landed(settings)


def test_a_batch_without_facts_is_refused_unless_facts_are_not_required(settings, write_batch):
    # What `ecom replay` past the end of the world used to write: master data only.
    batch = write_batch(products="parquet", warehouses="csv")

    with pytest.raises(LandingError) as info:
        land_batch(str(batch), settings, DAY)

    assert "no facts for 2024-01-02 in batch" in str(info.value)
    assert "it has no daily_sales or order_lines file" in str(info.value)
    _assert_nothing_landed(settings)
    result = land_batch(str(batch), settings, DAY, require_facts=False)
    assert result.tables == {"products": 3, "warehouses": 2}


# --- has the batch arrived? -------------------------------------------------------------------


def test_a_batch_is_available_once_its_dated_folder_holds_a_file(settings):
    source = "incoming/{date}"
    folder = settings.home / "incoming" / "2024-01-02"
    assert not batch_available(settings, source, DAY)  # no folder
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    (folder / ".partial").write_text("")
    assert not batch_available(settings, source, DAY)  # only names landing skips
    (folder / "daily_sales.csv").write_text("date\n")
    assert batch_available(settings, source, DAY)
    assert not batch_available(settings, source, DAY + dt.timedelta(days=1))
    # An absolute folder without {date} is the same folder whatever the date.
    assert batch_available(settings, str(folder), DAY + dt.timedelta(days=1))


# --- batch-level errors -----------------------------------------------------------------------


def test_empty_folder_is_an_error(settings, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x")

    with pytest.raises(LandingError, match="no files to land"):
        land_batch(str(tmp_path / "empty"), settings, DAY)
    _assert_nothing_landed(settings)


def test_missing_folder_is_an_error(settings, tmp_path):
    with pytest.raises(LandingError, match="does not exist"):
        land_batch(str(tmp_path / "nope"), settings, DAY)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_last_sales_date_of_a_batch_is_its_last_day_with_sales(write_batch, fmt):
    assert last_sales_date(write_batch(daily_sales=fmt, products="csv")) == dt.date(2024, 1, 2)


def test_last_sales_date_needs_daily_sales(write_batch):
    with pytest.raises(LandingError, match=r"no daily_sales file in .*cannot tell the batch's last"):
        last_sales_date(write_batch(products="csv"))


# --- one test per bad-input rule --------------------------------------------------------------


def test_missing_column(settings, write_batch, frames):
    batch = write_batch(products="parquet", daily_sales=(frames["daily_sales"].drop("stockout"), "csv"))

    _reject(settings, batch, "daily_sales.csv", "missing_column", "stockout", "missing column", "Boolean")


def test_extra_column(settings, write_batch, frames):
    wider = frames["products"].with_columns(colour=pl.lit("red"))
    batch = write_batch(products=(wider, "parquet"), warehouses="csv")

    _reject(settings, batch, "products.parquet", "extra_column", "colour", "not in the contract", "products")


def test_wrong_type_names_row_line_and_value(settings, write_batch):
    batch = write_batch(daily_sales="csv", warehouses="parquet")
    lines = (batch / "daily_sales.csv").read_text().splitlines()
    header = lines[0].split(",")
    units = header.index("units")

    def set_units(line: str, value: str) -> str:
        cells = line.split(",")
        cells[units] = value
        return ",".join(cells)

    lines[3] = set_units(lines[3], "abc")  # data row 3, file line 4
    lines[5] = set_units(lines[5], "2.5")
    (batch / "daily_sales.csv").write_text("\n".join(lines) + "\n")

    err = _reject(
        settings,
        batch,
        "daily_sales.csv",
        "type",
        "units",
        "daily_sales.csv: column 'units': rule type: "
        "expected Int32, 2 bad value(s); first at row 3 (line 4): 'abc'",
    )
    (problem,) = err.problems
    assert problem.row == 3


def test_wrong_type_in_dates_and_parquet(settings, write_batch, frames):
    products = frames["products"].with_columns(pl.col("launch_date").cast(pl.String))
    products = products.with_columns(
        pl.when(pl.col("sku_id") == 2)
        .then(pl.lit("2024-13-01"))
        .otherwise("launch_date")
        .alias("launch_date")
    )
    sales = frames["daily_sales"].with_columns(pl.col("units").cast(pl.Float64))
    sales = sales.with_columns(pl.when(pl.col("units") == 5).then(5.5).otherwise("units").alias("units"))
    batch = write_batch(products=(products, "csv"), daily_sales=(sales, "parquet"))

    err = _reject(
        settings,
        batch,
        "products.csv",
        "type",
        "launch_date",
        "expected Date",
        "row 2 (line 3): '2024-13-01'",
    )
    _reject(
        settings,
        batch,
        "daily_sales.parquet",
        "type",
        "units",
        "expected Int32 (file has Float64)",
        "row 4: 5.5",
    )
    assert len(err.problems) == 2


def test_unparseable(settings, write_batch):
    batch = write_batch(products="csv", warehouses="parquet")
    (batch / "warehouses.parquet").write_bytes(b"PAR1 this is not really parquet PAR1")
    (batch / "daily_sales.csv").write_text("date,sku_id,channel\n2024-01-01,1,app,surplus,fields\n")

    err = _reject(settings, batch, "warehouses.parquet", "unparseable", None, "cannot be read as PARQUET")
    _reject(settings, batch, "daily_sales.csv", "unparseable", None, "cannot be read as CSV", "more fields")
    assert {p.rule for p in err.problems} == {"unparseable"}


def test_empty(settings, write_batch, frames):
    batch = write_batch(products="csv", warehouses=(frames["warehouses"].clear(), "csv"))
    (batch / "daily_sales.csv").write_bytes(b"")

    _reject(settings, batch, "warehouses.csv", "empty", None, "no data rows")
    _reject(settings, batch, "daily_sales.csv", "empty", None, "0 bytes")


def test_duplicate_keys(settings, write_batch, frames):
    sales = pl.concat([frames["daily_sales"], frames["daily_sales"].slice(1, 1)])
    batch = write_batch(products="csv", daily_sales=(sales, "parquet"))

    _reject(
        settings,
        batch,
        "daily_sales.parquet",
        "duplicate_key",
        "date, sku_id, channel",
        "1 duplicated key(s)",
        "date=2024-01-01, sku_id=1, channel='web' occurs 2 times",
    )


def test_unknown_table(settings, write_batch, frames):
    batch = write_batch(products="csv")
    frames["warehouses"].write_csv(batch / "sales_2024.csv")

    _reject(settings, batch, "sales_2024.csv", "unknown_table", None, "unknown table", "daily_sales")


def test_two_files_for_one_table(settings, write_batch):
    batch = write_batch(products="csv", warehouses="csv")
    write_batch(products="parquet")  # same folder: products.csv and products.parquet

    _reject(settings, batch, "products.csv", "duplicate_table", None, "more than one file")


def test_problems_are_collected_across_files(settings, write_batch, frames):
    batch = write_batch(
        products=(frames["products"].drop("brand"), "csv"),
        daily_sales="parquet",
        warehouses=(frames["warehouses"].with_columns(extra=pl.lit(1)), "parquet"),
    )

    err = _reject(settings, batch, "products.csv", "missing_column", "brand")
    assert {(p.file, p.rule) for p in err.problems} == {
        ("products.csv", "missing_column"),
        ("warehouses.parquet", "extra_column"),
    }
    assert len(str(err).splitlines()) == 3
    assert (err.quarantine / "warehouses.parquet.reason.json").is_file()
    assert not (err.quarantine / "daily_sales.parquet").exists()
