"""The DAGs under a real Airflow: a day triggered by hand, the core run the scheduler starts for that
day, a backfill, and a cleared day's rerun (docs/operations.md, "Scheduling, reruns and backfills").

The scheduler, the DAG processor and the API server run as separate processes on 127.0.0.1, with a
temporary AIRFLOW_HOME under a temporary ECOM_HOME, on the tiny tier with per-day batches cut by
``ecom replay``. Every Airflow process is stopped at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from pipelines.config import REPO_ROOT, ConfigError, Settings, load_settings
from pipelines.orchestration import DAGS_DIR, airflow_env, migrate
from tests.integration.test_dags import TINY_TRAINING_BUDGET

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
# The tiny world runs 2024-01-01..2024-12-31. The first day's batch holds all history before it;
# the next two are one day each, as a daily feed delivers them.
FIRST_DAY, BACKFILL_FROM, BACKFILL_TO = dt.date(2024, 12, 29), dt.date(2024, 12, 30), dt.date(2024, 12, 31)
# Sunday, Monday, Tuesday: retraining on Thursdays leaves the first run the only one that trains
# (there is no champion yet), so the rerun of the last day scores with the same champion.
TRAIN_WEEKDAY = "3"
# Columns that record when a row was written, not what it says: a rerun writes them anew.
AUDIT_COLUMNS = {"_source_loaded_at", "_written_at", "scored_at", "planned_at"}

PHASE_TIMEOUT_S = 600.0
POLL_S = 3.0


# --- the pool ------------------------------------------------------------------------------------

POOLS_OF_TASKS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({d.dag_id: {t.task_id: t.pool for t in d.tasks} for d in bag.dags.values()}))
"""


