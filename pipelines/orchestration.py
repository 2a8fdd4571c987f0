"""Airflow on one machine: its environment, running a DAG for a date, and the UI.

Airflow's home (metadata DB, logs) lives under ECOM_HOME, so two homes never share a scheduler
state; the DAGs come from the repo's ``dags/`` folder. Every call runs Airflow in a subprocess,
which keeps Airflow's configuration (read once at import) out of the caller's process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.config import REPO_ROOT, TELEMETRY_OFF, Settings
from pipelines.transform import DBT_PROJECT_DIR, run_dbt

if TYPE_CHECKING:
    from pipelines.services import Service

DAGS_DIR = REPO_ROOT / "dags"
# The override of airflow.task_retries that `ecom dag` / `ecom run` set to 0 for their one-off runs.
ONE_OFF_RETRIES_ENV = "ECOM_AIRFLOW__TASK_RETRIES"
# ... and of land.wait_timeout_minutes: 0 looks for the batch once.
ONE_OFF_WAIT_ENV = "ECOM_LAND__WAIT_TIMEOUT_MINUTES"
# Under Airflow's home: the pool and slots last set (ensure_warehouse_pool).
POOL_STAMP = ".warehouse_pool"


class DagRunError(RuntimeError):
    """A DAG run did not succeed; the message names the failed tasks and the log."""


def airflow_env(settings: Settings) -> dict[str, str]:
    home = settings.home / "airflow"
    # `airflow standalone` starts its scheduler, API server, triggerer and DAG processor as `airflow`
    # from PATH: the venv's bin must be on it even when ecom is run as .venv/bin/ecom.
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {
        **os.environ,
        "PATH": path if bin_dir in path.split(os.pathsep) else os.pathsep.join([bin_dir, path]),
        **TELEMETRY_OFF,
        "ECOM_HOME": str(settings.home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": os.environ.get("AIRFLOW__API__PORT", "8080"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def _airflow(
    settings: Settings, *args: str, log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "airflow")
    environ = {**airflow_env(settings), **(env or {})}
    if log is None:
        return subprocess.run([exe, *args], env=environ, capture_output=True, text=True, check=False)
    with log.open("w") as fh:
        proc = subprocess.run(
            [exe, *args], env=environ, stdout=fh, stderr=subprocess.STDOUT, text=True, check=False
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(), "")


def migrate(settings: Settings) -> None:
    """Create or upgrade Airflow's metadata DB under ECOM_HOME, then the warehouse pool.

    Each step is skipped when it is already done (this Airflow migrated the DB; the pool has the
    configured slots).
    """
    from importlib.metadata import version

    home = settings.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / ".migrated"
    if not (stamp.is_file() and stamp.read_text() == version("apache-airflow")):
        # A new or upgraded metadata DB: set the pool again.
        (home / POOL_STAMP).unlink(missing_ok=True)
        proc = _airflow(settings, "db", "migrate")
        if proc.returncode != 0:
            raise DagRunError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        stamp.write_text(version("apache-airflow"))
    ensure_warehouse_pool(settings)


def ensure_warehouse_pool(settings: Settings) -> None:
    """Create the pool every DAG task runs in, or set its slots; skipped when they are already set.

    ``airflow.warehouse_pool`` with ``airflow.warehouse_pool_slots`` slots (see
    ``pipelines.stages.common.default_args``). The scheduler never runs a task whose pool does not
    exist, so this runs wherever Airflow's home is prepared, before a scheduler starts.
    """
    pool, slots = settings.airflow.warehouse_pool, settings.airflow.warehouse_pool_slots
    stamp = settings.home / "airflow" / POOL_STAMP
    wanted = f"{pool}={slots}"
    if stamp.is_file() and stamp.read_text() == wanted:
        return
    description = "Tasks that open the warehouse (airflow.warehouse_pool_slots in params.yaml)"
    proc = _airflow(settings, "pools", "set", pool, str(slots), description)
    if proc.returncode != 0:
        raise DagRunError(f"airflow pools set {pool} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    stamp.write_text(wanted)


def _refresh_manifest(settings: Settings, logical_date: dt.date) -> None:
    """`dbt parse` when the project changed since the last manifest, so Cosmos need not run `dbt ls`."""
    manifest = settings.home / "dbt" / "target" / "manifest.json"
    newest = max(
        p.stat().st_mtime for p in DBT_PROJECT_DIR.rglob("*") if p.suffix in {".sql", ".yml", ".csv"}
    )
    if not manifest.is_file() or manifest.stat().st_mtime < newest:
        run_dbt(settings, ["parse"], logical_date)


def run_dag(
    settings: Settings, dag_id: str, logical_date: dt.date, *, say: Callable[[str], None] = print
) -> Path:
    """Run one DAG for one logical date in-process (`airflow dags test`, which calls ``dag.test()``).

    Returns the log file. Raises DagRunError naming the failed tasks when the run fails.
    """
    migrate(settings)
    _refresh_manifest(settings, logical_date)
    logs = settings.home / "airflow" / "runs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{dag_id}_{logical_date.isoformat()}_{int(time.time())}.log"
    say(f"running DAG {dag_id} for {logical_date} (log: {log})")
    started = time.perf_counter()
    proc = _airflow(
        settings, "dags", "test", dag_id, logical_date.isoformat(), log=log, env=one_off_env(os.environ)
    )
    finished = succeeded_tasks(proc.stdout, dag_id) if proc.returncode == 0 else None
    if finished is None:
        # Only a run that did not finish cleanly pays for asking Airflow (two more CLI calls).
        states = task_states(settings, dag_id, logical_date)
        failed = sorted(t for t, s in states.items() if s not in {"success", "skipped"})
        detail = ", ".join(f"{t}={states[t]}" for t in failed) or f"exit code {proc.returncode}"
        raise DagRunError(f"DAG {dag_id} for {logical_date} failed ({detail}); see {log}")
    seconds = time.perf_counter() - started
    slowest = sorted(task_seconds(proc.stdout).items(), key=lambda kv: -kv[1])[:3]
    say(
        f"DAG {dag_id} for {logical_date}: {finished} tasks succeeded in {seconds:.0f}s"
        + (f" (slowest: {', '.join(f'{t} {s:.0f}s' for t, s in slowest)})" if slowest else "")
    )
    return log


def one_off_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Overrides for a one-off DAG run, unless ``environ`` already sets them: no task retries, and
    no wait for a batch that has not arrived.

    A run by hand fails fast rather than sleeping through retry delays (``airflow.task_retries``)
    or polling for hours for its batch (``land.wait_timeout_minutes``).
    """
    return {
        ONE_OFF_RETRIES_ENV: environ.get(ONE_OFF_RETRIES_ENV, "0"),
        ONE_OFF_WAIT_ENV: environ.get(ONE_OFF_WAIT_ENV, "0"),
    }


