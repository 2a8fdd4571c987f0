"""The innovation stage's pricing steps for one run date, as the DAG tasks and the CLI call them.

Each takes the settings and the run date resolved once at the edge and returns a small JSON-friendly
summary for XCom. Model steps go through the shared model layer (:mod:`pipelines.ml`), as
``ecom train|score pricing`` do.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import Settings

FAMILY = "pricing"
REPLAY_WEEKS = 8
REPLAY_SEEDS = (1, 2, 3, 4, 5)


def crawl(settings: Settings, run_date: dt.date) -> dict[str, Any]:
    """Crawl the rival sites, quarantine what could not be read, land the rest."""
    from pipelines.pricing.monitor import monitor_competitors

    return monitor_competitors(settings, run_date).summary()


def training_due(settings: Settings, run_date: dt.date) -> bool:
    """Retrain on ``pricing.train_weekday`` once for the date, or whenever there is no champion."""
    from pipelines.ml.families import get_family
    from pipelines.ml.registry import champion_version, experiment, tracking

    if champion_version(settings, get_family(FAMILY).model_name) is None:
        return True
    if run_date.weekday() != settings.pricing.train_weekday:
        return False
    # The DAG steps several times a day: a day that already has a finished training run is done.
    trained = tracking(settings).search_runs(
        [experiment(settings, FAMILY)],
        filter_string=f"tags.`ecom.run_date` = '{run_date.isoformat()}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return not trained


def score_due(settings: Settings, run_date: dt.date) -> bool:
    """Score elasticities unless the champion's are already scored for the date."""
    from pipelines.ml.families import get_family
    from pipelines.ml.registry import champion_version
    from pipelines.quality.store import table_exists
    from pipelines.warehouse import connect_warehouse

    family = get_family(FAMILY)
    champion = champion_version(settings, family.model_name)
    if champion is None or not settings.warehouse_path.is_file():
        return True
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        if not table_exists(con, *family.output.table.split(".", 1)):
            return True
        scored = con.execute(
            f"select count(*) from {family.output.table} where run_date = ? and model_version = ?",
            [run_date, str(champion.version)],
        ).fetchall()[0][0]
    finally:
        con.close()
    return scored == 0


def decide(settings: Settings, run_date: dt.date, step_at: dt.datetime) -> dict[str, Any]:
    """Optimise and publish the step's prices (stale rival prices stop it with a named error)."""
    from pipelines.pricing.decide import decide_prices

    return decide_prices(settings, run_date, step_at).summary()


def replay(settings: Settings, run_date: dt.date) -> dict[str, Any]:
    """Replay the pricing policies against the simulator's true demand into ``pricing.replay_kpis``.

    Only where the simulator's truth exists (``data/truth``): a user's own data has no true demand
    to replay against, and the step says so instead.
    """
    from pipelines.pricing.simulated import replay_kpis_for

    return replay_kpis_for(settings, run_date, weeks=REPLAY_WEEKS, seeds=REPLAY_SEEDS)
