"""What a model family declares to the shared model layer, and what its evaluation returns.

A family (forecasting, pricing, vision, ...) is one object that satisfies :class:`ModelFamily`:
its names, its primary metric and direction, the model kinds it may put forward and the baselines
they must beat, its output table, and the hooks the layer calls (dataset, evaluate, fit, log,
load, predict). :mod:`pipelines.ml.lifecycle` and :mod:`pipelines.ml.scoring` do everything else
the same way for every family. Importing this module imports neither MLflow nor a model library.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from pipelines.config import Settings

Progress = Callable[[str], None]

# Columns the layer adds to every output row: which model wrote it, and when.
LAYER_COLUMNS = {"model_name": "varchar", "model_version": "varchar", "scored_at": "timestamp"}


class FamilyDataError(ValueError):
    """A family's data cannot be used (the message says what is missing or wrong)."""


@dataclass(frozen=True)
class Recipe:
    """How to fit one model kind: the kind and the parameters that change its figures.

    Two equal recipes evaluated on the same folds give the same figures, which is how the layer
    knows that the champion's recipe is one it evaluates anyway.
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "params": dict(self.params)}, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        data = json.loads(text)
        return cls(kind=str(data["kind"]), params=dict(data.get("params") or {}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recipe) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())


@dataclass(frozen=True)
class OutputTable:
    """Where batch scoring writes and what a row holds.

    Attributes:
        table: ``schema.table`` in the warehouse.
        columns: The family's columns and their SQL types (``run_date`` and :data:`LAYER_COLUMNS`
            are added by the layer).
        key: Columns unique within one run date.
        entity: The column that names what was scored (``sku_id``), for summaries.
    """

    table: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    entity: str

    def all_columns(self) -> dict[str, str]:
        return {"run_date": "date", **self.columns, **LAYER_COLUMNS}


@dataclass
class Evaluation:
    """What a family's evaluation produced, the same shape for every family.

    Attributes:
        comparison: One row per evaluated label (``model`` column: a kind, or ``champion``) with
            the metric columns; the primary metric among them.
        per_fold: One row per label and fold (``model``, ``fold`` and metrics; other columns
            become tags), logged as nested runs; None for a single held-out set.
        tables: More tables to log as artifacts (``tables/<name>.csv``).
        figures: Figures to log (``figures/<name>.png``).
        metrics: More figures for the parent run (e.g. a decision replay).
        state: Anything the family keeps for itself (e.g. fitted fold models).
    """

    comparison: pl.DataFrame
    per_fold: pl.DataFrame | None = None
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    state: Any = None

    def metric(self, model: str, name: str) -> float:
        row = self.comparison.filter(pl.col("model") == model)
        if row.is_empty():
            raise KeyError(f"{model!r} was not evaluated ({self.comparison['model'].to_list()})")
        value = row[name][0]
        return math.nan if value is None else float(value)

    def relabel(self, old: str, new: str) -> Evaluation:
        """The same evaluation with label ``old`` renamed ``new`` in every table that has it."""

        def swap(frame: pl.DataFrame | None) -> pl.DataFrame | None:
            if frame is None or "model" not in frame.columns:
                return frame
            return frame.with_columns(pl.col("model").replace(old, new))

        return Evaluation(
            comparison=swap(self.comparison),  # type: ignore[arg-type]
            per_fold=swap(self.per_fold),
            tables={k: swap(v) for k, v in self.tables.items()},  # type: ignore[misc]
            figures=self.figures,
            metrics=self.metrics,
            state=self.state,
        )


class ModelFamily(Protocol):
    """The faces every model family shows the shared layer.

    Attributes:
        name: Short name (``forecast``): the CLI argument, the MLflow experiment suffix.
        model_name: Registered model name (``demand_forecaster``).
        metric: Primary metric, a column of :attr:`Evaluation.comparison`.
        higher_is_better: Direction of ``metric``.
        candidates: Kinds the family may put forward, flagship first (always reported).
        baselines: Kinds every candidate must beat to be promoted.
        output: The batch-scoring output table.
    """

    name: str
    model_name: str
    metric: str
    higher_is_better: bool
    candidates: tuple[str, ...]
    baselines: tuple[str, ...]
    output: OutputTable

    def recipe(self, settings: Settings, kind: str) -> Recipe:
        """The recipe of ``kind`` under the current configuration."""
        ...

    def run_params(self, settings: Settings) -> Mapping[str, Any]:
        """The configuration sections a training run logs as params (nested mappings are flattened)."""
        ...

    def last_data_day(self, settings: Settings) -> dt.date:
        """The default run date: the last day the family's published data covers."""
        ...

    def load_dataset(self, settings: Settings, run_date: dt.date) -> Any:
        """The dataset for a run date, from the published marts (one read, at the edge)."""
        ...

    def describe_dataset(self, dataset: Any) -> dict[str, Any]:
        """A small JSON-friendly description (window, rows, entities, source) for params and tags."""
        ...

    def evaluate(
        self, settings: Settings, dataset: Any, recipes: Mapping[str, Recipe], progress: Progress
    ) -> Evaluation:
        """Evaluate every recipe (label -> recipe) on the same folds or held-out set."""
        ...

    def fit(self, settings: Settings, dataset: Any, recipe: Recipe, progress: Progress) -> Any:
        """Fit ``recipe`` on the whole dataset (inside an active MLflow run)."""
        ...

    def log_model(self, settings: Settings, fitted: Any, dataset: Any) -> ModelInfo:
        """Log the fitted model in the active run as an MLflow model with a signature."""
        ...

    def load_model(self, settings: Settings, model_uri: str) -> Any:
        """Load a logged model (``models:/<name>/<version>``) for batch prediction."""
        ...

    def predict_batch(self, settings: Settings, model: Any, run_date: dt.date, con: Any) -> pl.DataFrame:
        """Predict for a run date from the warehouse connection ``con``: rows of :attr:`output`'s columns."""
        ...


def format_table(table: pl.DataFrame) -> str:
    """A comparison table as aligned text (what ``ecom evaluate`` prints and runs log)."""
    if table.is_empty():
        return "(no models evaluated)"
    cols = [c for c in table.columns if c != "n_points"] + (
        ["n_points"] if "n_points" in table.columns else []
    )
    rows = [cols]
    for rec in table.select(cols).iter_rows(named=True):
        row = []
        for c in cols:
            v = rec[c]
            if v is None:
                row.append("-")
            elif isinstance(v, float):
                row.append(f"{v:.1f}" if c == "seconds" else f"{v:.3f}")
            else:
                row.append(f"{v:,}" if isinstance(v, int) else str(v))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = []
    for n, r in enumerate(rows):
        cells = zip(r, widths, strict=True)
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(cells)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
