"""
### Foundation: wait for the batch -> land -> validate raw -> dbt -> validate marts -> publish -> report

One run per day (the data interval): the scheduled run for a day starts once that day is over, and
its run date is the day (`ds`). It waits for the day's batch at `land.source` (a folder or `s3://`
prefix; `{date}` in it is replaced by the run date), looking every `land.wait_poke_seconds` without
holding a worker slot, and fails with `no landed partition for <date>` naming the source if none has
come `land.wait_timeout_minutes` after its first look. Then it lands the batch, loads it into the
warehouse's `raw` schema through the Great Expectations gates (failing rows go to
`quarantine.rejected_rows`), builds the dbt project into the `build_*` schemas (the staging views in
one dbt invocation, then every other model as a Cosmos task group: one `dbt build`, and a task per
model reporting it), audits the marts, and only then publishes them to the `marts` schema in one
transaction and renders the BI report. A failed gate stops the run and leaves the published marts
exactly as they were. The published-marts asset event carries the run date (`extra["run_date"]`),
which the core DAG's Asset-triggered runs take as theirs.

Every task is idempotent for its date: rerunning a date gives the same rows. Backfill any date
range with `airflow backfill create --dag-id foundation --from-date ... --to-date ...`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import TriggerRule, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import PRODUCER_WATCHER_TASK_ID, ExecutionMode, InvocationMode, LoadMode, TestBehavior

from pipelines.stages.common import DEFAULT_ARGS, PARSE_SETTINGS, PUBLISHED_MARTS, RUN_DATE_EXTRA, resolve_run
from pipelines.stages.foundation import MODEL_OUTPUTS, STAGING_MODELS
from pipelines.transform import (
    DBT_PROJECT_DIR,
    MEMORY_LIMIT_ENV,
    RUN_DATE_ENV,
    SKIP_UNIT_TESTS_ENV,
    data_shape_env,
    dbt_executable,
)

ECOM_HOME = str(PARSE_SETTINGS.home)
MANIFEST = PARSE_SETTINGS.home / "dbt" / "target" / "manifest.json"
# --no-write-json: each dbt invocation would rewrite manifest.json and run_results.json into its
# throwaway copy of the project (Cosmos reads the dbtRunner result instead).
DBT_FLAGS = ["--no-write-json"]
# The sensor's own timeout only backs up the wait's, which names the source and the date and counts
# from the first look with the settings the task reads when it runs.
POKE_SECONDS = PARSE_SETTINGS.land.wait_poke_seconds
WAIT_SECONDS = PARSE_SETTINGS.land.wait_timeout_minutes * 60 + POKE_SECONDS


@dag(
    # A day's run is due once the day is over, as its batch is; with a plain "@daily" (a cron
    # trigger) the run for a day would start at its midnight, a whole day before its batch.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    tags=["foundation", "warehouse"],
)
def foundation() -> None:
    @task.sensor(mode="reschedule", poke_interval=POKE_SECONDS, timeout=WAIT_SECONDS)
    def wait_for_batch(**context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowFailException

        from pipelines.data.land import BatchMissingError
        from pipelines.stages.foundation import wait_for_batch

        try:
            return wait_for_batch(*resolve_run(context), context["ti"].get_first_reschedule_date(context))
        except BatchMissingError as exc:
            # Waiting is what just failed: a retry would only fail again.
            raise AirflowFailException(str(exc)) from exc

    @task
    def land(**context: Any) -> str:
        from pipelines.stages.foundation import land_interval

        return land_interval(*resolve_run(context))

    @task
    def validate_raw(**context: Any) -> dict:
        from pipelines.stages.foundation import validate_raw_interval

        return validate_raw_interval(*resolve_run(context))

    @task
    def dbt_staging(**context: Any) -> str:
        from pipelines.stages.foundation import build_staging_interval

        return build_staging_interval(*resolve_run(context))

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            DBT_PROJECT_DIR,
            # Written by `dbt parse` (ecom runs it before each DAG run); without it Cosmos runs `dbt ls`.
            manifest_path=MANIFEST if MANIFEST.is_file() else None,
            # The run date as an environment variable, not a dbt var: a changed var makes every dbt
            # invocation re-parse the whole project (macros/portable.sql, date_var).
            env_vars={
                "ECOM_HOME": ECOM_HOME,
                MEMORY_LIMIT_ENV: PARSE_SETTINGS.warehouse.memory_limit,
                RUN_DATE_ENV: "{{ ds }}",
                # What the landed data looks like (grain, week start, channels), as `ecom dbt` has it.
                **data_shape_env(PARSE_SETTINGS),
                **SKIP_UNIT_TESTS_ENV,
            },
        ),
        profile_config=ProfileConfig(
            profile_name="ecom", target_name="duckdb", profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml"
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # One model at a time, as the per-model tasks ran: on 2 cores under one memory cap, two
            # large models side by side spill and slow each other (docs/benchmarks.md).
            setup_operator_args={"dbt_cmd_flags": [*DBT_FLAGS, "--threads", "1"]},
        ),
        render_config=RenderConfig(
            load_method=LoadMode.AUTOMATIC,
            # Built (with their own tests) by dbt_staging in one dbt invocation, not one task each.
            exclude=[STAGING_MODELS, MODEL_OUTPUTS],
            test_behavior=TestBehavior.AFTER_ALL,
            # Only used without a manifest, to run `dbt ls`.
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=dbt_executable(PARSE_SETTINGS),
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
    def validate_marts(**context: Any) -> dict:
        from pipelines.stages.foundation import validate_marts_interval

        return validate_marts_interval(*resolve_run(context))

    @task(outlets=[PUBLISHED_MARTS])
    def publish(audit: dict, **context: Any) -> list[str]:
        from pipelines.stages.foundation import publish_audited

        settings, day = resolve_run(context)
        published = publish_audited(settings, audit)
        # Asset-triggered runs have no logical date: the event tells the core DAG which day this is.
        context["outlet_events"][PUBLISHED_MARTS].extra = {RUN_DATE_EXTRA: day.isoformat()}
        return published

    @task
    def report(**context: Any) -> str:
        from pipelines.stages.foundation import report_interval

        return report_interval(*resolve_run(context))

    audit = validate_marts()
    wait_for_batch() >> land() >> validate_raw() >> dbt_staging() >> dbt >> audit
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
