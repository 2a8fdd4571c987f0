"""The `ecom` console script as a user runs it: the main job, reruns and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.integration

ECOM = str(Path(sys.executable).parent / "ecom")


def _ecom(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "ECOM_HOME": str(home), **env}
    return subprocess.run([ECOM, *args], env=environ, capture_output=True, text=True, timeout=300)


def test_generate_then_land_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    assert _ecom(tmp_path, "generate", "--scale", "tiny", "--seed", "5").returncode == 0
    first = _ecom(tmp_path, "land", "--source", "data/generated", "--date", "2024-12-31")
    assert first.returncode == 0, first.stderr
    partition = tmp_path / "data" / "raw" / "dt=2024-12-31"
    assert (partition / "_manifest.json").is_file()
    assert pl.read_parquet(partition / "daily_sales.parquet").height > 0
    before = {p.name: p.stat().st_mtime_ns for p in partition.iterdir()}

    again = _ecom(tmp_path, "land", "--source", "data/generated", "--date", "2024-12-31")
    assert again.returncode == 0, again.stderr
    assert "already landed" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in partition.iterdir()} == before


def test_land_reads_the_batch_dates_folder_where_the_source_says_date(tmp_path: Path) -> None:
    assert _ecom(tmp_path, "generate", "--scale", "tiny", "--seed", "5").returncode == 0
    assert _ecom(tmp_path, "replay", "--date", "2024-12-30", "--since", "2024-12-30").returncode == 0
    source = {"ECOM_LAND__SOURCE": "data/incoming/{date}"}
    result = _ecom(tmp_path, "land", "--date", "2024-12-30", **source)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "raw" / "dt=2024-12-30" / "_manifest.json").is_file()
    refused = _ecom(tmp_path, "land", "--date-from-data", **source)
    assert refused.returncode == 2 and "give --date" in refused.stderr


def test_two_homes_do_not_touch_each_other(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert _ecom(a, "generate", "--scale", "tiny").returncode == 0
    assert not b.exists()
    assert (a / "data" / "generated" / "products.parquet").is_file()


def test_a_bad_batch_exits_non_zero_naming_file_column_and_row(tmp_path: Path) -> None:
    batch = tmp_path / "incoming"
    batch.mkdir()
    (batch / "warehouses.csv").write_text("warehouse_id,name,region,capacity_units\n1,DC-1,east,lots\n")
    result = _ecom(tmp_path, "land", "--source", str(batch), "--date", "2024-01-02")
    assert result.returncode == 1
    assert "warehouses.csv" in result.stderr and "capacity_units" in result.stderr
    assert "row 1" in result.stderr and "'lots'" in result.stderr
    assert not (tmp_path / "data" / "raw" / "dt=2024-01-02").exists()
    assert list((tmp_path / "data" / "quarantine").glob("*/warehouses.csv"))


def test_bad_configuration_exits_2_with_the_reason(tmp_path: Path) -> None:
    result = _ecom(tmp_path, "generate", ECOM_GENERATE__SCALE="enormous")
    assert result.returncode == 2
    assert "scale" in result.stderr


def test_land_date_from_data_takes_the_worlds_last_sales_day(tmp_path: Path) -> None:
    assert _ecom(tmp_path, "generate", "--scale", "tiny", "--seed", "5").returncode == 0
    result = _ecom(tmp_path, "land", "--source", "data/generated", "--date-from-data")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "raw" / "dt=2024-12-31" / "_manifest.json").is_file()

    both = _ecom(tmp_path, "land", "--date", "2024-12-31", "--date-from-data")
    assert both.returncode == 2 and "either --date or --date-from-data" in both.stderr


def test_forecast_commands_without_marts_say_what_to_build_first(tmp_path: Path) -> None:
    for command in (["train", "forecast"], ["score", "forecast"]):
        result = _ecom(tmp_path, *command)
        assert result.returncode == 1, result.stderr
        assert "no warehouse" in result.stderr and "build and publish the marts first" in result.stderr
    nothing = _ecom(tmp_path, "foundation", "--no-land")
    assert nothing.returncode == 1 and "no landed batch" in nothing.stderr
