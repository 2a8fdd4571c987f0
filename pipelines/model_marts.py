"""Refresh the marts over model outputs after scoring, and publish them on their own.

The foundation publishes the marts built from landed data; batch scoring in the core DAG then writes
the model outputs (schema ``forecasts``). :func:`publish_model_output_marts` builds the dbt models
tagged ``model_outputs`` (the staging views over the outputs and every ``models/marts/<family>/``
folder) with their data tests, which are these marts' audit, and then brings those marts in
``marts`` level with ``build_marts`` in one transaction, table by table as the foundation's publish
does (:mod:`pipelines.quality.marts`). No other ``build_marts`` table is touched: one may hold a
build whose audit failed.

A model family adds its marts under ``dbt/models/marts/<family>/`` with the tag (``dbt_project.yml``);
nothing here changes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipelines.transform import SKIP_UNIT_TESTS, run_dbt

if TYPE_CHECKING:
    from pipelines.config import Settings

__all__ = ["MODEL_OUTPUTS_TAG", "ModelMartsError", "publish_model_output_marts"]

# dbt tag of the models over model outputs (dbt_project.yml).
MODEL_OUTPUTS_TAG = "model_outputs"
MODEL_OUTPUT_SELECTION = ("--select", f"tag:{MODEL_OUTPUTS_TAG}")


class ModelMartsError(RuntimeError):
    """The model-output marts cannot be built or published (the message says why)."""


def publish_model_output_marts(
    settings: Settings,
    run_date: dt.date,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Build the marts over model outputs with dbt and publish them to ``marts`` together.

    Run after scoring for ``run_date``. Idempotent: the marts are rebuilt whole from
    ``forecasts.*`` and the published marts they read, so a rerun publishes the same rows. Where a
    model output does not exist yet its marts are built empty.

    Args:
        settings: Where the warehouse and dbt's artifacts are.
        run_date: The data interval (passed to dbt as the run date).
        progress: Called with short human-readable messages.

    Returns:
        The published table names, sorted (``fct_demand_forecasts``, ...).

    Raises:
        ModelMartsError: No warehouse, or the build produced no mart to publish; ``marts`` is untouched.
        pipelines.transform.DbtError: A model or a data test failed; ``marts`` is untouched.
        pipelines.quality.QualityError: Copying into ``marts`` failed; ``marts`` is as it was.
    """
    say = progress or _silent
    if not settings.warehouse_path.is_file():
        raise ModelMartsError(
            f"no warehouse at {settings.warehouse_path}: run the foundation (build and publish marts) first"
        )
    output = run_dbt(settings, ["build", *MODEL_OUTPUT_SELECTION, *SKIP_UNIT_TESTS], run_date)
    # dbt's own summary (Done. PASS=.. WARN=.. ERROR=..) for the log, without its colours.
    summary = next((line for line in reversed(output.splitlines()) if "PASS=" in line), "")
    say(re.sub(r"\x1b\[[0-9;]*m", "", summary).strip() or "dbt build done")
    marts = _built_marts(settings)
    if not marts:
        raise ModelMartsError(
            f"dbt built no mart tagged {MODEL_OUTPUTS_TAG}: nothing to publish (see dbt/dbt_project.yml)"
        )
    published = _publish(settings, marts, say)
    say(f"published {len(published)} model-output marts for {run_date}: {', '.join(published)}")
    return published


def _built_marts(settings: Settings) -> list[str]:
    """The ``build_marts`` tables of the tagged models, from the manifest the build just wrote."""
    from pipelines.quality.marts import BUILD_SCHEMA

    manifest = json.loads((settings.home / "dbt" / "target" / "manifest.json").read_text())
    return sorted(
        node["alias"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and MODEL_OUTPUTS_TAG in node["tags"]
        and node["schema"] == BUILD_SCHEMA
    )


def _publish(settings: Settings, marts: list[str], say: Callable[[str], None]) -> list[str]:
    """``marts.<t>`` level with ``build_marts.<t>`` for each of ``marts``, in one transaction."""
    from pipelines.quality.marts import BUILD_SCHEMA, publish_tables, relations
    from pipelines.warehouse import connect_warehouse

    con = connect_warehouse(settings.warehouse_path, settings.warehouse.memory_limit)
    try:
        built = relations(con, BUILD_SCHEMA)
        if missing := [m for m in marts if m not in built]:
            raise ModelMartsError(
                f"{BUILD_SCHEMA} lacks {', '.join(missing)} after the build: nothing published"
            )
        publish_tables(con, {name: built[name] for name in marts}, say)
    finally:
        con.close()
    return marts


def _silent(_message: str) -> None:
    return None
