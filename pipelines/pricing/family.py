"""Price elasticity as a model family of the shared layer (:mod:`pipelines.ml`).

- Dataset: ``marts.mart_demand_features`` over ``pricing.estimation_days`` up to the run date, one
  row per SKU and in-stock period (:mod:`pipelines.pricing.dataset`).
- Candidates: ``dml`` (the flagship: double/debiased ML with cross-fitted gradient-boosted
  nuisances and partial pooling by category) and ``xgboost`` (a Poisson demand model, monotone in
  own price, read by price perturbation). Baseline: ``loglog_ols``, the naive per-SKU log-log
  regression (:mod:`pipelines.pricing.estimators`).
- Primary metric: ``price_deviance`` (lower is better), the held-out Poisson deviance of units
  predicted by one shared context model times each estimator's price response. Why: the metric
  must work on a retailer's data, where no true elasticity exists, so it is predictive; but a
  predictive metric at the prices actually charged scores the controls more than the elasticity
  and, on endogenous prices (markdowns on overstock, promotions on peak days), rewards a slope
  that tracks the confounders. Holding the context model fixed and varying only the elasticities
  scores each estimator on how held-out units follow held-out price moves beyond what the
  controls explain. Where a simulator wrote the truth, ``truth_*`` figures (MAE, sign, rank,
  bias; by demand decile) are logged beside it, never used to choose.
- Output: ``pricing.price_elasticity``, one row per run date and SKU.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.ml.family import Evaluation, FamilyDataError, OutputTable, Progress, Recipe

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from pipelines.config import Settings
    from pipelines.pricing.estimators import Fitted

# Fixed choices of each kind that change its figures, beside the configured ones.
NUISANCE_ROUNDS = 150
XGBOOST_LEARNING_RATE = 0.05
XGBOOST_MAX_DEPTH = 6


class PricingFamily:
    """The elasticity estimators' faces for :func:`pipelines.ml.lifecycle.train_family` and scoring."""

    name = "pricing"
    model_name = "price_elasticity"
    metric = "price_deviance"
    higher_is_better = False
    candidates = ("dml", "xgboost")
    baselines = ("loglog_ols",)
    output = OutputTable(
        table="pricing.price_elasticity",
        columns={
            "sku_id": "bigint",
            "own_elasticity": "double",
            "own_elasticity_low": "double",
            "own_elasticity_high": "double",
            "cross_elasticity": "double",
            "identified": "boolean",
            "n_days": "bigint",
            "price_variation": "double",
            "category": "varchar",
        },
        key=("sku_id",),
        entity="sku_id",
    )

    def recipe(self, settings: Settings, kind: str) -> Recipe:
        p = settings.pricing
        common = {"min_price_variation": p.min_price_variation}
        if kind == "dml":
            return Recipe(
                kind, common | {"folds": p.dml_folds, "seed": p.seed, "nuisance_rounds": NUISANCE_ROUNDS}
            )
        if kind == "xgboost":
            return Recipe(
                kind,
                common
                | {
                    "rounds": p.xgboost_rounds,
                    "seed": p.seed,
                    "learning_rate": XGBOOST_LEARNING_RATE,
                    "max_depth": XGBOOST_MAX_DEPTH,
                },
            )
        if kind == "loglog_ols":
            return Recipe(kind, common)
        raise ValueError(f"unknown pricing model kind {kind!r}; known: dml, xgboost, loglog_ols")

    def run_params(self, settings: Settings) -> Mapping[str, Any]:
        return {"pricing": settings.pricing}

    def last_data_day(self, settings: Settings) -> dt.date:
        from pipelines.pricing.dataset import MART
        from pipelines.warehouse import connect_warehouse

        if not settings.warehouse_path.is_file():
            raise FamilyDataError(
                f"no warehouse at {settings.warehouse_path}: build and publish the marts first"
            )
        con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
        try:
            found = con.execute(
                "select count(*) from information_schema.tables "
                "where table_schema = 'marts' and table_name = ?",
                [MART],
            ).fetchall()[0][0]
            if not found:
                raise FamilyDataError(f"marts.{MART} does not exist: run dbt and publish first")
            day = con.execute(f"select max(date) from marts.{MART} where units is not null").fetchall()[0][0]
        finally:
            con.close()
        if day is None:
            raise FamilyDataError(f"marts.{MART} has no row with units")
        return day

    def load_dataset(self, settings: Settings, run_date: dt.date) -> pl.DataFrame:
        from pipelines.pricing.dataset import load_pricing_dataset

        return load_pricing_dataset(settings, run_date)

    def describe_dataset(self, dataset: pl.DataFrame) -> dict[str, Any]:
        from pipelines.pricing.dataset import describe_pricing_frame

        return describe_pricing_frame(dataset)

    def evaluate(
        self, settings: Settings, dataset: pl.DataFrame, recipes: Mapping[str, Recipe], progress: Progress
    ) -> Evaluation:
        from pipelines.pricing.evaluate import evaluate_estimators, read_truth

        truth = read_truth(settings.truth_dir)
        if truth is None:
            progress("no simulator truth: comparing on held-out data only")
        evaluation = evaluate_estimators(
            dataset, recipes, holdout_days=settings.pricing.holdout_days, truth=truth, progress=progress
        )
        for label, fitted in (evaluation.state or {}).items():
            evaluation.metrics |= {f"{label}_{k}": v for k, v in fitted.metrics.items() if k != "fit_seconds"}
        return evaluation

    def fit(self, settings: Settings, dataset: pl.DataFrame, recipe: Recipe, progress: Progress) -> Fitted:
        from pipelines.pricing.estimators import fit

        progress(f"fitting {recipe.kind} on {dataset['sku_id'].n_unique():,} SKUs, {dataset.height:,} rows")
        return fit(recipe.kind, dataset, recipe.params)

    def log_model(self, settings: Settings, fitted: Fitted, dataset: pl.DataFrame) -> ModelInfo:
        from pipelines.pricing.serving import log_estimator

        return log_estimator(fitted)

    def load_model(self, settings: Settings, model_uri: str) -> Fitted:
        import mlflow.pyfunc

        from pipelines.pricing.serving import unwrap

        return unwrap(mlflow.pyfunc.load_model(model_uri))

    def predict_batch(self, settings: Settings, model: Fitted, run_date: dt.date, con: Any) -> pl.DataFrame:
        """Every SKU with in-stock rows in the estimation window to ``run_date``: the model's
        elasticities, with the window's rows, price variation and category from the warehouse
        (a SKU the model never saw gets its category's pooled figures, not identified)."""
        from pipelines.pricing.dataset import prepare_pricing_frame, read_mart_from
        from pipelines.pricing.estimators import elasticities

        start = run_date - dt.timedelta(days=settings.pricing.estimation_days - 1)
        frame = prepare_pricing_frame(read_mart_from(con, start, run_date))
        return elasticities(model, frame).select(list(self.output.columns)).sort("sku_id")


PRICING = PricingFamily()
