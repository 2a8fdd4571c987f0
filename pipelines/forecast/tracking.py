"""The training run: backtest, log to MLflow, fit on all data, register and promote.

:func:`run_training` is what the DAG task and ``ecom train forecast`` call. One parent run in the
``forecast`` experiment holds the configuration and data window as params, the backtest's comparison
tables and figures as artifacts, the LSTM's backtest metrics (``wape``, ``mase``, ...) and every
model's (``wape_<model>``, ...) as metrics, and the final model. Each backtest fold of each model is
a nested run with the same metric names and a ``model_kind`` tag (lstm, seasonal_naive,
moving_average, xgboost). The final LSTM, fitted on all data, is logged as a pyfunc model,
registered as ``demand_forecaster`` (``@challenger``) and promoted to ``@champion`` only if its
backtest WAPE beats the current champion's and the better of seasonal naive and moving average.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.forecast.data import load_demand_features
from pipelines.forecast.evaluate import BASELINES, backtest, format_comparison
from pipelines.forecast.metrics import metric_columns
from pipelines.forecast.serving import MODEL_NAME, log_forecaster
from pipelines.forecast.train import train_forecaster

if TYPE_CHECKING:
    from pipelines.config import Settings

FAMILY = "forecast"


def _finite(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if isinstance(value, int | float) and value is not None and math.isfinite(float(value)):
            out[key] = float(value)
    return out


def training_metrics(result: dict[str, Any], run_date: dt.date) -> dict[str, Any]:
    """The small, JSON-friendly record of a training run that DVC keeps as metrics.

    Args:
        result: What :func:`run_training` returned.
        run_date: Its run date.
    """
    models = {
        row["model"]: _finite({k: v for k, v in row.items() if k not in ("model", "n_points")})
        for row in result["comparison"]
    }
    return {
        "run_date": run_date.isoformat(),
        "run_id": result["run_id"],
        "model_version": result["model_version"],
        "promoted": result["promoted"],
        "reason": result["reason"],
        "backtest": models,
        # The replenishment policy replay (LSTM quantiles vs the traditional policy), by policy.
        "replenishment_replay": {
            row["policy"]: _finite({k: v for k, v in row.items() if k != "policy"})
            for row in result.get("simulation") or []
        },
        "epoch_seconds": result.get("epoch_seconds"),
        "windows_per_epoch": result.get("windows_per_epoch"),
        "seconds": result["seconds"],
    }


def run_training(
    settings: Settings,
    run_date: dt.date,
    *,
    features: pl.DataFrame | None = None,
    simulate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Backtest, fit, log, register and maybe promote the demand forecaster on data up to ``run_date``.

    Args:
        settings: Configuration (``forecast``, ``replenishment``, ``mlflow``) and warehouse.
        run_date: Last day of data used.
        features: Mart-shaped rows (default: ``marts.mart_demand_features`` up to ``run_date``).
        simulate: Also replay the replenishment policies over the backtest period.
        progress: Called with short messages.

    Returns:
        JSON-friendly summary: ``run_id``, ``model_name``, ``model_version``, ``promoted``,
        ``reason``, ``wape`` per model, ``baseline_wape``, ``comparison`` rows, ``simulation`` rows,
        ``seconds``.
    """
    import mlflow
    from lightning.pytorch.loggers import MLFlowLogger

    from pipelines.forecast import plots
    from pipelines.registry import log_figure, log_table, promote_if_better, register, tracked_run, tracking

    say = progress or (lambda _m: None)
    started = time.perf_counter()
    tracking(settings)
    if features is None:
        features = load_demand_features(settings, end=run_date)
    features = features.filter(pl.col("date") <= run_date)
    window = {
        "start": features["date"].min(),
        "end": features["date"].max(),
        "skus": features["sku_id"].n_unique(),
        "rows": features.height,
        "source": "marts.mart_demand_features",
    }
    params = {"forecast": settings.forecast, "replenishment": settings.replenishment, "data": window}
    quantiles = settings.forecast.quantiles
    with tracked_run(
        settings, FAMILY, f"forecast-{run_date}", params, run_date=run_date, tags={"model_kind": "lstm"}
    ) as parent:
        run_id = parent.info.run_id
        result = backtest(settings, features, progress=say)
        metrics = metric_columns(quantiles)
        for row in result.per_fold.iter_rows(named=True):
            model, fold = row["model"], row["fold"]
            with tracked_run(
                settings,
                FAMILY,
                f"{model}-fold{fold}",
                {"fold": fold, "origin": row["origin"], "model_kind": model},
                nested=True,
                run_date=run_date,
                tags={"model_kind": model, "fold": fold, "origin": row["origin"]},
            ):
                mlflow.log_metrics(_finite({m: row[m] for m in metrics}))
                if model == "lstm" and fold in result.lstm_models:
                    mlflow.log_metrics(_finite(result.lstm_models[fold].metrics))
        summary: dict[str, float] = {}
        for row in result.comparison.iter_rows(named=True):
            summary |= _finite({f"{m}_{row['model']}": row[m] for m in [*metrics, "seconds"]})
            if row["model"] == "lstm":
                summary |= _finite({m: row[m] for m in metrics})
        mlflow.log_metrics(summary)
        for name, frame in (
            ("comparison", result.comparison),
            ("per_fold", result.per_fold),
            ("per_category", result.per_category),
            ("calibration", result.calibration),
            ("samples", result.samples),
        ):
            log_table(frame, name)
        mlflow.log_text(format_comparison(result.comparison) + "\n", "tables/comparison.txt")
        log_figure(plots.forecast_vs_actual(result.samples), "forecast_vs_actual", close=False)
        log_figure(plots.error_by_category(result.per_category), "error_by_category", close=False)
        log_figure(plots.quantile_calibration(result.calibration), "quantile_calibration", close=False)

        simulation_rows: list[dict[str, Any]] = []
        if simulate and 1 in result.lstm_models and settings.forecast.grain == "daily":
            from pipelines.replenishment import simulate_policies

            say("replaying the replenishment policies over the backtest period")
            sim = simulate_policies(
                settings,
                features,
                forecaster=result.lstm_models[1],
                start=result.origins[0] + dt.timedelta(days=1),
            )
            log_table(sim.table, "replenishment_simulation")
            mlflow.log_text(sim.note + "\n", "tables/replenishment_simulation_note.txt")
            for rec in sim.table.iter_rows(named=True):
                mlflow.log_metrics(
                    _finite({f"sim_{rec['policy']}_{k}": v for k, v in rec.items() if k not in ("policy",)})
                )
            simulation_rows = sim.table.to_dicts()

        say("fitting the final model on all data")
        with tracked_run(
            settings,
            FAMILY,
            "lstm-final-fit",
            {"cutoff": run_date},
            nested=True,
            run_date=run_date,
            tags={"model_kind": "lstm", "stage": "final_fit"},
        ) as fit_run:
            logger = MLFlowLogger(tracking_uri=settings.tracking_uri, run_id=fit_run.info.run_id)
            final = train_forecaster(settings, features, validate=False, logger=logger)
            mlflow.log_metrics(_finite(final.metrics))
        mlflow.log_metrics(_finite({f"final_{k}": v for k, v in final.metrics.items()}))
        info = log_forecaster(final, features)
        lstm = result.metric("lstm", "wape")
        baseline = min(result.metric(m, "wape") for m in BASELINES)
        version = register(
            settings,
            run_id,
            info.model_uri,
            MODEL_NAME,
            metrics=_finite({m: result.metric("lstm", m) for m in ("wape", "mase", "bias")}),
            tags={"run_date": run_date.isoformat()},
        )
        decision = promote_if_better(
            settings, MODEL_NAME, version, metric="wape", candidate=lstm, baseline=baseline, run_id=run_id
        )
    say(f"{MODEL_NAME} v{version}: {'promoted' if decision.promoted else 'not promoted'} ({decision.reason})")
    return {
        "run_id": run_id,
        "model_name": MODEL_NAME,
        "model_version": int(version),
        "promoted": bool(decision.promoted),
        "reason": decision.reason,
        "wape": {r["model"]: r["wape"] for r in result.comparison.iter_rows(named=True)},
        "baseline_wape": baseline,
        "comparison": result.comparison.to_dicts(),
        "simulation": simulation_rows,
        "epoch_seconds": final.metrics.get("epoch_seconds"),
        "windows_per_epoch": final.metrics.get("windows_per_epoch"),
        "seconds": time.perf_counter() - started,
    }
