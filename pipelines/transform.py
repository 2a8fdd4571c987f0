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


class DbtError(RuntimeError):
    """A dbt command failed; the message carries dbt's own summary."""


def dbt_executable(settings: Settings) -> Path:
    """``dbt.executable``, else the dbt installed beside this Python (the project venv's)."""
    if settings.dbt.executable:
        return Path(settings.dbt.executable).expanduser()
    return Path(sys.executable).parent / "dbt"


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment for dbt: warehouse and artifacts under ECOM_HOME, the memory cap, no telemetry."""
    return {
        "ECOM_HOME": str(settings.home),
        MEMORY_LIMIT_ENV: settings.warehouse.memory_limit,
        "DBT_TARGET_PATH": str(settings.home / "dbt" / "target"),
        "DBT_LOG_PATH": str(settings.home / "dbt" / "logs"),
        **TELEMETRY_OFF,
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
