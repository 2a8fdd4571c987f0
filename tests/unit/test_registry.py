"""The shared MLflow layer on a real SQLite-backed store in a temporary ECOM_HOME."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import polars as pl
import pytest

from pipelines import __version__
from pipelines.config import Settings
from pipelines.ml.registry import (
    CHALLENGER,
    CHAMPION,
    NoChampionError,
    champion_uri,
    data_version,
    experiment,
    flatten_params,
    git_commit,
    load_champion,
    log_figure,
    log_metrics_table,
    log_table,
    pip_requirements,
    promote_if_better,
    register,
    tracked_run,
    tracking,
)

MODEL = "demand-test"


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised MLflow SQLite database, made once: creating one costs ~4 s of migrations."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def settings(settings: Settings, empty_store: Path) -> Settings:
    """The shared fixture's Settings, with a fresh copy of the empty store in its ECOM_HOME."""
    shutil.copy(empty_store, settings.home / "mlflow.db")
    return settings


class Doubler(mlflow.pyfunc.PythonModel):
    """The smallest real model: twice its input (type hints give it a signature, and no warning)."""

    def predict(self, model_input: list[float], params: dict[str, Any] | None = None) -> list[float]:
        return [2 * x for x in model_input]


def log_candidate(settings: Settings, mae: float | None = None, name: str = "model") -> tuple[str, str]:
    """A run that logs ``mae`` and a tiny pyfunc model; returns (run_id, model_uri)."""
    with tracked_run(settings, "test", "candidate", {"lr": 0.1}) as run:
        if mae is not None:
            mlflow.log_metric("mae", mae)
        info = mlflow.pyfunc.log_model(
            name=name, python_model=Doubler(), pip_requirements=pip_requirements("numpy")
        )
    return run.info.run_id, info.model_uri


def aliases(settings: Settings, name: str = MODEL) -> dict[str, int]:
    return {a: int(v) for a, v in tracking(settings).get_registered_model(name).aliases.items()}


def write_partition(settings: Settings, day: str, batch_id: str) -> None:
    partition = settings.raw_dir / f"dt={day}"
    partition.mkdir(parents=True)
    (partition / "_manifest.json").write_text(json.dumps({"batch_id": batch_id, "files": []}))


# --- helpers without a store ---------------------------------------------------------------------


def test_pip_requirements_pin_installed_versions_without_local_suffix() -> None:
    reqs = pip_requirements("torch", "numpy")
    assert reqs[0] == "torch==2.13.0"
    assert all(re.fullmatch(r"[\w-]+==[\w.]+", r) and "+" not in r for r in reqs)
    with pytest.raises(Exception, match="not-a-real-package is not installed"):
        pip_requirements("not-a-real-package")


def test_flatten_params_nests_with_dots() -> None:
    params = {"forecast": {"hidden_sizes": (64, 32), "lr": 0.002, "opt": {"name": "adam"}}, "seed": 7}
    assert flatten_params(params) == {
        "forecast.hidden_sizes": "[64, 32]",
        "forecast.lr": "0.002",
        "forecast.opt.name": "adam",
        "seed": "7",
    }
    assert flatten_params({"forecast": Settings().forecast})["forecast.horizon"] == "28"


def test_data_version_hashes_sorted_batch_ids_and_the_dvc_lock(settings: Settings) -> None:
    assert data_version(settings) == {"data.partitions": "0", "data.version": "none"}
    write_partition(settings, "2024-01-02", "bbb")
    write_partition(settings, "2024-01-01", "aaa")
    first = data_version(settings)
    assert first["data.partitions"] == "2" and re.fullmatch(r"[0-9a-f]{16}", first["data.version"])
    assert data_version(settings) == first  # deterministic
    write_partition(settings, "2024-01-03", "ccc")
    before = data_version(settings)
    assert before["data.version"] != first["data.version"]

    (settings.home / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  land:\n    outs:\n    - path: data/raw\n      md5: abc123.dir\n"
    )
    with_dvc = data_version(settings)
    assert with_dvc["data.dvc_md5"] == "abc123.dir"
    assert with_dvc["data.version"] != before["data.version"]


def test_git_commit_is_head_of_the_repo_and_unknown_outside_git(tmp_path: Path) -> None:
    commit, dirty = git_commit()
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and isinstance(dirty, bool)
    assert git_commit(tmp_path) == ("unknown", False)


def test_champion_uri() -> None:
    assert champion_uri("forecast-lstm") == "models:/forecast-lstm@champion"


# --- tracking -----------------------------------------------------------------------------------


