"""Report sections that read a model family's marts (``dbt/models/marts/<family>/``).

Those marts are published by the core stage, after the foundation, and may not exist at all (a
foundation-only rollout): such a section is then omitted with a short note instead of failing the
report. A family adds its section by writing a module like :mod:`pipelines.report.forecasting`
(``load`` and ``render`` functions) and declaring it in :data:`MODEL_SECTIONS`; ``data`` loads every
listed section and ``render`` places them, in order, after the top movers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import jinja2

from pipelines.report import forecasting, pricing

# Published relations and their columns: {"marts.fct_demand_forecasts": {"run_date", ...}}.
Catalog = Mapping[str, set[str]]


@dataclass(frozen=True)
class ModelSection:
    """One section of the report over a model family's marts.

    Attributes:
        id: The section's HTML id.
        title: Its heading.
        load: Reads what the section shows for a run date; returns None when its marts are not
            published (the catalog says which relations and columns are).
        render: The section's HTML body from what ``load`` returned, with the report's Jinja
            environment (its filters: ``money``, ``count``, ``pct``, ...).
        absent: The note shown instead when ``load`` returned None.
    """

    id: str
    title: str
    load: Callable[[duckdb.DuckDBPyConnection, Catalog, dt.date], Any | None]
    render: Callable[[Any, jinja2.Environment], str]
    absent: str


@dataclass(frozen=True)
class LoadedSection:
    """A section and what it loaded for the report's run date (None: its marts are not published)."""

    section: ModelSection
    data: Any | None


MODEL_SECTIONS: tuple[ModelSection, ...] = (
    ModelSection(
        id="forecasting",
        title="Demand forecasts and replenishment",
        load=forecasting.load,
        render=forecasting.render,
        absent=forecasting.ABSENT,
    ),
    ModelSection(
        id="pricing",
        title="Dynamic pricing",
        load=pricing.load,
        render=pricing.render,
        absent=pricing.ABSENT,
    ),
)


def load_sections(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, run_date: dt.date
) -> tuple[LoadedSection, ...]:
    """Load every model section for ``run_date``."""
    return tuple(LoadedSection(s, s.load(con, catalog, run_date)) for s in MODEL_SECTIONS)
