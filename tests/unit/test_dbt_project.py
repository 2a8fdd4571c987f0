"""Static checks of the dbt project that no DuckDB build would catch."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.config import Settings
from pipelines.transform import DBT_PROJECT_DIR, data_shape_env, dbt_env

# Postgres truncates or refuses identifiers over NAMEDATALEN - 1 bytes, and dbt names a unit test's
# fixture relation after the test: a longer name runs on DuckDB and fails on the postgres target.
POSTGRES_MAX_IDENTIFIER = 63


def _named(kind: str) -> list[tuple[Path, str]]:
    found = []
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        for entry in (yaml.safe_load(path.read_text()) or {}).get(kind) or []:
            found.append((path.relative_to(DBT_PROJECT_DIR), entry["name"]))
    return found


def test_model_and_unit_test_names_fit_a_postgres_identifier() -> None:
    unit_tests = _named("unit_tests")
    assert unit_tests, "no unit tests found: is the project where we look?"
    names = _named("models") + unit_tests
    too_long = [(str(path), name, len(name)) for path, name in names if len(name) > POSTGRES_MAX_IDENTIFIER]
    assert not too_long, too_long


def test_dbt_gets_the_data_shape_from_the_settings(settings: Settings) -> None:
    shape = {"ECOM_LAND_GRAIN": "daily", "ECOM_WEEK_START": "0", "ECOM_CHANNELS": "app,web"}
    assert dbt_env(settings).items() >= shape.items()
    retailer = settings.model_copy(
        update={
            "land": settings.land.model_copy(update={"grain": "weekly", "week_start": "thursday"}),
            "quality": settings.quality.model_copy(update={"channels": None}),
        }
    )
    # none configured: an empty list, which the project reads as "the data's channels"
    assert data_shape_env(retailer) == {
        "ECOM_LAND_GRAIN": "weekly",
        "ECOM_WEEK_START": "3",
        "ECOM_CHANNELS": "",
    }
