"""dbt: the project location, its environment, and running it outside Airflow.

Airflow runs the same project as a Cosmos task group (``dags/foundation.py``); this module is the
path for the CLI and DVC. dbt runs in a subprocess: dbt-duckdb in-process would hold the warehouse
file open with a configuration other connections in the process must then match.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.config import REPO_ROOT, TELEMETRY_OFF, Settings

DBT_PROJECT_DIR = REPO_ROOT / "dbt"
DBT_PROFILE, DBT_TARGET = "ecom", "duckdb"


class DbtError(RuntimeError):
    """A dbt command failed; the message carries dbt's own summary."""


def dbt_executable() -> Path:
    return Path(sys.executable).parent / "dbt"


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment for dbt: warehouse and artifacts under ECOM_HOME, no telemetry."""
    return {
        "ECOM_HOME": str(settings.home),
        "DBT_TARGET_PATH": str(settings.home / "dbt" / "target"),
        "DBT_LOG_PATH": str(settings.home / "dbt" / "logs"),
        **TELEMETRY_OFF,
    }


def dbt_vars(run_date: dt.date) -> str:
    return json.dumps({"run_date": run_date.isoformat()})


def run_dbt(settings: Settings, command: list[str], run_date: dt.date, *, target: str = DBT_TARGET) -> str:
    """Run ``dbt <command>`` against the project for a data interval; returns dbt's output.

    Raises:
        DbtError: dbt exited non-zero (its last lines are in the message).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(dbt_executable()),
        *command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        target,
    ]
    if command and command[0] in {"build", "run", "test", "seed", "compile", "docs", "show"}:
        args += ["--vars", dbt_vars(run_date)]
    proc = subprocess.run(
        args,
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **dbt_env(settings)},
        capture_output=True,
        text=True,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise DbtError(f"dbt {' '.join(command)} failed (exit {proc.returncode}):\n{tail}")
    return output
