"""dbt: the project location, its environment, and running it outside Airflow.

Airflow runs the same project as a Cosmos task group (``dags/foundation.py``); this module is the
path for the CLI and DVC. dbt runs in a subprocess: dbt-duckdb in-process would hold the warehouse
file open with a configuration other connections in the process must then match.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from pipelines.config import REPO_ROOT, TELEMETRY_OFF, Settings

DBT_PROJECT_DIR = REPO_ROOT / "dbt"
DBT_PROFILE, DBT_TARGET = "ecom", "duckdb"
# Read by the project's date_var('run_date') when no --vars sets it.
RUN_DATE_ENV = "ECOM_RUN_DATE"
# The DuckDB memory cap the profile (profiles.yml) reads; set from warehouse.memory_limit.
MEMORY_LIMIT_ENV = "ECOM_DUCKDB_MEMORY_LIMIT"
# Unit tests check the models' SQL on fixtures, not the data: CI runs them (`make test`), scheduled
# runs skip them, as dbt advises for production. The flag for a dbt command line; the environment
# variable where one setting reaches several commands.
SKIP_UNIT_TESTS = ("--exclude-resource-type", "unit_test")
SKIP_UNIT_TESTS_ENV = {"DBT_ENGINE_EXCLUDE_RESOURCE_TYPES": "unit_test"}
# The shape of the landed data, read by dbt/macros/data_shape.sql (a --vars value of the same
# name, lower case without the prefix, wins): the grain of the sales rows (daily | weekly), the
# week's first day (0 = Monday) and the sales channels (comma-separated; empty: the data's own).
GRAIN_ENV, WEEK_START_ENV, CHANNELS_ENV = "ECOM_LAND_GRAIN", "ECOM_WEEK_START", "ECOM_CHANNELS"


class DbtError(RuntimeError):
    """A dbt command failed; the message carries dbt's own summary."""


def dbt_executable(settings: Settings) -> Path:
    """``dbt.executable``, else the dbt installed beside this Python (the project venv's)."""
    if settings.dbt.executable:
        return Path(settings.dbt.executable).expanduser()
    return Path(sys.executable).parent / "dbt"


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment for dbt: warehouse and artifacts under ECOM_HOME, memory cap, data shape, no telemetry."""
    return {
        "ECOM_HOME": str(settings.home),
        MEMORY_LIMIT_ENV: settings.warehouse.memory_limit,
        "DBT_TARGET_PATH": str(settings.home / "dbt" / "target"),
        "DBT_LOG_PATH": str(settings.home / "dbt" / "logs"),
        **data_shape_env(settings),
        **TELEMETRY_OFF,
    }


def data_shape_env(settings: Settings) -> dict[str, str]:
    """What the landed data looks like, for dbt: ``land.grain``, ``land.week_start``, ``quality.channels``.

    The DAG's Cosmos group passes the same variables, so both paths build the same marts.
    """
    return {
        GRAIN_ENV: settings.land.grain,
        WEEK_START_ENV: str(settings.land.week_start_index),
        CHANNELS_ENV: ",".join(settings.quality.channels or ()),
    }


def run_dbt(settings: Settings, command: list[str], run_date: dt.date, *, target: str = DBT_TARGET) -> str:
    """Run ``dbt <command>`` against the project for a data interval; returns dbt's output.

    Raises:
        DbtError: dbt exited non-zero (its last lines are in the message).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(dbt_executable(settings)),
        *command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        target,
    ]
    proc = subprocess.run(
        args,
        cwd=DBT_PROJECT_DIR,
        # The run date goes in the environment, not --vars: a changed var re-parses the whole
        # project (macros/portable.sql, date_var).
        env={**os.environ, **dbt_env(settings), RUN_DATE_ENV: run_date.isoformat()},
        capture_output=True,
        text=True,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise DbtError(f"dbt {' '.join(command)} failed (exit {proc.returncode}):\n{tail}")
    return output
