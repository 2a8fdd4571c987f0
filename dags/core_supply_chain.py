"""
### Core stage: demand forecasting and replenishment

Runs when the foundation DAG publishes the marts (the `ecom_published_marts` asset). If the rollout
stage (`rollout.stage` in params.yaml) does not include `core`, every task is skipped.

- **train** (weekly, on `forecast.train_weekday`, or whenever there is no champion): backtest the
  LSTM against seasonal naive, moving average and XGBoost, fit, register the new version as
  `@challenger` and promote it to `@champion` only if it beats both the champion and the baselines.
- **score** (daily): forecast p10/p50/p90 for 28 days for every active SKU with `@champion` into
  `forecasts.demand_forecast`, replacing that date's rows.
- **plan**: safety stock, reorder point and order quantity per SKU into `forecasts.replenishment_plan`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from pipelines.dag_common import DEFAULT_ARGS, PUBLISHED_MARTS


@dag(
    schedule=[PUBLISHED_MARTS],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    tags=["core", "forecasting", "replenishment"],
)
def core_supply_chain() -> None:
    @task.short_circuit
    def core_enabled() -> bool:
        from pipelines.core import stage_enabled

        return stage_enabled("core")

    # Skips only `train` when it is not a training day; scoring still runs with the champion.
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def training_due(ds: str | None = None) -> bool:
        from pipelines.core import training_due

        return training_due(ds)

    @task
    def train(ds: str | None = None) -> dict:
        from pipelines.core import train_forecast

        return train_forecast(ds)

    @task(trigger_rule="none_failed")
    def score(ds: str | None = None) -> dict:
        from pipelines.core import score_forecast

        return score_forecast(ds)

    @task
    def plan(ds: str | None = None) -> dict:
        from pipelines.core import plan_replenishment

        return plan_replenishment(ds)

    enabled = core_enabled()
    scored = score()
    enabled >> training_due() >> train() >> scored
    enabled >> scored >> plan()


core_supply_chain_dag = core_supply_chain()
