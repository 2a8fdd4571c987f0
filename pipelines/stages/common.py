"""What every DAG shares: task defaults, the assets that chain the stages, and the run's settings and date.

The only module of ``pipelines`` that imports Airflow; DAG files import it when they are parsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset

from pipelines.config import Settings, load_settings

# Emitted by the foundation DAG's publish task; the core DAG runs when it is updated.
PUBLISHED_MARTS = Asset(name="ecom_published_marts", uri="duckdb://warehouse/marts")


def default_args(settings: Settings) -> dict[str, Any]:
    """Task defaults of every DAG: ``airflow.task_retries`` retries, ``airflow.retry_delay_minutes`` apart."""
    return {
        "retries": settings.airflow.task_retries,
        "retry_delay": timedelta(minutes=settings.airflow.retry_delay_minutes),
    }


# The settings a DAG file is parsed with: what shapes the DAG (retries, the dbt executable, the
# environment of the Cosmos tasks). A task reads its own when it runs, through resolve_run.
PARSE_SETTINGS = load_settings()
# `ecom dag` / `ecom run` set ECOM_AIRFLOW__TASK_RETRIES=0 so a one-off run fails fast.
DEFAULT_ARGS = default_args(PARSE_SETTINGS)


def resolve_run(run: Mapping[str, Any] | str | dt.date | None) -> tuple[Settings, dt.date]:
    """The settings and the run date of a task, read once where the task starts.

    Args:
        run: The task's Airflow context (its ``ds``), a ``YYYY-MM-DD`` string, or a date.

    Raises:
        ValueError: No run date, or not a ``YYYY-MM-DD`` date.
        ConfigError: The configuration is invalid.
    """
    ds = run.get("ds") if isinstance(run, Mapping) else run
    if isinstance(ds, dt.datetime):
        return load_settings(), ds.date()
    if isinstance(ds, dt.date):
        return load_settings(), ds
    if not ds:
        raise ValueError("a run date is required: the task's context has no ds (logical date)")
    try:
        day = dt.date.fromisoformat(str(ds))
    except ValueError as exc:
        raise ValueError(f"run date {ds!r} is not a YYYY-MM-DD date") from exc
    return load_settings(), day