def test_tracking_points_at_sqlite_in_ecom_home_and_artifacts_at_mlruns(settings: Settings) -> None:
    client = tracking(settings)
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == f"sqlite:///{settings.home}/mlflow.db"
    exp_id = experiment(settings, "forecast")
    assert experiment(settings, "forecast") == exp_id  # get, not create again
    exp = client.get_experiment(exp_id)
    assert exp.name == "ecom-forecast"
    assert exp.artifact_location == settings.mlruns_dir.as_uri()
    assert (settings.home / "mlflow.db").is_file()


def test_tracked_run_records_params_and_the_standard_tags(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)  # nothing may land in the working directory
    write_partition(settings, "2024-01-01", "aaa")
    params = {"forecast": {"horizon": 28, "quantiles": (0.1, 0.5, 0.9)}, "seed": 42}
    with tracked_run(
        settings, "forecast", "lstm", params, tags={"owner": "ml"}, run_date="2024-02-01", note="hi"
    ) as run:
        mlflow.log_metric("wape", 0.2)
        log_table(pl.DataFrame({"sku": [1, 2], "wape": [0.1, 0.3]}), "per_sku")
        log_metrics_table([{"model": "lstm", "wape": 0.2}, {"model": "naive", "wape": 0.4}], "comparison")

    got = tracking(settings).get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "lstm"
    assert got.data.params == {
        "forecast.horizon": "28",
        "forecast.quantiles": "[0.1, 0.5, 0.9]",
        "seed": "42",
    }
    tags = got.data.tags
    commit, dirty = git_commit()
    assert tags["git.commit"] == tags["mlflow.source.git.commit"] == commit
    assert tags["git.dirty"] == str(dirty).lower()
    assert tags["data.version"] == data_version(settings)["data.version"] != "none"
    assert tags["data.partitions"] == "1"
    assert tags["ecom.version"] == __version__ and tags["ecom.family"] == "forecast"
    assert tags["ecom.run_date"] == "2024-02-01" and tags["owner"] == "ml"
    assert tags["mlflow.note.content"] == "hi"

    artifacts = Path(got.info.artifact_uri.removeprefix("file://"))
    assert artifacts.is_relative_to(settings.mlruns_dir)
    assert (artifacts / "tables" / "per_sku.csv").read_text().splitlines()[0] == "sku,wape"
    rows = json.loads((artifacts / "tables" / "comparison.json").read_text())
    assert rows == [{"model": "lstm", "wape": 0.2}, {"model": "naive", "wape": 0.4}]
    assert list(cwd.iterdir()) == []


def test_nested_runs_for_backtest_folds_and_failed_runs(settings: Settings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tracked_run(settings, "forecast", "backtest", {"folds": 2}) as parent:
        for fold in range(2):
            with tracked_run(settings, "forecast", f"fold-{fold}", {"fold": fold}, nested=True) as child:
                fig, ax = plt.subplots()
                ax.plot([1, 2, 3])
                assert log_figure(fig, "curve") == "figures/curve.png"
    client = tracking(settings)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(r.info.run_name for r in children) == ["fold-0", "fold-1"]
    assert [a.path for a in client.list_artifacts(child.info.run_id, "figures")] == ["figures/curve.png"]
    with tracked_run(settings, "forecast", "late-fold", {}, parent_run_id=parent.info.run_id) as late:
        pass
    assert client.get_run(late.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id

    with (
        pytest.raises(RuntimeError, match="boom"),
        tracked_run(settings, "forecast", "broken", {}) as failed,
    ):
        raise RuntimeError("boom")
    assert client.get_run(failed.info.run_id).info.status == "FAILED"


# --- registry and promotion ---------------------------------------------------------------------


def test_register_returns_the_version_and_points_challenger_at_it(settings: Settings) -> None:
    run_id, model_uri = log_candidate(settings, mae=1.0)
    assert register(settings, run_id, "model", MODEL) == 1  # by the name given to log_model
    assert aliases(settings) == {CHALLENGER: 1}
    assert register(settings, run_id, model_uri, MODEL, metrics={"mae": 1.0}) == 2  # by its URI
    assert aliases(settings) == {CHALLENGER: 2}
    mv = tracking(settings).get_model_version(MODEL, "2")
    assert mv.run_id == run_id and mv.tags["metric.mae"] == "1.0"


def test_promotion_needs_to_beat_both_the_champion_and_the_baseline(settings: Settings) -> None:
    client = tracking(settings)

    def candidate(mae: float, baseline: float = 10.0):
        run_id, uri = log_candidate(settings, mae)
        version = register(settings, run_id, uri, MODEL)
        return run_id, promote_if_better(
            settings, MODEL, version, metric="mae", candidate=mae, baseline=baseline, run_id=run_id
        )

    # First version, no champion: it only has to beat the baseline.
    run1, first = candidate(5.0)
    assert first.promoted and first.champion is None and "first champion" in first.reason
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: 1}

    # Worse than the champion: champion stays, the candidate is the challenger.
    run2, worse = candidate(6.0)
    assert not worse.promoted and worse.champion == 5.0 and worse.champion_version == 1
    assert "does not beat champion v1" in worse.reason
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: 2}

    # The decision and its figures are on the run and the version.
    tags, metrics = client.get_run(run2).data.tags, client.get_run(run2).data.metrics
    assert tags["promotion.promoted"] == "false" and tags["promotion.reason"] == worse.reason
    assert tags["promotion.model"] == f"{MODEL}/2" and tags["promotion.champion_version"] == "1"
    assert metrics == {"mae": 6.0, "promotion.candidate": 6.0, "promotion.baseline": 10.0,
                       "promotion.champion_value": 5.0}  # fmt: skip
    v2 = client.get_model_version(MODEL, "2").tags
    assert v2["promotion.promoted"] == "false" and v2["metric.mae"] == "6.0"
    assert v2["promotion.champion_value"] == "5.0"
    assert client.get_run(run1).data.tags["promotion.promoted"] == "true"

    # A tie is not an improvement.
    assert not candidate(5.0)[1].promoted

    # Better than the champion and the baseline: takes @champion.
    _, better = candidate(4.0)
    assert better.promoted and better.champion == 5.0
    assert aliases(settings) == {CHAMPION: 4, CHALLENGER: 4}

    # Beats the champion but not a (stricter) baseline: not promoted.
    _, no_baseline = candidate(3.0, baseline=2.0)
    assert not no_baseline.promoted and "baseline" in no_baseline.reason
    assert aliases(settings) == {CHAMPION: 4, CHALLENGER: 5}
    assert client.get_model_version(MODEL, "5").tags["promotion.promoted"] == "false"

    # Deciding again on the champion itself changes nothing.
    again = promote_if_better(settings, MODEL, 4, metric="mae", candidate=4.0, baseline=10.0)
    assert again.promoted and again.reason == "already the champion"
    assert aliases(settings) == {CHAMPION: 4, CHALLENGER: 5}


