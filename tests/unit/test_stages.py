"""The stage glue: a task's settings and run date, resolved once; the task defaults of every DAG."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines.config import ConfigError, load_settings
from pipelines.stages.common import default_args, resolve_run


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ECOM_HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "run",
    [
        {"ds": "2024-03-01", "ti": object()},
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


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({}, "context has no ds"),
        ({"ds": None}, "context has no ds"),
        (None, "run date is required"),
        ("01/03/2024", "'01/03/2024' is not a YYYY-MM-DD date"),
    ],
)
def test_a_missing_or_malformed_run_date_is_named(home: Path, run: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_run(run)  # type: ignore[arg-type]


def test_an_invalid_configuration_fails_the_task_naming_the_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOM_AIRFLOW__TASK_RETRIES", "many")
    with pytest.raises(ConfigError, match="ECOM_AIRFLOW__TASK_RETRIES='many'"):
        resolve_run("2024-03-01")


def test_task_retries_and_their_delay_come_from_the_settings(home: Path) -> None:
    args = default_args(load_settings({"ECOM_HOME": str(home)}))
    assert args == {"retries": 2, "retry_delay": dt.timedelta(minutes=2)}
    one_off = load_settings({"ECOM_HOME": str(home), "ECOM_AIRFLOW__TASK_RETRIES": "0"})
    assert default_args(one_off)["retries"] == 0
