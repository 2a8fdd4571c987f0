"""The core stage's supply-chain steps for one run date, as the DAG tasks and the CLI call them.

Each takes the settings and the run date resolved once at the edge, goes through the shared
model layer (:mod:`pipelines.ml`) and returns a small JSON-friendly summary for XCom.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import Settings


def training_due(settings: Settings, run_date: dt.date, family: str = "forecast") -> bool:
    """Retrain on the configured weekday, or whenever there is no champion to score with."""
    from pipelines.ml.families import get_family
    from pipelines.ml.registry import champion_version

    if run_date.weekday() == settings.forecast.train_weekday:
        return True
    return champion_version(settings, get_family(family).model_name) is None


def train(settings: Settings, run_date: dt.date, family: str = "forecast") -> dict[str, Any]:
    """Train ``family`` through the shared layer (evaluate, fit, register, maybe promote)."""
    from pipelines.ml.families import get_family
    from pipelines.ml.lifecycle import train_family

    result = train_family(get_family(family), settings, run_date)
    summary = result.summary(run_date)
    return {k: summary[k] for k in ("run_id", "model_version", "model_kind", "promoted", "reason")}


def score(settings: Settings, run_date: dt.date, family: str = "forecast") -> dict[str, Any]:
    """Batch-score ``family`` with its champion into its output table for the run date."""
    from pipelines.ml.families import get_family
    from pipelines.ml.scoring import score_family

    result = score_family(get_family(family), settings, run_date)
    return {"table": result.table, "rows": result.rows, "model_version": result.model_version}


def plan_replenishment(settings: Settings, run_date: dt.date) -> dict[str, Any]:
    """The replenishment plan for the run date from its scored forecast."""
    from pipelines.replenishment import plan_replenishment as plan

    result = plan(settings, run_date)
    summary = {"skus": result.skus, "orders": result.orders, "units_ordered": result.units_ordered}
    return {**summary, "skipped": result.skipped} if result.skipped else summary


def publish_outputs(settings: Settings, run_date: dt.date) -> list[str]:
    """Rebuild and publish the marts over model outputs (forecasts, plans, realised accuracy)."""
    from pipelines.model_marts import publish_model_output_marts

    return publish_model_output_marts(settings, run_date)


def report(settings: Settings, run_date: dt.date) -> str:
    """Render the BI report again, now with the day's forecasts and plan."""
    from pipelines.report import build_report

    return str(build_report(settings, run_date))
