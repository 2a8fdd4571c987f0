"""Demand forecasting as a model family of the shared layer (:mod:`pipelines.ml`).

- Dataset: ``marts.mart_demand_features`` up to the run date.
- Evaluation: the rolling-origin backtest (:func:`pipelines.forecast.evaluate.backtest`), every
  recipe on the same folds; with the replay of the replenishment policies over the backtest period.
- Candidates: the two-layer LSTM (the flagship, always reported) and XGBoost; the better one on
  backtest WAPE is put forward. Baselines: seasonal naive and the planners' moving average.
- Output: ``forecasts.demand_forecast``, one row per run date, SKU and target period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.forecast.data import load_demand_features
from pipelines.ml.family import Evaluation, OutputTable, Progress, Recipe

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from pipelines.config import ForecastParams, Settings
    from pipelines.forecast.evaluate import BacktestResult
    from pipelines.forecast.serving import Forecaster

# The parameters that change each kind's figures (the evaluation protocol, grain, horizon,
# quantiles, folds and holdout, is the same for every recipe and comes from the configuration).
_RECIPE_PARAMS = {
    "lstm": (
        "lookback",
        "hidden_sizes",
        "epochs",
        "batch_size",
        "learning_rate",
        "max_train_windows",
        "backtest_epochs",
        "backtest_max_train_windows",
        "seed",
    ),
    "xgboost": ("xgboost_max_rows", "xgboost_rounds", "seed"),
    "seasonal_naive": (),
    "moving_average": (),
}


class ForecastFamily:
    """The demand forecaster's faces for :func:`pipelines.ml.lifecycle.train_family` and scoring."""

    name = "forecast"
    model_name = "demand_forecaster"
    metric = "wape"
    higher_is_better = False
    candidates = ("lstm", "xgboost")
    baselines = ("seasonal_naive", "moving_average")
    output = OutputTable(
        table="forecasts.demand_forecast",
        columns={
            "sku_id": "bigint",
            "target_date": "date",
            "p10": "double",
            "p50": "double",
            "p90": "double",
            "mean": "double",
        },
        key=("sku_id", "target_date"),
        entity="sku_id",
    )

    def recipe(self, settings: Settings, kind: str) -> Recipe:
        params: dict[str, Any] = {
            k: settings.forecast.model_dump(mode="json")[k] for k in _RECIPE_PARAMS[kind]
        }
        if kind == "moving_average":
            params["window_days"] = settings.replenishment.traditional_moving_average_days
        return Recipe(kind, params)

    def run_params(self, settings: Settings) -> Mapping[str, Any]:
        return {"forecast": settings.forecast, "replenishment": settings.replenishment}

    def last_data_day(self, settings: Settings) -> dt.date:
        from pipelines.forecast.data import last_data_day

        return last_data_day(settings)

    def load_dataset(self, settings: Settings, run_date: dt.date) -> pl.DataFrame:
        return load_demand_features(settings, end=run_date).filter(pl.col("date") <= run_date)

    def describe_dataset(self, dataset: pl.DataFrame) -> dict[str, Any]:
        """Window, size and the covariate groups that are off (absent, null or zero on every row).

        An off group's inputs are constants, not data: ``feature_groups_off`` says so in the run's
        params (``data.feature_groups_off``).
        """
        from pipelines.forecast.features import FEATURE_GROUPS, feature_groups_off

        off = feature_groups_off(dataset)
        return {
            "source": "marts.mart_demand_features",
            "start": dataset["date"].min(),
            "end": dataset["date"].max(),
            "skus": dataset["sku_id"].n_unique(),
            "rows": dataset.height,
            "feature_groups_on": ", ".join(g for g in FEATURE_GROUPS if g not in off) or "none",
            "feature_groups_off": ", ".join(off) or "none",
        }

    def evaluate(
        self, settings: Settings, dataset: pl.DataFrame, recipes: Mapping[str, Recipe], progress: Progress
    ) -> Evaluation:
        from pipelines.forecast.evaluate import backtest
        from pipelines.forecast.features import feature_groups_off

        off = feature_groups_off(dataset)
        if off:
            progress(
                f"feature groups off (no data: constant inputs, not zeros in the data): {', '.join(off)}"
            )
        current = {label for label, r in recipes.items() if r == self.recipe(settings, r.kind)}
        main = backtest(
            settings,
            dataset,
            models=[recipes[label].kind for label in recipes if label in current],
            progress=progress,
        )
        evaluation = _evaluation(main, figures=True)
        for label, recipe in recipes.items():
            if label in current:
                continue
            progress(f"re-evaluating {label} ({recipe.kind}, its own parameters) on the same folds")
            other = backtest(
                settings,
                dataset,
                params=_params(settings, recipe),
                models=[recipe.kind],
                moving_average_days=recipe.params.get("window_days"),
                progress=progress,
            )
            evaluation = _merge(evaluation, _evaluation(other, figures=False).relabel(recipe.kind, label))
        if 1 in main.lstm_models and settings.forecast.grain == "daily":
            _add_replay(settings, dataset, main, evaluation, progress)
        return evaluation

    def fit(
        self, settings: Settings, dataset: pl.DataFrame, recipe: Recipe, progress: Progress
    ) -> Forecaster:
        params = _params(settings, recipe)
        if recipe.kind == "xgboost":
            from pipelines.forecast.boosted import TrainedBoostedForecaster

            return TrainedBoostedForecaster.fit(dataset, params)
        if recipe.kind != "lstm":
            raise ValueError(f"{recipe.kind!r} is a baseline, not a model to fit and serve")
        import mlflow
        from lightning.pytorch.loggers import MLFlowLogger

        from pipelines.forecast.train import train_forecaster

        active = mlflow.active_run()
        logger = (
            MLFlowLogger(tracking_uri=settings.tracking_uri, run_id=active.info.run_id) if active else False
        )
        return train_forecaster(settings, dataset, validate=False, logger=logger, params=params)

    def log_model(self, settings: Settings, fitted: Forecaster, dataset: pl.DataFrame) -> ModelInfo:
        from pipelines.forecast.serving import log_forecaster

        return log_forecaster(fitted, dataset)

    def load_model(self, settings: Settings, model_uri: str) -> Forecaster:
        import mlflow.pyfunc

        from pipelines.forecast.serving import unwrap

        return unwrap(mlflow.pyfunc.load_model(model_uri))

    def predict_batch(
        self, settings: Settings, model: Forecaster, run_date: dt.date, con: Any
    ) -> pl.DataFrame:
        from pipelines.forecast.score import forecast_active_skus

        return forecast_active_skus(settings, model, run_date, con)

    def scoring_notes(self, settings: Settings, run_date: dt.date, con: Any) -> list[str]:
        """Whether the horizon's prices and promotions came from plans (printed after scoring)."""
        from pipelines.forecast.score import plans_note

        return [plans_note(con, run_date)]


