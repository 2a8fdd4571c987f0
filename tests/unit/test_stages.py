"""The stage glue: a task's settings and run date, resolved once; the task defaults of every DAG."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines.config import ConfigError, load_settings
from pipelines.data.land import BatchMissingError
from pipelines.stages.common import PUBLISHED_MARTS, RUN_DATE_EXTRA, default_args, resolve_run
from pipelines.stages.foundation import wait_for_batch


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ECOM_HOME", str(tmp_path))
    return tmp_path


def _event(run_date: str | None, at: int, dag_run: str = "foundation/scheduled__x") -> Any:
    """An asset event as a task's context holds it (AssetEventDagRunReferenceResult's fields)."""
    dag_id, run_id = dag_run.split("/")
    return SimpleNamespace(
        asset=SimpleNamespace(name=PUBLISHED_MARTS.name, uri=PUBLISHED_MARTS.uri),
        extra={RUN_DATE_EXTRA: run_date} if run_date else {},
        source_dag_id=dag_id,
        source_run_id=run_id,
        timestamp=dt.datetime(2024, 3, 2, 12, at, tzinfo=dt.UTC),
    )


def _asset_triggered(*events: Any) -> dict[str, Any]:
    """The context of an Asset-triggered run: no ds, no logical_date, the events that triggered it."""
    return {"ti": object(), "dag_run": object(), "triggering_asset_events": {PUBLISHED_MARTS: list(events)}}


@pytest.mark.parametrize(
    "run",
    [
        # A manual, scheduled or backfilled run, and `airflow dags test`: the logical date.
        {"ds": "2024-03-01", "ti": object()},
        {"logical_date": dt.datetime(2024, 3, 1, tzinfo=dt.UTC)},
        # The logical date wins over any asset event (a run triggered by hand while events queued).
        {"ds": "2024-03-01", "triggering_asset_events": {PUBLISHED_MARTS: [_event("2024-02-01", 1)]}},
        # Asset-triggered: the date the publishing run put in the event's extra.
        _asset_triggered(_event("2024-03-01", 1)),
        # Several events: the latest; one without a date (made by hand in the UI) does not count.
        _asset_triggered(_event("2024-02-28", 1), _event("2024-03-01", 3), _event("2024-02-29", 2)),
        _asset_triggered(_event("2024-03-01", 1), _event(None, 5, "/")),
        "2024-03-01",
        dt.date(2024, 3, 1),
        dt.datetime(2024, 3, 1, 12, 30),
    ],
)
def test_a_task_gets_its_settings_and_run_date_from_its_context_or_a_date(home: Path, run: object) -> None:
    settings, day = resolve_run(run)  # type: ignore[arg-type]
    assert day == dt.date(2024, 3, 1) and type(day) is dt.date
    assert settings.home == home.resolve()


def test_the_settings_are_read_when_the_task_runs(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOM_QUALITY__MAX_DAYS_BEHIND", "5")
    settings, _ = resolve_run({"ds": "2024-03-01"})
    assert settings.quality.max_days_behind == 5


def test_an_asset_triggered_run_reads_the_real_airflow_event_objects(home: Path) -> None:
    from airflow.sdk.api.datamodels._generated import AssetReferenceAssetEventDagRun
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    def event(run_date: str, hour: int) -> AssetEventDagRunReferenceResult:
        return AssetEventDagRunReferenceResult(
            asset=AssetReferenceAssetEventDagRun(
                name=PUBLISHED_MARTS.name, uri=PUBLISHED_MARTS.uri, extra={}
            ),
            extra={RUN_DATE_EXTRA: run_date},
            source_task_id="publish",
            source_dag_id="foundation",
            source_run_id=f"backfill__{run_date}",
            source_map_index=-1,
            source_aliases=[],
            timestamp=dt.datetime(2024, 3, 2, hour, tzinfo=dt.UTC),
        )

    events = TriggeringAssetEventsAccessor.build([event("2024-03-01", 9), event("2024-02-29", 8)])
    _, day = resolve_run({"triggering_asset_events": events})
    assert day == dt.date(2024, 3, 1)


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (
            {},
            "no run date: the run has no logical date (ds), and it has no triggering asset events. "
            "Trigger it with a logical date, or through an asset event whose extra is "
            "{'run_date': 'YYYY-MM-DD'} (the foundation DAG's publish task sets it)",
        ),
        (
            {"ds": None, "triggering_asset_events": {}},
            "no run date: the run has no logical date (ds), and it",
        ),
        (
            _asset_triggered(_event(None, 1), _event(None, 2, "/")),
            "no run date: the run has no logical date (ds), and none of its 2 triggering asset event(s) "
            "(ecom_published_marts from foundation/scheduled__x; ecom_published_marts, created by hand) "
            "carries extra['run_date']. Trigger it",
        ),
        (
            _asset_triggered(_event("01/03/2024", 1)),
            "extra['run_date'] of ecom_published_marts from foundation/scheduled__x '01/03/2024' is not "
            "a YYYY-MM-DD date",
        ),
        (None, "a run date is required: none was given"),
        ("01/03/2024", "run date '01/03/2024' is not a YYYY-MM-DD date"),
    ],
)
def test_a_missing_or_malformed_run_date_is_named(home: Path, run: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_run(run)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_an_invalid_configuration_fails_the_task_naming_the_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOM_AIRFLOW__TASK_RETRIES", "many")
    with pytest.raises(ConfigError, match="ECOM_AIRFLOW__TASK_RETRIES='many'"):
        resolve_run("2024-03-01")


def test_task_retries_their_delay_and_the_pool_come_from_the_settings(home: Path) -> None:
    args = default_args(load_settings({"ECOM_HOME": str(home)}))
    assert args == {"retries": 2, "retry_delay": dt.timedelta(minutes=2), "pool": "ecom_warehouse"}
    one_off = load_settings({"ECOM_HOME": str(home), "ECOM_AIRFLOW__TASK_RETRIES": "0"})
    assert default_args(one_off)["retries"] == 0
    elsewhere = load_settings({"ECOM_HOME": str(home), "ECOM_AIRFLOW__WAREHOUSE_POOL": "shop_dw"})
    assert default_args(elsewhere)["pool"] == "shop_dw"


# --- waiting for the day's batch ------------------------------------------------------------------

DAY = dt.date(2024, 3, 1)


def _waiting(home: Path, monkeypatch: pytest.MonkeyPatch, minutes: int = 60) -> Any:
    monkeypatch.setenv("ECOM_LAND__SOURCE", "incoming/{date}")
    monkeypatch.setenv("ECOM_LAND__WAIT_TIMEOUT_MINUTES", str(minutes))
    settings, _ = resolve_run(DAY)
    return settings


def test_the_wait_ends_once_the_days_batch_is_there(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _waiting(home, monkeypatch)
    assert not wait_for_batch(settings, DAY)
    folder = home / "incoming" / "2024-03-01"
    folder.mkdir(parents=True)
    (folder / "daily_sales.parquet").write_bytes(b"")
    assert wait_for_batch(settings, DAY)
    # Even past the timeout: a batch that is there is landed, not timed out.
    assert wait_for_batch(settings, DAY, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def test_a_batch_still_missing_at_the_timeout_fails_naming_the_date_and_source(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _waiting(home, monkeypatch, minutes=60)
    now = dt.datetime.now(dt.UTC)
    assert not wait_for_batch(settings, DAY, now - dt.timedelta(minutes=59))
    with pytest.raises(BatchMissingError) as info:
        wait_for_batch(settings, DAY, now - dt.timedelta(minutes=61))
    assert str(info.value) == (
        "no landed partition for 2024-03-01: its batch did not arrive at incoming/2024-03-01 within "
        "60 min (land.wait_timeout_minutes). Deliver it there, then clear this task and its downstream "
        "tasks to run the day"
    )


def test_with_no_time_to_wait_a_missing_batch_fails_at_the_first_look(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _waiting(home, monkeypatch, minutes=0)
    with pytest.raises(BatchMissingError, match=r"no landed partition for 2024-03-01: .* within 0 min"):
        wait_for_batch(settings, DAY)


def test_a_pricing_step_takes_its_time_from_the_run_and_its_date_from_the_run_or_the_data(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manual and asset-triggered runs price their own date; a timetable run prices the newest data."""
    from pipelines.ml import families
    from pipelines.stages.common import resolve_step

    tick = dt.datetime(2026, 12, 4, 10, 20, tzinfo=dt.UTC)
    manual = {"ds": "2024-03-01", "logical_date": dt.datetime(2024, 3, 1, tzinfo=dt.UTC), "dag_run": None}
    assert resolve_step(manual)[1:] == (dt.date(2024, 3, 1), dt.datetime(2024, 3, 1))

    triggered = _asset_triggered(_event("2024-03-01", 1))
    triggered["dag_run"] = SimpleNamespace(run_type="asset_triggered", run_after=tick)
    assert resolve_step(triggered)[1:] == (dt.date(2024, 3, 1), dt.datetime(2026, 12, 4, 10, 20))

    newest = SimpleNamespace(last_data_day=lambda _settings: dt.date(2024, 12, 30))
    monkeypatch.setattr(families, "get_family", lambda name: newest)
    scheduled = {"ds": "2026-12-04", "logical_date": tick, "dag_run": SimpleNamespace(run_type="scheduled")}
    assert resolve_step(scheduled)[1:] == (dt.date(2024, 12, 30), dt.datetime(2026, 12, 4, 10, 20))
