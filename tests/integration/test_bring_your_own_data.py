"""A retailer's own export, end to end through the README's commands: weekly rows on Thursdays, one
channel, string SKU codes, gaps, late and discontinued SKUs, only products, sales, prices and
promotions (with plans). Land, gates, dbt, audit, publish, report, capabilities, forecast training
and scoring at weekly grain; the forecaster must beat seasonal naive on it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.config import REPO_ROOT, TELEMETRY_OFF
from pipelines.data.retailer import TINY_OVERRIDES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ECOM = Path(sys.executable).parent / "ecom"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("retailer")


def ecom(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **TELEMETRY_OFF,
        **TINY_OVERRIDES,  # the example params fitted to the tiny export
        "ECOM_HOME": str(home),
        "ECOM_PARAMS": str(REPO_ROOT / "examples" / "retailer" / "params.yaml"),
        "ECOM_AIRFLOW__TASK_RETRIES": "0",
    }
    proc = subprocess.run([str(ECOM), *args], env=env, capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, f"ecom {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def query(home: Path, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(home / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).pl()


@pytest.fixture(scope="module")
def batch(home: Path) -> dt.date:
    """The export generated, landed, gated, built, audited, published and reported."""
    ecom(home, "generate", "--profile", "retailer", "--scale", "tiny")
    landed = ecom(home, "land", "--date-from-data")
    day = dt.date.fromisoformat(landed.stdout.split("dt=")[1][:10])
    ecom(home, "foundation", "--no-land", "--date", day.isoformat())
    return day


def test_the_foundation_runs_on_weekly_coded_data_without_padding_or_zeros(
    home: Path, batch: dt.date
) -> None:
    sales = query(home, "select * from marts.fct_sales_daily")
    assert sales["date"].dt.weekday().unique().to_list() == [4], "weekly rows stay on Thursdays"
    assert sales["channel"].unique().to_list() == ["store"]
    products = query(home, "select sku_id, sku_code from marts.dim_products")
    assert products["sku_code"].str.contains(r"^[A-Z]+-").all(), "marts show the retailer's codes"
    truth = pl.read_parquet(home / "data" / "retailer" / "truth" / "demand.parquet")
    assert not (home / "data" / "retailer" / "export" / "demand.parquet").exists()
    # A week a series missed is unknown in the features, never a zero.
    features = query(home, "select sku_id, date, units from marts.mart_demand_features")
    assert features["date"].dt.weekday().unique().to_list() == [4]
    assert features["units"].null_count() > 0
    exported = truth.filter(pl.col("exported")).height
    assert features["units"].drop_nulls().len() == exported
    report = (home / "reports" / f"kpi_report_{batch.isoformat()}.html").read_text()
    assert "$" in report and "Money in USD" in report
    assert "land order_lines to switch it on" in report, "orders tiles say which table would fill them"


def test_the_capability_report_matches_the_tables_landed(home: Path, batch: dt.date) -> None:
    out = ecom(home, "doctor").stdout
    for on in ("Products and sales", "Shelf prices", "Promotions"):
        assert f"[on ] {on}" in out
    for off in ("Weather", "Inventory snapshots", "Order lines", "Customers", "Competitor prices"):
        assert f"[off] {off}" in out
    assert "weekly sales, weeks start on thursday, channels from the data, money in USD" in out


def test_rerunning_the_gates_for_the_batch_gives_the_same_rows(home: Path, batch: dt.date) -> None:
    before = query(home, "select count(*) as n, sum(units) as u from raw.daily_sales").row(0)
    ecom(home, "validate", "raw", "--date", batch.isoformat())
    assert query(home, "select count(*) as n, sum(units) as u from raw.daily_sales").row(0) == before


def test_the_weekly_forecaster_beats_seasonal_naive_and_scores_with_the_plans(
    home: Path, batch: dt.date
) -> None:
    ecom(home, "train", "forecast", "--date", batch.isoformat(), "--metrics-out", "train.json")
    summary = json.loads((home / "train.json").read_text())
    evaluation = summary["evaluation"]
    best = min(evaluation[k]["wape"] for k in ("lstm", "xgboost") if k in evaluation)
    assert best < evaluation["seasonal_naive"]["wape"], evaluation
    scored = ecom(home, "score", "forecast", "--date", batch.isoformat())
    assert "plan" in (scored.stdout + scored.stderr).lower()
    forecasts = query(home, "select * from forecasts.demand_forecast")
    assert forecasts["target_date"].dt.weekday().unique().to_list() == [4]
    assert forecasts["target_date"].min() == batch + dt.timedelta(weeks=1)
    plan = ecom(home, "plan", "replenishment", "--date", batch.isoformat())
    assert "land inventory_snapshots" in plan.stdout
    ecom(home, "publish", "--model-outputs", "--date", batch.isoformat())
    codes = query(home, "select distinct sku_code from marts.fct_demand_forecasts")
    assert codes["sku_code"].str.contains(r"^[A-Z]+-").all()
    ecom(home, "report", "--date", batch.isoformat())


def test_both_dags_rerun_the_day_under_airflow_with_the_same_rows(home: Path, batch: dt.date) -> None:
    """What a data engineer schedules: the foundation and core DAGs for the export's date (dag.test),
    over the warehouse the commands built: the same facts, a new forecast for the same date."""
    facts = "select count(*), sum(units), min(date), max(date) from marts.fct_sales_daily"
    before = query(home, facts).row(0)
    ecom(home, "dag", "foundation", "--date", batch.isoformat())
    assert query(home, facts).row(0) == before
    ecom(home, "dag", "core_supply_chain", "--date", batch.isoformat())
    forecasts = query(home, "select distinct run_date, target_date from forecasts.demand_forecast")
    assert forecasts["run_date"].unique().to_list() == [batch]
    assert forecasts.height == 8 and (forecasts["target_date"].dt.weekday() == 4).all()
