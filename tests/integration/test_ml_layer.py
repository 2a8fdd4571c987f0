"""The shared model layer with a small family that is not forecasting: no forecast assumption left.

The toy family predicts each store's daily level from a table in the warehouse. Its candidates are
the store's own mean (shrunk towards the overall mean by a recipe parameter) and the store's last
value; its baseline is the overall mean. It runs through the same lifecycle as forecasting: a real
SQLite MLflow store and registry, a DuckDB warehouse, pyfunc models.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import mlflow
import numpy as np
import polars as pl
import pytest

from pipelines.config import Settings
from pipelines.ml.family import Evaluation, OutputTable, Recipe

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2024, 3, 31)
HOLDOUT_DAYS = 14


class _LevelModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self.levels = json.loads(Path(context.artifacts["levels"]).read_text())

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return [self.levels.get(str(int(s)), self.levels["_overall"]) for s in model_input["store_id"]]


def _levels(train: pl.DataFrame, recipe: Recipe) -> dict[str, float]:
    overall = float(train["value"].mean())
    if recipe.kind == "overall_mean":
        return {"_overall": overall}
    if recipe.kind == "last_value":
        last = train.sort("day").group_by("store_id").agg(pl.col("value").last())
        return {"_overall": overall} | {str(s): float(v) for s, v in last.iter_rows()}
    w = float(recipe.params["shrink"])
    means = train.group_by("store_id").agg(pl.col("value").mean())
    return {"_overall": overall} | {str(s): (1 - w) * float(m) + w * overall for s, m in means.iter_rows()}


def mae(levels: Mapping[str, float], test: pl.DataFrame) -> float:
    predicted = np.array([levels.get(str(s), levels["_overall"]) for s in test["store_id"]])
    return float(np.abs(predicted - test["value"].to_numpy()).mean())


class StoreLevels:
    """A family with a held-out set (the last two weeks), not folds."""

    name = "toy"
    model_name = "store_levels"
    metric = "mae"
    higher_is_better = False
    candidates = ("store_mean", "last_value")
    baselines = ("overall_mean",)
    output = OutputTable(
        table="toy_outputs.store_levels",
        columns={"store_id": "bigint", "level": "double"},
        key=("store_id",),
        entity="store_id",
    )

    def __init__(self, shrink: float = 0.0) -> None:
        self.shrink = shrink
        self.loaded: list[str] = []

    def recipe(self, settings: Settings, kind: str) -> Recipe:
        return Recipe(kind, {"shrink": self.shrink} if kind == "store_mean" else {})

    def run_params(self, settings: Settings) -> Mapping[str, Any]:
        return {"holdout_days": HOLDOUT_DAYS}

    def last_data_day(self, settings: Settings) -> dt.date:
        return self.load_dataset(settings, dt.date.max)["day"].max()

    def load_dataset(self, settings: Settings, run_date: dt.date) -> pl.DataFrame:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            return con.sql("select * from marts.store_days where day <= ?", params=[run_date]).pl()
        finally:
            con.close()

    def describe_dataset(self, dataset: pl.DataFrame) -> dict[str, Any]:
        return {"rows": dataset.height, "end": dataset["day"].max()}

    def evaluate(
        self, settings: Settings, dataset: pl.DataFrame, recipes: Mapping[str, Recipe], progress: Any
    ) -> Evaluation:
        cutoff = dataset["day"].max() - dt.timedelta(days=HOLDOUT_DAYS)
        train, test = dataset.filter(pl.col("day") <= cutoff), dataset.filter(pl.col("day") > cutoff)
        rows = [{"model": label, "mae": mae(_levels(train, r), test)} for label, r in recipes.items()]
        return Evaluation(comparison=pl.DataFrame(rows), tables={"holdout": test.head(5)})

    def fit(self, settings: Settings, dataset: pl.DataFrame, recipe: Recipe, progress: Any) -> dict:
        return _levels(dataset, recipe)

    def log_model(self, settings: Settings, fitted: dict, dataset: pl.DataFrame) -> Any:
        from mlflow.models import infer_signature

        example = dataset.select("store_id").unique().sort("store_id").head(2).to_pandas()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "levels.json"
            path.write_text(json.dumps(fitted))
            return mlflow.pyfunc.log_model(
                name="model",
                python_model=_LevelModel(),
                artifacts={"levels": str(path)},
                signature=infer_signature(example, [1.0, 2.0]),
                pip_requirements=["polars"],
            )

    def load_model(self, settings: Settings, model_uri: str) -> Any:
        self.loaded.append(model_uri)
        return mlflow.pyfunc.load_model(model_uri)

    def predict_batch(self, settings: Settings, model: Any, run_date: dt.date, con: Any) -> pl.DataFrame:
        stores = con.sql("select distinct store_id from marts.store_days order by 1").pl()
        return stores.with_columns(pl.Series("level", model.predict(stores.to_pandas()), pl.Float64))


def write_days(settings: Settings, frame: pl.DataFrame) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema if not exists marts")
    con.register("_days", frame.to_arrow())
    con.execute("create or replace table marts.store_days as select * from _days")
    con.close()


def store_days(noise: float, spread: float = 10.0, seed: int = 0) -> pl.DataFrame:
    """Stores with distinct levels (``spread`` apart) plus noise, over the 90 days to RUN_DATE."""
    rng = np.random.default_rng(seed)
    days = [RUN_DATE - dt.timedelta(days=d) for d in range(90)]
    rows = [
        {"store_id": s, "day": d, "value": float(spread * s + rng.normal(0, noise))}
        for s in range(1, 6)
        for d in days
    ]
    return pl.DataFrame(rows)


def test_a_family_trains_registers_promotes_and_scores_through_the_layer(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.ml import registry
    from pipelines.ml.lifecycle import train_family
    from pipelines.ml.scoring import score_family

    write_days(settings, store_days(noise=3.0))
    family = StoreLevels(shrink=0.0)
    calls = []
    real_run_tags = registry.run_tags
    monkeypatch.setattr(registry, "run_tags", lambda *a, **k: calls.append(a) or real_run_tags(*a, **k))

    first = train_family(family, settings, RUN_DATE)
    # The store's mean wins: the last value is one noisy day, the overall mean ignores the store.
    assert first.model_kind == "store_mean" and first.promoted and first.model_version == 1
    assert "first champion" in first.reason and first.decision.baseline_name == "overall_mean"
    assert len(calls) == 1  # git commit and data version computed once per training

    client = registry.tracking(settings)
    parent = client.get_run(first.run_id)
    assert {"mae", "mae_store_mean", "mae_last_value", "mae_overall_mean"} <= set(parent.data.metrics)
    assert parent.data.metrics["mae"] == parent.data.metrics["mae_store_mean"]  # the flagship unprefixed
    version = client.get_model_version("store_levels", "1")
    assert Recipe.from_json(version.tags["ecom.recipe"]) == Recipe("store_mean", {"shrink": 0.0})
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "tables")}
    assert {"tables/comparison.csv", "tables/comparison.txt", "tables/holdout.csv"} <= artifacts

    scored = score_family(family, settings, RUN_DATE)
    assert family.loaded == ["models:/store_levels/1"]  # the exact version, resolved once
    assert scored.rows == 5 and scored.entities == 5 and scored.model_version == "1"
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    cols = "run_date, store_id, level, model_name, model_version"
    rows = con.sql(f"select {cols} from toy_outputs.store_levels order by store_id").fetchall()
    con.close()
    assert {r[3:] for r in rows} == {("store_levels", "1")} and rows[0][0] == RUN_DATE
    assert [round(r[2]) for r in rows] == [10, 20, 30, 40, 50]
    score_family(family, settings, RUN_DATE)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    again = con.sql(f"select {cols} from toy_outputs.store_levels order by store_id").fetchall()
    con.close()
    assert again == rows  # idempotent: the run date's rows replaced, not appended

    # The same recipe on fresher data ties with the champion re-evaluated, and the fresh fit wins.
    second = train_family(family, settings, RUN_DATE)
    assert second.promoted and "same recipe as champion v1" in second.reason
    assert "champion" not in second.evaluation.comparison["model"].to_list()  # not evaluated twice


def test_the_champion_is_re_evaluated_on_the_candidates_data_not_by_its_stored_figure(
    settings: Settings,
) -> None:
    from pipelines.ml.lifecycle import train_family
    from pipelines.ml.registry import tracking

    write_days(settings, store_days(noise=3.0))
    champion = train_family(StoreLevels(shrink=0.0), settings, RUN_DATE)
    assert champion.promoted
    # New data, where levels are closer together: every figure changes, the champion's too.
    write_days(settings, store_days(noise=3.0, spread=2.0, seed=1))
    worse = StoreLevels(shrink=0.9)
    result = train_family(worse, settings, RUN_DATE)
    labels = result.evaluation.comparison["model"].to_list()
    assert labels == ["store_mean", "last_value", "overall_mean", "champion"]

    data = worse.load_dataset(settings, RUN_DATE)
    cutoff = RUN_DATE - dt.timedelta(days=HOLDOUT_DAYS)
    train, test = data.filter(pl.col("day") <= cutoff), data.filter(pl.col("day") > cutoff)
    expected = mae(_levels(train, Recipe("store_mean", {"shrink": 0.0})), test)
    assert result.decision.champion == pytest.approx(expected)
    assert result.decision.champion != pytest.approx(champion.evaluation.metric("store_mean", "mae"))
    assert not result.promoted and "does not beat champion v1" in result.reason
    assert int(tracking(settings).get_model_version_by_alias("store_levels", "champion").version) == 1


def test_a_candidate_that_a_baseline_beats_is_never_champion(settings: Settings) -> None:
    from pipelines.ml.lifecycle import train_family
    from pipelines.ml.registry import tracking
    from pipelines.ml.scoring import score_family

    # The stores' levels converge on the overall mean in the held-out weeks: the overall mean is
    # then right, a store's own mean and its last value are wrong.
    days = store_days(noise=1.0)
    cutoff = RUN_DATE - dt.timedelta(days=HOLDOUT_DAYS)
    converged = pl.when(pl.col("day") > cutoff).then(30.0 + pl.col("value") % 1).otherwise("value")
    write_days(settings, days.with_columns(converged.alias("value")))
    family = StoreLevels(shrink=0.0)
    result = train_family(family, settings, RUN_DATE)
    assert not result.promoted
    assert result.reason.startswith("does not beat every baseline: overall_mean scores")
    aliases = tracking(settings).get_registered_model("store_levels").aliases
    assert aliases == {"challenger": 1}

    from pipelines.ml.registry import NoChampionError

    with pytest.raises(NoChampionError, match="store_levels"):
        score_family(family, settings, RUN_DATE)