def succeeded_tasks(log_text: str, dag_id: str) -> int | None:
    """How many tasks an `airflow dags test` log ran, if it says the run succeeded; else None."""
    outcome = re.search(rf"DagRun Finished: dag_id={re.escape(dag_id)},.*?\bstate=(\w+)", log_text)
    if outcome is None or outcome.group(1) != "success":
        return None
    return len(set(re.findall(r"\[DAG TEST\] end task task_id=(\S+)", log_text)))


_TASK_EVENT = re.compile(r"^(\S+) .*\[DAG TEST\] (starting|end task) task_id=(\S+)", re.MULTILINE)


def task_seconds(log_text: str) -> dict[str, float]:
    """Wall seconds of each task an `airflow dags test` log ran, in the order the tasks finished."""
    started: dict[str, dt.datetime] = {}
    seconds: dict[str, float] = {}
    for stamp, event, task in _TASK_EVENT.findall(log_text):
        at = dt.datetime.fromisoformat(stamp)
        if event == "starting":
            started[task] = at
        elif task in started:
            seconds[task] = (at - started.pop(task)).total_seconds()
    return seconds


def task_states(settings: Settings, dag_id: str, logical_date: dt.date) -> dict[str, str]:
    """Final state of each task of the latest run of a DAG for a logical date."""
    runs = _airflow(settings, "dags", "list-runs", dag_id, "--output", "json")
    if runs.returncode != 0:
        return {}
    day = logical_date.isoformat()
    matching = [r for r in _json_lines(runs.stdout) if str(r.get("logical_date", "")).startswith(day)]
    if not matching:
        return {}
    run_id = max(matching, key=lambda r: str(r.get("start_date") or ""))["run_id"]
    proc = _airflow(settings, "tasks", "states-for-dag-run", dag_id, run_id, "--output", "json")
    if proc.returncode != 0:
        return {}
    return {t["task_id"]: str(t["state"]) for t in _json_lines(proc.stdout)}


def _json_lines(text: str) -> list[dict]:
    """The JSON list an Airflow command printed, skipping the log lines around it."""
    for line in text.splitlines():
        if line.startswith("["):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return []


PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


def standalone(settings: Settings, port: int = 8080) -> list[Service]:
    """Airflow as `airflow standalone` runs it, on 127.0.0.1:``port``: one service per component.

    The API server (the UI; service ``airflow``), the scheduler, the DAG processor and the
    triggerer, for :class:`pipelines.services.Supervisor` to run. Started one by one rather than
    through `airflow standalone`, the scheduler and the triggerer can skip their log servers, which
    listen on every interface (their logs are files the API server reads on this machine), and a
    component that stops is noticed. Airflow's home (its metadata DB, logs and the generated admin
    password, which the API server writes on its first start) is made readable by its owner only,
    and every component runs under umask 077 so that what it writes there stays so.
    """
    from pipelines.services import Service

    migrate(settings)
    home = settings.home / "airflow"
    home.chmod(0o700)
    passwords = home / PASSWORDS_FILE
    if passwords.is_file():
        passwords.chmod(0o600)
    env = airflow_env(settings) | {
        "AIRFLOW__API__PORT": str(port),
        # Task processes report to the API server; by default at localhost:8080 whatever the port.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }
    exe = str(Path(sys.executable).parent / "airflow")
    api = Service(
        name="airflow",
        args=[exe, "api-server"],
        port=port,
        env=env,
        ready_path="/api/v2/monitor/health",
        umask=0o077,
        ready_timeout_s=240.0,
    )
    components = {
        "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
        "airflow-dag-processor": ["dag-processor"],
        "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
    }
    return [api, *(Service(name, [exe, *args], env=env, umask=0o077) for name, args in components.items())]


def admin_password(settings: Settings, timeout_s: float = 60.0) -> str | None:
    """The admin password `airflow standalone` generated, once it exists (None after ``timeout_s``).

    The file is made readable by its owner only (Airflow writes it world-readable otherwise).
    """
    path = settings.home / "airflow" / PASSWORDS_FILE
    deadline = time.monotonic() + timeout_s
    while True:
        if path.is_file():
            path.chmod(0o600)
            try:
                password = json.loads(path.read_text() or "{}").get("admin")
            except json.JSONDecodeError:  # being written
                password = None
            if password:
                return password
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
