"""The `ecom` console script as a user runs it: the main job, reruns and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
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


def test_a_retailers_export_under_the_simulators_settings_fails_saying_which_settings_to_change(
    tmp_path: Path,
) -> None:
    assert _ecom(tmp_path, "generate", "--profile", "retailer", "--scale", "tiny").returncode == 0
    export = str(tmp_path / "data" / "retailer" / "export")
    weekly = {"ECOM_LAND__GRAIN": "weekly", "ECOM_FORECAST__GRAIN": "weekly"}
    refused = _ecom(tmp_path, "land", "--source", export, "--date-from-data", **weekly)
    assert refused.returncode == 1
    assert "rule week_start" in refused.stderr and "set land.week_start" in refused.stderr
    assert _ecom(tmp_path, "land", "--source", export, "--date-from-data").returncode == 0
    blocked = _ecom(tmp_path, "validate", "raw", "--date", "2024-07-11")
    assert blocked.returncode == 1
    # The channel list is quoted as it is set, not eaten by the terminal's markup.
    assert "quality.channels is [app, web]: set quality.channels to your channels" in blocked.stderr


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


def test_dbt_passes_its_own_options_through_and_takes_date_anywhere(tmp_path: Path) -> None:
    listed = _ecom(
        tmp_path, "dbt", "ls", "--select", "marts", "--resource-type", "model", "--date", "2024-12-31"
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    models = [line for line in listed.stdout.splitlines() if line.startswith("ecom.")]
    assert "ecom.marts.fct_sales_daily" in models
    assert all(m.startswith("ecom.marts.") for m in models)  # --select reached dbt
    # --date is ecom's own option wherever it stands, not dbt's.
    bad = _ecom(tmp_path, "dbt", "--date", "2024-13-01", "ls")
    assert bad.returncode == 2 and "Invalid value for '--date'" in bad.stderr


def _published_marts(home: Path) -> dict[str, tuple[int, int]]:
    """Row count and content hash of every table in schema ``marts`` ({} before the first publish)."""
    con = duckdb.connect(str(home / "data" / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
        ).fetchall()
        return {
            t: con.execute(f'select count(*), bit_xor(hash(m)) from marts."{t}" m').fetchall()[0]
            for (t,) in tables
        }
    finally:
        con.close()


@pytest.mark.slow
def test_publish_refuses_a_build_whose_audit_is_missing_failed_or_older_than_the_build(
    tmp_path: Path,
) -> None:
    day = "2024-12-31"
    assert _ecom(tmp_path, "generate", "--scale", "tiny", "--seed", "5").returncode == 0
    for step in (
        ("land", "--source", "data/generated", "--date", day),
        ("validate", "raw", "--date", day),
        ("dbt", "build", "--date", day),
    ):
        done = _ecom(tmp_path, *step)
        assert done.returncode == 0, f"{step}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    unaudited = _ecom(tmp_path, "publish")
    assert unaudited.returncode == 1
    assert "no marts audit recorded" in unaudited.stderr and "ecom validate marts" in unaudited.stderr
    assert _published_marts(tmp_path) == {}

    assert _ecom(tmp_path, "validate", "marts", "--date", day).returncode == 0
    published = _ecom(tmp_path, "publish")
    assert published.returncode == 0, published.stderr
    assert "publishing the build audited by the latest marts audit marts_20241231_" in published.stderr
    before = _published_marts(tmp_path)
    assert before["fct_sales_daily"][0] > 0

    # Rebuilt after the passed audit: dbt restamps every row of the incremental marts.
    rebuilt = _ecom(tmp_path, "dbt", "build", "--select", "marts", "--full-refresh", "--date", day)
    assert rebuilt.returncode == 0, rebuilt.stdout[-2000:]
    stale = _ecom(tmp_path, "publish")
    assert stale.returncode == 1
    assert "build_marts changed after the latest marts audit" in stale.stderr
    assert "fct_sales_daily" in stale.stderr and f"ecom validate marts --date {day}" in stale.stderr
    assert _published_marts(tmp_path) == before

    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"))
    try:
        con.execute(f"update build_marts.rpt_kpi_daily set stockout_rate = 1.5 where date = date '{day}'")
    finally:
        con.close()
    blocked = _ecom(tmp_path, "validate", "marts", "--date", day)
    assert blocked.returncode == 1 and "nothing was published" in blocked.stderr
    refused = _ecom(tmp_path, "publish")
    assert refused.returncode == 1
    assert (
        "failed 1 blocking expectation(s): rpt_kpi_daily: expect_column_values_to_be_between(stockout_rate)"
        in refused.stderr
    )
    assert _published_marts(tmp_path) == before