def test_every_task_of_every_dag_runs_in_the_warehouse_pool_which_migrate_creates_and_resizes(
    tmp_path: Path,
) -> None:
    """Watcher-mode dbt tasks included: a cleared or retried model task builds its model itself."""
    settings = load_settings({"ECOM_HOME": str(tmp_path)})
    migrate(settings)
    assert _pool(settings) == ("ecom_warehouse", 1)
    proc = subprocess.run(
        [sys.executable, "-c", POOLS_OF_TASKS, str(DAGS_DIR)],
        env=airflow_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pools = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(pools) == {"foundation", "core_supply_chain", "innovation_pricing"}
    assert any(t.startswith("dbt.") for t in pools["foundation"])
    for dag_id, tasks in pools.items():
        assert set(tasks.values()) == {"ecom_warehouse"}, (dag_id, tasks)

    # A server warehouse takes more writers: the setting resizes the pool the next time ecom
    # prepares Airflow's home.
    bigger = load_settings({"ECOM_HOME": str(tmp_path), "ECOM_AIRFLOW__WAREHOUSE_POOL_SLOTS": "4"})
    migrate(bigger)
    assert _pool(bigger) == ("ecom_warehouse", 4)
    with pytest.raises(
        ConfigError, match=r"airflow\.warehouse_pool_slots \(from ECOM_AIRFLOW__WAREHOUSE_POOL_SLOTS='0'\)"
    ):
        load_settings({"ECOM_HOME": str(tmp_path), "ECOM_AIRFLOW__WAREHOUSE_POOL_SLOTS": "0"})


def _pool(settings: Settings) -> tuple[str, int]:
    name = settings.airflow.warehouse_pool
    proc = subprocess.run(
        [str(BIN / "airflow"), "pools", "get", name, "--output", "json"],
        env=airflow_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [pool] = json.loads(proc.stdout[proc.stdout.index("[") :])
    return pool["pool"], int(pool["slots"])


# --- a real scheduler ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_scheduler_runs_a_day_its_core_run_a_backfill_and_a_cleared_days_identical_rerun(
    tmp_path: Path,
) -> None:
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    settings, env = _prepare_home(tmp_path)
    lap("prepare (world, batches, dbt manifest, metadata DB, pool)")
    try:
        with _airflow_running(settings, env) as api:
            lap("start scheduler, DAG processor, API server")
            _run_the_days(settings, env, api, lap)
    finally:
        lap("stop every Airflow process")
        print("\nscheduler test timings (s):", json.dumps(timings, indent=1))


def _run_the_days(settings: Settings, env: dict[str, str], api: _Api, lap: Callable[[str], None]) -> None:
    # A day by hand: the foundation for the first day; its publish makes the scheduler start the
    # core DAG, which must run for that same day.
    _cli(env, "dags", "trigger", "foundation", "--logical-date", FIRST_DAY.isoformat())
    _cli(env, "dags", "unpause", "foundation")
    _cli(env, "dags", "unpause", "core_supply_chain")
    first = api.wait_for_run("foundation", FIRST_DAY)
    core_first = api.wait_for_core_run(FIRST_DAY)
    api.wait_idle()
    lap(f"foundation {FIRST_DAY} by hand, then the core run for it")
    # No task needed a retry (the test sets none): nothing fought over the warehouse file.
    assert {t["try_number"] for t in api.task_instances("foundation", first)} == {1}
    assert {t["try_number"] for t in api.task_instances("core_supply_chain", core_first)} <= {0, 1}
    assert _forecast_rows(settings, FIRST_DAY) > 0

    # A backfill of two days; each day's publish starts a core run for that day.
    _cli(
        env,
        "backfill",
        "create",
        "--dag-id",
        "foundation",
        "--from-date",
        BACKFILL_FROM.isoformat(),
        "--to-date",
        BACKFILL_TO.isoformat(),
        "--max-active-runs",
        "1",
    )
    backfilled = {day: api.wait_for_run("foundation", day) for day in (BACKFILL_FROM, BACKFILL_TO)}
    for day in backfilled:
        api.wait_for_core_run(day)
    api.wait_idle()
    lap(f"backfill {BACKFILL_FROM}..{BACKFILL_TO} (foundation and core for each day)")
    for day, run_id in backfilled.items():
        assert run_id.startswith("backfill__"), run_id
        assert _sales_rows(settings, day) > 0, f"no published sales for {day}"
        assert _forecast_rows(settings, day) > 0, f"no forecasts for {day}"

    # Clear a finished day: the foundation reruns it, the core follows, and the rows are the same.
    before = _published_rows(settings, BACKFILL_TO)
    core_runs = {r["dag_run_id"] for r in api.runs("core_supply_chain")}
    day = BACKFILL_TO.isoformat()
    _cli(env, "tasks", "clear", "foundation", "--start-date", day, "--end-date", day, "--yes")
    assert api.wait_for_run("foundation", BACKFILL_TO, cleared=True) == backfilled[BACKFILL_TO]
    api.wait_for_core_run(BACKFILL_TO, exclude=core_runs)
    api.wait_idle()
    lap(f"rerun of the cleared day {BACKFILL_TO} (foundation, then core)")
    after = _published_rows(settings, BACKFILL_TO)
    assert after.keys() == before.keys()
    assert {t: v for t, v in after.items() if v != before[t]} == {}


def _prepare_home(home: Path) -> tuple[Settings, dict[str, str]]:
    """The tiny world, a batch per day under data/incoming/{date}, Airflow's home and its pool.

    The source is set in params.yaml under ECOM_HOME, where the scheduler's tasks read it
    (docs/operations.md); the training budget and the test's settings come from the environment
    the Airflow processes start with.
    """
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["land"]["source"] = "data/incoming/{date}"
    (home / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "ECOM_HOME": str(home),
        **TINY_TRAINING_BUDGET,
        "ECOM_FORECAST__TRAIN_WEEKDAY": TRAIN_WEEKDAY,
        # A lock conflict over the warehouse must fail the run, not hide behind a retry.
        "ECOM_AIRFLOW__TASK_RETRIES": "0",
        # Unpausing makes the scheduler start yesterday's run, whose batch never comes: fail it
        # at the first look rather than wait hours in front of the runs under test.
        "ECOM_LAND__WAIT_TIMEOUT_MINUTES": "0",
    }
    for key in ("ECOM_PARAMS", "ECOM_ROLLOUT__STAGE", "ECOM_LAND__SOURCE"):
        env.pop(key, None)
    _ecom(env, "generate", "--scale", "tiny")
    _ecom(env, "replay", "--date", FIRST_DAY.isoformat())
    for day in (BACKFILL_FROM, BACKFILL_TO):
        _ecom(env, "replay", "--date", day.isoformat(), "--since", day.isoformat())
    # Cosmos renders the dbt group from this manifest instead of running `dbt ls` at every parse.
    _ecom(env, "dbt", "parse")
    settings = load_settings(env)
    assert settings.land.source == "data/incoming/{date}"
    migrate(settings)

    port = _free_port()
    environ = airflow_env(settings) | {
        **{k: v for k, v in env.items() if k.startswith("ECOM_")},
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    }
    return settings, environ


def _ecom(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [str(BIN / "ecom"), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, f"ecom {' '.join(args)}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"


def _cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, f"airflow {' '.join(args)}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Log servers are skipped: the API server reads task logs from the shared log folder, and Airflow's
# log servers would listen on 0.0.0.0 at fixed ports.
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
}


@contextlib.contextmanager
def _airflow_running(settings: Settings, env: dict[str, str]) -> Iterator[_Api]:
    """Start the components, each in its own process group; stop them all on the way out."""
    logs = settings.home / "airflow" / "components"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in COMPONENTS.items():
            with (logs / f"{name}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [str(BIN / "airflow"), *args],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        api = _Api(settings, env["AIRFLOW__API__BASE_URL"], procs, logs)
        api.wait_ready()
        yield api
    finally:
        _stop(procs, settings.home / "airflow")


def _stop(procs: list[subprocess.Popen[bytes]], airflow_home: Path) -> None:
    """SIGTERM each component's process group, SIGKILL what is left after a grace period, then any
    process still running with this AIRFLOW_HOME (a task runner that left its group)."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    marker = f"AIRFLOW_HOME={airflow_home}".encode()
    for pid in _pids_with_env(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not _pids_with_env(marker), "Airflow processes survived the test"


def _pids_with_env(marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


class _Api:
    """The REST API v2 as the admin, and the waits the test needs; a failed wait says what ran."""

    def __init__(
        self, settings: Settings, base: str, procs: list[subprocess.Popen[bytes]], logs: Path
    ) -> None:
        self.settings, self.base, self.procs, self.logs = settings, base, procs, logs
        self._token: str | None = None

    def wait_ready(self) -> None:
        """The API answers and the DAG processor has stored both DAGs."""
        self._until(lambda: self._dags_stored(), "the API server and both DAGs", timeout=180)

    def _dags_stored(self) -> bool:
        try:
            return all(
                self.get(f"/api/v2/dags/{d}").get("dag_id") == d for d in ("foundation", "core_supply_chain")
            )
        except (urllib.error.URLError, ConnectionError, FileNotFoundError, KeyError):
            return False

    def get(self, path: str) -> dict[str, Any]:
        if self._token is None:
            passwords = self.settings.home / "airflow" / "simple_auth_manager_passwords.json.generated"
            body = json.dumps({"username": "admin", "password": json.loads(passwords.read_text())["admin"]})
            request = urllib.request.Request(
                f"{self.base}/auth/token", data=body.encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = json.load(response)["access_token"]
        request = urllib.request.Request(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {self._token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances?limit=200"
        return self.get(path)["task_instances"]

    def run_date_of(self, run_id: str) -> str | None:
        """The date a core run took from the asset event that triggered it."""
        path = f"/api/v2/dags/core_supply_chain/dagRuns/{urllib.parse.quote(run_id)}/upstreamAssetEvents"
        dates = {(e.get("extra") or {}).get("run_date") for e in self.get(path)["asset_events"]}
        return max(d for d in dates if d) if any(dates) else None

    def wait_for_run(self, dag_id: str, day: dt.date, *, cleared: bool = False) -> str:
        """The run of ``dag_id`` with logical date ``day`` once it succeeded; its run id.

        ``cleared``: wait for it to have run again since now (its end date moves on).
        """
        since = dt.datetime.now(dt.UTC)

        def done() -> str | None:
            for run in self.runs(dag_id):
                if not str(run.get("logical_date") or "").startswith(day.isoformat()):
                    continue
                if run["state"] == "failed":
                    raise AssertionError(
                        f"{dag_id} {run['dag_run_id']} failed:\n{self.failures(dag_id, run)}"
                    )
                ended = run.get("end_date")
                if run["state"] == "success" and (not cleared or (ended and _stamp(ended) > since)):
                    return str(run["dag_run_id"])
            return None

        return self._until(done, f"{dag_id} for {day} to succeed")

    def wait_for_core_run(self, day: dt.date, *, exclude: set[str] = frozenset()) -> str:
        """A successful Asset-triggered core run whose triggering event carries ``day``."""

        def done() -> str | None:
            for run in self.runs("core_supply_chain"):
                if run["dag_run_id"] in exclude or self.run_date_of(run["dag_run_id"]) != day.isoformat():
                    continue
                if run["state"] == "failed":
                    raise AssertionError(
                        f"core_supply_chain {run['dag_run_id']} failed:\n"
                        f"{self.failures('core_supply_chain', run)}"
                    )
                if run["state"] == "success":
                    assert run["run_type"] == "asset_triggered" and run["logical_date"] is None, run
                    return str(run["dag_run_id"])
            return None

        return self._until(done, f"the core run for {day} to succeed")

    def wait_idle(self) -> None:
        """No run of either DAG queued or running: the warehouse file is free to read."""

        def idle() -> bool:
            return not any(
                r["state"] in {"queued", "running"}
                for dag_id in ("foundation", "core_supply_chain")
                for r in self.runs(dag_id)
            )

        self._until(idle, "both DAGs to be idle")

    def failures(self, dag_id: str, run: dict[str, Any]) -> str:
        """Each failed task of a run with the end of its log."""
        lines = []
        for ti in self.task_instances(dag_id, run["dag_run_id"]):
            if ti["state"] in {"failed", "upstream_failed"}:
                lines.append(f"- {ti['task_id']}: {ti['state']}")
            if ti["state"] == "failed":
                folder = self.settings.home / "airflow" / "logs" / f"dag_id={dag_id}"
                for log in sorted(folder.glob(f"run_id={run['dag_run_id']}/task_id={ti['task_id']}/*.log")):
                    lines.append(log.read_text(errors="replace")[-2000:])
        return "\n".join(lines)

    def _until(self, check: Callable[[], Any], what: str, timeout: float = PHASE_TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc, name in zip(self.procs, COMPONENTS, strict=True):
                if proc.poll() is not None:
                    tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise AssertionError(f"airflow {name} exited ({proc.returncode}):\n{tail}")
            result = check()
            if result:
                return result
            time.sleep(POLL_S)
        states = {
            d: [(r["dag_run_id"], r["state"]) for r in self.runs(d)]
            for d in ("foundation", "core_supply_chain")
        }
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; runs: {states}")


def _stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- the warehouse, read only while no run is active ------------------------------------------


def _read(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _forecast_rows(settings: Settings, day: dt.date) -> int:
    return _read(settings, "select count(*) from forecasts.demand_forecast where run_date = ?", [day])[0][0]


def _sales_rows(settings: Settings, day: dt.date) -> int:
    return _read(settings, "select count(*) from marts.fct_sales_daily where date = ?", [day])[0][0]


def _published_rows(settings: Settings, day: dt.date) -> dict[str, tuple[int, int]]:
    """Rows and an order-independent hash of what they say: every published mart, and the day's
    forecasts and replenishment plan.

    Audit stamps are left out, and floating-point values count to 9 decimals: the plan's
    ``lead_time_sd_days`` (DuckDB's parallel ``stddev_samp``) can differ in its last bits between
    two runs over the same rows.
    """
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema = 'marts' or (table_schema = 'forecasts' "
            "and table_name in ('demand_forecast', 'replenishment_plan')) order by 1, 2"
        ).fetchall()
        out = {}
        for schema, table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            row = ", ".join(
                f'round("{c}", 9)' if kind in {"DOUBLE", "FLOAT"} else f'"{c}"'
                for c, kind in columns
                if c not in AUDIT_COLUMNS
            )
            where = "where run_date = ?" if schema == "forecasts" else ""
            count, digest = con.execute(
                f'select count(*), sum(hash(({row}))) from "{schema}"."{table}" {where}',
                [day] if where else [],
            ).fetchall()[0]
            out[f"{schema}.{table}"] = (int(count), int(digest or 0))
    return out
