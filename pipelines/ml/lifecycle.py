"""Train, evaluate and promote any model family the same way.

:func:`train_family` is what ``ecom train <family>`` and the DAG tasks call:

1. read the family's dataset for the run date; compute the run's tags (git commit, data version)
   once;
2. evaluate, on the same folds or held-out set, every candidate kind, every baseline and the
   current champion's recipe (skipped when it equals a candidate's: the figure would be the same);
3. log the training input as an MLflow dataset (name, source, digest, schema; not its rows) and the
   comparison (one nested run per label and fold, the metrics side by side on the parent run,
   tables and figures);
4. fit the best candidate kind on the whole dataset, log it with its signature and register it as
   ``@challenger``, with its recipe as a version tag;
5. promote it to ``@champion`` only when it beats every baseline and the champion re-evaluated on
   the same data (:func:`pipelines.ml.registry.promote_if_better`), and log the decision.

A champion registered before recipes were recorded (no ``ecom.recipe`` tag) is compared by its
stored figure, and the reason says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.ml.family import Evaluation, ModelFamily, Progress, Recipe, format_table

if TYPE_CHECKING:
    from mlflow.data.meta_dataset import MetaDataset

    from pipelines.config import Settings
    from pipelines.ml.registry import PromotionDecision

CHAMPION_LABEL = "champion"
RECIPE_TAG = "ecom.recipe"
KIND_TAG = "ecom.model_kind"


def _silent(_message: str) -> None:
    return None


def finite(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries that are finite numbers, as floats (what MLflow metrics accept)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value)):
            out[key] = float(value)
    return out


def training_input(
    family: ModelFamily, settings: Settings, dataset: Any, described: Mapping[str, Any], data_version: str
) -> MetaDataset:
    """The training input as an MLflow dataset: what it is, not its rows.

    Named after the table it came from (``described["source"]``), sourced from the warehouse, with
    the schema of a polars frame and a digest of its description and the raw data's version, so
    two runs on the same data show the same dataset.
    """
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    identity = json.dumps({**described, "data.version": data_version}, sort_keys=True, default=str)
    with warnings.catch_warnings():
        # A local path matches the "" and "file" schemes, both LocalArtifactDatasetSource.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        source = resolve_dataset_source(str(settings.warehouse_path))
    return MetaDataset(
        source,
        name=str(described.get("source") or f"{family.name}-training"),
        digest=hashlib.sha256(identity.encode()).hexdigest()[:12],
        schema=_schema(dataset),
    )


def _schema(dataset: Any) -> Any:
    import polars as pl

    if not isinstance(dataset, pl.DataFrame):
        return None
    from mlflow.data.polars_dataset import infer_schema

    # MLflow warns on the root logger for every date column it records as datetime.
    logging.disable(logging.WARNING)
    try:
        return infer_schema(dataset)
    finally:
        logging.disable(logging.NOTSET)


@dataclass
class ChampionRecipe:
    """The current champion: its version, and its recipe when it was recorded."""

    version: int
    recipe: Recipe | None


def current_champion(family: ModelFamily, settings: Settings) -> ChampionRecipe | None:
    """The family's ``@champion`` version and recipe, or None without a champion."""
    from pipelines.ml.registry import champion_version

    mv = champion_version(settings, family.model_name)
    if mv is None:
        return None
    text = (mv.tags or {}).get(RECIPE_TAG)
    return ChampionRecipe(int(mv.version), Recipe.from_json(text) if text else None)


def evaluation_recipes(
    family: ModelFamily, settings: Settings, champion: ChampionRecipe | None
) -> tuple[dict[str, Recipe], str | None]:
    """Every label to evaluate, and the label whose recipe is the champion's (None: no champion).

    The champion's recipe is evaluated under the label ``champion`` unless it equals a candidate's
    recipe, whose label then stands for it. A recipe of a kind the family no longer has is not
    evaluated (None returned: compare by stored figure).
    """
    recipes = {kind: family.recipe(settings, kind) for kind in (*family.candidates, *family.baselines)}
    if champion is None or champion.recipe is None or champion.recipe.kind not in family.candidates:
        return recipes, None
    same = next((k for k in family.candidates if recipes[k] == champion.recipe), None)
    if same is not None:
        return recipes, same
    return recipes | {CHAMPION_LABEL: champion.recipe}, CHAMPION_LABEL


