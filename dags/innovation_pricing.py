"""
### Innovation stage: competitor price monitoring, price elasticity and dynamic pricing

Runs every `crawl.cadence_minutes` (20) and whenever the foundation DAG publishes the marts (the
`ecom_published_marts` asset). A timetable run prices the newest published day at its own time; an
asset-triggered run takes the date from the asset event, a manual run or `airflow dags test` its
logical date. If the rollout stage (`rollout.stage` in params.yaml) is not `innovation`, every task
is skipped. Model steps go through the shared model layer (`pipelines/ml`), as
`ecom train|score pricing` do.

- **crawl**: crawl the rival sites politely (robots.txt, rate and concurrency limits, retries,
  conditional requests), read image prices with Tesseract, quarantine what cannot be read surely and
  land the rest as `competitor_prices` into `pricing.competitor_observations`.
- **train** (weekly, on `pricing.train_weekday`, once a day, or whenever there is no champion):
  DML, XGBoost and the log-log OLS baseline on the same held-out window; the better candidate is
  registered as `@challenger` and promoted to `@champion` only if it beats the baseline and the
  champion.
- **score** (once per date and champion): per-SKU elasticities into `pricing.price_elasticity`.
- **decide** (every run): the optimiser picks each SKU's next price; stale rival prices stop it
  with a named error; decisions go to `pricing.price_decisions` for the step.
- **replay** (after training, where the simulator's truth exists): the pricing policies replayed
  against the true demand into `pricing.replay_kpis`.
- **publish_outputs**, **report**: the model-output marts and the BI report, with its pricing section.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from pipelines.stages.common import DEFAULT_ARGS, PARSE_SETTINGS, PUBLISHED_MARTS


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(f"*/{PARSE_SETTINGS.crawl.cadence_minutes} * * * *", timezone="UTC"),
        assets=[PUBLISHED_MARTS],
    ),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args={**DEFAULT_ARGS, "priority_weight": 50},
    tags=["innovation", "pricing"],
)
def innovation_pricing() -> None:
    @task.short_circuit
    def pricing_enabled(**context) -> bool:
        from pipelines.stages.common import resolve_step

        settings, _, _ = resolve_step(context)
        return settings.rollout.enabled("innovation")

    @task
    def crawl(**context) -> dict:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.innovation import crawl

        settings, day, _ = resolve_step(context)
        return crawl(settings, day)

    # Skips only `train` (and the replay after it) when it is not due; scoring still runs.
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def training_due(**context) -> bool:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.innovation import training_due

        settings, day, _ = resolve_step(context)
        return training_due(settings, day)

    @task
    def train(**context) -> dict:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.core import train

        settings, day, _ = resolve_step(context)
        return train(settings, day, "pricing")

    @task(trigger_rule="none_failed")
    def score(**context) -> dict:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.core import score
        from pipelines.stages.innovation import score_due

        settings, day, _ = resolve_step(context)
        if not score_due(settings, day):
            return {"skipped": f"the champion's elasticities are scored for {day} already"}
        return score(settings, day, "pricing")

    @task
    def decide(**context) -> dict:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.innovation import decide

        return decide(*resolve_step(context))

    @task
    def replay(**context) -> dict:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.innovation import replay

        settings, day, _ = resolve_step(context)
        return replay(settings, day)

    @task(trigger_rule="none_failed")
    def publish_outputs(**context) -> list[str]:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.core import publish_outputs

        settings, day, _ = resolve_step(context)
        return publish_outputs(settings, day)

    @task
    def report(**context) -> str:
        from pipelines.stages.common import resolve_step
        from pipelines.stages.core import report

        settings, day, _ = resolve_step(context)
        return report(settings, day)

    enabled = pricing_enabled()
    trained = train()
    scored = score()
    decided = decide()
    published = publish_outputs()
    enabled >> crawl() >> training_due() >> trained >> scored >> decided
    # The replay follows training: skipped with it.
    [trained, decided] >> replay() >> published
    decided >> published >> report()


innovation_pricing_dag = innovation_pricing()
