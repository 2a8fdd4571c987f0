"""The core stage's supply-chain steps for one data interval, as the DAG and the CLI call them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipelines.config import Stage, load_settings


def stage_enabled(stage: Stage) -> bool:
    """Whether the configured rollout stage (``rollout.stage``) includes ``stage``."""
    return load_settings().rollout.enabled(stage)


def training_due(ds: str) -> bool:
    """Retrain on the configured weekday, or whenever there is no champion to score with."""
    from pipelines.registry import NoChampionError, load_champion

    settings = load_settings()
    if dt.date.fromisoformat(ds).weekday() == settings.forecast.train_weekday:
        return True
    try:
        load_champion(settings, "demand_forecaster")
    except NoChampionError:
        return True
    return False


def train_forecast(ds: str) -> dict[str, Any]:
    from pipelines.forecast.tracking import run_training

    result = run_training(load_settings(), dt.date.fromisoformat(ds))
    return {k: result[k] for k in ("run_id", "model_version", "promoted", "reason") if k in result}


def score_forecast(ds: str) -> dict[str, Any]:
    from pipelines.forecast.score import score_forecast as score

    result = score(load_settings(), dt.date.fromisoformat(ds))
    return {"rows": result.rows, "skus": result.skus, "model_version": result.model_version}


def plan_replenishment(ds: str) -> dict[str, Any]:
    from pipelines.replenishment import plan_replenishment as plan

    result = plan(load_settings(), dt.date.fromisoformat(ds))
    return {"skus": result.skus, "orders": result.orders, "units_ordered": result.units_ordered}