def best_candidate(family: ModelFamily, evaluation: Evaluation) -> str:
    """The candidate kind with the best primary metric (the flagship on a tie or when all are NaN)."""
    scores = {k: evaluation.metric(k, family.metric) for k in family.candidates}
    ranked = [k for k in family.candidates if not math.isnan(scores[k])]
    if not ranked:
        return family.candidates[0]
    pick = max if family.higher_is_better else min
    best = pick(scores[k] for k in ranked)
    return next(k for k in ranked if scores[k] == best)


@dataclass
class TrainingResult:
    """What a training run did (JSON-friendly through :meth:`summary`)."""

    family: str
    model_name: str
    run_id: str
    model_version: int
    model_kind: str
    decision: PromotionDecision
    evaluation: Evaluation
    dataset: dict[str, Any]
    fit_metrics: dict[str, float]
    seconds: float

    @property
    def promoted(self) -> bool:
        return self.decision.promoted

    @property
    def reason(self) -> str:
        return self.decision.reason

    def summary(self, run_date: dt.date) -> dict[str, Any]:
        """The small record DVC keeps as metrics and the DAG task returns."""
        models = {
            row["model"]: finite({k: v for k, v in row.items() if k not in ("model", "n_points")})
            for row in self.evaluation.comparison.iter_rows(named=True)
        }
        return {
            "family": self.family,
            "run_date": run_date.isoformat(),
            "run_id": self.run_id,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_kind": self.model_kind,
            "promoted": self.promoted,
            "reason": self.reason,
            "evaluation": models,
            "extra": finite(self.evaluation.metrics),
            "fit": self.fit_metrics,
            "seconds": self.seconds,
        }


def _log_evaluation(
    family: ModelFamily,
    settings: Settings,
    evaluation: Evaluation,
    tags: Mapping[str, str],
) -> None:
    import mlflow

    from pipelines.ml.registry import log_figure, log_table, tracked_run

    if evaluation.per_fold is not None:
        metric_names = [
            c for c, t in evaluation.per_fold.schema.items() if t.is_numeric() and c not in ("fold",)
        ]
        for row in evaluation.per_fold.iter_rows(named=True):
            labels = {k: v for k, v in row.items() if k not in metric_names and v is not None}
            with tracked_run(
                settings,
                family.name,
                f"{row['model']}-fold{row['fold']}",
                {"model_kind": row["model"], "fold": row["fold"]},
                nested=True,
                standard_tags=tags,
                tags={"model_kind": row["model"], **labels},
            ):
                mlflow.log_metrics(finite({m: row[m] for m in metric_names}))
    summary: dict[str, float] = {}
    numeric = [c for c, t in evaluation.comparison.schema.items() if t.is_numeric()]
    flagship = family.candidates[0]
    for row in evaluation.comparison.iter_rows(named=True):
        summary |= finite({f"{m}_{row['model']}": row[m] for m in numeric})
        if row["model"] == flagship:
            summary |= finite({m: row[m] for m in numeric})
    mlflow.log_metrics(summary | finite(evaluation.metrics))
    log_table(evaluation.comparison, "comparison")
    mlflow.log_text(format_table(evaluation.comparison) + "\n", "tables/comparison.txt")
    if evaluation.per_fold is not None:
        log_table(evaluation.per_fold, "per_fold")
    for name, frame in evaluation.tables.items():
        log_table(frame, name)
    for name, figure in evaluation.figures.items():
        log_figure(figure, name)


