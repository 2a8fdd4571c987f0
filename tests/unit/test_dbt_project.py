"""Static checks of the dbt project that no DuckDB build would catch."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.transform import DBT_PROJECT_DIR

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
