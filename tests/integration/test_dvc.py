"""The DVC pipeline (dvc.yaml) end to end in a throwaway project: repro from generation through
training and scoring, determinism, push/pull.

Each test builds its own git + DVC project in ``tmp_path`` holding the repo's ``dvc.yaml`` and a
copy of its ``params.yaml`` on the tiny tier, and runs the real ``dvc`` CLI in subprocesses
with ECOM_HOME pointing there, so nothing is written to the repo.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent  # holds `dvc` and `ecom`
TIMEOUT_S = 120


def _env(home: Path) -> dict[str, str]:
    """The caller's environment (HOME, AWS_* from the moto fixture, ...) pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOM_")}  # no stray overrides
    env.update(
        ECOM_HOME=str(home),
        ECOM_PARAMS=str(home / "params.yaml"),
        DVC_NO_ANALYTICS="1",
        # DVC's per-repo state (hashes, links) defaults to /var/tmp/dvc; keep it in the project.
        DVC_SITE_CACHE_DIR=str(home / ".dvc" / "tmp" / "site-cache"),
        # DVC runs each stage's cmd through a shell with this PATH: `ecom` must resolve to the venv's.
        PATH=os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]),
    )
    return env


def _run(
    home: Path, *args: str, check: bool = True, timeout: float = TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run a command in ``home``; on failure the assertion shows its stdout and stderr."""
    cmd = [str(VENV_BIN / args[0]) if (VENV_BIN / args[0]).exists() else args[0], *args[1:]]
    proc = subprocess.run(
        cmd, cwd=home, env=_env(home), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert proc.returncode == 0, (
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def _dvc_safe(value: Any) -> Any:
    """Dates as ISO strings: DVC rejects YAML date values (see test_repo_params_yaml_loads_in_dvc)."""
    if isinstance(value, dict):
        return {k: _dvc_safe(v) for k, v in value.items()}
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _init_project(home: Path, params_text: str) -> Path:
    _run(home, "git", "init", "-q")
    shutil.copy(REPO_ROOT / "dvc.yaml", home / "dvc.yaml")
    (home / "params.yaml").write_text(params_text)
    # The stages depend on the package's source files (pipelines/data/*.py), paths relative to
    # the DVC root. A symlink to the real package makes them resolve without copying the code;
    # DVC hashes the files through the link, so the deps are the code that actually runs.
    (home / "pipelines").symlink_to(REPO_ROOT / "pipelines", target_is_directory=True)
    (home / "expectations").symlink_to(REPO_ROOT / "expectations", target_is_directory=True)
    # dbt's own folder is a real one: dbt writes target/ and logs/ under $ECOM_HOME/dbt, which must
    # not end up in the repo through a link. Only the sources the warehouse stage depends on are linked.
    (home / "dbt").mkdir()
    for name in ("dbt_project.yml", "models", "macros", "seeds", "tests"):
        (home / "dbt" / name).symlink_to(REPO_ROOT / "dbt" / name)
    _run(home, "dvc", "init", "-q")
    _run(home, "dvc", "config", "core.analytics", "false")
    return home


# A training budget of seconds on the tiny tier (the train stage reads forecast.* from params.yaml).
TINY_TRAINING_BUDGET = {
    "epochs": 1,
    "max_train_windows": 5000,
    "backtest_folds": 1,
    "xgboost_max_rows": 5000,
    "xgboost_rounds": 20,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git + DVC project in tmp_path with the repo's dvc.yaml and params.yaml on the tiny tier."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["generate"]["scale"] = "tiny"
    params["forecast"].update(TINY_TRAINING_BUDGET)
    return _init_project(tmp_path, yaml.safe_dump(_dvc_safe(params), sort_keys=False))


def _lock(home: Path) -> dict[str, Any]:
    return yaml.safe_load((home / "dvc.lock").read_text())


def _out_hashes(home: Path, stage: str) -> dict[str, str]:
    return {o["path"]: o["md5"] for o in _lock(home)["stages"][stage]["outs"]}


def _sha256_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_repo_params_yaml_loads_in_dvc(tmp_path: Path) -> None:
    """DVC reads the repo's params.yaml as it is (DVC refuses YAML dates: quote them)."""
    home = _init_project(tmp_path, (REPO_ROOT / "params.yaml").read_text())
    proc = _run(home, "dvc", "stage", "list", check=False)
    assert proc.returncode == 0, (
        "DVC cannot parse the repo's params.yaml with dvc.yaml (an unquoted YAML date such as "
        '`start_date: 2024-01-01` must be written as a string: `start_date: "2024-01-01"`)\n'
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    stages = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert stages == {"generate", "land", "warehouse", "train", "score"}, proc.stdout
    edges = _dag_edges(_run(home, "dvc", "dag", "--md").stdout)
    assert edges == {
        ("generate", "land"),
        ("land", "warehouse"),
        ("warehouse", "train"),
        ("train", "score"),
    }, edges


def _dag_edges(mermaid: str) -> set[tuple[str, str]]:
    """(upstream, downstream) stage names from `dvc dag --md` (nodes as `node1["name"]`, edges `a-->b`)."""
    names = dict(re.findall(r'(node\d+)\["([^"]+)"\]', mermaid))
    return {(names[a], names[b]) for a, b in re.findall(r"(node\d+)-->(node\d+)", mermaid)}


def test_repro_generate_is_deterministic(project: Path) -> None:
    _run(project, "dvc", "repro", "generate")
    assert (project / "data/generated/daily_sales.parquet").is_file()
    assert (project / "data/truth/effects.json").is_file()
    lock = _lock(project)["stages"]["generate"]
    assert lock["params"]["params.yaml"]["generate.scale"] == "tiny"
    first = _out_hashes(project, "generate")
    assert set(first) == {"data/generated", "data/truth"}

    again = _run(project, "dvc", "repro", "generate")
    text = again.stdout + again.stderr
    assert "didn't change" in text or "up to date" in text, text
    assert _out_hashes(project, "generate") == first

    # Really rerun the command: the same params must give byte-identical outputs.
    forced = _run(project, "dvc", "repro", "--force", "generate")
    assert "Running stage 'generate'" in forced.stdout + forced.stderr
    assert _out_hashes(project, "generate") == first


def test_full_repro_lands_one_partition_builds_the_warehouse_trains_and_scores(project: Path) -> None:
    _run(project, "dvc", "repro", timeout=TIMEOUT_S * 3)
    manifests = list((project / "data/raw").glob("dt=*/_manifest.json"))
    assert len(manifests) == 1, manifests
    assert json.loads(manifests[0].read_text())
    lock = _lock(project)["stages"]
    assert set(lock) == {"generate", "land", "warehouse", "train", "score"}
    assert lock["train"]["params"]["params.yaml"]["forecast"]["epochs"] == 1

    published = json.loads((project / "metrics/warehouse.json").read_text())["published"]
    assert published["mart_demand_features"]["rows"] > 0
    trained = json.loads((project / "metrics/forecast_train.json").read_text())
    assert trained["run_date"] == "2024-12-31"  # the tiny world's last day, found in the marts
    assert set(trained["evaluation"]) == {"lstm", "seasonal_naive", "moving_average", "xgboost"}
    assert trained["evaluation"]["lstm"]["wape"] > 0 and trained["model_kind"] in ("lstm", "xgboost")
    replay = trained["extra"]
    assert replay["sim_traditional_safety_days"] > 0
    assert 0 < replay["sim_lstm_quantile_fill_rate"] <= 1
    scored = json.loads((project / "metrics/forecast_score.json").read_text())
    assert scored["run_date"] == "2024-12-31" and scored["rows"] == scored["entities"] * 28 > 0
    shown = _run(project, "dvc", "metrics", "show").stdout
    assert "forecast_train.json" in shown and "evaluation.lstm.wape" in shown

    # Nothing changed: no stage reruns (scoring wrote to the warehouse, which DVC does not track),
    # and the raw zone still holds exactly one partition.
    again = _run(project, "dvc", "repro")
    assert "Running stage" not in again.stdout + again.stderr
    assert len(list((project / "data/raw").glob("dt=*/_manifest.json"))) == 1


def test_push_pull_roundtrip_through_s3(project: Path, s3_endpoint: str, s3_client: Any) -> None:
    bucket = f"dvc-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    _run(project, "dvc", "remote", "add", "-d", "storage", f"s3://{bucket}/store")
    _run(project, "dvc", "remote", "modify", "--local", "storage", "endpointurl", s3_endpoint)

    _run(project, "dvc", "repro", "generate")
    before = {out: _sha256_tree(project / out) for out in ("data/generated", "data/truth")}
    assert any(name.endswith(".parquet") for name in before["data/generated"])
    _run(project, "dvc", "push", "generate")
    stored = s3_client.list_objects_v2(Bucket=bucket, Prefix="store/").get("KeyCount", 0)
    assert stored > 0

    for out in before:
        shutil.rmtree(project / out)
    shutil.rmtree(project / ".dvc/cache")
    # Only the stage that ran: a bare `dvc pull` would also want data/raw (land never ran here).
    _run(project, "dvc", "pull", "generate")
    assert {out: _sha256_tree(project / out) for out in before} == before
