"""The suite files under expectations/: every one parses, carries our policy fields, and names only
columns that the contract (raw), the derived frames (raw_batch) or the warehouse spec (marts) has."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

import pipelines.quality.suites as suites
from pipelines.config import QualityParams
from pipelines.data.contract import TABLES
from pipelines.quality.raw import suite_parameters
from pipelines.quality.suites import (
    STAGES,
    Dimension,
    Severity,
    SuiteError,
    list_suites,
    load_suite,
    read_suite,
)

ROOT = Path(__file__).resolve().parents[2]
ALL = [(stage, table) for stage in STAGES for table in list_suites(stage)]
MARTS_PARAMETERS = {"run_date", "min_rows", "channels"}


def _documented_marts() -> dict[str, set[str]]:
    """Each mart of docs/warehouse.md with the words of its 'key columns and contents' cell."""
    doc = (ROOT / "docs" / "warehouse.md").read_text()
    section = doc[doc.index("## Marts") :]
    out = {}
    for line in section.splitlines():
        m = re.match(r"\| `(\w+)` \| [^|]* \| ([^|]*) \|", line)
        if m:
            out[m.group(1)] = set(re.findall(r"[a-z_][a-z0-9_]*", m.group(2)))
    return out


def test_there_is_one_raw_suite_per_contract_table_and_one_suite_per_documented_mart() -> None:
    assert list_suites("raw") == sorted(TABLES)
    # The marts over model outputs (a folder per model family under dbt/models/marts/) are audited
    # by their dbt tests when the core stage publishes them, not by a GX suite.
    model_outputs = {p.stem for p in (ROOT / "dbt" / "models" / "marts").glob("*/*.sql")}
    assert model_outputs >= {"fct_demand_forecasts", "mart_forecast_accuracy"}
    assert list_suites("marts") == sorted(set(_documented_marts()) - model_outputs)
    assert set(list_suites("raw_batch")) == {
        "timeliness",
        "quarantine_rate",
        "daily_sales_grid",
        "sales_reconciliation_daily",
        "sales_reconciliation",
    }


@pytest.mark.parametrize(("stage", "table"), ALL)
def test_every_suite_file_parses_into_a_gx_suite(stage: str, table: str) -> None:
    doc = json.loads((ROOT / "expectations" / stage / f"{table}.json").read_text())
    suite = load_suite(stage, table)
    assert suite.name == f"{stage}.{table}"
    assert len(suite.expectations) == len(doc["expectations"]) > 0
    for expectation, raw in zip(suite.expectations, doc["expectations"], strict=True):
        assert expectation.expectation_type == raw["type"]
        assert expectation.meta["severity"] in {s.value for s in Severity}
        assert expectation.meta["dimension"] in {d.value for d in Dimension}
        assert expectation.meta["description"]
        assert expectation.meta["rule"]


@pytest.mark.parametrize("table", list_suites("raw"))
def test_raw_suites_name_only_contract_columns(table: str) -> None:
    contract = TABLES[table]
    for rule in read_suite("raw", table).rules:
        assert set(rule.source_columns) <= set(contract.column_names), rule.name
        if rule.reference is not None:
            assert rule.reference.key in TABLES[rule.reference.table].column_names
            assert rule.reference.key == TABLES[rule.reference.table].key[0]


@pytest.mark.parametrize("table", list_suites("raw"))
def test_raw_suites_cover_required_columns_and_future_dates(table: str) -> None:
    contract = TABLES[table]
    rules = read_suite("raw", table).rules
    not_null = {r.columns[0] for r in rules if r.type == "expect_column_values_to_not_be_null"}
    assert not_null == {c.name for c in contract.columns if not c.nullable}
    future = [r for r in rules if r.columns == [contract.date_column] and "max_value" in r.kwargs]
    if contract.date_column and not contract.plannable:
        assert [(r.severity, r.dimension) for r in future] == [(Severity.QUARANTINE, Dimension.TIMELINESS)]
        assert future[0].kwargs["max_value"] == {"$PARAMETER": "batch_date"}
    else:
        # Master data has no business date; a plannable table's later rows are plans, not future facts.
        assert future == []


def test_only_prices_and_promotions_take_plans() -> None:
    assert {t.name for t in TABLES.values() if t.plannable} == {"own_prices", "promotions"}


@pytest.mark.parametrize("check", list_suites("raw_batch"))
def test_batch_suites_name_only_columns_of_their_derived_frame(check: str) -> None:
    suite = read_suite("raw_batch", check)
    assert suite.columns <= set(suite.meta["columns"])


@pytest.mark.parametrize("mart", list_suites("marts"))
def test_mart_suites_name_only_documented_columns(mart: str) -> None:
    suite = read_suite("marts", mart)
    documented = _documented_marts()[mart]
    named = suite.columns | ({suite.meta["date_column"]} if suite.meta.get("date_column") else set())
    assert named <= documented, f"{mart}: {sorted(named - documented)} not in docs/warehouse.md"
    assert not [r for r in suite.rules if r.severity is Severity.QUARANTINE], "marts cannot quarantine rows"
    assert suite.parameters <= MARTS_PARAMETERS


def test_raw_suites_only_use_parameters_the_validation_supplies() -> None:
    supplied = set(suite_parameters(QualityParams(), dt.date(2024, 1, 1)))
    for stage in ("raw", "raw_batch"):
        for table in list_suites(stage):
            assert read_suite(stage, table).parameters <= supplied, (stage, table)


def test_channels_come_from_the_settings_or_else_from_the_data() -> None:
    day = dt.date(2024, 1, 1)
    assert suite_parameters(QualityParams(), day, ["store"])["channels"] == ["app", "web"]
    from_data = suite_parameters(QualityParams(channels=None), day, ["store", "app"])
    assert from_data["channels"] == ["app", "store"]


def test_every_dimension_and_severity_is_used() -> None:
    rules = [r for stage, table in ALL for r in read_suite(stage, table).rules]
    assert {r.dimension for r in rules} == set(Dimension)
    assert {r.severity for r in rules} == set(Severity)


# --- the loader rejects bad suite files with the file named ---------------------------------------


def _write(folder: Path, expectations: list[dict], name: str = "raw.bad") -> None:
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    (folder / "raw" / "bad.json").write_text(json.dumps({"name": name, "expectations": expectations}))


def _ok(**meta: str) -> dict:
    base = {"severity": "quarantine", "dimension": "accuracy", "description": "Units are 0 or more"}
    return {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "units", "min_value": 0},
        "meta": {**base, **meta},
    }


@pytest.fixture
def suite_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(suites, "EXPECTATIONS_DIR", tmp_path)
    suites._read_suite.cache_clear()
    yield tmp_path
    suites._read_suite.cache_clear()


@pytest.mark.parametrize(
    ("expectations", "message"),
    [
        (
            [_ok(severity="fatal")],
            r"meta.severity must be one of \['block', 'quarantine', 'warn'\], found 'fatal'",
        ),
        ([_ok(dimension="")], r"meta.dimension must be one of"),
        ([_ok(description=" ")], r"meta.description is required"),
        ([{**_ok(), "type": "expect_column_values_to_be_purple"}], r"unknown expectation type"),
        (
            [{**_ok(), "type": "expect_column_max_to_be_between"}],
            r"severity 'quarantine' needs a row-level \(map\) expectation",
        ),
        ([_ok(), _ok()], r"two expectations are both named 'expect_column_values_to_be_between\(units\)'"),
        ([{**_ok(), "kwargs": {"column": "units", "min_value": "zero", "mostly": 7}}], r"GX rejects this"),
    ],
)
def test_a_bad_suite_file_is_a_clear_error(suite_dir: Path, expectations: list[dict], message: str) -> None:
    _write(suite_dir, expectations)
    with pytest.raises(SuiteError, match=message) as caught:
        read_suite("raw", "bad")
    assert "bad.json" in str(caught.value)


def test_a_suite_file_must_carry_its_own_name(suite_dir: Path) -> None:
    _write(suite_dir, [_ok()], name="raw.other")
    with pytest.raises(SuiteError, match=r"'name' must be 'raw.bad', found 'raw.other'"):
        read_suite("raw", "bad")


def test_a_missing_suite_or_stage_is_a_clear_error() -> None:
    with pytest.raises(
        SuiteError, match=r"no suite file .*raw/nope.json \(suites for stage raw: browsing_events"
    ):
        read_suite("raw", "nope")
    with pytest.raises(SuiteError, match="unknown suite stage 'bronze'"):
        read_suite("bronze", "daily_sales")


def test_two_rules_on_one_column_both_survive_into_gx(suite_dir: Path) -> None:
    # ExpectationSuite.add_expectation_configuration would keep only one (it upserts by domain).
    second = {**_ok(rule="units_at_most_1000"), "kwargs": {"column": "units", "max_value": 1000}}
    _write(suite_dir, [_ok(), second])
    assert len(load_suite("raw", "bad").expectations) == 2
