"""The MLflow layer against S3 (moto): artifacts written directly, and through a real tracking server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
import pytest

from pipelines.config import Settings, load_settings
from pipelines.ml.registry import (
    CHALLENGER,
    CHAMPION,
    NoChampionError,
    load_champion,
    log_table,
    pip_requirements,
    promote_if_better,
    register,
    tracked_run,
    tracking,
)

pytestmark = pytest.mark.integration


class Doubler(mlflow.pyfunc.PythonModel):
    """The smallest real model: twice its input (type hints give it a signature, and no warning)."""

    def predict(self, model_input: list[float], params: dict[str, Any] | None = None) -> list[float]:
        return [2 * x for x in model_input]


def keys(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def train_register_promote(settings: Settings, model_name: str) -> tuple[str, str]:
    """One family's whole cycle: a tracked run with a table and a model, registered and promoted."""
    with tracked_run(settings, "s3", "doubler", {"factor": 2}) as run:
        mlflow.log_metric("mae", 0.5)
        log_table(pl.DataFrame({"model": ["doubler", "naive"], "mae": [0.5, 1.0]}), "comparison")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Doubler(), pip_requirements=pip_requirements("numpy")
        )
    version = register(settings, run.info.run_id, "model", model_name)
    decision = promote_if_better(
        settings, model_name, version, metric="mae", candidate=0.5, baseline=1.0, run_id=run.info.run_id
    )
    assert decision.promoted, decision.reason
    aliases = tracking(settings).get_registered_model(model_name).aliases
    # The SQLite store answers int versions, the REST client str ones.
    assert {a: int(v) for a, v in aliases.items()} == {CHAMPION: version, CHALLENGER: version}
    assert load_champion(settings, model_name).predict([2.0, 0.5]) == [4.0, 1.0]
    return run.info.run_id, info.model_id


def test_artifacts_go_straight_to_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, s3_client: Any, s3_bucket: str
) -> None:
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    settings = load_settings(
        {"ECOM_HOME": str(tmp_path), "ECOM_MLFLOW__ARTIFACT_LOCATION": f"s3://{s3_bucket}/mlruns"}
    )
    run_id, model_id = train_register_promote(settings, "s3-direct")

    run = tracking(settings).get_run(run_id)
    assert run.info.artifact_uri.startswith(f"s3://{s3_bucket}/mlruns/")
    stored = keys(s3_client, s3_bucket, "mlruns/")
    assert any(k.endswith(f"{run_id}/artifacts/tables/comparison.csv") for k in stored), stored
    assert f"mlruns/models/{model_id}/artifacts/MLmodel" in stored
    assert not settings.mlruns_dir.exists()  # nothing local but the database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> Iterator[str]:
    """A real ``mlflow server`` on a free local port, proxying artifacts to the moto bucket."""
    port = free_port()
    env = os.environ | {
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,  # AWS_* dummies come from the s3_endpoint fixture
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--workers", "1"]
    command += ["--artifacts-destination", f"s3://{s3_bucket}/proxied"]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its workers stop with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not ready after 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.mark.slow
def test_tracking_server_with_proxied_s3_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str, s3_client: Any, s3_bucket: str
) -> None:
    # The client needs no S3 access at all: the server proxies every artifact.
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL", raising=False)
    home = tmp_path / "home"
    settings = load_settings({"ECOM_HOME": str(home), "ECOM_MLFLOW__TRACKING_URI": mlflow_server})
    with pytest.raises(NoChampionError, match=f"no @champion version in {mlflow_server}"):
        load_champion(settings, "served")

    run_id, model_id = train_register_promote(settings, "served")

    run = tracking(settings).get_run(run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert run.data.tags["promotion.promoted"] == "true" and "git.commit" in run.data.tags
    stored = keys(s3_client, s3_bucket, "proxied/")
    assert any(k.endswith(f"{run_id}/artifacts/tables/comparison.csv") for k in stored), stored
    assert any(k.endswith(f"models/{model_id}/artifacts/MLmodel") for k in stored), stored
    assert not (home / "mlflow.db").exists() and not settings.mlruns_dir.exists()
