"""Batch scoring for any model family: the champion's exact version, one atomic write.

:func:`score_family` resolves ``@champion`` to a version number once, loads that exact version
(``models:/<name>/<version>``, so a promotion during scoring cannot mix two models), asks the
family for its rows for the run date, stamps every row with ``run_date``, ``model_name``,
``model_version`` and ``scored_at``, and replaces that run date's rows of the family's output
table in one transaction: scoring a date twice leaves the same rows (only ``scored_at`` moves).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from pipelines.ml.family import ModelFamily
from pipelines.ml.store import replace_partition
from pipelines.warehouse import connect_warehouse

if TYPE_CHECKING:
    from pipelines.config import Settings


class ScoringError(RuntimeError):
    """Scoring cannot run (the message says what is missing)."""


@dataclass
class ScoreResult:
    """What a scoring run wrote."""

    family: str
    run_date: dt.date
    table: str
    rows: int
    entities: int
    entity: str
    model_name: str
    model_version: str
    seconds: float
    notes: tuple[str, ...] = ()  # what the family says about the inputs it scored from

    def summary(self) -> str:
        rate = self.entities / self.seconds if self.seconds else 0.0
        return (
            f"scored {self.entities:,} {self.entity}s ({self.rows:,} rows) into {self.table} for "
            f"{self.run_date} with {self.model_name} v{self.model_version} in {self.seconds:.1f}s "
            f"({rate:,.0f} {self.entity}s/s)"
        ) + "".join(f"\n  {note}" for note in self.notes)


def resolve_champion(settings: Settings, model_name: str) -> str:
    """The version number ``@champion`` points at now.

    Raises:
        pipelines.ml.registry.NoChampionError: No champion yet.
    """
    from pipelines.ml.registry import NoChampionError, champion_version

    mv = champion_version(settings, model_name)
    if mv is None:
        raise NoChampionError(model_name, settings.tracking_uri)
    return str(mv.version)


def score_family(
    family: ModelFamily, settings: Settings, run_date: dt.date, *, version: str | None = None
) -> ScoreResult:
    """Predict with the champion (or ``version``) for ``run_date``; replace that date's output rows.

    Raises:
        ScoringError: No warehouse, or the family found nothing to score.
        pipelines.ml.registry.NoChampionError: No champion model yet.
    """
    started = time.perf_counter()
    if not settings.warehouse_path.is_file():
        raise ScoringError(f"no warehouse at {settings.warehouse_path}: build and publish the marts first")
    version = version or resolve_champion(settings, family.model_name)
    model = family.load_model(settings, f"models:/{family.model_name}/{version}")
    output = family.output
    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        predicted = family.predict_batch(settings, model, run_date, con)
        # optional hook: a family may say what it scored from (e.g. which plans it read)
        scoring_notes = getattr(family, "scoring_notes", None)
        notes = tuple(scoring_notes(settings, run_date, con)) if scoring_notes else ()
        if predicted.is_empty():
            raise ScoringError(f"{family.name}: nothing to score for {run_date}")
        scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = predicted.select(
            pl.lit(run_date).alias("run_date"),
            *output.columns,
            pl.lit(family.model_name).alias("model_name"),
            pl.lit(version).alias("model_version"),
            pl.lit(scored_at).alias("scored_at"),
        )
        duplicated = rows.select(pl.struct(list(output.key)).is_duplicated().any()).item()
        if duplicated:
            raise ScoringError(f"{family.name}: rows repeat the key {list(output.key)} for {run_date}")
        replace_partition(con, output.table, output.all_columns(), rows, run_date)
    finally:
        con.close()
    return ScoreResult(
        family=family.name,
        run_date=run_date,
        table=output.table,
        rows=rows.height,
        entities=rows[output.entity].n_unique(),
        entity=output.entity.removesuffix("_id"),
        model_name=family.model_name,
        model_version=version,
        seconds=time.perf_counter() - started,
        notes=notes,
    )