def test_first_version_that_misses_the_baseline_is_not_champion(settings: Settings) -> None:
    run_id, uri = log_candidate(settings, 0.5)
    version = register(settings, run_id, uri, MODEL)
    decision = promote_if_better(
        settings, MODEL, version, metric="accuracy", candidate=0.5, baseline=0.6, higher_is_better=True
    )
    assert not decision.promoted and decision.champion is None
    assert aliases(settings) == {CHALLENGER: 1}
    # Without run_id the decision goes to the version's own run.
    assert tracking(settings).get_run(run_id).data.tags["promotion.promoted"] == "false"


def test_champion_value_falls_back_to_its_run_metric(settings: Settings) -> None:
    client = tracking(settings)
    run_id, uri = log_candidate(settings, mae=2.0)
    v1 = register(settings, run_id, uri, MODEL)
    client.set_registered_model_alias(MODEL, CHAMPION, str(v1))  # promoted by hand, no metric tag
    run_id, uri = log_candidate(settings, mae=2.5)
    v2 = register(settings, run_id, uri, MODEL)
    decision = promote_if_better(settings, MODEL, v2, metric="mae", candidate=2.5, baseline=9.0)
    assert not decision.promoted and decision.champion == 2.0


def test_load_champion_round_trips_a_pyfunc_model(settings: Settings) -> None:
    with pytest.raises(NoChampionError, match=r"model 'nothing' has no @champion version in sqlite:///"):
        load_champion(settings, "nothing")
    run_id, uri = log_candidate(settings, mae=1.0)
    version = register(settings, run_id, uri, MODEL)
    with pytest.raises(NoChampionError, match="promote it with promote_if_better"):
        load_champion(settings, MODEL)
    promote_if_better(settings, MODEL, version, metric="mae", candidate=1.0, baseline=2.0)
    model = load_champion(settings, MODEL)
    assert model.predict([1.5]) == [3.0]


@pytest.mark.slow
def test_load_champion_round_trips_a_torch_model(settings: Settings) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    x = np.ones((2, 3), dtype=np.float32)
    with tracked_run(settings, "test", "torch", {"in": 3}) as run:
        info = mlflow.pytorch.log_model(
            net, name="net", input_example=x, pip_requirements=pip_requirements("torch")
        )
    version = register(settings, run.info.run_id, "net", "torch-test")
    assert promote_if_better(
        settings, "torch-test", version, metric="mse", candidate=0.1, baseline=1.0
    ).promoted
    expected = net(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(load_champion(settings, "torch-test").predict(x), expected)
    loaded = load_champion(settings, "torch-test", flavor="pytorch")
    assert np.allclose(loaded(torch.from_numpy(x)).detach().numpy(), expected)
    location = tracking(settings).get_logged_model(info.model_id).artifact_location
    requirements = Path(location.removeprefix("file://")) / "requirements.txt"
    assert "torch==2.13.0" in requirements.read_text().split()
