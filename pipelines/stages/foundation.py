"""The foundation stage's steps for one data interval, as the DAG tasks and the CLI call them.

Each step takes the settings and the run date, resolved once at the edge (the CLI command, or the
DAG task through :func:`pipelines.stages.common.resolve_run`), and returns something small and
JSON-friendly (paths, counts) for XCom.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any

from pipelines.config import Settings
from pipelines.transform import SKIP_UNIT_TESTS
from pipelines.warehouse import connect_warehouse


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


def wait_for_batch(settings: Settings, run_date: dt.date, first_look: dt.datetime | None = None) -> bool:
    """One look for the run date's batch at ``land.source`` ({date} replaced), for the DAG's sensor.

    Args:
        settings: ``land.source`` and how long to wait (``land.wait_timeout_minutes``).
        run_date: The day the batch is for.
        first_look: When the wait began (the sensor's first look, timezone-aware); None for now.

    Returns:
        True once the batch is there; False to look again later.

    Raises:
        BatchMissingError: Still no batch ``land.wait_timeout_minutes`` after the first look.
        LandingError: The source cannot be read (no such bucket, access denied).
    """
    from pipelines.data.land import BatchMissingError, batch_available, batch_source

    source = batch_source(settings.land.source, run_date)
    log = logging.getLogger(__name__)
    if batch_available(settings, source, run_date):
        log.info("the batch for %s is at %s", run_date, source)
        return True
    timeout = settings.land.wait_timeout_minutes
    now = dt.datetime.now(dt.UTC)
    waited = (now - first_look).total_seconds() if first_look is not None else 0.0
    if waited >= timeout * 60:
        raise BatchMissingError(
            f"no landed partition for {run_date}: its batch did not arrive at {source} within "
            f"{timeout} min (land.wait_timeout_minutes). Deliver it there, then clear this task and "
            "its downstream tasks to run the day"
        )
    log.info(
        "no batch for %s at %s yet; looking again in %s s (giving up %s min after the first look)",
        run_date,
        source,
        settings.land.wait_poke_seconds,
        timeout,
    )
    return False


def land_interval(settings: Settings, run_date: dt.date) -> str:
    """Land the batch for the run date from ``land.source`` ({date} is replaced by the date)."""
    from pipelines.data.land import batch_source, land_batch

    return str(land_batch(batch_source(settings.land.source, run_date), settings, run_date).partition)


def validate_raw_interval(settings: Settings, run_date: dt.date) -> dict[str, Any]:
    from pipelines.quality.raw import validate_raw

    return _plain(validate_raw(settings, run_date))


# The staging views and the tests that read nothing else. Views cost nothing to create, but as one
# Cosmos task each they paid a dbt start-up apiece on every run; `cautious` leaves tests that also
# read later models (relationships to a mart) to the DAG's final test task.
STAGING_MODELS = "tag:staging"
# The marts over model outputs are built after scoring, by the core stage (pipelines.model_marts):
# a fault in a model's output must not hold back the foundation's marts.
MODEL_OUTPUTS = "tag:model_outputs"
STAGING_SELECTION = (
    "--select",
    STAGING_MODELS,
    "--exclude",
    MODEL_OUTPUTS,
    "--indirect-selection",
    "cautious",
    *SKIP_UNIT_TESTS,
)


def build_staging_interval(settings: Settings, run_date: dt.date) -> str:
    """Build the staging views and run their own tests in one dbt invocation; returns the selection."""
    from pipelines.transform import run_dbt

    output = run_dbt(settings, ["build", *STAGING_SELECTION], run_date)
    # dbt's own summary (models, tests, PASS/WARN/ERROR) for the task log.
    logging.getLogger(__name__).info("%s", "\n".join(output.strip().splitlines()[-12:]))
    return STAGING_MODELS


def validate_marts_interval(settings: Settings, run_date: dt.date) -> dict[str, Any]:
    from pipelines.quality.marts import validate_marts

    return _plain(validate_marts(settings, run_date))


def publish_audited(settings: Settings, audit: dict[str, Any]) -> list[str]:
    """Publish the marts that the audit ``audit`` (validate_marts_interval's result) passed."""
    from pipelines.quality.marts import publish_marts

    return publish_marts(settings, audit["run_id"])


def report_interval(settings: Settings, run_date: dt.date) -> str:
    from pipelines.report import build_report

    return str(build_report(settings, run_date))


def newest_landed_date(settings: Settings) -> dt.date:
    """The date of the newest landed raw partition (``data/raw/dt=<date>``).

    Raises:
        ValueError: Nothing has been landed yet.
    """
    from pipelines.data.land import list_partitions

    partitions = list_partitions(settings)
    if not partitions:
        raise ValueError(f"no landed batch in {settings.raw_dir}: run `ecom land` first or pass a date")
    return dt.date.fromisoformat(partitions[-1].name.removeprefix("dt="))


def run_foundation(
    settings: Settings, run_date: dt.date, say: Callable[[str], None] = print, *, land: bool = True
) -> dict[str, Any]:
    """The whole stage for one date without Airflow (for DVC and quick local runs): the DAG's steps in order.

    dbt runs as one ``dbt build`` here instead of one task per model, which is what a daily run on
    one machine pays least for; the DAG gives per-model retries and visibility instead.

    Args:
        settings: The configuration, read once by the caller.
        run_date: The run date (the batch's partition date).
        say: Called with a line per finished step.
        land: Land ``land.source`` for the date first; False when the batch is already landed (DVC's
            ``land`` stage lands it, and landing another source here would replace that partition).
    """
    from pipelines.transform import run_dbt

    steps: dict[str, Any] = {}
    timer = time.perf_counter()

    def done(name: str, value: Any) -> None:
        steps[name] = value
        say(f"{name}: done in {time.perf_counter() - timer:.1f}s")

    if land:
        done("land", land_interval(settings, run_date))
    done("validate_raw", validate_raw_interval(settings, run_date))
    run_dbt(settings, ["build", "--exclude", MODEL_OUTPUTS, *SKIP_UNIT_TESTS], run_date)
    done("dbt_build", "ok")
    audit = validate_marts_interval(settings, run_date)
    done("validate_marts", audit["run_id"])
    done("publish", publish_audited(settings, audit))
    done("report", report_interval(settings, run_date))
    return steps


def published_fingerprint(settings: Settings) -> dict[str, dict[str, int]]:
    """Row count and an order-independent content hash of every published mart.

    DVC cannot track the DuckDB file itself (later stages write to it), so its stages depend on this
    fingerprint instead: it changes whenever the published rows change. Floating-point sums that
    DuckDB adds up in a different order can change it too; that only costs a rerun.
    """
    with connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        out = {}
        for table in tables:
            rows, digest = con.execute(
                f'select count(*), bit_xor(hash(t)) from marts."{table}" t'
            ).fetchall()[0]
            out[table] = {"rows": int(rows), "hash": int(digest or 0)}
    return out
