"""
### Foundation: land -> validate raw -> dbt -> validate marts -> publish -> BI report

One run per day (the data interval). It lands that day's batch from `land.source` (a folder or
`s3://` prefix; `{date}` in it is replaced by the run's date), loads it into the warehouse's `raw`
schema through the Great Expectations gates (failing rows go to `quarantine.rejected_rows`), builds
the dbt project into the `build_*` schemas (the staging views in one dbt invocation, then every
other model as a Cosmos task group: one `dbt build`, and a task per model reporting it), audits the
marts, and only then publishes them to the `marts` schema in one transaction and renders the BI
report. A failed gate stops the run and leaves the published marts exactly as they were.

Every task is idempotent for its date: rerunning a date gives the same rows. Backfill any date
range with `airflow backfill create --dag-id foundation --from-date ... --to-date ...`.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import TriggerRule, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import PRODUCER_WATCHER_TASK_ID, ExecutionMode, InvocationMode, LoadMode, TestBehavior

from pipelines.dag_common import DEFAULT_ARGS, PUBLISHED_MARTS
from pipelines.foundation import STAGING_MODELS
from pipelines.transform import RUN_DATE_ENV, SKIP_UNIT_TESTS_ENV

REPO = Path(__file__).resolve().parents[1]
DBT_DIR = REPO / "dbt"
# dbt is installed beside the interpreter that runs Airflow (the project venv).
DBT_BIN = Path(os.environ.get("ECOM_DBT_EXECUTABLE", Path(sys.executable).parent / "dbt"))
ECOM_HOME = os.environ.get("ECOM_HOME", str(REPO))
MANIFEST = Path(ECOM_HOME) / "dbt" / "target" / "manifest.json"
# --no-write-json: each dbt invocation would rewrite manifest.json and run_results.json into its
# throwaway copy of the project (about 0.3 s; Cosmos reads the dbtRunner result).
DBT_FLAGS = ["--no-write-json"]


@dag(
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    tags=["foundation", "warehouse"],
)
def foundation() -> None:
    @task
    def land(ds: str | None = None) -> str:
        from pipelines.foundation import land_interval

        return land_interval(ds)

    @task
    def validate_raw(ds: str | None = None) -> dict:
        from pipelines.foundation import validate_raw_interval

        return validate_raw_interval(ds)

    @task
    def dbt_staging(ds: str | None = None) -> str:
        from pipelines.foundation import build_staging_interval

        return build_staging_interval(ds)

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            DBT_DIR,
            # Written by `dbt parse` (ecom runs it before each DAG run); without it Cosmos runs `dbt ls`.
            manifest_path=MANIFEST if MANIFEST.is_file() else None,
            # The run date as an environment variable, not a dbt var: a changed var makes every dbt
            # invocation re-parse the whole project (macros/portable.sql, date_var).
            env_vars={"ECOM_HOME": ECOM_HOME, RUN_DATE_ENV: "{{ ds }}", **SKIP_UNIT_TESTS_ENV},
        ),
        profile_config=ProfileConfig(
            profile_name="ecom", target_name="duckdb", profiles_yml_filepath=DBT_DIR / "profiles.yml"
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # One model at a time, as the per-model tasks ran: on 2 cores under one memory cap, two
            # large models side by side spill and slow each other (large full build: fct_inventory_daily
            # 57 s alone, 121 s beside int_lost_sales_estimated).
            setup_operator_args={"dbt_cmd_flags": [*DBT_FLAGS, "--threads", "1"]},
        ),
        render_config=RenderConfig(
            load_method=LoadMode.AUTOMATIC,
            # Built (with their own tests) by dbt_staging in one dbt invocation, not one task each.
            exclude=[STAGING_MODELS],
            test_behavior=TestBehavior.AFTER_ALL,
            # Only used without a manifest, to run `dbt ls`.
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=DBT_BIN,
        ),
        # No per-model Assets: they would announce unaudited build tables; consumers wait for the
        # one Asset `publish` emits. Skipping them also saves each dbt task their registration.
        operator_args={
            "install_deps": False,
            "emit_datasets": False,
            "dbt_cmd_flags": DBT_FLAGS,
        },
        default_args=DEFAULT_ARGS,
    )

    @task
    def validate_marts(ds: str | None = None) -> dict:
        from pipelines.foundation import validate_marts_interval

        return validate_marts_interval(ds)

    @task(outlets=[PUBLISHED_MARTS])
    def publish(audit: dict) -> list[str]:
        from pipelines.foundation import publish_audited

        return publish_audited(audit)

    @task
    def report(ds: str | None = None) -> str:
        from pipelines.foundation import report_interval

        return report_interval(ds)

    audit = validate_marts()
    land() >> validate_raw() >> dbt_staging() >> dbt >> audit
    publish(audit) >> report()

    # Inside a task group Cosmos puts the producer (one `dbt build` of every model) beside the
    # models' sensors, not before them; a sensor that starts first waits for a producer that has
    # not run (for ever under `dags test`, which runs one task at a time). So the producer goes
    # first. The sensors it now feeds must still run when it is skipped, which Cosmos does on any
    # retry or clear of it: they then build their model themselves.
    producer = dbt.children[f"{dbt.group_id}.{PRODUCER_WATCHER_TASK_ID}"]
    for root in dbt.roots:
        if root is not producer:
            producer >> root
            root.trigger_rule = TriggerRule.NONE_FAILED


foundation_dag = foundation()
