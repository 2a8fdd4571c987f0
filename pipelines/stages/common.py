"""What every DAG shares: task defaults, the assets that chain the stages, and the run's settings and date.

The only module of ``pipelines`` that imports Airflow; DAG files import it when they are parsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset

from pipelines.config import Settings, load_settings

# Emitted by the foundation DAG's publish task; the core DAG runs when it is updated.
PUBLISHED_MARTS = Asset(name="ecom_published_marts", uri="duckdb://warehouse/marts")


def default_args(settings: Settings) -> dict[str, Any]:
    """Task defaults of every DAG: ``airflow.task_retries`` retries, ``airflow.retry_delay_minutes`` apart.

    Every task runs in the ``airflow.warehouse_pool`` pool, which
    ``pipelines.orchestration.ensure_warehouse_pool`` creates with ``airflow.warehouse_pool_slots``
    slots (1 for the embedded DuckDB file). Nearly every task opens the warehouse, and while one
    process writes the DuckDB file, any other that opens it, even read-only, fails on its lock. A
    task that waits (a sensor) should release its slot between checks: deferrable or
    ``mode="reschedule"``.
    """
    return {
        "retries": settings.airflow.task_retries,
        "retry_delay": timedelta(minutes=settings.airflow.retry_delay_minutes),
        "pool": settings.airflow.warehouse_pool,
    }


# The settings a DAG file is parsed with: what shapes the DAG (retries, the dbt executable, the
# environment of the Cosmos tasks). A task reads its own when it runs, through resolve_run.
PARSE_SETTINGS = load_settings()
# `ecom dag` / `ecom run` set ECOM_AIRFLOW__TASK_RETRIES=0 so a one-off run fails fast.
DEFAULT_ARGS = default_args(PARSE_SETTINGS)


# The key of an asset event's extra that carries the business date the event is for. The foundation's
# publish task sets it; an Asset-triggered run has no logical date and reads its date from there.
RUN_DATE_EXTRA = "run_date"


def resolve_run(run: Mapping[str, Any] | str | dt.date | None) -> tuple[Settings, dt.date]:
    """The settings and the business date of a task, read once where the task starts.

    From an Airflow context the date is, in this order:

    1. ``ds``, else ``logical_date``: manual, scheduled and backfilled runs, and ``airflow dags test``.
    2. Otherwise ``extra["run_date"]`` of the run's ``triggering_asset_events``: an Asset-triggered
       run has no logical date. Of several events, the latest (by timestamp) that carries a date.

    Args:
        run: The task's Airflow context, a ``YYYY-MM-DD`` string, or a date.

    Raises:
        ValueError: No run date (no logical date and no triggering event carrying one), or a date
            that is not ``YYYY-MM-DD``.
        ConfigError: The configuration is invalid.
    """
    return load_settings(), _run_date(run)


def _run_date(run: Mapping[str, Any] | str | dt.date | None) -> dt.date:
    if isinstance(run, Mapping):
        day = run.get("ds") or run.get("logical_date")
        if not day:
            return _event_run_date(run.get("triggering_asset_events") or {})
    else:
        day = run
    if isinstance(day, dt.datetime):
        return day.date()
    if isinstance(day, dt.date):
        return day
    if not day:
        raise ValueError("a run date is required: none was given")
    return _parse_day(day, "run date")


def _event_run_date(events: Mapping[Any, Sequence[Any]]) -> dt.date:
    every = [event for per_asset in events.values() for event in per_asset]
    dated = [e for e in every if (getattr(e, "extra", None) or {}).get(RUN_DATE_EXTRA)]
    if not dated:
        found = (
            f"none of its {len(every)} triggering asset event(s) ({_describe(every)}) carries "
            f"extra['{RUN_DATE_EXTRA}']"
            if every
            else "it has no triggering asset events"
        )
        raise ValueError(
            f"no run date: the run has no logical date (ds), and {found}. Trigger it with a logical "
            f"date, or through an asset event whose extra is {{'{RUN_DATE_EXTRA}': 'YYYY-MM-DD'}} "
            "(the foundation DAG's publish task sets it)"
        )
    latest = max(dated, key=lambda e: (e.timestamp, str(e.extra[RUN_DATE_EXTRA])))
    return _parse_day(latest.extra[RUN_DATE_EXTRA], f"extra['{RUN_DATE_EXTRA}'] of {_describe([latest])}")


def _describe(events: Sequence[Any]) -> str:
    """Where asset events came from, for error messages: ``asset from dag/run``."""
    out = []
    for e in events[:3]:
        asset = getattr(getattr(e, "asset", None), "name", None) or "an asset"
        dag_run = (getattr(e, "source_dag_id", None), getattr(e, "source_run_id", None))
        source = "/".join(filter(None, dag_run))
        out.append(f"{asset} from {source}" if source else f"{asset}, created by hand")
    return "; ".join(out) + ("; ..." if len(events) > 3 else "")


def _parse_day(value: Any, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"{what} {value!r} is not a YYYY-MM-DD date") from exc


def resolve_step(run: Mapping[str, Any]) -> tuple[Settings, dt.date, dt.datetime]:
    """The settings, business date and step time of a task of a DAG that runs several times a day.

    A run the timetable started (``run_type`` scheduled, every ``crawl.cadence_minutes``) prices the
    newest published day at the run's own time: its logical date is a wall-clock instant, not a
    business date. Any other run (triggered by the foundation's asset event, by hand, or ``dags
    test``) takes its date as :func:`resolve_run` does, and its logical date (else the time it was
    queued for, else midnight) as the step. Reruns of one run get the same step, so they replace
    its rows.
    """
    settings = load_settings()
    dag_run = run.get("dag_run")
    logical = run.get("logical_date")
    step = logical or getattr(dag_run, "run_after", None)
    if str(getattr(dag_run, "run_type", "")).lower().endswith("scheduled"):
        from pipelines.ml.families import get_family

        day = get_family("pricing").last_data_day(settings)
    else:
        day = _run_date(run)
    if not isinstance(step, dt.datetime):
        step = dt.datetime.combine(day, dt.time())
    if step.tzinfo is not None:
        step = step.astimezone(dt.UTC).replace(tzinfo=None)
    return settings, day, step
