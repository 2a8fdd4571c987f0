"""`ecom ui all` as a person uses it: the Airflow, MLflow and dbt-docs pages and the Data Docs index
render their content in a real (headless) browser, logged in with the printed password, and Ctrl-C
stops every process the UIs started.

Debian's chromium is installed with apt-get where it is missing and the test runs as root; else the
test is skipped with the reason. The home is small: the tiny world's raw tables (what dbt docs
reads), a toy model family trained and registered, and a marts audit's Data Docs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psutil
import pytest

from pipelines.config import Settings, load_settings
from pipelines.ml import registry
from tests.integration.browser import Browser, install_chromium
from tests.integration.test_ml_layer import RUN_DATE, StoreLevels, store_days, write_days
from tests.integration.test_quality_marts import RUN, _build
from tests.integration.warehouse_fixtures import load_raw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY_LINE = "Ctrl-C stops them all"


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why_not = install_chromium()
    if path is None:
        pytest.skip(why_not)
    return path


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture
def home(tmp_path: Path, tiny_world: Path) -> Settings:
    """A home with raw tables, a trained and registered toy model, and Data Docs."""
    from pipelines.ml.lifecycle import train_family
    from pipelines.quality import validate_marts

    settings = load_settings({"ECOM_HOME": str(tmp_path / "home")})
    settings.data_dir.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        load_raw(con, tiny_world / "data" / "generated", dt.date(2024, 12, 30), "tiny-history")
    write_days(settings, store_days(noise=3.0))
    train_family(StoreLevels(), settings, RUN_DATE)
    # The marts audit of a hand-built build_marts, in a home of its own (its row counts would
    # otherwise be checked against the tiny world's raw tables).
    audit_home = load_settings({"ECOM_HOME": str(tmp_path / "audit")})
    _build(audit_home)
    site = validate_marts(audit_home, RUN).data_docs_index.parent
    shutil.copytree(site, settings.reports_dir / "data_docs")
    return settings


@pytest.fixture
def ui(home: Settings, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, dict[str, int]]]:
    """`ecom ui all` on free ports, running; killed with its whole tree if a test leaves it running."""
    airflow, mlflow, dbt_docs, worker_logs, trigger_logs = free_ports(5)
    ports = {"airflow": airflow, "mlflow": mlflow, "dbt-docs": dbt_docs}
    env = {
        **os.environ,
        "ECOM_HOME": str(home.home),
        # Airflow's log servers, off the defaults a developer's own Airflow may hold.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_logs),
    }
    output = tmp_path / "ecom-ui.out"
    with output.open("w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ecom"),
                "ui",
                "all",
                "--airflow-port",
                str(airflow),
                "--mlflow-port",
                str(mlflow),
                "--dbt-docs-port",
                str(dbt_docs),
                "--grace",
                "5",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        yield proc, output, ports
    finally:
        if proc.poll() is None:
            tree = [proc, *psutil.Process(proc.pid).children(recursive=True)]
            for p in tree:
                p.kill()
            proc.wait(timeout=30)


def _wait_for_line(proc: subprocess.Popen[str], output: Path, line: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = output.read_text()
        if line in text:
            return text
        if proc.poll() is not None:
            pytest.fail(f"ecom ui all exited with {proc.returncode}:\n{text}")
        time.sleep(1)
    pytest.fail(f"ecom ui all printed no {line!r} within {timeout_s:.0f}s:\n{output.read_text()}")


def _airflow_token(port: int, password: str) -> str:
    body = json.dumps({"username": "admin", "password": password}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 201
        return json.load(resp)["access_token"]


def test_every_ui_renders_its_content_and_ctrl_c_stops_them_all(
    home: Settings, ui: tuple[subprocess.Popen[str], Path, dict[str, int]], chromium: str, tmp_path: Path
) -> None:
    proc, output, ports = ui
    started = time.monotonic()
    text = _wait_for_line(proc, output, READY_LINE, timeout_s=240)
    ready_s = time.monotonic() - started

    password = re.search(r"^Airflow +http://127\.0\.0\.1:(\d+)/ +user: admin +password: (\S+)$", text, re.M)
    assert password is not None, text
    assert int(password.group(1)) == ports["airflow"]
    mlflow_url = re.search(r"^MLflow +(\S+)", text, re.M).group(1)
    assert mlflow_url == f"http://127.0.0.1:{ports['mlflow']}/#/experiments?workflowType=machine_learning"
    assert re.search(rf"^dbt docs +http://127\.0\.0\.1:{ports['dbt-docs']}/$", text, re.M), text
    data_docs = re.search(r"^Data Docs +(file://\S+)$", text, re.M).group(1)
    # Airflow's home and the password it generated are its owner's alone.
    airflow_home = home.home / "airflow"
    assert airflow_home.stat().st_mode & 0o777 == 0o700
    assert (airflow_home / "simple_auth_manager_passwords.json.generated").stat().st_mode & 0o777 == 0o600

    shots = tmp_path / "screenshots"
    experiment = f"{home.mlflow.experiment_prefix}-toy"
    experiment_id = registry.tracking(home).get_experiment_by_name(experiment).experiment_id
    with Browser(chromium, tmp_path / "chromium") as browser:
        # Airflow: logged in with the printed password, the DAG list once the DAG processor parsed.
        airflow = f"http://127.0.0.1:{ports['airflow']}"
        browser.set_cookie(f"{airflow}/", "_token", _airflow_token(ports["airflow"], password.group(2)))
        browser.open(f"{airflow}/dags", ["foundation", "core_supply_chain"], timeout_s=150)
        browser.screenshot(shots / "airflow.png")
        # MLflow, on the printed address: model training's view of the experiments; an experiment
        # opens on its runs, each with its training dataset and registered model.
        mlflow = f"http://127.0.0.1:{ports['mlflow']}"
        browser.open(mlflow_url, [experiment, "Model training"])
        browser.screenshot(shots / "mlflow-experiments.png")
        browser.open(
            f"{mlflow}/#/experiments/{experiment_id}?workflowType=machine_learning",
            ["Runs", "toy-2024-03-31", "toy-training", "Training", "store_levels"],
        )
        browser.screenshot(shots / "mlflow-runs.png")
        browser.open(f"{mlflow}/#/models", ["Registered Models", "store_levels"])
        browser.screenshot(shots / "mlflow-models.png")
        # dbt docs: a mart's page with its description and columns.
        browser.open(
            f"http://127.0.0.1:{ports['dbt-docs']}/#!/model/model.ecom.fct_sales_daily",
            ["fct_sales_daily", "Description", "Columns"],
        )
        browser.screenshot(shots / "dbt-docs.png")
        # Data Docs, offline: the index table filled by bootstrap-table from local files.
        browser.open(data_docs, ["Expectation Suites", f"marts_{RUN:%Y%m%d}_", "marts.fct_sales_daily"])
        browser.screenshot(shots / "data-docs.png")

    tree = psutil.Process(proc.pid).children(recursive=True)
    assert len(tree) > 5
    # Every server the UIs started listens on loopback only (Airflow's log servers are off).
    pids = {p.pid for p in tree}
    listeners = [
        c for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert {c.laddr.port for c in listeners} == set(ports.values())
    assert {c.laddr.ip for c in listeners} == {"127.0.0.1"}
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 0, output.read_text()
    assert output.read_text().rstrip().endswith("stopped")
    alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [(p.pid, p.cmdline()) for p in alive]
    # Nothing listens any more (a stopped server's connections may hold a port for a minute).
    listening = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert not set(ports.values()) & listening
    print(f"ecom ui all ready in {ready_s:.0f}s; screenshots in {shots}")
