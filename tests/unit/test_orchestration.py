"""Reading a DAG run's outcome from its `airflow dags test` log."""

from __future__ import annotations

from pipelines.config import load_settings
from pipelines.orchestration import one_off_env, succeeded_tasks, task_seconds

_TASK = "2026-11-27T09:00:3{i}.0Z [info     ] [DAG TEST] end task task_id={task} map_index=-1 [airflow]"
_FINISHED = (
    "2026-11-27T09:00:37.7Z [info     ] DagRun Finished: dag_id={dag}, "
    "logical_date=2024-12-30 00:00:00+00:00, "
    "run_id=manual__2026-11-27T08:59:35+00:00, run_duration=62.1, state={state}, run_type=manual, "
    "data_interval_start=2024-12-30 00:00:00+00:00 [airflow.models.dagrun.DagRun] loc=dagrun.py:1315"
)


def _log(*tasks: str, dag: str = "foundation", state: str | None = "success") -> str:
    lines = [_TASK.format(i=i, task=t) for i, t in enumerate(tasks)]
    if state is not None:
        lines.append(_FINISHED.format(dag=dag, state=state))
    return "\n".join(lines)


def test_a_successful_run_counts_each_task_once() -> None:
    assert succeeded_tasks(_log("land", "dbt.fct_orders_run", "land"), "foundation") == 2


def test_a_failed_run_or_a_log_without_an_outcome_is_not_a_success() -> None:
    assert succeeded_tasks(_log("land", state="failed"), "foundation") is None
    assert succeeded_tasks(_log("land", state=None), "foundation") is None


def test_another_dags_outcome_does_not_count() -> None:
    assert succeeded_tasks(_log("land", dag="foundation_backfill"), "foundation") is None


def test_task_seconds_pairs_each_tasks_start_with_its_end() -> None:
    def line(at: str, event: str, task: str) -> str:
        return f"2026-11-27T09:{at}Z [info     ] [DAG TEST] {event} task_id={task} map_index=-1 [airflow]"

    log = "\n".join(
        [
            line("00:01.5", "starting", "land"),
            "09:00:02  dbt output between the task lines",
            line("00:09.0", "end task", "land"),
            line("00:09.2", "starting", "dbt.dbt_producer_watcher"),
            line("01:10.2", "end task", "dbt.dbt_producer_watcher"),
            # a task that never ended (the run was killed) has no time
            line("01:11.0", "starting", "publish"),
        ]
    )
    assert task_seconds(log) == {"land": 7.5, "dbt.dbt_producer_watcher": 61.0}
    assert task_seconds("") == {}


def test_a_one_off_run_has_no_retries_nor_batch_wait_unless_the_environment_asks_for_them() -> None:
    assert one_off_env({}) == {"ECOM_AIRFLOW__TASK_RETRIES": "0", "ECOM_LAND__WAIT_TIMEOUT_MINUTES": "0"}
    asked = {"ECOM_AIRFLOW__TASK_RETRIES": "3", "ECOM_LAND__WAIT_TIMEOUT_MINUTES": "5"}
    assert one_off_env(asked) == asked
    # The overrides are the settings' own: the DAG files read them when `airflow dags test` parses them.
    settings = load_settings(one_off_env({}))
    assert settings.airflow.task_retries == 0 and settings.land.wait_timeout_minutes == 0