def train_family(
    family: ModelFamily,
    settings: Settings,
    run_date: dt.date,
    *,
    dataset: Any = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Evaluate, fit, log, register and maybe promote ``family`` on data up to ``run_date``.

    Args:
        family: The model family.
        settings: Configuration, warehouse and MLflow store.
        run_date: Last day of data used.
        dataset: The family's dataset (default: :meth:`ModelFamily.load_dataset`).
        progress: Called with short messages.
    """
    import mlflow

    from pipelines.ml.registry import promote_if_better, register, run_tags, tracked_run, tracking

    say = progress or _silent
    started = time.perf_counter()
    tracking(settings)
    if dataset is None:
        dataset = family.load_dataset(settings, run_date)
    described = family.describe_dataset(dataset)
    tags = run_tags(settings, family.name, run_date)
    champion = current_champion(family, settings)
    recipes, champion_label = evaluation_recipes(family, settings, champion)
    params = {
        **family.run_params(settings),
        "data": described,
        "recipe": {k: r.to_json() for k, r in recipes.items()},
    }
    with tracked_run(
        settings,
        family.name,
        f"{family.name}-{run_date}",
        params,
        standard_tags=tags,
        tags={"model_kind": "comparison"},
    ) as parent:
        run_id = parent.info.run_id
        mlflow.log_input(
            training_input(family, settings, dataset, described, tags.get("data.version", "none")),
            context="training",
        )
        say(f"evaluating {', '.join(recipes)} on the same data")
        evaluation = family.evaluate(settings, dataset, recipes, say)
        _log_evaluation(family, settings, evaluation, tags)
        kind = best_candidate(family, evaluation)
        candidate = evaluation.metric(kind, family.metric)
        say(f"fitting {kind} (best candidate, {family.metric} {candidate:.4g}) on all data")
        with tracked_run(
            settings,
            family.name,
            f"{kind}-final-fit",
            {"cutoff": run_date},
            nested=True,
            standard_tags=tags,
            tags={"model_kind": kind, "stage": "final_fit"},
        ):
            fitted = family.fit(settings, dataset, recipes[kind], say)
            fit_metrics = finite(getattr(fitted, "metrics", {}) or {})
            mlflow.log_metrics(fit_metrics)
        mlflow.set_tag(KIND_TAG, kind)
        info = family.log_model(settings, fitted, dataset)
        version = register(
            settings,
            run_id,
            info.model_uri,
            family.model_name,
            metrics={family.metric: candidate},
            tags={
                "run_date": run_date.isoformat(),
                RECIPE_TAG: recipes[kind].to_json(),
                KIND_TAG: kind,
            },
        )
        champion_value = evaluation.metric(champion_label, family.metric) if champion_label else None
        decision = promote_if_better(
            settings,
            family.model_name,
            version,
            metric=family.metric,
            candidate=candidate,
            baseline={b: evaluation.metric(b, family.metric) for b in family.baselines},
            higher_is_better=family.higher_is_better,
            run_id=run_id,
            champion_value=champion_value,
            same_recipe=champion_label == kind,
        )
    verdict = "promoted to @champion" if decision.promoted else "left as @challenger"
    say(f"{family.model_name} v{version} ({kind}) {verdict}: {decision.reason}")
    return TrainingResult(
        family=family.name,
        model_name=family.model_name,
        run_id=run_id,
        model_version=int(version),
        model_kind=kind,
        decision=decision,
        evaluation=evaluation,
        dataset=described,
        fit_metrics=fit_metrics,
        seconds=time.perf_counter() - started,
    )


def evaluate_family(
    family: ModelFamily, settings: Settings, run_date: dt.date, *, progress: Progress | None = None
) -> Evaluation:
    """The comparison :func:`train_family` would make, without logging or registering anything."""
    say = progress or _silent
    dataset = family.load_dataset(settings, run_date)
    recipes, _ = evaluation_recipes(family, settings, current_champion(family, settings))
    return family.evaluate(settings, dataset, recipes, say)


__all__ = [
    "CHAMPION_LABEL",
    "RECIPE_TAG",
    "TrainingResult",
    "best_candidate",
    "current_champion",
    "evaluate_family",
    "evaluation_recipes",
    "finite",
    "train_family",
    "training_input",
]
