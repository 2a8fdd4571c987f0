"""DAG integrity (every file imports, is tagged, retries) and real runs of the foundation and core DAGs."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.config import load_settings
from pipelines.orchestration import DAGS_DIR, airflow_env, migrate, run_dag
from pipelines.stages.common import PUBLISHED_MARTS

pytestmark = pytest.mark.integration

DAG_FILES = sorted(p.name for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))

CHECK_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {k: str(v)[:2000] for k, v in bag.import_errors.items()},
    "dags": {d.dag_id: {"file": d.fileloc, "tags": sorted(d.tags), "doc": bool(d.doc_md),
                         "retries": [t.retries for t in d.tasks], "catchup": d.catchup,
                         "timetable": type(d.timetable).__name__,
                         "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids),
                                               "trigger_rule": str(getattr(t.trigger_rule, "value", "")),
                                               "mode": getattr(t, "mode", None),
                                               "poke_interval": getattr(t, "poke_interval", None),
                                               "timeout": getattr(t, "timeout", None)}
                                   for t in d.tasks}}
             for d in bag.dags.values()},
}))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> dict:
    settings = load_settings({"ECOM_HOME": str(tmp_path_factory.mktemp("dagbag"))})
    migrate(settings)
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_DAGS, str(DAGS_DIR)],
        env=airflow_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_import_errors(dagbag: dict) -> None:
    assert dagbag["errors"] == {}


@pytest.mark.parametrize("filename", DAG_FILES)
def test_each_dag_file_defines_a_tagged_documented_dag_with_retries(dagbag: dict, filename: str) -> None:
    dags = [d for d in dagbag["dags"].values() if Path(d["file"]).name == filename]
    assert dags, f"{filename} defines no DAG"
    for d in dags:
        assert d["tags"] and d["doc"] and not d["catchup"]
        assert min(d["retries"]) >= 1


# The core DAG trains for real; this budget keeps it to seconds on the tiny tier (the default
# budget is what `make run` pays, measured in docs/forecasting.md).
TINY_TRAINING_BUDGET = {
    "ECOM_FORECAST__EPOCHS": "1",
    "ECOM_FORECAST__MAX_TRAIN_WINDOWS": "5000",
    "ECOM_FORECAST__BACKTEST_FOLDS": "1",
    "ECOM_FORECAST__XGBOOST_MAX_ROWS": "5000",
    "ECOM_FORECAST__XGBOOST_ROUNDS": "20",
}
PRICING_MARTS = (
    "fct_price_elasticities",
    "fct_price_decisions",
    "mart_price_position",
    "mart_pricing_replay",
)
# The same for the pricing family's training (the innovation DAG).
TINY_PRICING_BUDGET = {"ECOM_PRICING__XGBOOST_ROUNDS": "30", "ECOM_PRICING__DML_FOLDS": "2"}


@pytest.mark.slow
def test_make_run_runs_foundation_and_core_then_innovation_end_to_end_and_reruns_are_idempotent(
    tmp_path: Path,
) -> None:
    """`ecom run` (what `make run` calls) on the tiny tier: the foundation DAG, then (rollout stage
    core, the default) the core_supply_chain DAG; then the foundation again through `ecom dag`;
    then the innovation_pricing DAG twice, the second run skipping training and scoring."""
    env = {**os.environ, "ECOM_HOME": str(tmp_path), **TINY_TRAINING_BUDGET}
    env.pop("ECOM_ROLLOUT__STAGE", None)  # the default stage is what `make run` gets
    ecom = str(Path(sys.executable).parent / "ecom")
    first = subprocess.run(
        [ecom, "run", "--scale", "tiny"], env=env, capture_output=True, text=True, timeout=900
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "report:" in first.stdout and "warehouse:" in first.stdout
    assert "core_supply_chain" in first.stdout and "forecasts:" in first.stdout
    settings = load_settings({"ECOM_HOME": str(tmp_path)})
    counts = _published_counts(settings.warehouse_path)
    assert set(counts) >= {"fct_sales_daily", "mart_demand_features", "rpt_kpi_daily", "dim_products"}
    assert {"fct_demand_forecasts", "fct_replenishment_plans", "mart_forecast_accuracy"} <= set(counts)
    # Realised accuracy needs actuals after a forecast's run date: none yet after the first day. The
    # simulated shop announces no prices or promotions ahead, so it has no plans. The pricing marts
    # wait for the innovation stage.
    empty = {"mart_forecast_accuracy", "mart_demand_plans", *PRICING_MARTS}
    assert all(n > 0 for t, n in counts.items() if t not in empty), counts
    assert all(counts[t] == 0 for t in PRICING_MARTS), counts
    assert counts["mart_demand_plans"] == 0
    assert (settings.reports_dir / "index.html").is_file()
    assert (settings.reports_dir / "data_docs" / "index.html").is_file()
    # The published-marts event carries the day: an Asset-triggered core run has no other date.
    with sqlite3.connect(settings.home / "airflow" / "airflow.db") as db:
        extras = db.execute(
            "select e.extra from asset_event e join asset a on a.id = e.asset_id where a.name = ?",
            [PUBLISHED_MARTS.name],
        ).fetchall()
    assert [json.loads(extra) for (extra,) in extras] == [{"run_date": "2024-12-31"}]
    # Unit tests are CI's; the DAG's dbt steps (dbt_staging, the Cosmos test task) run data tests.
    [log] = (settings.home / "airflow" / "runs").glob("foundation_*.log")
    finished = [line for line in log.read_text().splitlines() if "Finished running" in line]
    assert any("data tests" in line for line in finished), finished
    assert not any("unit test" in line for line in finished), finished

    last_day = dt.date(2024, 12, 31)  # the tiny world's last day, which `ecom run` processes
    with duckdb.connect(str(settings.warehouse_path)) as con:
        forecasts = con.execute(
            "select count(distinct sku_id), count(*), min(target_date), max(target_date) "
            "from forecasts.demand_forecast where run_date = ?",
            [last_day],
        ).fetchall()[0]
        planned = con.execute(
            "select count(*) from forecasts.replenishment_plan where run_date = ?", [last_day]
        ).fetchall()[0][0]
    skus, rows, first_target, last_target = forecasts
    assert skus > 0 and rows == skus * 28, forecasts
    assert (first_target, last_target) == (last_day + dt.timedelta(days=1), last_day + dt.timedelta(days=28))
    assert planned == skus

    # The rerun is pinned to the foundation: the core DAG's own rerun safety (scores and plans replace
    # the run date's rows) is covered by tests/integration/test_forecast_pipeline.py.
    run_dag(settings, "foundation", last_day, say=lambda _: None)
    assert _published_counts(settings.warehouse_path) == counts

    # The innovation stage on the same world: crawl, train, score, decide, replay, publish, report.
    innovation = {**env, "ECOM_ROLLOUT__STAGE": "innovation", **TINY_PRICING_BUDGET}
    for attempt in ("first", "rerun"):
        done = subprocess.run(
            [ecom, "dag", "innovation_pricing", "--date", last_day.isoformat()],
            env=innovation,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, attempt + done.stdout[-3000:] + done.stderr[-3000:]
        if attempt == "first":
            pricing = _pricing_rows(settings.warehouse_path, last_day)
    again = _pricing_rows(settings.warehouse_path, last_day)
    assert pricing["elasticities"] == again["elasticities"] > 0  # trained and scored once
    assert pricing["decisions"] == again["decisions"] == pricing["elasticities"]  # the step replaced
    assert again["crawls"] == 2 and again["observations"] == 2 * pricing["observations"] > 0
    assert pricing["replay_policies"] == again["replay_policies"] == 5
    published = _published_counts(settings.warehouse_path)
    assert all(
        published[t] > 0 for t in ("fct_price_elasticities", "fct_price_decisions", "mart_pricing_replay")
    )
    assert "Dynamic pricing" in (settings.reports_dir / "index.html").read_text()


def _pricing_rows(path: Path, day: dt.date) -> dict[str, int]:
    with duckdb.connect(str(path)) as con:
        one = lambda sql: con.execute(sql, [day]).fetchall()[0][0]  # noqa: E731
        return {
            "elasticities": one("select count(*) from pricing.price_elasticity where run_date = ?"),
            "decisions": one("select count(*) from pricing.price_decisions where run_date = ?"),
            "crawls": one(
                "select count(distinct crawl_id) from pricing.competitor_observations where run_date = ?"
            ),
            "observations": one("select count(*) from pricing.competitor_observations where run_date = ?"),
            "replay_policies": one(
                "select count(distinct policy) from pricing.replay_kpis where run_date = ?"
            ),
        }


def _published_counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path)) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        return {t: con.execute(f'select count(*) from marts."{t}"').fetchone()[0] for t in tables}


def test_airflow_components_find_the_venv_airflow_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `airflow standalone` spawns `airflow scheduler` etc. from PATH; ecom is often run as
    # .venv/bin/ecom with a PATH that does not hold the venv.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = airflow_env(load_settings({"ECOM_HOME": str(tmp_path)}))
    found = shutil.which("airflow", path=env["PATH"])
    assert found is not None and Path(found).parent == Path(sys.executable).parent


def test_the_foundation_waits_for_its_days_batch_without_holding_a_worker_slot(dagbag: dict) -> None:
    """Each day's run starts once the day is over (a data-interval timetable, so its ds is the day)
    and first waits for the batch, rescheduling itself between looks as land.* says."""
    foundation = dagbag["dags"]["foundation"]
    assert foundation["timetable"] == "CronDataIntervalTimetable"
    tasks = foundation["tasks"]
    wait = tasks["wait_for_batch"]
    assert wait["upstream"] == [] and tasks["land"]["upstream"] == ["wait_for_batch"]
    assert wait["mode"] == "reschedule"
    land = load_settings().land  # as the DAG file was parsed: params.yaml and the environment
    assert wait["poke_interval"] == land.wait_poke_seconds
    # Airflow's timeout backs up the task's own, which fails naming the date and the source.
    assert wait["timeout"] == land.wait_timeout_minutes * 60 + land.wait_poke_seconds


def test_the_dbt_producer_runs_before_every_model_sensor_which_falls_back_when_it_is_skipped(
    dagbag: dict,
) -> None:
    """Cosmos' watcher mode: one `dbt build` (the producer) and a sensor per model. A sensor that
    started before the producer would wait for ever under `dags test`; one behind a skipped producer
    (Cosmos skips it on a retry or clear) must still run, to build its model itself."""
    tasks = dagbag["dags"]["foundation"]["tasks"]
    producer = "dbt.dbt_producer_watcher"
    assert tasks[producer]["upstream"] == ["dbt_staging"]
    sensors = {
        t: v
        for t, v in tasks.items()
        if t.startswith("dbt.") and t not in (producer, f"{producer}_done", "dbt.dbt_test")
    }
    assert len(sensors) > 10
    first = {
        t for t, v in sensors.items() if [u for u in v["upstream"] if u.startswith("dbt.")] == [producer]
    }
    assert first, "no sensor follows the producer directly"
    for t, v in sensors.items():
        assert any(u.startswith("dbt.") for u in v["upstream"]), f"{t} can start before the producer"
        if t in first:
            assert v["trigger_rule"] == "none_failed" and "dbt_staging" in v["upstream"], (t, v)


def test_the_staging_task_and_the_cosmos_test_task_together_run_every_dbt_test(tmp_path: Path) -> None:
    """The DAG runs staging's own tests in dbt_staging and leaves staging out of the Cosmos group,
    whose test task gets the same exclusion: a test on a staging model that also reads a later model
    would fall between the two."""
    from pipelines.stages.foundation import MODEL_OUTPUTS, STAGING_MODELS, STAGING_SELECTION
    from pipelines.transform import SKIP_UNIT_TESTS, run_dbt

    settings = load_settings({"ECOM_HOME": str(tmp_path)})

    def tests(*selection: str, kinds: tuple[str, ...] = ("test", "unit_test")) -> set[str]:
        ls = ["ls", "--resource-types", *kinds, "--output", "name", "-q", *selection]
        return set(run_dbt(settings, ls, dt.date(2024, 12, 31)).split())

    every = tests(kinds=("test",))
    staging = tests(*STAGING_SELECTION)
    # The Cosmos group skips unit tests through SKIP_UNIT_TESTS_ENV, to the same effect as the flag.
    cosmos = tests("--exclude", STAGING_MODELS, MODEL_OUTPUTS, *SKIP_UNIT_TESTS)
    # The marts over model outputs are built by the core stage after scoring (pipelines.model_marts).
    outputs = tests("--select", MODEL_OUTPUTS, *SKIP_UNIT_TESTS)
    assert staging and cosmos and outputs and staging.isdisjoint(cosmos) and cosmos.isdisjoint(outputs)
    assert every == staging | cosmos | outputs, sorted(every - staging - cosmos - outputs)
    # Unit tests run in CI, not in the DAG.
    units = tests(kinds=("unit_test",))
    assert units and tests() - every == units
