"""
### Core stage: demand forecasting and replenishment

Runs when the foundation DAG publishes the marts (the `ecom_published_marts` asset), for the date the
foundation published: such a run has no logical date, so every task reads the date from the asset
event (`extra["run_date"]`; of several events, the latest). A run with a logical date (triggered by
hand, `airflow dags test`, `ecom run`) takes that instead. If the rollout stage (`rollout.stage` in
params.yaml) does not include `core`, every task is skipped. Every model
step goes through the shared model layer (`pipelines/ml`), as `ecom train|score forecast` does.

- **train** (weekly, on `forecast.train_weekday`, or whenever there is no champion): backtest the
  LSTM and XGBoost against seasonal naive, the moving average and the champion's recipe on the same
  folds, fit the better of the two, register it as `@challenger` and promote it to `@champion` only
  if it beats every baseline and the champion.
- **score** (daily): p10/p50/p90 for 28 days for every active SKU with the champion's exact version
  into `forecasts.demand_forecast`, replacing that date's rows.
- **plan**: safety stock, reorder point and order quantity per SKU into `forecasts.replenishment_plan`.
- **publish_outputs**: rebuild the marts over the model outputs (`fct_demand_forecasts`,
  `fct_replenishment_plans`, `mart_forecast_accuracy`) with their dbt tests and publish them.
- **report**: render the BI report again, with the forecasting section for the day.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from pipelines.stages.common import DEFAULT_ARGS, PUBLISHED_MARTS


@dag(
    schedule=[PUBLISHED_MARTS],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    # Ahead of the foundation's tasks in the one-slot warehouse pool: during a backfill a day's
    # core run goes before the next day's foundation, so each published day gets its own forecast.
    default_args={**DEFAULT_ARGS, "priority_weight": 100},
    tags=["core", "forecasting", "replenishment"],
)
def core_supply_chain() -> None:
    @task.short_circuit
    def core_enabled(**context) -> bool:
        from pipelines.stages.common import resolve_run

        settings, _ = resolve_run(context)
        return settings.rollout.enabled("core")

    # Skips only `train` when it is not a training day; scoring still runs with the champion.
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def training_due(**context) -> bool:
        from pipelines.stages.common import resolve_run
        from pipelines.stages.core import training_due

        return training_due(*resolve_run(context))

    @task
    def train(**context) -> dict:
        from pipelines.stages.common import resolve_run
        from pipelines.stages.core import train

        return train(*resolve_run(context))

    @task(trigger_rule="none_failed")
    def score(**context) -> dict:
        from pipelines.stages.common import resolve_run
        from pipelines.stages.core import score

        return score(*resolve_run(context))

    @task
    def plan(**context) -> dict:
        from pipelines.stages.common import resolve_run
        from pipelines.stages.core import plan_replenishment

        return plan_replenishment(*resolve_run(context))

    @task
    def publish_outputs(**context) -> list[str]:
        from pipelines.stages.common import resolve_run
        from pipelines.stages.core import publish_outputs

        return publish_outputs(*resolve_run(context))

    @task
    def report(**context) -> str:
        from pipelines.stages.common import resolve_run
        from pipelines.stages.core import report

        return report(*resolve_run(context))

    enabled = core_enabled()
    scored = score()
    enabled >> training_due() >> train() >> scored
    enabled >> scored >> plan() >> publish_outputs() >> report()


core_supply_chain_dag = core_supply_chain()