def _params(settings: Settings, recipe: Recipe) -> ForecastParams:
    """The configured forecast parameters with the recipe's own in place."""
    own = {k: v for k, v in recipe.params.items() if k in settings.forecast.model_fields}
    return settings.forecast.model_validate(settings.forecast.model_dump() | own)


def _evaluation(result: BacktestResult, *, figures: bool) -> Evaluation:
    from pipelines.forecast import plots

    per_fold = result.per_fold
    if result.lstm_models:
        fits = pl.DataFrame(
            [{"fold": fold, **model.metrics} for fold, model in result.lstm_models.items()],
        ).with_columns(pl.col("fold").cast(pl.Int32), pl.lit("lstm").alias("model"))
        per_fold = per_fold.join(fits, on=["model", "fold"], how="left")
    charts = {}
    if figures and not result.samples.is_empty():
        charts = {
            "forecast_vs_actual": plots.forecast_vs_actual(result.samples),
            "error_by_category": plots.error_by_category(result.per_category),
            "quantile_calibration": plots.quantile_calibration(result.calibration),
        }
    return Evaluation(
        comparison=result.comparison,
        per_fold=per_fold,
        tables={
            "per_category": result.per_category,
            "calibration": result.calibration,
            "samples": result.samples,
        },
        figures=charts,
        state=result,
    )


def _merge(first: Evaluation, second: Evaluation) -> Evaluation:
    """Two evaluations on the same folds as one (the first's figures and state)."""

    def both(a: pl.DataFrame | None, b: pl.DataFrame | None) -> pl.DataFrame | None:
        frames = [f for f in (a, b) if f is not None]
        return pl.concat(frames, how="diagonal_relaxed") if frames else None

    return Evaluation(
        comparison=both(first.comparison, second.comparison),  # type: ignore[arg-type]
        per_fold=both(first.per_fold, second.per_fold),
        tables={k: both(v, second.tables.get(k)) for k, v in first.tables.items() if k != "samples"}  # type: ignore[misc]
        | {"samples": first.tables["samples"]},
        figures=first.figures,
        metrics=first.metrics,
        state=first.state,
    )


def _add_replay(
    settings: Settings,
    dataset: pl.DataFrame,
    result: BacktestResult,
    evaluation: Evaluation,
    progress: Progress,
) -> None:
    """Replay the LSTM-quantile and traditional replenishment policies over the backtest period."""
    from pipelines.replenishment import simulate_policies

    progress("replaying the replenishment policies over the backtest period")
    sim = simulate_policies(
        settings, dataset, forecaster=result.lstm_models[1], start=result.origins[0] + dt.timedelta(days=1)
    )
    evaluation.tables["replenishment_simulation"] = sim.table
    for rec in sim.table.iter_rows(named=True):
        evaluation.metrics |= {
            f"sim_{rec['policy']}_{k}": v
            for k, v in rec.items()
            if k != "policy" and isinstance(v, int | float)
        }


FORECAST = ForecastFamily()
